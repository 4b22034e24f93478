//! A hostile hermes against the image's root parts, through what it owns:
//! programs planted in a directory of the Hermes base image's PATH (on the
//! volume), modes it sets on its own directories, and the gateways' logs.
//! Every attack is performed as hermes, exactly as an attacker in the
//! container would; none may get a program run as root, stop a later boot,
//! or show a gateway's log to a user outside group hermes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use hermes_s6_emu::{Container, Options, SCAN_DIR, User, skip_unless_root};

mod assets;
use assets::*;

/// The Hermes base image's PATH: `/opt/data/.local/bin` is on the volume,
/// writable by hermes.
const HERMES_BASE_PATH: &str = "/opt/hermes/bin:/opt/hermes/.venv/bin:/opt/data/.local/bin:\
                                /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PLANTED: &str = "/opt/data/.local/bin";

/// The image as docker/Dockerfile builds it on the Hermes base: the base's
/// PATH kept for hermes in HERMES_S6_USER_PATH, root's PATH in PATH.
fn layered_on_the_hermes_base() -> Container {
    with_assets(Options {
        container_env: vec![("HERMES_S6_USER_PATH".into(), HERMES_BASE_PATH.into())],
        ..Options::default()
    })
}

/// Every program the image's root scripts (and s6's) could look up by name,
/// planted by hermes. Run as root, each leaves `/run/pwned-<name>`; run as
/// hermes, it notes its command line in /tmp/planted.used and runs the real
/// program.
fn plant_programs(c: &Container) {
    let names = "id cat tr mkdir chown chmod chgrp stat mv mktemp getent cut rm sed sh bash dash env \
                 readlink dirname date printf sleep grep groupmod usermod mkfifo hermes hermes-s6 \
                 execlineb s6-setuidgid s6-svstat s6-svwait s6-svperms with-contenv";
    let shim = r#"#!/bin/sh
if [ "$(/usr/bin/id -u)" = 0 ]; then
    : >/run/pwned-@NAME@
else
    echo "@NAME@ $*" >>/tmp/planted.used
fi
for d in /command /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do
    [ -x "$d/@NAME@" ] && exec "$d/@NAME@" "$@"
done
exit 127
"#;
    let script = format!(
        "mkdir -p {PLANTED} && cd {PLANTED} && cat >.shim && for n in {names}; do \
         sed \"s/@NAME@/$n/g\" .shim >$n && chmod 755 $n || exit 1; done && rm .shim"
    );
    c.run_as(
        User::Hermes,
        &["sh", "-c", &script],
        &[],
        Some(shim.as_bytes()),
    )
    .assert_success();
}

/// Whether hermes ran a planted program with a command line starting so.
fn hermes_ran(c: &Container, command_line: &str) -> bool {
    fs::read_to_string(c.host_path("/tmp/planted.used"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(command_line))
}

#[test]
fn programs_planted_on_hermes_path_never_run_as_root() {
    if skip_unless_root("programs_planted_on_hermes_path_never_run_as_root") {
        return;
    }
    let mut c = layered_on_the_hermes_base();
    plant_programs(&c);
    // The next boot runs every cont-init script, and the reconciler starts a
    // gateway whose slot's run script drops to hermes.
    c.sh(
        User::Hermes,
        "mkdir -p /opt/data/profiles/alpha && touch /opt/data/profiles/alpha/SOUL.md",
    )
    .assert_success();
    c.restart();
    assert!(
        c.boot_log().iter().all(|r| r.success()),
        "{:?}",
        c.boot_log()
    );
    c.run_as(
        User::Hermes,
        &["hermes-s6", "gateway", "start", "-p", "alpha"],
        &[],
        None,
    )
    .assert_success();
    c.wait_for(
        Duration::from_secs(10),
        "the gateway ran `hermes` through hermes's PATH",
        || hermes_ran(&c, "hermes -p alpha gateway run"),
    );

    // Now as s6-overlay runs them when the image's PATH itself names the
    // hermes-writable directory (a derived image, or `-e PATH=`): each root
    // script keeps to root's PATH all the same.
    let unsafe_path = format!("/command:{HERMES_BASE_PATH}");
    set_env(&c, "PATH", Some(&unsafe_path));
    let as_root = |argv: &[&str]| c.exec(User::Root, argv).env("PATH", &unsafe_path).output();
    as_root(&[SETUP]).assert_success();
    as_root(&[RECONCILE]).assert_success();
    let hook = as_root(&[
        "/bin/sh",
        "-c",
        "/usr/local/libexec/hermes-stage2-hook; exit $?",
        "rc.init",
        "top",
        WRAPPER,
        "sh",
        "-c",
        "exit 3",
    ]);
    hook.assert_success();
    assert_eq!(read(&c, "/run/hermes/container-command"), "sh -c exit 3\n");
    set_env(&c, "HERMES_DASHBOARD", Some("1"));
    c.add_service(
        "main-hermes",
        &asset("etc/s6-overlay/s6-rc.d/main-hermes/run"),
        None,
    );
    c.add_service(
        "dashboard",
        &asset("etc/s6-overlay/s6-rc.d/dashboard/run"),
        Some(&asset("etc/s6-overlay/s6-rc.d/dashboard/finish")),
    );
    // s6-overlay's main program, as rc.init runs it: its status is the
    // container's; it ran as hermes, through hermes's PATH (`sh` is planted).
    as_root(&[WRAPPER, "sh", "-c", "exit 3"]).assert_code(3);
    assert!(hermes_ran(&c, "sh -c exit 3"));
    let wrapper = as_root(&[WRAPPER, "id", "-u"]);
    assert_eq!(wrapper.assert_success().stdout, "10000\n");
    // The entry point where the image is not PID 1 runs the boot steps
    // itself: the first one refuses this PATH, and nothing else runs.
    let direct = as_root(&[ENTRYPOINT, "id", "-u"]);
    direct.assert_code(1);
    assert!(
        direct.stderr.contains("00-hermes-path: error:") && !direct.stdout.contains("10000"),
        "{direct:?}"
    );
    c.wait_for(Duration::from_secs(10), "the dashboard ran", || {
        hermes_ran(&c, "hermes dashboard")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        c.pwned(),
        Vec::<String>::new(),
        "root ran a program hermes planted"
    );
}

#[test]
fn a_hermes_writable_directory_on_the_images_path_stops_the_boot_with_one_line() {
    if skip_unless_root(
        "a_hermes_writable_directory_on_the_images_path_stops_the_boot_with_one_line",
    ) {
        return;
    }
    // On a fresh volume too: /opt/data/.local/bin does not exist yet, and
    // /opt/data becomes hermes's only in 01-hermes-s6-setup.
    let message = boot_failure(Options {
        container_env: vec![("PATH".into(), format!("/command:{HERMES_BASE_PATH}"))],
        ..Options::default()
    });
    assert!(
        message.contains(&format!("cont-init script {PATH_CHECK} exited 1")),
        "{message}"
    );
    let refusal: Vec<&str> = message
        .lines()
        .filter(|l| l.contains("00-hermes-path: error:"))
        .collect();
    assert_eq!(refusal.len(), 1, "{message}");
    assert!(
        refusal[0].contains("the image's PATH entry '/opt/data/.local/bin' is not safe for root")
            && refusal[0].contains("HERMES_S6_USER_PATH"),
        "{message}"
    );
    // Nothing of the boot ran past the check.
    assert!(!message.contains("01-hermes-s6-setup"), "{message}");
}

#[test]
fn a_directory_of_roots_path_that_others_may_write_stops_the_boot() {
    if skip_unless_root("a_directory_of_roots_path_that_others_may_write_stops_the_boot") {
        return;
    }
    // `-e PATH=/tmp/tools:...`: anyone may write to /tmp.
    let message = boot_failure(Options {
        container_env: vec![("PATH".into(), "/command:/tmp/tools:/usr/bin:/bin".into())],
        ..Options::default()
    });
    assert!(
        message.contains("the image's PATH entry '/tmp/tools' is not safe for root: /tmp is writable by group or others (mode 1777)"),
        "{message}"
    );
}

#[test]
fn modes_hermes_sets_on_its_own_directories_never_stop_a_boot() {
    if skip_unless_root("modes_hermes_sets_on_its_own_directories_never_stop_a_boot") {
        return;
    }
    let mut c = boot();
    for attack in [
        "chmod 000 /opt/data/logs/gateways",
        "chmod 000 /opt/data/logs",
        "chmod 000 /opt/data",
    ] {
        c.sh(User::Hermes, attack).assert_success();
        c.restart();
        assert!(
            c.boot_log()
                .iter()
                .filter(|r| r.boot == c.boots())
                .all(|r| r.success()),
            "{attack}: {:?}",
            c.boot_log()
        );
        assert_eq!(owner_mode(&c, "/opt/data").2 & 0o700, 0o700, "{attack}");
        for dir in ["/opt/data/logs", "/opt/data/logs/gateways"] {
            assert_eq!(
                owner_mode(&c, dir),
                (10000, 10000, 0o750),
                "{attack}: {dir}"
            );
        }
        // The boot's gateway (default) logs again.
        c.wait_for(Duration::from_secs(10), "the default gateway's log", || {
            c.host_path("/opt/data/logs/gateways/default/current")
                .exists()
        });
    }
}

#[test]
fn gateway_logs_are_closed_to_users_outside_group_hermes() {
    if skip_unless_root("gateway_logs_are_closed_to_users_outside_group_hermes") {
        return;
    }
    let c = boot();
    let log_dir = "/opt/data/logs/gateways/default";
    c.wait_for(Duration::from_secs(10), "the default gateway's log", || {
        c.host_path(&format!("{log_dir}/current")).exists()
    });
    let (uid, gid, mode) = owner_mode(&c, log_dir);
    assert_eq!((uid, gid, mode), (10000, 10000, 0o750));
    for entry in fs::read_dir(c.host_path(log_dir)).unwrap().flatten() {
        let m = entry.metadata().unwrap();
        assert_eq!((m.uid(), m.gid()), (10000, 10000), "{entry:?}");
        assert_eq!(
            m.mode() & 0o027,
            0,
            "{entry:?}: mode {:o}",
            m.mode() & 0o7777
        );
    }
    let intruder = c.sh(User::Intruder, &format!("cat {log_dir}/current"));
    assert!(!intruder.success(), "{intruder:?}");
    assert!(
        c.sh(User::Hermes, &format!("cat {log_dir}/current >/dev/null"))
            .success()
    );
    assert!(fs::metadata(c.host_path(&format!("{SCAN_DIR}/gateway-default"))).is_ok());
}

#[test]
fn the_images_path_is_handed_to_pid_1_and_recorded_for_with_contenv() {
    if skip_unless_root("the_images_path_is_handed_to_pid_1_and_recorded_for_with_contenv") {
        return;
    }
    let path = "/command:/usr/local/bin:/usr/bin:/bin";
    let c = Container::boot_with(Options {
        container_env: vec![("PATH".into(), path.into())],
        ..Options::default()
    });
    let environ = fs::read(format!("/proc/{}/environ", c.init_pid())).unwrap();
    let pid1_path = environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned());
    assert_eq!(pid1_path.as_deref(), Some(path));
    assert_eq!(read(&c, "/run/s6/container_environment/PATH"), path);
}
