//! The emulated container: its boot (the namespace started, s6-svscan
//! waited for as PID 1), restart and teardown, and its paths on the host.
//! The other `impl Container` blocks sit with their subjects: s6-overlay's
//! stage 2 in `stage2`, services and s6 control in `services`, commands in
//! `exec`, logs, records and waits in `diagnostics`. What the host must
//! offer, and the temp dirs, are in `host`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::host::{self, KEEP_ENV, KEEP_MARKER, SETPRIV, UNSHARE};
use crate::paths::Paths;
use crate::procfs::{self, PidNamespace};
use crate::rootfs;
use crate::spawner;
use crate::stage2::ContInitRun;
use crate::syslog::SyslogSink;
use crate::userland::Userland;
use crate::{INTRUDER_GID, INTRUDER_UID, Options, User};

const BOOT_SCRIPT: &str = include_str!("boot.sh");

const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
/// Boots normally take well under 300 ms; only slower ones are reported.
const SLOW_BOOT: Duration = Duration::from_secs(1);
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub(crate) syslog: Option<SyslogSink>,
    /// Boots so far (the current one included).
    boots: u32,
    /// Every cont-init run of every boot, in order.
    pub(crate) boot_log: Vec<ContInitRun>,
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
        host::check_host();
        let userland = Userland::get();
        host::check_userland(userland);
        let binaries = opts.binaries.clone().unwrap_or_else(Paths::locate);
        let base = std::env::temp_dir();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| host::sweep_stale_temp_dirs(&base));
        let dir = host::create_temp_dir(&base);
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

    /// How many times this container has booted (1 after
    /// [`Container::boot_with`], plus one per [`Container::restart`]).
    pub fn boots(&self) -> u32 {
        self.boots
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

    /// The host path of `path_in_container` (through `/proc/<init>/root`),
    /// for checks and set-up done by the test process itself, as root.
    pub fn host_path(&self, path_in_container: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.init_pid()))
            .join(path_in_container.trim_start_matches('/'))
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

/// Whether s6-svscan has its control FIFO open for reading: a non-blocking
/// write-open fails with ENXIO until it does.
fn control_fifo_has_reader(fifo: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)
        .is_ok()
}
