//! The per-profile files shared with the gateway: `gateway_state.json` (the
//! gateway's own state plus the lifecycle intent, this module) and the
//! planned-stop marker ([`planned_stop`]).
//!
//! Profile directories live on a volume the hermes user can write, and the
//! frontend may run as root (cont-init, `docker exec`). So writes go through
//! a descriptor of the profile directory opened without following symlinks
//! ([`ProfileDir`]), files are opened `O_NOFOLLOW`, replaced by rename (which
//! never follows the target), and handed to the directory's owner when root
//! creates them.

mod planned_stop;
mod profile_dir;

use std::fs::File;
use std::io;
use std::path::Path;

use nix::libc;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::STATE_FILE;
use crate::nofollow;
use crate::vocabulary::Intent;

pub use self::planned_stop::PlannedStop;
pub use self::profile_dir::ProfileDir;

/// Largest state file read; anything bigger is treated as corrupt.
pub(crate) const MAX_STATE_FILE: u64 = 1 << 20;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a state file's bytes: an optional UTF-8 BOM, then a JSON object.
/// Anything else (not JSON, an array, a string, …) is `None`.
pub fn parse_state_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Merges the intent into an existing state object, keeping every other key
/// (and its position).
pub fn merge_desired_state(
    mut state: Map<String, Value>,
    desired: Intent,
    updated_at: u64,
) -> Map<String, Value> {
    state.insert("desired_state".into(), Value::from(desired.as_str()));
    state.insert("updated_at".into(), Value::from(updated_at));
    state
}

/// What `gateway_state.json` says, for status reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StateSummary {
    /// `running` / `stopped`, written by the lifecycle commands.
    pub desired_state: Option<String>,
    /// When `desired_state` was last written (Unix seconds), as written.
    pub updated_at: Option<serde_json::Number>,
    /// Written by the gateway: `starting`, `running`, `draining`,
    /// `degraded`, `stopped`, `startup_failed`.
    pub gateway_state: Option<String>,
}

/// Reads `path` for a status report. `Ok(None)` when there is no state file;
/// `Err` with a short reason when it cannot be used.
pub fn read_state_summary(path: &Path) -> Result<Option<StateSummary>, String> {
    let file = match nofollow::open_file(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("{STATE_FILE} is a symbolic link"));
        }
        Err(e) => return Err(format!("cannot read {STATE_FILE}: {e}")),
    };
    let bytes = read_regular_file(file).map_err(|e| format!("cannot read {STATE_FILE}: {e}"))?;
    let map =
        parse_state_object(&bytes).ok_or_else(|| format!("{STATE_FILE} is not a JSON object"))?;
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(StateSummary {
        desired_state: text("desired_state"),
        updated_at: match map.get("updated_at") {
            Some(Value::Number(n)) => Some(n.clone()),
            _ => None,
        },
        gateway_state: text("gateway_state"),
    }))
}

/// A state file's bytes, one more than [`MAX_STATE_FILE`] at most (so an
/// oversized file shows as such).
pub(crate) fn read_regular_file(file: File) -> io::Result<Vec<u8>> {
    nofollow::read_regular(file, MAX_STATE_FILE + 1)
}

#[cfg(test)]
mod tests;
