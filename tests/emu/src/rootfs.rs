//! Files the test process prepares in the container's temp dir before boot;
//! the boot script copies them onto the container's tmpfs root and `/run`.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::Path;

use crate::{CONTAINER_ENV_DIR, CONTAINER_PATH, INTRUDER_GID, INTRUDER_UID, Options, SCAN_DIR};

/// s6-overlay's `with-contenv`, same behavior: unless `S6_KEEP_ENV` is set to
/// a non-zero number, run the arguments with an environment made of `PATH`
/// and the files in `/run/s6/container_environment` (whole file contents,
/// unclamped).
/// The same file is the engine test image's `/command/with-contenv`
/// (docker/engine/build).
const WITH_CONTENV: &str = include_str!("with-contenv");

/// Directories of the root tmpfs, with their modes. Most are mount points.
const ROOT_DIRS: &[(&str, u32)] = &[
    ("command", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("opt", 0o755),
    ("opt/data", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("var", 0o755),
    ("var/log", 0o755),
    ("var/tmp", 0o1777),
];

/// The scripts s6-overlay (s6-linux-init) puts in `.s6-svscan/`, run by
/// s6-svscan on those signals, when it crashes and when it exits.
pub const SVSCAN_SCRIPTS: &[&str] = &[
    "SIGINT", "SIGPWR", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH", "crash", "finish",
];

/// The stand-ins' `.s6-svscan` scripts: s6-overlay's drive the container's
/// shutdown; the emulation stops a container by killing its PID namespace,
/// so these do nothing.
const SVSCAN_SCRIPT: &str = "#!/bin/sh\n\
    # Stand-in for s6-overlay's script of the same name (a shutdown hook).\n\
    exit 0\n";

/// The s6-rc services of the image, each a symlink `/run/service/<name>` ->
/// `/run/s6-rc/servicedirs/<name>` as s6-rc-init leaves them, and whether
/// its stand-in runs (the s6-rc internals) or waits down for a test to
/// bring it up ([`crate::Container::add_service`]), as s6-rc-init creates
/// every longrun down before `s6-rc change` starts it.
pub const S6RC_SERVICES: &[(&str, bool)] = &[
    ("dashboard", false),
    ("main-hermes", false),
    ("s6rc-fdholder", true),
    ("s6rc-oneshot-runner", true),
];

/// s6-overlay's own longrun, a real directory in the scan dir.
pub const SHUTDOWND: &str = "s6-linux-init-shutdownd";

/// Where `/run/s6-rc` points, as s6-rc-init names its live directory.
const S6RC_LIVE: &str = "s6-rc:s6-rc-init:hermes-emu";

/// `run` of a stand-in longrun: harmless, and it lasts.
/// It runs as root with PID 1's `PATH`, which may be a Hermes-like image's
/// (a directory of the volume on it): nothing is looked up by name.
const STANDIN_RUN: &str = "#!/bin/sh\n\
    # Stand-in for one of s6-overlay's services: it only has to be there.\n\
    exec /bin/sleep infinity\n";

/// Every entry s6-overlay puts in `/run/service`, which a container always
/// has: `.s6-svscan`, [`SHUTDOWND`] and the [`S6RC_SERVICES`] links.
pub fn overlay_entries() -> Vec<String> {
    let mut names = vec![".s6-svscan".to_owned(), SHUTDOWND.to_owned()];
    names.extend(S6RC_SERVICES.iter().map(|(name, _)| (*name).to_owned()));
    names.sort();
    names
}

/// Writes `stage/rootfs/` and `stage/run/` under `emu_dir`, and
/// `stage/init-env/` (the environment of PID 1 but for `PATH`: one file per
/// variable; empty unless [`Options::keep_env`]).
pub(crate) fn stage(emu_dir: &Path, opts: &Options, userland: &Path) -> io::Result<()> {
    let rootfs = emu_dir.join("stage/rootfs");
    for (dir, mode) in ROOT_DIRS {
        make_dir(&rootfs.join(dir), *mode)?;
    }
    mirror_merged_usr_links(&rootfs, userland)?;
    write(&rootfs.join("command/with-contenv"), WITH_CONTENV, 0o755)?;
    let etc = rootfs.join("etc");
    let (uid, gid) = (opts.hermes_uid, opts.hermes_gid);
    write(
        &etc.join("passwd"),
        &format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             hermes:x:{uid}:{gid}:Hermes:/opt/data:/bin/sh\n\
             intruder:x:{INTRUDER_UID}:{INTRUDER_GID}:Intruder:/tmp:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        0o644,
    )?;
    write(
        &etc.join("group"),
        &format!(
            "root:x:0:\n\
             hermes:x:{gid}:\n\
             intruder:x:{INTRUDER_GID}:\n\
             nogroup:x:65534:\n"
        ),
        0o644,
    )?;
    write(
        &etc.join("shadow"),
        "root:*:19000:0:99999:7:::\n\
         hermes:!:19000:0:99999:7:::\n\
         intruder:!:19000:0:99999:7:::\n\
         nobody:*:19000:0:99999:7:::\n",
        0o640,
    )?;
    write(
        &etc.join("gshadow"),
        "root:*::\nhermes:!::\nintruder:!::\nnogroup:*::\n",
        0o640,
    )?;

    let run = emu_dir.join("stage/run");
    make_dir(&run, 0o755)?;
    make_dir(&run.join("service"), 0o755)?;
    make_dir(&run.join("s6"), 0o755)?;
    make_dir(&run.join("s6/basedir"), 0o755)?;
    stage_scan_dir(&run)?;

    let init_env = emu_dir.join("stage/init-env");
    make_dir(&init_env, 0o755)?;
    if opts.keep_env {
        // S6_KEEP_ENV=1: no container_environment; PID 1 and so every
        // process inherit the whole environment (PATH: see boot.sh).
        for (key, value) in &opts.init_environment() {
            write(&init_env.join(key), value, 0o644)?;
        }
        return Ok(());
    }
    let env_dir = run.join(CONTAINER_ENV_DIR.trim_start_matches("/run/"));
    make_dir(&env_dir, 0o755)?;
    write(&env_dir.join("PATH"), CONTAINER_PATH, 0o644)?;
    for (key, value) in &opts.init_environment() {
        write(&env_dir.join(key), value, 0o644)?;
    }
    Ok(())
}

/// s6-overlay's scan dir before s6-svscan starts: `.s6-svscan/` with its
/// scripts, `s6-linux-init-shutdownd`, and the s6-rc services' links.
fn stage_scan_dir(run: &Path) -> io::Result<()> {
    let scan = run.join(SCAN_DIR.trim_start_matches("/run/"));
    let svscan = scan.join(".s6-svscan");
    make_dir(&svscan, 0o755)?;
    for name in SVSCAN_SCRIPTS {
        write(&svscan.join(name), SVSCAN_SCRIPT, 0o755)?;
    }
    make_dir(&scan.join(SHUTDOWND), 0o755)?;
    write(&scan.join(SHUTDOWND).join("run"), STANDIN_RUN, 0o755)?;

    make_dir(&run.join(S6RC_LIVE).join("servicedirs"), 0o755)?;
    symlink(S6RC_LIVE, run.join("s6-rc"))?;
    for (name, runs) in S6RC_SERVICES {
        let dir = run.join(S6RC_LIVE).join("servicedirs").join(name);
        make_dir(&dir, 0o755)?;
        write(&dir.join("run"), STANDIN_RUN, 0o755)?;
        if !runs {
            write(&dir.join("down"), "", 0o644)?;
        }
        symlink(format!("/run/s6-rc/servicedirs/{name}"), scan.join(name))?;
    }
    Ok(())
}

/// Debian 12 and 13 have merged /usr: `/bin`, `/lib`, ... are symlinks into
/// `/usr`. The container gets the links of the userland whose `/usr` it runs.
fn mirror_merged_usr_links(rootfs: &Path, userland: &Path) -> io::Result<()> {
    for entry in fs::read_dir(userland)? {
        let entry = entry?;
        if !entry.file_type()?.is_symlink() {
            continue;
        }
        let target = fs::read_link(entry.path())?;
        let points_into_usr = target
            .to_str()
            .is_some_and(|t| t.starts_with("usr/") || t.starts_with("/usr/"));
        if points_into_usr {
            symlink(&target, rootfs.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(path)?;
    // The process umask may have masked bits such as the sticky one.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn write(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    fs::write(path, contents)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Checks a `container_environment` entry the way s6-envdir will read it.
pub(crate) fn check_env_entry(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.starts_with('.') || key.contains(['/', '=', '\0']) {
        return Err(format!(
            "container_env key {key:?} cannot be an s6-envdir file name"
        ));
    }
    if value.contains('\0') {
        return Err(format!("container_env value of {key} contains NUL"));
    }
    Ok(())
}
