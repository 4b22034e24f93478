//! The audit trail: authpriv records with caller uid, operation, profiles
//! and result. A call that reaches the supervision tree is recorded twice,
//! "begun" before its first change and then its result, so that a helper
//! killed half way (by anything) still left a trace of what it was doing; a
//! call refused before it touched anything is recorded once. No dependence
//! on syslog being there.

mod common;
use common::*;

#[test]
fn a_change_is_recorded_before_and_after_and_a_refusal_once() {
    let Some(c) = boot_with(
        "a_change_is_recorded_before_and_after_and_a_refusal_once",
        Options { syslog: true, ..Options::default() },
    ) else {
        return;
    };
    profile_dir(&c, "alpha");
    let calls: [(&[&str], &[&str]); 5] = [
        (&["register", "alpha"], &["op=register profiles=alpha result=begun", "op=register profiles=alpha result=ok"]),
        (&["start", "alpha"], &["op=start profiles=alpha result=begun", "op=start profiles=alpha result=ok"]),
        (
            &["start", "nosuch"],
            &[
                "op=start profiles=nosuch result=begun",
                "op=start profiles=nosuch result=failed exit=66 failed_profiles=1",
            ],
        ),
        (&["start", "Bad"], &["op=- profiles=- result=refused exit=65"]),
        (&["rescan"], &["op=rescan profiles=- result=begun", "op=rescan profiles=- result=ok"]),
    ];
    let mut seen = 0;
    for (args, expected) in calls {
        helper(&c, User::Hermes, args);
        c.wait_for(WAIT, "syslog records", || c.syslog_records().len() >= seen + expected.len());
        let records = c.syslog_records();
        assert_eq!(records.len(), seen + expected.len(), "records of {args:?}: {records:#?}");
        for (record, expected) in records[seen..].iter().zip(expected) {
            let facility = record[1..record.find('>').unwrap()].parse::<u32>().unwrap() >> 3;
            assert_eq!(facility, 10, "LOG_AUTHPRIV: {record}");
            assert!(record.contains("hermes-s6-helper["), "{record}");
            let expected = format!("caller_uid=10000 via=setuid {expected}");
            assert!(record.ends_with(&expected), "{record:?} should end with {expected:?}");
        }
        seen = records.len();
    }
    let root = helper(&c, User::Root, &["stop", "alpha"]);
    assert_eq!(root.code, Some(0));
    c.wait_for(WAIT, "root's records", || c.syslog_records().len() == seen + 2);
    assert!(c.syslog_records()[seen].ends_with("caller_uid=0 via=root op=stop profiles=alpha result=begun"));
    assert!(c.syslog_records()[seen + 1].ends_with("caller_uid=0 via=root op=stop profiles=alpha result=ok"));
}

#[test]
fn every_operation_works_without_a_syslog() {
    let Some(c) = boot("every_operation_works_without_a_syslog") else {
        return;
    };
    assert!(!c.host_path("/dev/log").exists());
    profile_dir(&c, "alpha");
    for args in [
        &["register", "alpha"][..],
        &["start", "alpha"],
        &["restart", "alpha"],
        &["stop", "alpha"],
        &["rescan"],
        &["unregister", "alpha"],
    ] {
        ok(&c, args);
    }
}
