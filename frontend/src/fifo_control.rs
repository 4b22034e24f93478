//! No-setuid mode: s6 control bytes written straight into a gateway's
//! `supervise/control` FIFO, which the boot granted to group hermes
//! (`s6-svperms -G hermes`; see [`crate::control_mode`]).
//!
//! s6's control protocol is one byte per command. The persistent forms are
//! used, so that the slot keeps the intent s6 itself reads when its
//! supervisor (re)starts, as the helper keeps it: `U` want up and remove the
//! slot's `down` file, `D` want down and create it (s6-supervise, as root,
//! creates or removes that one file in the slot it supervises; checked
//! against s6 2.11), `t` SIGTERM. The FIFO is reached through descriptors,
//! each checked with `fstat` before the next step: the scan directory, the
//! slot and `supervise/` must be root-owned directories nobody else may
//! write, the control FIFO a FIFO owned by root, group hermes, writable by
//! that group and not by others. The FIFO is opened
//! `O_WRONLY|O_NONBLOCK|O_NOFOLLOW`, so nothing ever blocks: a FIFO without
//! a reader (no s6-supervise on the slot) fails at once with `ENXIO`.
//!
//! What the helper does and this mode cannot:
//! - `start` cannot remove a crash-loop record or the fast-failure counter
//!   (files of the slot only root writes): after a crash loop, a gateway
//!   that fails fast again within the minute is given up on at once; the
//!   stale record is not reported while the gateway runs;
//! - `restart` cannot leave the restart-requested marker that makes the
//!   slot's finish script restart the gateway whatever its exit code. So a
//!   gateway that exits 0 on SIGTERM would be stopped by `finish` (0 means
//!   a clean stop). [`restart`] therefore watches each signalled gateway
//!   (bounded by [`RESTART_WAIT`], polling `supervise/status`) until its
//!   process has ended: a new process up is done; a gateway that ended down
//!   after exiting 0 gets `U` again.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::unistd::{Gid, Group};

use crate::config::Config;
use crate::error::Error;
use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;
use crate::s6::status::SuperviseStatus;
use crate::s6::{ExitCause, supervise};

/// How long `restart` waits for a signalled gateway's process to end: the
/// slot's `timeout-kill` (10 s, then s6 sends SIGKILL) plus time for its
/// `finish` script.
pub const RESTART_WAIT: Duration = Duration::from_secs(15);

/// s6 control commands: want up and remove the slot's `down` file.
pub const UP: &[u8] = b"U";
/// Want down and create the slot's `down` file.
pub const DOWN: &[u8] = b"D";
/// Want up (persistently), then SIGTERM: a restart.
pub const UP_AND_TERM: &[u8] = b"Ut";

/// The gid of the group the boot granted control to.
pub fn control_gid(config: &Config) -> Result<Gid, String> {
    match Group::from_name(&config.hermes_user) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(format!("group {} does not exist", config.hermes_user)),
        Err(e) => Err(format!(
            "cannot look up group {}: {}",
            config.hermes_user,
            e.desc()
        )),
    }
}

/// Why a control FIFO may not be written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FifoProblem {
    /// The slot does not exist.
    NoSlot,
    /// No s6-supervise has the FIFO open.
    NoReader,
    /// The FIFO (or a directory on the way) is not what the grant makes
    /// it; why.
    NotGranted(String),
}

/// Checks an object on the way to the FIFO: a root-owned directory that
/// neither group nor others may write.
fn check_dir(st: &FileStat, what: &str) -> Result<(), FifoProblem> {
    let is_dir = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
    if !is_dir || st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return Err(FifoProblem::NotGranted(format!(
            "{what} is not a root-owned directory closed to writes by others"
        )));
    }
    Ok(())
}

/// Checks the control FIFO itself: a FIFO owned by root, group `gid`,
/// writable by that group, not by others.
pub fn check_granted_fifo(st: &FileStat, gid: Gid) -> Result<(), String> {
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFIFO.bits() {
        return Err("supervise/control is not a FIFO".into());
    }
    if st.st_uid != 0 {
        return Err("supervise/control is not owned by root".into());
    }
    if st.st_mode & 0o002 != 0 {
        return Err("supervise/control is writable by everyone".into());
    }
    if st.st_gid != gid.as_raw() || st.st_mode & 0o020 == 0 {
        return Err("supervise/control is not writable by group hermes".into());
    }
    Ok(())
}

fn errno_problem(errno: Errno, what: &str) -> FifoProblem {
    match errno {
        Errno::ELOOP | Errno::ENOTDIR => {
            FifoProblem::NotGranted(format!("{what} is a symbolic link or not a directory"))
        }
        Errno::EACCES | Errno::EPERM => FifoProblem::NotGranted(format!(
            "permission denied on {what} (control not granted to group hermes)"
        )),
        other => FifoProblem::NotGranted(format!("cannot open {what}: {}", other.desc())),
    }
}

/// Opens the gateway's control FIFO for writing, every step checked.
pub fn open_control(
    scan_dir: &Path,
    profile: &ProfileName,
    gid: Gid,
) -> Result<OwnedFd, FifoProblem> {
    let path_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let scan = open(scan_dir, path_flags, Mode::empty())
        .map_err(|e| errno_problem(e, "the scan directory"))?;
    check_dir(
        &fstat(&scan).map_err(|e| errno_problem(e, "the scan directory"))?,
        "the scan directory",
    )?;
    let slot = match openat(
        &scan,
        profile.service_name().as_str(),
        path_flags,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(FifoProblem::NoSlot),
        Err(e) => return Err(errno_problem(e, "the slot")),
    };
    check_dir(
        &fstat(&slot).map_err(|e| errno_problem(e, "the slot"))?,
        "the slot",
    )?;
    let supervise = openat(&slot, "supervise", path_flags, Mode::empty()).map_err(|e| match e {
        Errno::ENOENT => FifoProblem::NoReader,
        other => errno_problem(other, "supervise/"),
    })?;
    check_dir(
        &fstat(&supervise).map_err(|e| errno_problem(e, "supervise/"))?,
        "supervise/",
    )?;
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fifo = match openat(&supervise, "control", flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENXIO | Errno::ENOENT) => return Err(FifoProblem::NoReader),
        Err(e) => return Err(errno_problem(e, "supervise/control")),
    };
    let st = fstat(&fifo).map_err(|e| errno_problem(e, "supervise/control"))?;
    check_granted_fifo(&st, gid).map_err(FifoProblem::NotGranted)?;
    Ok(fifo)
}

fn send_with(
    config: &Config,
    profile: &ProfileName,
    command: &[u8],
    gid: Gid,
) -> Result<(), Error> {
    let fifo = open_control(&config.scan_dir, profile, gid).map_err(|problem| match problem {
        FifoProblem::NoSlot => Error::GatewayNotRegistered {
            profile: profile.clone(),
        },
        FifoProblem::NoReader => Error::SuperviseNotRunning {
            profile: profile.clone(),
        },
        FifoProblem::NotGranted(reason) => Error::ControlNotGranted {
            profile: profile.clone(),
            reason,
        },
    })?;
    write_all(fifo.as_fd(), command).map_err(|errno| match errno {
        Errno::EPIPE => Error::SuperviseNotRunning {
            profile: profile.clone(),
        },
        other => Error::io(
            "write to",
            config.slot_dir(profile).join("supervise/control"),
            std::io::Error::from(other),
        ),
    })
}

/// A write of a couple of bytes to a pipe is atomic: all or nothing.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, bytes: &[u8]) -> Result<(), Errno> {
    match nix::unistd::write(fd, bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(Errno::EAGAIN),
        Err(e) => Err(e),
    }
}

/// Sends `command` to each gateway; one result per profile, in order.
pub fn send_all(config: &Config, profiles: &[ProfileName], command: &[u8]) -> ProfileOutcomes {
    let gid = control_gid(config);
    profiles
        .iter()
        .map(|profile| {
            let result = match &gid {
                Ok(gid) => send_with(config, profile, command, *gid),
                Err(reason) => Err(Error::ControlNotGranted {
                    profile: profile.clone(),
                    reason: reason.clone(),
                }),
            };
            (profile.clone(), result)
        })
        .collect()
}

/// Where a signalled gateway is, as far as a restart is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartProgress {
    /// Its old process still runs, or `finish` runs: keep watching.
    Waiting,
    /// A new process runs, or s6 decided to keep it down for a reason of
    /// its own (a crash loop, a configuration error): nothing more to do.
    Done,
    /// It ended with exit 0 and `finish` took that for a clean stop: it
    /// must be wanted up again.
    EndedDown,
}

/// Judges one status read of a gateway whose process `old_pid` was sent
/// [`UP_AND_TERM`].
pub fn restart_progress(status: &SuperviseStatus, old_pid: u64) -> RestartProgress {
    if status.finishing {
        return RestartProgress::Waiting;
    }
    if status.is_up() {
        return if status.pid == old_pid {
            RestartProgress::Waiting
        } else {
            RestartProgress::Done
        };
    }
    if status.want_up {
        // Down between two runs: s6 starts it again after its restart delay.
        return RestartProgress::Waiting;
    }
    match status.last_exit() {
        Some(ExitCause::Exited(0)) => RestartProgress::EndedDown,
        _ => RestartProgress::Done,
    }
}

/// Restarts gateways: a running one gets `Ut` (want up, SIGTERM) and is
/// watched until its process has ended (see the module documentation); a
/// stopped one gets `U`.
pub fn restart(config: &Config, profiles: &[ProfileName]) -> ProfileOutcomes {
    restart_within(config, profiles, RESTART_WAIT)
}

pub fn restart_within(
    config: &Config,
    profiles: &[ProfileName],
    wait: Duration,
) -> ProfileOutcomes {
    let gid = match control_gid(config) {
        Ok(gid) => gid,
        Err(reason) => {
            return profiles
                .iter()
                .map(|p| {
                    let error = Error::ControlNotGranted {
                        profile: p.clone(),
                        reason: reason.clone(),
                    };
                    (p.clone(), Err(error))
                })
                .collect();
        }
    };
    let mut outcomes: ProfileOutcomes = Vec::with_capacity(profiles.len());
    let mut watched: Vec<(usize, u64)> = Vec::new();
    for profile in profiles {
        let slot = config.slot_dir(profile);
        let result = match supervise::up_pid(&slot) {
            Some(pid) => send_with(config, profile, UP_AND_TERM, gid).inspect(|()| {
                watched.push((outcomes.len(), pid));
            }),
            None => send_with(config, profile, UP, gid),
        };
        outcomes.push((profile.clone(), result));
    }
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(2);
    while !watched.is_empty() {
        watched.retain(|&(index, old_pid)| {
            let (profile, result) = &mut outcomes[index];
            let slot = config.slot_dir(profile);
            let progress = match supervise::read_status(&slot) {
                Ok(status) => restart_progress(&status, old_pid),
                // Unreadable now: the signal was sent; nothing to judge by.
                Err(_) => RestartProgress::Done,
            };
            match progress {
                RestartProgress::Waiting => {
                    if Instant::now() >= deadline {
                        *result = Err(Error::RestartUnfinished {
                            profile: profile.clone(),
                            seconds: wait.as_secs(),
                        });
                        return false;
                    }
                    true
                }
                RestartProgress::Done => false,
                RestartProgress::EndedDown => {
                    *result = send_with(config, profile, UP, gid);
                    false
                }
            }
        });
        if !watched.is_empty() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Tai64N;

    fn status(pid: u64, finishing: bool, want_up: bool, wait_status: u16) -> SuperviseStatus {
        let stamp = Tai64N::from_label_str("@400000006b0aad901e4a0c19").unwrap();
        SuperviseStatus {
            stamp,
            ready_stamp: stamp,
            pid,
            pgid: None,
            wait_status,
            paused: false,
            finishing,
            want_up,
            ready_flag: false,
        }
    }

    #[test]
    fn judges_a_restart_from_the_status() {
        use RestartProgress::*;
        // Still the old process.
        assert_eq!(restart_progress(&status(42, false, true, 0), 42), Waiting);
        // finish runs (its pid is in the status).
        assert_eq!(restart_progress(&status(43, true, true, 0), 42), Waiting);
        // Between two runs, s6 wants it up: it comes back by itself.
        assert_eq!(
            restart_progress(&status(0, false, true, 0x0100), 42),
            Waiting
        );
        // A new process.
        assert_eq!(restart_progress(&status(44, false, true, 0), 42), Done);
        // Ended with exit 0, finish made it a stop: start it again.
        assert_eq!(restart_progress(&status(0, false, false, 0), 42), EndedDown);
        // Kept down for a reason of s6's own: exit 78, a crash loop.
        assert_eq!(
            restart_progress(&status(0, false, false, 78 << 8), 42),
            Done
        );
        assert_eq!(restart_progress(&status(0, false, false, 0x0009), 42), Done);
    }

    fn st(mode: u32, uid: u32, gid: u32) -> FileStat {
        let mut st = nix::sys::stat::stat("/").expect("stat /");
        st.st_mode = mode;
        st.st_uid = uid;
        st.st_gid = gid;
        st
    }

    #[test]
    fn only_a_granted_fifo_is_written() {
        let gid = Gid::from_raw(10000);
        let fifo = SFlag::S_IFIFO.bits();
        assert_eq!(check_granted_fifo(&st(fifo | 0o620, 0, 10000), gid), Ok(()));
        let refused = [
            st(fifo | 0o600, 0, 0),
            st(fifo | 0o620, 0, 10001),
            st(fifo | 0o600, 0, 10000),
            st(fifo | 0o622, 0, 10000),
            st(fifo | 0o620, 10000, 10000),
            st(SFlag::S_IFREG.bits() | 0o620, 0, 10000),
        ];
        for s in refused {
            assert!(check_granted_fifo(&s, gid).is_err(), "{:o}", s.st_mode);
        }
    }

    #[test]
    fn directories_on_the_way_are_roots_and_closed() {
        let dir = SFlag::S_IFDIR.bits();
        assert!(check_dir(&st(dir | 0o755, 0, 0), "x").is_ok());
        assert!(check_dir(&st(dir | 0o710, 0, 10000), "x").is_ok());
        assert!(check_dir(&st(dir | 0o775, 0, 10000), "x").is_err());
        assert!(check_dir(&st(dir | 0o755, 10000, 10000), "x").is_err());
        assert!(check_dir(&st(fifo_bits() | 0o755, 0, 0), "x").is_err());
    }

    fn fifo_bits() -> u32 {
        SFlag::S_IFIFO.bits()
    }

    #[test]
    fn a_missing_slot_or_reader_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let profile = ProfileName::new("work").unwrap();
        let gid = Gid::from_raw(0);
        let result = open_control(&dir.path().join("absent"), &profile, gid);
        assert!(
            matches!(result, Err(FifoProblem::NotGranted(_))),
            "{result:?}"
        );
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            open_control(dir.path(), &profile, gid).err(),
            Some(FifoProblem::NoSlot)
        );
        let supervise = dir.path().join("gateway-work/supervise");
        std::fs::create_dir_all(&supervise).unwrap();
        assert_eq!(
            open_control(dir.path(), &profile, gid).err(),
            Some(FifoProblem::NoReader)
        );
        nix::unistd::mkfifo(&supervise.join("control"), Mode::from_bits_truncate(0o620)).unwrap();
        // No reader: nothing blocks, nothing is sent.
        assert_eq!(
            open_control(dir.path(), &profile, gid).err(),
            Some(FifoProblem::NoReader)
        );
    }
}
