//! Each gateway against its intent: crash loops, gateways meant to run
//! that do not, slots without a profile and profiles without a slot.

use super::{Check, volume};
use crate::config::Config;
use crate::profile::ProfileName;
use crate::status::{GatewayStatus, SlotState};
use crate::vocabulary::Intent;

/// Whether the gateway is meant to run: its recorded intent, or, without
/// one, what s6 wants.
fn wanted_up(g: &GatewayStatus) -> bool {
    match g.intent() {
        Some(intent) => intent == Intent::Running,
        None => g.process.as_ref().is_some_and(|p| p.want_up),
    }
}

pub(super) fn gateway_checks(config: &Config, gateways: &[GatewayStatus]) -> Vec<Check> {
    let mut checks = Vec::new();
    let start = |p: &ProfileName| format!("hermes-s6 gateway start -p {p}");
    let log = |g: &GatewayStatus| g.log.display().to_string();

    // Crash loops.
    let looping: Vec<&GatewayStatus> = gateways.iter().filter(|g| g.crash_loop.is_some()).collect();
    if looping.is_empty() {
        checks.push(Check::ok("gateway.crash_loop", "crash loops", "none"));
    }
    for g in &looping {
        let record = g
            .crash_loop
            .as_ref()
            .map(|c| c.record.as_str())
            .unwrap_or("");
        checks.push(
            Check::fail(
                "gateway.crash_loop",
                format!("gateway {}", g.profile),
                format!("crash-looping, s6 keeps it down: {record}"),
                format!(
                    "read its log ({}), fix the cause, then `{}`",
                    log(g),
                    start(&g.profile)
                ),
            )
            .about(&g.profile),
        );
    }

    // Intent against state.
    let mut intent_problems = 0;
    for g in gateways
        .iter()
        .filter(|g| g.crash_loop.is_none() && wanted_up(g))
    {
        let want_up = g.process.as_ref().is_some_and(|p| p.want_up);
        let last_exit = g
            .process
            .as_ref()
            .and_then(|p| p.last_exit.as_ref())
            .map(|e| match (e.exit_code, e.signal_name) {
                (Some(code), _) => format!(", last exit {code}"),
                (None, Some(name)) => format!(", killed by {name}"),
                _ => String::new(),
            })
            .unwrap_or_default();
        let check = match g.state {
            SlotState::Up => continue,
            SlotState::Unsupervised => Check::fail(
                "gateway.down",
                format!("gateway {}", g.profile),
                "meant to run, but no s6-supervise runs on its slot",
                format!(
                    "`{}` (its rescan starts the supervisor of a slot s6-svscan has not seen yet); if it says no supervisor took the slot, restart the container (s6 2.13 and later can lose the restart of a supervisor that died within a second of its start, and no rescan brings it back)",
                    start(&g.profile)
                ),
            ),
            SlotState::Down | SlotState::Finishing if want_up => Check::warn(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!(
                    "meant to run and down, s6 is restarting it ({} restart(s) recorded{last_exit})",
                    g.restarts.unwrap_or(0)
                ),
                format!("if it keeps going down, read its log ({})", log(g)),
            ),
            SlotState::Down | SlotState::Finishing => Check::fail(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!(
                    "meant to run (intent running), but down and not wanted up by s6{last_exit}"
                ),
                format!(
                    "`{}`; if it stops again, read its log ({})",
                    start(&g.profile),
                    log(g)
                ),
            ),
            SlotState::Unregistered | SlotState::Unknown => Check::warn(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!("state unknown: {}", g.problems.join("; ")),
                "run doctor as the hermes user or as root",
            ),
        };
        intent_problems += 1;
        checks.push(check.about(&g.profile));
    }
    if intent_problems == 0 {
        checks.push(Check::ok(
            "gateway.down",
            "intents",
            "every gateway meant to run is up",
        ));
    }

    // Slots and profiles on the volume.
    let on_volume = volume::profiles_on_volume(config);
    let slots: Vec<&ProfileName> = gateways.iter().map(|g| &g.profile).collect();
    let orphans: Vec<&ProfileName> = slots
        .iter()
        .copied()
        .filter(|p| !config.profile_exists(p))
        .collect();
    if orphans.is_empty() {
        checks.push(Check::ok(
            "gateway.orphan_slot",
            "slots without profile",
            "none",
        ));
    }
    for p in orphans {
        checks.push(
            Check::warn(
                "gateway.orphan_slot",
                format!("gateway {p}"),
                format!(
                    "slot {} has no profile on the volume ({})",
                    p.service_name(),
                    if p.is_default() {
                        config.hermes_home.display().to_string()
                    } else {
                        format!("no {}/SOUL.md", config.profile_home(p).display())
                    }
                ),
                format!("`hermes-s6 profile unregister {p}`, or create the profile again"),
            )
            .about(p),
        );
    }
    let homeless: Vec<&ProfileName> = on_volume.iter().filter(|p| !slots.contains(p)).collect();
    if homeless.is_empty() {
        checks.push(Check::ok(
            "profile.no_slot",
            "profiles without slot",
            "none",
        ));
    }
    for p in homeless {
        checks.push(
            Check::warn(
                "profile.no_slot",
                format!("profile {p}"),
                format!("has no gateway slot ({})", p.service_name()),
                format!(
                    "`{}` registers and starts it (`hermes-s6 profile register {p} --down` keeps it stopped)",
                    start(p)
                ),
            )
            .about(p),
        );
    }

    checks.extend(volume::boot_history_checks(config, gateways));
    checks
}
