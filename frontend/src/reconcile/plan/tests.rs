//! Every planning rule, on hand-made surveys.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use serde_json::{Map, Value, json};

use super::*;
use crate::reconcile::survey::{Entry, SlotFacts};

pub(super) fn p(name: &str) -> ProfileName {
    ProfileName::new(name).unwrap()
}

pub(super) fn object(value: Value) -> StateFile {
    match value {
        Value::Object(map) => StateFile::Object(map),
        other => panic!("{other}"),
    }
}

pub(super) fn home(state: StateFile) -> HomeFacts {
    HomeFacts {
        state,
        stale_files: Vec::new(),
        lifecycle_phase: None,
    }
}

pub(super) fn profile_entry(name: &str, state: StateFile) -> Entry {
    Entry {
        name: name.into(),
        facts: EntryFacts::Dir {
            has_seed: true,
            home: is_valid_profile_name(name).then(|| home(state)),
        },
    }
}

pub(super) fn survey(root: StateFile, entries: Vec<Entry>) -> Survey {
    let mut entries = entries;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Survey {
        hermes_home: "/opt/data".into(),
        root: Ok(home(root)),
        profiles_dir: ProfilesDir::Entries(entries),
        slots: Ok(BTreeMap::new()),
        room: None,
    }
}

pub(super) fn names(plan: &Plan) -> Vec<&str> {
    plan.profiles.iter().map(|p| p.profile.as_str()).collect()
}

pub(super) fn find<'a>(plan: &'a Plan, name: &str) -> &'a ProfilePlan {
    plan.profiles
        .iter()
        .find(|p| p.profile.as_str() == name)
        .unwrap_or_else(|| panic!("{name} not planned: {plan:#?}"))
}

fn gateway_run() -> Settings {
    Settings {
        container_command: Some(vec!["gateway".into(), "run".into()]),
        ..Settings::default()
    }
}

#[test]
fn default_is_always_first_then_real_profiles_in_name_order() {
    let s = survey(
        StateFile::Missing,
        vec![
            profile_entry("zeta", StateFile::Missing),
            profile_entry("alpha", StateFile::Missing),
            profile_entry("0day", StateFile::Missing),
            profile_entry("a-b_c", StateFile::Missing),
        ],
    );
    let plan = plan(&s, &Settings::default());
    assert_eq!(plan.mode, ReconcileMode::Reconcile);
    assert_eq!(names(&plan), ["default", "0day", "a-b_c", "alpha", "zeta"]);
    let root = find(&plan, "default");
    assert_eq!(root.home, PathBuf::from("/opt/data"));
    assert_eq!(
        find(&plan, "alpha").home,
        PathBuf::from("/opt/data/profiles/alpha")
    );
    assert!(plan.profiles.iter().all(|p| p.register && !p.start));
    assert!(plan.warnings.is_empty() && plan.skipped.is_empty());

    // Nothing on the volume at all: default still gets its slot.
    let empty = Survey {
        profiles_dir: ProfilesDir::Missing,
        ..survey(StateFile::Missing, vec![])
    };
    let plan = super::plan(&empty, &Settings::default());
    assert_eq!(names(&plan), ["default"]);
    assert_eq!(plan.to_register(), [p("default")]);
}

#[test]
fn profiles_default_is_skipped_with_a_warning_and_no_log_line() {
    let seeded = profile_entry("default", object(json!({"desired_state": "running"})));
    let unseeded = Entry {
        name: "default".into(),
        facts: EntryFacts::Dir {
            has_seed: false,
            home: None,
        },
    };
    let linked = Entry {
        name: "default".into(),
        facts: EntryFacts::Symlink,
    };
    for entry in [seeded, unseeded, linked] {
        let s = survey(StateFile::Missing, vec![entry.clone()]);
        let plan = plan(&s, &Settings::default());
        assert_eq!(names(&plan), ["default"]);
        assert!(
            !find(&plan, "default").start,
            "its state file is not the root's"
        );
        assert_eq!(plan.skipped.len(), 1, "{entry:?}");
        let skipped = &plan.skipped[0];
        assert_eq!(skipped.reason, SkipReason::ReservedName);
        assert!(!skipped.logged);
        assert!(
            skipped.message.contains("root profile"),
            "{}",
            skipped.message
        );
    }
}

#[test]
fn names_the_helper_would_refuse_are_skipped_and_reported() {
    let long_ok = "a".repeat(63);
    let too_long = "a".repeat(64);
    let s = survey(
        StateFile::Missing,
        vec![
            profile_entry("Bad_Name", StateFile::Missing),
            profile_entry(&too_long, StateFile::Missing),
            profile_entry(&long_ok, StateFile::Missing),
            profile_entry("-dash", StateFile::Missing),
            profile_entry("_under", StateFile::Missing),
            profile_entry("dot.ted", StateFile::Missing),
            profile_entry("spa ce", StateFile::Missing),
            Entry {
                name: OsString::from_vec(b"bad\xffname\n".to_vec()),
                facts: EntryFacts::Dir {
                    has_seed: true,
                    home: None,
                },
            },
        ],
    );
    let plan = plan(&s, &Settings::default());
    assert_eq!(names(&plan), ["default", long_ok.as_str()]);
    let skipped: Vec<&str> = plan.skipped.iter().map(|s| s.entry.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "-dash",
            "Bad_Name",
            "_under",
            too_long.as_str(),
            "bad\\xffname\\x0a",
            "dot.ted",
            "spa\\x20ce"
        ]
    );
    for s in &plan.skipped {
        assert_eq!(s.reason, SkipReason::InvalidName);
        assert!(s.logged);
        assert!(s.message.contains("1-63 characters"), "{}", s.message);
        assert!(!s.message.contains('\n'));
    }
}

#[test]
fn symlinks_are_skipped_and_non_profiles_ignored() {
    let s = survey(
        StateFile::Missing,
        vec![
            Entry {
                name: "linked".into(),
                facts: EntryFacts::Symlink,
            },
            Entry {
                name: "notes.txt".into(),
                facts: EntryFacts::NotADirectory,
            },
            Entry {
                name: "scratch".into(),
                facts: EntryFacts::Dir {
                    has_seed: false,
                    home: None,
                },
            },
            Entry {
                name: "locked".into(),
                facts: EntryFacts::Unreadable("cannot open it: EACCES".into()),
            },
        ],
    );
    let plan = plan(&s, &Settings::default());
    assert_eq!(names(&plan), ["default"]);
    let reasons: Vec<(&str, &SkipReason)> = plan
        .skipped
        .iter()
        .map(|s| (s.entry.as_str(), &s.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("linked", &SkipReason::Symlink),
            ("locked", &SkipReason::Unreadable)
        ]
    );
    assert!(plan.skipped[0].message.contains("symbolic link"));
    let ignored: Vec<&str> = plan.ignored.iter().map(|i| i.entry.as_str()).collect();
    assert_eq!(ignored, ["notes.txt", "scratch"]);
}

#[test]
fn a_symlinked_or_unreadable_profiles_dir_is_a_warning() {
    for (dir, part) in [
        (ProfilesDir::Symlink, "symbolic link"),
        (ProfilesDir::Unreadable("EACCES".into()), "EACCES"),
    ] {
        let s = Survey {
            profiles_dir: dir,
            ..survey(StateFile::Missing, vec![])
        };
        let plan = plan(&s, &Settings::default());
        assert_eq!(names(&plan), ["default"]);
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.warnings[0].contains(part), "{:?}", plan.warnings);
    }
}

#[test]
fn intent_follows_desired_state_then_gateway_state() {
    use Intent::{Running, Stopped};
    use IntentSource::{DesiredState, GatewayState, Unrecorded as NoSource, Unusable};
    let cases: Vec<(StateFile, Intent, IntentSource)> = vec![
        (
            object(json!({"desired_state": "running"})),
            Running,
            DesiredState,
        ),
        (
            object(json!({"desired_state": "stopped"})),
            Stopped,
            DesiredState,
        ),
        (
            object(json!({"desired_state": "stopped", "gateway_state": "running"})),
            Stopped,
            DesiredState,
        ),
        (
            object(json!({"desired_state": "running", "gateway_state": "startup_failed"})),
            Running,
            DesiredState,
        ),
        (
            object(json!({"desired_state": "paused"})),
            Stopped,
            DesiredState,
        ),
        (
            object(json!({"gateway_state": "running"})),
            Running,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "draining"})),
            Running,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "degraded"})),
            Running,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "starting"})),
            Stopped,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "startup_failed"})),
            Stopped,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "stopped"})),
            Stopped,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": "RUNNING"})),
            Stopped,
            GatewayState,
        ),
        // A desired_state that is not a string does not count.
        (
            object(json!({"desired_state": null, "gateway_state": "draining"})),
            Running,
            GatewayState,
        ),
        (
            object(json!({"desired_state": 1, "gateway_state": "stopped"})),
            Stopped,
            GatewayState,
        ),
        (
            object(json!({"gateway_state": ["running"]})),
            Stopped,
            NoSource,
        ),
        (object(json!({})), Stopped, NoSource),
        (object(json!({"pid": 42})), Stopped, NoSource),
        (StateFile::Missing, Stopped, NoSource),
        (
            StateFile::Unusable("not a JSON object".into()),
            Stopped,
            Unusable,
        ),
    ];
    for (state, intent, source) in cases {
        assert_eq!(boot_intent(&state), (intent, source), "{state:?}");
        // And through the plan, for a named profile.
        let s = survey(
            StateFile::Missing,
            vec![profile_entry("work", state.clone())],
        );
        let plan = plan(&s, &Settings::default());
        let work = find(&plan, "work");
        assert_eq!(work.start, intent == Running, "{state:?}");
        assert_eq!(work.action() == Action::Started, intent == Running);
        assert!(work.register);
    }
}

#[test]
fn an_unusable_state_file_is_noted_and_registered_down() {
    let s = survey(
        StateFile::Unusable("gateway_state.json is not a JSON object".into()),
        vec![],
    );
    let plan = plan(&s, &Settings::default());
    let root = find(&plan, "default");
    assert!(!root.start);
    assert_eq!(root.state_file, StateFileKind::Unusable);
    assert_eq!(root.prior_state, None);
    assert_eq!(root.prior_exit, PriorExit::Unknown);
    assert!(
        root.notes[0].contains("not a JSON object"),
        "{:?}",
        root.notes
    );
}

#[test]
fn prior_exit_comes_from_the_lifecycle_ledger() {
    for (phase, exit) in [
        (Some("exited"), PriorExit::Clean),
        (Some("running"), PriorExit::Unclean),
        (Some("starting"), PriorExit::Unknown),
        (None, PriorExit::Unknown),
    ] {
        assert_eq!(PriorExit::of(phase), exit);
        let mut map = Map::new();
        map.insert("gateway_state".into(), "stopped".into());
        let mut s = survey(StateFile::Object(map), vec![]);
        if let Ok(root) = &mut s.root {
            root.lifecycle_phase = phase.map(str::to_owned);
        }
        let plan = plan(&s, &Settings::default());
        let root = find(&plan, "default");
        assert_eq!(root.prior_state.as_deref(), Some("stopped"));
        assert_eq!(root.prior_exit, exit);
    }
    assert_eq!(PriorExit::Unclean.as_str(), "unclean");
}

#[test]
fn the_logged_state_is_the_boot_intent_as_upstream_reads_it() {
    for (desired, gateway, logged) in [
        (Some("stopped"), Some("running"), Some("stopped")),
        (None, Some("draining"), Some("running")),
        (None, Some("degraded"), Some("running")),
        (None, Some("startup_failed"), Some("startup_failed")),
        (None, None, None),
    ] {
        let mut map = Map::new();
        if let Some(d) = desired {
            map.insert("desired_state".into(), d.into());
        }
        if let Some(g) = gateway {
            map.insert("gateway_state".into(), g.into());
        }
        let s = survey(StateFile::Object(map), vec![]);
        let plan = plan(&s, &Settings::default());
        assert_eq!(find(&plan, "default").logged_state.as_deref(), logged);
    }
}

#[test]
fn a_legacy_gateway_run_container_seeds_the_root_profile() {
    let s = survey(
        StateFile::Missing,
        vec![profile_entry("work", StateFile::Missing)],
    );
    let plan = plan(&s, &gateway_run());
    assert!(plan.seed_root_state);
    let root = find(&plan, "default");
    assert!(root.start);
    assert_eq!(root.intent, Intent::Running);
    assert_eq!(root.intent_source, IntentSource::Seeded);
    assert_eq!(root.prior_state, None, "the prior state is what was found");
    assert!(
        !find(&plan, "work").start,
        "only the root profile is seeded"
    );

    // Also when the program name is spelled out.
    let hermes = Settings {
        container_command: Some(vec!["hermes".into(), "gateway".into(), "run".into()]),
        ..Settings::default()
    };
    assert!(super::plan(&s, &hermes).seed_root_state);
}

#[test]
fn seeding_needs_no_state_file_and_supervision() {
    let run = gateway_run();
    // A state file of any kind is respected.
    for state in [
        object(json!({"gateway_state": "stopped"})),
        object(json!({})),
        StateFile::Unusable("corrupt".into()),
    ] {
        let plan = plan(&survey(state.clone(), vec![]), &run);
        assert!(!plan.seed_root_state, "{state:?}");
        assert!(!find(&plan, "default").start, "{state:?}");
    }
    let s = survey(StateFile::Missing, vec![]);
    let env_off = Settings {
        no_supervise: true,
        ..gateway_run()
    };
    assert!(!plan(&s, &env_off).seed_root_state);
    let flag_off = Settings {
        container_command: Some(
            ["gateway", "run", "--no-supervise"]
                .map(String::from)
                .to_vec(),
        ),
        ..Settings::default()
    };
    assert!(!plan(&s, &flag_off).seed_root_state);
    // Other commands never seed.
    for command in [vec![], vec!["chat"], vec!["gateway", "start"]] {
        let settings = Settings {
            container_command: Some(command.iter().map(|w| w.to_string()).collect()),
            ..Settings::default()
        };
        assert!(!plan(&s, &settings).seed_root_state, "{command:?}");
    }
    assert!(!plan(&s, &Settings::default()).seed_root_state);
    // An unreadable home is not "no state file".
    let unreadable = Survey {
        root: Err("EACCES".into()),
        ..survey(StateFile::Missing, vec![])
    };
    let plan = plan(&unreadable, &run);
    assert!(!plan.seed_root_state);
    assert!(!find(&plan, "default").start);
    assert!(plan.warnings[0].contains("EACCES"));
}

#[test]
fn a_dashboard_container_does_not_reconcile() {
    let s = survey(
        object(json!({"desired_state": "running"})),
        vec![profile_entry(
            "work",
            object(json!({"desired_state": "running"})),
        )],
    );
    let settings = Settings {
        container_command: Some(vec!["dashboard".into()]),
        ..Settings::default()
    };
    let plan = plan(&s, &settings);
    assert_eq!(plan.mode, ReconcileMode::DashboardOnly);
    assert!(plan.profiles.is_empty());
    assert!(plan.to_register().is_empty() && plan.to_start().is_empty());
}

#[test]
fn multiplexing_registers_named_profiles_without_starting_them() {
    let running = || object(json!({"desired_state": "running"}));
    let s = survey(
        running(),
        vec![
            profile_entry("work", running()),
            profile_entry("idle", object(json!({"desired_state": "stopped"}))),
        ],
    );
    let settings = Settings {
        multiplex: true,
        ..Settings::default()
    };
    let plan = plan(&s, &settings);
    assert_eq!(plan.to_start(), [p("default")]);
    assert_eq!(plan.to_register(), [p("default"), p("idle"), p("work")]);
    let work = find(&plan, "work");
    assert_eq!(work.intent, Intent::Running, "the intent itself is kept");
    assert_eq!(work.action(), Action::Registered);
    assert!(
        work.notes
            .iter()
            .any(|n| n.contains("multiplexes every profile"))
    );
    assert!(find(&plan, "idle").notes.is_empty());
}

#[test]
fn stale_files_are_removed_unless_the_gateway_runs() {
    let mut s = survey(StateFile::Missing, vec![]);
    s.root = Ok(HomeFacts {
        state: object(json!({"desired_state": "running", "gateway_state": "running"})),
        stale_files: vec!["gateway.pid", "processes.json"],
        lifecycle_phase: None,
    });
    s.profiles_dir = ProfilesDir::Entries(vec![Entry {
        name: "work".into(),
        facts: EntryFacts::Dir {
            has_seed: true,
            home: Some(HomeFacts {
                state: StateFile::Missing,
                stale_files: vec!["gateway.pid"],
                lifecycle_phase: None,
            }),
        },
    }]);
    let plan1 = plan(&s, &Settings::default());
    assert_eq!(
        find(&plan1, "default").remove,
        ["gateway.pid", "processes.json"]
    );
    assert_eq!(find(&plan1, "work").remove, ["gateway.pid"]);

    // A second run in a live container: default's gateway is up.
    s.slots = Ok([
        (p("default"), SlotFacts { up: true }),
        (p("work"), SlotFacts { up: false }),
    ]
    .into());
    let plan2 = plan(&s, &Settings::default());
    let root = find(&plan2, "default");
    assert!(root.remove.is_empty());
    assert_eq!(root.prior_exit, PriorExit::Unknown, "it has not exited");
    assert!(root.already_up && !root.register && root.start);
    assert!(
        root.notes.iter().any(|n| n.contains("kept")),
        "{:?}",
        root.notes
    );
    let work = find(&plan2, "work");
    assert_eq!(work.remove, ["gateway.pid"]);
    assert!(!work.register && !work.already_up);
}

#[test]
fn only_missing_slots_are_registered_and_foreign_ones_are_listed() {
    let mut s = survey(
        StateFile::Missing,
        vec![
            profile_entry("alpha", object(json!({"desired_state": "running"}))),
            profile_entry("beta", StateFile::Missing),
        ],
    );
    s.slots = Ok([
        (p("alpha"), SlotFacts { up: false }),
        (p("orphan"), SlotFacts { up: true }),
    ]
    .into());
    let plan1 = plan(&s, &Settings::default());
    assert_eq!(plan1.to_register(), [p("default"), p("beta")]);
    assert_eq!(plan1.to_start(), [p("alpha")]);
    assert_eq!(plan1.other_slots, [p("orphan")]);

    s.slots = Err("cannot list /run/service: ENOENT".into());
    let plan2 = plan(&s, &Settings::default());
    assert_eq!(plan2.to_register(), [p("default"), p("alpha"), p("beta")]);
    assert!(plan2.warnings.iter().any(|w| w.contains("ENOENT")));
}

#[test]
fn the_plan_is_deterministic() {
    let s = survey(
        object(json!({"gateway_state": "draining"})),
        vec![
            profile_entry("b", StateFile::Missing),
            profile_entry("a", object(json!({"desired_state": "running"}))),
        ],
    );
    assert_eq!(plan(&s, &gateway_run()), plan(&s, &gateway_run()));
}

#[test]
fn escapes_entry_names() {
    assert_eq!(escape_name(OsStr::new("Good.name-1_x")), "Good.name-1_x");
    assert_eq!(escape_name(OsStr::new("a b=c")), "a\\x20b\\x3dc");
    let long = "x".repeat(70);
    assert_eq!(
        escape_name(OsStr::new(&long)),
        format!("{}...", "x".repeat(64))
    );
}
