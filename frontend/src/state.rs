//! The per-profile files shared with the gateway: `gateway_state.json` (the
//! gateway's own state plus the lifecycle intent) and the planned-stop
//! marker.
//!
//! Profile directories live on a volume the hermes user can write, and the
//! frontend may run as root (cont-init, `docker exec`). So writes go through
//! a descriptor of the profile directory opened without following symlinks,
//! files are opened `O_NOFOLLOW`, replaced by rename (which never follows the
//! target), and handed to the directory's owner when root creates them.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat, renameat2};
use nix::libc;
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, geteuid, unlinkat};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, PLANNED_STOP_MARKER, STATE_FILE};
use crate::error::Error;
use crate::profile::ProfileName;
use crate::time::iso8601_utc_micros;

/// Largest state file read; anything bigger is treated as corrupt.
pub(crate) const MAX_STATE_FILE: u64 = 1 << 20;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The lifecycle intent recorded by `start`, `stop` and `restart`, read back
/// by the boot reconciler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

impl DesiredState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// Parses a state file's bytes: an optional UTF-8 BOM, then a JSON object.
/// Anything else (not JSON, an array, a string, …) is `None`.
pub fn parse_state_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Merges the intent into an existing state object, keeping every other key
/// (and its position).
pub fn merge_desired_state(
    mut state: Map<String, Value>,
    desired: DesiredState,
    updated_at: u64,
) -> Map<String, Value> {
    state.insert("desired_state".into(), Value::from(desired.as_str()));
    state.insert("updated_at".into(), Value::from(updated_at));
    state
}

/// What `gateway_state.json` says, for status reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StateSummary {
    /// `running` / `stopped`, written by the lifecycle commands.
    pub desired_state: Option<String>,
    /// When `desired_state` was last written (Unix seconds), as written.
    pub updated_at: Option<serde_json::Number>,
    /// Written by the gateway: `starting`, `running`, `draining`,
    /// `degraded`, `stopped`, `startup_failed`.
    pub gateway_state: Option<String>,
}

/// Reads `path` for a status report. `Ok(None)` when there is no state file;
/// `Err` with a short reason when it cannot be used.
pub fn read_state_summary(path: &Path) -> Result<Option<StateSummary>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("{STATE_FILE} is a symbolic link"));
        }
        Err(e) => return Err(format!("cannot read {STATE_FILE}: {e}")),
    };
    let bytes = read_regular_file(file).map_err(|e| format!("cannot read {STATE_FILE}: {e}"))?;
    let map =
        parse_state_object(&bytes).ok_or_else(|| format!("{STATE_FILE} is not a JSON object"))?;
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(StateSummary {
        desired_state: text("desired_state"),
        updated_at: match map.get("updated_at") {
            Some(Value::Number(n)) => Some(n.clone()),
            _ => None,
        },
        gateway_state: text("gateway_state"),
    }))
}

pub(crate) fn read_regular_file(file: File) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_FILE + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The marker a gateway consumes when its SIGTERM is a planned stop: it
/// then records `stopped` and exits 0 instead of asking to be revived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStop {
    pub target_pid: u64,
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks), which
    /// tells a recycled pid from the gateway it names.
    pub target_start_time: Option<u64>,
    pub stopper_pid: u32,
    /// ISO-8601 UTC, as the gateway writes its own timestamps.
    pub written_at: String,
}

impl PlannedStop {
    pub fn for_pid(proc_dir: &Path, pid: u64, now: SystemTime) -> Self {
        Self {
            target_pid: pid,
            target_start_time: process_start_time(proc_dir, pid),
            stopper_pid: std::process::id(),
            written_at: iso8601_utc_micros(now),
        }
    }
}

/// Field 22 (`starttime`) of `<proc>/<pid>/stat`.
pub fn process_start_time(proc_dir: &Path, pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
    parse_start_time(&stat)
}

/// The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`: field 3
/// follows it, making field 22 the 20th after it.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

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
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
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
            fd = openat(&fd, component, dir_flags | OFlag::O_NOFOLLOW, Mode::empty())
                .map_err(|errno| unsafe_or_io(errno, &path, "open"))?;
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
    pub fn record_desired_state(
        &self,
        desired: DesiredState,
        updated_at: u64,
    ) -> Result<(), Error> {
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
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let file = match openat(&self.fd, STATE_FILE, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
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

    fn create_exclusive(&self, tmp_name: &str) -> Result<File, Error> {
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
        // Root (cont-init, docker exec) must not leave root-owned files in a
        // profile the gateway has to rewrite: give the file to whoever owns
        // the directory.
        if geteuid().is_root() {
            let dir = fstat(&self.fd)?;
            if dir.st_uid != 0 {
                fchown(
                    &file,
                    Some(Uid::from_raw(dir.st_uid)),
                    Some(Gid::from_raw(dir.st_gid)),
                )?;
            }
        }
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

fn unsafe_or_io(errno: Errno, path: &Path, action: &'static str) -> Error {
    match errno {
        Errno::ELOOP => Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it is a symbolic link",
        },
        // O_NOFOLLOW with O_DIRECTORY reports a symbolic link as ENOTDIR.
        Errno::ENOTDIR => Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "it is a symbolic link or not a directory",
        },
        other => Error::io(action, path, other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn home() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = dir.path().to_path_buf();
        std::fs::create_dir_all(dir.path().join("profiles/work")).unwrap();
        (dir, config)
    }

    fn work() -> ProfileName {
        ProfileName::new("work").unwrap()
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn parses_objects_with_or_without_bom() {
        let map = parse_state_object(b"\xEF\xBB\xBF{\"gateway_state\":\"running\"}").unwrap();
        assert_eq!(map["gateway_state"], "running");
        assert!(parse_state_object(b"{\"a\":1}").is_some());
        for bad in [&b"[1,2]"[..], b"\"x\"", b"null", b"{", b"", b"\xEF\xBB\xBF"] {
            assert_eq!(parse_state_object(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn merge_keeps_unknown_keys_in_place() {
        let existing = parse_state_object(
            br#"{"gateway_state":"running","pid":42,"desired_state":"stopped","extra":{"x":1}}"#,
        )
        .unwrap();
        let merged = merge_desired_state(existing, DesiredState::Running, 1700000000);
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "gateway_state",
                "pid",
                "desired_state",
                "extra",
                "updated_at"
            ]
        );
        assert_eq!(merged["desired_state"], "running");
        assert_eq!(merged["updated_at"], 1700000000);
        assert_eq!(merged["extra"]["x"], 1);
    }

    #[test]
    fn records_intent_in_a_new_file() {
        let (dir, config) = home();
        let profile_dir = ProfileDir::open(&config, &work()).unwrap();
        profile_dir
            .record_desired_state(DesiredState::Stopped, 1234)
            .unwrap();
        let written = read_json(&dir.path().join("profiles/work/gateway_state.json"));
        assert_eq!(
            written,
            serde_json::json!({"desired_state": "stopped", "updated_at": 1234})
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("profiles/work"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["gateway_state.json"]);
    }

    #[test]
    fn default_profile_writes_in_the_root_home() {
        let (dir, config) = home();
        ProfileDir::open(&config, &ProfileName::default_profile())
            .unwrap()
            .record_desired_state(DesiredState::Running, 1)
            .unwrap();
        assert_eq!(
            read_json(&dir.path().join("gateway_state.json"))["desired_state"],
            "running"
        );
    }

    #[test]
    fn keeps_unknown_keys_and_tolerates_a_bom() {
        let (dir, config) = home();
        let path = dir.path().join("profiles/work/gateway_state.json");
        std::fs::write(
            &path,
            b"\xEF\xBB\xBF{\"gateway_state\": \"draining\", \"platforms\": [\"tg\"]}",
        )
        .unwrap();
        ProfileDir::open(&config, &work())
            .unwrap()
            .record_desired_state(DesiredState::Running, 99)
            .unwrap();
        let written = read_json(&path);
        assert_eq!(written["gateway_state"], "draining");
        assert_eq!(written["platforms"][0], "tg");
        assert_eq!(written["desired_state"], "running");
        assert_eq!(written["updated_at"], 99);
    }

    #[test]
    fn replaces_a_corrupt_or_non_object_file() {
        let (dir, config) = home();
        let path = dir.path().join("profiles/work/gateway_state.json");
        for content in [&b"{not json"[..], b"[1,2,3]", b"42", b"", &[0xff; 10]] {
            std::fs::write(&path, content).unwrap();
            ProfileDir::open(&config, &work())
                .unwrap()
                .record_desired_state(DesiredState::Stopped, 5)
                .unwrap();
            assert_eq!(
                read_json(&path),
                serde_json::json!({"desired_state": "stopped", "updated_at": 5})
            );
        }
    }

    #[test]
    fn refuses_a_symlinked_state_file_and_leaves_its_target_alone() {
        let (dir, config) = home();
        let victim = dir.path().join("victim.json");
        std::fs::write(&victim, br#"{"secret":"s3cr3t"}"#).unwrap();
        let path = dir.path().join("profiles/work/gateway_state.json");
        symlink(&victim, &path).unwrap();
        let err = ProfileDir::open(&config, &work())
            .unwrap()
            .record_desired_state(DesiredState::Running, 1)
            .unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), br#"{"secret":"s3cr3t"}"#);
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(read_state_summary(&path).is_err());
    }

    #[test]
    fn refuses_a_symlinked_profile_dir_or_profiles_dir() {
        let (dir, config) = home();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, dir.path().join("profiles/linked")).unwrap();
        let err = ProfileDir::open(&config, &ProfileName::new("linked").unwrap()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");

        std::fs::rename(
            dir.path().join("profiles"),
            dir.path().join("real-profiles"),
        )
        .unwrap();
        symlink(
            dir.path().join("real-profiles"),
            dir.path().join("profiles"),
        )
        .unwrap();
        let err = ProfileDir::open(&config, &work()).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    }

    #[test]
    fn files_root_writes_belong_to_the_profile_owner() {
        if !geteuid().is_root() {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let (dir, config) = home();
        let profile = dir.path().join("profiles/work");
        std::os::unix::fs::chown(&profile, Some(10000), Some(10000)).unwrap();
        let profile_dir = ProfileDir::open(&config, &work()).unwrap();
        profile_dir
            .record_desired_state(DesiredState::Stopped, 1)
            .unwrap();
        profile_dir
            .write_planned_stop(&PlannedStop::for_pid(
                Path::new("/proc"),
                1,
                SystemTime::UNIX_EPOCH,
            ))
            .unwrap();
        for name in ["gateway_state.json", ".gateway-planned-stop.json"] {
            let meta = std::fs::metadata(profile.join(name)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (10000, 10000), "{name}");
        }
    }

    #[test]
    fn root_refuses_a_hard_linked_state_file() {
        let (dir, config) = home();
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, br#"{"secret":"s3cr3t"}"#).unwrap();
        let path = dir.path().join("profiles/work/gateway_state.json");
        std::fs::hard_link(&elsewhere, &path).unwrap();
        let result = ProfileDir::open(&config, &work())
            .unwrap()
            .record_desired_state(DesiredState::Running, 1);
        if geteuid().is_root() {
            assert!(
                matches!(result, Err(Error::UnsafePath { .. })),
                "{result:?}"
            );
            assert_eq!(
                std::fs::read(&elsewhere).unwrap(),
                br#"{"secret":"s3cr3t"}"#
            );
        } else {
            // Unprivileged, the file holds nothing the caller could not read.
            assert!(result.is_ok());
        }
    }

    #[test]
    fn refuses_a_state_file_that_is_not_a_regular_file() {
        let (dir, config) = home();
        std::fs::create_dir(dir.path().join("profiles/work/gateway_state.json")).unwrap();
        let err = ProfileDir::open(&config, &work())
            .unwrap()
            .record_desired_state(DesiredState::Running, 1)
            .unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    }

    #[test]
    fn a_planted_temporary_symlink_is_not_followed() {
        let (dir, config) = home();
        let profile_dir = ProfileDir::open(&config, &work()).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        // Whatever name the writer picks, a pre-existing entry is removed,
        // not written through; simulate by planting the writer's own name.
        let tmp = profile_dir.create_exclusive(".probe.tmp").unwrap();
        drop(tmp);
        std::fs::remove_file(dir.path().join("profiles/work/.probe.tmp")).unwrap();
        symlink(&victim, dir.path().join("profiles/work/.probe.tmp")).unwrap();
        let mut file = profile_dir.create_exclusive(".probe.tmp").unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn creates_a_state_file_only_when_there_is_none() {
        let (dir, config) = home();
        let profile_dir = ProfileDir::open(&config, &work()).unwrap();
        let mut state = Map::new();
        state.insert("gateway_state".into(), "running".into());
        assert!(profile_dir.create_state(&state).unwrap());
        let path = dir.path().join("profiles/work/gateway_state.json");
        assert_eq!(
            read_json(&path),
            serde_json::json!({"gateway_state": "running"})
        );
        state.insert("gateway_state".into(), "stopped".into());
        assert!(!profile_dir.create_state(&state).unwrap());
        assert_eq!(read_json(&path)["gateway_state"], "running");
        // A dangling symlink by that name is kept too, its target not created.
        std::fs::remove_file(&path).unwrap();
        symlink(dir.path().join("target.json"), &path).unwrap();
        assert!(!profile_dir.create_state(&state).unwrap());
        assert!(!dir.path().join("target.json").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("profiles/work"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["gateway_state.json"]);
    }

    #[test]
    fn summarizes_state_for_status() {
        let (dir, _config) = home();
        let path = dir.path().join("gateway_state.json");
        assert_eq!(read_state_summary(&path), Ok(None));
        std::fs::write(
            &path,
            br#"{"gateway_state":"running","desired_state":"running","updated_at":17.5}"#,
        )
        .unwrap();
        let summary = read_state_summary(&path).unwrap().unwrap();
        assert_eq!(summary.gateway_state.as_deref(), Some("running"));
        assert_eq!(summary.desired_state.as_deref(), Some("running"));
        assert_eq!(summary.updated_at.and_then(|n| n.as_f64()), Some(17.5));
        std::fs::write(&path, b"[]").unwrap();
        assert!(
            read_state_summary(&path)
                .unwrap_err()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn writes_the_planned_stop_marker() {
        let (dir, config) = home();
        let proc_dir = dir.path().join("proc");
        std::fs::create_dir_all(proc_dir.join("4242")).unwrap();
        let mut fields = vec!["4242", "(hermes gw) x)"];
        fields.extend(["S"; 19]);
        fields.push("987654");
        fields.extend(["0"; 30]);
        std::fs::write(proc_dir.join("4242/stat"), fields.join(" ")).unwrap();

        let marker = PlannedStop::for_pid(&proc_dir, 4242, SystemTime::UNIX_EPOCH);
        assert_eq!(marker.target_start_time, Some(987654));
        ProfileDir::open(&config, &work())
            .unwrap()
            .write_planned_stop(&marker)
            .unwrap();
        let written = read_json(&dir.path().join("profiles/work/.gateway-planned-stop.json"));
        assert_eq!(written["target_pid"], 4242);
        assert_eq!(written["target_start_time"], 987654);
        assert_eq!(written["stopper_pid"], std::process::id());
        assert_eq!(written["written_at"], "1970-01-01T00:00:00.000000+00:00");

        let gone = PlannedStop::for_pid(&proc_dir, 1, SystemTime::UNIX_EPOCH);
        assert_eq!(gone.target_start_time, None);
    }

    #[test]
    fn reads_this_process_start_time() {
        let own = process_start_time(Path::new("/proc"), u64::from(std::process::id()));
        assert!(own.is_some());
        assert_eq!(parse_start_time("1 (a) b"), None);
    }
}
