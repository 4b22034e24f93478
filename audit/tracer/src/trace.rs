//! Runs each operation of the real setuid helper under `strace` inside the
//! container emulation and copies the traces out.
//!
//! strace runs as root in the container and starts the helper with
//! `-u hermes` (or `-u intruder`): the command runs with that user's uids
//! and groups, and the helper gets the effective uid of its file's owner,
//! root: strace sets it itself for a setuid program (`setreuid(hermes,
//! root)` before the exec, its emulation of the setuid bit), and the
//! kernel honors the bit anyway for a tracer with CAP_SYS_PTRACE. So the
//! helper runs exactly as when hermes calls it.
//!
//! The owner mode's steps (`no_new_privs`) cannot go through `-u`: its
//! emulation of the setuid bit ignores no_new_privs. There strace itself
//! runs as the caller, with no_new_privs set (`setpriv --no-new-privs`, as
//! hermes-s6 sets it with prctl before it runs the helper in a non-root
//! container): the kernel ignores the setuid bit and the helper runs with
//! its caller's own ids (`via=owner`).
//!
//! Two containers: the default one (s6-svscan and the scan dir root's) for
//! the root-started operations, then a non-root one
//! (`Options { non_root: true, .. }`: s6-svscan runs as hermes, /run is
//! hermes's) for the owner mode's ([`crate::NON_ROOT_CONTAINER`]).

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
    /// The owner transport's call: strace itself runs as the caller, with
    /// no_new_privs set (`setpriv --no-new-privs`, inherited by the helper),
    /// as hermes-s6 sets it on itself: the setuid bit is ignored. Unlike
    /// `setup`, this is how the call is made, not a hostile state: when the
    /// step is not traced it still runs (untraced) with no_new_privs.
    no_new_privs: bool,
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
        no_new_privs: false,
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
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "refused",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 65,
    },
    Step {
        op: "closed-fds",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: CLOSED_FDS,
        env: &[],
        no_new_privs: false,
        expected_exit: 65,
    },
    Step {
        op: "socket-fds",
        user: User::Hermes,
        args: &["start", "../main-hermes"],
        payload: false,
        setup: SOCKET_FDS,
        env: &[],
        no_new_privs: false,
        expected_exit: 65,
    },
    Step {
        op: "unauthorized",
        user: User::Intruder,
        args: &["start", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 77,
    },
    Step {
        op: "register",
        user: User::Hermes,
        args: &["register", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "register-payload",
        user: User::Hermes,
        args: &["register", "auditb"],
        payload: true,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "rescan",
        user: User::Hermes,
        args: &["rescan"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "start",
        user: User::Hermes,
        args: &["start", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "restart",
        user: User::Hermes,
        args: &["restart", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "cpu-limit",
        user: User::Hermes,
        args: &["stop", "audita"],
        payload: false,
        setup: CPU_LIMIT,
        env: &[],
        no_new_privs: false,
        expected_exit: 77,
    },
    Step {
        op: "stop",
        user: User::Hermes,
        args: &["stop", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
    Step {
        op: "unregister",
        user: User::Hermes,
        args: &["unregister", "audita"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 0,
    },
];

/// The non-root container's steps ([`crate::NON_ROOT_CONTAINER`]): the
/// owner transport's lifecycle of one slot, with two refusals in between
/// while its gateway is up.
const NON_ROOT_STEPS: &[Step] = &[
    Step {
        op: "owner-register-payload",
        user: User::Hermes,
        args: &["register", "ownera"],
        payload: true,
        setup: &[],
        env: &[],
        no_new_privs: true,
        expected_exit: 0,
    },
    Step {
        op: "owner-start",
        user: User::Hermes,
        args: &["start", "ownera"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: true,
        expected_exit: 0,
    },
    // hermes without no_new_privs: the kernel honors the setuid bit, the
    // helper is root, authorizes hermes (group hermes), drops to root and
    // finds a scan dir that is hermes's, not root's: an unsafe state (78),
    // before any change.
    Step {
        op: "owner-refused-setuid",
        user: User::Hermes,
        args: &["stop", "ownera"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: false,
        expected_exit: 78,
    },
    // A member of group hermes who does not own the scan dir (the intruder,
    // added to group hermes in this container: outside it, the helper's
    // mode 4750 root:hermes keeps the kernel from executing it at all,
    // which `before` checks), with no_new_privs: no privilege and not the
    // owner, refused with 77.
    Step {
        op: "owner-intruder",
        user: User::Intruder,
        args: &["stop", "ownera"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: true,
        expected_exit: 77,
    },
    Step {
        op: "owner-stop",
        user: User::Hermes,
        args: &["stop", "ownera"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: true,
        expected_exit: 0,
    },
    Step {
        op: "owner-unregister",
        user: User::Hermes,
        args: &["unregister", "ownera"],
        payload: false,
        setup: &[],
        env: &[],
        no_new_privs: true,
        expected_exit: 0,
    },
];

/// Runs `argv` in the container as the step's caller, with the step's
/// variables and stdin, and with no_new_privs when the step asks for it
/// (`setpriv --no-new-privs`, as hermes-s6 sets it for the owner
/// transport).
fn call(c: &Container, step: &Step, argv: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut exec = c.exec(step.user, argv);
    for (key, value) in step.env {
        exec = exec.env(key, value);
    }
    if let Some(bytes) = stdin {
        exec = exec.stdin_bytes(bytes);
    }
    if step.no_new_privs {
        exec = exec.no_new_privs();
    }
    exec.output()
}

fn as_root(c: &Container, argv: &[&str]) -> Output {
    c.run_as(User::Root, argv, &[], None)
}

/// `s6-svstat` as the user s6 runs as (root, or hermes in the non-root
/// container).
fn svstat(c: &Container, slot: &str) -> Option<(bool, i64)> {
    let out = c.run_as(
        c.init_user(),
        &["s6-svstat", "-o", "up,pid", &format!("/run/service/{slot}")],
        &[],
        None,
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
        // No rescan since the register: start takes the other path, its
        // intent on disk, then a rescan that starts the supervisor.
        "owner-start" if svstat(c, "gateway-ownera").is_some() => {
            Err("owner-start: gateway-ownera is supervised already".to_owned())
        }
        "owner-refused-setuid" | "owner-stop" => wait(c, "gateway-ownera up", || {
            svstat(c, "gateway-ownera").is_some_and(|(up, pid)| up && pid > 0)
        }),
        "owner-intruder" => intruder_joins_group_hermes(c),
        _ => Ok(()),
    }
}

/// What happens to a user outside group hermes in the non-root container:
/// the helper's mode (4750 root:hermes) keeps the kernel from executing it
/// at all (EACCES, env's 126), so there is nothing of the helper's to
/// trace. Checked, then the intruder joins group hermes (in this
/// container's /etc/group, which the owner mode never reads) to be the
/// member of group hermes who does not own the scan dir.
fn intruder_joins_group_hermes(c: &Container) -> Result<(), String> {
    let out = c
        .exec(User::Intruder, &[HELPER, "stop", "ownera"])
        .no_new_privs()
        .output();
    if out.code != Some(126) || !out.stderr.contains("Permission denied") {
        return Err(format!(
            "owner-intruder: outside group hermes, the intruder should not be able to execute the helper (126, Permission denied), got {:?}: {}",
            out.code, out.stderr
        ));
    }
    let join = as_root(
        c,
        &[
            "sed",
            "-i",
            "s/^hermes:x:\\([0-9]*\\):$/hermes:x:\\1:intruder/",
            "/etc/group",
        ],
    );
    let groups = c.run_as(User::Intruder, &["id", "-G"], &[], None);
    let hermes = c.gid(User::Hermes).to_string();
    if !join.success() || !groups.stdout.split_whitespace().any(|g| g == hermes) {
        return Err(format!(
            "owner-intruder: cannot add the intruder to group hermes: {}{} (id -G: {})",
            join.stderr, groups.stderr, groups.stdout
        ));
    }
    Ok(())
}

/// What must hold after the step: a refusal left the state as it was.
fn after(c: &Container, op: &str) -> Result<(), String> {
    match op {
        // Refused before anything changed: the gateway is still wanted up.
        "cpu-limit" if c.host_path("/run/service/gateway-audita/down").exists() => {
            Err("cpu-limit: the refused stop left gateway-audita down".to_owned())
        }
        "owner-refused-setuid" | "owner-intruder"
            if c.host_path("/run/service/gateway-ownera/down").exists()
                || !svstat(c, "gateway-ownera").is_some_and(|(up, _)| up) =>
        {
            Err(format!("{op}: the refused stop left gateway-ownera down"))
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
    let mut traced = Vec::new();
    let containers = [
        (false, STEPS, "audita auditb"),
        (true, NON_ROOT_STEPS, "ownera"),
    ];
    for (non_root, steps, profiles) in containers {
        let wanted = |op: &str| only.is_empty() || only.iter().any(|o| o == op);
        if !steps.iter().any(|s| wanted(s.op)) {
            continue;
        }
        let c = Container::boot_with(Options {
            syslog: true,
            binaries: Some(paths.clone()),
            non_root,
            ..Options::default()
        });
        run_steps(&c, steps, profiles, out, &wanted, &mut traced)?;
    }
    Ok(traced)
}

/// Runs `steps` in `c` (booted for them), tracing those `wanted`.
fn run_steps(
    c: &Container,
    steps: &[Step],
    profiles: &str,
    out: &Path,
    wanted: &dyn Fn(&str) -> bool,
    traced: &mut Vec<Traced>,
) -> Result<(), String> {
    let setup = c.sh(
        User::Hermes,
        &format!(
            "for p in {profiles}; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md || exit; done"
        ),
    );
    if !setup.success() {
        return Err(format!("cannot create the profiles: {}", setup.stderr));
    }
    // Where strace writes: in the non-root container strace runs as the
    // caller (see below), hermes or the intruder.
    let mode = if c.options().non_root { "1777" } else { "0755" };
    let tmp = as_root(c, &["mkdir", "-p", "-m", mode, "/run/audit-traces"]);
    if !tmp.success() {
        return Err(format!("cannot create /run/audit-traces: {}", tmp.stderr));
    }
    for step in steps {
        let wanted = wanted(step.op);
        // Steps not asked for still run (untraced) when later ones need
        // their effect, so a partial run sees the same states.
        before(c, step.op)?;
        let stdin = step.payload.then_some(PAYLOAD);
        if !wanted && !step.setup.is_empty() {
            // A hostile process state makes a refusal, which changes
            // nothing later steps could need.
            continue;
        }
        if !wanted {
            let mut argv = vec![HELPER];
            argv.extend_from_slice(step.args);
            let output = call(c, step, &argv, stdin);
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
        ]);
        if !step.no_new_privs {
            argv.extend(["-u", step.user.name()]);
        }
        argv.push(HELPER);
        argv.extend_from_slice(step.args);
        let output = if step.no_new_privs {
            // strace itself runs as the caller, with no_new_privs: `strace
            // -u` would give the helper its file owner's effective uid
            // (strace's own emulation of the setuid bit, which no_new_privs
            // does not stop), so the owner mode would not be what ran.
            call(c, step, &argv, stdin)
        } else {
            c.run_as(User::Root, &argv, step.env, stdin)
        };
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
        after(c, step.op)?;
        traced.push(Traced {
            op: step.op.to_owned(),
            expected_exit: step.expected_exit,
            output,
            trace_file,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_are_the_operations_in_order_each_in_its_container() {
        let steps: Vec<&str> = STEPS.iter().chain(NON_ROOT_STEPS).map(|s| s.op).collect();
        let ops: Vec<&str> = OPS.iter().map(|(op, _)| *op).collect();
        assert_eq!(steps, ops);
        let non_root: Vec<&str> = NON_ROOT_STEPS.iter().map(|s| s.op).collect();
        assert_eq!(non_root, crate::NON_ROOT_CONTAINER);
        for step in STEPS.iter().chain(NON_ROOT_STEPS) {
            // no_new_privs is the owner mode's way in, and only its.
            assert_eq!(
                step.no_new_privs,
                crate::OWNER.contains(&step.op),
                "{}",
                step.op
            );
        }
    }
}
