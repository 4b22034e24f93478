//! The status of one s6 slot, read as the hermes user: the state file,
//! the crash-loop record, `supervise/death_tally`, `supervise/lock`, the
//! `down` file and `supervise/status`. Problems reading parts of it are
//! reported in [`GatewayStatus::problems`], not as errors.

use std::io;
use std::path::Path;

use super::{CrashLoop, GatewayStatus, ProcessStatus, SlotState};
use crate::config::Config;
use crate::profile::ProfileName;
use crate::s6::supervise;
use crate::state::read_state_summary;
use crate::time::Tai64N;

/// Whether the profile has a slot (a real directory, not a symlink).
pub(crate) fn slot_exists(config: &Config, profile: &ProfileName) -> bool {
    std::fs::symlink_metadata(config.slot_dir(profile)).is_ok_and(|m| m.is_dir())
}

/// The status of each of `profiles`, in order. Each gateway costs a dozen
/// small reads; with hundreds of them the reads dominate, so they are
/// spread over the available cores.
pub(crate) fn read_all(
    config: &Config,
    profiles: &[ProfileName],
    now: Tai64N,
) -> Vec<GatewayStatus> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = profiles.len().div_ceil(workers).max(64);
    std::thread::scope(|scope| {
        let handles: Vec<_> = profiles
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|p| read(config, p, now))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

pub(crate) fn read(config: &Config, profile: &ProfileName, now: Tai64N) -> GatewayStatus {
    let mut status = GatewayStatus::new(profile.clone(), config.log_file(profile));
    match read_state_summary(&config.state_file(profile)) {
        Ok(Some(summary)) => {
            status.desired_state = summary.desired_state;
            status.desired_state_updated_at = summary.updated_at;
            status.gateway_state = summary.gateway_state;
        }
        Ok(None) => {}
        Err(problem) => status.problems.push(problem),
    }
    let slot = config.slot_dir(profile);
    if !slot_exists(config, profile) {
        status.state = SlotState::Unregistered;
        return status;
    }
    status.registered = true;
    match read_crash_loop(&slot) {
        Ok(record) => status.crash_loop = record.as_deref().map(CrashLoop::parse),
        Err(e) => status
            .problems
            .push(unreadable("the crash-loop record", &e)),
    }
    match supervise::death_count(&slot) {
        Ok(count) => status.restarts = Some(count),
        Err(e) => status
            .problems
            .push(unreadable("supervise/death_tally", &e)),
    }
    match supervise::supervisor_running(&slot) {
        Ok(true) => status.supervised = true,
        Ok(false) => {
            status.state = SlotState::Unsupervised;
            return status;
        }
        Err(e) => {
            status.problems.push(unreadable("supervise/lock", &e));
            return status;
        }
    }
    let normally_up = match supervise::is_normally_up(&slot) {
        Ok(normally_up) => normally_up,
        Err(e) => {
            status.problems.push(unreadable("the down marker", &e));
            return status;
        }
    };
    match supervise::read_status(&slot) {
        Ok(raw) => {
            let process = ProcessStatus::from_status(&raw, normally_up, now);
            status.state = if process.up {
                SlotState::Up
            } else if process.finishing {
                SlotState::Finishing
            } else {
                SlotState::Down
            };
            // A record left when s6 gave up is stale once the gateway
            // runs again (in no-setuid mode a start cannot remove it).
            if process.up {
                status.crash_loop = None;
            }
            status.process = Some(process);
        }
        Err(e) => status.problems.push(e.to_string()),
    }
    status
}

/// The slot's `crash-loop` record (written by its finish script), if any.
fn read_crash_loop(slot: &Path) -> io::Result<Option<String>> {
    use std::io::Read;
    let file = match std::fs::File::open(slot.join("crash-loop")) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text)?;
    Ok(Some(text))
}

fn unreadable(what: &str, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::PermissionDenied {
        format!(
            "cannot read {what}: permission denied (supervise/ must be readable by group hermes)"
        )
    } else {
        format!("cannot read {what}: {error}")
    }
}
