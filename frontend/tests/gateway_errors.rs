//! Every error path of the command line in the container: its message, its
//! exit code, and that nothing changed in s6.

mod common;
use common::*;

const TYPO_MESSAGE: &str = "hermes-s6: no such gateway 'typo': register it with `hermes profile create typo` first, or pass an existing profile name via `-p <name>`\n";

#[test]
fn errors_are_explained_with_their_exit_codes() {
    let Some(c) = boot("errors_are_explained_with_their_exit_codes") else {
        return;
    };
    profiles(&c, &["alpha"]);
    ok(&c, &["gateway", "start", "-p", "alpha"]);
    let up = wait_up(&c, "gateway-alpha");
    wait_gateway_running(&c, "alpha");
    let before = tree(&c);

    // A typo'd profile: 66 with the upstream message, for every command.
    for command in ["start", "stop", "restart", "status"] {
        let out = hs6(&c, &["gateway", command, "-p", "typo"]);
        assert_eq!(out.code, Some(66), "{command}: {out:?}");
        assert_eq!(out.stderr, TYPO_MESSAGE, "{command}");
        assert_eq!(out.stdout, "", "{command}");
    }
    assert!(!on_volume(&c, "/opt/data/profiles/typo").exists());

    // Names the helper would refuse never reach it.
    let calls = helper_calls(&c).len();
    for bad in ["Bad_Name", "../etc", "_x", &"a".repeat(64)] {
        let out = hs6(&c, &["gateway", "start", "-p", bad]);
        assert_eq!(out.code, Some(65), "{bad}: {out:?}");
        assert!(
            out.stderr.contains("invalid profile name"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(helper_calls(&c).len(), calls);

    // Usage errors.
    let out = hs6(&c, &["gateway", "start", "-p", "alpha", "--all"]);
    assert_eq!(out.code, Some(64), "{out:?}");
    let out = hs6(&c, &["gateway", "frobnicate"]);
    assert_eq!(out.code, Some(64), "{out:?}");

    // The helper blocked by no_new_privs (allowPrivilegeEscalation: false).
    let out = c
        .exec(
            User::Hermes,
            &["hermes-s6", "gateway", "stop", "-p", "alpha"],
        )
        .no_new_privs()
        .output();
    assert_eq!(out.code, Some(77), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no_new_privs"), "{}", out.stderr);
    assert!(
        out.stderr.contains("allowPrivilegeEscalation"),
        "{}",
        out.stderr
    );
    // The reconciler says the same.
    let out = c
        .exec(User::Hermes, &["hermes-s6", "reconcile"])
        .no_new_privs()
        .output();
    assert_eq!(out.code, Some(77), "{out:?}");
    assert!(out.stderr.contains("no_new_privs"), "{}", out.stderr);

    // A user outside group hermes may not run the helper at all.
    let out = hs6_as(
        &c,
        User::Intruder,
        &["gateway", "stop", "-p", "alpha"],
        &[],
        None,
    );
    assert_eq!(out.code, Some(77), "{out:?}");
    assert_eq!(
        out.stderr,
        "hermes-s6: cannot run the gateway helper /usr/libexec/hermes-s6-helper: permission denied; run as root or as a member of group hermes\n"
    );
    // …nor read the gateways' supervision state.
    let out = hs6_as(
        &c,
        User::Intruder,
        &["gateway", "status", "-p", "alpha"],
        &[("HERMES_HOME", "/opt/data")],
        None,
    );
    assert!(
        out.stdout
            .contains("permission denied (supervise/ must be readable by group hermes)"),
        "{out:?}"
    );
    // The same user, given group hermes, may.
    let out = c
        .exec(
            User::Intruder,
            &["hermes-s6", "gateway", "status", "-p", "alpha"],
        )
        .groups(&[c.gid(User::Hermes)])
        .output();
    assert!(out.stdout.starts_with("profile=alpha state=up "), "{out:?}");

    // Nothing of all that touched s6.
    assert_eq!(svstat(&c, "gateway-alpha"), up);
    assert_eq!(tree(&c), before);

    // s6-svscan not running: its control FIFO has no reader.
    sh_ok(
        &c,
        User::Root,
        "cd /run/service/.s6-svscan && mv control control.real && mkfifo -m 600 control",
    );
    for args in [
        &["gateway", "stop", "-p", "alpha"][..],
        &["gateway", "start", "-p", "alpha"],
        &["profile", "register", "beta"],
        &["reconcile"],
    ] {
        let out = hs6(&c, args);
        assert_eq!(out.code, Some(69), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("s6-svscan is not running"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Reading status needs no s6-svscan.
    ok(&c, &["gateway", "status", "--all"]);
    sh_ok(
        &c,
        User::Root,
        "cd /run/service/.s6-svscan && mv control.real control",
    );
    assert!(svstat(&c, "gateway-alpha").up);
    ok(&c, &["gateway", "stop", "-p", "alpha"]);
    wait_down(&c, "gateway-alpha");
}

#[test]
fn a_missing_helper_is_named() {
    let Some(c) = boot("a_missing_helper_is_named") else {
        return;
    };
    profiles(&c, &["alpha"]);
    let out = hs6_as(
        &c,
        User::Hermes,
        &["gateway", "start", "-p", "alpha"],
        &[("HERMES_S6_HELPER", "/usr/libexec/absent")],
        None,
    );
    assert_eq!(out.code, Some(72), "{out:?}");
    assert!(
        out.stderr.contains("/usr/libexec/absent is missing"),
        "{}",
        out.stderr
    );
    let out = hs6_as(
        &c,
        User::Hermes,
        &["reconcile"],
        &[("HERMES_S6_HELPER", "/usr/libexec/absent")],
        None,
    );
    assert_eq!(out.code, Some(72), "{out:?}");
    assert!(out.stderr.contains("is missing"), "{}", out.stderr);
    assert!(!c.host_path("/run/service/gateway-alpha").exists());
}
