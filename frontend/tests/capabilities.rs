//! The smallest capability set the container's root parts work with, and
//! what each command does when one of it is missing.
//!
//! The container runs with a narrower bounding set
//! ([`Options::bounding_set`]: PID 1, so s6-svscan, s6-supervise, every
//! service and the setuid helper, and every command run in the
//! container, cont-init steps included), as `docker run --cap-drop ALL
//! --cap-add ...` or a Pod's `capabilities: {drop: [ALL], add: [...]}`
//! leave it. The lifecycle (register with a payload, start, restart, stop,
//! status, unregister, the reconcile across a restart) runs over both
//! transports: setuid, and the socket of `hermes-s6-helperd`
//! ([`Options::no_setuid`]).
//!
//! Found: `SETUID`, `SETGID` and `KILL` suffice (the volume already
//! hermes's). `SETUID` and `SETGID`: s6-setuidgid starts every gateway and
//! logger as hermes, the helper sets its groups; without either the boot
//! stops at `01-hermes-s6-setup` with one line. `KILL`: s6-supervise, root,
//! signals gateways, which run as hermes; without it `stop`, `restart` and
//! `unregister` refuse with one line (exit 77) before they change anything.
//! `CHOWN` is not needed (`hermes-s6-helperd` binds its socket with gid
//! hermes), but for a first boot on a volume that is not hermes's yet (the
//! boot then warns, naming it) and for a `HERMES_GID` remap, which
//! re-groups the helper (the boot stops, naming it). Nothing needs `DAC_OVERRIDE`, `FOWNER` or
//! the rest of Docker's default set.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use common::*;
use hermes_s6_emu::wait_until;

/// Docker's default set.
const DOCKER_DEFAULT: &[&str] = &[
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
];

/// The smallest set found.
const MINIMAL: &[&str] = &["setgid", "setuid", "kill"];

/// No command may take longer than this: a missing capability must never
/// make one hang.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const STEP_WAIT: Duration = Duration::from_secs(10);

fn bounding(caps: &[&str]) -> String {
    let mut set = String::from("-all");
    for cap in caps {
        set.push_str(",+");
        set.push_str(cap);
    }
    set
}

fn options(caps: &[&str], socket: bool) -> Options {
    Options {
        cont_init: true,
        no_setuid: socket,
        syslog: true,
        bounding_set: Some(bounding(caps)),
        ..Options::default()
    }
}

/// `linux/capability.h`'s number of a capability of [`DOCKER_DEFAULT`].
fn cap_bit(name: &str) -> u32 {
    match name {
        "chown" => 0,
        "dac_override" => 1,
        "fowner" => 3,
        "fsetid" => 4,
        "kill" => 5,
        "setgid" => 6,
        "setuid" => 7,
        "setpcap" => 8,
        "net_bind_service" => 10,
        "net_raw" => 13,
        "sys_chroot" => 18,
        "mknod" => 27,
        "audit_write" => 29,
        "setfcap" => 31,
        _ => panic!("no bit for {name}"),
    }
}

fn transport(socket: bool) -> &'static str {
    if socket { "socket" } else { "setuid" }
}

/// `hermes-s6 <args>` as hermes, bounded by [`COMMAND_TIMEOUT`].
fn run(c: &Container, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut argv = vec!["hermes-s6"];
    argv.extend_from_slice(args);
    let mut exec = c.exec(User::Hermes, &argv).timeout(COMMAND_TIMEOUT);
    if let Some(bytes) = stdin {
        exec = exec.stdin_bytes(bytes);
    }
    exec.output()
}

fn up_with_pid(c: &Container, slot: &str) -> Option<i64> {
    let s = svstat(c, slot);
    (s.up && s.pid > 0).then_some(s.pid)
}

fn running(c: &Container, profile: &str) -> bool {
    let slot = format!("gateway-{profile}");
    let s = svstat(c, &slot);
    let st = state(c, profile);
    s.up && st["gateway_state"] == "running" && st["pid"].as_i64() == Some(s.pid)
}

fn command(c: &Container, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, String> {
    let out = run(c, args, stdin);
    if out.success() {
        Ok(out)
    } else {
        Err(format!(
            "hermes-s6 {} exited {:?}: {}",
            args.join(" "),
            out.code,
            out.stderr.trim()
        ))
    }
}

fn wait(what: &str, cond: impl FnMut() -> bool) -> Result<(), String> {
    if wait_until(STEP_WAIT, cond) {
        Ok(())
    } else {
        Err(format!("{what}: not within {STEP_WAIT:?}"))
    }
}

/// The whole lifecycle; the first step that fails, with what it said.
fn lifecycle(c: &mut Container) -> Result<(), String> {
    profiles(c, &["work"]);
    let payload = br#"{"WORK_TOKEN": "t0k3n"}"#;
    command(c, &["profile", "register", "work"], Some(payload))?;
    wait("work running after register", || running(c, "work"))?;
    let env = sh_ok(
        c,
        User::Root,
        "cat /run/service/gateway-work/env/WORK_TOKEN",
    );
    if env.trim() != "t0k3n" {
        return Err(format!("the payload did not arrive: {env:?}"));
    }
    command(c, &["gateway", "start"], None)?;
    wait("default running after start", || running(c, "default"))?;
    let before = svstat(c, "gateway-work").pid;
    command(c, &["gateway", "restart", "-p", "work"], None)?;
    wait("work restarted", || {
        up_with_pid(c, "gateway-work").is_some_and(|pid| pid != before)
    })?;
    // Stop only once the restarted gateway has recorded its own state: the
    // gateway and the stop both rewrite gateway_state.json, and a stop in
    // that instant can lose its intent (README: the two-writer limit).
    wait("work recorded running after its restart", || {
        running(c, "work")
    })?;
    command(c, &["gateway", "stop", "-p", "work"], None)?;
    wait("work down after stop", || {
        let s = svstat(c, "gateway-work");
        s.supervised && !s.up
    })?;
    command(c, &["gateway", "status", "--all", "--json"], None)?;
    c.restart();
    wait("default back up after the restart", || {
        running(c, "default")
    })?;
    let s = svstat(c, "gateway-work");
    if !s.supervised || s.up {
        return Err(format!("work after the restart: {s:?}"));
    }
    command(c, &["profile", "unregister", "work"], None)?;
    if c.host_path("/run/service/gateway-work").exists() {
        return Err("gateway-work still there after unregister".into());
    }
    assert_root_owns_the_tree(c);
    // Every boot's steps ran clean: no warning either.
    for run in c.boot_log() {
        if !run.success() || !run.stderr.is_empty() {
            return Err(format!("boot step: {run:?}"));
        }
    }
    let doctor = run(c, &["doctor"], None);
    if !doctor.success() {
        return Err(format!("doctor: {doctor:?}"));
    }
    Ok(())
}

fn boot_and_run(test: &str, caps: &[&str], socket: bool) {
    if hermes_s6_emu::skip_unless_root(test) {
        return;
    }
    let mut c = Container::boot_with(options(caps, socket));
    // PID 1, and so every service, holds exactly the set.
    let eff = sh_ok(&c, User::Root, "grep CapEff /proc/1/status");
    let eff = u64::from_str_radix(eff.trim_start_matches("CapEff:").trim(), 16).unwrap();
    let expected = caps.iter().fold(0u64, |mask, cap| mask | 1 << cap_bit(cap));
    assert_eq!(eff, expected, "{}", bounding(caps));
    if let Err(e) = lifecycle(&mut c) {
        panic!(
            "{} transport with {}: {e}",
            transport(socket),
            bounding(caps)
        );
    }
}

#[test]
fn the_lifecycle_works_with_dockers_default_set_over_setuid() {
    boot_and_run(
        "the_lifecycle_works_with_dockers_default_set_over_setuid",
        DOCKER_DEFAULT,
        false,
    );
}

#[test]
fn the_lifecycle_works_with_dockers_default_set_over_the_socket() {
    boot_and_run(
        "the_lifecycle_works_with_dockers_default_set_over_the_socket",
        DOCKER_DEFAULT,
        true,
    );
}

#[test]
fn the_lifecycle_works_with_setuid_setgid_and_kill_over_setuid() {
    boot_and_run(
        "the_lifecycle_works_with_setuid_setgid_and_kill_over_setuid",
        MINIMAL,
        false,
    );
}

#[test]
fn the_lifecycle_works_with_setuid_setgid_and_kill_over_the_socket() {
    boot_and_run(
        "the_lifecycle_works_with_setuid_setgid_and_kill_over_the_socket",
        MINIMAL,
        true,
    );
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Without SETUID or SETGID no gateway could ever run: the boot stops at
/// its first step that needs them, with one line naming both, and nothing
/// is left in the scan dir (the container is gone).
#[test]
fn without_setuid_or_setgid_the_boot_stops_with_one_line() {
    if hermes_s6_emu::skip_unless_root("without_setuid_or_setgid_the_boot_stops_with_one_line") {
        return;
    }
    for socket in [false, true] {
        for dropped in ["setuid", "setgid"] {
            let caps: Vec<&str> = MINIMAL.iter().copied().filter(|c| *c != dropped).collect();
            let result = catch_unwind(AssertUnwindSafe(|| {
                Container::boot_with(options(&caps, socket));
            }));
            let text = panic_text(result.expect_err("the boot must stop"));
            let line = text
                .lines()
                .find(|l| l.starts_with("01-hermes-s6-setup: error: "))
                .unwrap_or_else(|| panic!("{} without {dropped}: {text}", transport(socket)));
            assert!(
                line.contains("root cannot run programs as hermes")
                    && line.contains("CAP_SETUID or CAP_SETGID")
                    && line.contains("--cap-add SETUID --cap-add SETGID"),
                "{line}"
            );
            assert!(
                text.contains("cont-init script /etc/cont-init.d/01-hermes-s6-setup exited 1"),
                "{text}"
            );
        }
    }
}

/// Without KILL, s6-supervise (root) cannot signal a gateway (hermes's):
/// gateways still register and start, but `stop`, `restart` and
/// `unregister` refuse at once, with one line naming KILL, exit 77, and
/// leave everything as it was: the scan dir, the gateway's process and
/// its recorded intent. `hermes-s6 doctor` fails naming it.
#[test]
fn without_kill_stop_restart_and_unregister_refuse_and_change_nothing() {
    if hermes_s6_emu::skip_unless_root(
        "without_kill_stop_restart_and_unregister_refuse_and_change_nothing",
    ) {
        return;
    }
    for socket in [false, true] {
        let c = Container::boot_with(options(&["setuid", "setgid"], socket));
        profiles(&c, &["work"]);
        command(
            &c,
            &["profile", "register", "work"],
            Some(b"{\"K\": \"v\"}"),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", transport(socket)));
        assert!(wait_until(STEP_WAIT, || running(&c, "work")));
        let pid = svstat(&c, "gateway-work").pid;
        let tree_before = tree(&c);
        let state_before = state(&c, "work");
        for args in [
            &["gateway", "stop", "-p", "work"][..],
            &["gateway", "restart", "-p", "work"][..],
            &["profile", "unregister", "work"][..],
        ] {
            let out = run(&c, args, None);
            assert_eq!(
                out.code,
                Some(77),
                "{args:?} {}: {out:?}",
                transport(socket)
            );
            let stderr = out.stderr.trim();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.contains("nothing was changed")
                    && stderr.contains("lacks CAP_KILL")
                    && stderr.contains("--cap-add KILL"),
                "{stderr}"
            );
            assert_eq!(tree(&c), tree_before, "{args:?}");
            let s = svstat(&c, "gateway-work");
            assert!(s.up && s.pid == pid, "{args:?}: {s:?}");
            assert_eq!(
                state(&c, "work")["desired_state"],
                state_before["desired_state"]
            );
        }
        let doctor = run(&c, &["doctor"], None);
        assert!(!doctor.success(), "{doctor:?}");
        let line = doctor
            .stdout
            .lines()
            .find(|l| l.starts_with("fail") && l.contains("capabilities"))
            .unwrap_or_else(|| panic!("{doctor:?}"));
        assert!(line.contains("lacks CAP_KILL"), "{line}");
        assert!(doctor.stdout.contains("add KILL"), "{}", doctor.stdout);
    }
}

/// Without CHOWN, a first boot on a volume that is not hermes's yet
/// cannot give it to hermes: the boot warns, naming CAP_CHOWN, and goes on.
#[test]
fn without_chown_a_foreign_volume_gets_a_warning_naming_it() {
    if hermes_s6_emu::skip_unless_root("without_chown_a_foreign_volume_gets_a_warning_naming_it") {
        return;
    }
    let mut c = Container::boot_with(options(MINIMAL, false));
    std::os::unix::fs::chown(c.volume(), Some(0), Some(0)).unwrap();
    c.restart();
    let setup = c
        .boot_log()
        .iter()
        .find(|r| r.boot == 2 && r.script.ends_with("01-hermes-s6-setup"))
        .unwrap()
        .clone();
    assert!(setup.success(), "{setup:?}");
    assert!(
        setup
            .stderr
            .contains("warning: cannot chown /opt/data (CAP_CHOWN missing"),
        "{setup:?}"
    );
}

/// Without CHOWN, a `HERMES_GID` remap cannot re-group the helper (root is
/// not in the new group): the boot stops with one line naming it.
#[test]
fn without_chown_a_gid_remap_stops_the_boot_naming_it() {
    if hermes_s6_emu::skip_unless_root("without_chown_a_gid_remap_stops_the_boot_naming_it") {
        return;
    }
    let mut opts = options(MINIMAL, false);
    opts.container_env
        .push(("HERMES_GID".into(), "12345".into()));
    let result = catch_unwind(AssertUnwindSafe(|| {
        Container::boot_with(opts);
    }));
    let text = panic_text(result.expect_err("the boot must stop"));
    let line = text
        .lines()
        .find(|l| l.starts_with("01-hermes-s6-setup: error: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("cannot re-group /usr/libexec/hermes-s6-helper")
            && line.contains("CAP_CHOWN missing"),
        "{line}"
    );
    // With CHOWN it boots.
    let mut opts = options(&["setgid", "setuid", "kill", "chown"], false);
    opts.container_env
        .push(("HERMES_GID".into(), "12345".into()));
    let c = Container::boot_with(opts);
    assert_eq!(c.boot_log().len(), 3, "{:?}", c.boot_log());
}
