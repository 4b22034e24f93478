//! Running commands inside a container as one of its users.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::host::NSENTER;
use crate::{CONTAINER_PATH, Container, HERMES_HOME, User, procfs};

/// Programs the emulation runs on the way into the container.
const LAUNCHERS: &[&str] = &["nsenter", "setpriv", "env"];

/// How long [`Exec::output`] lets a command run before killing it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
enum Input {
    Null,
    Bytes(Vec<u8>),
    Piped,
}

impl Container {
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
}

/// A command to run in a container; made by [`Container::exec`].
///
/// It is started as `nsenter` (into the container's mount and PID namespaces
/// and root) → `setpriv` (drop to the user; skipped for root unless asked
/// for) → `env -i -C <cwd>` (clean environment, working directory) → `argv`.
/// `argv[0]` is looked up in [`CONTAINER_PATH`]. Exit codes and
/// terminating signals of the command come back unchanged; failures to get
/// there show as `env`'s 125 (bad working directory), 126 (not executable)
/// or 127 (not found), or `nsenter`'s and `setpriv`'s 1, with a message on
/// stderr.
#[derive(Debug, Clone)]
#[must_use = "an Exec does nothing until .output() or .spawn()"]
pub struct Exec<'c> {
    container: &'c Container,
    user: User,
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Input,
    cwd: String,
    no_new_privs: bool,
    groups: Option<Vec<u32>>,
    setpriv_args: Vec<OsString>,
    timeout: Duration,
}

impl<'c> Exec<'c> {
    pub(crate) fn new<S: AsRef<OsStr>>(container: &'c Container, user: User, argv: &[S]) -> Self {
        let argv: Vec<OsString> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        match argv.first() {
            None => panic!("hermes-s6-emu: exec needs a program"),
            // `env` would take it for an assignment.
            Some(program) if program.to_string_lossy().contains('=') => {
                panic!("hermes-s6-emu: a program name cannot contain '=': {program:?}")
            }
            Some(_) => {}
        }
        Exec {
            container,
            user,
            argv,
            env: Vec::new(),
            stdin: Input::Null,
            cwd: HERMES_HOME.to_owned(),
            no_new_privs: false,
            groups: None,
            setpriv_args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds (or, given again, overrides) an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let key = key.as_ref();
        if key.is_empty() || key.to_string_lossy().contains('=') {
            panic!("hermes-s6-emu: invalid environment variable name {key:?}");
        }
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Feeds `bytes` on stdin, then closes it.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Stdin is `/dev/null` (the default).
    pub fn stdin_null(mut self) -> Self {
        self.stdin = Input::Null;
        self
    }

    /// Stdin is a pipe left to the caller (`spawned.child.stdin`).
    pub fn stdin_piped(mut self) -> Self {
        self.stdin = Input::Piped;
        self
    }

    /// Working directory in the container (default `/opt/data`).
    pub fn cwd(mut self, dir: &str) -> Self {
        self.cwd = dir.to_owned();
        self
    }

    /// Sets `no_new_privs`: setuid bits are then ignored, as in a container
    /// run with `allowPrivilegeEscalation: false`. Always on in a container
    /// booted with [`crate::Options::no_setuid`].
    pub fn no_new_privs(mut self) -> Self {
        self.no_new_privs = true;
        self
    }

    /// Exactly these supplementary groups instead of the user's groups from
    /// `/etc/group` (empty: none at all).
    pub fn groups(mut self, gids: &[u32]) -> Self {
        self.groups = Some(gids.to_vec());
        self
    }

    /// An extra `setpriv` option (e.g. `--bounding-set=-all`,
    /// `--inh-caps=...`), placed before the command.
    pub fn setpriv_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.setpriv_args.push(arg.as_ref().to_owned());
        self
    }

    /// How long [`Exec::output`] waits before killing the command and
    /// panicking (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The full host command line, for callers that need `std::process`
    /// control; stdio is left to them.
    pub fn command(&self) -> Command {
        let container = self.container;
        let mut cmd = Command::new(NSENTER);
        cmd.env_clear()
            .current_dir("/")
            .arg(format!("--target={}", container.init_pid()))
            .args(["--mount", "--pid", "--root", "--"]);
        let drop_user = self.user != User::Root;
        let no_new_privs = self.no_new_privs || container.options().no_setuid;
        let bounding_set = container.options().bounding_set.as_deref();
        if drop_user
            || no_new_privs
            || self.groups.is_some()
            || bounding_set.is_some()
            || !self.setpriv_args.is_empty()
        {
            cmd.arg("/usr/bin/setpriv");
            if drop_user {
                cmd.arg(format!("--reuid={}", container.uid(self.user)))
                    .arg(format!("--regid={}", container.gid(self.user)));
            }
            match &self.groups {
                Some(gids) if gids.is_empty() => {
                    cmd.arg("--clear-groups");
                }
                Some(gids) => {
                    let list: Vec<String> = gids.iter().map(u32::to_string).collect();
                    cmd.arg(format!("--groups={}", list.join(",")));
                }
                None if drop_user => {
                    cmd.arg("--init-groups");
                }
                None => {}
            }
            if no_new_privs {
                cmd.arg("--no-new-privs");
            }
            if let Some(set) = bounding_set {
                cmd.arg(format!("--bounding-set={set}"));
            }
            cmd.args(&self.setpriv_args).arg("--");
        }
        cmd.args(["/usr/bin/env", "-i", "-C", &self.cwd, "--"])
            .arg(format!("PATH={CONTAINER_PATH}"))
            .arg(format!("HOME={}", self.user.home()))
            .arg(format!("USER={}", self.user.name()))
            .arg(format!("LOGNAME={}", self.user.name()));
        for (key, value) in &self.env {
            let mut assignment = key.clone();
            assignment.push("=");
            assignment.push(value);
            cmd.arg(assignment);
        }
        cmd.args(&self.argv);
        cmd
    }

    fn describe(&self) -> String {
        let argv: Vec<String> = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("[{}] as {}", argv.join(" "), self.user.name())
    }

    /// Starts the command with stdout and stderr piped.
    ///
    /// # Panics
    /// When `nsenter` cannot be started.
    pub fn spawn(self) -> Spawned {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // Its own process group, which everything it starts inherits (also
        // across nsenter's fork into the container, and after a parent dies
        // and the orphan goes to the container's init): the timeout kills
        // the group, so no leftover can hold the output pipes open forever.
        cmd.process_group(0);
        cmd.stdin(match self.stdin {
            Input::Null => Stdio::null(),
            Input::Bytes(_) | Input::Piped => Stdio::piped(),
        });
        let description = self.describe();
        let program_is_a_launcher = Path::new(&self.argv[0])
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| LAUNCHERS.contains(&name));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot start {description}: {e}"));
        let feeder = match self.stdin {
            Input::Bytes(bytes) => {
                let mut pipe = child.stdin.take().expect("stdin is piped");
                Some(thread::spawn(move || {
                    // The command may exit without reading it all.
                    let _ = pipe.write_all(&bytes);
                }))
            }
            Input::Null | Input::Piped => None,
        };
        Spawned {
            child,
            description,
            program_is_a_launcher,
            timeout: self.timeout,
            feeder,
        }
    }

    /// Runs the command to completion and collects its output.
    ///
    /// # Panics
    /// When it runs longer than the timeout (it is killed first).
    pub fn output(self) -> Output {
        self.spawn().wait_output()
    }
}

/// A command running in a container. `child` is the host-side `nsenter`,
/// whose exit status mirrors the command's; the command itself runs as its
/// child, inside the namespace ([`Spawned::inner_pid`]).
#[derive(Debug)]
pub struct Spawned {
    pub child: Child,
    description: String,
    program_is_a_launcher: bool,
    timeout: Duration,
    feeder: Option<JoinHandle<()>>,
}

impl Spawned {
    /// Host pid of the command inside the container, once it runs the
    /// command itself rather than the emulation's `setpriv` or `env` (for a
    /// command that is itself one of those, as soon as it exists).
    ///
    /// # Panics
    /// When it does not appear within 5 s (it exited, or never started).
    pub fn inner_pid(&self) -> u32 {
        let nsenter = self.child.id();
        let mut found = None;
        crate::wait_until(Duration::from_secs(5), || {
            found = procfs::children_of(nsenter).first().copied();
            found.is_some_and(|pid| {
                self.program_is_a_launcher
                    || procfs::comm_of(pid).is_some_and(|comm| !LAUNCHERS.contains(&comm.as_str()))
            })
        });
        found.unwrap_or_else(|| {
            panic!(
                "hermes-s6-emu: {} has no process in the container",
                self.description
            )
        })
    }

    /// Sends `signal` to the command inside the container (signalling
    /// `child` would only reach `nsenter`).
    pub fn signal(&self, signal: Signal) {
        let pid = self.inner_pid();
        kill(Pid::from_raw(pid as i32), signal)
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot signal {pid}: {e}"));
    }

    /// Waits for the command and collects its output.
    ///
    /// # Panics
    /// When it runs longer than the timeout (it is killed first), or cannot
    /// be waited for.
    pub fn wait_output(self) -> Output {
        let description = self.description.clone();
        let raw = self
            .wait_with_output()
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot wait for {description}: {e}"));
        Output::new(description, raw)
    }

    /// [`Child::wait_with_output`], with the timeout of [`Exec::timeout`].
    ///
    /// # Panics
    /// When it runs longer than the timeout (it is killed first).
    pub fn wait_with_output(mut self) -> io::Result<std::process::Output> {
        let nsenter = self.child.id();
        let timed_out = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = {
            let timed_out = Arc::clone(&timed_out);
            let timeout = self.timeout;
            thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                    timed_out.store(true, Ordering::SeqCst);
                    let _ = killpg(Pid::from_raw(nsenter as i32), Signal::SIGKILL);
                }
            })
        };
        let result = self.child.wait_with_output();
        let _ = done_tx.send(());
        let _ = watchdog.join();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
        if timed_out.load(Ordering::SeqCst) {
            let partial = result.map(|raw| Output::new(self.description, raw));
            panic!(
                "hermes-s6-emu: killed after {:?} (timeout): {partial:?}",
                self.timeout
            );
        }
        result
    }

    /// The host-side `nsenter` process, for code that needs a plain
    /// [`Child`].
    pub fn into_child(self) -> Child {
        self.child
    }
}

/// A `Spawned` can be used where a [`Child`] is expected (`id`, `kill`,
/// `wait`, `stdin`, ...); those act on the host-side `nsenter`.
impl Deref for Spawned {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Result of a command run in a container.
#[derive(Clone)]
pub struct Output {
    pub status: ExitStatus,
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
    stdout_bytes: Vec<u8>,
    stderr_bytes: Vec<u8>,
    description: String,
}

impl Output {
    fn new(description: String, raw: std::process::Output) -> Output {
        Output {
            status: raw.status,
            code: raw.status.code(),
            signal: raw.status.signal(),
            stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
            stdout_bytes: raw.stdout,
            stderr_bytes: raw.stderr,
            description,
        }
    }

    /// Exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_bytes(&self) -> &[u8] {
        &self.stdout_bytes
    }

    pub fn stderr_bytes(&self) -> &[u8] {
        &self.stderr_bytes
    }

    /// Panics, showing the command and its output, unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(self.success(), "command failed: {self:?}");
        self
    }

    /// Panics, showing the command and its output, unless it exited `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:?}");
        self
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.description)?;
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit {code}")?,
            (None, Some(signal)) => write!(f, "killed by signal {signal}")?,
            (None, None) => write!(f, "{}", self.status)?,
        }
        write!(
            f,
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}
