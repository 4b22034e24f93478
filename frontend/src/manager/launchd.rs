//! macOS hosts: one launchd user agent per gateway, labelled
//! `ai.hermes.gateway` for the root profile and `ai.hermes.gateway-<profile>`
//! for the others, with its plist in `~/Library/LaunchAgents/`.
//!
//! The command builders are plain functions compiled everywhere so they are
//! tested on every platform; the backend itself exists only on macOS.

use std::path::{Path, PathBuf};

use crate::manager::HostCommand;
use crate::profile::ProfileName;

const LABEL_BASE: &str = "ai.hermes.gateway";

pub fn label(profile: &ProfileName) -> String {
    if profile.is_default() {
        LABEL_BASE.to_owned()
    } else {
        format!("{LABEL_BASE}-{profile}")
    }
}

/// The profile a launchd label belongs to, if it is a gateway's.
pub fn profile_of_label(label: &str) -> Option<ProfileName> {
    if label == LABEL_BASE {
        return Some(ProfileName::default_profile());
    }
    let name = label.strip_prefix(LABEL_BASE)?.strip_prefix('-')?;
    ProfileName::new(name).ok().filter(|p| !p.is_default())
}

/// `gui/<uid>/<label>`: the agent in the user's login session domain.
pub fn service_target(uid: u32, profile: &ProfileName) -> String {
    format!("gui/{uid}/{}", label(profile))
}

pub fn plist_path(home: &Path, profile: &ProfileName) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{}.plist", label(profile)))
}

/// Loads the agent (a no-op failure when it is loaded already), then
/// starts it.
pub fn start_commands(uid: u32, home: &Path, profile: &ProfileName) -> [HostCommand; 2] {
    [
        HostCommand::new(
            "launchctl",
            [
                "bootstrap".to_owned(),
                format!("gui/{uid}"),
                plist_path(home, profile).display().to_string(),
            ],
        ),
        HostCommand::new(
            "launchctl",
            ["kickstart".to_owned(), service_target(uid, profile)],
        ),
    ]
}

/// Unloads the agent: a plain kill would be undone by `KeepAlive`.
pub fn stop_command(uid: u32, profile: &ProfileName) -> HostCommand {
    HostCommand::new(
        "launchctl",
        ["bootout".to_owned(), service_target(uid, profile)],
    )
}

/// Kills and restarts the running agent.
pub fn restart_command(uid: u32, profile: &ProfileName) -> HostCommand {
    HostCommand::new(
        "launchctl",
        [
            "kickstart".to_owned(),
            "-k".to_owned(),
            service_target(uid, profile),
        ],
    )
}

pub fn print_command(uid: u32, profile: &ProfileName) -> HostCommand {
    HostCommand::new(
        "launchctl",
        ["print".to_owned(), service_target(uid, profile)],
    )
}

/// Whether `launchctl print` output says `state = running`.
pub fn printed_state_is_running(print: &str) -> bool {
    print.lines().any(|line| {
        line.trim()
            .strip_prefix("state")
            .map(|rest| rest.trim_start().strip_prefix('=').map(str::trim) == Some("running"))
            .unwrap_or(false)
    })
}

pub fn list_command() -> HostCommand {
    HostCommand::new("launchctl", ["list"])
}

/// Gateway profiles in `launchctl list` output (`PID Status Label`).
pub fn parse_list(listing: &str) -> Vec<ProfileName> {
    let mut profiles: Vec<ProfileName> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .filter_map(profile_of_label)
        .collect();
    profiles.sort();
    profiles.dedup();
    profiles
}

#[cfg(target_os = "macos")]
pub use self::backend::LaunchdManager;

#[cfg(target_os = "macos")]
mod backend {
    use std::path::PathBuf;

    use super::*;
    use crate::error::Error;
    use crate::manager::{ServiceManager, ServiceManagerKind, dedup};
    use crate::outcome::ProfileOutcomes;

    #[derive(Debug, Clone)]
    pub struct LaunchdManager {
        uid: u32,
        home: PathBuf,
    }

    impl LaunchdManager {
        pub fn new() -> Self {
            Self {
                uid: nix::unistd::getuid().as_raw(),
                home: std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            }
        }

        fn start_one(&self, profile: &ProfileName) -> Result<(), Error> {
            let [bootstrap, kickstart] = start_commands(self.uid, &self.home, profile);
            // Fails when the agent is loaded already, which is fine.
            let _ = bootstrap.output();
            kickstart.run().map(drop)
        }
    }

    impl ServiceManager for LaunchdManager {
        fn kind(&self) -> ServiceManagerKind {
            ServiceManagerKind::Launchd
        }

        fn start(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(dedup(profiles)
                .into_iter()
                .map(|p| {
                    let result = self.start_one(&p);
                    (p, result)
                })
                .collect())
        }

        fn stop(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(dedup(profiles)
                .into_iter()
                .map(|p| {
                    let result = stop_command(self.uid, &p).run().map(drop);
                    (p, result)
                })
                .collect())
        }

        fn restart(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(dedup(profiles)
                .into_iter()
                .map(|p| {
                    let result = if self.is_running(&p).unwrap_or(false) {
                        restart_command(self.uid, &p).run().map(drop)
                    } else {
                        self.start_one(&p)
                    };
                    (p, result)
                })
                .collect())
        }

        fn is_running(&self, profile: &ProfileName) -> Result<bool, Error> {
            let output = print_command(self.uid, profile).output()?;
            Ok(output.status.success()
                && printed_state_is_running(&String::from_utf8_lossy(&output.stdout)))
        }

        fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error> {
            let output = list_command().run()?;
            Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> ProfileName {
        ProfileName::new(name).unwrap()
    }

    #[test]
    fn labels() {
        assert_eq!(label(&p("default")), "ai.hermes.gateway");
        assert_eq!(label(&p("work")), "ai.hermes.gateway-work");
        assert_eq!(profile_of_label("ai.hermes.gateway"), Some(p("default")));
        assert_eq!(profile_of_label("ai.hermes.gateway-work"), Some(p("work")));
        assert_eq!(profile_of_label("ai.hermes.gateway-default"), None);
        assert_eq!(profile_of_label("ai.hermes.gatewayx"), None);
        assert_eq!(profile_of_label("com.apple.x"), None);
    }

    #[test]
    fn builds_launchctl_commands() {
        let home = Path::new("/Users/ann");
        let [bootstrap, kickstart] = start_commands(501, home, &p("work"));
        assert_eq!(
            bootstrap.to_string(),
            "launchctl bootstrap gui/501 /Users/ann/Library/LaunchAgents/ai.hermes.gateway-work.plist"
        );
        assert_eq!(
            kickstart.to_string(),
            "launchctl kickstart gui/501/ai.hermes.gateway-work"
        );
        assert_eq!(
            stop_command(501, &p("default")).to_string(),
            "launchctl bootout gui/501/ai.hermes.gateway"
        );
        assert_eq!(
            restart_command(501, &p("work")).to_string(),
            "launchctl kickstart -k gui/501/ai.hermes.gateway-work"
        );
        assert_eq!(
            print_command(501, &p("work")).to_string(),
            "launchctl print gui/501/ai.hermes.gateway-work"
        );
        assert_eq!(list_command().to_string(), "launchctl list");
    }

    #[test]
    fn parses_launchctl_output() {
        let print = "gui/501/ai.hermes.gateway = {\n\tactive count = 1\n\tstate = running\n}\n";
        assert!(printed_state_is_running(print));
        assert!(!printed_state_is_running("\tstate = not running\n"));
        assert!(!printed_state_is_running(""));
        let listing = "PID\tStatus\tLabel\n123\t0\tai.hermes.gateway-work\n-\t0\tai.hermes.gateway\n-\t0\tcom.apple.x\n";
        assert_eq!(parse_list(listing), [p("default"), p("work")]);
    }
}
