//! The emulated container: boot, restart, teardown.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::{Exec, Output};
use crate::nonroot;
use crate::paths::Paths;
use crate::procfs::{self, PidNamespace};
use crate::rootfs;
use crate::spawner;
use crate::stage2::{self, ContInitRun};
use crate::syslog::SyslogSink;
use crate::userland::{S6Version, Userland};
use crate::{
    CONTAINER_PATH, DEFAULT_HERMES_GID, DEFAULT_HERMES_UID, INTRUDER_GID, INTRUDER_UID, SCAN_DIR,
};

const BOOT_SCRIPT: &str = include_str!("boot.sh");

/// Temp dir names start with this, then `<pid of the test process>-<n>`.
const TEMP_PREFIX: &str = "hermes-emu-";
/// Marks a temp dir kept on purpose, so later runs do not sweep it.
const KEEP_MARKER: &str = "KEPT";
const KEEP_ENV: &str = "HERMES_EMU_KEEP";
const REQUIRE_ROOT_ENV: &str = "HERMES_EMU_REQUIRE_ROOT";

/// Host programs the emulation needs.
const SETPRIV: &str = "/usr/bin/setpriv";
const UNSHARE: &str = "/usr/bin/unshare";
pub(crate) const NSENTER: &str = "/usr/bin/nsenter";
const HOST_TOOLS: &[&str] = &[SETPRIV, UNSHARE, NSENTER, "/usr/sbin/pivot_root"];
/// Programs the container's userland (the host's, or a Debian root
/// filesystem: see [`Userland`]) must have.
const USERLAND_TOOLS: &[&str] = &[
    "/usr/bin/s6-svscan",
    "/usr/lib/execline/bin/execlineb",
    "/usr/bin/setpriv",
    "/usr/bin/env",
];

const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
/// Boots normally take well under 300 ms; only slower ones are reported.
const SLOW_BOOT: Duration = Duration::from_secs(1);
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// [`Container::syslog_records`]). When false, `/dev/log` does not exist.
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
    /// through its `with-contenv` shebang). Each
    /// run is recorded ([`Container::boot_log`]); the first one that fails
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
    /// [`Container::exec`], whatever its user. Combine with
    /// [`Options::cont_init`] to boot the image as it boots there: the
    /// helper is reached over the socket of its `hermes-s6-helperd`
    /// service, which the emulation starts as s6-rc would.
    pub no_setuid: bool,
    /// A narrower capability bounding set (default `None`: every
    /// capability), in `setpriv --bounding-set=` syntax, e.g.
    /// `-all,+chown,+setuid,+setgid,+kill` (capability names, lower case,
    /// without `cap_`). Applied to PID 1 (so s6-svscan, every service and
    /// what they start, the setuid helper included) and to every command
    /// run through [`Container::exec`], as root or not: the container's
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
    /// emulation's own s6 control runs as [`Container::init_user`].
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

    fn check(&self) -> Result<(), String> {
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

/// One boot of the container: the `unshare` process (our child) and the
/// namespace's PID 1 (its child).
#[derive(Debug)]
struct Instance {
    unshare: Child,
    /// Host pid of the namespace's PID 1; 0 until it has been seen.
    init_pid: u32,
    /// The PID namespace, for the teardown check; `None` until it has been seen.
    pid_ns: Option<PidNamespace>,
}

/// An emulated Hermes container. See the crate documentation.
///
/// Dropping it kills everything in it and removes its temp dir (the volume
/// included), also while a test panics. A container may be moved to and
/// used from any thread.
#[derive(Debug)]
pub struct Container {
    opts: Options,
    binaries: Paths,
    dir: PathBuf,
    volume: PathBuf,
    instance: Option<Instance>,
    syslog: Option<SyslogSink>,
    /// Boots so far (the current one included).
    boots: u32,
    /// Every cont-init run of every boot, in order.
    boot_log: Vec<ContInitRun>,
}

impl Container {
    /// Boots a container with [`Options::default`].
    ///
    /// # Panics
    /// See [`Container::boot_with`].
    pub fn boot() -> Container {
        Container::boot_with(Options::default())
    }

    /// Boots a container and returns once s6-svscan is PID 1 of its
    /// namespace and reads its control FIFO.
    ///
    /// # Panics
    /// With an explanation when not root, when a host tool or a built binary
    /// is missing, on invalid options, or when the boot fails (the message
    /// carries the boot script's trace).
    pub fn boot_with(opts: Options) -> Container {
        if let Err(problem) = opts.check() {
            panic!("hermes-s6-emu: invalid Options: {problem}");
        }
        check_host();
        let userland = Userland::get();
        check_userland(userland);
        let binaries = opts.binaries.clone().unwrap_or_else(Paths::locate);
        let base = std::env::temp_dir();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep_stale_temp_dirs(&base));
        let dir = create_temp_dir(&base);
        // From here on the container exists, so a later panic still tears it down.
        let mut container = Container {
            volume: dir.join("volume"),
            dir,
            opts,
            binaries,
            instance: None,
            syslog: None,
            boots: 0,
            boot_log: Vec::new(),
        };
        if let Err(e) = container.prepare() {
            panic!(
                "hermes-s6-emu: cannot prepare {}: {e}",
                container.dir.display()
            );
        }
        container.start();
        container
    }

    /// Writes everything the boot script reads, once per container.
    fn prepare(&mut self) -> io::Result<()> {
        DirBuilder::new().mode(0o755).create(&self.volume)?;
        fs::set_permissions(&self.volume, fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(
            &self.volume,
            Some(self.opts.hermes_uid),
            Some(self.opts.hermes_gid),
        )?;
        DirBuilder::new()
            .mode(0o755)
            .create(self.dir.join("root"))?;
        rootfs::stage(&self.dir, &self.opts, &Userland::get().root)?;
        fs::write(self.dir.join("boot.sh"), BOOT_SCRIPT)?;
        if self.opts.syslog {
            self.syslog = Some(SyslogSink::bind(&self.dir.join("devlog"))?);
        }
        Ok(())
    }

    /// Starts the namespace and waits until s6-svscan is ready.
    fn start(&mut self) {
        let started = Instant::now();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("svscan.log"))
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot open svscan.log: {e}"));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot open svscan.log: {e}"));
        let mut command = Command::new(SETPRIV);
        // pdeathsig: if the test process dies, unshare dies; --kill-child then
        // kills the namespace's PID 1, and with it the whole namespace.
        command
            .args(["--pdeathsig", "KILL", "--", UNSHARE])
            .args(["--mount", "--pid", "--fork", "--propagation", "private"])
            .args(["--kill-child=SIGKILL", "--", "/bin/sh"])
            .arg(self.dir.join("boot.sh"))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("EMU_DIR", &self.dir)
            .env(
                "SERVICE_CAP",
                self.opts
                    .service_cap
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
            .env("USERLAND", &Userland::get().root)
            .env("HELPER", &self.binaries.helper)
            .env("HELPER_GID", self.opts.hermes_gid.to_string())
            .env(
                "HELPER_MODE",
                format!("{:o}", self.opts.installed_helper_mode()),
            )
            .env("NO_NEW_PRIVS", if self.opts.no_setuid { "1" } else { "0" })
            .env("NON_ROOT", if self.opts.non_root { "1" } else { "0" })
            .env("HERMES_UID", self.opts.hermes_uid.to_string())
            .env("HERMES_GID", self.opts.hermes_gid.to_string())
            .env(
                "BOUNDING_SET",
                self.opts.bounding_set.as_deref().unwrap_or_default(),
            )
            .env("FRONTEND", &self.binaries.frontend)
            .env("STANDIN", &self.binaries.standin)
            .env("SYSLOG", if self.opts.syslog { "1" } else { "0" })
            .env("CONTAINER_PATH", self.opts.path())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let unshare = spawner::spawn(command)
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot start {SETPRIV}: {e}"));
        self.instance = Some(Instance {
            unshare,
            init_pid: 0,
            pid_ns: None,
        });
        self.boots += 1;
        self.wait_until_ready(started);
        let took = started.elapsed();
        self.stage2();

        if took > SLOW_BOOT {
            eprintln!(
                "hermes-s6-emu: slow boot: {} ms (usually well under 300 ms)",
                took.as_millis()
            );
        }
    }

    fn wait_until_ready(&mut self, started: Instant) {
        loop {
            let instance = self.instance.as_mut().expect("instance just started");
            if let Ok(Some(status)) = instance.unshare.try_wait() {
                panic!(
                    "hermes-s6-emu: the container's boot failed ({status}).\n{}",
                    self.diagnostics()
                );
            }
            if instance.init_pid == 0
                && let Some(&pid) = procfs::children_of(instance.unshare.id()).first()
            {
                instance.init_pid = pid;
                instance.pid_ns = PidNamespace::of(pid);
            }
            let init = instance.init_pid;
            if init != 0
                && procfs::comm_of(init).as_deref() == Some("s6-svscan")
                && procfs::innermost_pid_of(init) == Some(1)
                && control_fifo_has_reader(&self.host_path("/run/service/.s6-svscan/control"))
            {
                break;
            }
            if started.elapsed() > BOOT_TIMEOUT {
                panic!(
                    "hermes-s6-emu: s6-svscan not ready after {} s.\n{}",
                    BOOT_TIMEOUT.as_secs(),
                    self.diagnostics()
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
        let libexec = procfs::mount_options(self.init_pid(), "/usr/libexec").unwrap_or_default();
        if libexec.split(',').any(|o| o == "nosuid") {
            panic!(
                "hermes-s6-emu: /usr/libexec is mounted nosuid in the container ({libexec}); \
                 the setuid helper could not work"
            );
        }
    }

    /// s6-overlay's stage 2, which follows s6-svscan's start on every boot
    /// (restarts included): with [`Options::cont_init`], the image's files
    /// are installed and its `/etc/cont-init.d/*` scripts run here, as
    /// [`Container::init_user`] (root, or hermes in a non-root container),
    /// in byte order, with s6-svscan already up; the first failure stops
    /// the boot as `S6_BEHAVIOUR_IF_STAGE2_FAILS=2` would.
    fn stage2(&mut self) {
        if !self.opts.cont_init {
            self.seal_root();
            return;
        }
        let root = self.host_path("/");
        if let Err(e) = stage2::install_rootfs(&root) {
            panic!(
                "hermes-s6-emu: cannot install {}/rootfs in the container: {e}",
                stage2::DOCKER_DIR
            );
        }
        self.seal_root();
        let scripts = stage2::cont_init_scripts(&root).unwrap_or_else(|e| {
            panic!(
                "hermes-s6-emu: cannot list {} in the container: {e}",
                stage2::CONT_INIT_DIR
            )
        });
        for script in scripts {
            let started = Instant::now();
            let mut exec = self.exec(self.init_user(), &[script.as_str()]).cwd("/");
            if self.opts.keep_env {
                // S6_KEEP_ENV=1: they inherit the container's environment.
                for (key, value) in self.opts.init_environment() {
                    exec = exec.env(key, value);
                }
            }
            let out = exec.output();
            let run = ContInitRun {
                boot: self.boots,
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

    /// [`Options::read_only_root`]: the image's files are all in place, so
    /// its root (`/`, `/usr/local`, `/usr/libexec`; `/usr` is read-only
    /// already) becomes read-only, as the image's layers are under
    /// `readOnlyRootFilesystem`. Done from outside, with every capability:
    /// the container's own root may lack `CAP_SYS_ADMIN`.
    fn seal_root(&self) {
        if !self.opts.read_only_root {
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
        let source = self.host_path(stage2::S6RC_SOURCE_DIR);
        for name in stage2::user_longruns(&source).unwrap_or_else(|e| {
            panic!("hermes-s6-emu: cannot read the image's s6-rc services: {e}")
        }) {
            if crate::S6RC_SERVICES.iter().any(|(s6rc, _)| *s6rc == name) {
                continue;
            }
            let servicedir = format!("/run/s6-rc/servicedirs/{name}");
            let host_dir = self.host_path(&servicedir);
            let notifies = source.join(&name).join("notification-fd").exists();
            stage2::install_servicedir(&source.join(&name), &host_dir)
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
    /// (empty unless [`Options::cont_init`]): exit status and output of
    /// each, like the `cont-init: info: ... exited N` lines of
    /// `docker logs`.
    pub fn boot_log(&self) -> &[ContInitRun] {
        &self.boot_log
    }

    /// How many times this container has booted (1 after
    /// [`Container::boot_with`], plus one per [`Container::restart`]).
    pub fn boots(&self) -> u32 {
        self.boots
    }

    fn diagnostics(&self) -> String {
        let boot_log = fs::read_to_string(self.dir.join("boot.log")).unwrap_or_default();
        format!(
            "--- boot script trace (last lines) ---\n{}\n--- s6-svscan output ---\n{}",
            tail(&boot_log, 30),
            tail(&self.svscan_log(), 30)
        )
    }

    /// Like `docker restart`: everything in the container is killed, then it
    /// boots again with the same options. `/run` (and everything else that
    /// is not the volume) starts fresh; `/opt/data` is kept, as are the
    /// syslog records collected so far.
    ///
    /// Paths from [`Container::host_path`] and pids taken before the restart
    /// refer to the old instance.
    ///
    /// # Panics
    /// When a process of the old namespace survives, or the new boot fails.
    pub fn restart(&mut self) {
        if let Err(problem) = self.stop_instance() {
            panic!("hermes-s6-emu: restart: {problem}");
        }
        self.start();
    }

    /// Kills the namespace (SIGKILL to its PID 1 makes the kernel kill every
    /// process in it), reaps `unshare`, and checks that nothing of the
    /// namespace is left.
    fn stop_instance(&mut self) -> Result<(), String> {
        let Some(mut instance) = self.instance.take() else {
            return Ok(());
        };
        if let Ok(None) = instance.unshare.try_wait() {
            let target = match instance.init_pid {
                0 => instance.unshare.id(),
                pid => pid,
            };
            let _ = kill(Pid::from_raw(target as i32), Signal::SIGKILL);
        }
        instance
            .unshare
            .wait()
            .map_err(|e| format!("cannot reap the container's unshare process: {e}"))?;
        let Some(pid_ns) = instance.pid_ns else {
            return Ok(());
        };
        let deadline = Instant::now() + TEARDOWN_TIMEOUT;
        loop {
            let left = pid_ns.processes();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let names: Vec<String> = left
                    .iter()
                    .map(|&p| format!("{p} ({})", procfs::comm_of(p).unwrap_or_default()))
                    .collect();
                return Err(format!(
                    "processes of the container's PID namespace survived its teardown: {}",
                    names.join(", ")
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs `argv` in the container as `user` and waits for it.
    ///
    /// The environment is clean: `PATH` ([`crate::CONTAINER_PATH`]), `HOME`,
    /// `USER`, `LOGNAME`, then `env`. The working directory is `/opt/data`.
    /// `stdin` is the given bytes, or `/dev/null`. For more control
    /// (spawning, other cwd, `no_new_privs`, groups) use [`Container::exec`].
    pub fn run_as(
        &self,
        user: User,
        argv: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&[u8]>,
    ) -> Output {
        let mut exec = self.exec(user, argv);
        for (key, value) in env {
            exec = exec.env(key, value);
        }
        if let Some(bytes) = stdin {
            exec = exec.stdin_bytes(bytes);
        }
        exec.output()
    }

    /// A command to run in the container as `user`; configure, then
    /// `.output()` or `.spawn()`.
    pub fn exec<S: AsRef<OsStr>>(&self, user: User, argv: &[S]) -> Exec<'_> {
        Exec::new(self, user, argv)
    }

    /// `/bin/sh -c script` as `user`.
    pub fn sh(&self, user: User, script: &str) -> Output {
        self.exec(user, &["/bin/sh", "-c", script]).output()
    }

    /// The host path of `path_in_container` (through `/proc/<init>/root`),
    /// for checks and set-up done by the test process itself, as root.
    pub fn host_path(&self, path_in_container: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.init_pid()))
            .join(path_in_container.trim_start_matches('/'))
    }

    /// The `/run/pwned*` files an escalation attempt leaves behind when it
    /// gets code run as root: the attack scripts of the tests write them.
    pub fn pwned(&self) -> Vec<String> {
        fs::read_dir(self.host_path("/run"))
            .expect("hermes-s6-emu: cannot list /run")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pwned"))
            .collect()
    }

    /// Whether s6-supervise is running the `finish` script of the service at
    /// `/run/service/<service>`: bit 1 of its status file's flags byte, the
    /// last. `s6-svstat -o` shows such a service as plainly down.
    pub fn finishing(&self, service: &str) -> bool {
        std::fs::read(self.host_path(&format!("{SCAN_DIR}/{service}/supervise/status")))
            .ok()
            .and_then(|status| status.last().copied())
            .is_some_and(|flags| flags & 0b10 != 0)
    }

    /// Writes a root-owned file in the container (through its host path),
    /// replacing it atomically, with `mode`. Parent directories must exist.
    pub fn write_file(&self, path_in_container: &str, contents: impl AsRef<[u8]>, mode: u32) {
        let target = self.host_path(path_in_container);
        let name = target.file_name().unwrap_or_else(|| {
            panic!("hermes-s6-emu: write_file: {path_in_container:?} names no file")
        });
        let tmp = target.with_file_name(format!(".{}.hermes-emu-tmp", name.to_string_lossy()));
        let result = fs::write(&tmp, contents)
            .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)))
            .and_then(|()| fs::rename(&tmp, &target));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            panic!("hermes-s6-emu: cannot write {path_in_container} in the container: {e}");
        }
    }

    /// Creates a root-owned service `/run/service/<name>` (hermes's with
    /// [`Options::non_root`]) with `run` (and `finish` if given) scripts,
    /// has s6-svscan pick it up, and waits until its s6-supervise is
    /// running.
    ///
    /// For one of s6-overlay's s6-rc services ([`crate::S6RC_SERVICES`]:
    /// `main-hermes`, `dashboard`), which every container has, down, this
    /// does what `s6-rc change` does instead: the scripts replace the
    /// stand-in's in its `/run/s6-rc/servicedirs/<name>`, its `down` file
    /// goes, and the service is brought up (`s6-svc -u`).
    pub fn add_service(&self, name: &str, run: &str, finish: Option<&str>) {
        let dir = format!("{SCAN_DIR}/{name}");
        if crate::S6RC_SERVICES.iter().any(|(s6rc, _)| *s6rc == name) {
            let servicedir = format!("/run/s6-rc/servicedirs/{name}");
            self.write_file(&format!("{servicedir}/run"), run, 0o755);
            if let Some(finish) = finish {
                self.write_file(&format!("{servicedir}/finish"), finish, 0o755);
            }
            let _ = fs::remove_file(self.host_path(&format!("{servicedir}/down")));
            self.give_to_init_user(&servicedir);
            self.run_as(self.init_user(), &["s6-svc", "-u", &dir], &[], None)
                .assert_success();
            return;
        }
        let staging = format!("{SCAN_DIR}/.{name}.hermes-emu-new");
        let host_staging = self.host_path(&staging);
        fs::create_dir(&host_staging)
            .and_then(|()| fs::set_permissions(&host_staging, fs::Permissions::from_mode(0o755)))
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot create {staging}: {e}"));
        self.write_file(&format!("{staging}/run"), run, 0o755);
        if let Some(finish) = finish {
            self.write_file(&format!("{staging}/finish"), finish, 0o755);
        }
        self.give_to_init_user(&staging);
        fs::rename(&host_staging, self.host_path(&dir))
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot publish {dir}: {e}"));
        self.rescan_until_supervised(&dir);
    }

    /// Has s6-svscan scan now, and waits until `dir` has its s6-supervise.
    fn rescan_until_supervised(&self, dir: &str) {
        self.run_as(
            self.init_user(),
            &["s6-svscanctl", "-a", SCAN_DIR],
            &[],
            None,
        )
        .assert_success();
        self.wait_for(
            Duration::from_secs(10),
            &format!("s6-supervise on {dir}"),
            || {
                self.run_as(self.init_user(), &["s6-svok", dir], &[], None)
                    .success()
            },
        );
    }

    /// Who PID 1 runs as, and so s6-svscan, every s6-supervise, every
    /// service and (with [`Options::cont_init`]) the cont-init scripts:
    /// [`User::Hermes`] in a non-root container ([`Options::non_root`]),
    /// else [`User::Root`]. The emulation's own `s6-svscanctl`, `s6-svc`,
    /// `s6-svok` and `s6-svwait` run as this user too.
    pub fn init_user(&self) -> User {
        if self.opts.non_root {
            User::Hermes
        } else {
            User::Root
        }
    }

    /// In a non-root container, gives what the emulation made under
    /// `path_in_container` (root's so far) to hermes, as s6-overlay and
    /// s6-rc, running as hermes there, would have made it.
    fn give_to_init_user(&self, path_in_container: &str) {
        if !self.opts.non_root {
            return;
        }
        let (uid, gid) = (self.opts.hermes_uid, self.opts.hermes_gid);
        nonroot::give_tree(&self.host_path(path_in_container), uid, gid).unwrap_or_else(|e| {
            panic!("hermes-s6-emu: cannot give {path_in_container} to uid {uid}: {e}")
        });
    }

    /// The host directory bind-mounted at `/opt/data`, owned by hermes.
    /// It survives [`Container::restart`] and is removed on drop.
    pub fn volume(&self) -> &Path {
        &self.volume
    }

    /// The per-container temp dir (holds the volume, logs and boot files).
    pub fn temp_dir(&self) -> &Path {
        &self.dir
    }

    /// Host pid of the namespace's PID 1 (s6-svscan).
    pub fn init_pid(&self) -> u32 {
        self.instance.as_ref().map_or(0, |i| i.init_pid)
    }

    /// The container's PID namespace, held open: it can be asked for its
    /// processes even after a restart or drop (see [`PidNamespace`]).
    ///
    /// # Panics
    /// When the container is not running.
    pub fn pid_namespace(&self) -> PidNamespace {
        PidNamespace::of(self.init_pid()).expect("hermes-s6-emu: the container's PID 1 is gone")
    }

    /// The options this container was booted with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The host binaries installed in the container.
    pub fn binaries(&self) -> &Paths {
        &self.binaries
    }

    /// uid of `user` in this container.
    pub fn uid(&self, user: User) -> u32 {
        match user {
            User::Root => 0,
            User::Hermes => self.opts.hermes_uid,
            User::Intruder => INTRUDER_UID,
        }
    }

    /// Primary gid of `user` in this container.
    pub fn gid(&self, user: User) -> u32 {
        match user {
            User::Root => 0,
            User::Hermes => self.opts.hermes_gid,
            User::Intruder => INTRUDER_GID,
        }
    }

    /// The raw datagrams received on `/dev/log` so far (all boots), each as
    /// a string, including everything sent before this call.
    ///
    /// # Panics
    /// When the container was booted without [`Options::syslog`].
    pub fn syslog_records(&self) -> Vec<String> {
        self.syslog
            .as_ref()
            .expect("hermes-s6-emu: syslog_records needs Options { syslog: true, .. }")
            .records()
    }

    /// What s6-svscan and the services without a logger wrote to their
    /// stdout and stderr (all boots), like `docker logs`.
    pub fn svscan_log(&self) -> String {
        let bytes = fs::read(self.dir.join("svscan.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Polls `cond` (quickly at first, then every 20 ms) until it holds.
    ///
    /// # Panics
    /// After `timeout`, naming `what` and showing the tail of the svscan log.
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if !poll_until(timeout, cond) {
            panic!(
                "hermes-s6-emu: timed out after {:?} waiting for {what}\n--- s6-svscan output (last lines) ---\n{}",
                timeout,
                tail(&self.svscan_log(), 20)
            );
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        if let Err(problem) = self.stop_instance() {
            problems.push(problem);
        }
        self.syslog = None;
        let mounts = procfs::host_mounts_referencing(&self.dir);
        if !mounts.is_empty() {
            problems.push(format!(
                "mounts referencing {} leaked into the host: {mounts:?}",
                self.dir.display()
            ));
        }
        if std::env::var_os(KEEP_ENV).is_some_and(|v| v == "1") {
            let _ = fs::write(self.dir.join(KEEP_MARKER), "");
            eprintln!(
                "hermes-s6-emu: {KEEP_ENV}=1: kept the container's files in {}",
                self.dir.display()
            );
        } else if mounts.is_empty()
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            problems.push(format!("cannot remove {}: {e}", self.dir.display()));
        }
        if problems.is_empty() {
            return;
        }
        let report = format!("hermes-s6-emu: teardown: {}", problems.join("; "));
        if thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
/// Starts at 1 ms between polls and backs off to 20 ms.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_until(timeout, cond)
}

fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Returns true (and says so loudly on stderr) when the test cannot run
/// because the process is not root: `if skip_unless_root("name") { return; }`.
///
/// With `HERMES_EMU_REQUIRE_ROOT=1` it panics instead, so CI cannot pass by
/// skipping.
pub fn skip_unless_root(test_name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    if std::env::var_os(REQUIRE_ROOT_ENV).is_some_and(|v| v == "1") {
        panic!("hermes-s6-emu: {test_name} needs root and {REQUIRE_ROOT_ENV}=1 is set");
    }
    eprintln!(
        "\n{bar}\nSKIPPED (needs root): {test_name}\n  the container emulation needs root for mount and PID namespaces\n{bar}",
        bar = "!".repeat(72)
    );
    true
}

fn check_userland(userland: &Userland) {
    for tool in USERLAND_TOOLS {
        if !userland.path(tool).exists() {
            panic!(
                "hermes-s6-emu: {tool} is missing in the userland of s6 {} ({}); the \
                 emulation needs util-linux, s6 and execline there",
                userland.version.label(),
                userland.root.display()
            );
        }
    }
}

fn check_host() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "hermes-s6-emu: booting a container needs root (mount and PID namespaces); \
             guard the test with `if skip_unless_root(..) {{ return; }}`"
        );
    }
    for tool in HOST_TOOLS {
        if !Path::new(tool).exists() {
            panic!(
                "hermes-s6-emu: {tool} is missing; the emulation needs util-linux, s6 and \
                 execline (apt-get install util-linux s6 execline)"
            );
        }
    }
    // Inherited by every process the emulation starts; the kernel then
    // ignores setuid bits, and the helper could never become root.
    if procfs::status_field(std::process::id(), "NoNewPrivs:").as_deref() == Some("1") {
        panic!(
            "hermes-s6-emu: the test process runs with no_new_privs set, so the setuid helper \
             cannot work in the emulation; run the tests outside that sandbox"
        );
    }
}

/// Whether s6-svscan has its control FIFO open for reading: a non-blocking
/// write-open fails with ENXIO until it does.
fn control_fifo_has_reader(fifo: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)
        .is_ok()
}

fn create_temp_dir(base: &Path) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!(
                "hermes-s6-emu: cannot create a temp dir in {}: {e}",
                base.display()
            ),
        }
    }
}

/// Removes temp dirs left by test processes that died before their
/// containers' teardown could run (their namespaces died with them).
fn sweep_stale_temp_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let owner_gone = !Path::new(&format!("/proc/{owner}")).exists();
        if owner_gone
            && !dir.join(KEEP_MARKER).exists()
            && procfs::host_mounts_referencing(&dir).is_empty()
        {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
