//! [`ProfileDir`]: a profile's home reached without following links, and
//! the descriptor-relative atomic writer of its files.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat, renameat2};
use nix::libc;
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};
use serde_json::{Map, Value};

use super::{PlannedStop, merge_desired_state, parse_state_object, read_regular_file};
use crate::config::{Config, PLANNED_STOP_MARKER, STATE_FILE};
use crate::error::Error;
use crate::nofollow::{self, OpenDirError};
use crate::profile::ProfileName;
use crate::vocabulary::Intent;

/// A profile's home directory, opened without following symlinks below
/// `$HERMES_HOME`; every file operation happens relative to it.
#[derive(Debug)]
pub struct ProfileDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl ProfileDir {
    /// Opens `$HERMES_HOME` (configuration, followed like any configured
    /// path) and, for a named profile, `profiles/<p>` beneath it one
    /// component at a time with `O_NOFOLLOW`.
    pub fn open(config: &Config, profile: &ProfileName) -> Result<Self, Error> {
        let home = &config.hermes_home;
        let home_fd = File::open(home)
            .map(OwnedFd::from)
            .map_err(|e| Error::io("open", home, e))?;
        if profile.is_default() {
            return Ok(Self {
                fd: home_fd,
                path: home.clone(),
            });
        }
        let mut fd = home_fd;
        let mut path = home.clone();
        for component in ["profiles", profile.as_str()] {
            path.push(component);
            fd = nofollow::open_dir_at(&fd, component.as_ref())
                .map_err(|error| unsafe_or_io(error, &path, "open"))?;
        }
        Ok(Self { fd, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's descriptor, for `*at()` calls relative to it.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Records `desired_state` and `updated_at` in `gateway_state.json`,
    /// keeping every other key. A corrupt, unreadable or non-object file is
    /// replaced; a symlinked one is refused. The gateway rewrites the same
    /// file the same way and takes no lock (upstream's format), so a gateway
    /// write that read the file before this one renames over it can drop
    /// the intent; doctor reports the resulting mismatch (see README).
    pub fn record_desired_state(&self, desired: Intent, updated_at: u64) -> Result<(), Error> {
        let existing = self.read_existing_state()?;
        let merged = merge_desired_state(existing, desired, updated_at);
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(merged))
            .expect("a JSON map always serializes");
        bytes.push(b'\n');
        self.replace_file(STATE_FILE, &bytes)
    }

    /// Creates `gateway_state.json` holding `state`, unless one exists:
    /// written to a temporary file, then renamed into place without
    /// replacing anything. `Ok(false)` when a state file (or anything else
    /// by that name) is there already.
    pub fn create_state(&self, state: &Map<String, Value>) -> Result<bool, Error> {
        let target = self.path.join(STATE_FILE);
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(state.clone()))
            .expect("a JSON map always serializes");
        bytes.push(b'\n');
        let tmp_name = temp_name(STATE_FILE);
        let file = self.create_exclusive(&tmp_name)?;
        let written = self.fill_and_hand_over(file, &bytes).and_then(|()| {
            renameat2(
                &self.fd,
                tmp_name.as_str(),
                &self.fd,
                STATE_FILE,
                RenameFlags::RENAME_NOREPLACE,
            )
            .map_err(io::Error::from)
        });
        match written {
            Ok(()) => Ok(true),
            Err(e) => {
                let _ = unlinkat(&self.fd, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
                if e.raw_os_error() == Some(libc::EEXIST) {
                    Ok(false)
                } else {
                    Err(Error::io("write", &target, e))
                }
            }
        }
    }

    /// Writes the planned-stop marker atomically.
    pub fn write_planned_stop(&self, marker: &PlannedStop) -> Result<(), Error> {
        let bytes = serde_json::to_vec(marker).expect("the marker always serializes");
        self.replace_file(PLANNED_STOP_MARKER, &bytes)
    }

    fn read_existing_state(&self) -> Result<Map<String, Value>, Error> {
        let path = self.path.join(STATE_FILE);
        let file = match nofollow::open_file_at(&self.fd, STATE_FILE) {
            Ok(file) => file,
            Err(Errno::ENOENT) => return Ok(Map::new()),
            Err(Errno::ELOOP) => {
                return Err(Error::UnsafePath {
                    path,
                    reason: "it is a symbolic link",
                });
            }
            // Unreadable counts as empty: the file is replaced, as the
            // gateway itself would.
            Err(_) => return Ok(Map::new()),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("inspect", &path, e))?;
        if !meta.is_file() {
            return Err(Error::UnsafePath {
                path,
                reason: "it is not a regular file",
            });
        }
        // Root must not copy the content of a file hard-linked in from
        // elsewhere into a file the hermes user can read.
        if geteuid().is_root() && std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
            return Err(Error::UnsafePath {
                path,
                reason: "it has other hard links",
            });
        }
        Ok(read_regular_file(file)
            .ok()
            .and_then(|bytes| parse_state_object(&bytes))
            .unwrap_or_default())
    }

    /// Writes `name` as a whole: a fresh dot-prefixed temporary file in the
    /// same directory, renamed over `name`. Readers see the old file or the
    /// new one, never a torn one. No fsync: the files record intent, and
    /// the lifecycle commands must stay fast.
    fn replace_file(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
        let target = self.path.join(name);
        let tmp_name = temp_name(name);
        let file = self.create_exclusive(&tmp_name)?;
        let written = self.fill_and_hand_over(file, contents).and_then(|()| {
            renameat(&self.fd, tmp_name.as_str(), &self.fd, name).map_err(io::Error::from)
        });
        written.map_err(|e| {
            let _ = unlinkat(&self.fd, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
            Error::io("write", &target, e)
        })
    }

    pub(super) fn create_exclusive(&self, tmp_name: &str) -> Result<File, Error> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        let open = || openat(&self.fd, tmp_name, flags, mode);
        match open() {
            Ok(fd) => Ok(File::from(fd)),
            // A leftover (or a planted symlink: O_EXCL never follows it).
            // Unlinking removes the entry itself, never its target.
            Err(Errno::EEXIST) => {
                let _ = unlinkat(&self.fd, tmp_name, UnlinkatFlags::NoRemoveDir);
                open()
                    .map(File::from)
                    .map_err(|errno| Error::io("create", self.path.join(tmp_name), errno.into()))
            }
            Err(errno) => Err(Error::io("create", self.path.join(tmp_name), errno.into())),
        }
    }

    fn fill_and_hand_over(&self, mut file: File, contents: &[u8]) -> io::Result<()> {
        file.write_all(contents)?;
        // The gateway has to rewrite the file: a root-run command must not
        // leave it root's.
        nofollow::hand_to_owner_of(&self.fd, &file)?;
        Ok(())
    }
}

/// A dot-prefixed temporary name next to `name`, unique enough for one
/// writer at a time per process.
fn temp_name(name: &str) -> String {
    format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    )
}

/// `ELOOP` says "symbolic link"; `ENOTDIR`, which is what a link gives
/// under `O_NOFOLLOW|O_DIRECTORY`, says "symbolic link or not a directory".
fn unsafe_or_io(error: OpenDirError, path: &Path, action: &'static str) -> Error {
    match error {
        OpenDirError::Symlink(Errno::ELOOP) | OpenDirError::Other(Errno::ELOOP) => {
            Error::UnsafePath {
                path: path.to_path_buf(),
                reason: "it is a symbolic link",
            }
        }
        OpenDirError::Symlink(_) | OpenDirError::NotADirectory => Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it is a symbolic link or not a directory",
        },
        OpenDirError::Other(other) => Error::io(action, path, other.into()),
    }
}
