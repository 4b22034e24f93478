//! Filesystem access through verified descriptors only (I4): every object is
//! reached with an `*at()` call relative to a directory already checked, never
//! follows a symlink, and is checked with `fstat` once open.

use crate::exit::{Failure, INTERNAL, UNSAFE};
use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, AtFlags, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, UnlinkatFlags};
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// Deep enough for slot/log/supervise/<file> and slot/event/<fifo>.
const MAX_DEPTH: u32 = 4;

pub fn internal(what: &str, e: Errno) -> Failure {
    Failure::new(INTERNAL, format!("{what}: {}", e.desc()))
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Refuses anything that is not the expected type, owned by root, and closed
/// to writes by group and others (I1).
pub fn verify(fd: impl AsFd, kind: SFlag, what: &str) -> Result<FileStat, Failure> {
    let st = fstat(fd).map_err(|e| internal(what, e))?;
    if file_type(&st) != kind || st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return Err(Failure::new(
            UNSAFE,
            format!(
                "{what} is not a root-owned {} closed to others; nothing changed",
                kind_name(kind)
            ),
        ));
    }
    Ok(st)
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFIFO => "FIFO",
        _ => "regular file",
    }
}

/// Opens and verifies a directory; `None` when it does not exist.
pub fn open_dir(parent: impl AsFd, name: &str, what: &str) -> Result<Option<OwnedFd>, Failure> {
    match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => verify(&fd, SFlag::S_IFDIR, what).map(|_| Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => Err(Failure::new(
            UNSAFE,
            format!("{what} is a symlink or not a directory; nothing changed"),
        )),
        Err(e) => Err(internal(what, e)),
    }
}

/// Type of whatever is at `name`, without following a symlink.
pub fn probe(dir: impl AsFd, name: &str, what: &str) -> Result<Option<FileStat>, Failure> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(internal(what, e)),
    }
}

pub fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// Opens an s6 control FIFO for writing, verified; `None` when nobody reads
/// it (the FIFO is missing or its supervisor is not running). Never blocks.
pub fn open_fifo(dir: impl AsFd, name: &str, what: &str) -> Result<Option<OwnedFd>, Failure> {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fifo = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENXIO) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(Failure::new(
                UNSAFE,
                format!("{what} is a symlink; nothing changed"),
            ))
        }
        Err(e) => return Err(internal(what, e)),
    };
    verify(&fifo, SFlag::S_IFIFO, what)?;
    Ok(Some(fifo))
}

/// Writes control bytes; false when the reader went away meanwhile.
pub fn write_fifo(fifo: &OwnedFd, bytes: &[u8], what: &str) -> Result<bool, Failure> {
    match nix::unistd::write(fifo, bytes) {
        Ok(n) if n == bytes.len() => Ok(true),
        Err(Errno::EPIPE) => Ok(false),
        Ok(_) | Err(Errno::EAGAIN) => Err(Failure::new(
            INTERNAL,
            format!("{what}: FIFO full, supervisor not reading"),
        )),
        Err(e) => Err(internal(what, e)),
    }
}

/// Creates a new file (never an existing one, never through a symlink) with
/// its final content, group and mode.
pub fn create_file(
    dir: impl AsFd,
    name: &str,
    content: &[u8],
    mode: u32,
    group: Option<Gid>,
) -> Result<(), Failure> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd =
        openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map_err(|e| internal(name, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(content)
        .map_err(|e| Failure::new(INTERNAL, format!("{name}: {e}")))?;
    finish_object(&file, name, mode, group)
}

/// Creates a directory and returns it open, with its final group and mode.
pub fn create_dir(
    dir: impl AsFd,
    name: &str,
    mode: u32,
    group: Option<Gid>,
) -> Result<OwnedFd, Failure> {
    mkdirat(&dir, name, Mode::from_bits_truncate(0o700)).map_err(|e| internal(name, e))?;
    let fd = openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(|e| internal(name, e))?;
    finish_object(&fd, name, mode, group)?;
    Ok(fd)
}

fn finish_object(fd: impl AsFd, name: &str, mode: u32, group: Option<Gid>) -> Result<(), Failure> {
    if group.is_some() {
        fchown(&fd, None, group).map_err(|e| internal(name, e))?;
    }
    fchmod(fd, Mode::from_bits_truncate(mode)).map_err(|e| internal(name, e))
}

/// Removes `name` if it is a regular file (never a directory or what a
/// symlink points to). Missing is fine.
pub fn remove_file(dir: impl AsFd, name: &str) -> Result<(), Failure> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(internal(name, e)),
    }
}

/// Removes a directory tree that the helper retired or staged: descends only
/// into root-owned directories opened without following links, unlinks every
/// other entry (a symlink is removed, never followed). Missing is fine.
pub fn remove_tree(parent: impl AsFd, name: &str) -> Result<(), Failure> {
    let name = CString::new(name).map_err(|_| Failure::new(INTERNAL, "NUL in a name"))?;
    remove_tree_at(parent.as_fd(), &name, 0)
}

fn remove_tree_at(parent: BorrowedFd<'_>, name: &CStr, depth: u32) -> Result<(), Failure> {
    let what = name.to_string_lossy();
    if depth > MAX_DEPTH {
        return Err(Failure::new(
            UNSAFE,
            format!("{what}: directory tree deeper than expected"),
        ));
    }
    // Only root-owned directories are entered. s6's own `event/` is
    // group-writable by root's group, so the strict `verify` does not apply.
    let dir = match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(internal(&what, e)),
    };
    let st = fstat(&dir).map_err(|e| internal(&what, e))?;
    if st.st_uid != 0 || st.st_mode & 0o002 != 0 {
        return Err(Failure::new(
            UNSAFE,
            format!("{what} is not a root-owned directory; left in place"),
        ));
    }
    // Names first, removal second: unlinking while reading a directory
    // stream may skip entries.
    let copy = dir
        .try_clone()
        .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
    let mut entries = Vec::new();
    for entry in nix::dir::Dir::from_fd(copy)
        .map_err(|e| internal(&what, e))?
        .into_iter()
    {
        let entry = entry.map_err(|e| internal(&what, e))?;
        if ![c".", c".."].contains(&entry.file_name()) {
            entries.push(entry.file_name().to_owned());
        }
    }
    for entry in &entries {
        match fstatat(&dir, entry.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => remove_tree_at(dir.as_fd(), entry, depth + 1)?,
            Ok(_) => match unlinkat(&dir, entry.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(internal(&entry.to_string_lossy(), e)),
            },
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(internal(&entry.to_string_lossy(), e)),
        }
    }
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(internal(&what, e)),
    }
}

/// Whether a process holds the lock s6-supervise keeps on `supervise/lock`
/// while it runs (the same F_GETLK test s6-svstat makes).
pub fn is_locked(supervise: impl AsFd, what: &str) -> Result<bool, Failure> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let lock = match openat(supervise, "lock", flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(internal(what, e)),
    };
    verify(&lock, SFlag::S_IFREG, what)?;
    let mut probe = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&lock, FcntlArg::F_GETLK(&mut probe)).map_err(|e| internal(what, e))?;
    Ok(probe.l_type != nix::libc::F_UNLCK as i16)
}
