//! A non-root container: `docker run --user <hermes uid>` with s6-overlay
//! ([`Options::non_root`]), booted with the image's own cont-init steps.
//! s6-svscan, so every s6-supervise and every gateway, runs as hermes, and
//! `/run/service` is hermes's. `hermes-s6` picks the owner transport: it
//! runs the helper with its own rights (no_new_privs set, so the helper's
//! setuid bit is ignored), and the helper acts for the scan directory's
//! owner alone, expecting that user instead of root as the owner of the
//! slots; their `run` scripts have no drop to hermes. The whole lifecycle,
//! the reconcile across a restart, `info` and `doctor`, the audit trail
//! (`via=owner`), and the refusals, each checked from root against s6 and
//! the files themselves. Runs on every s6 version the suite runs
//! (`HERMES_EMU_S6=2.11|2.13|2.15`). Also as the Pod of
//! `docker/kubernetes-pod-restricted.yaml` runs: no_new_privs, no
//! capability at all, a read-only root.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

fn boot_non_root(test: &str) -> Option<Container> {
    boot_with(
        test,
        Options {
            non_root: true,
            cont_init: true,
            ..Options::default()
        },
    )
}

/// `field:` of `/proc/<pid>/status` in the container, read as root, its
/// values separated by single spaces.
fn proc_status(c: &Container, pid: i64, field: &str) -> String {
    let out = sh_ok(c, User::Root, &format!("cat /proc/{pid}/status"));
    out.lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{out}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a slot looks like in a non-root container, checked from root:
/// every entry of it (scripts, `env/`, `supervise/`, `event/`, the
/// logger's) is hermes's, not root's; `run` and `log/run` run the gateway
/// and its logger without `s6-setuidgid` (s6 already runs as hermes); its
/// supervisor is hermes's. When up, the gateway process runs as hermes in
/// every uid and gid.
#[track_caller]
fn assert_slot_is_hermes(c: &Container, profile: &str) {
    let slot = format!("gateway-{profile}");
    let (uid, gid) = (c.uid(User::Hermes), c.gid(User::Hermes));
    let entries: BTreeMap<String, String> = tree(c)
        .into_iter()
        .filter(|(path, _)| *path == format!("/{slot}") || path.starts_with(&format!("/{slot}/")))
        .collect();
    for name in ["", "/run", "/log/run", "/supervise", "/log/supervise"] {
        assert!(
            entries.contains_key(&format!("/{slot}{name}")),
            "/{slot}{name} missing: {entries:#?}"
        );
    }
    for (path, description) in &entries {
        let owner = description.split(' ').nth(1).unwrap();
        assert_eq!(owner, format!("{uid}:{gid}"), "{path}: {description}");
    }
    for script in ["run", "log/run"] {
        let text = sh_ok(c, User::Root, &format!("cat /run/service/{slot}/{script}"));
        assert!(!text.contains("s6-setuidgid"), "{slot}/{script}:\n{text}");
    }
    let s = svstat(c, &slot);
    assert!(s.supervised, "{slot}: {s:?}");
    if s.up {
        for field in ["Uid:", "Gid:"] {
            let id = if field == "Uid:" { uid } else { gid };
            assert_eq!(
                proc_status(c, s.pid, field),
                format!("{id} {id} {id} {id}"),
                "{slot}'s gateway (pid {}): {field}",
                s.pid
            );
        }
    }
}

/// s6-svscan itself: PID 1, as hermes.
#[track_caller]
fn assert_s6_runs_as_hermes(c: &Container) {
    let uid = c.uid(User::Hermes);
    assert_eq!(
        proc_status(c, 1, "Uid:"),
        format!("{uid} {uid} {uid} {uid}")
    );
    assert_eq!(sh_ok(c, User::Root, "cat /proc/1/comm"), "s6-svscan\n");
}

/// The gateway's entry in `hermes-s6 gateway status -p <profile> --json`.
fn status_of(c: &Container, profile: &str) -> Value {
    let doc = json(&ok(c, &["gateway", "status", "-p", profile, "--json"]));
    check_status_doc(&doc);
    doc["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["profile"] == profile)
        .unwrap_or_else(|| panic!("{profile} not in {doc}"))
        .clone()
}

/// Every helper record (but `--version` probes) names hermes as the
/// caller and the owner transport.
#[track_caller]
fn assert_all_via_owner(c: &Container, records: &[String]) {
    assert!(!records.is_empty());
    let uid = c.uid(User::Hermes);
    for record in records {
        assert!(
            record.starts_with(&format!("caller_uid={uid} via=owner ")),
            "{record}\n{records:#?}"
        );
    }
}

#[test]
fn the_whole_lifecycle_runs_as_hermes_on_s6_run_by_hermes_and_is_audited_via_owner() {
    let Some(c) = boot_non_root(
        "the_whole_lifecycle_runs_as_hermes_on_s6_run_by_hermes_and_is_audited_via_owner",
    ) else {
        return;
    };
    assert_s6_runs_as_hermes(&c);
    assert_eq!(json(&ok(&c, &["info", "--json"]))["control_mode"], "owner");
    profiles(&c, &["work"]);

    // Register (down), with an environment payload.
    hs6_as(
        &c,
        User::Hermes,
        &["profile", "register", "work", "--down"],
        &[],
        Some(br#"{"WORK_TOKEN": "t0k3n"}"#),
    )
    .assert_success();
    let s = wait_down(&c, "gateway-work");
    assert!(!s.up && !s.wanted_up, "{s:?}");
    assert_slot_is_hermes(&c, "work");
    let token = sh_ok(
        &c,
        User::Root,
        "cat /run/service/gateway-work/env/WORK_TOKEN",
    );
    assert_eq!(token.trim(), "t0k3n");

    // Start.
    ok(&c, &["gateway", "start", "-p", "work"]);
    let pid = wait_gateway_running(&c, "work");
    assert_slot_is_hermes(&c, "work");
    let status = status_of(&c, "work");
    assert_eq!(status["state"], "up", "{status}");
    assert_eq!(status["process"]["pid"].as_i64(), Some(pid), "{status}");

    // Restart: a new gateway process, hermes's again.
    ok(&c, &["gateway", "restart", "-p", "work"]);
    c.wait_for(WAIT, "work restarted", || {
        let s = svstat(&c, "gateway-work");
        s.up && s.pid > 0 && s.pid != pid
    });
    // Stop only once the restarted gateway has recorded its own state: the
    // gateway and the stop both rewrite gateway_state.json, and a stop in
    // that instant can lose its intent (README: the two-writer limit).
    let restarted = wait_gateway_running(&c, "work");
    assert_ne!(restarted, pid);
    assert_slot_is_hermes(&c, "work");
    assert_eq!(
        status_of(&c, "work")["process"]["pid"].as_i64(),
        Some(restarted)
    );

    // Stop.
    ok(&c, &["gateway", "stop", "-p", "work"]);
    let s = wait_down(&c, "gateway-work");
    assert!(!s.wanted_up, "{s:?}");
    assert_slot_is_hermes(&c, "work");
    let status = status_of(&c, "work");
    assert_eq!(status["state"], "down", "{status}");
    assert!(status["process"]["pid"].is_null(), "{status}");

    // Unregister: the slot, its supervisors and its processes are gone.
    ok(&c, &["profile", "unregister", "work"]);
    assert!(!c.host_path("/run/service/gateway-work").exists());
    assert!(!svstat(&c, "gateway-work").supervised);
    c.wait_for(WAIT, "gateway-work's supervisors gone", || {
        !sh_ok(&c, User::Root, "ps -eo args").contains("gateway-work")
    });
    assert_eq!(status_of(&c, "work")["state"], "unregistered");

    // Every call the helper took is recorded as hermes's, over the owner
    // transport.
    let records: Vec<String> = helper_calls(&c)
        .into_iter()
        .filter(|r| !r.contains(" op=--version "))
        .collect();
    assert_all_via_owner(&c, &records);
    assert_every_operation_succeeded(&records);
}

#[test]
fn after_a_restart_a_running_profile_runs_again_and_a_stopped_one_stays_down() {
    let Some(mut c) =
        boot_non_root("after_a_restart_a_running_profile_runs_again_and_a_stopped_one_stays_down")
    else {
        return;
    };
    profiles(&c, &["alpha", "beta"]);
    ok(&c, &["profile", "register", "alpha"]);
    ok(&c, &["profile", "register", "beta"]);
    wait_gateway_running(&c, "alpha");
    wait_gateway_running(&c, "beta");
    ok(&c, &["gateway", "stop", "-p", "beta"]);
    wait_down(&c, "gateway-beta");
    wait_gateway_state(&c, "beta", "stopped");

    c.restart();

    assert_s6_runs_as_hermes(&c);
    let reconcile = c
        .boot_log()
        .iter()
        .find(|run| run.boot == 2 && run.script.ends_with("/02-reconcile-profiles"))
        .expect("the second boot's reconcile");
    assert!(reconcile.success(), "{reconcile:?}");
    assert!(
        reconcile.stdout.contains("owner transport"),
        "{reconcile:?}"
    );
    wait_gateway_running(&c, "alpha");
    let beta = svstat(&c, "gateway-beta");
    assert!(beta.supervised && !beta.up && !beta.wanted_up, "{beta:?}");
    for profile in ["default", "alpha", "beta"] {
        assert_slot_is_hermes(&c, profile);
    }
    // The boot's own calls (the reconcile runs hermes-s6 as hermes) went
    // through the owner transport too.
    let records: Vec<String> = helper_calls(&c)
        .into_iter()
        .filter(|r| !r.contains(" op=--version "))
        .collect();
    assert_all_via_owner(&c, &records);
    assert!(
        calls_of(&records, "start")
            .iter()
            .any(|r| r.contains("alpha") && r.ends_with(" result=ok")),
        "{records:#?}"
    );
}

#[test]
fn info_says_owner_registration_works_and_doctor_finds_nothing_wrong() {
    let Some(c) =
        boot_non_root("info_says_owner_registration_works_and_doctor_finds_nothing_wrong")
    else {
        return;
    };
    let info = json(&ok(&c, &["info", "--json"]));
    assert_eq!(info["control_mode"], "owner", "{info}");
    assert_eq!(info["runtime_registration"], true, "{info}");
    let reason = info["control_reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("uid {}", c.uid(User::Hermes))),
        "{info}"
    );

    profiles(&c, &["work"]);
    ok(&c, &["profile", "register", "work"]);
    wait_gateway_running(&c, "work");
    assert_slot_is_hermes(&c, "work");

    let out = hs6(&c, &["doctor", "--json"]);
    let report = json(&out);
    assert_eq!(report["control_mode"], "owner", "{}", out.stdout);
    let checks = report["checks"].as_array().unwrap();
    let not_ok: Vec<&Value> = checks.iter().filter(|c| c["verdict"] != "ok").collect();
    assert!(
        not_ok.is_empty() && out.success(),
        "doctor found problems: {not_ok:#?}\n{out:?}"
    );
    // The checks of the helper and of the scan directory were made, and
    // passed (the non-root wording: nothing demanded of root).
    let socket = checks.iter().find(|c| c["id"] == "helper.socket").unwrap();
    assert!(
        socket["detail"]
            .as_str()
            .unwrap()
            .contains("a non-root container"),
        "{socket}"
    );
    for id in [
        "control_mode",
        "helper.installed",
        "helper.permissions",
        "helper.effective",
        "svscan.running",
        "scandir.permissions",
    ] {
        let check = checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no {id} check: {}", out.stdout));
        assert_eq!(check["verdict"], "ok", "{check}");
    }
}

/// The scan tree (types, owners, modes, sizes) and s6's view of every
/// slot (its last transition's time included): equal means nothing
/// changed, neither on disk nor in supervision.
fn snapshot(c: &Container) -> (BTreeMap<String, String>, BTreeMap<String, Svstat>) {
    (hermes_s6_emu::scan_tree(c, true), svstat_all(c))
}

/// A running `work` slot and a down `idle` one to be refused changes to.
fn two_slots(c: &Container) {
    profiles(c, &["work", "idle"]);
    ok(c, &["profile", "register", "work"]);
    ok(c, &["profile", "register", "idle", "--down"]);
    wait_gateway_running(c, "work");
    wait_down(c, "gateway-idle");
}

/// What each refused call could have changed.
const CHANGES: &[&[&str]] = &[
    &["stop", "work"],
    &["start", "idle"],
    &["unregister", "work"],
    &["register", "fresh"],
];

#[test]
fn users_other_than_the_owner_are_refused_and_change_nothing() {
    let Some(c) = boot_non_root("users_other_than_the_owner_are_refused_and_change_nothing") else {
        return;
    };
    two_slots(&c);
    let before = snapshot(&c);
    let calls = helper_calls(&c).len();
    let hermes_gid = c.gid(User::Hermes);
    for args in CHANGES {
        let mut argv = vec![HELPER];
        argv.extend_from_slice(args);
        // Outside group hermes: the helper's mode (4750 root:hermes) keeps
        // it from being executed at all (env's 126).
        let out = c.run_as(User::Intruder, &argv, &[], None);
        assert_eq!(out.code, Some(126), "{out:?}");
        assert!(out.stderr.contains("Permission denied"), "{out:?}");
        // In group hermes, with no_new_privs (so with its own rights, as
        // hermes-s6 runs it here): the helper is not root and the intruder
        // does not own the scan dir: 77, not authorized.
        let out = c
            .exec(User::Intruder, &argv)
            .groups(&[hermes_gid])
            .no_new_privs()
            .output();
        assert_eq!(out.code, Some(77), "{out:?}");
        assert!(out.stderr.contains("not running as root"), "{out:?}");
    }
    // hermes-s6 as the intruder: not the scan dir's owner, so not the
    // owner transport, and the helper cannot be executed: 77, saying so
    // (not blaming capabilities s6 run as hermes does not need).
    for args in [
        &["gateway", "stop", "-p", "work"][..],
        &["gateway", "start", "-p", "idle"],
        &["profile", "unregister", "work"],
    ] {
        let out = hs6_as(&c, User::Intruder, args, &[], None);
        assert_eq!(out.code, Some(77), "{out:?}");
        assert!(out.stderr.contains("permission denied"), "{out:?}");
    }
    assert_eq!(snapshot(&c), before);
    // One record per call that reached the helper, refused before its
    // arguments were even read.
    let uid = c.uid(User::Intruder);
    assert_eq!(
        helper_calls(&c)[calls..],
        vec![
            format!("caller_uid={uid} via=owner op=- profiles=- result=refused exit=77");
            CHANGES.len()
        ]
    );
}

#[test]
fn the_setuid_helper_run_as_root_refuses_a_tree_that_is_not_roots_and_changes_nothing() {
    let Some(c) = boot_non_root(
        "the_setuid_helper_run_as_root_refuses_a_tree_that_is_not_roots_and_changes_nothing",
    ) else {
        return;
    };
    two_slots(&c);
    let before = snapshot(&c);
    let calls = helper_calls(&c).len();
    let hermes_gid = c.gid(User::Hermes);
    let mut expected = Vec::new();
    for args in CHANGES {
        let mut argv = vec![HELPER];
        argv.extend_from_slice(args);
        // Without no_new_privs the kernel honors the setuid bit: the helper
        // runs as root (caller authorized through group hermes), finds a
        // scan dir that is hermes's, not root's, and refuses it as an
        // unsafe state: 78, before it touches anything.
        let out = c.run_as(User::Hermes, &argv, &[], None);
        assert_eq!(out.code, Some(78), "{out:?}");
        assert!(out.stderr.contains("nothing changed"), "{out:?}");
        // The same for any other member of group hermes.
        let out = c.exec(User::Intruder, &argv).groups(&[hermes_gid]).output();
        assert_eq!(out.code, Some(78), "{out:?}");
        for user in [User::Hermes, User::Intruder] {
            expected.push(format!(
                "caller_uid={} via=setuid op={} profiles={} result=refused exit=78",
                c.uid(user),
                args[0],
                args[1]
            ));
        }
    }
    assert_eq!(snapshot(&c), before);
    assert_eq!(helper_calls(&c)[calls..], expected);
}

#[test]
fn a_bad_profile_name_is_refused_65_and_changes_nothing() {
    let Some(c) = boot_non_root("a_bad_profile_name_is_refused_65_and_changes_nothing") else {
        return;
    };
    two_slots(&c);
    let before = snapshot(&c);
    let calls = helper_calls(&c).len();
    for name in ["Bad_Name", "../work", "w@rk", ""] {
        for args in [
            &["profile", "register", name][..],
            &["profile", "unregister", name],
            &["gateway", "stop", "-p", name],
        ] {
            let out = hs6(&c, args);
            assert_eq!(out.code, Some(65), "{out:?}");
        }
        // The helper itself, run as hermes-s6 runs it here.
        for op in ["register", "unregister", "stop"] {
            let out = c
                .exec(User::Hermes, &[HELPER, op, name])
                .no_new_privs()
                .output();
            assert_eq!(out.code, Some(65), "{out:?}");
        }
    }
    assert_eq!(snapshot(&c), before);
    // hermes-s6 refuses such a name itself; each of the helper's own
    // refusals is recorded.
    let records = &helper_calls(&c)[calls..];
    assert_eq!(records.len(), 12, "{records:#?}");
    let hermes = c.uid(User::Hermes);
    for record in records {
        assert!(
            record.starts_with(&format!("caller_uid={hermes} via=owner "))
                && record.ends_with(" result=refused exit=65"),
            "{records:#?}"
        );
    }
}

/// The Pod of `docker/kubernetes-pod-restricted.yaml` (Kubernetes'
/// `restricted` profile): started as hermes, privilege escalation off
/// (no_new_privs on every process, the helper without its setuid bit), no
/// capability at all in the bounding set, a read-only root with
/// `S6_READ_ONLY_ROOT=1`. Every feature works, the reconcile across a
/// restart included, and no boot step complains.
#[test]
fn the_restricted_pod_runs_every_feature_with_no_capability_no_setuid_and_a_read_only_root() {
    let Some(mut c) = boot_with(
        "the_restricted_pod_runs_every_feature_with_no_capability_no_setuid_and_a_read_only_root",
        Options {
            non_root: true,
            cont_init: true,
            no_setuid: true,
            bounding_set: Some("-all".into()),
            read_only_root: true,
            container_env: vec![("S6_READ_ONLY_ROOT".into(), "1".into())],
            ..Options::default()
        },
    ) else {
        return;
    };
    assert_s6_runs_as_hermes(&c);
    assert_eq!(proc_status(&c, 1, "NoNewPrivs:"), "1");
    assert_eq!(proc_status(&c, 1, "CapBnd:"), "0000000000000000");
    let out = c.sh(User::Hermes, ": > /etc/hermes-probe");
    assert!(
        !out.success() && out.stderr.contains("Read-only file system"),
        "{out:?}"
    );
    assert_eq!(json(&ok(&c, &["info", "--json"]))["control_mode"], "owner");

    profiles(&c, &["work", "idle"]);
    hs6_as(
        &c,
        User::Hermes,
        &["profile", "register", "work"],
        &[],
        Some(br#"{"WORK_TOKEN": "t0k3n"}"#),
    )
    .assert_success();
    ok(&c, &["profile", "register", "idle"]);
    let pid = wait_gateway_running(&c, "work");
    wait_gateway_running(&c, "idle");
    assert_slot_is_hermes(&c, "work");
    ok(&c, &["gateway", "restart", "-p", "work"]);
    c.wait_for(WAIT, "work restarted", || {
        let s = svstat(&c, "gateway-work");
        s.up && s.pid > 0 && s.pid != pid
    });
    wait_gateway_running(&c, "work");
    ok(&c, &["gateway", "stop", "-p", "idle"]);
    wait_down(&c, "gateway-idle");
    wait_gateway_state(&c, "idle", "stopped");

    c.restart();

    wait_gateway_running(&c, "work");
    let idle = svstat(&c, "gateway-idle");
    assert!(idle.supervised && !idle.up && !idle.wanted_up, "{idle:?}");
    assert_eq!(status_of(&c, "work")["state"], "up");
    ok(&c, &["profile", "unregister", "idle"]);
    assert!(!c.host_path("/run/service/gateway-idle").exists());
    let out = hs6(&c, &["doctor", "--json"]);
    let report = json(&out);
    let not_ok: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        // idle's profile is still there, without its slot: doctor says so.
        .filter(|check| check["verdict"] != "ok" && check["id"] != "profile.no_slot")
        .collect();
    assert!(not_ok.is_empty() && out.success(), "{not_ok:#?}\n{out:?}");
    for step in c.boot_log() {
        assert!(
            step.success() && !step.stderr.contains("error"),
            "a boot step failed or complained: {step:?}"
        );
    }
    let records: Vec<String> = helper_calls(&c)
        .into_iter()
        .filter(|r| !r.contains(" op=--version "))
        .collect();
    assert_all_via_owner(&c, &records);
}

/// The image's dashboard service (HERMES_DASHBOARD=1) starts the
/// dashboard as hermes in a non-root container too, where there is nothing
/// to drop to (s6-setuidgid would fail there).
#[test]
fn the_dashboard_runs_as_hermes_where_s6_does() {
    let Some(c) = boot_with(
        "the_dashboard_runs_as_hermes_where_s6_does",
        Options {
            non_root: true,
            cont_init: true,
            container_env: vec![("HERMES_DASHBOARD".into(), "1".into())],
            ..Options::default()
        },
    ) else {
        return;
    };
    let asset = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/rootfs/etc/s6-overlay/s6-rc.d/dashboard/{name}",
            hermes_s6_emu::DOCKER_DIR
        ))
        .unwrap()
    };
    c.add_service("dashboard", &asset("run"), Some(&asset("finish")));
    let s = wait_up(&c, "dashboard");
    // Up for good, not a run that exits and is restarted.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let again = svstat(&c, "dashboard");
    assert!(again.up && again.pid == s.pid, "{s:?} then {again:?}");
    let uid = c.uid(User::Hermes);
    assert_eq!(
        proc_status(&c, s.pid, "Uid:"),
        format!("{uid} {uid} {uid} {uid}")
    );
    let args = sh_ok(
        &c,
        User::Root,
        &format!("tr '\\0' ' ' </proc/{}/cmdline", s.pid),
    );
    assert!(args.contains("dashboard"), "{args}");
}
