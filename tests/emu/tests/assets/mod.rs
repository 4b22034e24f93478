//! What the suites that run the image's assets share: booting with them,
//! reading and writing the container's files, running the stage 2 hook and
//! the services as s6-overlay would.
#![allow(dead_code)] // each suite uses its own part

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use hermes_s6_emu::{
    CONTAINER_ENV_DIR, Container, DOCKER_DIR, HELPER_PATH, Options, Output, User, wait_until,
};

pub const PATH_CHECK: &str = "/etc/cont-init.d/00-hermes-path";
pub const SETUP: &str = "/etc/cont-init.d/01-hermes-s6-setup";
pub const RECONCILE: &str = "/etc/cont-init.d/02-reconcile-profiles";
pub const HOOK: &str = "/usr/local/libexec/hermes-stage2-hook";
pub const ENTRYPOINT: &str = "/usr/local/libexec/hermes-entrypoint";
pub const WRAPPER: &str = "/usr/local/libexec/hermes-main";
pub const RESULTS_DIR: &str = "/run/s6-linux-init-container-results";
pub const HALT: &str = "/run/s6/basedir/bin/halt";
pub const HALT_CALLS: &str = "/run/halt.calls";
pub const SETUID: &str = "/command/s6-setuidgid";

pub fn with_assets(opts: Options) -> Container {
    Container::boot_with(Options {
        cont_init: true,
        ..opts
    })
}

pub fn boot() -> Container {
    with_assets(Options::default())
}

pub fn with_env(env: &[(&str, &str)]) -> Container {
    with_assets(Options {
        container_env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Options::default()
    })
}

/// A file of `docker/rootfs/`, as text.
pub fn asset(path: &str) -> String {
    let full = Path::new(DOCKER_DIR).join("rootfs").join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// (uid, gid, permission bits) of a path in the container, not following a
/// final symbolic link.
pub fn owner_mode(c: &Container, path: &str) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(c.host_path(path))
        .unwrap_or_else(|e| panic!("cannot stat {path} in the container: {e}"));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

pub fn is_real_dir(c: &Container, path: &str) -> bool {
    fs::symlink_metadata(c.host_path(path)).is_ok_and(|m| m.is_dir())
}

pub fn read(c: &Container, path: &str) -> String {
    fs::read_to_string(c.host_path(path))
        .unwrap_or_else(|e| panic!("cannot read {path} in the container: {e}"))
}

pub fn exists(c: &Container, path: &str) -> bool {
    fs::symlink_metadata(c.host_path(path)).is_ok()
}

pub fn remove(c: &Container, path: &str) {
    let _ = fs::remove_file(c.host_path(path));
}

/// Sets (or, with `None`, removes) a variable of the container environment,
/// as `docker run -e` would have.
pub fn set_env(c: &Container, key: &str, value: Option<&str>) {
    let path = format!("{CONTAINER_ENV_DIR}/{key}");
    match value {
        Some(v) => c.write_file(&path, v, 0o644),
        None => remove(c, &path),
    }
}

pub fn root(c: &Container, argv: &[&str]) -> Output {
    c.run_as(User::Root, argv, &[], None)
}

/// `s6-svstat -o fields`, waiting (up to 5 s) for the status to be readable:
/// a supervisor that has just started may not have written it yet.
pub fn svstat(c: &Container, service: &str, fields: &str) -> String {
    let mut out = root(c, &["s6-svstat", "-o", fields, service]);
    if !out.success() {
        wait_until(Duration::from_secs(5), || {
            out = root(c, &["s6-svstat", "-o", fields, service]);
            out.success()
        });
    }
    out.assert_success();
    out.stdout.trim().to_owned()
}

/// Removes the slots the boot's reconciler registered (their loggers write
/// under logs/gateways as hermes, and keep hermes "in use" for usermod).
pub fn unregister_all(c: &Container) {
    let out = root(
        c,
        &[
            "/bin/sh",
            "-c",
            "cd /run/service && ls -d gateway-* 2>/dev/null",
        ],
    );
    let profiles: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("gateway-"))
        .collect();
    if !profiles.is_empty() {
        let mut argv = vec![HELPER_PATH, "unregister"];
        argv.extend(profiles);
        root(c, &argv).assert_success();
    }
}

/// Registers `profile` through the helper as hermes, unless the boot's
/// reconciler has registered it already.
pub fn register(c: &Container, profile: &str) {
    let out = c.run_as(User::Hermes, &[HELPER_PATH, "register", profile], &[], None);
    assert!(matches!(out.code, Some(0 | 73)), "{out:?}");
}

pub fn hermes_id(c: &Container) -> String {
    root(c, &["id", "hermes"])
        .assert_success()
        .stdout
        .trim()
        .to_owned()
}

/// Runs the stage 2 hook as rc.init does: as its child, rc.init's arguments
/// being `top /usr/local/libexec/hermes-main ARGS...`.
pub fn run_hook(c: &Container, args: &[&str]) -> Output {
    let mut argv = vec![
        "/bin/sh",
        "-c",
        "/usr/local/libexec/hermes-stage2-hook; exit $?",
        "rc.init",
        "top",
        WRAPPER,
    ];
    argv.extend_from_slice(args);
    let out = root(c, &argv);
    out.assert_success();
    out
}

pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Installs `script` at `path` (root's, mode 0755), creating parent dirs.
pub fn install(c: &Container, path: &str, script: &str) {
    if let Some(parent) = Path::new(path).parent() {
        fs::create_dir_all(c.host_path(&parent.to_string_lossy())).unwrap();
    }
    c.write_file(path, script, 0o755);
}

/// A stand-in for s6-overlay's halt that only records that it was called,
/// and the directory s6-overlay keeps the container's exit code in.
pub fn fake_s6_overlay_exit(c: &Container) {
    fs::create_dir_all(c.host_path(RESULTS_DIR)).unwrap();
    install(c, HALT, &format!("#!/bin/sh\necho halt >>{HALT_CALLS}\n"));
}

pub fn halt_calls(c: &Container) -> usize {
    fs::read_to_string(c.host_path(HALT_CALLS))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Walks `path` in the container without following links. s6-supervise
/// replaces `supervise/status` by renaming `status.new` over it at any
/// time: transient `status.new` entries, and entries that vanish between
/// the listing and the lstat, are skipped.
pub fn walk(c: &Container, path: &str, found: &mut Vec<(String, fs::Metadata)>) {
    let meta = match fs::symlink_metadata(c.host_path(path)) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(e) => panic!("cannot lstat {path} in the container: {e}"),
    };
    let is_dir = meta.is_dir();
    found.push((path.to_owned(), meta));
    if !is_dir {
        return;
    }
    let entries = match fs::read_dir(c.host_path(path)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(e) => panic!("cannot list {path} in the container: {e}"),
    };
    for entry in entries {
        let name = entry.unwrap().file_name();
        if name == "status.new" {
            continue;
        }
        walk(c, &format!("{path}/{}", name.to_string_lossy()), found);
    }
}

// --- cont-init on every boot -------------------------------------------------

pub fn boot_failure(opts: Options) -> String {
    let result = panic::catch_unwind(AssertUnwindSafe(|| with_assets(opts)));
    let payload = result.expect_err("the boot should have failed");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
