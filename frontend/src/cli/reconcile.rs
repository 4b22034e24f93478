//! `hermes-s6 reconcile [--dry-run] [--json] [--container-command <words>]`:
//! the boot reconciler, run by the image's cont-init script as hermes.
//!
//! Exit 0 when the boot can proceed (per-profile problems are reported on
//! stderr and in the document); the error's code when the helper cannot be
//! used or s6-svscan is not running.

use std::io::Write;

use crate::cli::Context;
use crate::error::{Error, exit};
use crate::reconcile::{
    Action, IntentSource, ReconcileMode, ReconcileReport, Settings, SkipReason, reconcile,
};

pub(super) fn run(
    context: &Context,
    dry_run: bool,
    json: bool,
    container_command: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let settings = Settings::from_lookup(container_command, context.env);
    let outcome = reconcile(&context.config, &settings, dry_run);
    let report = &outcome.report;
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, report);
        let _ = writeln!(out);
    } else {
        write_human(out, report);
    }
    for warning in &report.warnings {
        let _ = writeln!(err, "hermes-s6: warning: {warning}");
    }
    for p in &report.profiles {
        for problem in &p.problems {
            let _ = writeln!(err, "hermes-s6: {}: {problem}", p.profile);
        }
    }
    match outcome.error {
        Some(error) => Err(error),
        None => Ok(exit::OK),
    }
}

fn write_human(out: &mut dyn Write, report: &ReconcileReport) {
    if report.mode == ReconcileMode::DashboardOnly {
        let _ = writeln!(
            out,
            "dashboard-only container: gateway slots are not reconciled"
        );
        return;
    }
    let dry = report.dry_run;
    for p in &report.profiles {
        let what = match (p.action, dry) {
            (Action::Started, false) => "started",
            (Action::Started, true) => "would start",
            (Action::Registered, false) => "registered down",
            (Action::Registered, true) => "would register down",
            (Action::Skipped, _) => "skipped",
        };
        let why = match p.intent_source {
            IntentSource::DesiredState => format!(
                "desired_state {}",
                p.desired_state.as_deref().unwrap_or("?")
            ),
            IntentSource::GatewayState => {
                format!("gateway_state {}", p.prior_state.as_deref().unwrap_or("?"))
            }
            IntentSource::Seeded => "seeded for `gateway run`".to_owned(),
            IntentSource::Unrecorded => "no recorded state".to_owned(),
            IntentSource::Unusable => "state file unusable".to_owned(),
        };
        let mut extra = Vec::new();
        if let Some(why) = &p.left_out {
            extra.push(why.clone());
        }
        if p.already_registered {
            extra.push("already registered".to_owned());
        }
        if !p.stale_files_removed.is_empty() {
            let verb = if dry { "would remove" } else { "removed" };
            extra.push(format!("{verb} {}", p.stale_files_removed.join(", ")));
        }
        for note in &p.notes {
            extra.push(note.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("; {}", extra.join("; "))
        };
        let _ = writeln!(out, "{}: {what} ({why}{extra})", p.profile);
    }
    for s in &report.skipped {
        let why = match s.reason {
            SkipReason::ReservedName => "reserved for the root profile",
            SkipReason::InvalidName => "not a valid profile name",
            SkipReason::Symlink => "symbolic link, not followed",
            SkipReason::Unreadable => "cannot be read",
        };
        let _ = writeln!(out, "profiles/{}: skipped ({why})", s.entry);
    }
    let counts = report.counts();
    let (started, registered, skipped) = (counts.started, counts.registered, counts.skipped);
    let verb = if dry { "would reconcile" } else { "reconciled" };
    let mut summary = format!(
        "{verb} {} profiles: {started} started, {registered} registered down, {skipped} skipped",
        report.profiles.len()
    );
    let left_out = report
        .profiles
        .iter()
        .filter(|p| p.left_out.is_some())
        .count();
    if left_out > 0 {
        summary.push_str(&format!(
            "; {left_out} left out: s6-svscan's service limit (see above)"
        ));
    }
    if report.root_state_seeded {
        summary.push_str("; root gateway seeded running");
    }
    match (&report.boot_log, dry) {
        (_, true) => summary.push_str(" (dry run: nothing changed)"),
        (Some(log), false) => summary.push_str(&format!("; boot log {}", log.display())),
        (None, false) => {}
    }
    let _ = writeln!(out, "{summary}");
}
