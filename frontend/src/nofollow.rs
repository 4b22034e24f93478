//! Reaching directories and files on the volume, which the hermes user
//! controls, without ever following a symbolic link: entries are examined
//! with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened with `O_NOFOLLOW`
//! relative to the descriptor of their directory, files are read only when
//! they are regular files and only up to a bound, and what root creates
//! there is handed to the directory's owner.
//!
//! The errors keep the errno, so each caller words its own refusal.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::libc;
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{Gid, Uid, fchown, geteuid};

/// Opening a directory below a verified descriptor.
pub const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opening a file to read it: no link followed, and a FIFO planted in its
/// place does not block the open.
pub const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

/// `name` in `dir`, examined without following a link; `None` when absent.
pub fn stat_at(dir: &impl AsFd, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The type bits of a stat.
pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Whether `name` in `dir` is a symbolic link itself.
pub fn is_symlink(dir: &impl AsFd, name: &OsStr) -> bool {
    matches!(stat_at(dir, name), Ok(Some(st)) if file_type(&st) == SFlag::S_IFLNK)
}

/// Why [`open_dir_at`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenDirError {
    /// The entry is a symbolic link. `O_NOFOLLOW` with `O_DIRECTORY`
    /// reports a link as `ENOTDIR` rather than `ELOOP`, so either errno is
    /// told apart from a plain non-directory by looking at the entry.
    Symlink(Errno),
    /// `ENOTDIR` on an entry that is not a link.
    NotADirectory,
    /// Any other failure (`ENOENT` included, and an `ELOOP` whose entry is
    /// no longer a link when looked at).
    Other(Errno),
}

/// Opens the directory `name` below `parent` without following a link.
pub fn open_dir_at(parent: &impl AsFd, name: &OsStr) -> Result<OwnedFd, OpenDirError> {
    openat(parent, name, DIR_FLAGS, Mode::empty()).map_err(|errno| match errno {
        Errno::ELOOP | Errno::ENOTDIR if is_symlink(parent, name) => OpenDirError::Symlink(errno),
        Errno::ENOTDIR => OpenDirError::NotADirectory,
        other => OpenDirError::Other(other),
    })
}

/// Opens the file `name` below `dir` for reading ([`FILE_FLAGS`]).
pub fn open_file_at(dir: &impl AsFd, name: &str) -> Result<File, Errno> {
    openat(dir, name, FILE_FLAGS, Mode::empty()).map(File::from)
}

/// Opens the file at `path` for reading without following a link in its
/// last component (configured directories above it are followed).
pub fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// The first `limit` bytes of `file`, which must be a regular file.
pub fn read_regular(file: File, limit: u64) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Root (cont-init, `docker exec`, a reconcile run by hand) must not leave
/// root-owned files on the volume that the hermes user has to rewrite:
/// what it creates goes to whoever owns the directory it is in.
pub fn hand_to_owner_of(dir: &impl AsFd, created: &impl AsFd) -> Result<(), Errno> {
    if !geteuid().is_root() {
        return Ok(());
    }
    let st = fstat(dir)?;
    if st.st_uid == 0 {
        return Ok(());
    }
    fchown(
        created,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn tells_a_symlink_from_a_file_where_a_directory_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let fd = File::open(dir.path()).unwrap();
        assert!(open_dir_at(&fd, OsStr::new("real")).is_ok());
        assert!(matches!(
            open_dir_at(&fd, OsStr::new("link")),
            Err(OpenDirError::Symlink(Errno::ENOTDIR | Errno::ELOOP))
        ));
        assert_eq!(
            open_dir_at(&fd, OsStr::new("file")).err(),
            Some(OpenDirError::NotADirectory)
        );
        assert_eq!(
            open_dir_at(&fd, OsStr::new("absent")).err(),
            Some(OpenDirError::Other(Errno::ENOENT))
        );
        assert!(is_symlink(&fd, OsStr::new("link")));
        assert!(!is_symlink(&fd, OsStr::new("real")));
        assert_eq!(stat_at(&fd, OsStr::new("absent")), Ok(None));
    }

    #[test]
    fn reads_regular_files_only_and_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "0123456789").unwrap();
        symlink(dir.path().join("f"), dir.path().join("link")).unwrap();
        let fd = File::open(dir.path()).unwrap();
        let file = open_file_at(&fd, "f").unwrap();
        assert_eq!(read_regular(file, 4).unwrap(), b"0123");
        assert_eq!(open_file_at(&fd, "link").err(), Some(Errno::ELOOP));
        assert_eq!(
            open_file(&dir.path().join("link"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
        let not_regular = open_file_at(&fd, ".").unwrap();
        assert_eq!(
            read_regular(not_regular, 4).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
