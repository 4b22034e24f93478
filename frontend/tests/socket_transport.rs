//! Every command over the helper's socket transport, where setuid cannot
//! work: `no_new_privs` on every process of the container and the helper
//! without its setuid bit ([`Options::no_setuid`]), booted with the image's
//! own cont-init steps and its `hermes-s6-helperd` longrun
//! (`s6-ipcserver-socketbinder` → `s6-ipcserverd` → `s6-ipcserver-access`
//! → `s6-sudod` → the helper). The same lifecycle, the same refusals, the
//! same exit codes as over setuid; the audit trail says `via=socket`.

mod common;

use common::*;
use hermes_s6_emu::{HELPER_SOCKET, NO_SETUID_ENV};

const SUDO: &str = "/command/s6-sudo";

fn boot_socket(test: &str) -> Option<Container> {
    boot_with(
        test,
        Options {
            cont_init: true,
            no_setuid: true,
            ..Options::default()
        },
    )
}

/// Every record of the helper's audit trail names the socket, and the
/// caller's real uid.
#[track_caller]
fn all_via_socket_as(uid: u32, records: &[String]) {
    assert!(!records.is_empty());
    for record in records {
        assert!(
            record.contains(&format!("caller_uid={uid} via=socket ")),
            "{record}\n{records:#?}"
        );
    }
}

#[test]
fn the_whole_lifecycle_runs_as_hermes_over_the_socket() {
    let Some(mut c) = boot_socket("the_whole_lifecycle_runs_as_hermes_over_the_socket") else {
        return;
    };
    let status = c
        .sh(User::Hermes, "grep NoNewPrivs /proc/self/status")
        .stdout;
    assert!(status.contains('1'), "{status}");
    let info = json(&ok(&c, &["info", "--json"]));
    assert_eq!(info["control_mode"], "socket", "{info}");
    assert!(
        info["control_reason"]
            .as_str()
            .unwrap()
            .contains("hermes-s6-helperd"),
        "{info}"
    );
    assert_eq!(info["runtime_registration"], true);

    // Register with an environment payload, started.
    profiles(&c, &["work"]);
    let secret = "s3cr3t-over-the-socket";
    let payload = format!("{{\"WORK_TOKEN\": \"{secret}\"}}");
    hs6_as(
        &c,
        User::Hermes,
        &["profile", "register", "work"],
        &[],
        Some(payload.as_bytes()),
    )
    .assert_success();
    wait_gateway_running(&c, "work");
    let env = sh_ok(
        &c,
        User::Root,
        "cat /run/service/gateway-work/env/WORK_TOKEN",
    );
    assert_eq!(env.trim(), secret);
    // The secret is nowhere else: not on the volume (but for the stand-in
    // gateway's own record of its environment), not under /run or /tmp
    // outside env/, not in any process's argv. (The pattern does not match
    // its own text, so grep's argv is not a hit.)
    let pattern = "s3cr3t-over-the-[s]ocket";
    let found = c.sh(
        User::Root,
        &format!(
            "grep -rl --exclude-dir=env --exclude=standin-runs.jsonl -e '{pattern}' /run /tmp /opt/data 2>/dev/null; \
             grep -l -e '{pattern}' /proc/[0-9]*/cmdline 2>/dev/null; true"
        ),
    );
    assert_eq!(found.stdout.trim(), "", "{}", found.stdout);
    assert_root_owns_the_tree(&c);

    // Start, restart, stop, status.
    ok(&c, &["gateway", "start"]);
    wait_gateway_running(&c, "default");
    let before = svstat(&c, "gateway-work").pid;
    ok(&c, &["gateway", "restart", "-p", "work"]);
    c.wait_for(WAIT, "work restarted", || {
        let s = svstat(&c, "gateway-work");
        s.up && s.pid != before
    });
    // Stop only once the restarted gateway has recorded its own state: the
    // gateway and the stop both rewrite gateway_state.json, and a stop in
    // that instant can lose its intent (README: the two-writer limit).
    wait_gateway_running(&c, "work");
    ok(&c, &["gateway", "stop", "-p", "work"]);
    wait_down(&c, "gateway-work");
    let status = json(&ok(&c, &["gateway", "status", "--all", "--json"]));
    let text = status.to_string();
    assert!(text.contains("\"work\""), "{text}");

    // Across a container restart: default comes back up, work stays down.
    c.restart();
    wait_up(&c, "gateway-default");
    let s = svstat(&c, "gateway-work");
    assert!(s.supervised && !s.up, "{s:?}");
    let boot = c.boot_log().last().unwrap().clone();
    assert!(
        boot.stdout.contains("socket transport for this boot"),
        "{boot:?}"
    );

    // Unregister.
    ok(&c, &["profile", "unregister", "work"]);
    assert!(!c.host_path("/run/service/gateway-work").exists());

    let records = helper_calls(&c);
    let hermes = c.uid(User::Hermes);
    let socket_records: Vec<String> = records
        .iter()
        .filter(|r| !r.contains("op=- "))
        .cloned()
        .collect();
    all_via_socket_as(hermes, &socket_records);
    assert_every_operation_succeeded(&records);
}

#[test]
fn hostile_callers_get_nothing_through_the_socket() {
    let Some(c) = boot_socket("hostile_callers_get_nothing_through_the_socket") else {
        return;
    };
    let before = tree(&c);
    let hermes_gid = c.gid(User::Hermes);

    // Outside group hermes: the socket (root:hermes 0660) cannot be opened.
    let out = c.run_as(
        User::Intruder,
        &[SUDO, "-e", HELPER_SOCKET, "start", "default"],
        &[],
        None,
    );
    assert_eq!(out.code, Some(111), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    let out = hs6_as(&c, User::Intruder, &["gateway", "start"], &[], None);
    assert_eq!(out.code, Some(77), "{out:?}");

    // Supplementary group hermes opens the socket, but s6-ipcserver-access
    // knows the peer by its effective uid and gid: refused.
    let out = c
        .exec(
            User::Intruder,
            &[SUDO, "-e", HELPER_SOCKET, "start", "default"],
        )
        .groups(&[hermes_gid])
        .output();
    assert_eq!(out.code, Some(111), "{out:?}");
    assert!(
        out.stderr
            .contains("unable to connect to the s6-sudod server"),
        "{}",
        out.stderr
    );
    // Forged peer ids from such a client change nothing.
    let out = c
        .exec(User::Intruder, &[SUDO, HELPER_SOCKET, "start", "default"])
        .groups(&[hermes_gid])
        .env("IPCREMOTEEUID", "0")
        .env("IPCREMOTEEGID", "0")
        .output();
    assert_eq!(out.code, Some(111), "{out:?}");
    // The frontend says which: the server refused this user.
    let out = c
        .exec(User::Intruder, &["hermes-s6", "gateway", "start"])
        .groups(&[hermes_gid])
        .env(NO_SETUID_ENV, "1")
        .output();
    assert_eq!(out.code, Some(77), "{out:?}");
    assert!(out.stderr.contains("refused this user"), "{}", out.stderr);

    // hermes forging the peer ids (s6-sudo without -e sends its
    // environment): the helper still sees hermes.
    let out = c
        .exec(User::Hermes, &[SUDO, HELPER_SOCKET, "rescan"])
        .env("IPCREMOTEEUID", "0")
        .env("IPCREMOTEEGID", "0")
        .output();
    out.assert_success();
    let records = helper_calls(&c);
    let rescans = calls_of(&records, "rescan");
    let last = rescans.last().unwrap();
    assert!(
        last.starts_with(&format!("caller_uid={} via=socket ", c.uid(User::Hermes))),
        "{last}"
    );

    // A helper refusal keeps its code over the socket, and changes nothing.
    let out = c.run_as(
        User::Hermes,
        &[SUDO, "-e", HELPER_SOCKET, "register", "Bad_Name"],
        &[],
        None,
    );
    assert_eq!(out.code, Some(65), "{out:?}");
    assert!(out.stderr.contains("hermes-s6-helper: "), "{}", out.stderr);
    let out = c.run_as(
        User::Hermes,
        &[SUDO, "-e", HELPER_SOCKET, "register", "x", "--", "y"],
        &[],
        None,
    );
    assert_eq!(out.code, Some(65), "{out:?}");
    let out = c.run_as(
        User::Hermes,
        &[SUDO, "-e", HELPER_SOCKET, "register", "work"],
        &[],
        Some(b"{\"LD_PRELOAD\": \"/opt/data/x.so\"}"),
    );
    assert_eq!(out.code, Some(65), "{out:?}");
    assert_eq!(tree(&c), before);
    assert!(c.pwned().is_empty());
}

#[test]
fn doctor_and_info_say_which_transport_and_why() {
    let Some(c) = boot_socket("doctor_and_info_say_which_transport_and_why") else {
        return;
    };
    let doctor = json(&ok(&c, &["doctor", "--json"]));
    assert_eq!(doctor["control_mode"], "socket", "{doctor}");
    let text = ok(&c, &["doctor"]).stdout;
    assert!(
        text.contains("ok    control mode: socket: setuid cannot work here"),
        "{text}"
    );
    assert!(
        text.contains("ok    helper works: `--version` runs as root"),
        "{text}"
    );

    // The server stopped, the socket left behind: one clear error.
    sh_ok(
        &c,
        User::Root,
        "s6-svc -d /run/service/hermes-s6-helperd && s6-svwait -d /run/service/hermes-s6-helperd",
    );
    let out = hs6(&c, &["gateway", "start"]);
    assert_eq!(out.code, Some(69), "{out:?}");
    assert!(out.stderr.contains("hermes-s6-helperd"), "{}", out.stderr);
    // No socket at all, and no setuid: the error names both.
    sh_ok(&c, User::Root, &format!("rm -f {HELPER_SOCKET}"));
    let out = hs6(&c, &["gateway", "start"]);
    assert_eq!(out.code, Some(77), "{out:?}");
    assert!(
        out.stderr.contains("setuid cannot work here"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("socket transport is not there"),
        "{}",
        out.stderr
    );
    let info = json(&ok(&c, &["info", "--json"]));
    assert_eq!(info["control_mode"], "unavailable", "{info}");
    assert_eq!(info["runtime_registration"], false);
    let out = hs6(&c, &["doctor"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout
            .contains("fail  control mode: no way to the helper"),
        "{}",
        out.stdout
    );

    // The service back: everything works again.
    sh_ok(
        &c,
        User::Root,
        "s6-svc -u /run/service/hermes-s6-helperd && s6-svwait -U /run/service/hermes-s6-helperd",
    );
    ok(&c, &["gateway", "start"]);
    wait_up(&c, "gateway-default");
}

#[test]
fn setuid_where_it_works_and_the_socket_when_asked() {
    let Some(c) = boot_with(
        "setuid_where_it_works_and_the_socket_when_asked",
        Options {
            cont_init: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    let info = json(&ok(&c, &["info", "--json"]));
    assert_eq!(info["control_mode"], "setuid", "{info}");
    // The service runs in every container; HERMES_S6_NO_SETUID picks it.
    let out = hs6_as(
        &c,
        User::Hermes,
        &["info", "--json"],
        &[(NO_SETUID_ENV, "1")],
        None,
    );
    assert_eq!(json(&out)["control_mode"], "socket");
    hs6_as(
        &c,
        User::Hermes,
        &["gateway", "start"],
        &[(NO_SETUID_ENV, "1")],
        None,
    )
    .assert_success();
    wait_up(&c, "gateway-default");
    let records = helper_calls(&c);
    let starts = calls_of(&records, "start");
    assert!(
        starts.last().unwrap().contains(" via=socket "),
        "{starts:#?}"
    );
    // And the boot itself, with HERMES_S6_NO_SETUID in the container's
    // environment, reconciles over the socket.
    drop(c);
    let Some(c) = boot_with(
        "setuid_where_it_works_and_the_socket_when_asked",
        Options {
            cont_init: true,
            container_env: vec![(NO_SETUID_ENV.to_owned(), "1".to_owned())],
            ..Options::default()
        },
    ) else {
        return;
    };
    let boot = c.boot_log().last().unwrap();
    assert!(
        boot.stdout
            .contains("socket transport for this boot (HERMES_S6_NO_SETUID is set)"),
        "{boot:?}"
    );
    let records = helper_calls(&c);
    assert!(
        calls_of(&records, "register")[0].contains(" via=socket "),
        "{records:#?}"
    );
}
