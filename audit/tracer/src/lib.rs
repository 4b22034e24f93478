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
    // A second container, non-root (`docker run --user 10000`): s6-svscan
    // runs as hermes and /run is hermes's.
    (
        "owner-register-payload",
        "non-root container: register ownera with a payload, the helper run by hermes with no_new_privs (via=owner)",
    ),
    (
        "owner-start",
        "non-root container: start ownera (not yet supervised: the intent on disk, then a rescan), via=owner",
    ),
    (
        "owner-refused-setuid",
        "non-root container: stop ownera as hermes without no_new_privs: setuid makes the helper root, which refuses hermes's tree (exit 78)",
    ),
    (
        "owner-intruder",
        "non-root container: stop ownera as intruder, in group hermes here, with no_new_privs: not the scan dir's owner (exit 77)",
    ),
    (
        "owner-stop",
        "non-root container: stop ownera (up), via=owner",
    ),
    (
        "owner-unregister",
        "non-root container: unregister ownera, via=owner",
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
    "owner-register-payload",
    "owner-start",
    "owner-stop",
    "owner-unregister",
];

/// The operations traced in the non-root container
/// (`Options { non_root: true, .. }`): s6-svscan runs as hermes, and the
/// scan dir and all in it are hermes's.
pub const NON_ROOT_CONTAINER: &[&str] = &[
    "owner-register-payload",
    "owner-start",
    "owner-refused-setuid",
    "owner-intruder",
    "owner-stop",
    "owner-unregister",
];

/// The operations in which the helper runs with no privilege at all (no
/// setuid: no_new_privs is set), with its caller's own ids (`via=owner`).
/// Those that go on to drop privileges (the caller owns the scan dir) set
/// every uid and gid to the caller's own, hermes's
/// ([`HERMES_UID`]/[`HERMES_GID`]), and leave the supplementary groups
/// alone (setting them needs CAP_SETGID); every other operation that drops
/// drops to root (uid and gid 0, supplementary groups: hermes only).
pub const OWNER: &[&str] = &[
    "owner-register-payload",
    "owner-start",
    "owner-intruder",
    "owner-stop",
    "owner-unregister",
];

/// hermes's uid and gid in both containers (the emulation's defaults); in
/// the non-root one, the scan dir's owner.
pub const HERMES_UID: u32 = hermes_s6_emu::DEFAULT_HERMES_UID;
pub const HERMES_GID: u32 = hermes_s6_emu::DEFAULT_HERMES_GID;

/// The `via=` word every audit record of `op` must carry: how the helper
/// was reached (`process.rs::caller`). A record with another word means the
/// traced call took another path than the one it is meant to show.
pub fn via(op: &str) -> &'static str {
    if OWNER.contains(&op) {
        "owner"
    } else if op == "socket-version" {
        "socket"
    } else {
        "setuid"
    }
}

/// The operation whose fds 0, 1 and 2 are a datagram socket connected to
/// /dev/log.
pub const SOCKET_FDS: &str = "socket-fds";
