//! Planning within s6-svscan's service limit.

use serde_json::json;

use super::tests::{find, names, object, p, profile_entry, survey};
use super::*;
use crate::s6::limit::{LimitSource, ServiceLimit};

fn running() -> StateFile {
    object(json!({ "desired_state": "running" }))
}

/// `default` and five named profiles, two of them meant to run, with room
/// for `slots` new gateway slots under a `-C` limit.
fn plan_with_room(slots: u32) -> Plan {
    let mut s = survey(
        StateFile::Missing,
        vec![
            profile_entry("alpha", StateFile::Missing),
            profile_entry("bravo", running()),
            profile_entry("charlie", StateFile::Missing),
            profile_entry("delta", running()),
            profile_entry("echo", StateFile::Missing),
        ],
    );
    let limit = ServiceLimit {
        max: 100,
        counts_loggers: true,
        source: LimitSource::ServicesOption,
    };
    s.room = Some(Room {
        limit,
        used: 100 - 2 * slots,
    });
    plan(&s, &Settings::default())
}

#[test]
fn with_room_for_everything_nothing_is_left_out() {
    let plan = plan_with_room(6);
    assert_eq!(plan.to_register().len(), 6);
    assert!(plan.profiles.iter().all(|p| p.left_out.is_none()));
}

#[test]
fn the_room_goes_to_default_then_to_the_profiles_meant_to_run_then_in_name_order() {
    let plan = plan_with_room(4);
    assert_eq!(
        plan.to_register(),
        [p("default"), p("alpha"), p("bravo"), p("delta")]
    );
    assert_eq!(plan.to_start(), [p("bravo"), p("delta")]);
    for name in ["charlie", "echo"] {
        let left = find(&plan, name);
        assert!(!left.register && !left.start);
        assert_eq!(left.action(), Action::Skipped);
        let why = left.left_out.as_deref().unwrap();
        assert!(
            why.contains(
                "at most 100 services here (s6-svscan -C), 92 are in use and the new slots need 12"
            ),
            "{why}"
        );
    }
    // Every profile is still in the plan (and so in the report and the
    // boot log), in its order.
    assert_eq!(
        names(&plan),
        ["default", "alpha", "bravo", "charlie", "delta", "echo"]
    );
}

#[test]
fn with_room_for_two_default_and_the_first_profile_meant_to_run_get_it() {
    let plan = plan_with_room(2);
    assert_eq!(plan.to_register(), [p("default"), p("bravo")]);
    assert_eq!(plan.to_start(), [p("bravo")]);
    assert!(find(&plan, "delta").left_out.is_some());
}

#[test]
fn with_no_room_even_default_is_left_out_and_says_why() {
    let plan = plan_with_room(0);
    assert!(plan.to_register().is_empty());
    assert!(find(&plan, "default").left_out.is_some());
}

#[test]
fn a_limit_counting_directories_costs_one_per_slot() {
    let mut s = survey(
        StateFile::Missing,
        vec![profile_entry("alpha", StateFile::Missing)],
    );
    s.room = Some(Room {
        limit: ServiceLimit {
            max: 10,
            counts_loggers: false,
            source: LimitSource::DirectoriesOption,
        },
        used: 9,
    });
    let plan = plan(&s, &Settings::default());
    assert_eq!(plan.to_register(), [p("default")]);
    assert!(
        find(&plan, "alpha")
            .left_out
            .as_deref()
            .unwrap()
            .contains("(s6-svscan -c)")
    );
}
