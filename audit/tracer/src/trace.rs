//! Runs each operation of the real setuid helper under `strace` inside the
//! container emulation and copies the traces out.
//!
//! strace runs as root in the container and starts the helper with
//! `-u hermes` (or `-u intruder`): the command runs with that user's uids
//! and groups, and because the tracer is root the kernel still honors the
//! setuid bit, so the helper runs exactly as when hermes calls it.

use crate::OPS;
use hermes_s6_emu::{Container, Options, Output, Paths, User};
use std::path::{Path, PathBuf};
use std::time::Duration;

const HELPER: &str = hermes_s6_emu::HELPER_PATH;
const WAIT: Duration = Duration::from_secs(15);
/// A payload with an ordinary variable and an empty one (the two shapes the
/// slot's `env/` writer treats differently).
const PAYLOAD: &[u8] = br#"{"AUDIT_TOKEN": "not-a-real-secret", "AUDIT_EMPTY": ""}"#;

/// One traced operation.
#[derive(Debug, Clone)]
pub struct Traced {
    pub op: String,
    pub expected_exit: i32,
    pub output: Output,
    pub trace_file: PathBuf,
}

/// An operation: its name in `syscalls.allow`, who calls, the arguments,
/// whether a payload goes on stdin, and the exit status it must end with.
struct Step {
    op: &'static str,
    user: User,
    args: &'static [&'static str],
    payload: bool,
    /// The process state the caller hands over: a command run as root that
    /// sets it up and then executes the rest of its arguments (strace and
    /// the helper). Empty for an ordinary call.
    setup: &'static [&'static str],
    /// Variables set for the helper (through strace, which passes them on).
    env: &'static [(&'static str, &'static str)],
    expected_exit: i32,
}

/// fds 0, 1 and 2 closed (the caller controls them).
const CLOSED_FDS: &[&str] = &["sh", "-c", "exec \"$@\" <&- >&- 2>&-", "sh"];
/// fds 0, 1 and 2 all one Unix datagram socket connected to /dev/log: a
/// line written there is a syslog record sent with the helper's (root's)
/// credentials.
const SOCKET_FDS: &[&str] = &[
    "/usr/bin/python3",
    "-c",
    "import os, socket, sys\n\
     s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
     s.connect('/dev/log')\n\
     for fd in (0, 1, 2):\n    os.dup2(s.fileno(), fd)\n\
     os.execvp(sys.argv[1], sys.argv[1:])\n",
];
/// A hard CPU time limit of one second that the helper cannot lift: root
/// without CAP_SYS_RESOURCE in its bounding set (as under Docker's default
/// capability set), so the refusal happens on every machine. strace runs
/// under the same limit; it needs milliseconds of CPU for one call.
const CPU_LIMIT: &[&str] = &[
    "setpriv",
    "--bounding-set=-sys_resource",
    "prlimit",
    "--cpu=1:1",
];

const STEPS: &[Step] = &[
    Step {
        op: "version",
        user: User::Hermes,
        args: &["--version"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    // The socket transport: root runs the helper for s6-sudod with the
    // peer's ids that s6-ipcserverd sets (hermes's, as the emulation
    // creates them).
    Step {
        op: "socket-version",
        user: User::Root,
        args: &["--version"],
        payload: false,
        setup: &[],
        env: &[("IPCREMOTEEUID", "10000"), ("IPCREMOTEEGID", "10000")],
        expected_exit: 0,
    },
    Step {
        op: "refused",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 65,
    },
    Step {
        op: "closed-fds",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: CLOSED_FDS,
        env: &[],
        expected_exit: 65,
    },
    Step {
        op: "socket-fds",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: SOCKET_FDS,
        env: &[],
        expected_exit: 65,
    },
    Step {
        op: "unauthorized",
        user: User::Intruder,
        args: &["start", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 77,
    },
    Step {
        op: "register",
        user: User::Hermes,
        args: &["register", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "register-payload",
        user: User::Hermes,
        args: &["register", "auditb"],
        payload: true,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "rescan",
        user: User::Hermes,
        args: &["rescan"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "start",
        user: User::Hermes,
        args: &["start", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "restart",
        user: User::Hermes,
        args: &["restart", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "cpu-limit",
        user: User::Hermes,
        args: &["stop", "audita"],
        payload: false,
        setup: CPU_LIMIT,
        env: &[],
        expected_exit: 77,
    },
    Step {
        op: "stop",
        user: User::Hermes,
        args: &["stop", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
    Step {
        op: "unregister",
        user: User::Hermes,
        args: &["unregister", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        expected_exit: 0,
    },
];

fn as_root(c: &Container, argv: &[&str]) -> Output {
    c.run_as(User::Root, argv, &[], None)
}

fn svstat(c: &Container, slot: &str) -> Option<(bool, i64)> {
    let out = as_root(
        c,
        &["s6-svstat", "-o", "up,pid", &format!("/run/service/{slot}")],
    );
    if !out.success() {
        return None;
    }
    let mut f = out.stdout.split_whitespace();
    let up = f.next() == Some("true");
    let pid = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((up, pid))
}

fn wait(c: &Container, what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    if hermes_s6_emu::wait_until(WAIT, &mut cond) {
        Ok(())
    } else {
        Err(format!(
            "timed out waiting for {what}; s6-svscan log:\n{}",
            c.svscan_log()
        ))
    }
}

/// What must hold before the step runs, so that it takes the path meant.
fn before(c: &Container, op: &str) -> Result<(), String> {
    match op {
        "start" => wait(c, "gateway-audita supervised", || {
            svstat(c, "gateway-audita").is_some()
        }),
        "restart" => wait(c, "gateway-audita up", || {
            svstat(c, "gateway-audita").is_some_and(|(up, pid)| up && pid > 0)
        }),
        _ => Ok(()),
    }
}

/// What must hold after the step: a refusal left the state as it was.
fn after(c: &Container, op: &str) -> Result<(), String> {
    match op {
        // Refused before anything changed: the gateway is still wanted up.
        "cpu-limit" if c.host_path("/run/service/gateway-audita/down").exists() => {
            Err("cpu-limit: the refused stop left gateway-audita down".to_owned())
        }
        _ => Ok(()),
    }
}

/// Boots a container with `helper` installed setuid (the stand-in gateway,
/// and the CLI if built, from `support`), runs the operations named in `only`
/// (all when empty) under strace, and writes `<out>/<op>.trace`.
pub fn run(
    helper: &Path,
    support: &Path,
    out: &Path,
    only: &[String],
) -> Result<Vec<Traced>, String> {
    if !nix_is_root() {
        return Err("tracing boots the container emulation, which needs root".to_owned());
    }
    for name in only {
        if !OPS.iter().any(|(op, _)| op == name) {
            return Err(format!("unknown operation '{name}'"));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    // The boot script runs elsewhere: absolute paths only.
    let absolute = |p: PathBuf| {
        std::fs::canonicalize(&p).map_err(|e| format!("{}: {e}; build it first", p.display()))
    };
    let standin = absolute(support.join(hermes_s6_emu::STANDIN_BIN))?;
    // The emulation installs the CLI as well; no traced step runs it, so
    // when it is not built the stand-in takes its place.
    let frontend = absolute(support.join(hermes_s6_emu::FRONTEND_BIN)).unwrap_or(standin.clone());
    let paths = Paths {
        helper: absolute(helper.to_owned())?,
        frontend,
        standin,
    };
    let c = Container::boot_with(Options {
        syslog: true,
        binaries: Some(paths),
        ..Options::default()
    });
    let setup = c.sh(
        User::Hermes,
        "mkdir -p /opt/data/profiles/audita /opt/data/profiles/auditb && \
         touch /opt/data/profiles/audita/SOUL.md /opt/data/profiles/auditb/SOUL.md",
    );
    if !setup.success() {
        return Err(format!("cannot create the profiles: {}", setup.stderr));
    }
    let tmp = as_root(&c, &["mkdir", "-p", "/run/audit-traces"]);
    if !tmp.success() {
        return Err(format!("cannot create /run/audit-traces: {}", tmp.stderr));
    }
    let mut traced = Vec::new();
    for step in STEPS {
        let wanted = only.is_empty() || only.iter().any(|o| o == step.op);
        // Steps not asked for still run (untraced) when later ones need
        // their effect, so a partial run sees the same states.
        before(&c, step.op)?;
        let stdin = step.payload.then_some(PAYLOAD);
        if !wanted && !step.setup.is_empty() {
            // A hostile process state makes a refusal, which changes
            // nothing later steps could need.
            continue;
        }
        if !wanted {
            let mut argv = vec![HELPER];
            argv.extend_from_slice(step.args);
            let output = c.run_as(step.user, &argv, step.env, stdin);
            if output.code != Some(step.expected_exit) {
                return Err(format!(
                    "untraced step {} exited {:?}: {}",
                    step.op, output.code, output.stderr
                ));
            }
            continue;
        }
        let inner = format!("/run/audit-traces/{}.trace", step.op);
        let mut argv = Vec::new();
        argv.extend_from_slice(step.setup);
        argv.extend([
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=all",
            // Whole strings: the output and record checks read them.
            "-s",
            "4096",
            "-o",
            &inner,
            "-u",
            step.user.name(),
            HELPER,
        ]);
        argv.extend_from_slice(step.args);
        let output = c.run_as(User::Root, &argv, step.env, stdin);
        let host = c.host_path(&inner);
        let trace_file = out.join(format!("{}.trace", step.op));
        std::fs::copy(&host, &trace_file).map_err(|e| {
            format!(
                "{}: no trace at {} ({e}); strace said: {}",
                step.op,
                host.display(),
                output.stderr
            )
        })?;
        after(&c, step.op)?;
        traced.push(Traced {
            op: step.op.to_owned(),
            expected_exit: step.expected_exit,
            output,
            trace_file,
        });
    }
    Ok(traced)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
