//! The audit trail: one authpriv record per invocation, with caller uid,
//! operation, profiles and result; and no dependence on syslog being there.

mod common;
use common::*;

#[test]
fn each_invocation_leaves_exactly_one_authpriv_record() {
    let Some(c) =
        boot_with("each_invocation_leaves_exactly_one_authpriv_record", Options { syslog: true, ..Options::default() })
    else {
        return;
    };
    profile_dir(&c, "alpha");
    let calls: [(&[&str], &str); 5] = [
        (&["register", "alpha"], "caller_uid=10000 op=register profiles=alpha result=ok"),
        (&["start", "alpha"], "caller_uid=10000 op=start profiles=alpha result=ok"),
        (&["start", "nosuch"], "caller_uid=10000 op=start profiles=nosuch result=failed exit=66 failed_profiles=1"),
        (&["start", "Bad"], "caller_uid=10000 op=- profiles=- result=refused exit=65"),
        (&["rescan"], "caller_uid=10000 op=rescan profiles=- result=ok"),
    ];
    for (n, (args, expected)) in calls.iter().enumerate() {
        helper(&c, User::Hermes, args);
        c.wait_for(WAIT, "syslog record", || c.syslog_records().len() > n);
        let records = c.syslog_records();
        assert_eq!(records.len(), n + 1, "exactly one record per call: {records:#?}");
        let record = &records[n];
        let facility = record[1..record.find('>').unwrap()].parse::<u32>().unwrap() >> 3;
        assert_eq!(facility, 10, "LOG_AUTHPRIV: {record}");
        assert!(record.contains("hermes-s6-helper["), "{record}");
        assert!(record.ends_with(expected), "{record:?} should end with {expected:?}");
    }
    let root = helper(&c, User::Root, &["stop", "alpha"]);
    assert_eq!(root.code, Some(0));
    c.wait_for(WAIT, "root's record", || c.syslog_records().len() == 6);
    assert!(c.syslog_records()[5].ends_with("caller_uid=0 op=stop profiles=alpha result=ok"));
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
