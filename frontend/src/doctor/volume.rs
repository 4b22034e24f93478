//! `$HERMES_HOME`, the real profiles on it, and the boot history: profiles
//! whose last [`FAILED_BOOTS`] container runs all ended in
//! `startup_failed` (from the boot log).

use super::{Check, FAILED_BOOTS};
use crate::bootlog::boot_history;
use crate::config::Config;
use crate::profile::ProfileName;
use crate::reconcile::survey::{EntryFacts, ProfilesDir, Survey};
use crate::status::{GatewayStatus, SlotState};

/// Real profiles on the volume: `default`, then every `profiles/<p>` with
/// a `SOUL.md` and a valid name.
pub(super) fn profiles_on_volume(config: &Config) -> Vec<ProfileName> {
    let survey = Survey::read(config);
    let mut profiles = Vec::new();
    if survey.root.is_ok() {
        profiles.push(ProfileName::default_profile());
    }
    if let ProfilesDir::Entries(entries) = &survey.profiles_dir {
        for entry in entries {
            let EntryFacts::Dir { has_seed: true, .. } = entry.facts else {
                continue;
            };
            if let Some(profile) = entry
                .name
                .to_str()
                .filter(|n| *n != "default")
                .and_then(|n| ProfileName::new(n).ok())
            {
                profiles.push(profile);
            }
        }
    }
    profiles
}

pub(super) fn home_check(config: &Config) -> Check {
    let home = &config.hermes_home;
    if !home.is_dir() {
        return Check::fail(
            "hermes_home",
            "HERMES_HOME",
            format!("{} is not a directory", home.display()),
            "mount the data volume there, or set HERMES_HOME to it",
        );
    }
    let gateways_logs = home.join("logs/gateways");
    match std::fs::symlink_metadata(&gateways_logs) {
        Ok(meta) if meta.is_dir() => Check::ok(
            "hermes_home",
            "HERMES_HOME",
            format!(
                "{} (gateway logs in {})",
                home.display(),
                gateways_logs.display()
            ),
        ),
        _ => Check::warn(
            "hermes_home",
            "HERMES_HOME",
            format!(
                "{} is not a directory: gateways' loggers cannot start",
                gateways_logs.display()
            ),
            "restart the container (its first init step creates logs/gateways as hermes), or create it as hermes",
        ),
    }
}

/// Profiles whose gateway ended in `startup_failed` in each of the last
/// [`FAILED_BOOTS`] container runs; `fail` unless it runs now.
pub(super) fn boot_history_checks(config: &Config, gateways: &[GatewayStatus]) -> Vec<Check> {
    let mut checks = Vec::new();
    let start = |p: &ProfileName| format!("hermes-s6 gateway start -p {p}");
    let history = boot_history(&config.hermes_home);
    let mut failing = Vec::new();
    for (name, states) in &history {
        if states.len() >= FAILED_BOOTS
            && states[states.len() - FAILED_BOOTS..]
                .iter()
                .all(|s| s == "startup_failed")
        {
            failing.push(name.clone());
        }
    }
    if failing.is_empty() {
        checks.push(Check::ok(
            "profile.startup_failed",
            "boot history",
            format!("no profile ended its last {FAILED_BOOTS} container runs in startup_failed"),
        ));
    }
    for name in failing {
        let Ok(profile) = ProfileName::new(&name) else {
            continue;
        };
        let up = gateways
            .iter()
            .any(|g| g.profile == profile && g.state == SlotState::Up);
        let detail = format!(
            "its gateway ended in startup_failed in each of the last {FAILED_BOOTS} container runs{}",
            if up { " (it runs now)" } else { "" }
        );
        let fix = format!(
            "read its log ({}), fix its configuration, then `{}`",
            config.log_file(&profile).display(),
            start(&profile)
        );
        let check = if up {
            Check::warn(
                "profile.startup_failed",
                format!("profile {profile}"),
                detail,
                fix,
            )
        } else {
            Check::fail(
                "profile.startup_failed",
                format!("profile {profile}"),
                detail,
                fix,
            )
        };
        checks.push(check.about(&profile));
    }
    checks
}
