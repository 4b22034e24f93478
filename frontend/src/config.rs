//! Every path the frontend reads or hands to the helper, in one place.
//!
//! Built from the environment by [`Config::from_env`]; tests and the
//! container emulation build it from their own values with
//! [`Config::from_lookup`] or by filling the fields directly.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::profile::{ProfileName, is_valid_profile_name};
use crate::vocabulary::ControlMode;

/// `$HERMES_HOME` when the variable is unset.
pub const DEFAULT_HERMES_HOME: &str = "/opt/data";
/// The s6 scan directory of the container.
pub const DEFAULT_SCAN_DIR: &str = "/run/service";
/// Where the image installs the setuid helper.
pub const DEFAULT_HELPER: &str = "/usr/libexec/hermes-s6-helper";
/// Where the root service `hermes-s6-helperd` serves the helper (the
/// socket transport, for containers where setuid cannot work).
pub const DEFAULT_HELPER_SOCKET: &str = "/run/hermes-s6/helper.sock";
/// s6's client of that socket.
pub const DEFAULT_SOCKET_CLIENT: &str = "/command/s6-sudo";
/// The unprivileged user every Hermes process runs as, and its group.
pub const DEFAULT_HERMES_USER: &str = "hermes";

pub const ENV_HERMES_HOME: &str = "HERMES_HOME";
pub const ENV_HELPER: &str = "HERMES_S6_HELPER";
pub const ENV_SCAN_DIR: &str = "HERMES_S6_SCANDIR";
pub const ENV_HELPER_SOCKET: &str = "HERMES_S6_HELPER_SOCKET";
/// `1`, `true` or `yes`: use the socket transport even where setuid works.
pub const ENV_NO_SETUID: &str = "HERMES_S6_NO_SETUID";

/// Name of the per-profile state file shared with the gateway.
pub const STATE_FILE: &str = "gateway_state.json";
/// Name of the marker that tells a gateway its next SIGTERM is a planned stop.
pub const PLANNED_STOP_MARKER: &str = ".gateway-planned-stop.json";
/// The file that makes a directory under `profiles/` a real profile.
pub const PROFILE_SEED_FILE: &str = "SOUL.md";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The root home (`default`'s home). When `$HERMES_HOME` points at a
    /// profile directory (`…/profiles/<name>`), this is the root above it.
    pub hermes_home: PathBuf,
    /// The profile `$HERMES_HOME` selects: `<name>` for `…/profiles/<name>`,
    /// `default` otherwise. Commands act on it when no profile is named.
    pub active_profile: ProfileName,
    /// Scan directory read for status and the list of slots. Control goes
    /// through the helper, which has its own compiled-in scan directory.
    pub scan_dir: PathBuf,
    /// The helper, executed (setuid, or by root) or served over
    /// `helper_socket`, for every control operation.
    pub helper: PathBuf,
    /// The helper's socket (`hermes-s6-helperd`).
    pub helper_socket: PathBuf,
    /// The program that talks to `helper_socket` (`s6-sudo`).
    pub socket_client: PathBuf,
    /// `HERMES_S6_NO_SETUID`: the socket transport only, even where setuid
    /// works.
    pub force_socket: bool,
    /// The transport to use instead of choosing one per process (tests and
    /// programs that know; `None` from the environment).
    pub control_mode: Option<ControlMode>,
    /// procfs mount, read for a gateway's start time (planned-stop marker).
    pub proc_dir: PathBuf,
    /// The user every Hermes process runs as; its group of the same name
    /// may read gateway status and use the helper.
    pub hermes_user: String,
}

impl Config {
    /// Reads `HERMES_HOME`, `HERMES_S6_HELPER`, `HERMES_S6_HELPER_SOCKET`,
    /// `HERMES_S6_NO_SETUID` and `HERMES_S6_SCANDIR`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Builds the configuration from any variable source; an empty value
    /// counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let home = var(ENV_HERMES_HOME)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HERMES_HOME));
        let (hermes_home, active_profile) = split_profile_home(&home);
        Self {
            hermes_home,
            active_profile,
            scan_dir: var(ENV_SCAN_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SCAN_DIR)),
            helper: var(ENV_HELPER)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_HELPER)),
            helper_socket: var(ENV_HELPER_SOCKET)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_HELPER_SOCKET)),
            socket_client: PathBuf::from(DEFAULT_SOCKET_CLIENT),
            force_socket: var(ENV_NO_SETUID).is_some_and(|v| {
                matches!(
                    v.to_string_lossy().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes"
                )
            }),
            control_mode: None,
            proc_dir: PathBuf::from("/proc"),
            hermes_user: DEFAULT_HERMES_USER.to_owned(),
        }
    }

    /// `$HERMES_HOME` for `default`, `$HERMES_HOME/profiles/<p>` otherwise.
    pub fn profile_home(&self, profile: &ProfileName) -> PathBuf {
        if profile.is_default() {
            self.hermes_home.clone()
        } else {
            self.profiles_dir().join(profile.as_str())
        }
    }

    /// `$HERMES_HOME/profiles`.
    pub fn profiles_dir(&self) -> PathBuf {
        self.hermes_home.join("profiles")
    }

    pub fn state_file(&self, profile: &ProfileName) -> PathBuf {
        self.profile_home(profile).join(STATE_FILE)
    }

    /// `<scan dir>/gateway-<p>`.
    pub fn slot_dir(&self, profile: &ProfileName) -> PathBuf {
        self.scan_dir.join(profile.service_name())
    }

    /// The gateway's current log file, written by its s6-log logger.
    pub fn log_file(&self, profile: &ProfileName) -> PathBuf {
        self.hermes_home
            .join("logs/gateways")
            .join(profile.as_str())
            .join("current")
    }

    /// Whether `profile` exists on the volume: the root home for `default`,
    /// a directory holding `SOUL.md` for any other profile. A profile that
    /// does not exist never gets a slot implicitly.
    pub fn profile_exists(&self, profile: &ProfileName) -> bool {
        let home = self.profile_home(profile);
        if profile.is_default() {
            home.is_dir()
        } else {
            // symlink_metadata: a symlinked profile directory is not a profile.
            std::fs::symlink_metadata(&home).is_ok_and(|m| m.is_dir())
                && home.join(PROFILE_SEED_FILE).is_file()
        }
    }
}

/// Splits `…/profiles/<name>` into the root home and `<name>`; any other
/// path is the root home itself and selects `default`.
fn split_profile_home(home: &Path) -> (PathBuf, ProfileName) {
    let mut components: Vec<Component<'_>> = home.components().collect();
    // `components()` already drops trailing slashes and inner `.`.
    let name = match components.last() {
        Some(Component::Normal(name)) => name.to_str(),
        _ => None,
    };
    let parent_is_profiles = components.len() >= 2
        && matches!(components[components.len() - 2], Component::Normal(dir) if dir == "profiles");
    match name {
        Some(name) if parent_is_profiles && is_valid_profile_name(name) && name != "default" => {
            let profile = ProfileName::new(name).unwrap_or_else(|_| ProfileName::default_profile());
            components.truncate(components.len() - 2);
            let root: PathBuf = components.iter().collect();
            let root = if root.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                root
            };
            (root, profile)
        }
        _ => (home.to_path_buf(), ProfileName::default_profile()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn profile(name: &str) -> ProfileName {
        ProfileName::new(name).unwrap()
    }

    #[test]
    fn defaults() {
        let c = config(&[]);
        assert_eq!(c.hermes_home, Path::new("/opt/data"));
        assert_eq!(c.scan_dir, Path::new("/run/service"));
        assert_eq!(c.helper, Path::new("/usr/libexec/hermes-s6-helper"));
        assert!(c.active_profile.is_default());
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let c = config(&[
            ("HERMES_HOME", ""),
            ("HERMES_S6_SCANDIR", ""),
            ("HERMES_S6_HELPER", ""),
        ]);
        assert_eq!(c, config(&[]));
    }

    #[test]
    fn overrides() {
        let c = config(&[
            ("HERMES_HOME", "/data"),
            ("HERMES_S6_SCANDIR", "/tmp/scan"),
            ("HERMES_S6_HELPER", "/tmp/helper"),
        ]);
        assert_eq!(c.hermes_home, Path::new("/data"));
        assert_eq!(c.scan_dir, Path::new("/tmp/scan"));
        assert_eq!(c.helper, Path::new("/tmp/helper"));
    }

    #[test]
    fn maps_profiles_to_homes_slots_and_logs() {
        let c = config(&[("HERMES_HOME", "/opt/data")]);
        assert_eq!(c.profile_home(&profile("default")), Path::new("/opt/data"));
        assert_eq!(
            c.profile_home(&profile("work")),
            Path::new("/opt/data/profiles/work")
        );
        assert_eq!(
            c.state_file(&profile("work")),
            Path::new("/opt/data/profiles/work/gateway_state.json")
        );
        assert_eq!(
            c.state_file(&profile("default")),
            Path::new("/opt/data/gateway_state.json")
        );
        assert_eq!(
            c.slot_dir(&profile("work")),
            Path::new("/run/service/gateway-work")
        );
        assert_eq!(
            c.log_file(&profile("work")),
            Path::new("/opt/data/logs/gateways/work/current")
        );
    }

    #[test]
    fn a_home_that_is_a_profile_dir_resolves_to_its_root() {
        for home in [
            "/opt/data/profiles/work",
            "/opt/data/profiles/work/",
            "/opt/data/./profiles/work",
        ] {
            let c = config(&[("HERMES_HOME", home)]);
            assert_eq!(c.hermes_home, Path::new("/opt/data"), "{home}");
            assert_eq!(c.active_profile, profile("work"), "{home}");
            assert_eq!(
                c.profile_home(&profile("default")),
                Path::new("/opt/data"),
                "{home}"
            );
            assert_eq!(
                c.profile_home(&profile("other")),
                Path::new("/opt/data/profiles/other")
            );
        }
    }

    #[test]
    fn only_a_profile_shaped_path_is_taken_for_a_profile_dir() {
        for home in [
            "/srv/profiles",
            "/srv/profiles/Not-A-Name",
            "/srv/profiles/default",
            "/srv/notprofiles/work",
        ] {
            let c = config(&[("HERMES_HOME", home)]);
            assert_eq!(c.hermes_home, Path::new(home), "{home}");
            assert!(c.active_profile.is_default(), "{home}");
        }
        let c = config(&[("HERMES_HOME", "profiles/work")]);
        assert_eq!(c.hermes_home, Path::new("."));
    }

    #[test]
    fn a_profile_exists_only_with_its_seed_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(&[("HERMES_HOME", dir.path().to_str().unwrap())]);
        assert!(c.profile_exists(&profile("default")));
        assert!(!c.profile_exists(&profile("typo")));
        let work = dir.path().join("profiles/work");
        std::fs::create_dir_all(&work).unwrap();
        assert!(!c.profile_exists(&profile("work")));
        std::fs::write(work.join("SOUL.md"), "").unwrap();
        assert!(c.profile_exists(&profile("work")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&work, dir.path().join("profiles/alias")).unwrap();
            assert!(!c.profile_exists(&profile("alias")));
        }
    }
}
