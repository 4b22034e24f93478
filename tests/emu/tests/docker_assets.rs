//! The image assets under `docker/`, run in the container emulation: the
//! cont-init scripts on every boot (`Options::cont_init`), and the stage 2
//! hook, the main wrapper, the CMD dispatcher and the `main-hermes` and
//! `dashboard` service scripts, driven directly (s6-rc is not emulated; the
//! services are installed as plain s6 services).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hermes_s6_emu::{
    Container, DOCKER_DIR, HELPER_PATH, Options, Output, SCAN_DIR, User, skip_unless_root,
};

mod assets;
use assets::*;

#[test]
fn cont_init_scripts_run_on_a_fresh_volume_and_again_after_restart() {
    if skip_unless_root("cont_init_scripts_run_on_a_fresh_volume_and_again_after_restart") {
        return;
    }
    let mut c = boot();
    let names = |c: &Container, boot: u32| -> Vec<String> {
        c.boot_log()
            .iter()
            .filter(|r| r.boot == boot)
            .map(|r| r.script.clone())
            .collect()
    };
    assert_eq!(names(&c, 1), strings(&[PATH_CHECK, SETUP, RECONCILE]));
    for run in c.boot_log() {
        assert!(run.success(), "{run:?}");
    }
    let setup = &c.boot_log()[1];
    assert!(
        setup.stdout.contains("hermes is uid 10000, gid 10000"),
        "{setup:?}"
    );
    assert!(
        setup.stderr.is_empty(),
        "a fresh volume gives no warning: {setup:?}"
    );
    for dir in ["/opt/data/logs", "/opt/data/logs/gateways"] {
        assert!(is_real_dir(&c, dir), "{dir}");
        assert_eq!(owner_mode(&c, dir), (10000, 10000, 0o750), "{dir}");
    }
    assert_eq!(owner_mode(&c, "/opt/data"), (10000, 10000, 0o755));
    // The image's files are installed as the Dockerfile lays them out.
    for (path, mode) in [
        (SETUP, 0o755),
        (RECONCILE, 0o755),
        (HOOK, 0o755),
        (ENTRYPOINT, 0o755),
        (WRAPPER, 0o755),
        ("/etc/s6-overlay/s6-rc.d/main-hermes/run", 0o755),
        ("/etc/s6-overlay/s6-rc.d/main-hermes/type", 0o644),
        ("/etc/s6-overlay/s6-rc.d/user/contents.d/main-hermes", 0o644),
    ] {
        assert_eq!(owner_mode(&c, path), (0, 0, mode), "{path}");
    }
    let logs_inode = fs::metadata(c.host_path("/opt/data/logs")).unwrap().ino();

    c.restart();
    assert_eq!(c.boots(), 2);
    assert_eq!(names(&c, 2), strings(&[PATH_CHECK, SETUP, RECONCILE]));
    for run in c.boot_log() {
        assert!(run.success(), "{run:?}");
    }
    let again = c
        .boot_log()
        .iter()
        .find(|r| r.boot == 2 && r.script == SETUP)
        .unwrap();
    assert!(
        !again.stdout.contains("giving") && again.stderr.is_empty(),
        "a second boot changes nothing: {again:?}"
    );
    assert_eq!(
        fs::metadata(c.host_path("/opt/data/logs")).unwrap().ino(),
        logs_inode
    );
    assert_eq!(
        owner_mode(&c, "/opt/data/logs/gateways"),
        (10000, 10000, 0o750)
    );
}

#[test]
fn hermes_uid_and_gid_are_remapped_at_boot() {
    if skip_unless_root("hermes_uid_and_gid_are_remapped_at_boot") {
        return;
    }
    // The HERMES_ names win over their PUID / PGID aliases.
    let mut c = with_env(&[
        ("HERMES_UID", "1000"),
        ("HERMES_GID", "1000"),
        ("PUID", "2000"),
        ("PGID", "2000"),
    ]);
    assert_eq!(
        hermes_id(&c),
        "uid=1000(hermes) gid=1000(hermes) groups=1000(hermes)"
    );
    assert_eq!(
        root(&c, &["getent", "passwd", "hermes"]).stdout,
        "hermes:x:1000:1000:Hermes:/opt/data:/bin/sh\n",
        "the account keeps its home"
    );
    assert_eq!(owner_mode(&c, "/opt/data"), (1000, 1000, 0o755));
    assert_eq!(owner_mode(&c, "/opt/data/logs"), (1000, 1000, 0o750));
    assert_eq!(
        owner_mode(&c, "/opt/data/logs/gateways"),
        (1000, 1000, 0o750)
    );
    // The helper follows the group, setuid bit intact.
    assert_eq!(owner_mode(&c, HELPER_PATH), (0, 1000, 0o4750));

    // A gateway started through the helper by the remapped hermes writes
    // its files as 1000.
    let out = c.sh(
        User::Root,
        &format!(
            "{SETUID} hermes {HELPER_PATH} register default; \
             rc=$?; [ $rc -eq 0 ] || [ $rc -eq 73 ] && {SETUID} hermes {HELPER_PATH} start default"
        ),
    );
    out.assert_success();
    c.wait_for(
        Duration::from_secs(10),
        "the default gateway running",
        || {
            fs::read_to_string(c.volume().join("gateway_state.json"))
                .is_ok_and(|s| s.contains("\"running\""))
        },
    );
    let state = fs::metadata(c.volume().join("gateway_state.json")).unwrap();
    assert_eq!((state.uid(), state.gid()), (1000, 1000));
    c.wait_for(
        Duration::from_secs(10),
        "the gateway's log directory",
        || c.volume().join("logs/gateways/default").is_dir(),
    );
    let logs = fs::metadata(c.volume().join("logs/gateways/default")).unwrap();
    assert_eq!((logs.uid(), logs.gid()), (1000, 1000));
    let runs = fs::read_to_string(c.volume().join("standin-runs.jsonl")).unwrap();
    let run: serde_json::Value = serde_json::from_str(runs.lines().next().unwrap()).unwrap();
    assert_eq!(
        (run["uid"].as_u64(), run["gid"].as_u64()),
        (Some(1000), Some(1000))
    );

    // `usermod -u` would re-own the whole home (the volume) recursively;
    // the boot never does.
    let old = c.volume().join("from-the-old-uid");
    fs::write(&old, "x").unwrap();
    std::os::unix::fs::chown(&old, Some(10000), Some(10000)).unwrap();
    c.restart();
    assert!(
        c.boot_log().iter().all(|r| r.success()),
        "{:?}",
        c.boot_log()
    );
    assert_eq!(
        hermes_id(&c),
        "uid=1000(hermes) gid=1000(hermes) groups=1000(hermes)"
    );
    let old = fs::metadata(&old).unwrap();
    assert_eq!((old.uid(), old.gid()), (10000, 10000));
    // The volume was set up by the first boot. (The emulation's /usr/libexec
    // is new on every boot, so the helper is re-grouped again.)
    let second = c
        .boot_log()
        .iter()
        .find(|r| r.boot == 2 && r.script == SETUP)
        .unwrap();
    assert!(!second.stdout.contains("giving /opt/data"), "{second:?}");
}

#[test]
fn remap_variables_are_validated_and_aliased() {
    if skip_unless_root("remap_variables_are_validated_and_aliased") {
        return;
    }
    let c = boot();
    // usermod refuses to renumber a user that runs processes: the boot's
    // reconciler may have left gateway loggers running as hermes (in a real
    // boot this script runs before them).
    unregister_all(&c);
    let setup = |env: &[(&str, &str)]| {
        for key in ["HERMES_UID", "HERMES_GID", "PUID", "PGID"] {
            set_env(&c, key, None);
        }
        for (key, value) in env {
            set_env(&c, key, Some(value));
        }
        root(&c, &[SETUP])
    };
    for (key, value) in [
        ("HERMES_UID", "abc"),
        ("HERMES_UID", "0"),
        ("HERMES_UID", "65535"),
        ("HERMES_UID", "007"),
        ("HERMES_UID", "-5"),
        ("HERMES_UID", "1000000"),
        ("HERMES_GID", "1 2"),
        ("PUID", "x1"),
        ("PGID", "99999"),
    ] {
        let out = setup(&[(key, value)]);
        out.assert_code(1);
        assert!(
            out.stderr
                .contains(&format!("{key}='{value}' is not a valid id"))
                && out.stderr.contains("1 to 65534"),
            "{out:?}"
        );
    }
    assert_eq!(
        hermes_id(&c),
        "uid=10000(hermes) gid=10000(hermes) groups=10000(hermes)",
        "a refused value changes nothing"
    );

    // The aliases alone.
    setup(&[("PUID", "1234"), ("PGID", "4321")]).assert_success();
    assert_eq!(
        hermes_id(&c),
        "uid=1234(hermes) gid=4321(hermes) groups=4321(hermes)"
    );
    // An empty HERMES_UID is unset: PUID applies.
    setup(&[("HERMES_UID", ""), ("PUID", "1300")]).assert_success();
    assert!(hermes_id(&c).starts_with("uid=1300(hermes)"));
    // Both given: HERMES_UID wins.
    setup(&[("HERMES_UID", "1235"), ("PUID", "999")]).assert_success();
    assert!(hermes_id(&c).starts_with("uid=1235(hermes)"));
    // A uid another account has is refused, saying so.
    let out = setup(&[("HERMES_UID", "10001")]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("usermod -u 10001 hermes failed"),
        "{out:?}"
    );
    // A gid that exists already is fine (groupmod -o).
    setup(&[("HERMES_GID", "10001")]).assert_success();
    assert!(
        hermes_id(&c).contains("gid=10001(hermes)"),
        "{}",
        hermes_id(&c)
    );
}

#[test]
fn a_container_started_with_an_arbitrary_user_is_refused() {
    if skip_unless_root("a_container_started_with_an_arbitrary_user_is_refused") {
        return;
    }
    let c = boot();
    let out = c.run_as(User::Intruder, &[SETUP], &[], None);
    out.assert_code(1);
    for needle in [
        "started as uid 10001",
        "--user 10000",
        "HERMES_UID",
        "HERMES_GID",
        "PUID",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {out:?}");
    }
    let out = c.run_as(
        User::Intruder,
        &[WRAPPER, "sh", "-c", "echo ran"],
        &[],
        None,
    );
    out.assert_code(1);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("HERMES_UID"),
        "{out:?}"
    );

    // Started as hermes itself: nothing to remap, the logs are checked.
    let out = c.run_as(User::Hermes, &[SETUP], &[], None);
    out.assert_success();
    assert!(out.stderr.contains("started as hermes"), "{out:?}");
    // ... but a remap cannot be honoured without root.
    set_env(&c, "HERMES_UID", Some("1000"));
    let out = c.run_as(User::Hermes, &[SETUP], &[], None);
    out.assert_code(1);
    assert!(
        out.stderr.contains("needs the container to start as root"),
        "{out:?}"
    );
}

// --- the volume: ownership without following links -----------------------------

#[test]
fn planted_symlinks_in_logs_are_never_followed_by_root() {
    if skip_unless_root("planted_symlinks_in_logs_are_never_followed_by_root") {
        return;
    }
    let mut c = boot();
    // Directories root would give away if it followed a link: owned by
    // another user, and root's own home.
    c.sh(User::Intruder, "mkdir -m 0755 /tmp/victim /tmp/victim2")
        .assert_success();
    let victims = || {
        (
            owner_mode(&c, "/tmp/victim"),
            owner_mode(&c, "/tmp/victim2"),
            owner_mode(&c, "/etc"),
            owner_mode(&c, "/root"),
        )
    };
    let before = victims();
    let untouched = |c: &Container| {
        for dir in ["/tmp/victim", "/tmp/victim2", "/etc", "/root"] {
            assert!(
                !exists(c, &format!("{dir}/gateways")),
                "{dir}/gateways created"
            );
        }
        assert_eq!(fs::read_dir(c.host_path("/root")).unwrap().count(), 0);
    };

    // logs -> a directory of someone else.
    unregister_all(&c);
    c.sh(User::Hermes, "rm -rf logs && ln -s /tmp/victim logs")
        .assert_success();
    let out = root(&c, &[SETUP]);
    out.assert_success();
    assert!(
        out.stderr.contains("replacing the symbolic link"),
        "{out:?}"
    );
    assert!(is_real_dir(&c, "/opt/data/logs/gateways"));
    assert_eq!(owner_mode(&c, "/opt/data/logs").0, 10000);
    assert_eq!(victims(), before);
    untouched(&c);

    // logs/gateways -> a directory of someone else.
    c.sh(
        User::Hermes,
        "rm -rf logs/gateways && ln -s /tmp/victim2 logs/gateways",
    )
    .assert_success();
    root(&c, &[SETUP]).assert_success();
    assert!(is_real_dir(&c, "/opt/data/logs/gateways"));
    assert_eq!(owner_mode(&c, "/opt/data/logs/gateways").0, 10000);
    assert_eq!(victims(), before);
    untouched(&c);

    // A plain file where a directory should be is moved aside.
    c.sh(User::Hermes, "rm -rf logs && echo keep >logs")
        .assert_success();
    let out = root(&c, &[SETUP]);
    out.assert_success();
    assert!(
        out.stderr.contains("moving /opt/data/logs aside"),
        "{out:?}"
    );
    assert!(is_real_dir(&c, "/opt/data/logs/gateways"));
    let out = c.sh(User::Hermes, "cat logs.not-a-directory.*");
    assert_eq!(out.assert_success().stdout, "keep\n");

    // And through a whole boot: logs -> /etc, then logs -> /root.
    for target in ["/etc", "/root"] {
        unregister_all(&c);
        c.sh(User::Hermes, &format!("rm -rf logs && ln -s {target} logs"))
            .assert_success();
        c.restart();
        assert!(is_real_dir(&c, "/opt/data/logs/gateways"), "{target}");
        assert_eq!(owner_mode(&c, "/opt/data/logs").0, 10000);
        assert_eq!(owner_mode(&c, "/etc"), (0, 0, 0o755));
        assert_eq!(owner_mode(&c, "/root"), (0, 0, 0o700));
        untouched(&c);
        let setup = c.boot_log().last().unwrap();
        assert!(setup.success(), "{setup:?}");
    }
}

#[test]
fn foreign_owned_volume_root_and_logs_are_given_to_hermes_top_level_only() {
    if skip_unless_root("foreign_owned_volume_root_and_logs_are_given_to_hermes_top_level_only") {
        return;
    }
    let c = boot();
    // As after `docker exec` as root, or a host directory mounted as it is.
    let out = c.sh(
        User::Root,
        "chown root:root /opt/data /opt/data/logs /opt/data/logs/gateways \
         && touch /opt/data/roots-file /opt/data/logs/roots-log \
         && mkdir /opt/data/logs/gateways/old && touch /opt/data/logs/gateways/old/current",
    );
    out.assert_success();
    let out = root(&c, &[SETUP]);
    out.assert_success();
    for dir in ["/opt/data", "/opt/data/logs", "/opt/data/logs/gateways"] {
        assert_eq!(owner_mode(&c, dir).0, 10000, "{dir}");
        assert!(
            out.stdout.contains(&format!("giving {dir}")),
            "{dir}: {out:?}"
        );
    }
    // Never recursively.
    for file in [
        "/opt/data/roots-file",
        "/opt/data/logs/roots-log",
        "/opt/data/logs/gateways/old",
        "/opt/data/logs/gateways/old/current",
    ] {
        assert_eq!(owner_mode(&c, file).0, 0, "{file}");
    }
    let again = root(&c, &[SETUP]);
    again.assert_success();
    assert!(!again.stdout.contains("giving"), "{again:?}");
}

#[test]
fn nothing_under_run_service_belongs_to_hermes_after_boot() {
    if skip_unless_root("nothing_under_run_service_belongs_to_hermes_after_boot") {
        return;
    }
    let c = boot();
    for profile in ["default", "alpha"] {
        register(&c, profile);
    }
    c.run_as(User::Hermes, &[HELPER_PATH, "start", "default"], &[], None)
        .assert_success();
    c.wait_for(Duration::from_secs(10), "gateway-default up", || {
        root(
            &c,
            &["s6-svstat", "-o", "up", "/run/service/gateway-default"],
        )
        .stdout
            == "true\n"
    });
    // gateway-alpha stays down, but supervised.
    c.run_as(User::Hermes, &[HELPER_PATH, "rescan"], &[], None)
        .assert_success();
    // s6-svscan spawns a slot's supervisor and its logger's independently:
    // wait for all four before counting their FIFOs.
    for dir in [
        "/run/service/gateway-default",
        "/run/service/gateway-default/log",
        "/run/service/gateway-alpha",
        "/run/service/gateway-alpha/log",
    ] {
        c.wait_for(
            Duration::from_secs(10),
            &format!("{dir} supervised"),
            || root(&c, &["s6-svok", dir]).success(),
        );
    }
    let mut found = Vec::new();
    walk(&c, SCAN_DIR, &mut found);
    let fifos = found
        .iter()
        .filter(|(_, m)| m.file_type().is_fifo())
        .count();
    // s6-svscan's, and a supervisor's for each slot and each slot's logger.
    assert!(fifos >= 5, "expected control FIFOs, found {fifos}");
    let mut problems = Vec::new();
    for (path, meta) in &found {
        let mode = meta.mode() & 0o7777;
        // s6-overlay's own links to its s6-rc service directories: root's,
        // and a link's mode means nothing.
        let target = fs::read_link(c.host_path(path)).unwrap_or_default();
        if meta.file_type().is_symlink()
            && meta.uid() == 0
            && target.starts_with("/run/s6-rc/servicedirs/")
        {
            continue;
        }
        if meta.uid() == 10000 {
            problems.push(format!("{path} is owned by hermes"));
        }
        if mode & 0o002 != 0 {
            problems.push(format!("{path} is world-writable ({mode:o})"));
        }
        // Group-writable only for root's group: s6-supervise's own event/.
        if mode & 0o020 != 0 && meta.gid() != 0 {
            problems.push(format!(
                "{path} is writable by group {} ({mode:o})",
                meta.gid()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// --- the dashboard service -----------------------------------------------------

#[test]
fn dashboard_stays_down_unless_enabled() {
    if skip_unless_root("dashboard_stays_down_unless_enabled") {
        return;
    }
    let c = boot();
    let run = asset("etc/s6-overlay/s6-rc.d/dashboard/run");
    let finish = asset("etc/s6-overlay/s6-rc.d/dashboard/finish");
    // Waits for `up,wantedup` to read `state` (a disabled dashboard is
    // briefly up while its run script exits; "false false" is final: only
    // the finish script's exit 125 clears wantedup).
    let settle = |service: &str, state: &str| {
        let dir = format!("{SCAN_DIR}/{service}");
        c.wait_for(
            Duration::from_secs(10),
            &format!("{service}: {state}"),
            || svstat(&c, &dir, "up,wantedup") == state,
        );
        svstat(&c, &dir, "up,wantedup")
    };
    // s6 reports a service up from the fork of ./run, while it is still the
    // root run script: waits until the run script has exec'd `hermes` (via
    // s6-setuidgid, so its ids are final), then returns its
    // (/proc/<pid>/status, /proc/<pid>/cmdline with spaces).
    let exec_of_hermes = |service: &str| {
        let dir = format!("{SCAN_DIR}/{service}");
        let mut seen = (String::new(), String::new());
        c.wait_for(
            Duration::from_secs(10),
            &format!("{service}: the run script's exec of hermes"),
            || {
                let pid = svstat(&c, &dir, "pid");
                let proc_file = |name: &str| {
                    fs::read(c.host_path(&format!("/proc/{pid}/{name}"))).unwrap_or_default()
                };
                let cmdline = proc_file("cmdline");
                let status = proc_file("status");
                seen = (
                    String::from_utf8_lossy(&status).into_owned(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " "),
                );
                !status.is_empty() && cmdline.split(|b| *b == 0).next() == Some(b"hermes")
            },
        );
        seen
    };
    for (i, value) in [
        None,
        Some(""),
        Some("0"),
        Some("no"),
        Some("False"),
        Some("on"),
    ]
    .into_iter()
    .enumerate()
    {
        set_env(&c, "HERMES_DASHBOARD", value);
        let name = format!("dashboard-off-{i}");
        c.add_service(&name, &run, Some(&finish));
        // finish exits 125: down, and s6 does not bring it back.
        assert_eq!(
            settle(&name, "false false"),
            "false false",
            "HERMES_DASHBOARD={value:?}"
        );
    }
    for (i, value) in ["1", "true", "TRUE", "Yes"].into_iter().enumerate() {
        set_env(&c, "HERMES_DASHBOARD", Some(value));
        let name = format!("dashboard-on-{i}");
        c.add_service(&name, &run, Some(&finish));
        assert_eq!(
            settle(&name, "true true"),
            "true true",
            "HERMES_DASHBOARD={value:?}"
        );
        // Up because it runs the dashboard, not just its run script.
        let (_, cmdline) = exec_of_hermes(&name);
        assert!(
            cmdline.starts_with("hermes dashboard"),
            "HERMES_DASHBOARD={value:?}: {cmdline}"
        );
    }
    // Enabled: `hermes dashboard` as hermes, host and port passed on.
    set_env(&c, "HERMES_DASHBOARD_HOST", Some("0.0.0.0"));
    set_env(&c, "HERMES_DASHBOARD_PORT", Some("9119"));
    c.add_service("dashboard", &run, Some(&finish));
    assert_eq!(settle("dashboard", "true true"), "true true");
    let (status, cmdline) = exec_of_hermes("dashboard");
    assert!(
        status.contains("\nUid:\t10000\t10000\t10000\t10000\n"),
        "{status}"
    );
    assert_eq!(
        cmdline.trim_end(),
        "hermes dashboard --host 0.0.0.0 --port 9119"
    );

    // A dashboard-only container runs the dashboard as its main program.
    install(&c, "/run/hermes/dashboard-only", "");
    c.add_service("dashboard-only", &run, Some(&finish));
    assert_eq!(settle("dashboard-only", "false false"), "false false");
}

#[test]
fn dashboard_exit_78_is_final_and_crashes_restart() {
    if skip_unless_root("dashboard_exit_78_is_final_and_crashes_restart") {
        return;
    }
    let c = with_env(&[("HERMES_DASHBOARD", "1")]);
    let run = asset("etc/s6-overlay/s6-rc.d/dashboard/run");
    let finish = asset("etc/s6-overlay/s6-rc.d/dashboard/finish");
    // `hermes` earlier on PATH: counts its runs, exits with a chosen code.
    install(
        &c,
        "/usr/local/sbin/hermes",
        "#!/bin/sh\nid -u >>/tmp/dashboard.runs\nexit \"$(cat /tmp/dashboard.exit)\"\n",
    );
    let runs = || {
        fs::read_to_string(c.host_path("/tmp/dashboard.runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };

    c.write_file("/tmp/dashboard.exit", "78", 0o644);
    c.add_service("dashboard", &run, Some(&finish));
    c.wait_for(
        Duration::from_secs(10),
        "the dashboard down for good",
        || runs() == 1 && svstat(&c, "/run/service/dashboard", "up,wantedup") == "false false",
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(), 1, "exit 78 is not restarted");
    assert_eq!(read(&c, "/tmp/dashboard.runs"), "10000\n");

    fs::remove_file(c.host_path("/tmp/dashboard.runs")).unwrap();
    c.write_file("/tmp/dashboard.exit", "3", 0o644);
    c.run_as(
        User::Root,
        &["s6-svc", "-u", "/run/service/dashboard"],
        &[],
        None,
    )
    .assert_success();
    c.wait_for(
        Duration::from_secs(10),
        "the crashed dashboard restarted",
        || runs() >= 2,
    );
    assert_eq!(svstat(&c, "/run/service/dashboard", "wantedup"), "true");
}

// --- hermes-main (main_program.rs runs the container command end to end) ---------

#[test]
fn main_wrapper_routes_arguments_and_drops_to_hermes() {
    if skip_unless_root("main_wrapper_routes_arguments_and_drops_to_hermes") {
        return;
    }
    let c = boot();
    install(
        &c,
        "/usr/local/sbin/hermes",
        "#!/bin/sh\necho \"hermes uid=$(id -u) home=$HOME hermes_home=$HERMES_HOME\"\n\
         printf '[%s]' \"$@\"; echo\nexit 3\n",
    );
    let wrap = |user: User, args: &[&str]| {
        let mut argv = vec![WRAPPER];
        argv.extend_from_slice(args);
        c.run_as(user, &argv, &[], None)
    };
    let hermes_ran = |out: &Output, args: &str| {
        out.assert_code(3);
        assert_eq!(
            out.stdout,
            format!("hermes uid=10000 home=/opt/data hermes_home=/opt/data\n{args}\n"),
            "{out:?}"
        );
    };
    hermes_ran(&wrap(User::Root, &[]), "[]");
    hermes_ran(&wrap(User::Root, &["gateway", "run"]), "[gateway][run]");
    hermes_ran(&wrap(User::Root, &["--tui"]), "[--tui]");
    hermes_ran(&wrap(User::Root, &["hermes", "chat"]), "[chat]");
    hermes_ran(
        &wrap(User::Root, &["no-such-program", "x"]),
        "[no-such-program][x]",
    );
    // `true` is a program on PATH, not the shell's builtin.
    let out = wrap(User::Root, &["true"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");
    let out = wrap(User::Root, &["sh", "-c", "id -u; exit 9"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(9), "10000\n"),
        "{out:?}"
    );
    let out = wrap(User::Root, &["/bin/sh", "-c", "id -G"]);
    assert_eq!(out.assert_success().stdout, "10000\n");
    // hermes itself runs it as it is.
    let out = wrap(User::Hermes, &["sh", "-c", "id -u"]);
    assert_eq!(out.assert_success().stdout, "10000\n");
}

// --- 02-reconcile-profiles ---------------------------------------------------------

#[test]
fn reconcile_step_drops_to_hermes_and_runs_hermes_s6_reconcile() {
    if skip_unless_root("reconcile_step_drops_to_hermes_and_runs_hermes_s6_reconcile") {
        return;
    }
    let c = with_env(&[("GREETING", "hello")]);
    // A hermes-s6 that records how it was called, where the step runs it.
    install(
        &c,
        "/usr/local/bin/hermes-s6",
        "#!/bin/sh\n{\n  echo \"ids=$(id -u) $(id -G)\"\n  echo \"args=$*\"\n  echo \"pwd=$(pwd)\"\n  \
         echo \"home=$HOME hermes_home=$HERMES_HOME greeting=${GREETING-unset}\"\n\
         } >/tmp/reconcile.call\necho 'profile alpha: registered'\n\
         exit \"$(cat /tmp/reconcile.exit 2>/dev/null || echo 0)\"\n",
    );
    let out = root(&c, &[RECONCILE]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("02-reconcile-profiles: profile alpha: registered"),
        "{out:?}"
    );
    assert_eq!(
        read(&c, "/tmp/reconcile.call"),
        "ids=10000 10000\nargs=reconcile\npwd=/opt/data\n\
         home=/opt/data hermes_home=/opt/data greeting=hello\n"
    );

    // A problem with some profiles never stops the boot; a reconciler that
    // cannot work at all does.
    for (code, boot_goes_on) in [
        (65, true),
        (78, true),
        (70, true),
        (1, true),
        (2, false),
        (69, false),
        (77, false),
    ] {
        c.write_file("/tmp/reconcile.exit", code.to_string(), 0o644);
        let out = root(&c, &[RECONCILE]);
        if boot_goes_on {
            out.assert_success();
            assert!(out.stderr.contains("the boot goes on"), "{code}: {out:?}");
        } else {
            out.assert_code(1);
            assert!(out.stderr.contains("failed as a whole"), "{code}: {out:?}");
        }
    }

    // A dashboard-only container does not reconcile.
    remove(&c, "/tmp/reconcile.call");
    install(&c, "/run/hermes/dashboard-only", "");
    let out = root(&c, &[RECONCILE]);
    out.assert_success();
    assert!(out.stdout.contains("dashboard-only container"), "{out:?}");
    assert!(!exists(&c, "/tmp/reconcile.call"));
}

#[test]
fn reconcile_step_fails_loudly_when_the_helper_is_unusable() {
    if skip_unless_root("reconcile_step_fails_loudly_when_the_helper_is_unusable") {
        return;
    }
    let c = boot();
    // Setuid ignored (allowPrivilegeEscalation: false, no-new-privileges):
    // not unusable, the reconcile goes over the helper's socket: the
    // service's when it runs (this step run again), else one the step
    // serves itself for the reconcile, as at boot.
    let out = c.exec(User::Root, &[RECONCILE]).no_new_privs().output();
    out.assert_success();
    assert!(
        out.stdout.contains("served by hermes-s6-helperd") && out.stdout.contains("no_new_privs"),
        "{out:?}"
    );
    let service = "/run/service/hermes-s6-helperd";
    root(&c, &["s6-svc", "-d", service]).assert_success();
    root(&c, &["s6-svwait", "-d", service]).assert_success();
    let out = c.exec(User::Root, &[RECONCILE]).no_new_privs().output();
    out.assert_success();
    assert!(
        out.stdout.contains("socket transport for this boot")
            && out.stdout.contains("no_new_privs"),
        "{out:?}"
    );
    assert!(
        !c.host_path("/run/hermes-s6/helper.sock").exists(),
        "the boot's own server is gone"
    );
    // Writable by others than root.
    fs::set_permissions(c.host_path(HELPER_PATH), fs::Permissions::from_mode(0o4770)).unwrap();
    let out = root(&c, &[RECONCILE]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "must be owned by root and writable by root only (it is uid 0, group hermes, mode 4770)"
        ),
        "{out:?}"
    );
    // Missing.
    fs::remove_file(c.host_path(HELPER_PATH)).unwrap();
    let out = root(&c, &[RECONCILE]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("hermes-s6-helper is missing"),
        "{out:?}"
    );
}

// --- failures stop the boot ------------------------------------------------------

#[test]
fn a_failing_cont_init_script_fails_the_boot_loudly() {
    if skip_unless_root("a_failing_cont_init_script_fails_the_boot_loudly") {
        return;
    }
    let message = boot_failure(Options {
        container_env: vec![("HERMES_UID".into(), "abc".into())],
        ..Options::default()
    });
    assert!(
        message.contains(
            "boot 1 failed: cont-init script /etc/cont-init.d/01-hermes-s6-setup exited 1"
        ) && message.contains("HERMES_UID='abc' is not a valid id"),
        "{message}"
    );
    let message = boot_failure(Options {
        helper_mode: 0o4770,
        ..Options::default()
    });
    assert!(
        message.contains("cont-init script /etc/cont-init.d/02-reconcile-profiles exited 1")
            && message.contains("must be owned by root and writable by root only"),
        "{message}"
    );
}

// --- the whole boot, with the real reconciler ----------------------------------------

#[test]
fn full_boot_reconciles_profiles() {
    if skip_unless_root("full_boot_reconciles_profiles") {
        return;
    }
    let mut c = boot();
    let out = c.sh(
        User::Hermes,
        "mkdir -p profiles/alpha profiles/beta && touch profiles/alpha/SOUL.md profiles/beta/SOUL.md \
         && echo '{\"desired_state\": \"running\"}' >profiles/alpha/gateway_state.json \
         && echo '{\"desired_state\": \"stopped\"}' >profiles/beta/gateway_state.json",
    );
    out.assert_success();
    c.restart();
    let reconcile = c.boot_log().last().unwrap();
    assert_eq!(reconcile.script, RECONCILE);
    assert!(
        reconcile.success() && !reconcile.stderr.contains("warning"),
        "{reconcile:?}"
    );
    for profile in ["default", "alpha", "beta"] {
        assert!(
            is_real_dir(&c, &format!("{SCAN_DIR}/gateway-{profile}")),
            "gateway-{profile} registered"
        );
    }
    c.wait_for(Duration::from_secs(10), "gateway-alpha up", || {
        svstat(&c, "/run/service/gateway-alpha", "up") == "true"
    });
    assert_eq!(svstat(&c, "/run/service/gateway-beta", "up"), "false");
    let boot_log = fs::read_to_string(c.volume().join("logs/container-boot.log")).unwrap();
    assert!(boot_log.contains("profile=alpha"), "{boot_log}");
}

// --- the static checks ------------------------------------------------------------

#[test]
fn docker_check_passes() {
    let has = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("hadolint") || !has("shellcheck") {
        eprintln!(
            "\n{bar}\nSKIPPED: docker_check_passes needs hadolint and shellcheck \
             (./check installs them)\n{bar}",
            bar = "!".repeat(72)
        );
        return;
    }
    let out = Command::new(Path::new(DOCKER_DIR).join("check"))
        .output()
        .expect("cannot run docker/check");
    assert!(
        out.status.success(),
        "docker/check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of docker/ where one root script runs `id` before it sets root's
/// PATH, and another names its interpreter by bare name: docker/check must
/// name both. (Needs no tool but bash: the rule is docker/check's own.)
#[test]
fn docker_check_rejects_a_root_script_that_looks_a_program_up_before_setting_its_path() {
    let copy = std::env::temp_dir().join(format!("hermes-docker-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&copy);
    let status = Command::new("cp")
        .args(["-a", DOCKER_DIR])
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let finish = copy.join("rootfs/etc/s6-overlay/s6-rc.d/main-hermes/run");
    let text = fs::read_to_string(&finish).unwrap();
    let early = text.replacen(
        "export HERMES_S6_USER_PATH=",
        "id -u >/dev/null\nexport HERMES_S6_USER_PATH=",
        1,
    );
    assert_ne!(early, text);
    fs::write(&finish, early).unwrap();
    let cmd = copy.join("rootfs/usr/local/libexec/hermes-main");
    let text = fs::read_to_string(&cmd).unwrap();
    fs::write(
        &cmd,
        text.replacen(
            "#!/command/with-contenv /bin/sh",
            "#!/command/with-contenv sh",
            1,
        ),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(copy.join("check"))
        .output()
        .expect("cannot run the copy's check");
    let _ = fs::remove_dir_all(&copy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("main-hermes/run:")
            && stderr.contains("runs something before setting root's PATH: id -u >/dev/null"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hermes-main: the shebang runs 'sh', which is looked up through PATH"),
        "{stderr}"
    );
}
