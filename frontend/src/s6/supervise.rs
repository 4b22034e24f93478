//! Reading one slot's `supervise/` directory as an unprivileged user.
//!
//! The helper pre-creates `supervise/` root-owned, mode 0710 for group
//! hermes (`s6-svperms -g hermes`), with `status` and `lock` 0644, so the
//! hermes user reads everything here without the helper.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use crate::s6::death_tally;
use crate::s6::status::{STATUS_LEN_WITH_PGID, SuperviseStatus};

/// Whether an s6-supervise process is running on `slot`.
///
/// s6-supervise holds a write lock on `supervise/lock` for as long as it
/// runs; `s6-svstat` opens the file read-only and asks `F_GETLK` whether
/// anyone else holds a lock on it. A status file is current only while
/// that lock is held: without it, it is a stale leftover.
pub fn supervisor_running(slot: &Path) -> io::Result<bool> {
    let path = slot.join("supervise/lock");
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(false),
        Err(e) => return Err(e),
    };
    is_locked_by_another_process(&file)
}

/// `F_GETLK` for a read lock over the whole file: any conflicting lock is a
/// write lock held by some other process (or open file description).
pub fn is_locked_by_another_process(file: &File) -> io::Result<bool> {
    let mut query = libc::flock {
        l_type: libc::F_RDLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file, FcntlArg::F_GETLK(&mut query)).map_err(io::Error::from)?;
    Ok(i32::from(query.l_type) != libc::F_UNLCK)
}

/// Why a slot's supervision state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// `supervise/lock` or `supervise/status` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `supervise/status` has a size no known s6 version writes.
    #[error(
        "{}: {len} bytes is not an s6 status file this version understands (expected 35 or 43)",
        path.display()
    )]
    Format { path: PathBuf, len: usize },
}

/// Reads and parses `supervise/status`.
pub fn read_status(slot: &Path) -> Result<SuperviseStatus, SuperviseError> {
    let path = slot.join("supervise/status");
    let mut bytes = Vec::with_capacity(STATUS_LEN_WITH_PGID + 1);
    let read = File::open(&path)
        // One byte more than the largest layout, so an oversized file shows
        // as such instead of being silently cut to a valid size.
        .and_then(|file| {
            file.take(STATUS_LEN_WITH_PGID as u64 + 1)
                .read_to_end(&mut bytes)
        });
    if let Err(source) = read {
        return Err(SuperviseError::Io { path, source });
    }
    SuperviseStatus::parse(&bytes).map_err(|bad| SuperviseError::Format { path, len: bad.0 })
}

/// The status of a slot an s6-supervise runs on: `None` when none does
/// (the status file is then a stale leftover, or absent).
pub fn supervised_status(slot: &Path) -> Result<Option<SuperviseStatus>, SuperviseError> {
    match supervisor_running(slot) {
        Ok(true) => read_status(slot).map(Some),
        Ok(false) => Ok(None),
        Err(source) => Err(SuperviseError::Io {
            path: slot.join("supervise/lock"),
            source,
        }),
    }
}

/// Whether the slot is supervised and its process is up (not `./finish`).
pub fn is_up(slot: &Path) -> Result<bool, SuperviseError> {
    Ok(supervised_status(slot)?.is_some_and(|status| status.is_up()))
}

/// The pid of the slot's process while it is supervised and up; `None`
/// when it is not, or when that cannot be read.
pub fn up_pid(slot: &Path) -> Option<u64> {
    supervised_status(slot).ok()??.up_pid()
}

/// Number of deaths in `supervise/death_tally` (0 when there is none yet).
pub fn death_count(slot: &Path) -> io::Result<u64> {
    match std::fs::metadata(slot.join("supervise/death_tally")) {
        Ok(meta) => Ok(death_tally::count_for_len(meta.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// `-o normallyup`: the slot has no `down` file.
pub fn is_normally_up(slot: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(slot.join("down")) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn no_lock_file_means_not_supervised() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!supervisor_running(dir.path()).unwrap());
        std::fs::create_dir(dir.path().join("supervise")).unwrap();
        std::fs::write(dir.path().join("supervise/lock"), b"").unwrap();
        assert!(!supervisor_running(dir.path()).unwrap());
    }

    #[test]
    fn a_write_lock_held_elsewhere_means_supervised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("supervise")).unwrap();
        let lock_path = dir.path().join("supervise/lock");
        let holder = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .unwrap();
        // An open-file-description lock conflicts with queries made through
        // any other open of the file, even from this process; a classic
        // process-owned lock would be invisible to its own process.
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(holder.as_fd(), FcntlArg::F_OFD_SETLK(&lock)).unwrap();
        assert!(supervisor_running(dir.path()).unwrap());
        drop(holder);
        assert!(!supervisor_running(dir.path()).unwrap());
    }

    #[test]
    fn normally_up_and_death_count() {
        let dir = tempfile::tempdir().unwrap();
        assert!(is_normally_up(dir.path()).unwrap());
        assert_eq!(death_count(dir.path()).unwrap(), 0);
        std::fs::write(dir.path().join("down"), b"").unwrap();
        assert!(!is_normally_up(dir.path()).unwrap());
        std::fs::create_dir(dir.path().join("supervise")).unwrap();
        std::fs::write(dir.path().join("supervise/death_tally"), [0u8; 42]).unwrap();
        assert_eq!(death_count(dir.path()).unwrap(), 3);
    }
}
