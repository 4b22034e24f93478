//! `$HERMES_HOME/logs/container-boot.log`: one line per profile and boot,
//! exactly as upstream writes it,
//!
//! ```text
//! <local time %Y-%m-%dT%H:%M:%S%z> profile=<p> prior_state=<boot intent|None> action=<started|registered|skipped> prior_exit=<clean|unclean|unknown>
//! ```
//!
//! rotated to `container-boot.log.1` (replacing an older one) when it has
//! reached 256 KiB, before appending. `logs/` is on the hermes-writable
//! volume: the directory and the log are opened with `O_NOFOLLOW` relative
//! to `$HERMES_HOME`, a symbolic link (or anything but a regular file) in
//! their place is refused, and rotation is a rename, which never follows a
//! link. All lines of one run are appended with a single write.
//!
//! The reconciler writes it ([`append`]); doctor reads it back
//! ([`boot_history`]) to find profiles that keep failing at boot.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};
use nix::unistd::geteuid;

use crate::error::Error;
use crate::nofollow::{self, OpenDirError, hand_to_owner_of};

pub const LOGS_DIR: &str = "logs";
pub const BOOT_LOG: &str = "container-boot.log";
pub const BOOT_LOG_ROTATED: &str = "container-boot.log.1";
/// Size at which the log is rotated before the next append.
pub const ROTATE_AT: u64 = 256 * 1024;

/// One boot log line (with its newline). `prior_state` is shown with bytes
/// other than `[A-Za-z0-9._-]` escaped, so a state file cannot forge lines.
pub fn line(
    time: &str,
    profile: &str,
    prior_state: Option<&str>,
    action: &str,
    prior_exit: &str,
) -> String {
    let prior = prior_state.map_or_else(|| "None".to_owned(), |s| escape_name(OsStr::new(s)));
    format!(
        "{time} profile={profile} prior_state={prior} action={action} prior_exit={prior_exit}\n"
    )
}

/// Shows an entry name safely in a log line or a message: `[A-Za-z0-9._-]`
/// as is, every other byte as `\xNN`, cut after 64 bytes.
pub fn escape_name(name: &OsStr) -> String {
    let bytes = name.as_bytes();
    let mut shown = String::new();
    for &b in bytes.iter().take(64) {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            shown.push(char::from(b));
        } else {
            shown.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 64 {
        shown.push_str("...");
    }
    shown
}

/// Appends `lines` to the boot log under `home`, rotating first when the
/// log has reached [`ROTATE_AT`]. Returns the log's path.
pub fn append(home: &Path, lines: &str) -> Result<PathBuf, Error> {
    let logs_path = home.join(LOGS_DIR);
    let path = logs_path.join(BOOT_LOG);
    let home_fd = File::open(home)
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open", home, e))?;
    let logs = open_or_create_dir(&home_fd, LOGS_DIR, &logs_path)?;
    // The gateways' loggers create their directories below this one.
    let gateways = logs_path.join("gateways");
    drop(open_or_create_dir(&logs, "gateways", &gateways)?);

    let mut file = match open_log(&logs, &path, false)? {
        Some(file) if file_size(&file, &path)? >= ROTATE_AT => {
            renameat(&logs, BOOT_LOG, &logs, BOOT_LOG_ROTATED)
                .map_err(|e| Error::io("rotate", &path, e.into()))?;
            open_log(&logs, &path, true)?.expect("a created log is open")
        }
        Some(file) => file,
        None => open_log(&logs, &path, true)?.expect("a created log is open"),
    };
    file.write_all(lines.as_bytes())
        .map_err(|e| Error::io("append to", &path, e))?;
    Ok(path)
}

/// Opens the log for appending; with `create`, creates it (exclusively:
/// whatever appeared meanwhile is not written through). `None` when it does
/// not exist and `create` is false.
fn open_log(logs: &OwnedFd, path: &Path, create: bool) -> Result<Option<File>, Error> {
    let mut flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NONBLOCK;
    if create {
        flags |= OFlag::O_CREAT | OFlag::O_EXCL;
    }
    let file = match openat(logs, BOOT_LOG, flags, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => File::from(fd),
        Err(Errno::ENOENT) if !create => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(Error::UnsafePath {
                path: path.to_path_buf(),
                reason: "it is a symbolic link",
            });
        }
        Err(Errno::ENXIO | Errno::EISDIR) => return Err(not_regular(path)),
        Err(e) => return Err(Error::io("open", path, e.into())),
    };
    let st = fstat(&file).map_err(|e| Error::io("inspect", path, e.into()))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(not_regular(path));
    }
    // Root appending to a file hard-linked in from elsewhere would write
    // where the volume's owner could not.
    if geteuid().is_root() && st.st_nlink > 1 {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it has other hard links",
        });
    }
    if create {
        hand_to_owner_of(logs, &file).map_err(|e| Error::io("chown", path, e.into()))?;
    }
    Ok(Some(file))
}

fn not_regular(path: &Path) -> Error {
    Error::UnsafePath {
        path: path.to_path_buf(),
        reason: "it is not a regular file",
    }
}

fn file_size(file: &File, path: &Path) -> Result<u64, Error> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| Error::io("inspect", path, e))
}

/// Opens `name` below `parent` without following a link; creates it (0755)
/// when missing.
fn open_or_create_dir(parent: &OwnedFd, name: &str, path: &Path) -> Result<OwnedFd, Error> {
    let open = || nofollow::open_dir_at(parent, OsStr::new(name));
    let fd = match open() {
        Ok(fd) => fd,
        Err(OpenDirError::Other(Errno::ENOENT)) => {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("create", path, e.into())),
            }
            let fd = open().map_err(|e| dir_error(e, path))?;
            hand_to_owner_of(parent, &fd).map_err(|e| Error::io("chown", path, e.into()))?;
            fd
        }
        Err(e) => return Err(dir_error(e, path)),
    };
    Ok(fd)
}

fn dir_error(error: OpenDirError, path: &Path) -> Error {
    match error {
        OpenDirError::Symlink(_) => Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it is a symbolic link",
        },
        OpenDirError::NotADirectory => Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it is not a directory",
        },
        OpenDirError::Other(e) => Error::io("open", path, e.into()),
    }
}

/// `prior_state` of every boot log line, per profile, oldest first (the
/// rotated log, then the current one).
pub fn boot_history(home: &Path) -> BTreeMap<String, Vec<String>> {
    let logs = home.join(LOGS_DIR);
    let mut history: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in [BOOT_LOG_ROTATED, BOOT_LOG] {
        let Some(text) = read_small(&logs.join(name)) else {
            continue;
        };
        for (profile, prior) in text.lines().filter_map(parse_boot_line) {
            history.entry(profile).or_default().push(prior);
        }
    }
    history
}

/// `profile` and `prior_state` of one boot log line.
pub fn parse_boot_line(line: &str) -> Option<(String, String)> {
    let mut profile = None;
    let mut prior = None;
    for field in line.split_whitespace().skip(1) {
        if let Some(value) = field.strip_prefix("profile=") {
            profile = Some(value.to_owned());
        } else if let Some(value) = field.strip_prefix("prior_state=") {
            prior = Some(value.to_owned());
        }
    }
    Some((profile?, prior?))
}

/// A regular file of the volume, read without following a link, at most
/// 1 MiB.
fn read_small(path: &Path) -> Option<String> {
    let file = nofollow::open_file(path).ok()?;
    let bytes = nofollow::read_regular(file, 1 << 20).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn parses_boot_log_lines() {
        assert_eq!(
            parse_boot_line(
                "2026-11-28T10:30:00Z profile=work prior_state=startup_failed action=registered prior_exit=unknown"
            ),
            Some(("work".into(), "startup_failed".into()))
        );
        assert_eq!(parse_boot_line("garbage"), None);
        assert_eq!(parse_boot_line(""), None);
    }

    #[test]
    fn boot_history_reads_the_rotated_log_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let line = |p: &str, s: &str| {
            format!(
                "2026-11-28T10:30:00Z profile={p} prior_state={s} action=registered prior_exit=unknown\n"
            )
        };
        std::fs::write(
            dir.path().join("logs/container-boot.log.1"),
            line("a", "running") + &line("a", "startup_failed"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("logs/container-boot.log"),
            line("a", "startup_failed") + &line("b", "None") + &line("a", "startup_failed"),
        )
        .unwrap();
        let history = boot_history(dir.path());
        assert_eq!(
            history["a"],
            [
                "running",
                "startup_failed",
                "startup_failed",
                "startup_failed"
            ]
        );
        assert_eq!(history["b"], ["None"]);
    }

    #[test]
    fn formats_lines() {
        assert_eq!(
            line(
                "2026-11-28T10:00:00Z",
                "alpha",
                Some("running"),
                "started",
                "unclean"
            ),
            "2026-11-28T10:00:00Z profile=alpha prior_state=running action=started prior_exit=unclean\n"
        );
        assert_eq!(
            line("T", "beta", None, "registered", "unknown"),
            "T profile=beta prior_state=None action=registered prior_exit=unknown\n"
        );
        // A state value cannot break the line.
        assert_eq!(
            line("T", "x", Some("a\nT profile=evil"), "skipped", "unknown"),
            "T profile=x prior_state=a\\x0aT\\x20profile\\x3devil action=skipped prior_exit=unknown\n"
        );
    }

    #[test]
    fn appends_and_creates_the_logs_dirs() {
        let home = tempfile::tempdir().unwrap();
        let path = append(home.path(), "one\n").unwrap();
        assert_eq!(path, home.path().join("logs/container-boot.log"));
        append(home.path(), "two\nthree\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
        assert!(home.path().join("logs/gateways").is_dir());
    }

    #[test]
    fn rotates_at_256_kib_before_appending() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("logs")).unwrap();
        let log = home.path().join("logs/container-boot.log");
        let rotated = home.path().join("logs/container-boot.log.1");
        std::fs::write(&log, vec![b'x'; ROTATE_AT as usize - 1]).unwrap();
        std::fs::write(&rotated, "older\n").unwrap();
        append(home.path(), "a\n").unwrap();
        // Just below the limit: appended, not rotated.
        assert_eq!(std::fs::metadata(&log).unwrap().len(), ROTATE_AT + 1);
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "older\n");
        append(home.path(), "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "b\n");
        assert_eq!(std::fs::metadata(&rotated).unwrap().len(), ROTATE_AT + 1);
    }

    #[test]
    fn refuses_symlinks() {
        let home = tempfile::tempdir().unwrap();
        let victim = home.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::create_dir(home.path().join("logs")).unwrap();
        symlink(&victim, home.path().join("logs/container-boot.log")).unwrap();
        let err = append(home.path(), "x\n").unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");

        let other = tempfile::tempdir().unwrap();
        let elsewhere = other.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, other.path().join("logs")).unwrap();
        let err = append(other.path(), "x\n").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
    }

    #[test]
    fn refuses_a_log_that_is_not_a_regular_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("logs/container-boot.log")).unwrap();
        assert!(matches!(
            append(home.path(), "x\n").unwrap_err(),
            Error::UnsafePath { .. }
        ));
        let fifo_home = tempfile::tempdir().unwrap();
        std::fs::create_dir(fifo_home.path().join("logs")).unwrap();
        nix::unistd::mkfifo(
            &fifo_home.path().join("logs/container-boot.log"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(matches!(
            append(fifo_home.path(), "x\n").unwrap_err(),
            Error::UnsafePath { .. }
        ));
    }
}
