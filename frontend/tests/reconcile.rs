//! `hermes-s6 reconcile` as the hermes user in the container emulation,
//! on the volume from the upstream report: checked through s6-svstat, the
//! scan directory's tree, the files on the volume, the boot log and the
//! helper's audit trail.

mod common;
use common::*;

use hermes_s6_emu::{Options, S6Version};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The volume of the report, written as hermes.
const REPORTED_VOLUME: &str = r#"
set -e
cd /opt/data
printf '{"desired_state": "running"}' > gateway_state.json
echo 4242 > gateway.pid
echo outside > outside.txt
mk() { mkdir -p "profiles/$1" && : > "profiles/$1/SOUL.md"; }
mk alpha; printf '\357\273\277{"desired_state": "running", "gateway_state": "stopped", "mine": 1}' > profiles/alpha/gateway_state.json
echo 17 > profiles/alpha/gateway.pid
mk beta;  printf '{"desired_state": "stopped", "gateway_state": "running"}' > profiles/beta/gateway_state.json
echo '[]' > profiles/beta/processes.json
mk gamma; printf '{"gateway_state": "startup_failed"}' > profiles/gamma/gateway_state.json
ln -s /opt/data/outside.txt profiles/gamma/gateway.pid
mk delta; printf '{"gateway_state": "draining"}' > profiles/delta/gateway_state.json
mk epsilon; printf '{"desired_state": "running"' > profiles/epsilon/gateway_state.json
ledger() { mkdir -p "profiles/$1/state" && printf '{"phase": "%s"}' "$2" > "profiles/$1/state/gateway.lifecycle.json"; }
ledger alpha exited; ledger beta running; ledger delta running
mkdir -p profiles/notes; echo hi > profiles/notes/README
mk default; printf '{"desired_state": "running"}' > profiles/default/gateway_state.json
mk Bad_Name; printf '{"desired_state": "running"}' > profiles/Bad_Name/gateway_state.json
mkdir -p elsewhere && : > elsewhere/SOUL.md && printf '{"desired_state": "running"}' > elsewhere/gateway_state.json
ln -s /opt/data/elsewhere profiles/linked
"#;

const SLOTS: [&str; 6] = [
    "gateway-alpha",
    "gateway-beta",
    "gateway-default",
    "gateway-delta",
    "gateway-epsilon",
    "gateway-gamma",
];

fn reconcile_json(c: &Container, extra: &[&str]) -> Value {
    let mut args = vec!["reconcile", "--json"];
    args.extend_from_slice(extra);
    let out = hs6(c, &args);
    assert_eq!(out.code, Some(0), "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    check_reconcile_doc(&doc);
    doc
}

fn slots(c: &Container) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(c.host_path("/run/service"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gateway-"))
        .collect();
    names.sort();
    names
}

/// s6's view without pids (they change across a container restart).
fn supervision(c: &Container) -> BTreeMap<String, (bool, bool, bool, bool)> {
    svstat_all(c)
        .into_iter()
        .map(|(slot, s)| (slot, (s.supervised, s.up, s.wanted_up, s.normally_up)))
        .collect()
}

#[track_caller]
fn assert_up_exactly(c: &Container, up: &[&str]) {
    for slot in slots(c) {
        let profile = slot.strip_prefix("gateway-").unwrap();
        if up.contains(&profile) {
            let s = wait_up(c, &slot);
            assert!(s.wanted_up && s.normally_up, "{slot}: {s:?}");
        } else {
            let s = wait_svstat(c, &slot, "supervised and down", |s| s.supervised);
            assert!(!s.up && !s.wanted_up && !s.normally_up, "{slot}: {s:?}");
        }
    }
}

/// The boot log's lines, split into (profile, prior_state, action,
/// prior_exit), after checking each line's shape.
fn boot_log(c: &Container) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(on_volume(c, "/opt/data/logs/container-boot.log")).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 5, "{line}");
            // Local time as `%Y-%m-%dT%H:%M:%S%z`: the container has no
            // zone of its own, so UTC.
            assert!(
                f[0].len() == 24 && f[0].ends_with("+0000") && f[0].as_bytes()[10] == b'T',
                "{line}"
            );
            let value = |i: usize, key: &str| {
                f[i].strip_prefix(&format!("{key}="))
                    .unwrap_or_else(|| panic!("{line}: no {key}"))
                    .to_owned()
            };
            (
                value(1, "profile"),
                value(2, "prior_state"),
                value(3, "action"),
                value(4, "prior_exit"),
            )
        })
        .collect()
}

fn line(p: &str, prior: &str, action: &str, exit: &str) -> (String, String, String, String) {
    (p.into(), prior.into(), action.into(), exit.into())
}

#[test]
fn reconciles_the_reported_volume_idempotently_and_across_restarts() {
    let Some(mut c) = boot("reconciles_the_reported_volume") else {
        return;
    };
    sh_ok(&c, User::Hermes, REPORTED_VOLUME);
    // A boot log that reached the limit is rotated before the first append.
    sh_ok(
        &c,
        User::Hermes,
        "mkdir -p /opt/data/logs && head -c 262144 /dev/zero | tr '\\0' x > /opt/data/logs/container-boot.log",
    );

    // A dry run changes nothing.
    let before = tree(&c);
    let calls = helper_calls(&c).len();
    let dry = reconcile_json(&c, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(helper_calls(&c).len(), calls, "no helper call");
    assert_eq!(tree(&c), before);
    assert!(on_volume(&c, "/opt/data/gateway.pid").exists());
    assert!(!on_volume(&c, "/opt/data/logs/container-boot.log.1").exists());
    let text = ok(&c, &["reconcile", "--dry-run"]).stdout;
    assert!(
        text.contains("alpha: would start (desired_state running; would remove gateway.pid)"),
        "{text}"
    );
    assert!(text.ends_with("(dry run: nothing changed)\n"), "{text}");

    // The boot.
    let out = hs6(&c, &["reconcile", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    check_reconcile_doc(&doc);
    assert!(
        out.stderr.contains("profiles/default is skipped"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("profiles/Bad_Name is skipped"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("profiles/linked is a symbolic link"),
        "{}",
        out.stderr
    );
    assert_eq!(doc["error"], Value::Null);
    // One helper call per step, none per profile.
    let records = helper_calls(&c)[calls..].to_vec();
    assert_eq!(calls_of(&records, "register").len(), 1, "{records:#?}");
    assert!(
        calls_of(&records, "register")[0]
            .contains("profiles=default,alpha,beta,delta,epsilon,gamma result=ok"),
        "{records:#?}"
    );
    assert_eq!(calls_of(&records, "start").len(), 1, "{records:#?}");
    assert!(calls_of(&records, "start")[0].contains("profiles=default,alpha,delta result=ok"));
    // `start` reached slots registered by this run, so the helper rescanned
    // as part of it: no separate rescan.
    assert_eq!(calls_of(&records, "rescan").len(), 0, "{records:#?}");
    assert_eq!(records.len(), 2, "{records:#?}");

    assert_eq!(slots(&c), SLOTS);
    assert_up_exactly(&c, &["default", "alpha", "delta"]);
    // Stale runtime files are gone; a symlink is removed, not its target.
    for path in [
        "/opt/data/gateway.pid",
        "/opt/data/profiles/alpha/gateway.pid",
        "/opt/data/profiles/beta/processes.json",
        "/opt/data/profiles/gamma/gateway.pid",
    ] {
        assert!(
            std::fs::symlink_metadata(on_volume(&c, path)).is_err(),
            "{path} survived"
        );
    }
    assert_eq!(
        std::fs::read_to_string(on_volume(&c, "/opt/data/outside.txt")).unwrap(),
        "outside\n"
    );
    // Nothing else on the volume was touched.
    assert_eq!(
        std::fs::read(on_volume(
            &c,
            "/opt/data/profiles/epsilon/gateway_state.json"
        ))
        .unwrap(),
        br#"{"desired_state": "running""#
    );
    assert!(on_volume(&c, "/opt/data/elsewhere/gateway_state.json").exists());

    let expected_first = vec![
        // prior_state is the boot intent, prior_exit the gateway's
        // lifecycle ledger, as upstream writes them.
        line("default", "running", "started", "unknown"),
        line("alpha", "running", "started", "clean"),
        line("beta", "stopped", "registered", "unclean"),
        line("delta", "running", "started", "unclean"),
        line("epsilon", "None", "registered", "unknown"),
        line("gamma", "startup_failed", "registered", "unknown"),
        line("Bad_Name", "None", "skipped", "unknown"),
        line("linked", "None", "skipped", "unknown"),
    ];
    assert_eq!(boot_log(&c), expected_first);
    let rotated = std::fs::metadata(on_volume(&c, "/opt/data/logs/container-boot.log.1")).unwrap();
    assert_eq!(rotated.len(), 262144);

    // The document says the same.
    let actions: Vec<(&str, &str)> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["profile"].as_str().unwrap(),
                p["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("default", "started"),
            ("alpha", "started"),
            ("beta", "registered"),
            ("delta", "started"),
            ("epsilon", "registered"),
            ("gamma", "registered")
        ]
    );
    let gamma = &doc["profiles"][5];
    assert_eq!(
        gamma["stale_files_removed"],
        serde_json::json!(["gateway.pid"])
    );
    let epsilon = &doc["profiles"][4];
    assert_eq!(epsilon["state_file"], "unusable");
    assert_eq!(epsilon["intent_source"], "unusable");
    let skipped: Vec<&str> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entry"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["Bad_Name", "default", "linked"]);
    assert_eq!(doc["ignored"][0]["entry"], "notes");
    assert_root_owns_the_tree(&c);

    // A second run: the same tree, the same s6 state, the same processes.
    for profile in ["default", "alpha", "delta"] {
        wait_gateway_running(&c, profile);
    }
    let tree1 = tree(&c);
    let s6_1 = svstat_all(&c);
    let calls = helper_calls(&c).len();
    let doc2 = reconcile_json(&c, &[]);
    assert_eq!(tree(&c), tree1);
    assert_eq!(svstat_all(&c), s6_1);
    let records = helper_calls(&c)[calls..].to_vec();
    let ops: Vec<&str> = records
        .iter()
        .map(|r| r.split(' ').find(|f| f.starts_with("op=")).unwrap())
        .collect();
    assert_eq!(
        ops,
        ["op=start", "op=rescan"],
        "only missing slots are registered"
    );
    assert!(
        doc2["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["already_registered"] == true)
    );
    let log = boot_log(&c);
    assert_eq!(log.len(), 16);
    assert_eq!(log[8], line("default", "running", "started", "unknown"));
    assert_eq!(log[11], line("delta", "running", "started", "unknown"));
    assert_root_owns_the_tree(&c);

    // docker restart: /run is fresh, the volume stays; reconcile again.
    let supervision1 = supervision(&c);
    c.restart();
    assert!(slots(&c).is_empty());
    reconcile_json(&c, &[]);
    assert_eq!(slots(&c), SLOTS);
    assert_up_exactly(&c, &["default", "alpha", "delta"]);
    assert_eq!(supervision(&c), supervision1);
    for profile in ["default", "alpha", "delta"] {
        wait_gateway_running(&c, profile);
    }
    assert_eq!(tree(&c), tree1, "the same tree after a restart");
    let log = boot_log(&c);
    assert_eq!(log.len(), 24);
    assert_eq!(log[16], line("default", "running", "started", "unknown"));
    assert_eq!(log[17], line("alpha", "running", "started", "clean"));
    assert_eq!(log[19], line("delta", "running", "started", "unclean"));

    // Intents set through the CLI carry over the next restart.
    ok(&c, &["gateway", "stop", "-p", "alpha"]);
    ok(&c, &["gateway", "start", "-p", "beta"]);
    wait_down(&c, "gateway-alpha");
    wait_gateway_running(&c, "beta");
    c.restart();
    let doc = reconcile_json(&c, &[]);
    assert_eq!(slots(&c), SLOTS);
    assert_up_exactly(&c, &["default", "beta", "delta"]);
    let alpha = &doc["profiles"][1];
    assert_eq!(
        (alpha["profile"].as_str(), alpha["action"].as_str()),
        (Some("alpha"), Some("registered"))
    );
    assert_eq!(alpha["prior_state"], "stopped");
    assert_eq!(alpha["prior_exit"], "clean");
    assert_eq!(doc["profiles"][2]["action"], "started");
    // The gateway's own keys survived every rewrite.
    assert_eq!(state(&c, "alpha")["mine"], 1);
    assert_root_owns_the_tree(&c);
}

#[test]
fn legacy_gateway_run_dashboard_and_multiplex_containers() {
    let Some(c) = boot("legacy_gateway_run_dashboard_and_multiplex_containers") else {
        return;
    };
    profiles(&c, &["work", "idle"]);
    write_as_hermes(
        &c,
        "/opt/data/profiles/work/gateway_state.json",
        br#"{"desired_state":"running"}"#,
    );

    // A dashboard-only container does not reconcile.
    let out = hs6_as(
        &c,
        User::Hermes,
        &["reconcile"],
        &[("HERMES_CONTAINER_CMD", "dashboard")],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "dashboard-only container: gateway slots are not reconciled\n"
    );
    assert!(slots(&c).is_empty());
    assert!(!on_volume(&c, "/opt/data/logs/container-boot.log").exists());

    // `gateway run` with supervision turned off: nothing seeded.
    let out = hs6_as(
        &c,
        User::Hermes,
        &[
            "reconcile",
            "--dry-run",
            "--json",
            "--container-command",
            "gateway run",
        ],
        &[("HERMES_GATEWAY_NO_SUPERVISE", "true")],
        None,
    );
    out.assert_success();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["root_state_seeded"], false);
    let doc = reconcile_json(
        &c,
        &[
            "--dry-run",
            "--container-command",
            "hermes gateway run --no-supervise",
        ],
    );
    assert_eq!(doc["root_state_seeded"], false);

    // A boot log planted as a symbolic link is refused, not followed.
    sh_ok(
        &c,
        User::Hermes,
        "mkdir -p /opt/data/logs && echo keep > /opt/data/victim \
         && ln -s /opt/data/victim /opt/data/logs/container-boot.log",
    );

    // A legacy `gateway run` container with multiplexing on: the root
    // gateway is seeded and started, named ones only registered.
    let out = hs6_as(
        &c,
        User::Hermes,
        &["reconcile", "--json"],
        &[
            ("HERMES_CONTAINER_CMD", "gateway run"),
            ("GATEWAY_MULTIPLEX_PROFILES", "1"),
        ],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(
            "warning: the boot log was not written: refusing to use /opt/data/logs/container-boot.log: it is a symbolic link"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(on_volume(&c, "/opt/data/victim")).unwrap(),
        "keep\n"
    );
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    check_reconcile_doc(&doc);
    assert_eq!(doc["boot_log"], Value::Null);
    assert_eq!(doc["root_state_seeded"], true);
    assert_eq!(doc["multiplex"], true);
    assert_eq!(
        doc["container_command"],
        serde_json::json!(["gateway", "run"])
    );
    let seeded = state(&c, "default");
    assert_eq!(seeded["desired_state"], "running");
    assert!(seeded["updated_at"].is_u64());
    assert_eq!(
        slots(&c),
        ["gateway-default", "gateway-idle", "gateway-work"]
    );
    assert_up_exactly(&c, &["default"]);
    assert_eq!(doc["profiles"][2]["intent"], "running");
    assert_eq!(doc["profiles"][2]["action"], "registered");
    let meta = std::fs::metadata(on_volume(&c, "/opt/data/gateway_state.json")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), HERMES_UID);
    assert_root_owns_the_tree(&c);
}

#[test]
fn reconciles_1000_profiles() {
    // 1001 slots with their loggers: past s6 2.15's fixed maximum of 1000
    // services (s6-overlay's s6-svscan has no -c, and 2.15's rejects it).
    if hermes_s6_emu::skip_unless_s6(
        &[S6Version::V2_11, S6Version::V2_13],
        "reconciles_1000_profiles",
        "1001 slots and their loggers exceed s6 2.15's maximum of 1000 services",
    ) {
        return;
    }
    // s6 2.11's default maximum is 500.
    let Some(c) = boot_with(
        "reconciles_1000_profiles",
        Options {
            service_cap: Some(hermes_s6_emu::DEFAULT_SERVICE_CAP),
            ..Options::default()
        },
    ) else {
        return;
    };
    // Every tenth profile intended up (so the test does not wait for a
    // thousand gateways), one in ten registered down by gateway_state.
    sh_ok(
        &c,
        User::Hermes,
        r#"set -e
        cd /opt/data && mkdir profiles && cd profiles
        i=0
        while [ $i -lt 1000 ]; do
            p=$(printf 'p%04d' $i); mkdir $p; : > $p/SOUL.md
            case $i in
                *0) printf '{"desired_state":"running"}' > $p/gateway_state.json ;;
                *5) printf '{"gateway_state":"stopped"}' > $p/gateway_state.json ;;
                *7) echo 1 > $p/gateway.pid ;;
            esac
            i=$((i+1))
        done"#,
    );
    let calls = helper_calls(&c).len();
    let started = Instant::now();
    let doc = reconcile_json(&c, &[]);
    eprintln!(
        "reconcile of 1000 profiles took {:?} (debug build, in the emulation)",
        started.elapsed()
    );
    assert_eq!(doc["profiles"].as_array().unwrap().len(), 1001);
    let records = helper_calls(&c)[calls..].to_vec();
    let ops: Vec<&str> = records
        .iter()
        .map(|r| r.split(' ').find(|f| f.starts_with("op=")).unwrap())
        .collect();
    assert_eq!(ops, ["op=register", "op=start"], "{records:#?}");
    assert!(
        records[0].contains("(+985 more) result=ok"),
        "{}",
        records[0]
    );

    let want_up = |slot: &str| {
        slot.strip_prefix("gateway-p")
            .is_some_and(|n| n.ends_with('0'))
    };
    // Poll cheaply (the state files the gateways write, s6's lock files),
    // then ask s6-svstat once about every slot.
    let running: Vec<String> = (0..1000).step_by(10).map(|i| format!("p{i:04}")).collect();
    c.wait_for(Duration::from_secs(60), "100 gateways running", || {
        running
            .iter()
            .all(|p| state(&c, p)["gateway_state"] == "running")
    });
    c.wait_for(Duration::from_secs(60), "1001 supervised slots", || {
        std::fs::read_dir(c.host_path("/run/service"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gateway-"))
            .all(|e| hermes_s6::s6::supervise::supervisor_running(&e.path()).unwrap_or(false))
    });
    let all = svstat_all(&c);
    assert_eq!(all.len(), 1001);
    for (slot, s) in &all {
        assert!(s.supervised, "{slot}");
        assert_eq!(s.up, want_up(slot), "{slot}: {s:?}");
        assert_eq!(s.wanted_up, want_up(slot), "{slot}: {s:?}");
        assert_eq!(s.normally_up, want_up(slot), "{slot}: {s:?}");
    }
    for i in (7..1000).step_by(10) {
        assert!(!on_volume(&c, &format!("/opt/data/profiles/p{i:04}/gateway.pid")).exists());
    }
    assert_eq!(boot_log(&c).len(), 1001);
    assert_root_owns_the_tree(&c);
}
