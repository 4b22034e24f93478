//! The pure half of reconciliation: from a [`Survey`] and the [`Settings`]
//! to what should happen to each profile. Nothing here touches the system,
//! so every rule is unit-tested on hand-made surveys.
//!
//! Rules (the upstream boot reconciler's behavior):
//! - `default` is always planned, first; then every real profile (a
//!   directory under `profiles/` holding `SOUL.md`) in name order.
//! - `profiles/default/` is skipped with a warning (the name belongs to the
//!   root profile); entries with names the helper would refuse
//!   (`^[a-z0-9][a-z0-9_-]{0,62}$`) and symbolic links are skipped with a
//!   warning; directories without `SOUL.md` and plain files are ignored.
//! - Intent: `desired_state` when it is a string, else `gateway_state`
//!   with `draining` and `degraded` read as `running`. Only `running`
//!   starts; anything else, a missing or an unusable state file leaves the
//!   slot registered down.
//! - A legacy container (command `gateway run`) whose root profile has no
//!   state file gets `gateway_state = desired_state = running` seeded for
//!   the root profile, unless `HERMES_GATEWAY_NO_SUPERVISE` is truthy or
//!   `--no-supervise` is in the command.
//! - A dashboard-only container (command `dashboard`) plans nothing.
//! - When the root gateway multiplexes (`multiplex_profiles` in its
//!   configuration; `GATEWAY_MULTIPLEX_PROFILES` when that cannot be
//!   loaded), named profiles are registered but never started.
//! - Stale `gateway.pid` and `processes.json` are removed from every
//!   planned profile's home, except where the slot's gateway is up right
//!   now (a second run in a live container: those files are not stale).
//! - Only profiles without a slot are registered; a slot that exists keeps
//!   its state unless the profile is to start.

use std::path::PathBuf;

use serde::Serialize;

use crate::bootlog::escape_name;
use crate::profile::{DEFAULT_PROFILE, ProfileName, is_valid_profile_name};
use crate::reconcile::settings::{ContainerRole, Settings};
use crate::reconcile::survey::{EntryFacts, HomeFacts, ProfilesDir, Room, StateFile, Survey};
use crate::vocabulary::Intent;

/// Whether the reconciler acts at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileMode {
    Reconcile,
    /// The container's command is `dashboard`: no gateway is reconciled.
    DashboardOnly,
}

/// Where the intent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentSource {
    /// `desired_state`, written by start/stop/restart.
    DesiredState,
    /// `gateway_state`, written by the gateway (no `desired_state`).
    GatewayState,
    /// Seeded for a legacy `gateway run` container.
    Seeded,
    /// The state file has neither field, or does not exist (`none`).
    #[serde(rename = "none")]
    Unrecorded,
    /// The state file exists but cannot be used.
    Unusable,
}

/// How the gateway's previous life ended, from its lifecycle ledger
/// (`state/gateway.lifecycle.json` in its home), as upstream reads it:
/// `phase` `exited` is clean; `running` is unclean (the container went away
/// under a live gateway: SIGKILL, OOM, a VM's death); anything else (no
/// ledger, another phase) is unknown, and so is the prior exit of a gateway
/// that is up right now (a second run in a live container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorExit {
    Clean,
    Unclean,
    Unknown,
}

impl PriorExit {
    pub fn of(lifecycle_phase: Option<&str>) -> Self {
        match lifecycle_phase {
            Some("exited") => Self::Clean,
            Some("running") => Self::Unclean,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Unclean => "unclean",
            Self::Unknown => "unknown",
        }
    }
}

/// What reconciliation does (or did) to a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Registered (or already registered) and wanted up.
    Started,
    /// Registered (or already registered) and left down.
    Registered,
    /// Not registered: invalid or unsafe entry, or the helper refused it.
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Registered => "registered",
            Self::Skipped => "skipped",
        }
    }
}

/// What upstream's boot log calls the prior state: the recorded intent
/// itself, `desired_state` when present, else `gateway_state` with
/// `draining` and `degraded` read as `running`.
fn logged_state(state: &StateFile) -> Option<String> {
    if let Some(desired) = state.text("desired_state") {
        return Some(desired.to_owned());
    }
    state.text("gateway_state").map(|gateway| match gateway {
        "draining" | "degraded" => "running".to_owned(),
        other => other.to_owned(),
    })
}

/// The boot intent of a state file: `desired_state` when it is a string,
/// else `gateway_state` with `draining`/`degraded` read as `running`.
pub fn boot_intent(state: &StateFile) -> (Intent, IntentSource) {
    let running = |yes: bool| {
        if yes {
            Intent::Running
        } else {
            Intent::Stopped
        }
    };
    match state {
        StateFile::Missing => (Intent::Stopped, IntentSource::Unrecorded),
        StateFile::Unusable(_) => (Intent::Stopped, IntentSource::Unusable),
        StateFile::Object(_) => {
            if let Some(desired) = state.text("desired_state") {
                (Intent::from_recorded(desired), IntentSource::DesiredState)
            } else if let Some(gateway) = state.text("gateway_state") {
                (
                    running(matches!(gateway, "running" | "draining" | "degraded")),
                    IntentSource::GatewayState,
                )
            } else {
                (Intent::Stopped, IntentSource::Unrecorded)
            }
        }
    }
}

/// The plan for one profile that gets a slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilePlan {
    pub profile: ProfileName,
    pub home: PathBuf,
    /// `gateway_state` as the previous run left it.
    pub prior_state: Option<String>,
    /// `desired_state` as recorded.
    pub desired_state: Option<String>,
    pub state_file: StateFileKind,
    pub intent: Intent,
    pub intent_source: IntentSource,
    pub prior_exit: PriorExit,
    /// The boot log's `prior_state`, as upstream writes it: `desired_state`,
    /// else `gateway_state` with `draining`/`degraded` read as `running`
    /// (`running` when seeded); `None` when there is neither.
    pub logged_state: Option<String>,
    /// Wanted up at the end: the intent is running (and, for a named
    /// profile, multiplexing is off).
    pub start: bool,
    /// No slot exists yet, and there is room for one.
    pub register: bool,
    /// Why the profile gets no slot although it has none: s6-svscan's
    /// service limit leaves no room for it.
    pub left_out: Option<String>,
    /// A slot exists and its gateway is up right now.
    pub already_up: bool,
    /// Stale runtime files to remove before anything starts.
    pub remove: Vec<&'static str>,
    /// Things worth telling, one sentence each.
    pub notes: Vec<String>,
}

impl ProfilePlan {
    pub fn action(&self) -> Action {
        if self.left_out.is_some() {
            Action::Skipped
        } else if self.start {
            Action::Started
        } else {
            Action::Registered
        }
    }
}

/// The state file as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateFileKind {
    Present,
    Missing,
    Unusable,
}

/// Why an entry under `profiles/` gets no slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `profiles/default/`: the name belongs to the root profile.
    ReservedName,
    /// Not `^[a-z0-9][a-z0-9_-]{0,62}$`.
    InvalidName,
    /// A symbolic link; never followed.
    Symlink,
    /// Could not be examined.
    Unreadable,
}

/// An entry under `profiles/` that is skipped with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's name, with bytes other than `[A-Za-z0-9._-]` escaped.
    pub entry: String,
    pub reason: SkipReason,
    /// The warning, one sentence.
    pub message: String,
    /// Whether it gets a boot log line (`profiles/default/` does not: the
    /// root profile has that line).
    pub logged: bool,
}

/// An entry under `profiles/` that is not a profile at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub entry: String,
    pub why: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: ReconcileMode,
    /// Seed the root profile's state file (legacy `gateway run`).
    pub seed_root_state: bool,
    /// `default` first, then named profiles in name order.
    pub profiles: Vec<ProfilePlan>,
    pub skipped: Vec<Skipped>,
    pub ignored: Vec<Ignored>,
    /// Slots in the scan directory for profiles not on the volume; left
    /// as they are.
    pub other_slots: Vec<ProfileName>,
    /// Problems not tied to one profile.
    pub warnings: Vec<String>,
}

impl Plan {
    /// A plan that does nothing: what a run that cannot start carries out.
    pub fn nothing() -> Plan {
        Plan {
            mode: ReconcileMode::Reconcile,
            seed_root_state: false,
            profiles: Vec::new(),
            skipped: Vec::new(),
            ignored: Vec::new(),
            other_slots: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Profiles that need a slot, in plan order.
    pub fn to_register(&self) -> Vec<ProfileName> {
        self.profiles
            .iter()
            .filter(|p| p.register)
            .map(|p| p.profile.clone())
            .collect()
    }

    /// Profiles to want up, in plan order.
    pub fn to_start(&self) -> Vec<ProfileName> {
        self.profiles
            .iter()
            .filter(|p| p.start)
            .map(|p| p.profile.clone())
            .collect()
    }
}

/// Makes the plan. Pure: the same survey and settings give the same plan.
pub fn plan(survey: &Survey, settings: &Settings) -> Plan {
    let mut plan = Plan::nothing();
    let role = settings.role();
    if role == ContainerRole::Dashboard {
        plan.mode = ReconcileMode::DashboardOnly;
        return plan;
    }

    // The root profile.
    let root_home = survey.hermes_home.clone();
    let mut root = match &survey.root {
        Ok(facts) => profile_plan(ProfileName::default_profile(), root_home, facts, survey),
        Err(why) => {
            plan.warnings.push(format!(
                "the root profile's home cannot be read ({why}); gateway-default is registered down"
            ));
            let facts = HomeFacts {
                state: StateFile::Unusable(why.clone()),
                stale_files: Vec::new(),
                lifecycle_phase: None,
            };
            profile_plan(ProfileName::default_profile(), root_home, &facts, survey)
        }
    };
    let legacy_gateway = matches!(
        role,
        ContainerRole::GatewayRun {
            no_supervise: false
        }
    );
    if legacy_gateway
        && !settings.no_supervise
        && matches!(
            survey.root,
            Ok(HomeFacts {
                state: StateFile::Missing,
                ..
            })
        )
    {
        plan.seed_root_state = true;
        root.intent = Intent::Running;
        root.intent_source = IntentSource::Seeded;
        root.logged_state = Some(Intent::Running.as_str().to_owned());
        root.start = true;
        root.notes.push(
            "legacy `gateway run` container without a state file: the root gateway is seeded running"
                .into(),
        );
    }
    plan.profiles.push(root);

    // Named profiles.
    match &survey.profiles_dir {
        ProfilesDir::Missing => {}
        ProfilesDir::Symlink => plan.warnings.push(
            "profiles is a symbolic link, which is not followed: no named profile is reconciled"
                .into(),
        ),
        ProfilesDir::Unreadable(why) => plan
            .warnings
            .push(format!("named profiles cannot be read: {why}")),
        ProfilesDir::Entries(entries) => {
            for entry in entries {
                let shown = escape_name(&entry.name);
                let name = entry.name.to_str().filter(|n| is_valid_profile_name(n));
                let skip = |reason: SkipReason, message: String, logged: bool| Skipped {
                    entry: shown.clone(),
                    reason,
                    message,
                    logged,
                };
                match &entry.facts {
                    // Whatever it holds, and whatever it is: the name belongs
                    // to the root profile (and its boot log line).
                    EntryFacts::Dir { .. } | EntryFacts::Symlink | EntryFacts::Unreadable(_)
                        if name == Some(DEFAULT_PROFILE) =>
                    {
                        plan.skipped.push(skip(
                            SkipReason::ReservedName,
                            "profiles/default is skipped: `default` is the root profile, whose home is $HERMES_HOME itself".into(),
                            false,
                        ));
                    }
                    EntryFacts::NotADirectory => plan.ignored.push(Ignored {
                        entry: shown,
                        why: "not a directory",
                    }),
                    EntryFacts::Dir {
                        has_seed: false, ..
                    } => plan.ignored.push(Ignored {
                        entry: shown,
                        why: "no SOUL.md: not a profile",
                    }),
                    EntryFacts::Symlink => plan.skipped.push(skip(
                        SkipReason::Symlink,
                        format!("profiles/{shown} is a symbolic link, which is not followed; skipped"),
                        true,
                    )),
                    EntryFacts::Unreadable(why) => plan.skipped.push(skip(
                        SkipReason::Unreadable,
                        format!("profiles/{shown} cannot be read ({why}); skipped"),
                        true,
                    )),
                    EntryFacts::Dir { has_seed: true, home } => match (name, home) {
                        (Some(name), Some(facts)) => {
                            let profile =
                                ProfileName::new(name).expect("the name was validated");
                            let home = survey.hermes_home.join("profiles").join(name);
                            let mut p = profile_plan(profile, home, facts, survey);
                            if settings.multiplex && p.start {
                                p.start = false;
                                p.notes.push(
                                    "the root gateway multiplexes every profile: named profiles are registered but not started".into(),
                                );
                            }
                            plan.profiles.push(p);
                        }
                        _ => plan.skipped.push(skip(
                            SkipReason::InvalidName,
                            format!(
                                "profiles/{shown} is skipped: a profile name is 1-63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
                            ),
                            true,
                        )),
                    },
                }
            }
        }
    }

    if let Some(room) = &survey.room {
        fit_to_room(&mut plan, room);
    }
    match &survey.slots {
        Ok(slots) => {
            plan.other_slots = slots
                .keys()
                .filter(|p| !plan.profiles.iter().any(|q| &q.profile == *p))
                .cloned()
                .collect();
        }
        Err(why) => plan.warnings.push(format!(
            "the scan directory cannot be read ({why}); every profile is registered"
        )),
    }
    plan
}

/// Leaves out the slots s6-svscan has no room for: past its limit, s6 2.15
/// aborts whole scans and may leave any service unsupervised, so the helper
/// would refuse the whole registration. The room goes to `default` first,
/// then to the profiles meant to run, then to the rest, each in name order.
fn fit_to_room(plan: &mut Plan, room: &Room) {
    let mut free = room.limit.max.saturating_sub(room.used);
    let mut order: Vec<usize> = (0..plan.profiles.len())
        .filter(|&i| plan.profiles[i].register)
        .collect();
    // The plan lists `default` first and the rest in name order already.
    order.sort_by_key(|&i| {
        let p = &plan.profiles[i];
        (p.profile.as_str() != DEFAULT_PROFILE, !p.start)
    });
    let needed = order.len() as u32 * room.limit.slot_cost();
    for i in order {
        if free >= room.limit.slot_cost() {
            free -= room.limit.slot_cost();
            continue;
        }
        let p = &mut plan.profiles[i];
        p.register = false;
        p.start = false;
        p.left_out = Some(format!(
            "left out: s6-svscan supervises at most {} services here ({}), {} are in use and the new slots need {needed}; unregister gateways no longer needed (hermes-s6 profile unregister <profile>) and reconcile again",
            room.limit.max,
            room.limit.source.as_str(),
            room.used
        ));
    }
}

fn profile_plan(
    profile: ProfileName,
    home: PathBuf,
    facts: &HomeFacts,
    survey: &Survey,
) -> ProfilePlan {
    let (intent, intent_source) = boot_intent(&facts.state);
    let prior_state = facts.state.text("gateway_state").map(str::to_owned);
    let slot = survey
        .slots
        .as_ref()
        .ok()
        .and_then(|slots| slots.get(&profile).copied());
    let already_up = slot.is_some_and(|s| s.up);
    let mut notes = Vec::new();
    if let StateFile::Unusable(why) = &facts.state {
        notes.push(why.clone());
    }
    let remove = if already_up {
        if !facts.stale_files.is_empty() {
            notes.push(format!(
                "{} kept: the gateway is running",
                facts.stale_files.join(" and ")
            ));
        }
        Vec::new()
    } else {
        facts.stale_files.clone()
    };
    ProfilePlan {
        // A gateway that runs right now (a second run in a live container)
        // did not exit at all: nothing can be said about a prior exit.
        prior_exit: if already_up {
            PriorExit::Unknown
        } else {
            PriorExit::of(facts.lifecycle_phase.as_deref())
        },
        logged_state: logged_state(&facts.state),
        desired_state: facts.state.text("desired_state").map(str::to_owned),
        state_file: match facts.state {
            StateFile::Missing => StateFileKind::Missing,
            StateFile::Object(_) => StateFileKind::Present,
            StateFile::Unusable(_) => StateFileKind::Unusable,
        },
        prior_state,
        start: intent == Intent::Running,
        intent,
        intent_source,
        register: slot.is_none(),
        left_out: None,
        already_up,
        remove,
        notes,
        profile,
        home,
    }
}

#[cfg(test)]
mod room_tests;
#[cfg(test)]
mod tests;
