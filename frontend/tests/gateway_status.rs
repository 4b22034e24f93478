//! `gateway status` against s6's own view: 50 slots in mixed states, every
//! field compared with `s6-svstat -o …` taken around it, and the JSON
//! document checked against SCHEMA.md.

mod common;
use common::*;
use hermes_s6_emu::S6Version;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a slot was set up to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Up,
    NeverStarted,
    Stopped,
    Crashing,
    Exited78,
    Unsupervised,
}

fn kind_of(i: usize) -> Kind {
    match i {
        0..=9 => Kind::Up,
        10..=17 => Kind::NeverStarted,
        18..=25 => Kind::Stopped,
        26..=33 => Kind::Crashing,
        34..=41 => Kind::Exited78,
        _ => Kind::Unsupervised,
    }
}

/// Our JSON's answer for each `s6-svstat -o` field, as s6-svstat prints it.
fn ours_as_svstat(g: &Value) -> Svstat {
    let p = &g["process"];
    let last_exit = &p["last_exit"];
    Svstat {
        supervised: g["supervised"] == true,
        up: p["up"] == true,
        wanted_up: p["want_up"] == true,
        normally_up: p["normally_up"] == true,
        ready: p["ready"] == true,
        paused: p["paused"] == true,
        pid: p["pid"].as_i64().unwrap_or(-1),
        exit_code: last_exit["exit_code"].as_i64().unwrap_or(-1),
        signum: last_exit["signal"].as_i64().unwrap_or(-1),
        since: p["since_tai64n"].as_str().unwrap_or_default().to_owned(),
    }
}

fn normalize(s: &Svstat) -> Svstat {
    if s.supervised {
        s.clone()
    } else {
        // s6-svstat printed nothing: only "not supervised" is comparable.
        Svstat::unsupervised()
    }
}

#[test]
fn status_all_agrees_with_s6_svstat_for_50_slots() {
    let Some(c) = boot("status_all_agrees_with_s6_svstat_for_50_slots") else {
        return;
    };
    let names: Vec<String> = (0..50).map(|i| format!("p{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    profiles(&c, &refs);
    for (i, name) in names.iter().enumerate() {
        match kind_of(i) {
            Kind::Crashing => standin_conf(&c, name, "crash_after_ms=150\n"),
            Kind::Exited78 => standin_conf(&c, name, "exit_at_start=78\n"),
            _ => {}
        }
    }
    let supervised: Vec<&str> = refs[..42].to_vec();
    let mut register = vec!["register"];
    register.extend(&supervised);
    helper_ok(&c, &register);
    helper_ok(&c, &["rescan"]);
    // Started through the CLI so that intents are recorded too.
    let to_start: Vec<&str> = (0..42)
        .filter(|&i| {
            matches!(
                kind_of(i),
                Kind::Up | Kind::Stopped | Kind::Crashing | Kind::Exited78
            )
        })
        .map(|i| refs[i])
        .collect();
    for name in &to_start {
        ok(&c, &["gateway", "start", "-p", name]);
    }
    for name in &refs[18..=25] {
        wait_gateway_running(&c, name);
        ok(&c, &["gateway", "stop", "-p", name]);
    }
    // Registered last, with no rescan: nothing supervises these.
    let mut register = vec!["register"];
    register.extend(&refs[42..]);
    helper_ok(&c, &register);

    for (i, name) in names.iter().enumerate() {
        let slot = format!("gateway-{name}");
        match kind_of(i) {
            Kind::Up => {
                wait_up(&c, &slot);
            }
            Kind::NeverStarted | Kind::Stopped => {
                wait_svstat(&c, &slot, "down and wanted down", |s| {
                    s.supervised && !s.up && !s.wanted_up
                });
            }
            Kind::Exited78 => {
                wait_svstat(&c, &slot, "exited 78", |s| {
                    s.supervised && !s.up && s.exit_code == 78
                });
            }
            Kind::Crashing => {
                wait_svstat(&c, &slot, "crashed once", |s| {
                    s.supervised && !s.up && s.exit_code == 1
                });
            }
            Kind::Unsupervised => assert!(!svstat(&c, &slot).supervised),
        }
    }

    // Compare until every slot was seen in a window where s6's view did not
    // change (crashing gateways change state by themselves).
    let mut verified: BTreeMap<String, Svstat> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = Instant::now();
    while verified.len() < names.len() {
        assert!(
            Instant::now() < deadline,
            "only {} slots compared",
            verified.len()
        );
        let before = svstat_all(&c);
        let out = ok(&c, &["gateway", "status", "--all", "--json"]);
        let after = svstat_all(&c);
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        check_status_doc(&doc);
        let gateways = doc["gateways"].as_array().unwrap();
        assert_eq!(gateways.len(), 50);
        for g in gateways {
            let slot = g["service"].as_str().unwrap().to_owned();
            let (Some(b), Some(a)) = (before.get(&slot), after.get(&slot)) else {
                panic!("{slot} missing from s6-svstat's listing");
            };
            if normalize(b) != normalize(a) {
                continue;
            }
            let ours = normalize(&ours_as_svstat(g));
            assert_eq!(ours, normalize(b), "{slot}: ours vs s6-svstat\n{g:#}");
            verified.entry(slot).or_insert(ours);
        }
    }
    eprintln!("compared 50 slots in {:?}", started.elapsed());

    // And what each kind looks like.
    let doc: Value =
        serde_json::from_str(&ok(&c, &["gateway", "status", "--all", "--json"]).stdout).unwrap();
    for (i, g) in doc["gateways"].as_array().unwrap().iter().enumerate() {
        let p = &g["process"];
        match kind_of(i) {
            Kind::Up => {
                assert_eq!(g["state"], "up", "{g}");
                assert_eq!(g["desired_state"], "running");
                assert!(p["pid"].as_u64().unwrap() > 1);
            }
            Kind::NeverStarted => {
                assert_eq!(g["state"], "down", "{g}");
                // s6 2.13.2+ marks it "not started yet": not paused, no exit.
                let marker = S6Version::selected() == S6Version::V2_15;
                assert_eq!(p["never_started"], marker, "{g}");
                assert_eq!(p["paused"], false, "{g}");
                if marker {
                    assert!(p["last_exit"].is_null(), "{g}");
                }
                assert_eq!(
                    (p["want_up"].as_bool(), p["normally_up"].as_bool()),
                    (Some(false), Some(false))
                );
                assert!(g["desired_state"].is_null());
            }
            Kind::Stopped => {
                assert_eq!(g["state"], "down", "{g}");
                assert_eq!(p["last_exit"]["exit_code"], 0, "{g}");
                assert_eq!(g["desired_state"], "stopped");
                assert_eq!(g["gateway_state"], "stopped");
            }
            Kind::Exited78 => {
                assert_eq!(g["state"], "down", "{g}");
                assert_eq!(p["last_exit"]["exit_code"], 78);
                assert_eq!(
                    p["want_up"], false,
                    "finish turned 78 into a permanent stop"
                );
                assert_eq!(g["gateway_state"], "startup_failed");
            }
            Kind::Crashing => {
                assert!(["up", "down", "finishing"].contains(&g["state"].as_str().unwrap()));
                assert!(g["restarts"].as_u64().unwrap() >= 1, "{g}");
            }
            Kind::Unsupervised => {
                assert_eq!(g["state"], "unsupervised", "{g}");
                assert!(p.is_null());
            }
        }
    }

    // `pgid`, which s6-svstat answers from 2.13 on, for every supervised
    // slot (ours is the pid while up on 2.11 too, where s6-svstat has none).
    if S6Version::selected() != S6Version::V2_11 {
        let mut compared = 0;
        for attempt in 0.. {
            assert!(attempt < 20, "pgid: s6's view kept changing");
            let before = svstat_pgids(&c);
            let doc: Value =
                serde_json::from_str(&ok(&c, &["gateway", "status", "--all", "--json"]).stdout)
                    .unwrap();
            if svstat_pgids(&c) != before {
                continue;
            }
            for g in doc["gateways"].as_array().unwrap() {
                if let Some(said) = before.get(g["service"].as_str().unwrap()) {
                    let ours = g["process"]["pgid"].as_i64().unwrap_or(-1);
                    assert_eq!(ours.to_string(), *said, "{g}");
                    compared += 1;
                }
            }
            break;
        }
        assert!(compared >= 40, "{compared}");
    }

    // The key=value lines carry the same answers.
    let text = ok(&c, &["gateway", "status", "--all"]).stdout;
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" state=")).collect();
    assert_eq!(lines.len(), 50);
    assert!(
        lines[0].starts_with("profile=p00 state=up pid="),
        "{}",
        lines[0]
    );
    assert!(
        lines[49].starts_with("profile=p49 state=unsupervised pid=-"),
        "{}",
        lines[49]
    );
    let one = ok(&c, &["gateway", "status", "-p", "p34"]).stdout;
    assert!(one.starts_with("profile=p34 state=down "), "{one}");
    assert!(one.contains(" last_exit=exit:78 "), "{one}");

    // A real profile without a slot reports unregistered; a typo is an error.
    profiles(&c, &["fresh"]);
    let doc: Value =
        serde_json::from_str(&ok(&c, &["gateway", "status", "-p", "fresh", "--json"]).stdout)
            .unwrap();
    check_status_doc(&doc);
    assert_eq!(doc["gateways"][0]["state"], "unregistered");
    assert_eq!(doc["gateways"][0]["registered"], false);
    assert_root_owns_the_tree(&c);
}

/// `s6-svstat -o pid,pgid` of every supervised slot (pid and pgid must both
/// be stable between two listings for the pgid to be compared).
fn svstat_pgids(c: &Container) -> BTreeMap<String, String> {
    let out = c.sh(
        User::Root,
        "cd /run/service && for d in gateway-*; do \
         printf '%s %s\\n' \"$d\" \"$(s6-svstat -o pid,pgid \"$d\" 2>/dev/null)\"; done",
    );
    out.assert_success()
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (slot, _pid, pgid) = (f.next()?, f.next()?, f.next()?);
            Some((slot.to_owned(), pgid.to_owned()))
        })
        .collect()
}

#[test]
fn status_with_nothing_registered() {
    let Some(c) = boot("status_with_nothing_registered") else {
        return;
    };
    let out = ok(&c, &["gateway", "status", "--all"]);
    assert_eq!(out.stdout, "no gateways are registered\n");
    let doc: Value =
        serde_json::from_str(&ok(&c, &["gateway", "status", "--all", "--json"]).stdout).unwrap();
    check_status_doc(&doc);
    assert_eq!(doc["service_manager"], "s6");
    assert_eq!(doc["gateways"], serde_json::json!([]));
    // The root profile always exists: reported, not an error.
    let doc: Value =
        serde_json::from_str(&ok(&c, &["gateway", "status", "--json"]).stdout).unwrap();
    check_status_doc(&doc);
    assert_eq!(doc["gateways"][0]["profile"], "default");
    assert_eq!(doc["gateways"][0]["state"], "unregistered");
}
