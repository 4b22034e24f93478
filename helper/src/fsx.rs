//! Filesystem access through verified descriptors only (I4): every object is
//! reached with an `*at()` call relative to a directory already checked,
//! never through a symlink, and is checked with `fstat` once open.

use crate::exit::{internal, unsafe_state, Failure};
use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, AtFlags, FcntlArg, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, unlinkat, Gid, UnlinkatFlags};
use nix::NixPath;
use std::os::fd::{AsFd, OwnedFd};

const NOFOLLOW: OFlag = OFlag::O_NOFOLLOW.union(OFlag::O_CLOEXEC);
const DIR: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(NOFOLLOW);
/// s6 control FIFOs are opened for writing without ever blocking.
const FIFO: OFlag = OFlag::O_WRONLY.union(OFlag::O_NONBLOCK).union(NOFOLLOW);
const FILE: OFlag = OFlag::O_RDONLY.union(OFlag::O_NONBLOCK).union(NOFOLLOW);

pub fn is_type(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// Who must own everything the helper trusts: its own uid once privileges
/// are dropped, which is root but in a non-root container (there, the user
/// s6 runs as).
pub fn owner() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// "root-owned", or who else owns supervision, for messages.
pub fn owned() -> String {
    if owner() == 0 {
        "root-owned".to_owned()
    } else {
        format!("uid-{}-owned", owner())
    }
}

/// Refuses anything that is not of the expected type, owned by the owner,
/// and closed to writes by group and others (I1).
pub fn verify(fd: impl AsFd, kind: SFlag, what: &str) -> Result<(), Failure> {
    let st = fstat(fd).map_err(|e| internal(what, e))?;
    if is_type(&st, kind) && st.st_uid == owner() && st.st_mode & 0o022 == 0 {
        return Ok(());
    }
    let kind =
        [(SFlag::S_IFDIR, "directory"), (SFlag::S_IFIFO, "FIFO")].iter().find(|k| k.0 == kind).map_or("file", |k| k.1);
    Err(unsafe_state(&format!("{what} is not a {} {kind} closed to others", owned())))
}

/// Opens `name` below `dir` and verifies it; `None` when it is missing (or,
/// for a FIFO, has no reader). A symlink or an object of the wrong type is
/// refused.
fn open(dir: impl AsFd, name: &str, flags: OFlag, kind: SFlag, what: &str) -> Result<Option<OwnedFd>, Failure> {
    match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => verify(&fd, kind, what).map(|()| Some(fd)),
        Err(Errno::ENOENT | Errno::ENXIO) => Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => Err(unsafe_state(&format!("{what} is a symlink or of the wrong type"))),
        Err(e) => Err(internal(what, e)),
    }
}

pub fn open_dir(dir: impl AsFd, name: &str, what: &str) -> Result<Option<OwnedFd>, Failure> {
    open(dir, name, DIR, SFlag::S_IFDIR, what)
}

pub fn open_fifo(dir: impl AsFd, name: &str, what: &str) -> Result<Option<OwnedFd>, Failure> {
    open(dir, name, FIFO, SFlag::S_IFIFO, what)
}

pub fn open_file(dir: impl AsFd, name: &str, what: &str) -> Result<Option<OwnedFd>, Failure> {
    open(dir, name, FILE, SFlag::S_IFREG, what)
}

/// Writes control bytes; false when the reader went away meanwhile.
pub fn write_fifo(fifo: &OwnedFd, bytes: &[u8], what: &str) -> Result<bool, Failure> {
    match nix::unistd::write(fifo, bytes) {
        Ok(n) if n == bytes.len() => Ok(true),
        Err(Errno::EPIPE) => Ok(false),
        other => Err(internal(what, other.err().unwrap_or(Errno::EAGAIN))),
    }
}

/// What is at `name`, without following a symlink.
pub fn probe<P: ?Sized + NixPath>(dir: impl AsFd, name: &P) -> Result<Option<FileStat>, Failure> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(None),
        other => other.map(Some).map_err(|e| internal("stat", e)),
    }
}

/// Creates a new file (never an existing one, never through a symlink) with
/// its final mode (the umask is 0), then content and group. Files are only
/// created in the private staging directory, or empty (markers).
pub fn create_file(dir: impl AsFd, name: &str, content: &[u8], mode: u32, group: Option<Gid>) -> Result<(), Failure> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | NOFOLLOW;
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(mode)).map_err(|e| internal(name, e))?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, content)
        .map_err(|e| Failure::new(crate::exit::INTERNAL, format!("{name}: {e}")))?;
    match group {
        Some(gid) => fchown(&file, None, Some(gid)).map_err(|e| internal(name, e)),
        None => Ok(()),
    }
}

/// Creates a directory with its final mode and group.
pub fn create_dir(dir: impl AsFd, name: &str, mode: u32, group: Option<Gid>) -> Result<(), Failure> {
    mkdirat(&dir, name, Mode::from_bits_truncate(mode)).map_err(|e| internal(name, e))?;
    match group {
        // Only inside the private staging directory: nobody can swap `name`.
        Some(gid) => fchownat(&dir, name, None, Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| internal(name, e)),
        None => Ok(()),
    }
}

/// Opens a directory the helper has just created.
pub fn enter(dir: impl AsFd, name: &str) -> Result<OwnedFd, Failure> {
    openat(dir, name, DIR, Mode::empty()).map_err(|e| internal(name, e))
}

/// Removes `name` unless it is a directory; a symlink is removed, never
/// followed. Missing is fine.
pub fn remove<P: ?Sized + NixPath>(dir: impl AsFd, name: &P, flag: UnlinkatFlags) -> Result<(), Failure> {
    match unlinkat(dir, name, flag) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(internal("unlink", e)),
    }
}

/// Removes a tree the helper staged or retired (at most 4 levels, as in
/// slot/log/supervise/lock): enters only root-owned directories opened
/// without following links (s6's own `event/` is group-writable by root's
/// group, so `verify` is too strict here) and unlinks every other entry.
pub fn remove_tree<P: ?Sized + NixPath>(parent: impl AsFd, name: &P, depth: u32) -> Result<(), Failure> {
    let dir = match openat(&parent, name, DIR, Mode::empty()) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.map_err(|e| internal("opening a tree to remove", e))?,
    };
    let st = fstat(&dir).map_err(|e| internal("stat", e))?;
    if st.st_uid != owner() || st.st_mode & 0o002 != 0 || depth > 4 {
        return Err(unsafe_state(&format!("a tree to remove is not {} or deeper than a slot", owned())));
    }
    // Names first, removal second: unlinking while reading a directory
    // stream may skip entries.
    for entry in &names(&dir)? {
        match probe(&dir, entry.as_c_str())? {
            Some(st) if is_type(&st, SFlag::S_IFDIR) => remove_tree(&dir, entry.as_c_str(), depth + 1)?,
            _ => remove(&dir, entry.as_c_str(), UnlinkatFlags::NoRemoveDir)?,
        }
    }
    remove(parent, name, UnlinkatFlags::RemoveDir)
}

/// The names in a directory, but `.` and `..`.
pub fn names(dir: &OwnedFd) -> Result<Vec<std::ffi::CString>, Failure> {
    let copy = dir.try_clone().map_err(|e| Failure::new(crate::exit::INTERNAL, format!("dup: {e}")))?;
    let mut names = Vec::new();
    for entry in nix::dir::Dir::from_fd(copy).map_err(|e| internal("readdir", e))?.into_iter() {
        let entry = entry.map_err(|e| internal("readdir", e))?;
        if ![c".", c".."].contains(&entry.file_name()) {
            names.push(entry.file_name().to_owned());
        }
    }
    Ok(names)
}

/// Opens (creating it if needed) a file that only the owner can open:
/// regular, the owner's, mode 0600 or stricter.
pub fn open_private(dir: impl AsFd, name: &str) -> Result<OwnedFd, Failure> {
    let flags = OFlag::O_RDONLY | OFlag::O_CREAT | NOFOLLOW;
    let fd = openat(dir, name, flags, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| internal(name, e))?;
    let st = fstat(&fd).map_err(|e| internal(name, e))?;
    if !is_type(&st, SFlag::S_IFREG) || st.st_uid != owner() || st.st_mode & 0o077 != 0 {
        return Err(unsafe_state(&format!("{name} is not a {} regular file closed to others", owned())));
    }
    Ok(fd)
}

/// Whether s6-supervise holds its write lock on `supervise/lock` (the
/// F_GETLK test s6-svstat makes). Probing for a read lock sees only write
/// locks: the read lock any group member can take on the file is no
/// supervisor, and must not make the helper wait for one.
pub fn is_locked(supervise: impl AsFd) -> Result<bool, Failure> {
    let Some(lock) = open_file(supervise, "lock", "supervise/lock")? else { return Ok(false) };
    let mut probe = nix::libc::flock { l_type: nix::libc::F_RDLCK as i16, l_whence: 0, l_start: 0, l_len: 0, l_pid: 0 };
    fcntl(&lock, FcntlArg::F_GETLK(&mut probe)).map_err(|e| internal("supervise/lock", e))?;
    Ok(probe.l_type != nix::libc::F_UNLCK as i16)
}
