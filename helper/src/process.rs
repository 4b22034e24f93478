//! The privileged process itself: sanitize what the caller handed over,
//! authorize the caller, then give up everything not needed (I5, I6).

use crate::config::{GROUP_FILE, HERMES_GROUP, SCAN_DIR};
use crate::exit::{Failure, INTERNAL, NOT_AUTHORIZED};
use nix::fcntl::OFlag;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, getgid, getgroups, getuid, Gid};
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};

/// Who asked, and how the request came: `setuid` (the real ids of the
/// process that ran the setuid helper), `socket` (root runs the helper for
/// s6-sudod: the ids of the socket's peer), `root` (root itself), or
/// `owner` (no privilege at all: the helper runs with its caller's rights,
/// which suffice only where s6 itself runs as the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub via: &'static str,
}

/// Only root can make the real uid 0, so only then are s6-ipcserverd's
/// IPCREMOTEEUID and IPCREMOTEEGID (the peer credentials of the socket,
/// which s6-sudod passes on) believed: in a setuid start they are the
/// caller's own words and mean nothing.
fn caller() -> Caller {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    let remote = |name: &str| std::env::var(name).ok()?.parse().ok();
    match (uid, remote("IPCREMOTEEUID"), remote("IPCREMOTEEGID")) {
        (0, Some(uid), Some(gid)) => Caller { uid, gid, via: "socket" },
        (0, ..) => Caller { uid, gid, via: "root" },
        _ if nix::unistd::geteuid().as_raw() == uid => Caller { uid, gid, via: "owner" },
        _ => Caller { uid, gid, via: "setuid" },
    }
}

/// Runs first, before anything reads the environment, fds or limits; of the
/// environment, keeps only who the caller is.
pub fn sanitize() -> Caller {
    // fds 0-2 must be open, or a file the helper opens could become "stderr":
    // opening /dev/null takes the lowest free number, so, in order, each
    // closed one lands on its own slot. And none may be a socket: every write
    // to a datagram socket connected to /dev/log is a syslog record sent with
    // root's credentials.
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let replace: [fn(OwnedFd) -> nix::Result<()>; 3] = [dup2_stdin, dup2_stdout, dup2_stderr];
    for (fd, replace) in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()].into_iter().zip(replace) {
        let null = || nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty());
        match fstat(fd) {
            Err(_) => drop(null().map(IntoRawFd::into_raw_fd)),
            Ok(st) if crate::fsx::is_type(&st, SFlag::S_IFSOCK) => drop(null().map(replace)),
            Ok(_) => {}
        }
    }
    // Every other inherited descriptor is closed (this includes the listing's
    // own, already closed: EBADF there is expected).
    let open_fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..65536).collect(),
    };
    for fd in open_fds.into_iter().filter(|&fd| fd > 2) {
        let _ = nix::unistd::close(fd);
    }
    // Everything blockable stays pending until exit: the caller keeps its
    // real uid until `drop_privileges`, and a stop from the terminal must not
    // freeze the helper half way through a slot.
    let _ = nix::sys::signal::SigSet::all().thread_block();
    let caller = caller();
    // The helper executes nothing, but libc and std still consult a few
    // variables; none may come from the caller. `remove_var` is sound here
    // because no other thread exists; edition 2024 makes every caller assert
    // that in code, which is why this crate stays on edition 2021. Names
    // holding '=' or NUL cannot be removed, and no lookup can match them.
    for (key, _) in std::env::vars_os() {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(key.as_os_str());
        if !bytes.is_empty() && !bytes.contains(&b'=') && !bytes.contains(&0) {
            std::env::remove_var(&key);
        }
    }
    // The caller chose the soft limits; lift the ones an operation needs to
    // their hard limits (raising a hard limit needs CAP_SYS_RESOURCE, which
    // containers rarely grant: under tiny hard limits an operation fails
    // cleanly, and I8 keeps the tree old-or-new). The CPU limit, whose end
    // is a SIGKILL, is `lift_cpu_limit`'s.
    for resource in [Resource::RLIMIT_NOFILE, Resource::RLIMIT_FSIZE, Resource::RLIMIT_AS, Resource::RLIMIT_DATA] {
        if let Ok((_, hard)) = getrlimit(resource) {
            let _ = setrlimit(resource, hard, hard);
        }
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // Every object is created with an explicit final mode.
    nix::sys::stat::umask(Mode::empty());
    let _ = nix::unistd::chdir("/");
    caller
}

/// A hard CPU time limit survives exec: the kernel would SIGKILL the helper
/// when it runs out, possibly between a change and its audit record. Root
/// lifts it; where it cannot (no CAP_SYS_RESOURCE), the call is refused.
pub fn lift_cpu_limit() -> Result<(), Failure> {
    let unlimited = nix::sys::resource::RLIM_INFINITY;
    setrlimit(Resource::RLIMIT_CPU, unlimited, unlimited)
        .map_err(|e| Failure::new(NOT_AUTHORIZED, format!("cannot lift the caller's hard CPU time limit: {e}")))
}

/// Refuses unless the helper is effectively root and the caller is root or
/// in the hermes group, resolved by name now (the image may remap its gid).
/// A socket's peer is known by its uid and gid alone. Without privilege,
/// acts only for the user who owns the scan directory (a non-root
/// container, where s6 runs as that user): it then does nothing its caller
/// could not do by hand, and hands files to the caller's own group.
pub fn authorize(caller: &Caller) -> Result<Gid, Failure> {
    let owns_scan_dir = || nix::sys::stat::lstat(SCAN_DIR).is_ok_and(|st| st.st_uid == caller.uid);
    if caller.via == "owner" && owns_scan_dir() {
        return Ok(nix::unistd::getegid());
    }
    if !nix::unistd::geteuid().is_root() {
        let cause = match nix::sys::prctl::get_no_new_privs() {
            Ok(true) => "no_new_privs is set, so the setuid bit was ignored (allowPrivilegeEscalation: false?)",
            _ => "the setuid bit was not honored (not installed 4750 root:hermes, or a nosuid mount)",
        };
        return Err(Failure::new(NOT_AUTHORIZED, format!("not running as root: {cause}")));
    }
    let groups =
        std::fs::read_to_string(GROUP_FILE).map_err(|e| Failure::new(INTERNAL, format!("{GROUP_FILE}: {e}")))?;
    let hermes = groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 3 && fields[0] == HERMES_GROUP)
        .and_then(|fields| fields[2].parse().ok())
        .map(Gid::from_raw)
        .ok_or_else(|| Failure::new(NOT_AUTHORIZED, format!("group {HERMES_GROUP} does not exist")))?;
    let supplementary = match caller.via {
        "socket" => Vec::new(),
        _ => getgroups().map_err(|e| crate::exit::internal("getgroups", e))?,
    };
    if caller.uid == 0 || caller.gid == hermes.as_raw() || supplementary.contains(&hermes) {
        return Ok(hermes);
    }
    Err(Failure::new(NOT_AUTHORIZED, format!("uid {} is not in group {HERMES_GROUP}", caller.uid)))
}

/// Becomes root in every uid and gid (so the caller can no longer signal or
/// trace the helper), keeps only the hermes group as supplementary group (to
/// hand files to it without CAP_CHOWN), then drops every capability: all
/// objects the helper touches are owned by its effective uid from here on
/// (`fsx::owner`, root but in a non-root container) and reachable through
/// owner permission bits alone.
pub fn drop_privileges(hermes: Gid) -> Result<(), Failure> {
    let denied = |what: &str, e: nix::errno::Errno| {
        Failure::new(NOT_AUTHORIZED, format!("{what}: {e} (capabilities removed from the container?)"))
    };
    let owner = nix::unistd::geteuid();
    let group = if owner.is_root() { Gid::from_raw(0) } else { hermes };
    nix::unistd::setresgid(group, group, group).map_err(|e| denied("setresgid", e))?;
    if owner.is_root() {
        nix::unistd::setgroups(&[hermes]).map_err(|e| denied("setgroups", e))?;
    }
    nix::unistd::setresuid(owner, owner, owner).map_err(|e| denied("setresuid", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| crate::exit::internal("no_new_privs", e))?;
    // Emptying the bounding set needs CAP_SETPCAP, which a restricted
    // container may lack; no_new_privs already keeps any execve from granting
    // capabilities, and the helper never executes anything.
    let _ = caps::clear(None, caps::CapSet::Bounding);
    for set in [caps::CapSet::Ambient, caps::CapSet::Inheritable, caps::CapSet::Effective, caps::CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| Failure::new(INTERNAL, format!("dropping capabilities: {e}")))?;
    }
    match caps::read(None, caps::CapSet::Permitted) {
        Ok(left) if left.is_empty() => Ok(()),
        _ => Err(Failure::new(INTERNAL, "capabilities still held after dropping them")),
    }
}
