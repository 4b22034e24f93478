//! Windows hosts: one service per gateway in the service control manager,
//! `hermes-gateway` for the root profile and `hermes-gateway-<profile>` for
//! the others, driven with `sc.exe`.
//!
//! The command builders are plain functions compiled everywhere so they are
//! tested on every platform; the backend itself exists only on Windows.

use crate::manager::HostCommand;
use crate::profile::ProfileName;

const SERVICE_BASE: &str = "hermes-gateway";

pub fn service_name(profile: &ProfileName) -> String {
    if profile.is_default() {
        SERVICE_BASE.to_owned()
    } else {
        format!("{SERVICE_BASE}-{profile}")
    }
}

/// The profile a service name belongs to, if it is a gateway's.
pub fn profile_of_service(name: &str) -> Option<ProfileName> {
    if name.eq_ignore_ascii_case(SERVICE_BASE) {
        return Some(ProfileName::default_profile());
    }
    let lower = name.to_ascii_lowercase();
    let profile = lower.strip_prefix(SERVICE_BASE)?.strip_prefix('-')?;
    ProfileName::new(profile).ok().filter(|p| !p.is_default())
}

/// `sc.exe <verb> <service>` (`start`, `stop`, `query`).
pub fn sc(verb: &str, profile: &ProfileName) -> HostCommand {
    HostCommand::new("sc.exe", [verb.to_owned(), service_name(profile)])
}

/// `sc.exe query type= service state= all`: sc wants each `key=` and its
/// value as separate arguments.
pub fn list_command() -> HostCommand {
    HostCommand::new("sc.exe", ["query", "type=", "service", "state=", "all"])
}

/// Whether `sc.exe query` output shows the service `RUNNING`.
pub fn query_says_running(query: &str) -> bool {
    query.lines().any(|line| {
        let line = line.trim();
        line.starts_with("STATE") && line.contains("RUNNING")
    })
}

/// Gateway profiles in `sc.exe query` output (`SERVICE_NAME: <name>` lines).
pub fn parse_service_list(listing: &str) -> Vec<ProfileName> {
    let mut profiles: Vec<ProfileName> = listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("SERVICE_NAME:"))
        .filter_map(|name| profile_of_service(name.trim()))
        .collect();
    profiles.sort();
    profiles.dedup();
    profiles
}

#[cfg(windows)]
pub use self::backend::WindowsManager;

#[cfg(windows)]
mod backend {
    use super::*;
    use crate::error::Error;
    use crate::manager::{ServiceManager, ServiceManagerKind, dedup};
    use crate::outcome::ProfileOutcomes;

    #[derive(Debug, Clone, Copy, Default)]
    pub struct WindowsManager;

    impl WindowsManager {
        pub fn new() -> Self {
            Self
        }

        fn each(
            &self,
            profiles: &[ProfileName],
            op: impl Fn(&ProfileName) -> Result<(), Error>,
        ) -> ProfileOutcomes {
            dedup(profiles)
                .into_iter()
                .map(|p| {
                    let result = op(&p);
                    (p, result)
                })
                .collect()
        }
    }

    impl ServiceManager for WindowsManager {
        fn kind(&self) -> ServiceManagerKind {
            ServiceManagerKind::Windows
        }

        fn start(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(self.each(profiles, |p| sc("start", p).run().map(drop)))
        }

        fn stop(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(self.each(profiles, |p| sc("stop", p).run().map(drop)))
        }

        fn restart(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
            Ok(self.each(profiles, |p| {
                // Stopping a stopped service fails; starting is what counts.
                let _ = sc("stop", p).output();
                sc("start", p).run().map(drop)
            }))
        }

        fn is_running(&self, profile: &ProfileName) -> Result<bool, Error> {
            let output = sc("query", profile).output()?;
            Ok(query_says_running(&String::from_utf8_lossy(&output.stdout)))
        }

        fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error> {
            let output = list_command().run()?;
            Ok(parse_service_list(&String::from_utf8_lossy(&output.stdout)))
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
    fn names_services() {
        assert_eq!(service_name(&p("default")), "hermes-gateway");
        assert_eq!(service_name(&p("work")), "hermes-gateway-work");
        assert_eq!(profile_of_service("hermes-gateway"), Some(p("default")));
        assert_eq!(profile_of_service("Hermes-Gateway-Work"), Some(p("work")));
        assert_eq!(profile_of_service("hermes-gateway-default"), None);
        assert_eq!(profile_of_service("wuauserv"), None);
    }

    #[test]
    fn builds_sc_commands() {
        assert_eq!(
            sc("start", &p("work")).to_string(),
            "sc.exe start hermes-gateway-work"
        );
        assert_eq!(
            sc("stop", &p("default")).to_string(),
            "sc.exe stop hermes-gateway"
        );
        assert_eq!(
            list_command().args,
            ["query", "type=", "service", "state=", "all"]
        );
    }

    #[test]
    fn parses_sc_output() {
        let query = "SERVICE_NAME: hermes-gateway-work\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n        STATE              : 4  RUNNING\r\n";
        assert!(query_says_running(query));
        assert!(!query_says_running(
            "        STATE              : 1  STOPPED\r\n"
        ));
        let listing = "SERVICE_NAME: hermes-gateway\r\nDISPLAY_NAME: Hermes\r\n\r\nSERVICE_NAME: hermes-gateway-work\r\nSERVICE_NAME: Spooler\r\n";
        assert_eq!(parse_service_list(listing), [p("default"), p("work")]);
    }
}
