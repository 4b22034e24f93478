//! Reading everything the plan depends on, changing nothing: the root
//! home, every entry under `$HERMES_HOME/profiles/`, and the slots already
//! in the scan directory.
//!
//! The volume is writable by the hermes user, so nothing below
//! `$HERMES_HOME` is reached through a symbolic link: entries are examined
//! with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened with `O_NOFOLLOW` relative
//! to the descriptor of their directory.

use crate::s6::installation::count_services;
use crate::s6::limit::ServiceLimit;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};
use serde_json::{Map, Value};

use crate::config::{Config, PROFILE_SEED_FILE, STATE_FILE};
use crate::nofollow::{self, OpenDirError, file_type, stat_at};
use crate::profile::ProfileName;
use crate::s6::supervise;
use crate::state::{parse_state_object, read_regular_file};

/// Runtime files a gateway leaves in its home; after a container restart
/// they name processes of a PID namespace that no longer exists.
pub const STALE_FILES: [&str; 2] = ["gateway.pid", "processes.json"];

/// What a profile's `gateway_state.json` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum StateFile {
    /// There is none.
    Missing,
    /// A JSON object (an optional UTF-8 BOM stripped).
    Object(Map<String, Value>),
    /// It exists but cannot be used: corrupt, not an object, a symbolic
    /// link, not a regular file, unreadable or oversized. Why, in words.
    Unusable(String),
}

impl StateFile {
    /// A string field of the object, if there is one.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self {
            Self::Object(map) => map.get(key).and_then(Value::as_str),
            _ => None,
        }
    }
}

/// What was found in one profile home.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeFacts {
    pub state: StateFile,
    /// Which of [`STALE_FILES`] exist (whatever their type).
    pub stale_files: Vec<&'static str>,
    /// `phase` of the gateway's lifecycle ledger
    /// ([`LIFECYCLE_LEDGER`]), when it has one.
    pub lifecycle_phase: Option<String>,
}

/// The gateway's lifecycle ledger below its home: `phase` is `running`
/// while a life runs and `exited` once it ended cleanly.
pub const LIFECYCLE_LEDGER: (&str, &str) = ("state", "gateway.lifecycle.json");

/// One entry of `$HERMES_HOME/profiles/`.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryFacts {
    /// A directory. Its home is read only when it holds the seed file
    /// (`SOUL.md`) and its name is a valid profile name.
    Dir {
        has_seed: bool,
        home: Option<HomeFacts>,
    },
    /// A symbolic link: never followed.
    Symlink,
    /// A regular file, FIFO, socket or device.
    NotADirectory,
    /// It could not be examined; why.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: OsString,
    pub facts: EntryFacts,
}

/// `$HERMES_HOME/profiles` itself.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfilesDir {
    Missing,
    Symlink,
    Unreadable(String),
    /// Its entries, sorted by name (bytes).
    Entries(Vec<Entry>),
}

/// A slot already in the scan directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFacts {
    /// Supervised and its gateway process runs.
    pub up: bool,
}

/// Everything the plan is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub hermes_home: PathBuf,
    /// The root profile's home; `Err` says why it could not be read.
    pub root: Result<HomeFacts, String>,
    pub profiles_dir: ProfilesDir,
    /// Gateway slots in the scan directory; `Err` when it could not be
    /// listed (then every profile is registered and the helper sorts out
    /// which exist).
    pub slots: Result<BTreeMap<ProfileName, SlotFacts>, String>,
    /// s6-svscan's service limit and what the scan directory takes of it;
    /// `None` when it cannot be counted (the helper still refuses to go
    /// past the limit).
    pub room: Option<Room>,
}

/// What s6-svscan supervises at most, and the services it has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub limit: ServiceLimit,
    pub used: u32,
}

impl Survey {
    /// Reads the volume and the scan directory of `config`.
    pub fn read(config: &Config) -> Self {
        let home = &config.hermes_home;
        // The scan dir is read while the volume is.
        let (slots, (root, profiles_dir)) = std::thread::scope(|scope| {
            let slots = scope.spawn(|| read_slots(&config.scan_dir));
            let volume = match File::open(home) {
                Ok(file) => {
                    let fd = OwnedFd::from(file);
                    (Ok(read_home(&fd)), read_profiles_dir(&fd))
                }
                Err(e) => {
                    let why = format!("cannot open {}: {e}", home.display());
                    (Err(why.clone()), ProfilesDir::Unreadable(why))
                }
            };
            let slots = slots
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (slots, volume)
        });
        let limit = ServiceLimit::of_pid1();
        let room =
            count_services(&config.scan_dir, limit.counts_loggers).map(|used| Room { limit, used });
        Self {
            hermes_home: home.clone(),
            root,
            profiles_dir,
            slots,
            room,
        }
    }
}

/// Reads the state file and looks for stale runtime files in a home.
pub fn read_home(dir: &impl AsFd) -> HomeFacts {
    let stale_files = STALE_FILES
        .into_iter()
        .filter(|name| {
            // Anything that exists (or cannot be examined) is a candidate;
            // removal reports what it could not do.
            !matches!(stat_at(dir, OsStr::new(name)), Ok(None))
        })
        .collect();
    HomeFacts {
        state: read_state(dir),
        stale_files,
        lifecycle_phase: read_lifecycle_phase(dir),
    }
}

/// `phase` of the lifecycle ledger, read without following links; `None`
/// for anything unreadable (forensics never stop a boot).
fn read_lifecycle_phase(home: &impl AsFd) -> Option<String> {
    let (dir, file) = LIFECYCLE_LEDGER;
    let state_dir = nofollow::open_dir_at(home, OsStr::new(dir)).ok()?;
    let file = nofollow::open_file_at(&state_dir, file).ok()?;
    let bytes = read_regular_file(file).ok()?;
    if bytes.len() as u64 > crate::state::MAX_STATE_FILE {
        return None;
    }
    parse_state_object(&bytes)?
        .get("phase")?
        .as_str()
        .map(str::to_owned)
}

fn read_state(dir: &impl AsFd) -> StateFile {
    let file = match nofollow::open_file_at(dir, STATE_FILE) {
        Ok(file) => file,
        Err(Errno::ENOENT) => return StateFile::Missing,
        Err(Errno::ELOOP) => {
            return StateFile::Unusable(format!("{STATE_FILE} is a symbolic link"));
        }
        Err(e) => return StateFile::Unusable(format!("cannot open {STATE_FILE}: {e}")),
    };
    match read_regular_file(file) {
        Ok(bytes) if bytes.len() as u64 > crate::state::MAX_STATE_FILE => {
            StateFile::Unusable(format!("{STATE_FILE} is larger than 1 MiB"))
        }
        Ok(bytes) => match parse_state_object(&bytes) {
            Some(map) => StateFile::Object(map),
            None => StateFile::Unusable(format!("{STATE_FILE} is not a JSON object")),
        },
        Err(e) => StateFile::Unusable(format!("cannot read {STATE_FILE}: {e}")),
    }
}

fn read_profiles_dir(home: &impl AsFd) -> ProfilesDir {
    let profiles = match nofollow::open_dir_at(home, OsStr::new("profiles")) {
        Ok(fd) => fd,
        Err(OpenDirError::Other(Errno::ENOENT)) => return ProfilesDir::Missing,
        Err(OpenDirError::Symlink(_)) => return ProfilesDir::Symlink,
        Err(OpenDirError::NotADirectory) => {
            return ProfilesDir::Unreadable("profiles is not a directory".into());
        }
        Err(OpenDirError::Other(e)) => {
            return ProfilesDir::Unreadable(format!("cannot open profiles: {e}"));
        }
    };
    let names = match list(&profiles) {
        Ok(names) => names,
        Err(e) => return ProfilesDir::Unreadable(format!("cannot list profiles: {e}")),
    };
    // A boot with hundreds of profiles spends its survey in small reads:
    // they are spread over the available cores, order kept.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = names.len().div_ceil(workers).max(64);
    let profiles = &profiles;
    let entries = std::thread::scope(|scope| {
        let parts: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|name| Entry {
                            name: name.clone(),
                            facts: examine(profiles, name),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    ProfilesDir::Entries(entries)
}

/// The names in a directory, without `.` and `..`, sorted by bytes.
fn list(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut reader = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in reader.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn examine(profiles: &OwnedFd, name: &OsStr) -> EntryFacts {
    let st = match stat_at(profiles, name) {
        Ok(Some(st)) => st,
        // Gone since it was listed.
        Ok(None) => return EntryFacts::NotADirectory,
        Err(e) => return EntryFacts::Unreadable(format!("cannot examine it: {e}")),
    };
    match file_type(&st) {
        SFlag::S_IFDIR => {}
        SFlag::S_IFLNK => return EntryFacts::Symlink,
        _ => return EntryFacts::NotADirectory,
    }
    let dir = match nofollow::open_dir_at(profiles, name) {
        Ok(fd) => fd,
        // Replaced by a symbolic link since it was examined.
        Err(OpenDirError::Symlink(_)) => return EntryFacts::Symlink,
        Err(OpenDirError::NotADirectory) => return EntryFacts::NotADirectory,
        Err(OpenDirError::Other(e)) => {
            return EntryFacts::Unreadable(format!("cannot open it: {e}"));
        }
    };
    // Like `Config::profile_exists`: the seed file is a regular file (a
    // link to one counts; only its type is looked at).
    let has_seed = match fstatat(&dir, PROFILE_SEED_FILE, AtFlags::empty()) {
        Ok(st) => file_type(&st) == SFlag::S_IFREG,
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => false,
        Err(e) => {
            return EntryFacts::Unreadable(format!("cannot examine {PROFILE_SEED_FILE}: {e}"));
        }
    };
    let valid_name = name
        .to_str()
        .is_some_and(crate::profile::is_valid_profile_name);
    EntryFacts::Dir {
        has_seed,
        home: (has_seed && valid_name).then(|| read_home(&dir)),
    }
}

/// Gateway slots in the scan directory and whether each gateway is up.
fn read_slots(scan_dir: &Path) -> Result<BTreeMap<ProfileName, SlotFacts>, String> {
    let entries = std::fs::read_dir(scan_dir)
        .map_err(|e| format!("cannot list {}: {e}", scan_dir.display()))?;
    let mut slots = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(profile) = entry
            .file_name()
            .to_str()
            .and_then(ProfileName::from_service_name)
        else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let slot = entry.path();
        let up = supervise::is_up(&slot).unwrap_or(false);
        slots.insert(profile, SlotFacts { up });
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn config(root: &Path) -> Config {
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = root.join("data");
        config.scan_dir = root.join("service");
        std::fs::create_dir_all(&config.hermes_home).unwrap();
        config
    }

    fn profile(config: &Config, name: &str, seed: bool) -> PathBuf {
        let dir = config.hermes_home.join("profiles").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if seed {
            std::fs::write(dir.join("SOUL.md"), "").unwrap();
        }
        dir
    }

    fn entry<'a>(survey: &'a Survey, name: &str) -> &'a EntryFacts {
        let ProfilesDir::Entries(entries) = &survey.profiles_dir else {
            panic!("{:?}", survey.profiles_dir);
        };
        &entries.iter().find(|e| e.name == name).unwrap().facts
    }

    #[test]
    fn reads_homes_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path());
        std::fs::write(
            c.hermes_home.join("gateway_state.json"),
            b"\xEF\xBB\xBF{\"desired_state\":\"running\"}",
        )
        .unwrap();
        std::fs::write(c.hermes_home.join("gateway.pid"), "1").unwrap();
        let work = profile(&c, "work", true);
        std::fs::write(work.join("gateway_state.json"), "{corrupt").unwrap();
        symlink("/nonexistent", work.join("processes.json")).unwrap();
        let linked = profile(&c, "linked-target", true);
        symlink(&linked, c.hermes_home.join("profiles/linked")).unwrap();
        std::fs::write(c.hermes_home.join("profiles/file"), "").unwrap();
        profile(&c, "noseed", false);
        let bad = profile(&c, "Bad_Name", true);
        std::fs::write(bad.join("gateway_state.json"), "{}").unwrap();
        let state_link = profile(&c, "statelink", true);
        symlink(
            c.hermes_home.join("gateway_state.json"),
            state_link.join("gateway_state.json"),
        )
        .unwrap();

        let survey = Survey::read(&c);
        let root = survey.root.as_ref().unwrap();
        assert_eq!(root.state.text("desired_state"), Some("running"));
        assert_eq!(root.stale_files, ["gateway.pid"]);
        assert!(survey.slots.is_err());

        let ProfilesDir::Entries(entries) = &survey.profiles_dir else {
            panic!();
        };
        let names: Vec<_> = entries.iter().map(|e| e.name.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Bad_Name",
                "file",
                "linked",
                "linked-target",
                "noseed",
                "statelink",
                "work"
            ]
        );
        let EntryFacts::Dir {
            has_seed: true,
            home: Some(home),
        } = entry(&survey, "work")
        else {
            panic!()
        };
        assert!(
            matches!(home.state, StateFile::Unusable(ref why) if why.contains("not a JSON object"))
        );
        assert_eq!(home.stale_files, ["processes.json"]);
        assert_eq!(entry(&survey, "linked"), &EntryFacts::Symlink);
        assert_eq!(entry(&survey, "file"), &EntryFacts::NotADirectory);
        assert_eq!(
            entry(&survey, "noseed"),
            &EntryFacts::Dir {
                has_seed: false,
                home: None
            }
        );
        // An invalid name is never read.
        assert_eq!(
            entry(&survey, "Bad_Name"),
            &EntryFacts::Dir {
                has_seed: true,
                home: None
            }
        );
        let EntryFacts::Dir {
            home: Some(home), ..
        } = entry(&survey, "statelink")
        else {
            panic!()
        };
        assert!(
            matches!(home.state, StateFile::Unusable(ref why) if why.contains("symbolic link"))
        );
    }

    #[test]
    fn a_symlinked_profiles_dir_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path());
        std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
        symlink(tmp.path().join("elsewhere"), c.hermes_home.join("profiles")).unwrap();
        assert_eq!(Survey::read(&c).profiles_dir, ProfilesDir::Symlink);
        std::fs::remove_file(c.hermes_home.join("profiles")).unwrap();
        assert_eq!(Survey::read(&c).profiles_dir, ProfilesDir::Missing);
    }

    #[test]
    fn lists_gateway_slots() {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path());
        for name in [
            "gateway-a",
            "gateway-default",
            "main-hermes",
            ".gateway-b.new",
        ] {
            std::fs::create_dir_all(c.scan_dir.join(name)).unwrap();
        }
        let slots = Survey::read(&c).slots.unwrap();
        let names: Vec<_> = slots.keys().map(ProfileName::as_str).collect();
        assert_eq!(names, ["a", "default"]);
        assert!(slots.values().all(|s| !s.up));
    }

    #[test]
    fn a_missing_home_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(tmp.path());
        c.hermes_home = tmp.path().join("absent");
        let survey = Survey::read(&c);
        assert!(survey.root.is_err());
        assert!(matches!(survey.profiles_dir, ProfilesDir::Unreadable(_)));
    }
}
