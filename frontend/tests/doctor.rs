//! `hermes-s6 doctor` in the container emulation: a healthy container is all
//! `ok`; each broken piece is named, with what to do, and fails the command.

mod common;
use common::*;

use serde_json::Value;

fn doctor(c: &Container, user: User, no_new_privs: bool) -> (Output, Value) {
    let mut exec = c.exec(user, &["hermes-s6", "doctor", "--json"]);
    if no_new_privs {
        exec = exec.no_new_privs();
    }
    let out = exec.output();
    let doc: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("doctor --json: {e}: {out:?}"));
    check_doctor_doc(&doc);
    (out, doc)
}

/// The document's shape (SCHEMA.md, `hermes-s6.doctor/1`).
#[track_caller]
fn check_doctor_doc(doc: &Value) {
    assert_eq!(doc["schema"], "hermes-s6.doctor/1");
    let mut keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "checks",
            "control_mode",
            "generated_at",
            "schema",
            "service_manager",
            "services",
            "summary"
        ]
    );
    let checks = doc["checks"].as_array().unwrap();
    let mut counts = [0u64; 3];
    for check in checks {
        let mut keys: Vec<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["detail", "fix", "id", "name", "profile", "verdict"]);
        let verdict = check["verdict"].as_str().unwrap();
        let index = ["ok", "warn", "fail"]
            .iter()
            .position(|v| *v == verdict)
            .unwrap();
        counts[index] += 1;
        // Every problem says what to do; an ok line has nothing to fix.
        assert_eq!(verdict == "ok", check["fix"].is_null(), "{check}");
    }
    assert_eq!(doc["summary"]["ok"], counts[0]);
    assert_eq!(doc["summary"]["warn"], counts[1]);
    assert_eq!(doc["summary"]["fail"], counts[2]);
}

fn checks<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

#[track_caller]
fn one<'a>(doc: &'a Value, id: &str) -> &'a Value {
    let found = checks(doc, id);
    assert_eq!(found.len(), 1, "{id}: {doc}");
    found[0]
}

#[test]
fn a_healthy_container_is_all_ok() {
    let Some(mut c) = boot_with(
        "a_healthy_container_is_all_ok",
        Options {
            cont_init: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    profiles(&c, &["alpha", "beta"]);
    write_as_hermes(
        &c,
        "/opt/data/profiles/alpha/gateway_state.json",
        br#"{"desired_state": "running"}"#,
    );
    c.restart();
    wait_up(&c, "gateway-alpha");
    c.add_service("main-hermes", "#!/bin/sh\nexec sleep 100000\n", None);
    wait_up(&c, "main-hermes");
    let (out, doc) = doctor(&c, User::Hermes, false);
    for check in doc["checks"].as_array().unwrap() {
        assert_eq!(check["verdict"], "ok", "{check}");
    }
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(doc["service_manager"], "s6");
    assert_eq!(doc["control_mode"], "setuid");
    assert_eq!(
        doc["services"],
        serde_json::json!({
            "main_hermes": "unreadable",
            // s6-overlay's dashboard service is always in the scan dir
            // (down here), its status readable by root only.
            "dashboard": "unreadable",
            "gateways": 3,
            "gateways_up": 1
        })
    );
    assert!(
        one(&doc, "helper.effective")["detail"]
            .as_str()
            .unwrap()
            .contains("runs as root for uid 10000")
    );
    // As root the other services' status is readable too.
    let (out, doc) = doctor(&c, User::Root, false);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(doc["services"]["main_hermes"], "up");
    // The human form: one line per check, then the summary.
    let out = ok(&c, &["doctor"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("ok    ")),
        "{}",
        out.stdout
    );
    assert!(
        lines.last().unwrap().starts_with("doctor: "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ok    control mode: setuid"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_helper_without_its_setuid_bit_is_named() {
    let Some(c) = boot_with(
        "a_helper_without_its_setuid_bit_is_named",
        Options {
            helper_mode: 0o755,
            ..Options::default()
        },
    ) else {
        return;
    };
    let (out, doc) = doctor(&c, User::Hermes, false);
    assert_eq!(out.code, Some(1), "{out:?}");
    let permissions = one(&doc, "helper.permissions");
    assert_eq!(permissions["verdict"], "fail");
    assert!(
        permissions["detail"]
            .as_str()
            .unwrap()
            .contains("mode 755 instead of 4750: the setuid bit is missing"),
        "{permissions}"
    );
    assert!(
        permissions["fix"]
            .as_str()
            .unwrap()
            .contains("chmod 4750 /usr/libexec/hermes-s6-helper")
    );
    let effective = one(&doc, "helper.effective");
    assert_eq!(effective["verdict"], "fail");
    assert!(
        effective["detail"]
            .as_str()
            .unwrap()
            .contains("is not setuid root"),
        "{effective}"
    );
    let out = hs6(&c, &["doctor"]);
    assert!(out.stdout.contains("fail  helper permissions: "), "{out:?}");
}

#[test]
fn no_new_privs_is_named() {
    let Some(c) = boot("no_new_privs_is_named") else {
        return;
    };
    let (out, doc) = doctor(&c, User::Hermes, true);
    assert_eq!(out.code, Some(1), "{out:?}");
    let effective = one(&doc, "helper.effective");
    assert_eq!(effective["verdict"], "fail");
    assert!(
        effective["detail"]
            .as_str()
            .unwrap()
            .contains("no_new_privs is set"),
        "{effective}"
    );
    let fix = effective["fix"].as_str().unwrap();
    assert!(
        fix.contains("allow privilege escalation") && fix.contains("hermes-s6-helperd"),
        "{fix}"
    );
    // The file itself is fine.
    assert_eq!(one(&doc, "helper.permissions")["verdict"], "ok");
    // A user outside group hermes cannot run it at all.
    let (out, doc) = doctor(&c, User::Intruder, false);
    assert_eq!(out.code, Some(1));
    let effective = one(&doc, "helper.effective");
    assert!(
        effective["detail"].as_str().unwrap().contains("not in it"),
        "{effective}"
    );
}

#[test]
fn gateway_problems_are_reported_one_line_each() {
    let Some(c) = boot("gateway_problems_are_reported_one_line_each") else {
        return;
    };
    // A gateway that dies at once, every time: the slot's finish script
    // gives up after 5 fast failures.
    profiles(&c, &["loopy", "halted", "lonely", "flaky"]);
    standin_conf(&c, "loopy", "exit_at_start=1\n");
    ok(&c, &["gateway", "start", "-p", "loopy"]);
    c.wait_for(
        std::time::Duration::from_secs(30),
        "loopy's crash-loop record",
        // Written with one `echo`: wait for its whole line.
        || {
            std::fs::read_to_string(c.host_path("/run/service/gateway-loopy/crash-loop"))
                .is_ok_and(|record| record.ends_with('\n'))
        },
    );
    // Meant to run, registered down.
    helper_ok(&c, &["register", "halted"]);
    helper_ok(&c, &["rescan"]);
    write_as_hermes(
        &c,
        "/opt/data/profiles/halted/gateway_state.json",
        br#"{"desired_state": "running"}"#,
    );
    wait_svstat(&c, "gateway-halted", "supervised", |s| s.supervised);
    // A slot whose profile is not on the volume.
    helper_ok(&c, &["register", "ghost"]);
    helper_ok(&c, &["rescan"]);
    // flaky's last three container runs all ended in startup_failed.
    sh_ok(
        &c,
        User::Hermes,
        "mkdir -p logs && for i in 1 2 3 4; do \
           s=startup_failed; [ $i = 1 ] && s=running; \
           echo \"2026-11-2${i}T10:00:00Z profile=flaky prior_state=$s action=registered prior_exit=unknown\"; \
         done >> logs/container-boot.log",
    );

    let (out, doc) = doctor(&c, User::Hermes, false);
    assert_eq!(out.code, Some(1), "{out:?}");
    let looping = one(&doc, "gateway.crash_loop");
    assert_eq!(
        (&looping["verdict"], &looping["profile"]),
        (&"fail".into(), &"loopy".into())
    );
    assert!(
        looping["detail"]
            .as_str()
            .unwrap()
            .contains("crash-looping: stopped after 5 failures"),
        "{looping}"
    );
    assert!(
        looping["fix"]
            .as_str()
            .unwrap()
            .contains("hermes-s6 gateway start -p loopy")
    );
    let down = one(&doc, "gateway.down");
    assert_eq!(
        (&down["verdict"], &down["profile"]),
        (&"fail".into(), &"halted".into())
    );
    assert!(
        down["fix"]
            .as_str()
            .unwrap()
            .contains("hermes-s6 gateway start -p halted")
    );
    let orphan = one(&doc, "gateway.orphan_slot");
    assert_eq!(
        (&orphan["verdict"], &orphan["profile"]),
        (&"warn".into(), &"ghost".into())
    );
    assert!(
        orphan["fix"]
            .as_str()
            .unwrap()
            .contains("hermes-s6 profile unregister ghost")
    );
    let homeless: Vec<&str> = checks(&doc, "profile.no_slot")
        .iter()
        .map(|c| c["profile"].as_str().unwrap())
        .collect();
    assert_eq!(homeless, ["default", "flaky", "lonely"]);
    let failing = one(&doc, "profile.startup_failed");
    assert_eq!(
        (&failing["verdict"], &failing["profile"]),
        (&"fail".into(), &"flaky".into())
    );
    // Once the crash loop is dealt with, the gateway runs and nothing is left
    // about it.
    standin_conf(&c, "loopy", "");
    ok(&c, &["gateway", "start", "-p", "loopy"]);
    wait_up(&c, "gateway-loopy");
    let (_, doc) = doctor(&c, User::Hermes, false);
    assert_eq!(one(&doc, "gateway.crash_loop")["verdict"], "ok");
}

#[test]
fn a_scan_directory_handed_to_hermes_fails() {
    let Some(c) = boot("a_scan_directory_handed_to_hermes_fails") else {
        return;
    };
    // What the upstream image does.
    c.run_as(
        User::Root,
        &[
            "sh",
            "-c",
            "chown hermes /run/service && chmod 0777 /run/service",
        ],
        &[],
        None,
    )
    .assert_success();
    let (out, doc) = doctor(&c, User::Hermes, false);
    assert_eq!(out.code, Some(1), "{out:?}");
    let scan = one(&doc, "scandir.permissions");
    assert_eq!(scan["verdict"], "fail");
    assert!(
        scan["detail"]
            .as_str()
            .unwrap()
            .contains("/run/service (10000:0 777)"),
        "{scan}"
    );
}
