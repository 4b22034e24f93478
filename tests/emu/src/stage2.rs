//! s6-overlay's stage 2 with the image's own files: the repository's
//! `docker/rootfs/` is laid onto the container's root, and the cont-init
//! scripts run as s6-overlay runs them (see [`crate::Options::cont_init`]).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// The repository's `docker/` directory (Dockerfile, `rootfs/`, `check`),
/// located at compile time next to this crate.
pub const DOCKER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker");

/// Where s6-overlay looks for the container-init scripts.
pub const CONT_INIT_DIR: &str = "/etc/cont-init.d";

/// Where s6-overlay looks for the image's s6-rc service definitions.
pub const S6RC_SOURCE_DIR: &str = "/etc/s6-overlay/s6-rc.d";

/// One cont-init script's run during a boot (see [`crate::Container::boot_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContInitRun {
    /// 1 for the first boot, 2 after the first [`crate::Container::restart`], ...
    pub boot: u32,
    /// Path in the container, e.g. `/etc/cont-init.d/01-hermes-setup`.
    pub script: String,
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl ContInitRun {
    /// Exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Copies `docker/rootfs/` into the container whose root is `root` (a host
/// path such as `/proc/<pid>/root`): directories created 0755 where missing,
/// files replaced atomically with the repository's modes, everything owned
/// by root (the caller). Symbolic links in the source are refused.
pub(crate) fn install_rootfs(root: &Path) -> io::Result<()> {
    copy_tree(&Path::new(DOCKER_DIR).join("rootfs"), root)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        if meta.is_dir() {
            if !target.is_dir() {
                DirBuilder::new().mode(0o755).create(&target)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
            }
            copy_tree(&source, &target)?;
        } else if meta.is_file() {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = target.with_file_name(format!(".{name}.hermes-emu-tmp"));
            fs::copy(&source, &tmp)?;
            fs::set_permissions(
                &tmp,
                fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
            )?;
            fs::rename(&tmp, &target)?;
        } else {
            return Err(io::Error::other(format!(
                "{} is neither a file nor a directory",
                source.display()
            )));
        }
    }
    Ok(())
}

/// The scripts of `/etc/cont-init.d` in the container whose root is `root`,
/// in the order s6-overlay runs them (`s6-ls | s6-sort`: byte order).
pub(crate) fn cont_init_scripts(root: &Path) -> io::Result<Vec<String>> {
    let dir = root.join(CONT_INIT_DIR.trim_start_matches('/'));
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let bytes = name.as_encoded_bytes().to_vec();
        if !bytes.starts_with(b".") {
            names.push(bytes);
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| format!("{CONT_INIT_DIR}/{}", String::from_utf8_lossy(&n)))
        .collect())
}

/// The longruns of the `user` bundle in the s6-rc source directory
/// `source` (a host path), sorted.
pub(crate) fn user_longruns(source: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(source.join("user/contents.d"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let kind = fs::read_to_string(source.join(&name).join("type")).unwrap_or_default();
        if kind.trim() == "longrun" {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// A service directory as s6-rc-compile makes one from a longrun's
/// definition `from`: `run`, and `finish` and `notification-fd` when
/// defined, root's, with their modes.
pub(crate) fn install_servicedir(from: &Path, to: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o755).recursive(true).create(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    for name in ["run", "finish", "notification-fd"] {
        let source = from.join(name);
        let Ok(meta) = fs::symlink_metadata(&source) else {
            continue;
        };
        if !meta.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                source.display()
            )));
        }
        fs::copy(&source, to.join(name))?;
        fs::set_permissions(
            to.join(name),
            fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
        )?;
    }
    Ok(())
}
