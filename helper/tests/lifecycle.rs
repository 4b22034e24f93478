//! Each helper operation's happy path, invoked as the hermes user and checked
//! through s6 itself (`s6-svstat` as root), the process table and the files.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn meta(c: &Container, path: &str) -> (u32, u32, u32, &'static str) {
    let m = std::fs::symlink_metadata(c.host_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let kind = if m.file_type().is_symlink() {
        "link"
    } else if m.is_dir() {
        "dir"
    } else if m.is_file() {
        "file"
    } else {
        "fifo-or-other"
    };
    (m.uid(), m.gid(), m.permissions().mode() & 0o7777, kind)
}

/// The gateway's own record of how it was started (written by the stand-in),
/// once its last line is complete.
fn last_run(c: &Container, profile: &str) -> serde_json::Value {
    let file = c.volume().join(format!("profiles/{profile}/standin-runs.jsonl"));
    let mut record = None;
    c.wait_for(WAIT, &format!("{profile}'s start record"), || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        record = text.lines().last().and_then(|l| serde_json::from_str(l).ok());
        record.is_some()
    });
    record.unwrap()
}

#[test]
fn register_writes_the_documented_slot_registered_down_and_s6_adopts_it_unwidened() {
    let Some(c) = boot("register_writes_the_documented_slot") else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    let hermes = 10000;
    let slot = "/run/service/gateway-alpha";
    for (path, expected) in [
        ("", (0, 0, 0o755, "dir")),
        ("/run", (0, 0, 0o755, "file")),
        ("/finish", (0, 0, 0o755, "file")),
        ("/down", (0, 0, 0o644, "file")),
        ("/timeout-kill", (0, 0, 0o644, "file")),
        ("/supervise", (0, hermes, 0o710, "dir")),
        ("/log", (0, 0, 0o755, "dir")),
        ("/log/run", (0, 0, 0o755, "file")),
        ("/log/supervise", (0, hermes, 0o710, "dir")),
    ] {
        assert_eq!(meta(&c, &format!("{slot}{path}")), expected, "{slot}{path}");
    }
    assert!(!c.host_path(&format!("{slot}/env")).exists(), "no env/ without a payload");
    let run = std::fs::read_to_string(c.host_path(&format!("{slot}/run"))).unwrap();
    assert!(run.contains("s6-setuidgid hermes") && run.contains("hermes -p alpha gateway run --replace"), "{run}");
    let drop_at = run.find("s6-setuidgid").unwrap();
    assert!(run.find("s6-envdir").unwrap() > drop_at, "env/ must be applied after the drop to hermes");

    // Registered, not scanned: no supervisor yet, and nothing runs.
    assert!(!svstat(&c, "gateway-alpha").supervised);
    ok(&c, &["rescan"]);
    c.wait_for(WAIT, "gateway-alpha supervised", || svstat(&c, "gateway-alpha").supervised);
    let s = svstat(&c, "gateway-alpha");
    assert!(!s.up && !s.wanted_up && !s.normally_up, "registered down: {s:?}");

    // s6-supervise adopted the pre-created directories as they were.
    assert_eq!(meta(&c, &format!("{slot}/supervise")), (0, hermes, 0o710, "dir"));
    assert_eq!(meta(&c, &format!("{slot}/log/supervise")), (0, hermes, 0o710, "dir"));
    assert_eq!(meta(&c, &format!("{slot}/supervise/control")), (0, 0, 0o600, "fifo-or-other"));
    assert_eq!(meta(&c, &format!("{slot}/supervise/status")), (0, 0, 0o644, "file"));
    let event = meta(&c, &format!("{slot}/event"));
    assert_eq!(
        (event.0, event.1),
        (0, 0),
        "event/ stays root's: a hermes-writable event/ lets hermes aim root's writes"
    );
}

#[test]
fn start_runs_the_gateway_as_hermes_with_its_log_on_the_volume_and_stop_brings_it_down() {
    let Some(c) = boot("start_runs_the_gateway_as_hermes") else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    ok(&c, &["rescan"]);
    ok(&c, &["start", "alpha"]);
    let up = wait_up(&c, "gateway-alpha");
    assert!(up.wanted_up && up.normally_up, "start removes the down marker: {up:?}");
    assert!(!c.host_path("/run/service/gateway-alpha/down").exists());
    wait_gateway_running(&c, "alpha");

    let run = last_run(&c, "alpha");
    assert_eq!(run["pid"].as_i64(), Some(up.pid), "s6's pid is the gateway's");
    assert_eq!((run["uid"].as_u64(), run["gid"].as_u64()), (Some(10000), Some(10000)), "runs as hermes: {run}");
    assert_eq!(run["env"]["HOME"], "/opt/data");
    assert_eq!(run["env"]["HERMES_S6_SUPERVISED_CHILD"], "1");
    assert_eq!(run["env"]["HERMES_SUPERVISED_CHILD"], "1");
    assert_eq!(run["cwd"], "/opt/data");

    let log = c.volume().join("logs/gateways/alpha/current");
    c.wait_for(WAIT, "gateway log line", || {
        std::fs::read_to_string(&log).map(|l| l.contains("profile=alpha")).unwrap_or(false)
    });
    let log_meta = std::fs::metadata(&log).unwrap();
    assert_eq!(log_meta.uid(), 10000, "the logger runs as hermes; root never writes on the volume");

    ok(&c, &["stop", "alpha"]);
    let down = wait_down(&c, "gateway-alpha");
    assert!(!down.wanted_up && !down.normally_up, "stop sets the down marker: {down:?}");
    assert!(c.host_path("/run/service/gateway-alpha/down").exists());
}

#[test]
fn hermes_reads_status_without_the_helper_but_s6_svc_stays_refused() {
    let Some(c) = boot("hermes_reads_status_without_the_helper") else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    ok(&c, &["start", "alpha"]);
    wait_up(&c, "gateway-alpha");
    let status = c.run_as(User::Hermes, &["s6-svstat", "/run/service/gateway-alpha"], &[], None);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(status.stdout.starts_with("up (pid "), "{}", status.stdout);
    let control = c.run_as(User::Hermes, &["s6-svc", "-d", "/run/service/gateway-alpha"], &[], None);
    assert_ne!(control.code, Some(0));
    assert!(control.stderr.contains("ermission denied"), "{}", control.stderr);
    assert!(wait_up(&c, "gateway-alpha").wanted_up, "the refused s6-svc changed nothing");
    let intruder = c.run_as(User::Intruder, &["s6-svstat", "/run/service/gateway-alpha"], &[], None);
    assert_ne!(intruder.code, Some(0), "status is for group hermes only");
}

#[test]
fn restart_gives_a_new_pid_even_when_the_gateway_exits_0_on_sigterm() {
    let Some(c) = boot("restart_gives_a_new_pid") else {
        return;
    };
    for p in ["alpha", "slowstart"] {
        profile_dir(&c, p);
    }
    // The pitfall: a gateway that exits 0 when terminated during start-up
    // meets a finish script that maps 0 to "stop for good".
    standin_conf(&c, "slowstart", "startup_ms=60000\nsigterm_in_startup_exit=0\n");
    ok(&c, &["register", "alpha", "slowstart"]);
    ok(&c, &["start", "alpha", "slowstart"]);
    let a = wait_up(&c, "gateway-alpha");
    let s = wait_up(&c, "gateway-slowstart");
    wait_gateway_running(&c, "alpha");
    ok(&c, &["restart", "alpha", "slowstart"]);
    for (slot, old) in [("gateway-alpha", a.pid), ("gateway-slowstart", s.pid)] {
        c.wait_for(WAIT, &format!("{slot} back with a new pid"), || {
            let now = svstat(&c, slot);
            now.up && now.pid > 0 && now.pid != old
        });
        assert!(svstat(&c, slot).wanted_up, "{slot}: a restart never ends as a stop");
    }
    assert!(!c.host_path("/run/service/gateway-slowstart/restart-requested").exists(), "finish consumed the marker");

    // restart of a stopped gateway starts it.
    ok(&c, &["stop", "alpha"]);
    wait_down(&c, "gateway-alpha");
    ok(&c, &["restart", "alpha"]);
    assert!(wait_up(&c, "gateway-alpha").wanted_up);
}

#[test]
fn a_clean_exit_or_exit_78_stops_for_good_while_a_crash_is_restarted() {
    let Some(c) = boot("a_clean_exit_or_exit_78_stops_for_good") else {
        return;
    };
    for p in ["badconfig", "crasher"] {
        profile_dir(&c, p);
    }
    standin_conf(&c, "badconfig", "exit_at_start=78\n");
    standin_conf(&c, "crasher", "crash_after_ms=200\n");
    ok(&c, &["register", "badconfig", "crasher"]);
    ok(&c, &["start", "badconfig", "crasher"]);
    let first = wait_up(&c, "gateway-crasher");
    c.wait_for(WAIT, "crasher restarted by s6", || {
        let s = svstat(&c, "gateway-crasher");
        s.up && s.pid != first.pid
    });
    c.wait_for(WAIT, "badconfig down with exit 78", || {
        let s = svstat(&c, "gateway-badconfig");
        s.supervised && !s.up && s.exit_code == 78
    });
    // finish exited 125: s6 does not try again.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = svstat(&c, "gateway-badconfig");
    assert!(!s.up && s.exit_code == 78, "{s:?}");
}

#[test]
fn unregister_stops_the_gateway_and_leaves_no_slot_and_no_supervisor() {
    let Some(c) = boot("unregister_stops_the_gateway") else {
        return;
    };
    for p in ["alpha", "beta", "stubborn"] {
        profile_dir(&c, p);
    }
    ok(&c, &["register", "alpha", "beta", "stubborn"]);
    ok(&c, &["start", "alpha", "beta"]);
    let alpha = wait_up(&c, "gateway-alpha");
    wait_up(&c, "gateway-beta");
    ok(&c, &["unregister", "alpha", "stubborn"]);
    for p in ["alpha", "stubborn"] {
        assert!(!c.host_path(&format!("/run/service/gateway-{p}")).exists(), "slot {p} gone");
        assert!(!c.host_path(&format!("/run/service/.gateway-{p}.old")).exists(), "no retired leftovers for {p}");
    }
    let procs = c
        .run_as(User::Root, &["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"], &[], None)
        .stdout;
    assert!(!procs.contains("gateway-alpha"), "a supervisor of gateway-alpha survived:\n{procs}");
    assert!(
        !c.host_path(&format!("/proc/{}/root", alpha.pid)).exists() || !procs.contains(" -p alpha "),
        "the gateway survived"
    );
    assert!(wait_up(&c, "gateway-beta").up, "other slots untouched");
    ok(&c, &["unregister", "alpha"]);
}

/// Unregistering a batch of slots no supervisor runs yet: the first slot's
/// rescan-and-prune makes s6-svscan start supervisors for all the others,
/// which may not have opened their control FIFOs when the helper reaches
/// them. The helper must still stop them (a logger's supervisor waits for
/// its s6-log, which the prune alone never stops), never time out.
#[test]
fn unregistering_a_never_scanned_batch_stops_the_supervisors_its_own_rescan_starts() {
    let Some(c) = boot("unregistering_a_never_scanned_batch") else {
        return;
    };
    let names: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
    for n in &names {
        profile_dir(&c, n);
    }
    for round in 0..20 {
        let mut register = vec!["register"];
        register.extend(names.iter().map(String::as_str));
        ok(&c, &register);
        let mut unregister = vec!["unregister"];
        unregister.extend(names.iter().map(String::as_str));
        // A supervisor that never exits fails the call (70) at its deadline.
        ok(&c, &unregister);
        let left: Vec<String> = std::fs::read_dir(c.host_path("/run/service"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("gateway-"))
            .collect();
        assert!(left.is_empty(), "round {round}: left behind {left:?}");
    }
    let procs = c
        .run_as(User::Root, &["sh", "-c", "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"], &[], None)
        .stdout;
    assert!(!procs.contains("gateway-u"), "a supervisor survived:\n{procs}");
}

#[test]
fn batches_take_one_call_each_and_start_brings_up_unscanned_slots() {
    let Some(c) = boot("batches_take_one_call_each") else {
        return;
    };
    let names: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    for n in &names {
        profile_dir(&c, n);
    }
    let mut args = vec!["register"];
    args.extend(names.iter().map(String::as_str));
    ok(&c, &args);
    // start on slots no supervisor runs yet: the intent is recorded and the
    // helper triggers the rescan itself.
    let mut start = vec!["start"];
    start.extend(names[..10].iter().map(String::as_str));
    ok(&c, &start);
    ok(&c, &["rescan"]);
    for (i, n) in names.iter().enumerate() {
        let slot = format!("gateway-{n}");
        if i < 10 {
            wait_up(&c, &slot);
        } else {
            c.wait_for(WAIT, &format!("{slot} supervised"), || svstat(&c, &slot).supervised);
            assert!(!svstat(&c, &slot).up, "{slot} stays down");
        }
    }
}

#[test]
fn start_revives_a_slot_whose_supervisor_died() {
    let Some(c) = boot("start_revives_a_slot_whose_supervisor_died") else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    ok(&c, &["rescan"]);
    c.wait_for(WAIT, "supervised", || svstat(&c, "gateway-alpha").supervised);
    let kill = c.run_as(User::Root, &["sh", "-c", "for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline | grep -qx 's6-supervise gateway-alpha '; then kill -9 ${p#/proc/}; fi; done"], &[], None);
    assert_eq!(kill.code, Some(0), "{}", kill.stderr);
    c.wait_for(WAIT, "supervisor gone", || !svstat(&c, "gateway-alpha").supervised);
    ok(&c, &["start", "alpha"]);
    wait_up(&c, "gateway-alpha");
}

#[test]
fn an_environment_payload_reaches_the_gateway_exactly_and_only_group_hermes_can_read_it() {
    let Some(c) = boot("an_environment_payload_reaches_the_gateway") else {
        return;
    };
    profile_dir(&c, "alpha");
    let payload = br#"{"API_TOKEN":"s3 cr=et\t \u00e9 ","EMPTY":"","QUOTE":"a\"b\\c"}"#;
    let out = helper_with_stdin(&c, User::Hermes, &["register", "alpha"], Some(payload));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let env_dir = "/run/service/gateway-alpha/env";
    assert_eq!(meta(&c, env_dir), (0, 10000, 0o750, "dir"));
    assert_eq!(meta(&c, &format!("{env_dir}/API_TOKEN")), (0, 10000, 0o640, "file"));
    assert_ne!(
        c.run_as(User::Intruder, &["cat", &format!("{env_dir}/API_TOKEN")], &[], None).code,
        Some(0),
        "others cannot read secrets"
    );
    ok(&c, &["start", "alpha"]);
    wait_up(&c, "gateway-alpha");
    c.wait_for(WAIT, "gateway recorded its start", || c.volume().join("profiles/alpha/standin-runs.jsonl").exists());
    let run = last_run(&c, "alpha");
    assert_eq!(run["env"]["API_TOKEN"], "s3 cr=et\t \u{e9} ");
    assert_eq!(run["env"]["EMPTY"], "");
    assert_eq!(run["env"]["QUOTE"], "a\"b\\c");
}

#[test]
fn the_logger_follows_the_containers_hermes_home_as_hermes() {
    let options =
        Options { container_env: vec![("HERMES_HOME".into(), "/opt/data/elsewhere".into())], ..Options::default() };
    let Some(c) = boot_with("the_logger_follows_the_containers_hermes_home", options) else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    ok(&c, &["rescan"]);
    let dir = c.volume().join("elsewhere/logs/gateways/alpha");
    c.wait_for(WAIT, "the logger's directory under the runtime HERMES_HOME", || dir.join("current").exists());
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (10000, 0o750), "made by hermes, closed to others");
    assert!(!c.volume().join("logs/gateways/alpha").exists(), "not under the compiled-in home");
}
