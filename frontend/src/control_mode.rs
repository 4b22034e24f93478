//! How gateways are controlled in this container.
//!
//! - **setuid** (the default): every change goes through the setuid helper.
//! - **no-setuid**, for platforms where setuid cannot work
//!   (`allowPrivilegeEscalation: false`, `nosuid` mounts): the container is
//!   started with `HERMES_S6_NO_SETUID=1`; the boot (as root) registers the
//!   slots with the helper and then grants group hermes s6's own control
//!   permission on those gateway slots only (`s6-svperms -G hermes`: the
//!   slot's `supervise/control` FIFO becomes `root:hermes 0620`). The
//!   frontend then writes s6 control bytes into those FIFOs itself
//!   ([`crate::fifo_control`]); creating and removing slots waits for the next
//!   boot.
//!
//! The boot records the mode in a root-owned, world-readable file,
//! `/run/hermes-s6/mode`, holding `setuid` or `no-setuid`. The record is
//! believed only when the file and its directory are root's and closed to
//! writes by anyone else; anything else reads as setuid mode, which needs no
//! trust (the helper checks everything itself).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use serde::Serialize;

use crate::config::Config;
use crate::nofollow;

/// How lifecycle commands reach s6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlMode {
    /// Through the setuid helper.
    Setuid,
    /// By writing to the control FIFOs the boot granted to group hermes.
    NoSetuid,
}

impl ControlMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setuid => "setuid",
            Self::NoSetuid => "no-setuid",
        }
    }

    /// The mode a record's contents name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "setuid" => Some(Self::Setuid),
            "no-setuid" => Some(Self::NoSetuid),
            _ => None,
        }
    }
}

impl std::fmt::Display for ControlMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the mode file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeRecord {
    /// No record: a container booted without the image's cont-init (or
    /// outside the container). Setuid mode.
    Absent,
    /// A trustworthy record.
    Recorded(ControlMode),
    /// A record that cannot be believed, and why. Setuid mode.
    Untrusted(String),
}

impl ModeRecord {
    /// The mode this record means.
    pub fn mode(&self) -> ControlMode {
        match self {
            Self::Recorded(mode) => *mode,
            Self::Absent | Self::Untrusted(_) => ControlMode::Setuid,
        }
    }
}

/// Reads the mode file at `path`: a regular file owned by root, writable by
/// no one else, in a directory with the same properties.
pub fn read_mode_record(path: &Path) -> ModeRecord {
    let Some(parent) = path.parent() else {
        return ModeRecord::Untrusted("the mode file has no directory".into());
    };
    let dir = match open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return ModeRecord::Absent,
        Err(e) => return ModeRecord::Untrusted(format!("{}: {}", parent.display(), e.desc())),
    };
    if let Err(why) = root_only(&dir, SFlag::S_IFDIR) {
        return ModeRecord::Untrusted(format!("{}: {why}", parent.display()));
    }
    let fd = match open(path, nofollow::FILE_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return ModeRecord::Absent,
        Err(e) => return ModeRecord::Untrusted(format!("{}: {}", path.display(), e.desc())),
    };
    if let Err(why) = root_only(&fd, SFlag::S_IFREG) {
        return ModeRecord::Untrusted(format!("{}: {why}", path.display()));
    }
    let Some(text) = nofollow::read_regular(File::from(fd), 64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return ModeRecord::Untrusted(format!("{}: not text", path.display()));
    };
    match ControlMode::parse(&text) {
        Some(mode) => ModeRecord::Recorded(mode),
        None => ModeRecord::Untrusted(format!(
            "{}: unknown mode {:?} (expected setuid or no-setuid)",
            path.display(),
            text.trim()
        )),
    }
}

/// The mode this container runs in.
pub fn detect(config: &Config) -> ControlMode {
    read_mode_record(&config.mode_file).mode()
}

/// The object is of type `kind`, owned by root and not writable by group
/// or others.
fn root_only(fd: impl AsFd, kind: SFlag) -> Result<(), &'static str> {
    let st = fstat(fd).map_err(|_| "cannot be examined")?;
    if st.st_mode & SFlag::S_IFMT.bits() != kind.bits() {
        return Err("wrong file type");
    }
    if st.st_uid != 0 {
        return Err("not owned by root");
    }
    if st.st_mode & 0o022 != 0 {
        return Err("writable by group or others");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn running_as_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn parses_the_two_modes() {
        assert_eq!(ControlMode::parse("setuid\n"), Some(ControlMode::Setuid));
        assert_eq!(ControlMode::parse("no-setuid"), Some(ControlMode::NoSetuid));
        assert_eq!(ControlMode::parse("nosetuid"), None);
        assert_eq!(ControlMode::NoSetuid.to_string(), "no-setuid");
        assert_eq!(
            serde_json::to_string(&ControlMode::NoSetuid).unwrap(),
            "\"no-setuid\""
        );
    }

    #[test]
    fn absent_and_untrusted_records_mean_setuid() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_mode_record(&dir.path().join("none/mode")),
            ModeRecord::Absent
        );
        assert_eq!(
            read_mode_record(&dir.path().join("mode")),
            ModeRecord::Absent
        );
        let record = dir.path().join("mode");
        std::fs::write(&record, "no-setuid\n").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
        let read = read_mode_record(&record);
        if running_as_root() {
            assert_eq!(read, ModeRecord::Recorded(ControlMode::NoSetuid));
            // Writable by others: not believed.
            std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o666)).unwrap();
            assert!(matches!(
                read_mode_record(&record),
                ModeRecord::Untrusted(_)
            ));
            std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&record, "maybe\n").unwrap();
            assert!(matches!(
                read_mode_record(&record),
                ModeRecord::Untrusted(_)
            ));
            // A symbolic link is not followed.
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&record, &link).unwrap();
            assert!(matches!(read_mode_record(&link), ModeRecord::Untrusted(_)));
        } else {
            // Owned by the test user: not believed.
            assert!(matches!(read, ModeRecord::Untrusted(_)), "{read:?}");
        }
        assert_eq!(
            read.mode(),
            if running_as_root() {
                ControlMode::NoSetuid
            } else {
                ControlMode::Setuid
            }
        );
    }
}
