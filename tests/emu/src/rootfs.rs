//! Files the test process prepares in the container's temp dir before boot;
//! the boot script copies them onto the container's tmpfs root and `/run`.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::Path;

use crate::{CONTAINER_PATH, INTRUDER_GID, INTRUDER_UID, Options};

/// s6-overlay's `with-contenv`, same behavior: unless `S6_KEEP_ENV` is set to
/// a non-zero number, run the arguments with an environment made of `PATH`
/// and the files in `/run/s6/container_environment` (whole file contents,
/// unclamped).
const WITH_CONTENV: &str = r#"#!/bin/sh
if [ "0${S6_KEEP_ENV-}" -eq 0 ] 2>/dev/null; then
    exec /usr/bin/env -i ${PATH+"PATH=$PATH"} \
        /usr/bin/s6-envdir -Lf -- /run/s6/container_environment "$@"
fi
exec "$@"
"#;

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

/// Writes `stage/rootfs/` and `stage/run/` under `emu_dir`.
pub(crate) fn stage(emu_dir: &Path, opts: &Options) -> io::Result<()> {
    let rootfs = emu_dir.join("stage/rootfs");
    for (dir, mode) in ROOT_DIRS {
        make_dir(&rootfs.join(dir), *mode)?;
    }
    mirror_merged_usr_links(&rootfs)?;
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
    let env_dir = run.join("s6/container_environment");
    make_dir(&env_dir, 0o755)?;
    write(&env_dir.join("PATH"), CONTAINER_PATH, 0o644)?;
    for (key, value) in &opts.container_environment() {
        write(&env_dir.join(key), value, 0o644)?;
    }
    Ok(())
}

/// Debian 12 has merged /usr: `/bin`, `/lib`, ... are symlinks into `/usr`.
/// The container gets the same links the host has.
fn mirror_merged_usr_links(rootfs: &Path) -> io::Result<()> {
    for entry in fs::read_dir("/")? {
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
