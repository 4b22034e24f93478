//! How a container is built ([`Options`]) and who runs commands in it
//! ([`User`]), with the checks [`crate::Container::boot_with`] makes of
//! the options.

use std::fs;

use crate::paths::Paths;
use crate::rootfs;
use crate::userland::S6Version;
use crate::{CONTAINER_PATH, DEFAULT_HERMES_GID, DEFAULT_HERMES_UID, INTRUDER_GID, INTRUDER_UID};

/// Who runs a command in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum User {
    /// uid 0, home `/root`.
    Root,
    /// The `hermes` user (uid/gid from [`Options`]), home `/opt/data`,
    /// supplementary groups from `/etc/group` (just `hermes`).
    Hermes,
    /// uid/gid 10001, home `/tmp`, not a member of group `hermes`.
    Intruder,
}

impl User {
    /// Login name in the container's `/etc/passwd`.
    pub fn name(self) -> &'static str {
        match self {
            User::Root => "root",
            User::Hermes => "hermes",
            User::Intruder => "intruder",
        }
    }

    /// `HOME` given to commands run as this user.
    pub fn home(self) -> &'static str {
        match self {
            User::Root => "/root",
            User::Hermes => crate::HERMES_HOME,
            User::Intruder => "/tmp",
        }
    }
}

/// How a container is built. Start from `Options::default()`:
/// `Options { syslog: true, ..Options::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// uid of the `hermes` user (default 10000). Not 0, 10001 or 65534.
    pub hermes_uid: u32,
    /// gid of the `hermes` group (default 10000). Not 0, 10001 or 65534.
    pub hermes_gid: u32,
    /// `s6-svscan -c`: how many services the scan dir may hold. Default
    /// `None`: s6-overlay's command line, `s6-svscan -d4 -- /run/service`,
    /// so s6's own maximum applies (2.11: 500, a slot and its logger
    /// counting as one; 2.13 and 2.15: 1000, each logger counting as a
    /// service of its own). Only the scale tests set it, on 2.11 (and
    /// 2.13), to [`crate::DEFAULT_SERVICE_CAP`]: 2.11's default is too low
    /// for 1000 profiles. s6 2.15's s6-svscan rejects `-c`: booting with a
    /// cap on 2.15 panics (guard such a test with
    /// [`crate::skip_unless_s6`]).
    pub service_cap: Option<u32>,
    /// s6-overlay's `S6_KEEP_ENV=1` (default false): there is no
    /// `/run/s6/container_environment` at all, and PID 1 (so every service,
    /// and the cont-init scripts of [`Options::cont_init`]) inherits the
    /// whole container environment ([`Options::init_environment`], with
    /// `S6_KEEP_ENV=1`).
    pub keep_env: bool,
    /// Listen on `/dev/log` and collect what is sent there (see
    /// [`crate::Container::syslog_records`]). When false, `/dev/log` does
    /// not exist.
    pub syslog: bool,
    /// Extra files in `/run/s6/container_environment` (name = variable,
    /// contents = value), as `docker run -e` produces. `PATH` is always
    /// there; an entry named `PATH` replaces it, and is PID 1's `PATH` too
    /// (the image's `PATH`, which s6-overlay hands to PID 1 and records
    /// there: see [`Options::path`]).
    pub container_env: Vec<(String, String)>,
    /// Mode of `/usr/libexec/hermes-s6-helper` (default `0o4750`). Tests of
    /// the helper's refusal to run without privilege may drop the setuid bit.
    pub helper_mode: u32,
    /// Binaries to install; `None` locates them with [`Paths::locate`].
    pub binaries: Option<Paths>,
    /// Run s6-overlay's stage 2 with the image's own files (default false).
    /// On every boot, restarts included, once s6-svscan is up: the
    /// repository's `docker/rootfs/` ([`crate::DOCKER_DIR`]) is copied onto
    /// the container's root (cont-init scripts in `/etc/cont-init.d`,
    /// s6-rc definitions in `/etc/s6-overlay/s6-rc.d`, programs in
    /// `/usr/local/libexec`), then every `/etc/cont-init.d` script runs as
    /// root (hermes with [`Options::non_root`]), in byte order, from `/`,
    /// as s6-overlay runs them (each loads the container environment
    /// through its `with-contenv` shebang). Each run is recorded
    /// ([`crate::Container::boot_log`]); the first one that fails
    /// fails the boot, with its output, as `S6_BEHAVIOUR_IF_STAGE2_FAILS=2`
    /// does. Then the image's own longruns of the `user` bundle start
    /// (`hermes-s6-helperd`), as `s6-rc change` starts them. s6-rc itself
    /// is not emulated: the stage 2 hook, the
    /// `main-hermes` and `dashboard` services and the container command are
    /// left to the tests.
    pub cont_init: bool,
    /// A container where setuid cannot work (default false), as under
    /// Kubernetes `allowPrivilegeEscalation: false`: the helper is installed
    /// without the setuid bit (mode 0755, whatever [`Options::helper_mode`]
    /// says), and every process of the container runs with `no_new_privs`:
    /// s6-svscan (so every service) and every command run through
    /// [`crate::Container::exec`], whatever its user. Combine with
    /// [`Options::cont_init`] to boot the image as it boots there: the
    /// helper is reached over the socket of its `hermes-s6-helperd`
    /// service, which the emulation starts as s6-rc would.
    pub no_setuid: bool,
    /// A narrower capability bounding set (default `None`: every
    /// capability), in `setpriv --bounding-set=` syntax, e.g.
    /// `-all,+chown,+setuid,+setgid,+kill` (capability names, lower case,
    /// without `cap_`). Applied to PID 1 (so s6-svscan, every service and
    /// what they start, the setuid helper included) and to every command
    /// run through [`crate::Container::exec`], as root or not: the container's
    /// capabilities as `docker run --cap-drop ALL --cap-add ...` or a Pod's
    /// `securityContext.capabilities` leave them. Root's processes keep
    /// exactly the capabilities of the set.
    pub bounding_set: Option<String>,
    /// `readOnlyRootFilesystem: true` (default false): once the image's
    /// files are in place (after [`Options::cont_init`]'s copy, before its
    /// scripts run), the container's root is made read-only, `/usr/local`
    /// and `/usr/libexec` included; `/run`, `/tmp`, `/dev` (and
    /// `/dev/shm`) and the volume stay writable, as tmpfs `emptyDir`s and
    /// the volume are in such a Pod. Set `S6_READ_ONLY_ROOT=1` in
    /// [`Options::container_env`] too, as such images do.
    pub read_only_root: bool,
    /// A non-root container (default false), as `docker run --user <hermes
    /// uid>` (Kubernetes `runAsUser`) starts the image with s6-overlay:
    /// PID 1, `s6-svscan`, runs as hermes ([`Options::hermes_uid`] and
    /// [`Options::hermes_gid`], groups from `/etc/group`), so every
    /// s6-supervise and every service does, and `/run` (its tmpfs and all
    /// s6-overlay puts there: the scan dir with `.s6-svscan`, the s6-rc
    /// service directories and links, `/run/s6/container_environment`) is
    /// hermes's, as s6-overlay requires of a non-root user. The helper is
    /// installed as the image ships it (setuid, `root:hermes`). With
    /// [`Options::cont_init`] the cont-init scripts run as hermes, and the
    /// image's longruns are hermes's and supervised by hermes's s6. Commands
    /// can still run as root ([`User::Root`], as `docker exec -u 0`); the
    /// emulation's own s6 control runs as [`crate::Container::init_user`].
    pub non_root: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            hermes_uid: DEFAULT_HERMES_UID,
            hermes_gid: DEFAULT_HERMES_GID,
            service_cap: None,
            keep_env: false,
            syslog: false,
            container_env: Vec::new(),
            helper_mode: 0o4750,
            binaries: None,
            cont_init: false,
            no_setuid: false,
            bounding_set: None,
            read_only_root: false,
            non_root: false,
        }
    }
}

impl Options {
    /// Mode the helper is installed with.
    pub fn installed_helper_mode(&self) -> u32 {
        if self.no_setuid {
            0o755
        } else {
            self.helper_mode
        }
    }

    /// The `PATH` of PID 1 and of the container environment: the
    /// [`Options::container_env`] entry named `PATH`, else
    /// [`crate::CONTAINER_PATH`]. A Hermes-like image's `PATH` names a
    /// directory of the hermes-writable volume; the image's root scripts
    /// must hold up with it (tests/emu/tests/hostile_volume.rs).
    pub fn path(&self) -> &str {
        self.container_env
            .iter()
            .rev()
            .find(|(key, _)| key == "PATH")
            .map_or(CONTAINER_PATH, |(_, path)| path)
    }

    /// The container environment's files: [`Options::container_env`].
    pub fn container_environment(&self) -> Vec<(String, String)> {
        self.container_env.clone()
    }

    /// The container's environment as s6-overlay records it, but for
    /// `PATH` ([`crate::CONTAINER_PATH`]): `HOME=/root`, `HOSTNAME` (the
    /// host's: the emulation shares its UTS namespace), `PWD=/`, with
    /// [`Options::keep_env`] `S6_KEEP_ENV=1`, then
    /// [`Options::container_environment`], a later entry replacing an
    /// earlier one of the same name.
    pub fn init_environment(&self) -> Vec<(String, String)> {
        let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let mut env: Vec<(String, String)> = Vec::new();
        if self.keep_env {
            env.push(("S6_KEEP_ENV".into(), "1".into()));
        }
        env.push(("HOME".into(), "/root".into()));
        env.push(("HOSTNAME".into(), hostname));
        env.push(("PWD".into(), "/".into()));
        for (key, value) in self.container_environment() {
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        env
    }

    /// The first reason these options cannot make a container, if any:
    /// [`crate::Container::boot_with`] checks before it creates anything.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (what, id) in [
            ("hermes_uid", self.hermes_uid),
            ("hermes_gid", self.hermes_gid),
        ] {
            if [0, INTRUDER_UID, INTRUDER_GID, 65534].contains(&id) {
                return Err(format!(
                    "{what} = {id} collides with root, intruder or nobody"
                ));
            }
        }
        match self.service_cap {
            Some(0) => return Err("service_cap must be at least 1".into()),
            Some(cap) if !S6Version::selected().takes_service_cap() => {
                return Err(format!(
                    "service_cap = {cap}, but s6 {}'s s6-svscan takes no -c",
                    S6Version::selected().label()
                ));
            }
            _ => {}
        }
        if self.helper_mode > 0o7777 {
            return Err(format!("helper_mode {:o} is not a mode", self.helper_mode));
        }
        for (key, value) in &self.container_env {
            rootfs::check_env_entry(key, value)?;
        }
        if let Some(set) = &self.bounding_set
            && (set.is_empty()
                || !set
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b"_,+-".contains(&b)))
        {
            return Err(format!(
                "bounding_set = {set:?} is not a setpriv --bounding-set= list"
            ));
        }
        Ok(())
    }
}
