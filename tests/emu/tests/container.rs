//! The container emulation itself: what the product and its tests rely on.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hermes_s6_emu::procfs::{PidNamespace, host_mounts_referencing};
use hermes_s6_emu::{
    CONTAINER_PATH, Container, HELPER_PATH, Options, Paths, S6Version, Signal, User, Userland,
    overlay_entries, skip_unless_root, skip_unless_s6,
};

const SLEEPER: &str = "#!/bin/sh\nexec sleep 1000\n";

fn svstat(c: &Container, service: &str, fields: &str) -> String {
    let out = c.run_as(User::Root, &["s6-svstat", "-o", fields, service], &[], None);
    out.assert_success();
    out.stdout.trim().to_owned()
}

#[test]
fn boots_like_an_s6_overlay_container() {
    if skip_unless_root("boots_like_an_s6_overlay_container") {
        return;
    }
    let started = Instant::now();
    let c = Container::boot_with(Options {
        container_env: vec![("GREETING".into(), "hello world".into())],
        ..Options::default()
    });
    eprintln!("boot took {} ms", started.elapsed().as_millis());

    // What the frontend's detection reads, as the unprivileged user.
    let out = c.run_as(
        User::Hermes,
        &[
            "sh",
            "-c",
            "cat /proc/1/comm; test -d /run/s6/basedir && echo basedir-is-dir",
        ],
        &[],
        None,
    );
    assert_eq!(out.assert_success().stdout, "s6-svscan\nbasedir-is-dir\n");
    // s6-overlay's command line: no service count.
    let cmdline = fs::read(c.host_path("/proc/1/cmdline")).unwrap();
    assert_eq!(cmdline, b"/usr/bin/s6-svscan\0-d4\0--\0/run/service\0");

    let out = c.sh(
        User::Root,
        "test -x /command/s6-svc && test -x /command/execlineb && test -x /command/s6-setuidgid \
         && stat -c '%a %U:%G' /run/service && test ! -e /dev/log && echo ok",
    );
    assert_eq!(out.assert_success().stdout, "755 root:root\nok\n");

    // with-contenv swaps the caller's environment for the container's.
    let probe = r#"echo "$GREETING|$PATH|${HOME-unset}|${USER-unset}""#;
    let out = c.run_as(
        User::Hermes,
        &["/command/with-contenv", "sh", "-c", probe],
        &[],
        None,
    );
    assert_eq!(
        out.assert_success().stdout,
        format!("hello world|{CONTAINER_PATH}|/root|unset\n")
    );
    let out = c.run_as(
        User::Root,
        &["/command/with-contenv", "sh", "-c", probe],
        &[("S6_KEEP_ENV", "1")],
        None,
    );
    assert_eq!(
        out.assert_success().stdout,
        format!("|{CONTAINER_PATH}|/root|root\n")
    );

    // The namespace's mounts stay in the namespace.
    assert_eq!(host_mounts_referencing(c.temp_dir()), Vec::<String>::new());
}

#[test]
fn service_cap_is_passed_to_s6_svscan() {
    if skip_unless_root("service_cap_is_passed_to_s6_svscan") {
        return;
    }
    if !S6Version::selected().takes_service_cap() {
        // 2.15's s6-svscan has no -c: asking for one is refused up front.
        let refused = panic::catch_unwind(|| {
            Container::boot_with(Options {
                service_cap: Some(1234),
                ..Options::default()
            })
        });
        let message = *refused.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("takes no -c"), "{message}");
        return;
    }
    let c = Container::boot_with(Options {
        service_cap: Some(1234),
        ..Options::default()
    });
    let cmdline = fs::read(c.host_path("/proc/1/cmdline")).unwrap();
    assert_eq!(
        cmdline,
        b"/usr/bin/s6-svscan\0-c\x001234\0-d4\0--\0/run/service\0"
    );
}

/// The scan dir, `.s6-svscan` and the container environment as s6-overlay
/// 3.2.3.0 lays them out.
#[test]
fn the_scan_dir_is_s6_overlays() {
    if skip_unless_root("the_scan_dir_is_s6_overlays") {
        return;
    }
    let c = Container::boot_with(Options {
        container_env: vec![("GREETING".into(), "hello".into())],
        ..Options::default()
    });
    c.wait_for(Duration::from_secs(10), "s6-overlay's services", || {
        [
            "s6-linux-init-shutdownd",
            "s6rc-fdholder",
            "s6rc-oneshot-runner",
        ]
        .iter()
        .all(|s| {
            let path = format!("/run/service/{s}");
            c.run_as(User::Root, &["s6-svstat", "-o", "up", &path], &[], None)
                .stdout
                == "true\n"
        })
    });
    let out = c.sh(
        User::Root,
        "cd /run/service && ls -A && stat -c '%n %F %a %U:%G' . .s6-svscan .s6-svscan/* \
         && for s in *; do printf '%s -> %s\n' \"$s\" \"$(readlink \"$s\" || echo dir)\"; done \
         && for s in dashboard main-hermes; do s6-svstat -o up,normallyup \"$s\"; done",
    );
    let listing = out.assert_success().stdout.clone();
    let expected_entries = overlay_entries().join("\n");
    assert!(
        listing.starts_with(&format!("{expected_entries}\n")),
        "{listing}"
    );
    for line in [
        ". directory 755 root:root",
        ".s6-svscan directory 755 root:root",
        ".s6-svscan/control fifo 600 root:root",
        ".s6-svscan/lock regular empty file 600 root:root",
        "main-hermes -> /run/s6-rc/servicedirs/main-hermes",
        "s6rc-fdholder -> /run/s6-rc/servicedirs/s6rc-fdholder",
        "s6-linux-init-shutdownd -> dir",
        "false false\nfalse false",
    ] {
        assert!(listing.contains(line), "{line:?} not in\n{listing}");
    }
    for script in hermes_s6_emu::SVSCAN_SCRIPTS {
        let line = format!(".s6-svscan/{script} regular file 755 root:root");
        assert!(listing.contains(&line), "{line:?} not in\n{listing}");
    }

    let out = c.sh(
        User::Root,
        "cd /run/s6/container_environment && stat -c '%n %a' . * && cat HOME PWD GREETING",
    );
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        out.assert_success().stdout,
        ". 755\nGREETING 644\nHOME 644\nHOSTNAME 644\nPATH 644\nPWD 644\n/root/hello"
    );
    assert_eq!(
        fs::read_to_string(c.host_path("/run/s6/container_environment/HOSTNAME")).unwrap(),
        hostname.trim()
    );

    // The s6-rc services s6-overlay has are brought up as s6-rc would.
    c.add_service("main-hermes", SLEEPER, None);
    c.wait_for(Duration::from_secs(5), "main-hermes up", || {
        svstat(&c, "/run/service/main-hermes", "up,normallyup") == "true true"
    });
}

/// `S6_KEEP_ENV=1`: no container environment directory, and everything
/// inherits the container's whole environment.
#[test]
fn keep_env_hands_the_environment_down() {
    if skip_unless_root("keep_env_hands_the_environment_down") {
        return;
    }
    let c = Container::boot_with(Options {
        container_env: vec![("GREETING".into(), "hello world".into())],
        keep_env: true,
        ..Options::default()
    });
    assert!(!c.host_path("/run/s6/container_environment").exists());
    assert!(c.host_path("/run/s6/basedir").is_dir());
    let probe = "#!/bin/sh\n\
        echo \"$S6_KEEP_ENV|$GREETING|$HOME|$PWD|$PATH\" > /run/env-probe\n\
        exec sleep 1000\n";
    c.add_service("probe", probe, None);
    // The shell creates the file before echo writes the line: wait for the line.
    c.wait_for(Duration::from_secs(5), "the probe's output", || {
        fs::read_to_string(c.host_path("/run/env-probe")).is_ok_and(|l| l.ends_with('\n'))
    });
    assert_eq!(
        fs::read_to_string(c.host_path("/run/env-probe")).unwrap(),
        format!("1|hello world|/root|/run/service/probe|{CONTAINER_PATH}\n")
    );
    // with-contenv leaves the caller's environment as it is.
    let out = c.run_as(
        User::Root,
        &[
            "/command/with-contenv",
            "sh",
            "-c",
            "echo \"${GREETING-unset}|$HOME\"",
        ],
        &[("S6_KEEP_ENV", "1")],
        None,
    );
    assert_eq!(out.assert_success().stdout, "unset|/root\n");
}

/// The binaries built on the host run on every userland, and the s6 is
/// the one asked for.
#[test]
fn the_selected_s6_runs_with_its_own_libraries() {
    if skip_unless_root("the_selected_s6_runs_with_its_own_libraries") {
        return;
    }
    let c = Container::boot();
    let userland = Userland::get();
    let out = c.sh(
        User::Hermes,
        "hermes-s6 --version >/dev/null && /usr/libexec/hermes-s6-helper --version >/dev/null; \
         echo $?; \
         ldd /usr/bin/s6-svscan | awk '/libskarnet/ { print $1 }'",
    );
    let skarnet = match userland.version {
        S6Version::V2_11 => "libskarnet.so.2.13",
        S6Version::V2_13 => "libskarnet.so.2.14",
        S6Version::V2_15 => "libskarnet.so.2.15",
    };
    assert_eq!(out.assert_success().stdout, format!("0\n{skarnet}\n"));
    // A supervised service writes the status file of that version.
    c.add_service("x", SLEEPER, None);
    c.wait_for(Duration::from_secs(5), "service x up", || {
        svstat(&c, "/run/service/x", "up") == "true"
    });
    let status = fs::read(c.host_path("/run/service/x/supervise/status")).unwrap();
    assert_eq!(status.len(), userland.version.status_len());
    assert!(!skip_unless_s6(&[userland.version], "never skipped", "-"));
}

#[test]
fn root_service_runs_but_hermes_cannot_control_it() {
    if skip_unless_root("root_service_runs_but_hermes_cannot_control_it") {
        return;
    }
    let c = Container::boot();
    c.add_service("x", SLEEPER, None);
    c.wait_for(Duration::from_secs(5), "service x up", || {
        svstat(&c, "/run/service/x", "up") == "true"
    });

    // The problem the product solves: s6 keeps control and status root-only.
    let out = c.run_as(User::Hermes, &["s6-svc", "-d", "/run/service/x"], &[], None);
    out.assert_code(111);
    // s6 2.15 words it as a warning (one per service dir), still exit 111.
    assert!(
        (out.stderr.contains("s6-svc: fatal:") || out.stderr.contains("s6-svc: warning:"))
            && out.stderr.contains("Permission denied"),
        "{out:?}"
    );
    let out = c.run_as(User::Hermes, &["s6-svstat", "/run/service/x"], &[], None);
    out.assert_code(111);
    assert!(
        out.stderr.contains("s6-svstat: fatal:") && out.stderr.contains("Permission denied"),
        "{out:?}"
    );
    let out = c.run_as(
        User::Hermes,
        &["s6-svscanctl", "-a", "/run/service"],
        &[],
        None,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    // Still up: nothing hermes did reached s6.
    assert_eq!(svstat(&c, "/run/service/x", "up,wantedup"), "true true");

    // Root can; hermes cannot bring it back either.
    c.run_as(User::Root, &["s6-svc", "-d", "/run/service/x"], &[], None)
        .assert_success();
    c.wait_for(Duration::from_secs(5), "service x down", || {
        svstat(&c, "/run/service/x", "up") == "false"
    });
    let out = c.run_as(User::Hermes, &["s6-svc", "-u", "/run/service/x"], &[], None);
    out.assert_code(111);
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert_eq!(svstat(&c, "/run/service/x", "up,wantedup"), "false false");
}

#[test]
fn users_and_the_setuid_helper() {
    if skip_unless_root("users_and_the_setuid_helper") {
        return;
    }
    let c = Container::boot();
    let id = |user| {
        c.run_as(user, &["id"], &[], None)
            .assert_success()
            .stdout
            .clone()
    };
    assert_eq!(
        id(User::Hermes),
        "uid=10000(hermes) gid=10000(hermes) groups=10000(hermes)\n"
    );
    assert_eq!(
        id(User::Intruder),
        "uid=10001(intruder) gid=10001(intruder) groups=10001(intruder)\n"
    );
    assert!(id(User::Root).starts_with("uid=0(root) gid=0(root)"));

    let out = c.run_as(
        User::Root,
        &["stat", "-c", "%a %U:%G %u:%g", HELPER_PATH],
        &[],
        None,
    );
    assert_eq!(out.assert_success().stdout, "4750 root:hermes 0:10000\n");
    // Group hermes may execute it; anybody else may not.
    let out = c.run_as(User::Intruder, &[HELPER_PATH], &[], None);
    out.assert_code(126);
    assert!(out.stderr.contains("Permission denied"), "{out:?}");

    let env = |user| {
        c.sh(user, "echo \"$HOME $USER $LOGNAME $(pwd)\"")
            .assert_success()
            .stdout
            .clone()
    };
    assert_eq!(env(User::Hermes), "/opt/data hermes hermes /opt/data\n");
    assert_eq!(env(User::Intruder), "/tmp intruder intruder /opt/data\n");
    assert_eq!(env(User::Root), "/root root root /opt/data\n");

    let volume = fs::metadata(c.volume()).unwrap();
    assert_eq!(
        (volume.uid(), volume.gid(), volume.mode() & 0o7777),
        (10000, 10000, 0o755)
    );
    let out = c.sh(
        User::Hermes,
        "touch /opt/data/mine && stat -c %U /opt/data/mine",
    );
    assert_eq!(out.assert_success().stdout, "hermes\n");
    let out = c.sh(User::Intruder, "touch /opt/data/theirs");
    assert_ne!(out.code, Some(0), "{out:?}");
}

#[test]
fn custom_hermes_ids_are_followed() {
    if skip_unless_root("custom_hermes_ids_are_followed") {
        return;
    }
    let c = Container::boot_with(Options {
        hermes_uid: 2000,
        hermes_gid: 3000,
        ..Options::default()
    });
    let out = c.run_as(User::Hermes, &["id"], &[], None);
    assert_eq!(
        out.assert_success().stdout,
        "uid=2000(hermes) gid=3000(hermes) groups=3000(hermes)\n"
    );
    let out = c.run_as(
        User::Root,
        &["stat", "-c", "%a %U:%G %g", HELPER_PATH],
        &[],
        None,
    );
    assert_eq!(out.assert_success().stdout, "4750 root:hermes 3000\n");
    let volume = fs::metadata(c.volume()).unwrap();
    assert_eq!((volume.uid(), volume.gid()), (2000, 3000));
    let out = c.run_as(User::Root, &["getent", "passwd", "hermes"], &[], None);
    assert_eq!(
        out.assert_success().stdout,
        "hermes:x:2000:3000:Hermes:/opt/data:/bin/sh\n"
    );
}

#[test]
fn setuid_takes_effect_unless_no_new_privs() {
    if skip_unless_root("setuid_takes_effect_unless_no_new_privs") {
        return;
    }
    // `id` installed in the helper's place shows what a setuid program gets.
    let binaries = Paths {
        helper: PathBuf::from("/usr/bin/id"),
        ..Paths::locate()
    };
    let c = Container::boot_with(Options {
        binaries: Some(binaries),
        ..Options::default()
    });
    let out = c.run_as(User::Hermes, &[HELPER_PATH], &[], None);
    assert_eq!(
        out.assert_success().stdout,
        "uid=10000(hermes) gid=10000(hermes) euid=0(root) groups=10000(hermes)\n"
    );
    let out = c.exec(User::Hermes, &[HELPER_PATH]).no_new_privs().output();
    assert_eq!(
        out.assert_success().stdout,
        "uid=10000(hermes) gid=10000(hermes) groups=10000(hermes)\n"
    );
    // A member of group hermes that is not the hermes user may run it too.
    let out = c
        .exec(User::Intruder, &[HELPER_PATH])
        .groups(&[10000])
        .output();
    assert_eq!(
        out.assert_success().stdout,
        "uid=10001(intruder) gid=10001(intruder) euid=0(root) groups=10001(intruder),10000(hermes)\n"
    );
}

#[test]
fn commands_get_a_clean_environment_and_their_own_status() {
    if skip_unless_root("commands_get_a_clean_environment_and_their_own_status") {
        return;
    }
    let c = Container::boot();
    let out = c.run_as(User::Hermes, &["env"], &[("FOO", "bar baz")], None);
    let mut vars: Vec<&str> = out.assert_success().stdout.lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "FOO=bar baz",
            "HOME=/opt/data",
            "LOGNAME=hermes",
            &format!("PATH={CONTAINER_PATH}"),
            "USER=hermes"
        ]
    );

    let out = c.run_as(User::Hermes, &["cat"], &[], Some(b"bytes\0in\n"));
    assert_eq!(out.assert_success().stdout_bytes(), b"bytes\0in\n");
    let out = c.run_as(User::Hermes, &["cat"], &[], None);
    assert_eq!(out.assert_success().stdout, "");

    let out = c.sh(User::Hermes, "echo oops >&2; exit 7");
    assert_eq!(
        (out.code, out.signal, out.stderr.as_str()),
        (Some(7), None, "oops\n")
    );
    let out = c.sh(User::Hermes, "kill -TERM $$");
    assert_eq!((out.code, out.signal), (None, Some(15)));

    let out = c.exec(User::Root, &["id", "-G"]).groups(&[10000]).output();
    assert_eq!(out.assert_success().stdout, "0 10000\n");
    let out = c.exec(User::Intruder, &["pwd"]).cwd("/tmp").output();
    assert_eq!(out.assert_success().stdout, "/tmp\n");
    let out = c
        .exec(User::Intruder, &["cat", "/proc/self/status"])
        .groups(&[])
        .output();
    let groups = out
        .assert_success()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"));
    assert_eq!(groups.map(str::trim), Some(""), "{out:?}");
}

#[test]
fn spawned_commands_can_be_signalled() {
    if skip_unless_root("spawned_commands_can_be_signalled") {
        return;
    }
    let c = Container::boot();
    let spawned = c.exec(User::Hermes, &["sleep", "1000"]).spawn();
    let pid = spawned.inner_pid();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("Uid:\t10000\t10000\t10000\t10000"),
        "{status}"
    );
    spawned.signal(Signal::SIGTERM);
    let out = spawned.wait_output();
    assert_eq!(out.signal, Some(15), "{out:?}");

    let mut piped = c.exec(User::Hermes, &["cat"]).stdin_piped().spawn();
    {
        use std::io::Write;
        let mut stdin = piped.child.stdin.take().unwrap();
        stdin.write_all(b"through the pipe").unwrap();
    }
    assert_eq!(
        piped.wait_output().assert_success().stdout,
        "through the pipe"
    );
}

/// A command that leaves an orphan holding its output open (here a stopped
/// one, reparented to the container's init) is killed at its timeout, orphan
/// included, instead of keeping the caller waiting for ever.
#[test]
fn the_timeout_kills_orphans_that_hold_the_output_open() {
    if skip_unless_root("the_timeout_kills_orphans_that_hold_the_output_open") {
        return;
    }
    let c = Container::boot();
    let script = "sleep 1000 & echo $! > /tmp/orphan; kill -STOP $!; exit 0";
    let spawned = c
        .exec(User::Root, &["sh", "-c", script])
        .timeout(Duration::from_secs(2))
        .spawn();
    let waited = panic::catch_unwind(AssertUnwindSafe(|| spawned.wait_output()));
    let message = *waited
        .expect_err("the timeout must fire")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("(timeout)"), "{message}");
    // Killed, then reaped by s6-svscan: gone from the process table.
    let orphan = fs::read_to_string(c.host_path("/tmp/orphan")).unwrap();
    let proc_entry = format!("/proc/{}", orphan.trim());
    c.wait_for(Duration::from_secs(10), "the orphan to be gone", || {
        !c.run_as(User::Root, &["test", "-e", &proc_entry], &[], None)
            .success()
    });
}

#[test]
fn restart_keeps_the_volume_and_nothing_else() {
    if skip_unless_root("restart_keeps_the_volume_and_nothing_else") {
        return;
    }
    let mut c = Container::boot();
    c.sh(User::Hermes, "echo kept > /opt/data/file")
        .assert_success();
    c.sh(User::Root, "touch /run/service/.marker /etc/edited")
        .assert_success();
    c.add_service("x", SLEEPER, None);
    let (old_init, old_ns) = (c.init_pid(), c.pid_namespace());
    c.wait_for(
        Duration::from_secs(5),
        "s6-svscan, s6-supervise and sleep",
        || old_ns.processes().len() >= 3,
    );
    let overlay = overlay_entries().join("\n");

    c.restart();

    assert_eq!(old_ns.processes(), Vec::<u32>::new());
    assert_ne!(c.init_pid(), old_init);
    assert_ne!(c.pid_namespace().id(), old_ns.id());
    assert_eq!(
        fs::read_to_string(c.volume().join("file")).unwrap(),
        "kept\n"
    );
    let out = c.sh(
        User::Hermes,
        "cat /opt/data/file; cat /proc/1/comm; ls -A /run/service; test -e /etc/edited || echo fresh-etc",
    );
    assert_eq!(
        out.assert_success().stdout,
        format!("kept\ns6-svscan\n{overlay}\nfresh-etc\n")
    );
}

/// `docker run --user <hermes uid>`: s6-svscan is PID 1 as hermes, with
/// hermes's groups; `/run` and all in it are hermes's; services run as
/// hermes and hermes controls them; root can still exec in; all of it
/// again after a restart.
#[test]
fn a_non_root_container_runs_s6_as_hermes_and_gives_it_run() {
    if skip_unless_root("a_non_root_container_runs_s6_as_hermes_and_gives_it_run") {
        return;
    }
    let mut c = Container::boot_with(Options {
        non_root: true,
        ..Options::default()
    });
    assert_eq!(c.init_user(), User::Hermes);
    let (uid, gid) = (c.uid(User::Hermes), c.gid(User::Hermes));
    for boot in 1..=2 {
        let status = fs::read_to_string(format!("/proc/{}/status", c.init_pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            field("Uid:"),
            format!("{uid} {uid} {uid} {uid}"),
            "boot {boot}"
        );
        assert_eq!(
            field("Gid:"),
            format!("{gid} {gid} {gid} {gid}"),
            "boot {boot}"
        );
        assert_eq!(field("Groups:"), gid.to_string(), "boot {boot}");
        assert_eq!(field("CapEff:"), "0000000000000000", "boot {boot}");
        let cmdline = fs::read(c.host_path("/proc/1/cmdline")).unwrap();
        assert_eq!(cmdline, b"/usr/bin/s6-svscan\0-d4\0--\0/run/service\0");
        // Everything under /run is hermes's, links, FIFOs and the
        // container environment included.
        let out = c.sh(
            User::Root,
            &format!("find /run ! -user {uid} -o ! -group {gid}"),
        );
        assert_eq!(out.assert_success().stdout, "", "boot {boot}");
        for path in ["/run", "/run/service", "/run/s6/container_environment/PATH"] {
            assert_eq!(
                fs::metadata(c.host_path(path)).unwrap().uid(),
                uid,
                "{path}"
            );
        }

        // A service runs as hermes, and hermes, its supervisor's owner,
        // controls it; so do the emulation's own helpers.
        c.add_service("x", SLEEPER, None);
        c.wait_for(Duration::from_secs(5), "service x up", || {
            svstat(&c, "/run/service/x", "up") == "true"
        });
        let pid = svstat(&c, "/run/service/x", "pid");
        let out = c.sh(User::Root, &format!("stat -c %u /proc/{pid}"));
        assert_eq!(out.assert_success().stdout, format!("{uid}\n"));
        c.run_as(User::Hermes, &["s6-svc", "-d", "/run/service/x"], &[], None)
            .assert_success();
        c.wait_for(Duration::from_secs(5), "service x down", || {
            svstat(&c, "/run/service/x", "up") == "false"
        });
        let out = c.sh(User::Root, "id -u; stat -c %U /run/service/x/supervise");
        assert_eq!(out.assert_success().stdout, "0\nhermes\n");
        if boot == 1 {
            c.restart();
        }
    }
}

#[test]
fn teardown_leaves_nothing_behind() {
    if skip_unless_root("teardown_leaves_nothing_behind") {
        return;
    }
    let c = Container::boot_with(Options {
        syslog: true,
        ..Options::default()
    });
    c.add_service("x", SLEEPER, None);
    let running = c.exec(User::Hermes, &["sleep", "1000"]).spawn();
    let (ns, dir) = (c.pid_namespace(), c.temp_dir().to_owned());
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("hermes-emu-")
    );
    // Both `sleep 1000`s (s6-overlay's stand-ins sleep for ever).
    c.wait_for(
        Duration::from_secs(5),
        "the service's and the command's sleeps",
        || {
            ns.processes()
                .iter()
                .filter(|p| {
                    fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\0")
                })
                .count()
                == 2
        },
    );

    drop(c);

    assert_eq!(ns.processes(), Vec::<u32>::new());
    assert_eq!(host_mounts_referencing(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "{} still exists", dir.display());
    // The command's host-side nsenter saw it killed with the namespace.
    assert_eq!(running.wait_output().signal, Some(9));
}

#[test]
fn teardown_also_runs_when_the_test_panics() {
    if skip_unless_root("teardown_also_runs_when_the_test_panics") {
        return;
    }
    let seen: Mutex<Option<(PidNamespace, PathBuf)>> = Mutex::new(None);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let c = Container::boot();
        c.add_service("x", SLEEPER, None);
        *seen.lock().unwrap() = Some((c.pid_namespace(), c.temp_dir().to_owned()));
        panic!("deliberate panic: the container must still be torn down");
    }));
    assert!(result.is_err());
    let (ns, dir) = seen.lock().unwrap().take().expect("the container booted");
    assert_eq!(ns.processes(), Vec::<u32>::new());
    assert_eq!(host_mounts_referencing(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn two_containers_do_not_see_each_other() {
    if skip_unless_root("two_containers_do_not_see_each_other") {
        return;
    }
    let a = Container::boot();
    let b = Container::boot();
    assert_ne!(a.pid_namespace().id(), b.pid_namespace().id());
    assert_ne!(a.volume(), b.volume());
    a.sh(User::Root, "mkdir /run/service/.only-in-a")
        .assert_success();
    a.sh(User::Hermes, "touch /opt/data/only-in-a")
        .assert_success();
    a.add_service("in-a", SLEEPER, None);

    // The processes b's /proc shows, listed by the shell itself (a glob and
    // builtins: no child of the shell is running meanwhile, so none is
    // counted or not depending on timing), with each one's first argument.
    let out = b.sh(
        User::Root,
        "ls -A /run/service /opt/data; \
         for p in /proc/[0-9]*; do \
         pid=${p#/proc/}; \
         if [ \"$pid\" = $$ ]; then echo \"this shell\"; \
         else read -r comm <\"$p/comm\"; \
         arg=$(tr '\\0' '\\n' <\"$p/cmdline\" | sed -n 2p); echo \"$pid: $comm $arg\"; fi; \
         done",
    );
    // b's own s6-svscan, its s6-overlay services and the shell of this
    // command, nothing of a's.
    let stdout = out.assert_success().stdout.clone();
    let overlay = overlay_entries().join("\n");
    let listing = format!("/opt/data:\n\n/run/service:\n{overlay}\n");
    let processes = stdout
        .strip_prefix(&listing)
        .unwrap_or_else(|| panic!("{stdout}"));
    let lines: Vec<&str> = processes.lines().collect();
    assert_eq!(lines[0], "1: s6-svscan -d4", "{stdout}");
    assert!(lines.contains(&"this shell"), "{stdout}");
    for line in &lines[1..] {
        assert!(!line.contains("in-a"), "{stdout}");
        if let Some((_, supervised)) = line.split_once(": s6-supervise ") {
            assert!(
                overlay_entries().iter().any(|e| e == supervised),
                "{stdout}"
            );
        }
    }
    assert!(a.host_path("/opt/data/only-in-a").exists());
}

#[test]
fn syslog_collects_what_is_sent_to_dev_log() {
    if skip_unless_root("syslog_collects_what_is_sent_to_dev_log") {
        return;
    }
    let c = Container::boot_with(Options {
        syslog: true,
        ..Options::default()
    });
    // More messages than a Unix datagram queue holds by default.
    let script = "for i in $(seq 1 40); do \
                  logger --socket-errors=on -u /dev/log -p authpriv.notice -t emu-test msg-$i || exit 1; \
                  done";
    c.sh(User::Hermes, script).assert_success();
    let records = c.syslog_records();
    assert_eq!(records.len(), 40, "{records:#?}");
    for (i, record) in records.iter().enumerate() {
        // authpriv (10) * 8 + notice (5) = 85
        assert!(record.starts_with("<85>"), "{record}");
        assert!(record.ends_with(&format!("msg-{}", i + 1)), "{record}");
    }
    let out = c.sh(User::Intruder, "test -S /dev/log && echo socket");
    assert_eq!(out.assert_success().stdout, "socket\n");
}

#[test]
fn a_failed_boot_is_explained() {
    if skip_unless_root("a_failed_boot_is_explained") {
        return;
    }
    let binaries = Paths {
        helper: PathBuf::from("/nonexistent/hermes-s6-helper"),
        ..Paths::locate()
    };
    let result = panic::catch_unwind(|| {
        Container::boot_with(Options {
            binaries: Some(binaries),
            ..Options::default()
        })
    });
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("the container's boot failed"), "{message}");
    assert!(
        message.contains("/nonexistent/hermes-s6-helper"),
        "{message}"
    );
}

#[test]
fn missing_binaries_are_named_with_the_fix() {
    let empty = std::env::temp_dir().join(format!("hermes-emu-test-empty-{}", std::process::id()));
    fs::create_dir_all(&empty).unwrap();
    let result = panic::catch_unwind(|| Paths::locate_in(&empty));
    fs::remove_dir_all(&empty).unwrap();
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.starts_with(
            "hermes-s6-emu: hermes-s6-helper not built; run 'cargo build --workspace --bins' first"
        ),
        "{message}"
    );
}

#[test]
fn binaries_are_found_next_to_the_test_executable() {
    let standin = PathBuf::from(env!("CARGO_BIN_EXE_hermes-standin"));
    assert_eq!(Paths::bin_dir(), standin.parent().unwrap());
}
