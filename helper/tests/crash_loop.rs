//! The slot's finish script: clean exits and exit 78 stop for good, crashes
//! restart, and a crash loop (5 runs each dead within 5 s, within 60 s) is
//! capped with a record that start/restart clear.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Runs the slot's real finish script in a scratch directory standing in for
/// the slot, after a run that started `lived` seconds ago and exited `code`.
fn finish(script: &Path, dir: &Path, lived: u64, code: &str) -> i32 {
    std::fs::write(dir.join("started"), format!("{}\n", now() - lived)).unwrap();
    let status = Command::new("/bin/sh").arg(script).args([code, "0", "gateway-x"]).current_dir(dir).status().unwrap();
    status.code().unwrap()
}

#[test]
fn finish_decides_restart_stop_and_crash_loop_exactly_as_documented() {
    let Some(c) = boot("finish_decides_restart_stop_and_crash_loop") else {
        return;
    };
    profile_dir(&c, "x");
    ok(&c, &["register", "x"]);
    let script = c.temp_dir().join("finish-under-test");
    std::fs::copy(c.host_path("/run/service/gateway-x/finish"), &script).unwrap();
    if Command::new("shellcheck").arg(&script).status().map(|s| !s.success()).unwrap_or(false) {
        panic!("the generated finish script fails shellcheck");
    }
    let dir = c.temp_dir().join("slot-under-test");
    std::fs::create_dir(&dir).unwrap();

    assert_eq!(finish(&script, &dir, 0, "0"), 125, "a clean exit stops for good");
    assert_eq!(finish(&script, &dir, 0, "78"), 125, "bad configuration stops for good");
    // Crashes after 10 s of life are not a loop, however many.
    for _ in 0..8 {
        assert_eq!(finish(&script, &dir, 10, "1"), 0);
    }
    assert!(!dir.join("crash-loop").exists());
    // Fast crashes: four are restarted, the fifth is capped and recorded.
    for n in 0..4 {
        assert_eq!(finish(&script, &dir, 0, "1"), 0, "fast crash {n} is restarted");
    }
    assert_eq!(finish(&script, &dir, 1, "256"), 125, "the fifth fast crash is capped");
    let record = std::fs::read_to_string(dir.join("crash-loop")).unwrap();
    assert!(record.starts_with("crash-looping: stopped after 5 failures in 60 s"), "{record}");
    // One slow run between fast crashes resets the count.
    std::fs::remove_file(dir.join("crash-loop")).unwrap();
    std::fs::remove_file(dir.join("fast-failures")).unwrap();
    for _ in 0..3 {
        assert_eq!(finish(&script, &dir, 0, "1"), 0);
    }
    assert_eq!(finish(&script, &dir, 30, "1"), 0);
    for _ in 0..4 {
        assert_eq!(finish(&script, &dir, 0, "1"), 0);
    }
    // A pending restart always restarts, and is consumed.
    std::fs::write(dir.join("restart-requested"), "").unwrap();
    assert_eq!(finish(&script, &dir, 0, "0"), 0);
    assert!(!dir.join("restart-requested").exists());
}

#[test]
fn a_gateway_crashing_at_once_is_capped_under_s6_and_start_gives_it_a_new_chance() {
    let Some(c) = boot("a_gateway_crashing_at_once_is_capped") else {
        return;
    };
    profile_dir(&c, "loop");
    standin_conf(&c, "loop", "crash_after_ms=0\n");
    ok(&c, &["register", "loop"]);
    ok(&c, &["start", "loop"]);
    let record = c.host_path("/run/service/gateway-loop/crash-loop");
    // The finish script writes the record with one `echo`: wait for its line.
    let mut text = String::new();
    c.wait_for(std::time::Duration::from_secs(20), "crash loop capped", || {
        text = std::fs::read_to_string(&record).unwrap_or_default();
        text.ends_with('\n')
    });
    assert!(text.contains("stopped after 5 failures in 60 s"), "{text}");
    let readable = c.run_as(User::Hermes, &["cat", "/run/service/gateway-loop/crash-loop"], &[], None);
    assert_eq!(readable.stdout, text, "hermes can read why its gateway stopped");
    let runs = || std::fs::read_to_string(c.volume().join("profiles/loop/standin-runs.jsonl")).unwrap().lines().count();
    let capped_at = runs();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(runs(), capped_at, "s6 no longer restarts it");
    assert!(!svstat(&c, "gateway-loop").up);

    standin_conf(&c, "loop", "");
    ok(&c, &["start", "loop"]);
    assert!(!record.exists(), "start clears the record");
    wait_up(&c, "gateway-loop");
    wait_gateway_running(&c, "loop");
}
