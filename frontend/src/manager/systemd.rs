//! Hosts with a systemd user manager: one user unit per gateway,
//! `hermes-gateway.service` for the root profile and
//! `hermes-gateway-<profile>.service` for the others (the names the Hermes
//! installer gives them).

use crate::error::Error;
use crate::manager::{HostCommand, ServiceManager, ServiceManagerKind, dedup};
use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;

const UNIT_BASE: &str = "hermes-gateway";

/// The systemd unit of a profile's gateway.
pub fn unit_name(profile: &ProfileName) -> String {
    if profile.is_default() {
        format!("{UNIT_BASE}.service")
    } else {
        format!("{UNIT_BASE}-{profile}.service")
    }
}

/// The profile a unit name belongs to, if it is a gateway unit.
pub fn profile_of_unit(unit: &str) -> Option<ProfileName> {
    let stem = unit.strip_suffix(".service")?;
    if stem == UNIT_BASE {
        return Some(ProfileName::default_profile());
    }
    let name = stem.strip_prefix(UNIT_BASE)?.strip_prefix('-')?;
    // `hermes-gateway-default.service` would alias the root profile's unit.
    ProfileName::new(name).ok().filter(|p| !p.is_default())
}

/// `systemctl --user <verb> <unit>`.
pub fn systemctl(verb: &str, profile: &ProfileName) -> HostCommand {
    HostCommand::new("systemctl", ["--user", verb, &unit_name(profile)])
}

/// `systemctl --user is-active --quiet <unit>`: exit 0 when active.
pub fn is_active_command(profile: &ProfileName) -> HostCommand {
    HostCommand::new(
        "systemctl",
        ["--user", "is-active", "--quiet", &unit_name(profile)],
    )
}

/// Lists loaded gateway units, active or not.
pub fn list_units_command() -> HostCommand {
    HostCommand::new(
        "systemctl",
        [
            "--user",
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "--type=service",
            "hermes-gateway*",
        ],
    )
}

/// Profiles named by the first column of `list-units --plain --no-legend`.
pub fn parse_unit_list(listing: &str) -> Vec<ProfileName> {
    let mut profiles: Vec<ProfileName> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(profile_of_unit)
        .collect();
    profiles.sort();
    profiles.dedup();
    profiles
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemdManager;

impl SystemdManager {
    pub fn new() -> Self {
        Self
    }

    fn each(&self, verb: &str, profiles: &[ProfileName]) -> ProfileOutcomes {
        dedup(profiles)
            .into_iter()
            .map(|p| {
                let result = systemctl(verb, &p).run().map(drop);
                (p, result)
            })
            .collect()
    }
}

impl ServiceManager for SystemdManager {
    fn kind(&self) -> ServiceManagerKind {
        ServiceManagerKind::Systemd
    }

    fn start(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Ok(self.each("start", profiles))
    }

    fn stop(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Ok(self.each("stop", profiles))
    }

    fn restart(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Ok(self.each("restart", profiles))
    }

    fn is_running(&self, profile: &ProfileName) -> Result<bool, Error> {
        Ok(is_active_command(profile).output()?.status.success())
    }

    fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error> {
        let output = list_units_command().run()?;
        Ok(parse_unit_list(&String::from_utf8_lossy(&output.stdout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extra_env::ExtraEnv;

    fn p(name: &str) -> ProfileName {
        ProfileName::new(name).unwrap()
    }

    #[test]
    fn names_units() {
        assert_eq!(unit_name(&p("default")), "hermes-gateway.service");
        assert_eq!(unit_name(&p("work")), "hermes-gateway-work.service");
        assert_eq!(
            profile_of_unit("hermes-gateway.service"),
            Some(p("default"))
        );
        assert_eq!(
            profile_of_unit("hermes-gateway-work.service"),
            Some(p("work"))
        );
        for foreign in [
            "hermes-gateway-default.service",
            "hermes-gateway-Bad.service",
            "hermes-gateway-.service",
            "hermes-gatewayx.service",
            "hermes-serve.service",
            "hermes-gateway-work.socket",
        ] {
            assert_eq!(profile_of_unit(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn builds_systemctl_commands() {
        assert_eq!(
            systemctl("start", &p("work")).to_string(),
            "systemctl --user start hermes-gateway-work.service"
        );
        assert_eq!(
            systemctl("stop", &p("default")).to_string(),
            "systemctl --user stop hermes-gateway.service"
        );
        assert_eq!(
            systemctl("restart", &p("a")).args,
            ["--user", "restart", "hermes-gateway-a.service"]
        );
        assert_eq!(
            is_active_command(&p("a")).to_string(),
            "systemctl --user is-active --quiet hermes-gateway-a.service"
        );
        assert_eq!(list_units_command().program, "systemctl");
    }

    #[test]
    fn parses_unit_listings() {
        let listing = "\
hermes-gateway-work.service loaded active running Hermes gateway (work)
hermes-gateway.service      loaded inactive dead  Hermes gateway
hermes-gateway-zeta.service loaded failed failed  Hermes gateway (zeta)
hermes-serve.service        loaded active running other
";
        assert_eq!(
            parse_unit_list(listing),
            [p("default"), p("work"), p("zeta")]
        );
        assert!(parse_unit_list("").is_empty());
    }

    #[test]
    fn registration_is_unsupported() {
        let m = SystemdManager::new();
        assert!(!m.supports_runtime_registration());
        let err = m
            .register_profile_gateway(&p("work"), &ExtraEnv::empty(), true)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Unsupported {
                manager: ServiceManagerKind::Systemd,
                ..
            }
        ));
        assert!(err.to_string().contains("systemd"));
        assert!(m.unregister_profile_gateway(&p("work")).is_err());
    }
}
