//! The operations on `gateway-<profile>` slots (design §4, §5), each reaching
//! the scan directory only through the descriptor `Scan::open` verified.

use crate::config::{COMMAND_DIR, GATEWAY_COMMAND, HERMES_HOME, HERMES_USER, INIT_CMDLINE, SCAN_DIR, SERVICE_LIMIT};
use crate::exit::{internal, unsafe_state, Failure, EXISTS, INTERNAL, LIMIT, NOT_RUNNING, NO_SUCH_SLOT};
use crate::fsx::{self, is_type};
use crate::payload::Var;
use crate::request::{Op, Profile};
use nix::errno::Errno;
use nix::fcntl::{renameat2, AtFlags, Flock, FlockArg, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, UnlinkatFlags};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// Longer than the slot's `timeout-kill`: by then s6 has killed the gateway.
/// One budget for the whole call, however many profiles it names.
const RELEASE_DEADLINE: Duration = Duration::from_secs(15);
/// Left by `restart` so that `finish` restarts the gateway whatever its exit
/// code (a gateway exiting 0 on SIGTERM must not turn a restart into a stop).
const RESTART_MARKER: &str = "restart-requested";

#[derive(Debug)]
pub struct Scan {
    dir: OwnedFd,
    svscan_control: OwnedFd,
    deadline: Instant,
}

/// What a control operation achieved: `NeedsScan` when no supervisor runs
/// for the slot yet (its intent is on disk; a rescan starts one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    NeedsScan,
}

impl Scan {
    /// Opens the scan dir and s6-svscan's control FIFO; 69 when s6-svscan is
    /// not there to read it.
    pub fn open() -> Result<Scan, Failure> {
        let not_running = |why: &str| Failure::new(NOT_RUNNING, format!("s6-svscan is not running: {why}"));
        let dir = fsx::open_dir(nix::fcntl::AT_FDCWD, SCAN_DIR, SCAN_DIR)?
            .ok_or_else(|| not_running(&format!("{SCAN_DIR} does not exist")))?;
        let svscan_dir =
            fsx::open_dir(&dir, ".s6-svscan", ".s6-svscan")?.ok_or_else(|| not_running("no .s6-svscan"))?;
        let svscan_control = fsx::open_fifo(&svscan_dir, "control", ".s6-svscan/control")?
            .ok_or_else(|| not_running("no reader on .s6-svscan/control"))?;
        Ok(Scan { dir, svscan_control, deadline: Instant::now() + RELEASE_DEADLINE })
    }

    /// `a` rescan, `n` prune the supervisors of vanished services.
    pub fn svscan(&self, command: &[u8]) -> Result<(), Failure> {
        let read = fsx::write_fifo(&self.svscan_control, command, ".s6-svscan/control")?;
        read.then_some(()).ok_or_else(|| Failure::new(NOT_RUNNING, "s6-svscan stopped reading its control FIFO"))
    }

    /// Serializes helpers (two calls on one slot would remove each other's
    /// staging directory). The lock file is root's alone (0600): no other
    /// user can open it to hold the lock and stall every helper. The call's
    /// release deadline starts once the lock is held.
    pub fn lock(&mut self) -> Result<Flock<OwnedFd>, Failure> {
        let fd = fsx::open_private(&self.dir, ".hermes-s6-helper.lock")?;
        let held = Flock::lock(fd, FlockArg::LockExclusive).map_err(|(_, e)| internal("lock", e))?;
        self.deadline = Instant::now() + RELEASE_DEADLINE;
        Ok(held)
    }
}

/// s6-svscan's limit and how it counts: PID 1's `-C n` (s6 >= 2.13: each
/// logger is a service of its own) or `-c n` (s6 2.11: a service with its
/// logger counts once), else the compiled-in default, counted as `-C`.
fn service_limit() -> (usize, bool, &'static str) {
    let cmdline = std::fs::read(INIT_CMDLINE).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    if args.first().is_some_and(|init| init.ends_with(b"s6-svscan")) {
        for (i, arg) in args.iter().enumerate().skip(1).take_while(|(_, a)| a.starts_with(b"-") && **a != b"--") {
            let value = if arg.len() > 2 { Some(&arg[2..]) } else { args.get(i + 1).copied() };
            let limit = value.and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
            match (arg.get(..2), limit) {
                (Some(b"-C"), Some(limit)) => return (limit, false, "s6-svscan -C"),
                (Some(b"-c"), Some(limit)) => return (limit, true, "s6-svscan -c"),
                _ => {}
            }
        }
    }
    (SERVICE_LIMIT, false, "s6's default")
}

impl Scan {
    /// Refuses (75) to register slots that would take the scan directory
    /// past s6-svscan's service limit: past it, s6 2.15 aborts whole scans,
    /// and entries such a scan saw, of any service, may stay unsupervised.
    /// Counted as s6-svscan counts: every directory not starting with a dot,
    /// and (with `-C`) its `log/`; a new slot is a service and its logger.
    pub fn check_room(&self, profiles: &[Profile]) -> Result<(), Failure> {
        let (limit, per_dir, source) = service_limit();
        let is_dir = |name: &std::ffi::CStr| {
            nix::sys::stat::fstatat(&self.dir, name, AtFlags::empty()).is_ok_and(|st| is_type(&st, SFlag::S_IFDIR))
        };
        let mut used = 0;
        for name in fsx::names(&self.dir)?.iter().filter(|n| !n.to_bytes().starts_with(b".")) {
            let log = std::ffi::CString::new([name.to_bytes(), b"/log"].concat()).unwrap_or_default();
            used += usize::from(is_dir(name)) + usize::from(!per_dir && is_dir(name) && is_dir(&log));
        }
        let new =
            profiles.iter().filter(|p| fsx::probe(&self.dir, p.service().as_str()).ok().flatten().is_none()).count();
        let needed = if per_dir { new } else { 2 * new };
        if used + needed <= limit {
            return Ok(());
        }
        let why = format!("s6-svscan supervises at most {limit} services here ({source}), {used} are in use");
        let fix = "unregister gateways no longer needed, or run s6-svscan with a higher -C";
        Err(Failure::new(LIMIT, format!("{why} and {new} new slot(s) need {needed}: {fix}; nothing changed")))
    }
}

/// Finishes what an interrupted helper left for this profile: a half-built
/// staging dir, or a retired slot not yet torn down.
fn clean_leftovers(scan: &Scan, p: &Profile) -> Result<(), Failure> {
    fsx::remove_tree(&scan.dir, format!(".{}.new", p.service()).as_str(), 0)?;
    match fsx::open_dir(&scan.dir, &format!(".{}.old", p.service()), "retired slot")? {
        Some(retired) => remove_retired(scan, p, &supervisors(&retired)?),
        None => Ok(()),
    }
}

pub fn register(scan: &Scan, p: &Profile, env: Option<&[Var]>, hermes: Gid) -> Result<(), Failure> {
    clean_leftovers(scan, p)?;
    if let Some(st) = fsx::probe(&scan.dir, p.service().as_str())? {
        return Err(match is_type(&st, SFlag::S_IFDIR) && st.st_uid == fsx::owner() {
            true => Failure::new(EXISTS, "slot already exists; nothing changed"),
            false => unsafe_state(&format!("something other than a {} directory is at the slot's name", fsx::owned())),
        });
    }
    let stage = format!(".{}.new", p.service());
    let built = build_slot(scan, p, env, hermes, &stage).and_then(|()| {
        // Publishing never replaces whatever may have appeared at the name.
        match renameat2(&scan.dir, stage.as_str(), &scan.dir, p.service().as_str(), RenameFlags::RENAME_NOREPLACE) {
            Err(Errno::EEXIST) => Err(Failure::new(EXISTS, "slot already exists; nothing changed")),
            other => other.map_err(|e| internal("publishing the slot", e)),
        }
    });
    // A slot that could not be published leaves no staging directory.
    built.inspect_err(|_| drop(fsx::remove_tree(&scan.dir, stage.as_str(), 0)))
}

/// Builds the whole slot in a dot-prefixed sibling (s6-svscan ignores it),
/// closed to everyone until complete (I8).
fn build_slot(scan: &Scan, p: &Profile, env: Option<&[Var]>, hermes: Gid, stage: &str) -> Result<(), Failure> {
    fsx::create_dir(&scan.dir, stage, 0o700, None)?;
    let slot = fsx::enter(&scan.dir, stage)?;
    fsx::create_file(&slot, "run", render(include_str!("../templates/run"), p).as_bytes(), 0o755, None)?;
    fsx::create_file(&slot, "finish", render(include_str!("../templates/finish"), p).as_bytes(), 0o755, None)?;
    fsx::create_file(&slot, "down", b"", 0o644, None)?;
    fsx::create_file(&slot, "timeout-kill", b"10000\n", 0o644, None)?;
    // Pre-created so that s6-supervise adopts it as is: group hermes may
    // traverse it and read status and lock; control stays 0600 root (I9).
    fsx::create_dir(&slot, "supervise", 0o710, Some(hermes))?;
    if let Some(vars) = env.filter(|vars| !vars.is_empty()) {
        fsx::create_dir(&slot, "env", 0o750, Some(hermes))?;
        let env_dir = fsx::enter(&slot, "env")?;
        for var in vars {
            // s6-envdir -f drops exactly one final newline, so an empty value
            // survives as "\n" (an empty file would unset the variable). One
            // allocation of the final size: no reallocation leaves a copy.
            let content = zeroize::Zeroizing::new([&var.value[..], b"\n"].concat());
            fsx::create_file(&env_dir, &var.key, &content, 0o640, Some(hermes))?;
        }
    }
    fsx::create_dir(&slot, "log", 0o755, None)?;
    let log = fsx::enter(&slot, "log")?;
    fsx::create_file(&log, "run", render(include_str!("../templates/log-run"), p).as_bytes(), 0o755, None)?;
    fsx::create_dir(&log, "supervise", 0o710, Some(hermes))?;
    nix::sys::stat::fchmod(&slot, Mode::from_bits_truncate(0o755)).map_err(|e| internal("slot", e))
}

/// Fills a script template; every value is a validated name or a
/// compile-time plain path, so nothing needs quoting.
fn render(template: &str, p: &Profile) -> String {
    let profile_args = if p.as_str() == "default" { String::new() } else { format!("-p {} ", p.as_str()) };
    let drop = if fsx::owner() == 0 { format!("{COMMAND_DIR}/s6-setuidgid {HERMES_USER}") } else { String::new() };
    #[rustfmt::skip]
    let values = [("@COMMAND_DIR@", COMMAND_DIR), ("@SERVICE@", &p.service()), ("@PROFILE@", p.as_str()),
        ("@PROFILE_ARGS@", &profile_args), ("@HERMES_USER@", HERMES_USER), ("@HERMES_HOME@", HERMES_HOME),
        ("@GATEWAY_COMMAND@", GATEWAY_COMMAND), ("@DROP_TO_HERMES@", &drop)];
    values.iter().fold(template.to_owned(), |text, (placeholder, value)| text.replace(placeholder, value))
}

/// Takes the slot out of the scan with one rename, then stops and removes
/// it. Everything is opened and checked before the rename, so a slot in an
/// unexpected state is refused untouched.
pub fn unregister(scan: &Scan, p: &Profile) -> Result<(), Failure> {
    clean_leftovers(scan, p)?;
    let Some(slot) = fsx::open_dir(&scan.dir, &p.service(), "slot")? else { return Ok(()) };
    let supervisors = supervisors(&slot)?;
    let retired = format!(".{}.old", p.service());
    renameat2(&scan.dir, p.service().as_str(), &scan.dir, retired.as_str(), RenameFlags::RENAME_NOREPLACE)
        .map_err(|e| internal("retiring the slot", e))?;
    remove_retired(scan, p, &supervisors)
}

/// The service's `supervise/`, then the logger's, each with its control
/// FIFO when a supervisor reads it.
type Supervisors = Vec<(OwnedFd, Option<OwnedFd>)>;

fn supervisors(slot: &OwnedFd) -> Result<Supervisors, Failure> {
    let mut found = Vec::new();
    let log = fsx::open_dir(slot, "log", "log")?;
    for (parent, what) in [(Some(slot), "supervise"), (log.as_ref(), "log/supervise")] {
        if let Some(dir) = parent.map(|d| fsx::open_dir(d, "supervise", what)).transpose()?.flatten() {
            let control = fsx::open_fifo(&dir, "control", what)?;
            found.push((dir, control));
        }
    }
    Ok(found)
}

/// Stops the service, then its logger (so the gateway's last lines are
/// logged): "d" down, "x" exit once down; the rescan-and-prune ("an") makes
/// s6-svscan forget the slot. Waits until each supervisor has released its
/// lock, then removes the tree. A scan in flight when the slot was retired
/// may have just started a supervisor there that holds no lock yet: the
/// prune stops it, and the removal is retried until it has.
fn remove_retired(scan: &Scan, p: &Profile, supervisors: &Supervisors) -> Result<(), Failure> {
    let deadline = scan.deadline;
    for (i, (dir, control)) in supervisors.iter().enumerate() {
        if let Some(fifo) = control {
            fsx::write_fifo(fifo, b"dx", "supervise/control")?;
        }
        if i == 0 {
            scan.svscan(b"an")?;
        }
        wait_released(dir, deadline)?;
    }
    loop {
        match fsx::remove_tree(&scan.dir, format!(".{}.old", p.service()).as_str(), 0) {
            Err(f) if f.code == INTERNAL && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            done => return done,
        }
        for (dir, _) in supervisors {
            wait_released(dir, deadline)?;
        }
    }
}

/// Polls the supervisor's lock, backing off to 20 ms: s6 offers a root
/// process nothing to wait on short of subscribing to its events. Each poll
/// also says "dx" to a supervisor that has opened its control FIFO since:
/// one a scan started just before the retirement had not yet, and the
/// prune's SIGHUP never stops a logger's supervisor while s6-log runs.
fn wait_released(supervise: &OwnedFd, deadline: Instant) -> Result<(), Failure> {
    let mut pause = Duration::from_millis(1);
    while fsx::is_locked(supervise)? {
        if Instant::now() > deadline {
            return Err(Failure::new(INTERNAL, "supervisor did not exit in time; the next call retries"));
        }
        if let Ok(Some(fifo)) = fsx::open_fifo(supervise, "control", "supervise/control") {
            let _ = fsx::write_fifo(&fifo, b"dx", "supervise/control");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// A slot about to receive a command, checked entirely before any change.
struct Target {
    slot: OwnedFd,
    supervise: Option<OwnedFd>,
    control: Option<OwnedFd>,
}

impl Target {
    fn open(scan: &Scan, p: &Profile) -> Result<Target, Failure> {
        let slot = fsx::open_dir(&scan.dir, &p.service(), "slot")?
            .ok_or_else(|| Failure::new(NO_SUCH_SLOT, "no such slot: register the profile first"))?;
        let supervise = fsx::open_dir(&slot, "supervise", "supervise")?;
        let control =
            supervise.as_ref().map(|dir| fsx::open_fifo(dir, "control", "supervise/control")).transpose()?.flatten();
        Ok(Target { slot, supervise, control })
    }

    fn deliver(&self, command: &[u8]) -> Result<Delivery, Failure> {
        match &self.control {
            Some(fifo) if fsx::write_fifo(fifo, command, "supervise/control")? => Ok(Delivery::Sent),
            _ => Ok(Delivery::NeedsScan),
        }
    }

    /// Creates an empty marker unless an owner's regular file is there.
    fn mark(&self, file: &str) -> Result<(), Failure> {
        match fsx::probe(&self.slot, file)? {
            Some(st) if is_type(&st, SFlag::S_IFREG) && st.st_uid == fsx::owner() => Ok(()),
            Some(_) => Err(unsafe_state(&format!("{file} is not a {} regular file", fsx::owned()))),
            None => fsx::create_file(&self.slot, file, b"", 0o644, None),
        }
    }

    /// Whether the gateway runs: a supervisor holds the lock, the status
    /// (35 bytes in s6 2.11, 43 in 2.13) has a pid (bytes 24..32), and the
    /// "finishing" flag (bit 1 of the last byte) is clear; while `finish`
    /// runs, the pid is the finish script's.
    fn is_up(&self) -> Result<bool, Failure> {
        let Some(supervise) = &self.supervise else { return Ok(false) };
        if self.control.is_none() || !fsx::is_locked(supervise)? {
            return Ok(false);
        }
        let Some(status) = fsx::open_file(supervise, "status", "supervise/status")? else { return Ok(false) };
        let mut buf = [0u8; 44];
        let n = nix::unistd::read(&status, &mut buf).map_err(|e| internal("supervise/status", e))?;
        if n != 35 && n != 43 {
            return Err(unsafe_state("supervise/status has an unknown size"));
        }
        Ok(buf[24..32].iter().any(|&b| b != 0) && buf[n - 1] & 0b10 == 0)
    }
}

/// start: want up, and give a crash-looping gateway a new chance.
/// stop: want down. restart: SIGTERM a running gateway so s6 starts it again
/// (marked, so that `finish` restarts it whatever its exit code), or start a
/// stopped one. The intent (the `down` marker) is on disk before the command.
pub fn control(scan: &Scan, p: &Profile, op: Op) -> Result<Delivery, Failure> {
    let target = Target::open(scan, p)?;
    let wants_up: &[&str] = &["crash-loop", "fast-failures", "down"];
    let (clear, mark, command): (&[&str], Option<&str>, &[u8]) = match op {
        Op::Stop => (&[RESTART_MARKER], Some("down"), b"d"),
        Op::Restart if target.is_up()? => (wants_up, Some(RESTART_MARKER), b"ut"),
        _ => (wants_up, None, b"u"),
    };
    clear.iter().try_for_each(|file| fsx::remove(&target.slot, *file, UnlinkatFlags::NoRemoveDir))?;
    if let Some(file) = mark {
        target.mark(file)?;
    }
    target.deliver(command)
}
