//! `readOnlyRootFilesystem: true` with `S6_READ_ONLY_ROOT=1`: the image's
//! root is read-only ([`Options::read_only_root`]); only `/run`, `/tmp`,
//! `/dev` and the volume can be written. The cont-init steps, the helper
//! (over setuid and over the socket), s6 and the frontend write nowhere
//! else: the whole lifecycle and the reconcile across a restart work, and
//! no boot step says a word on stderr. Run on every s6 version
//! (`HERMES_EMU_S6=2.11|2.13|2.15`); also with the capabilities cut to the
//! smallest set, as the Pod of `docker/kubernetes-pod.yaml` runs.

mod common;

use std::time::Duration;

use common::*;
use hermes_s6_emu::wait_until;

const STEP_WAIT: Duration = Duration::from_secs(10);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

fn options(socket: bool, caps: Option<&str>) -> Options {
    Options {
        cont_init: true,
        no_setuid: socket,
        syslog: true,
        read_only_root: true,
        bounding_set: caps.map(str::to_owned),
        container_env: vec![("S6_READ_ONLY_ROOT".into(), "1".into())],
        ..Options::default()
    }
}

#[track_caller]
fn run_ok(c: &Container, args: &[&str], stdin: Option<&[u8]>) {
    let mut argv = vec!["hermes-s6"];
    argv.extend_from_slice(args);
    let mut exec = c.exec(User::Hermes, &argv).timeout(COMMAND_TIMEOUT);
    if let Some(bytes) = stdin {
        exec = exec.stdin_bytes(bytes);
    }
    exec.output().assert_success();
}

fn running(c: &Container, profile: &str) -> bool {
    let s = svstat(c, &format!("gateway-{profile}"));
    let st = state(c, profile);
    s.up && st["gateway_state"] == "running" && st["pid"].as_i64() == Some(s.pid)
}

#[track_caller]
fn wait(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        wait_until(STEP_WAIT, cond),
        "{what}: not within {STEP_WAIT:?}"
    );
}

fn lifecycle(test: &str, socket: bool, caps: Option<&str>) {
    let Some(mut c) = boot_with(test, options(socket, caps)) else {
        return;
    };
    // The root is read-only indeed, for root too; the writable places are not.
    for path in ["/etc/hermes-probe", "/usr/local/bin/probe", "/root-probe"] {
        let out = c.sh(User::Root, &format!(": > {path}"));
        assert!(
            !out.success() && out.stderr.contains("Read-only file system"),
            "{path}: {out:?}"
        );
    }
    sh_ok(
        &c,
        User::Root,
        ": > /run/probe && : > /tmp/probe && : > /dev/shm/probe && rm /run/probe /tmp/probe /dev/shm/probe",
    );

    profiles(&c, &["work"]);
    run_ok(
        &c,
        &["profile", "register", "work"],
        Some(br#"{"WORK_TOKEN": "t0k3n"}"#),
    );
    wait("work running", || running(&c, "work"));
    run_ok(&c, &["gateway", "start"], None);
    wait("default running", || running(&c, "default"));
    let before = svstat(&c, "gateway-work").pid;
    run_ok(&c, &["gateway", "restart", "-p", "work"], None);
    wait("work restarted", || {
        let s = svstat(&c, "gateway-work");
        s.up && s.pid > 0 && s.pid != before
    });
    // Stop only once the restarted gateway has recorded its own state: the
    // gateway and the stop both rewrite gateway_state.json, and a stop in
    // that instant can lose its intent (README: the two-writer limit).
    wait("work recorded running after its restart", || {
        running(&c, "work")
    });
    run_ok(&c, &["gateway", "stop", "-p", "work"], None);
    wait("work down", || {
        let s = svstat(&c, "gateway-work");
        s.supervised && !s.up
    });
    run_ok(&c, &["gateway", "status", "--all", "--json"], None);

    // The reconcile across a restart: default comes back, work stays down.
    c.restart();
    wait("default back after the restart", || running(&c, "default"));
    let s = svstat(&c, "gateway-work");
    assert!(s.supervised && !s.up, "{s:?}");
    run_ok(&c, &["profile", "unregister", "work"], None);
    assert!(!c.host_path("/run/service/gateway-work").exists());
    assert_root_owns_the_tree(&c);
    run_ok(&c, &["doctor"], None);

    assert_eq!(c.boots(), 2);
    for step in c.boot_log() {
        assert!(
            step.success() && step.stderr.is_empty(),
            "a boot step wrote outside /run, /tmp or the volume, or complained: {step:?}"
        );
    }
    assert_every_operation_succeeded(&helper_calls(&c));
}

#[test]
fn the_lifecycle_and_the_reconcile_work_on_a_read_only_root_over_setuid() {
    lifecycle(
        "the_lifecycle_and_the_reconcile_work_on_a_read_only_root_over_setuid",
        false,
        None,
    );
}

#[test]
fn the_lifecycle_and_the_reconcile_work_on_a_read_only_root_over_the_socket() {
    lifecycle(
        "the_lifecycle_and_the_reconcile_work_on_a_read_only_root_over_the_socket",
        true,
        None,
    );
}

/// The Pod of `docker/kubernetes-pod.yaml`: privilege escalation off, a
/// read-only root, capabilities cut to SETUID, SETGID and KILL.
#[test]
fn the_kubernetes_pod_works_read_only_with_the_smallest_capability_set() {
    lifecycle(
        "the_kubernetes_pod_works_read_only_with_the_smallest_capability_set",
        true,
        Some("-all,+setuid,+setgid,+kill"),
    );
}

/// A uid/gid remap rewrites `/etc/passwd` and `/etc/group`: on a read-only
/// root the boot stops at once with one line saying so and what to do.
#[test]
fn a_remap_on_a_read_only_root_stops_the_boot_with_one_line() {
    if hermes_s6_emu::skip_unless_root("a_remap_on_a_read_only_root_stops_the_boot_with_one_line") {
        return;
    }
    for var in ["HERMES_UID", "HERMES_GID"] {
        let mut opts = options(false, None);
        opts.container_env.push((var.into(), "12345".into()));
        let panic = std::panic::catch_unwind(|| Container::boot_with(opts))
            .expect_err("the boot must stop");
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with("01-hermes-s6-setup: error: "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains(&format!("{var}=12345 asks for a remap"))
                && line.contains("read-only root filesystem"),
            "{line}"
        );
    }
}
