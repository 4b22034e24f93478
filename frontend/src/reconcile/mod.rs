//! Boot reconciliation: re-create every gateway slot from the persistent
//! volume after the container (and its tmpfs `/run`) started afresh.
//!
//! Three steps, each its own module:
//! 1. `survey` reads the volume and the scan directory, changing nothing;
//! 2. [`plan`] decides, purely, what happens to each profile (the rules are
//!    listed there);
//! 3. [`reconcile`] carries the plan out: seeds the root profile's state
//!    (legacy `gateway run` containers), removes stale `gateway.pid` and
//!    `processes.json` before anything starts, registers every profile
//!    without a slot in one helper call, starts those intended up in one
//!    call, rescans once, and appends one `bootlog` line per profile.
//!
//! `--dry-run` stops after step 2. A second run changes nothing that the
//! first one set up: slots that exist are not registered again, running
//! gateways keep their runtime files.
//!
//! Per-profile problems (a name the helper would refuse, a slot the helper
//! refuses as unsafe, a file that cannot be removed) are reported and the
//! boot goes on; the run fails only when the helper cannot be used at all
//! (missing, not privileged) or s6-svscan is not running.
//!
//! It never runs as root: the volume is hermes's to change at any moment,
//! and root must not follow a path there. The boot runs it as hermes, and
//! it reaches the helper as any hermes process does (setuid, or the socket:
//! [`ControlMode`](crate::ControlMode)).

mod plan;
mod settings;
pub(crate) mod survey;

use std::collections::HashSet;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::bootlog;
use crate::config::Config;
use crate::error::Error;
use crate::gateway_config::MultiplexSource;
use crate::helper::{Helper, HelperOp};
use crate::localtime;
use crate::profile::ProfileName;
use crate::state::ProfileDir;
use crate::time::{iso8601_utc, unix_now};
use crate::vocabulary::Intent;

pub use self::plan::{
    Action, IntentSource, Plan, PriorExit, ProfilePlan, ReconcileMode, SkipReason, StateFileKind,
    plan,
};
pub use self::settings::{ContainerRole, Settings};
pub use self::survey::Survey;

/// Identifier of the reconcile document's schema (see `SCHEMA.md`).
pub const RECONCILE_SCHEMA: &str = "hermes-s6.reconcile/1";

/// What happened (or, with `dry_run`, would happen) to one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconciledProfile {
    pub profile: ProfileName,
    pub service: String,
    pub home: PathBuf,
    pub state_file: StateFileKind,
    pub prior_state: Option<String>,
    pub desired_state: Option<String>,
    pub intent: Intent,
    pub intent_source: IntentSource,
    pub prior_exit: PriorExit,
    pub action: Action,
    /// The slot existed before this run.
    pub already_registered: bool,
    /// Why no slot was registered although the profile has none: s6-svscan's
    /// service limit left no room (`action` is `skipped`).
    pub left_out: Option<String>,
    /// The gateway was up before this run.
    pub already_up: bool,
    /// Stale runtime files removed (with `dry_run`: to remove).
    pub stale_files_removed: Vec<String>,
    pub notes: Vec<String>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedReport {
    pub entry: String,
    pub reason: SkipReason,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgnoredReport {
    pub entry: String,
    pub why: &'static str,
}

/// One helper invocation of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelperCall {
    pub op: &'static str,
    pub profiles: usize,
    /// `ok`, `partial` (some profiles failed) or `failed` (the call as a
    /// whole).
    pub result: &'static str,
}

/// The `--json` document of `reconcile` (schema `hermes-s6.reconcile/1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconcileReport {
    pub schema: &'static str,
    pub dry_run: bool,
    pub mode: ReconcileMode,
    pub generated_at: String,
    pub hermes_home: PathBuf,
    pub container_command: Option<Vec<String>>,
    pub multiplex: bool,
    /// What decided `multiplex`: `config`, `environment` or `fallback`.
    pub multiplex_source: Option<MultiplexSource>,
    pub root_state_seeded: bool,
    pub profiles: Vec<ReconciledProfile>,
    pub skipped: Vec<SkippedReport>,
    pub ignored: Vec<IgnoredReport>,
    pub other_slots: Vec<ProfileName>,
    pub helper_calls: Vec<HelperCall>,
    pub boot_log: Option<PathBuf>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

impl ReconcileReport {
    fn from_plan(plan: &Plan, survey: &Survey, settings: &Settings, dry_run: bool) -> Self {
        Self {
            schema: RECONCILE_SCHEMA,
            dry_run,
            mode: plan.mode,
            generated_at: iso8601_utc(unix_now()),
            hermes_home: survey.hermes_home.clone(),
            container_command: settings.container_command.clone(),
            multiplex: settings.multiplex,
            multiplex_source: settings.multiplex_source,
            root_state_seeded: plan.seed_root_state,
            profiles: plan
                .profiles
                .iter()
                .map(|p| ReconciledProfile {
                    profile: p.profile.clone(),
                    service: p.profile.service_name(),
                    home: p.home.clone(),
                    state_file: p.state_file,
                    prior_state: p.prior_state.clone(),
                    desired_state: p.desired_state.clone(),
                    intent: p.intent,
                    intent_source: p.intent_source,
                    prior_exit: p.prior_exit,
                    action: p.action(),
                    already_registered: !p.register && p.left_out.is_none(),
                    left_out: p.left_out.clone(),
                    already_up: p.already_up,
                    stale_files_removed: if dry_run {
                        p.remove.iter().map(|s| (*s).to_owned()).collect()
                    } else {
                        Vec::new()
                    },
                    notes: p.notes.clone(),
                    problems: Vec::new(),
                })
                .collect(),
            skipped: plan
                .skipped
                .iter()
                .map(|s| SkippedReport {
                    entry: s.entry.clone(),
                    reason: s.reason.clone(),
                    message: s.message.clone(),
                })
                .collect(),
            ignored: plan
                .ignored
                .iter()
                .map(|i| IgnoredReport {
                    entry: i.entry.clone(),
                    why: i.why,
                })
                .collect(),
            other_slots: plan.other_slots.clone(),
            helper_calls: Vec::new(),
            boot_log: None,
            warnings: plan
                .warnings
                .iter()
                .cloned()
                .chain(plan.skipped.iter().map(|s| s.message.clone()))
                .collect(),
            error: None,
        }
    }

    fn profile_mut(&mut self, profile: &ProfileName) -> Option<&mut ReconciledProfile> {
        self.profiles.iter_mut().find(|p| &p.profile == profile)
    }

    /// How many profiles ended with each action.
    pub fn counts(&self) -> ActionCounts {
        let count = |a: Action| self.profiles.iter().filter(|p| p.action == a).count();
        ActionCounts {
            started: count(Action::Started),
            registered: count(Action::Registered),
            skipped: count(Action::Skipped) + self.skipped.len(),
        }
    }
}

/// Profiles by what reconciliation did to them; skipped entries of
/// `profiles/` count as skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionCounts {
    pub started: usize,
    pub registered: usize,
    pub skipped: usize,
}

/// The outcome of a run: the report, and the error that made it fail, if
/// any (the report then says how far it got).
#[derive(Debug)]
pub struct Reconciled {
    pub report: ReconcileReport,
    pub error: Option<Error>,
}

/// Surveys, plans and (unless `dry_run`) carries the plan out. Refuses to
/// run as root.
pub fn reconcile(config: &Config, settings: &Settings, dry_run: bool) -> Reconciled {
    if runs_as_root_for(&config.hermes_user) {
        let error = Error::RefusedAsRoot {
            what: "hermes-s6 reconcile",
            user: config.hermes_user.clone(),
        };
        let nothing = Plan::nothing();
        let unread = Survey {
            hermes_home: config.hermes_home.clone(),
            root: Err("not read".to_owned()),
            profiles_dir: survey::ProfilesDir::Missing,
            slots: Ok(Default::default()),
            room: None,
        };
        let mut report = ReconcileReport::from_plan(&nothing, &unread, settings, dry_run);
        report.error = Some(error.to_string());
        return Reconciled {
            report,
            error: Some(error),
        };
    }
    let survey = Survey::read(config);
    let settings = &settings.clone().with_gateway_config(&config.hermes_home);
    let plan = plan(&survey, settings);
    let mut report = ReconcileReport::from_plan(&plan, &survey, settings, dry_run);
    if dry_run || plan.mode == ReconcileMode::DashboardOnly {
        return Reconciled {
            report,
            error: None,
        };
    }
    let helper = Helper::for_config(config);
    let error = execute(config, &helper, &plan, &mut report).err();
    if let Some(error) = &error {
        report.error = Some(error.to_string());
    }
    write_boot_log(config, settings, &plan, &mut report);
    Reconciled { report, error }
}

/// This process is root and `user` is not (when `user` is root itself, as
/// in tests, the volume is root's own).
fn runs_as_root_for(user: &str) -> bool {
    let euid = nix::unistd::geteuid();
    euid.is_root()
        && !nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .is_some_and(|account| account.uid == euid)
}

fn execute(
    config: &Config,
    helper: &Helper,
    plan: &Plan,
    report: &mut ReconcileReport,
) -> Result<(), Error> {
    if plan.seed_root_state {
        seed_root_state(config, report);
    }
    for p in &plan.profiles {
        remove_stale_files(config, p, report);
    }

    // Register: every profile without a slot, in one call (the helper
    // batches beyond 4096). A profile it refuses gets no slot and is
    // skipped; one registered meanwhile by someone else is fine.
    let to_register = plan.to_register();
    let mut failed: HashSet<ProfileName> = HashSet::new();
    if !to_register.is_empty() {
        let outcomes = match call(helper, HelperOp::Register, &to_register, report) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                mark_skipped(report, &to_register);
                mark_not_started(report, &plan.to_start());
                return Err(error);
            }
        };
        for (profile, result) in outcomes {
            match result {
                Ok(()) => {}
                Err(Error::AlreadyRegistered { .. }) => {
                    if let Some(r) = report.profile_mut(&profile) {
                        r.already_registered = true;
                    }
                }
                Err(e) => {
                    if let Some(r) = report.profile_mut(&profile) {
                        r.action = Action::Skipped;
                        r.problems.push(format!("not registered: {e}"));
                    }
                    failed.insert(profile);
                }
            }
        }
    }

    // Start: every profile intended up that has a slot, in one call.
    let to_start: Vec<ProfileName> = plan
        .to_start()
        .into_iter()
        .filter(|p| !failed.contains(p))
        .collect();
    if !to_start.is_empty() {
        let outcomes = match call(helper, HelperOp::Start, &to_start, report) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                mark_not_started(report, &to_start);
                return Err(error);
            }
        };
        for (profile, result) in outcomes {
            if let (Err(e), Some(r)) = (result, report.profile_mut(&profile)) {
                r.action = Action::Registered;
                r.problems.push(format!("not started: {e}"));
            }
        }
    }

    // One rescan so every slot, up or down, ends up supervised. When `start`
    // reached a slot registered by this run, the helper has already rescanned
    // (design §4: a slot with no supervisor gets one through a rescan), and
    // s6-svscan scans the whole directory: a second scan would only add a
    // burst of work while s6 is starting every supervisor.
    let newly_registered = |p: &ProfileName| {
        to_register.contains(p)
            && !report
                .profiles
                .iter()
                .any(|r| &r.profile == p && r.already_registered)
    };
    if to_start.iter().any(newly_registered) {
        return Ok(());
    }
    let rescan = helper.rescan();
    report.helper_calls.push(HelperCall {
        op: HelperOp::Rescan.as_str(),
        profiles: 0,
        result: if rescan.is_ok() { "ok" } else { "failed" },
    });
    rescan
}

/// Runs one helper operation and records it in the report.
fn call(
    helper: &Helper,
    op: HelperOp,
    profiles: &[ProfileName],
    report: &mut ReconcileReport,
) -> Result<crate::outcome::ProfileOutcomes, Error> {
    let result = helper.run(op, profiles);
    // A slot registered meanwhile is what register was for.
    let fine = |r: &Result<(), Error>| matches!(r, Ok(()) | Err(Error::AlreadyRegistered { .. }));
    let summary = match &result {
        Ok(outcomes) if outcomes.iter().all(|(_, r)| fine(r)) => "ok",
        Ok(_) => "partial",
        Err(_) => "failed",
    };
    report.helper_calls.push(HelperCall {
        op: op.as_str(),
        profiles: profiles.len(),
        result: summary,
    });
    result
}

/// After a failure of the whole register call (reported once, as the
/// run's error): none of these got a slot.
fn mark_skipped(report: &mut ReconcileReport, profiles: &[ProfileName]) {
    for profile in profiles {
        if let Some(r) = report.profile_mut(profile) {
            r.action = Action::Skipped;
        }
    }
}

/// After a failure of the whole run before the start call: those with a
/// slot stay as they were (a gateway already up stays up).
fn mark_not_started(report: &mut ReconcileReport, profiles: &[ProfileName]) {
    for profile in profiles {
        if let Some(r) = report.profile_mut(profile)
            && r.action == Action::Started
            && !r.already_up
        {
            r.action = Action::Registered;
        }
    }
}

/// Writes `gateway_state = desired_state = running` for the root profile,
/// only if it still has no state file.
fn seed_root_state(config: &Config, report: &mut ReconcileReport) {
    let root = ProfileName::default_profile();
    let mut state = Map::new();
    state.insert("gateway_state".into(), Value::from("running"));
    state.insert(
        "desired_state".into(),
        Value::from(Intent::Running.as_str()),
    );
    state.insert("updated_at".into(), Value::from(unix_now()));
    let result = ProfileDir::open(config, &root).and_then(|dir| dir.create_state(&state));
    let problem = match result {
        Ok(true) => None,
        Ok(false) => Some("a state file appeared meanwhile; it was kept".to_owned()),
        Err(e) => Some(format!("cannot seed the state file: {e}")),
    };
    if let Some(problem) = problem {
        report.root_state_seeded = false;
        if let Some(r) = report.profile_mut(&root) {
            r.problems.push(problem);
        }
    }
}

/// Unlinks the plan's stale files through a descriptor of the profile's
/// home opened without following links; a symbolic link is removed itself,
/// its target is never touched.
fn remove_stale_files(config: &Config, p: &ProfilePlan, report: &mut ReconcileReport) {
    if p.remove.is_empty() {
        return;
    }
    let dir = ProfileDir::open(config, &p.profile);
    let Some(r) = report.profile_mut(&p.profile) else {
        return;
    };
    let dir = match dir {
        Ok(dir) => dir,
        Err(e) => {
            r.problems.push(format!("stale files not removed: {e}"));
            return;
        }
    };
    for name in &p.remove {
        match unlink_in(dir.as_fd(), name) {
            Ok(()) => r.stale_files_removed.push((*name).to_owned()),
            Err(Errno::ENOENT) => {}
            Err(e) => r.problems.push(format!(
                "cannot remove stale {}: {}",
                dir.path().join(name).display(),
                e.desc()
            )),
        }
    }
}

fn unlink_in(dir: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
}

/// One line per profile, as upstream writes them: local time, the boot
/// intent as `prior_state`, the action, the lifecycle ledger's verdict.
fn write_boot_log(config: &Config, settings: &Settings, plan: &Plan, report: &mut ReconcileReport) {
    let time = localtime::strftime_iso(unix_now(), settings.tz.as_deref());
    let mut lines = String::new();
    for p in &report.profiles {
        let logged = plan
            .profiles
            .iter()
            .find(|q| q.profile == p.profile)
            .and_then(|q| q.logged_state.as_deref());
        lines.push_str(&bootlog::line(
            &time,
            p.profile.as_str(),
            logged,
            p.action.as_str(),
            p.prior_exit.as_str(),
        ));
    }
    for s in plan.skipped.iter().filter(|s| s.logged) {
        lines.push_str(&bootlog::line(
            &time,
            &s.entry,
            None,
            Action::Skipped.as_str(),
            PriorExit::Unknown.as_str(),
        ));
    }
    match bootlog::append(&config.hermes_home, &lines) {
        Ok(path) => report.boot_log = Some(path),
        Err(e) => report
            .warnings
            .push(format!("the boot log was not written: {e}")),
    }
}
