//! The operations on `gateway-<profile>` slots (design §4, §5), each reaching
//! the scan directory only through the descriptor opened and verified in
//! `Scan::open`.

use crate::config::{COMMAND_DIR, GATEWAY_COMMAND, HERMES_HOME, HERMES_USER, SCAN_DIR};
use crate::exit::{Failure, EXISTS, INTERNAL, NOT_RUNNING, NO_SUCH_SLOT, UNSAFE};
use crate::fsx::{self, internal};
use crate::payload::Var;
use crate::request::Profile;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, Flock, FlockArg, OFlag, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::Gid;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Longer than the slot's `timeout-kill`: by then s6 has killed the gateway.
const RELEASE_DEADLINE: Duration = Duration::from_secs(15);
const TIMEOUT_KILL_MS: &str = "10000\n";
/// Left by `restart` so that `finish` restarts the gateway whatever its exit
/// code (a gateway exiting 0 on SIGTERM must not turn a restart into a stop).
const RESTART_MARKER: &str = "restart-requested";

#[derive(Debug)]
pub struct Scan {
    dir: OwnedFd,
    svscan_dir: OwnedFd,
    svscan_control: OwnedFd,
}

impl Scan {
    /// Opens the scan dir and s6-svscan's control FIFO; 69 when s6-svscan is
    /// not there to read it.
    pub fn open() -> Result<Scan, Failure> {
        let not_running =
            |why: &str| Failure::new(NOT_RUNNING, format!("s6-svscan is not running: {why}"));
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = match nix::fcntl::open(SCAN_DIR, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(not_running(&format!("{SCAN_DIR} does not exist"))),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(Failure::new(
                    UNSAFE,
                    format!("{SCAN_DIR} is a symlink or not a directory"),
                ))
            }
            Err(e) => return Err(internal(SCAN_DIR, e)),
        };
        fsx::verify(&dir, SFlag::S_IFDIR, SCAN_DIR)?;
        let svscan_dir = fsx::open_dir(&dir, ".s6-svscan", ".s6-svscan")?
            .ok_or_else(|| not_running("no .s6-svscan"))?;
        let svscan_control = fsx::open_fifo(&svscan_dir, "control", ".s6-svscan/control")?
            .ok_or_else(|| not_running("no reader on .s6-svscan/control"))?;
        Ok(Scan {
            dir,
            svscan_dir,
            svscan_control,
        })
    }

    /// `a` rescan, `n` prune supervisors of vanished services.
    pub fn svscan(&self, command: &[u8]) -> Result<(), Failure> {
        match fsx::write_fifo(&self.svscan_control, command, ".s6-svscan/control")? {
            true => Ok(()),
            false => Err(Failure::new(
                NOT_RUNNING,
                "s6-svscan stopped reading its control FIFO",
            )),
        }
    }

    /// Serializes helpers: two concurrent calls on one slot would otherwise
    /// remove each other's staging directory. The lock is taken on
    /// `.s6-svscan` (0700 root), so the caller cannot open it to block
    /// everyone, and no file is created for it.
    pub fn lock(&self) -> Result<Flock<OwnedFd>, Failure> {
        let fd = self
            .svscan_dir
            .try_clone()
            .map_err(|e| Failure::new(INTERNAL, format!("lock: {e}")))?;
        Flock::lock(fd, FlockArg::LockExclusive).map_err(|(_, e)| internal("lock", e))
    }
}

fn staging_name(p: &Profile) -> String {
    format!(".{}.new", p.service())
}

fn retired_name(p: &Profile) -> String {
    format!(".{}.old", p.service())
}

/// Finishes what an interrupted helper left behind for this profile: a
/// half-built staging dir, or a retired slot still waiting to be torn down.
fn clean_leftovers(scan: &Scan, p: &Profile) -> Result<(), Failure> {
    fsx::remove_tree(&scan.dir, &staging_name(p))?;
    match fsx::open_dir(&scan.dir, &retired_name(p), "retired slot")? {
        Some(retired) => {
            let supervisors = supervisors(&retired)?;
            remove_retired(scan, p, &supervisors)
        }
        None => Ok(()),
    }
}

/// Stops what still runs in a retired slot and removes it. A scan that was
/// in flight when the slot was retired may have just started a supervisor
/// there (not holding its lock yet): s6-svscan's prune stops it, and the
/// removal is retried until it has.
fn remove_retired(scan: &Scan, p: &Profile, supervisors: &Supervisors) -> Result<(), Failure> {
    let deadline = Instant::now() + RELEASE_DEADLINE;
    tear_down(scan, supervisors, deadline)?;
    loop {
        match fsx::remove_tree(&scan.dir, &retired_name(p)) {
            Err(f) if f.code == INTERNAL && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
                for (dir, _) in supervisors {
                    wait_released(dir, deadline)?;
                }
            }
            done => return done,
        }
    }
}

pub fn register(scan: &Scan, p: &Profile, env: Option<&[Var]>, hermes: Gid) -> Result<(), Failure> {
    clean_leftovers(scan, p)?;
    if let Some(st) = fsx::probe(&scan.dir, &p.service(), "slot")? {
        return Err(if fsx::is_dir(&st) && st.st_uid == 0 {
            Failure::new(EXISTS, "slot already exists; nothing changed")
        } else {
            Failure::new(UNSAFE, "something other than a root-owned directory is at the slot's name; nothing changed")
        });
    }
    let stage_name = staging_name(p);
    let built = build_slot(scan, p, env, hermes, &stage_name).and_then(|()| {
        // Publishing never replaces whatever may have appeared at the name.
        renameat2(
            &scan.dir,
            stage_name.as_str(),
            &scan.dir,
            p.service().as_str(),
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| match e {
            Errno::EEXIST => Failure::new(EXISTS, "slot already exists; nothing changed"),
            e => internal("publishing the slot", e),
        })
    });
    if built.is_err() {
        let _ = fsx::remove_tree(&scan.dir, &stage_name);
    }
    built
}

/// Builds the whole slot in a dot-prefixed sibling, which s6-svscan ignores,
/// closed to everyone (0700) until it is complete.
fn build_slot(
    scan: &Scan,
    p: &Profile,
    env: Option<&[Var]>,
    hermes: Gid,
    stage_name: &str,
) -> Result<(), Failure> {
    let stage = fsx::create_dir(&scan.dir, stage_name, 0o700, None)?;
    fsx::create_file(&stage, "run", run_script(p).as_bytes(), 0o755, None)?;
    fsx::create_file(&stage, "finish", finish_script(p).as_bytes(), 0o755, None)?;
    fsx::create_file(&stage, "down", b"", 0o644, None)?;
    fsx::create_file(
        &stage,
        "timeout-kill",
        TIMEOUT_KILL_MS.as_bytes(),
        0o644,
        None,
    )?;
    // Pre-created so that s6-supervise adopts it as is: group hermes may
    // traverse it and read status/lock, while control stays 0600 root (I9).
    fsx::create_dir(&stage, "supervise", 0o710, Some(hermes))?;
    if let Some(vars) = env.filter(|vars| !vars.is_empty()) {
        let env_dir = fsx::create_dir(&stage, "env", 0o750, Some(hermes))?;
        for var in vars {
            // s6-envdir -f drops exactly one final newline, so an empty value
            // survives as "\n" (an empty file would unset the variable).
            let mut content = zeroize::Zeroizing::new(Vec::with_capacity(var.value.len() + 1));
            content.extend_from_slice(&var.value);
            content.push(b'\n');
            fsx::create_file(&env_dir, &var.key, &content, 0o640, Some(hermes))?;
        }
    }
    let log = fsx::create_dir(&stage, "log", 0o755, None)?;
    fsx::create_file(&log, "run", log_run_script(p).as_bytes(), 0o755, None)?;
    fsx::create_dir(&log, "supervise", 0o710, Some(hermes))?;
    nix::sys::stat::fchmod(&stage, Mode::from_bits_truncate(0o755)).map_err(|e| internal("slot", e))
}

/// Takes the slot out of the scan with one rename, then stops and removes it.
/// Everything is opened and checked before the rename, so an unsafe slot is
/// refused while still untouched.
pub fn unregister(scan: &Scan, p: &Profile) -> Result<(), Failure> {
    clean_leftovers(scan, p)?;
    let Some(slot) = fsx::open_dir(&scan.dir, &p.service(), "slot")? else {
        return Ok(());
    };
    let supervisors = supervisors(&slot)?;
    renameat2(
        &scan.dir,
        p.service().as_str(),
        &scan.dir,
        retired_name(p).as_str(),
        RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(|e| internal("retiring the slot", e))?;
    remove_retired(scan, p, &supervisors)
}

/// The service's `supervise/` then the logger's, each with its control FIFO
/// when a supervisor reads it.
type Supervisors = Vec<(OwnedFd, Option<OwnedFd>)>;

fn supervisors(slot: &OwnedFd) -> Result<Supervisors, Failure> {
    let mut found = Vec::new();
    if let Some(dir) = fsx::open_dir(slot, "supervise", "supervise")? {
        let control = fsx::open_fifo(&dir, "control", "supervise/control")?;
        found.push((dir, control));
    }
    if let Some(log) = fsx::open_dir(slot, "log", "log")? {
        if let Some(dir) = fsx::open_dir(&log, "supervise", "log/supervise")? {
            let control = fsx::open_fifo(&dir, "control", "log/supervise/control")?;
            found.push((dir, control));
        }
    }
    Ok(found)
}

/// Stops the service, then its logger (so the gateway's last lines are
/// logged): "d" down, "x" exit once down; then waits until each supervisor
/// has released the slot. A supervisor already gone is fine.
fn tear_down(scan: &Scan, supervisors: &Supervisors, deadline: Instant) -> Result<(), Failure> {
    for (i, (dir, control)) in supervisors.iter().enumerate() {
        if let Some(fifo) = control {
            fsx::write_fifo(fifo, b"dx", "supervise/control")?;
        }
        if i == 0 {
            // Rescan so s6-svscan forgets the slot and prunes what it still runs.
            scan.svscan(b"an")?;
        }
        wait_released(dir, deadline)?;
    }
    Ok(())
}

/// Polls the supervisor's lock (backing off to 20 ms): s6 offers no
/// notification a root process could wait on without subscribing to events.
fn wait_released(supervise: &OwnedFd, deadline: Instant) -> Result<(), Failure> {
    let mut pause = Duration::from_millis(1);
    while fsx::is_locked(supervise, "supervise/lock")? {
        if Instant::now() > deadline {
            return Err(Failure::new(
                INTERNAL,
                "supervisor did not exit in time; slot left retired, the next call retries",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// What a control operation achieved: `Sent` when the slot's supervisor got
/// the command, `NeedsScan` when no supervisor runs for the slot yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    NeedsScan,
}

/// A slot about to receive a command, checked entirely before any change:
/// the slot directory, and its control FIFO when a supervisor reads it.
struct Target {
    slot: OwnedFd,
    control: Option<OwnedFd>,
}

impl Target {
    fn open(scan: &Scan, p: &Profile) -> Result<Target, Failure> {
        let slot = fsx::open_dir(&scan.dir, &p.service(), "slot")?.ok_or_else(|| {
            Failure::new(NO_SUCH_SLOT, "no such slot: register the profile first")
        })?;
        let control = match fsx::open_dir(&slot, "supervise", "supervise")? {
            Some(supervise) => fsx::open_fifo(&supervise, "control", "supervise/control")?,
            None => None,
        };
        Ok(Target { slot, control })
    }

    fn deliver(&self, command: &[u8]) -> Result<Delivery, Failure> {
        match &self.control {
            Some(fifo) if fsx::write_fifo(fifo, command, "supervise/control")? => {
                Ok(Delivery::Sent)
            }
            _ => Ok(Delivery::NeedsScan),
        }
    }
}

/// Want up: the intent (no `down` marker) first, then the command.
pub fn start(scan: &Scan, p: &Profile) -> Result<Delivery, Failure> {
    let target = Target::open(scan, p)?;
    clear_crash_record(&target.slot)?;
    fsx::remove_file(&target.slot, "down")?;
    target.deliver(b"u")
}

/// Want down: the `down` marker first, then the command.
pub fn stop(scan: &Scan, p: &Profile) -> Result<Delivery, Failure> {
    let target = Target::open(scan, p)?;
    ensure_file(&target.slot, "down")?;
    fsx::remove_file(&target.slot, RESTART_MARKER)?;
    target.deliver(b"d")
}

/// SIGTERM a running gateway so s6 starts it again; start it if it is down.
pub fn restart(scan: &Scan, p: &Profile) -> Result<Delivery, Failure> {
    let target = Target::open(scan, p)?;
    let up = target.control.is_some() && is_up(&target.slot)?;
    clear_crash_record(&target.slot)?;
    fsx::remove_file(&target.slot, "down")?;
    if up {
        ensure_file(&target.slot, RESTART_MARKER)?;
        target.deliver(b"ut")
    } else {
        target.deliver(b"u")
    }
}

/// An explicit start or restart gives a crash-looping gateway a new chance.
fn clear_crash_record(slot: &OwnedFd) -> Result<(), Failure> {
    fsx::remove_file(slot, "crash-loop")?;
    fsx::remove_file(slot, "fast-failures")
}

fn ensure_file(slot: &OwnedFd, name: &str) -> Result<(), Failure> {
    match fsx::probe(slot, name, name)? {
        Some(st)
            if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits() && st.st_uid == 0 =>
        {
            Ok(())
        }
        Some(_) => Err(Failure::new(
            UNSAFE,
            format!("{name} is not a root-owned regular file; nothing changed"),
        )),
        None => fsx::create_file(slot, name, b"", 0o644, None),
    }
}

/// Whether the gateway runs: a supervisor holds the lock, `supervise/status`
/// (35 bytes in s6 2.11, 43 in 2.13) has a pid (bytes 24..32), and the
/// "finishing" flag (bit 1 of the last byte) is clear: while `finish` runs,
/// the pid field is the finish script's.
fn is_up(slot: &OwnedFd) -> Result<bool, Failure> {
    let Some(supervise) = fsx::open_dir(slot, "supervise", "supervise")? else {
        return Ok(false);
    };
    if !fsx::is_locked(&supervise, "supervise/lock")? {
        return Ok(false);
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let status = match openat(&supervise, "status", flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(internal("supervise/status", e)),
    };
    fsx::verify(&status, SFlag::S_IFREG, "supervise/status")?;
    let mut buf = [0u8; 44];
    let n =
        nix::unistd::read(status.as_fd(), &mut buf).map_err(|e| internal("supervise/status", e))?;
    if n != 35 && n != 43 {
        return Err(Failure::new(UNSAFE, "supervise/status has an unknown size"));
    }
    let has_pid = buf[24..32].iter().any(|&b| b != 0);
    let finishing = buf[n - 1] & 0b10 != 0;
    Ok(has_pid && !finishing)
}

fn gateway_args(p: &Profile) -> String {
    match p.as_str() {
        "default" => format!("{GATEWAY_COMMAND} gateway run --replace"),
        name => format!("{GATEWAY_COMMAND} -p {name} gateway run --replace"),
    }
}

/// Root sets up the environment, drops to hermes, and only then applies the
/// caller-supplied `env/` (I10): no payload value ever reaches a root process.
fn run_script(p: &Profile) -> String {
    let c = COMMAND_DIR;
    format!(
        "#!{c}/execlineb -P\n\
         # {service}: written by hermes-s6-helper. Root-owned; never edit in place.\n\
         {c}/foreground {{ {c}/redirfd -w 1 started /bin/date +%s }}\n\
         {c}/with-contenv\n\
         {c}/export HOME {HERMES_HOME}\n\
         {c}/export HERMES_S6_SUPERVISED_CHILD 1\n\
         {c}/export HERMES_SUPERVISED_CHILD 1\n\
         {c}/fdmove -c 2 1\n\
         {c}/s6-setuidgid {HERMES_USER}\n\
         {c}/s6-envdir -I -f -L env\n\
         {c}/cd {HERMES_HOME}\n\
         {args}\n",
        service = p.service(),
        args = gateway_args(p),
    )
}

/// Runs as root after each exit of `run`, in the slot directory, with $1 the
/// exit code (256 when killed by a signal). A pending restart always
/// restarts; 0 (clean stop) and 78 (bad configuration) end the service
/// (125); otherwise s6 restarts it, unless it is crash-looping: 5 consecutive
/// runs that each died within 5 s, the 5 within 60 s. The record it leaves
/// (`crash-loop`, root-owned, readable by all) is cleared by start/restart.
const FINISH_TEMPLATE: &str = r#"#!/bin/sh
# @SERVICE@: written by hermes-s6-helper. Root-owned; never edit in place.
if [ -e restart-requested ]; then
  exec /bin/rm -f restart-requested
fi
code=$1
case "$code" in
  0|78) exit 125 ;;
esac
now=$(/bin/date +%s)
started=$(/bin/cat started 2>/dev/null || echo 0)
if [ $((now - started)) -ge 5 ]; then
  exec /bin/rm -f fast-failures
fi
echo "$now" >> fast-failures
# shellcheck disable=SC2046 # one word per timestamp
set -- $(/usr/bin/tail -n 5 fast-failures)
if [ $# -ge 5 ] && [ $((now - $1)) -lt 60 ]; then
  echo "crash-looping: stopped after 5 failures in 60 s (last exit $code, at $now)" > crash-loop
  exit 125
fi
exit 0
"#;

fn finish_script(p: &Profile) -> String {
    FINISH_TEMPLATE.replace("@SERVICE@", &p.service())
}

/// The logger runs as hermes and creates its own directory on the
/// hermes-writable volume; root never writes there.
fn log_run_script(p: &Profile) -> String {
    let c = COMMAND_DIR;
    let dir = format!("{HERMES_HOME}/logs/gateways/{}", p.as_str());
    format!(
        "#!{c}/execlineb -P\n\
         {c}/s6-setuidgid {HERMES_USER}\n\
         {c}/if {{ /bin/mkdir -p {dir} }}\n\
         {c}/s6-log 1 n10 s1000000 T {dir}\n"
    )
}
