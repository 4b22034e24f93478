//! s6-overlay's stage 2 with the image's own files: the repository's
//! `docker/rootfs/` is laid onto the container's root, the root is made
//! read-only when asked for, the cont-init scripts run as s6-overlay runs
//! them, and the image's own longruns start as `s6-rc change` starts them
//! (see [`crate::Options::cont_init`]).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::host::NSENTER;
use crate::{Container, SCAN_DIR};

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

impl Container {
    /// s6-overlay's stage 2, which follows s6-svscan's start on every boot
    /// (restarts included): with [`crate::Options::cont_init`], the image's
    /// files are installed and its `/etc/cont-init.d/*` scripts run here, as
    /// [`Container::init_user`] (root, or hermes in a non-root container),
    /// in byte order, with s6-svscan already up; the first failure stops
    /// the boot as `S6_BEHAVIOUR_IF_STAGE2_FAILS=2` would.
    pub(crate) fn stage2(&mut self) {
        if !self.options().cont_init {
            self.seal_root();
            return;
        }
        let root = self.host_path("/");
        if let Err(e) = install_rootfs(&root) {
            panic!(
                "hermes-s6-emu: cannot install {}/rootfs in the container: {e}",
                DOCKER_DIR
            );
        }
        self.seal_root();
        let scripts = cont_init_scripts(&root).unwrap_or_else(|e| {
            panic!(
                "hermes-s6-emu: cannot list {} in the container: {e}",
                CONT_INIT_DIR
            )
        });
        for script in scripts {
            let started = Instant::now();
            let mut exec = self.exec(self.init_user(), &[script.as_str()]).cwd("/");
            if self.options().keep_env {
                // S6_KEEP_ENV=1: they inherit the container's environment.
                for (key, value) in self.options().init_environment() {
                    exec = exec.env(key, value);
                }
            }
            let out = exec.output();
            let run = ContInitRun {
                boot: self.boots(),
                script,
                code: out.code,
                signal: out.signal,
                stdout: out.stdout,
                stderr: out.stderr,
                duration: started.elapsed(),
            };
            let failed = !run.success();
            self.boot_log.push(run);
            if failed {
                let run = self.boot_log.last().expect("just pushed");
                panic!(
                    "hermes-s6-emu: boot {} failed: cont-init script {} {} \
                     (S6_BEHAVIOUR_IF_STAGE2_FAILS=2 stops the container)\n\
                     --- its stdout ---\n{}\n--- its stderr ---\n{}\n{}",
                    run.boot,
                    run.script,
                    match (run.code, run.signal) {
                        (Some(code), _) => format!("exited {code}"),
                        (None, Some(signal)) => format!("was killed by signal {signal}"),
                        (None, None) => "did not exit normally".to_owned(),
                    },
                    run.stdout.trim_end(),
                    run.stderr.trim_end(),
                    self.diagnostics()
                );
            }
        }
        self.start_image_longruns();
    }

    /// [`crate::Options::read_only_root`]: the image's files are all in
    /// place, so its root (`/`, `/usr/local`, `/usr/libexec`; `/usr` is
    /// read-only already) becomes read-only, as the image's layers are under
    /// `readOnlyRootFilesystem`. Done from outside, with every capability:
    /// the container's own root may lack `CAP_SYS_ADMIN`.
    fn seal_root(&self) {
        if !self.options().read_only_root {
            return;
        }
        for mount_point in ["/", "/usr/local", "/usr/libexec"] {
            let out = Command::new(NSENTER)
                .arg(format!("--target={}", self.init_pid()))
                .args(["--mount", "--root", "--", "/usr/bin/mount"])
                .args(["-o", "remount,bind,ro", mount_point])
                .env_clear()
                .current_dir("/")
                .output()
                .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot start {NSENTER}: {e}"));
            if !out.status.success() {
                panic!(
                    "hermes-s6-emu: cannot make {mount_point} read-only: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }

    /// What `s6-rc change top` does after the cont-init steps, for the
    /// image's own longruns of the `user` bundle (`hermes-s6-helperd`):
    /// each gets its service directory in `/run/s6-rc/servicedirs` (`run`,
    /// `finish`, `notification-fd` from `/etc/s6-overlay/s6-rc.d/<name>`)
    /// and its link in the scan dir, s6-svscan picks it up, and the boot
    /// waits until it is up, and ready when it says it notifies. The
    /// stand-ins [`crate::S6RC_SERVICES`] (`main-hermes`, `dashboard`) stay
    /// the tests' to start ([`Container::add_service`]). Dependencies are
    /// not ordered: every such longrun depends on `base` only.
    fn start_image_longruns(&self) {
        let source = self.host_path(S6RC_SOURCE_DIR);
        for name in user_longruns(&source).unwrap_or_else(|e| {
            panic!("hermes-s6-emu: cannot read the image's s6-rc services: {e}")
        }) {
            if crate::S6RC_SERVICES.iter().any(|(s6rc, _)| *s6rc == name) {
                continue;
            }
            let servicedir = format!("/run/s6-rc/servicedirs/{name}");
            let host_dir = self.host_path(&servicedir);
            let notifies = source.join(&name).join("notification-fd").exists();
            install_servicedir(&source.join(&name), &host_dir)
                .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot install {servicedir}: {e}"));
            let link = self.host_path(&format!("{SCAN_DIR}/{name}"));
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&servicedir, &link)
                .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot link {name}: {e}"));
            self.give_to_init_user(&servicedir);
            self.give_to_init_user(&format!("{SCAN_DIR}/{name}"));
            let dir = format!("{SCAN_DIR}/{name}");
            self.rescan_until_supervised(&dir);
            let wait = if notifies { "-U" } else { "-u" };
            let out = self.run_as(
                self.init_user(),
                &["s6-svwait", wait, "-t", "10000", &dir],
                &[],
                None,
            );
            if !out.success() {
                panic!(
                    "hermes-s6-emu: the image's service {name} did not come up\n{}",
                    self.diagnostics()
                );
            }
        }
    }

    /// Every `/etc/cont-init.d` script run so far, all boots, in order
    /// (empty unless [`crate::Options::cont_init`]): exit status and output of
    /// each, like the `cont-init: info: ... exited N` lines of
    /// `docker logs`.
    pub fn boot_log(&self) -> &[ContInitRun] {
        &self.boot_log
    }
}
