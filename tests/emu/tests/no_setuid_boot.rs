//! `Options::no_setuid`: the emulation of a container where setuid cannot
//! work, and the image's cont-init in that mode (the frontend's own tests
//! drive the gateways through it).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use hermes_s6_emu::{Container, HELPER_PATH, Options, User, skip_unless_root};

const RECONCILE: &str = "/etc/cont-init.d/02-reconcile-profiles";
const MODE_FILE: &str = "/run/hermes-s6/mode";

/// `NoNewPrivs` of a host pid.
fn no_new_privs_of_pid(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `NoNewPrivs` of a command run in the container as `user`.
fn no_new_privs_as(c: &Container, user: User) -> String {
    let out = c.sh(user, "grep '^NoNewPrivs:' /proc/self/status | cut -f2");
    out.assert_success();
    out.stdout.trim().to_owned()
}

#[test]
fn every_process_runs_without_new_privileges_and_the_helper_has_no_setuid_bit() {
    if skip_unless_root("every_process_runs_without_new_privileges") {
        return;
    }
    let c = Container::boot_with(Options {
        no_setuid: true,
        ..Options::default()
    });
    assert_eq!(
        no_new_privs_of_pid(c.init_pid()),
        "1",
        "s6-svscan, and so every service"
    );
    assert_eq!(no_new_privs_as(&c, User::Hermes), "1");
    assert_eq!(no_new_privs_as(&c, User::Root), "1");
    let helper = fs::metadata(c.host_path(HELPER_PATH)).unwrap();
    assert_eq!(
        (helper.uid(), helper.gid(), helper.mode() & 0o7777),
        (0, 10000, 0o755)
    );
    assert_eq!(
        fs::read_to_string(c.host_path("/run/s6/container_environment/HERMES_S6_NO_SETUID"))
            .unwrap(),
        "1"
    );
    // The helper cannot become root for hermes.
    let out = c.run_as(User::Hermes, &[HELPER_PATH, "--version"], &[], None);
    assert_eq!(out.code, Some(77), "{out:?}");
    assert!(out.stderr.contains("no_new_privs"), "{out:?}");
    // A default container is unchanged.
    let plain = Container::boot();
    assert_eq!(no_new_privs_of_pid(plain.init_pid()), "0");
    assert_eq!(no_new_privs_as(&plain, User::Hermes), "0");
}

#[test]
fn the_boot_records_the_mode_and_refuses_a_helper_others_may_change() {
    if skip_unless_root("the_boot_records_the_mode") {
        return;
    }
    let c = Container::boot_with(Options {
        no_setuid: true,
        cont_init: true,
        ..Options::default()
    });
    let run = c.boot_log().last().unwrap();
    assert!(run.success(), "{run:?}");
    assert_eq!(
        fs::read_to_string(c.host_path(MODE_FILE)).unwrap(),
        "no-setuid\n"
    );
    // Root executes the helper here: nobody else may be able to change it.
    fs::set_permissions(c.host_path(HELPER_PATH), fs::Permissions::from_mode(0o775)).unwrap();
    let out = c.run_as(User::Root, &[RECONCILE], &[], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("must be owned by root and writable by root only"),
        "{out:?}"
    );

    // The setuid image records its mode too; a false-ish value is setuid.
    let c = Container::boot_with(Options {
        cont_init: true,
        container_env: vec![("HERMES_S6_NO_SETUID".into(), "0".into())],
        ..Options::default()
    });
    assert_eq!(
        fs::read_to_string(c.host_path(MODE_FILE)).unwrap(),
        "setuid\n"
    );
    let meta = fs::metadata(c.host_path(MODE_FILE)).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
}
