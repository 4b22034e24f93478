//! The privileged process itself: sanitize what the caller handed over,
//! authorize the caller, then give up everything not needed (I5, I6).

use crate::config::{GROUP_FILE, HERMES_GROUP};
use crate::exit::{Failure, INTERNAL, NOT_AUTHORIZED};
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::SigSet;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getgid, getgroups, getuid, setgroups, setresgid, setresuid, Gid, Uid};
use std::io::Read;
use std::os::fd::{AsFd, IntoRawFd};

/// Runs first, before anything else reads the environment, fds or limits.
pub fn sanitize() {
    // fds 0-2 must be open, or the first file the helper opens could become
    // "stdout" and receive error messages. Opening /dev/null takes the lowest
    // free number, so filling them in order puts each on its own slot.
    for fd in [
        std::io::stdin().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stderr().as_fd(),
    ] {
        if fcntl(fd, FcntlArg::F_GETFD) == Err(nix::errno::Errno::EBADF) {
            if let Ok(null) = open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
                let _kept_open_as_std_stream = null.into_raw_fd();
            }
        }
    }
    close_inherited_fds();
    // Everything blockable stays pending until exit: the caller keeps its real
    // uid until `drop_privileges`, and a stop from the terminal must not
    // freeze the helper half way through a slot.
    let _ = SigSet::all().thread_block();
    clear_environment();
    raise_limits();
    umask(Mode::from_bits_truncate(0o077));
    let _ = nix::unistd::chdir("/");
}

/// Soft limits the helper needs to finish what it starts: enough descriptors
/// for its deepest walk, room to write its scripts, time and memory.
const NEEDED: [(Resource, u64, &str); 4] = [
    (Resource::RLIMIT_NOFILE, 64, "RLIMIT_NOFILE"),
    (Resource::RLIMIT_FSIZE, 1 << 20, "RLIMIT_FSIZE"),
    (Resource::RLIMIT_CPU, 10, "RLIMIT_CPU"),
    (Resource::RLIMIT_AS, 64 << 20, "RLIMIT_AS"),
];

/// The caller chose the soft limits; lift each to its hard limit. (Raising a
/// hard limit needs CAP_SYS_RESOURCE, which containers rarely grant, so the
/// helper does not count on it.)
fn raise_limits() {
    for (resource, _, _) in NEEDED {
        if let Ok((_, hard)) = nix::sys::resource::getrlimit(resource) {
            let _ = setrlimit(resource, hard, hard);
        }
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}

/// Refuses, before anything is touched, to run under limits that could stop
/// an operation half way.
pub fn check_limits() -> Result<(), Failure> {
    for (resource, needed, name) in NEEDED {
        let (soft, _) = nix::sys::resource::getrlimit(resource)
            .map_err(|e| Failure::new(INTERNAL, format!("getrlimit: {e}")))?;
        if soft != RLIM_INFINITY && soft < needed {
            return Err(Failure::new(
                INTERNAL,
                format!("{name} is {soft}, below the {needed} the helper needs; nothing changed"),
            ));
        }
    }
    Ok(())
}

fn close_inherited_fds() {
    let listed: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        // Without /proc, fall back to every number below the hard limit.
        Err(_) => {
            let (_, hard) =
                nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 65536));
            (3..i32::try_from(hard.min(65536)).unwrap_or(65536)).collect()
        }
    };
    for fd in listed.into_iter().filter(|&fd| fd > 2) {
        // Includes the read_dir descriptor itself, which is already closed:
        // EBADF is expected and harmless.
        let _ = nix::unistd::close(fd);
    }
}

/// The helper never executes a program, but libc and std still consult a few
/// variables (locale, allocator tuning, backtraces); none may come from the
/// caller. `remove_var` is sound here because no other thread exists yet;
/// edition 2024 marks it `unsafe` for exactly that reason, which is why this
/// crate stays on edition 2021 instead of adding an `unsafe` block.
fn clear_environment() {
    for (key, _) in std::env::vars_os() {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(key.as_os_str());
        // A name with '=' or NUL cannot be passed to remove_var; no lookup can
        // ever match such an entry, so leaving it is harmless.
        if !bytes.is_empty() && !bytes.contains(&b'=') && !bytes.contains(&0) {
            std::env::remove_var(&key);
        }
    }
}

/// Refuses unless the helper is effectively root and the caller is root or a
/// member of the hermes group. Returns the group's gid for the slot files.
pub fn authorize() -> Result<Gid, Failure> {
    if !nix::unistd::geteuid().is_root() {
        let cause = if nix::sys::prctl::get_no_new_privs().unwrap_or(false) {
            "no_new_privs is set, so the setuid bit was ignored (allowPrivilegeEscalation: false?)"
        } else {
            "the setuid bit was not honored (not installed 4750 root:hermes, or a nosuid mount)"
        };
        return Err(Failure::new(
            NOT_AUTHORIZED,
            format!("not running as root: {cause}"),
        ));
    }
    let hermes = group_gid(HERMES_GROUP)?;
    let caller_groups =
        getgroups().map_err(|e| Failure::new(INTERNAL, format!("getgroups: {e}")))?;
    if getuid().is_root() || getgid() == hermes || caller_groups.contains(&hermes) {
        Ok(hermes)
    } else {
        Err(Failure::new(
            NOT_AUTHORIZED,
            format!("uid {} is not in group {HERMES_GROUP}", getuid()),
        ))
    }
}

/// Resolves the group by name at run time: the image may remap its gid at boot.
fn group_gid(name: &str) -> Result<Gid, Failure> {
    let mut text = String::new();
    let file = std::fs::File::open(GROUP_FILE)
        .map_err(|e| Failure::new(INTERNAL, format!("{GROUP_FILE}: {e}")))?;
    file.take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| Failure::new(INTERNAL, format!("{GROUP_FILE}: {e}")))?;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let group = fields.next()?;
            let gid = fields.nth(1)?.parse().ok()?;
            (group == name).then_some(Gid::from_raw(gid))
        })
        .next()
        .ok_or_else(|| Failure::new(NOT_AUTHORIZED, format!("group {name} does not exist")))
}

/// Becomes root in every uid and gid (so the caller can no longer signal or
/// trace the helper), keeps only the hermes group as supplementary group (to
/// hand slot files to it without CAP_CHOWN), then drops every capability:
/// all objects the helper touches are root-owned and reachable through owner
/// permission bits alone.
pub fn drop_privileges(hermes: Gid) -> Result<(), Failure> {
    let root_gid = Gid::from_raw(0);
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(
            NOT_AUTHORIZED,
            format!("{what}: {e} (capabilities removed from the container?)"),
        )
    };
    setresgid(root_gid, root_gid, root_gid).map_err(|e| fail("setresgid", &e))?;
    setgroups(&[hermes]).map_err(|e| fail("setgroups", &e))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| fail("setresuid", &e))?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| Failure::new(INTERNAL, format!("no_new_privs: {e}")))?;
    // Emptying the bounding set needs CAP_SETPCAP, which a restricted
    // container may lack; no_new_privs above already keeps any execve from
    // granting capabilities, and the helper never executes anything.
    let _ = caps::clear(None, caps::CapSet::Bounding);
    for set in [
        caps::CapSet::Ambient,
        caps::CapSet::Inheritable,
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
    ] {
        caps::clear(None, set)
            .map_err(|e| Failure::new(INTERNAL, format!("dropping capabilities: {e}")))?;
    }
    match caps::read(None, caps::CapSet::Permitted) {
        Ok(left) if left.is_empty() => Ok(()),
        _ => Err(Failure::new(
            INTERNAL,
            "capabilities still held after dropping them",
        )),
    }
}
