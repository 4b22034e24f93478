//! No escalation: as hermes, with the helper available, every route the
//! filesystem offers towards a process running as root fails. Each attempt
//! aims at making a root process create `/run/pwned-<n>`; none may appear.

mod common;
use common::*;

#[test]
fn hermes_cannot_plant_or_alter_anything_s6_runs_as_root() {
    let Some(c) = boot("hermes_cannot_plant_or_alter_anything_s6_runs_as_root") else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    ok(&c, &["start", "alpha"]);
    wait_up(&c, "gateway-alpha");
    let attempts = [
        // A service of its own in the scan dir, then a rescan.
        "mkdir /run/service/evil && printf '#!/bin/sh\\ntouch /run/pwned-1\\n' > /run/service/evil/run && chmod +x /run/service/evil/run",
        "s6-svscanctl -a /run/service",
        // Alter or replace what s6 executes as root for an existing slot.
        "printf '#!/bin/sh\\ntouch /run/pwned-2\\n' > /run/service/gateway-alpha/finish",
        "mv /run/service/gateway-alpha/run /tmp/run-moved",
        "ln -sf /tmp/evil /run/service/gateway-alpha/finish",
        "touch /run/service/gateway-alpha/supervise/evil",
        "rm /run/service/gateway-alpha/finish",
        "printf d > /run/service/gateway-alpha/supervise/control",
        "mkfifo /run/service/gateway-alpha/event/evil",
        // The staging and retired names the helper uses.
        "mkdir /run/service/.gateway-beta.new",
        "ln -s /etc /run/service/.gateway-alpha.old",
        // The container environment root's run scripts import.
        "echo /tmp/evil.so > /run/s6/container_environment/LD_PRELOAD",
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let out = c.run_as(User::Hermes, &["sh", "-c", attempt], &[], None);
        assert_ne!(out.code, Some(0), "attempt {i} succeeded: {attempt}");
    }
    // The helper itself only accepts gateway names: no route to other services.
    for name in ["../evil", "main-hermes/..", "/run/service/evil"] {
        assert_eq!(helper(&c, User::Hermes, &["start", name]).code, Some(65));
    }
    // An env value is data, never code, wherever it lands.
    profile_dir(&c, "beta");
    let payload = br#"{"INJECT":"$(touch /run/pwned-3); `touch /run/pwned-4`"}"#;
    let out = helper_with_stdin(&c, User::Hermes, &["register", "beta"], Some(payload));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    ok(&c, &["start", "beta"]);
    wait_up(&c, "gateway-beta");
    ok(&c, &["restart", "alpha", "beta"]);
    wait_up(&c, "gateway-alpha");
    wait_up(&c, "gateway-beta");
    assert!(!c.host_path("/run/service/evil").exists());
    assert_eq!(c.pwned(), Vec::<String>::new());
}

#[test]
fn racing_a_register_against_symlink_swaps_gains_nothing() {
    let Some(c) = boot("racing_a_register_against_symlink_swaps") else {
        return;
    };
    for i in 0..10 {
        profile_dir(&c, &format!("r{i}"));
    }
    // A hermes process hammers every name the helper will use while the
    // helper registers and unregisters; the scan dir is root's, so every swap
    // fails, and the helper's results are exactly the normal ones.
    let racer = "end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do for i in 0 1 2 3 4 5 6 7 8 9; do \
                 ln -sfn /etc /run/service/.gateway-r$i.new 2>/dev/null; ln -sfn /etc /run/service/gateway-r$i 2>/dev/null; \
                 ln -sfn /etc /run/service/gateway-r$i/log 2>/dev/null; done; done; true";
    let racing = c.exec(User::Hermes, &["sh", "-c", racer]).spawn();
    for _ in 0..5 {
        let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        let mut reg = vec!["register"];
        reg.extend(names.iter().map(String::as_str));
        ok(&c, &reg);
        let mut unreg = vec!["unregister"];
        unreg.extend(names.iter().map(String::as_str));
        ok(&c, &unreg);
    }
    racing.wait_output();
    let left = std::fs::read_dir(c.host_path("/run/service"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>();
    let mut expected: std::collections::BTreeSet<String> = hermes_s6_emu::overlay_entries().into_iter().collect();
    expected.insert(".hermes-s6-helper.lock".to_owned());
    assert_eq!(left, expected, "only s6-overlay's entries and the helper's lock remain");
    assert!(std::fs::read_dir(c.host_path("/etc")).is_ok());
}

/// Regression guard for the model this product replaces: upstream's boot
/// hands hermes the scan dir and s6-svscan's control FIFO. Then one mkdir
/// and one rescan give hermes a process running as root. If this ever stops
/// reproducing, the emulation no longer shows what the product defends
/// against; the test above shows the same attempt failing here.
#[test]
fn upstream_permission_model_hands_hermes_root_in_one_step() {
    let Some(c) = boot("upstream_permission_model_hands_hermes_root_in_one_step") else {
        return;
    };
    let upstream = c.run_as(
        User::Root,
        &["sh", "-ec", "chown -R hermes /run/service && chown hermes /run/service/.s6-svscan/control"],
        &[],
        None,
    );
    assert_eq!(upstream.code, Some(0), "{}", upstream.stderr);
    let attack = "mkdir /run/service/x && printf '#!/bin/sh\\nid -u > /run/service/x/uid\\nexec sleep 1000\\n' > /run/service/x/run \
                  && chmod +x /run/service/x/run && s6-svscanctl -a /run/service";
    let out = c.run_as(User::Hermes, &["sh", "-ec", attack], &[], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let uid = c.host_path("/run/service/x/uid");
    c.wait_for(WAIT, "the planted run script to execute", || {
        std::fs::read_to_string(&uid).map(|s| !s.is_empty()).unwrap_or(false)
    });
    assert_eq!(std::fs::read_to_string(&uid).unwrap().trim(), "0", "upstream's model runs hermes's code as root");

    // The same attempt against this product's tree is refused at the first step.
    let Some(ours) = boot("upstream_permission_model_hands_hermes_root_in_one_step") else {
        return;
    };
    let out = ours.run_as(User::Hermes, &["sh", "-ec", attack], &[], None);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    assert!(!ours.host_path("/run/service/x").exists());
}

/// The helper serializes itself with a lock only root can open: a hermes
/// process holding every lock it can take (s6-overlay's `.s6-svscan` is
/// 0755, unlike Debian's) stalls nothing.
#[test]
fn hermes_cannot_stall_the_helper_by_holding_locks() {
    let Some(c) = boot("hermes_cannot_stall_the_helper_by_holding_locks") else { return };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    let widen = c.run_as(User::Root, &["chmod", "0755", "/run/service/.s6-svscan"], &[], None);
    assert_eq!(widen.code, Some(0));
    let lock = c.run_as(User::Hermes, &["sh", "-c", "exec 9</run/service/.hermes-s6-helper.lock"], &[], None);
    assert_ne!(lock.code, Some(0), "hermes opened the helper's lock file");
    let mut holder = c
        .exec(
            User::Hermes,
            &[
                "sh",
                "-c",
                "flock /run/service/.s6-svscan sh -c 'touch /tmp/held-svscan; exec sleep 6' & \
                 flock /run/service sh -c 'touch /tmp/held-scan; exec sleep 6' & wait",
            ],
        )
        .spawn();
    c.wait_for(WAIT, "hermes holding both locks", || {
        c.host_path("/tmp/held-svscan").exists() && c.host_path("/tmp/held-scan").exists()
    });
    ok(&c, &["start", "alpha"]);
    // Had the helper waited for either lock, it could only have finished
    // once the holder let go, i.e. had exited.
    assert!(holder.child.try_wait().unwrap().is_none(), "the helper waited for a lock hermes held");
    wait_up(&c, "gateway-alpha");
    holder.wait_output();
}
