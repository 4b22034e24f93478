//! The Rust half of the helper's audit kit (`audit/run` is the other):
//! counting the helper's code, keeping `audit/CHECKLIST.md` anchored to it,
//! and tracing the system calls of every helper operation inside the
//! container emulation, checked against `audit/syscalls.allow`.

pub mod allow;
pub mod check;
pub mod checklist;
pub mod lex;
pub mod loc;
pub mod output;
pub mod strace;
pub mod trace;

/// The traced operations, in the order they run, with what each exercises.
pub const OPS: &[(&str, &str)] = &[
    ("version", "--version"),
    (
        "socket-version",
        "--version run by root with IPCREMOTEEUID/IPCREMOTEEGID set, as s6-sudod runs it for a socket peer (via=socket)",
    ),
    ("refused", "start ../main-hermes (invalid name, exit 65)"),
    (
        "closed-fds",
        "start ../main-hermes with fds 0, 1 and 2 closed (exit 65)",
    ),
    (
        "socket-fds",
        "start ../main-hermes with fds 0, 1 and 2 a datagram socket connected to /dev/log (exit 65)",
    ),
    (
        "unauthorized",
        "start audita as a user outside group hermes (exit 77)",
    ),
    ("register", "register audita, stdin /dev/null (no payload)"),
    (
        "register-payload",
        "register auditb with an environment payload on stdin",
    ),
    ("rescan", "rescan"),
    ("start", "start audita (supervised, down)"),
    (
        "restart",
        "restart audita (up: SIGTERM with the restart marker)",
    ),
    (
        "cpu-limit",
        "stop audita under a hard RLIMIT_CPU root may not raise (no CAP_SYS_RESOURCE; exit 77)",
    ),
    ("stop", "stop audita"),
    (
        "unregister",
        "unregister audita (stop, retire, prune, remove)",
    ),
];

/// The operations that change the scan dir: each sends a `result=begun`
/// audit record before its first change, and its result record after.
pub const CHANGING: &[&str] = &[
    "register",
    "register-payload",
    "rescan",
    "start",
    "restart",
    "stop",
    "unregister",
];

/// The operation whose fds 0, 1 and 2 are a datagram socket connected to
/// /dev/log.
pub const SOCKET_FDS: &str = "socket-fds";
