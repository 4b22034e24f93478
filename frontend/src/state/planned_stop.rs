//! The marker a gateway consumes when its SIGTERM is a planned stop
//! (`.gateway-planned-stop.json` in its profile home).

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::time::iso8601_utc_micros;

/// The marker a gateway consumes when its SIGTERM is a planned stop: it
/// then records `stopped` and exits 0 instead of asking to be revived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStop {
    pub target_pid: u64,
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks), which
    /// tells a recycled pid from the gateway it names.
    pub target_start_time: Option<u64>,
    pub stopper_pid: u32,
    /// ISO-8601 UTC, as the gateway writes its own timestamps.
    pub written_at: String,
}

impl PlannedStop {
    pub fn for_pid(proc_dir: &Path, pid: u64, now: SystemTime) -> Self {
        Self {
            target_pid: pid,
            target_start_time: process_start_time(proc_dir, pid),
            stopper_pid: std::process::id(),
            written_at: iso8601_utc_micros(now),
        }
    }
}

/// Field 22 (`starttime`) of `<proc>/<pid>/stat`.
pub fn process_start_time(proc_dir: &Path, pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
    parse_start_time(&stat)
}

/// The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`: field 3
/// follows it, making field 22 the 20th after it.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}
