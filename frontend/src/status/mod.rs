//! What `gateway status` reports for each gateway, and the versioned JSON
//! document it prints with `--json` (schema in `SCHEMA.md`). The s6 backend
//! reads a whole slot (`slot`); host backends only say whether a gateway
//! runs ([`GatewayStatus::from_is_running`]).

#[cfg(unix)]
pub(crate) mod slot;

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Error;
use crate::profile::ProfileName;
use crate::s6::status::SuperviseStatus;
use crate::s6::{ExitCause, signal_name};
use crate::time::{Tai64N, iso8601_utc};
use crate::vocabulary::{Intent, ServiceManagerKind};

/// Identifier of the status document's schema. A consumer checks it before
/// reading anything else; a change that removes or redefines a field gets a
/// new number, added fields do not.
pub const STATUS_SCHEMA: &str = "hermes-s6.status/1";

/// One-word summary of a gateway slot (what s6 says; what the gateway
/// itself recorded is [`GatewayStatus::gateway_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// The gateway process runs.
    Up,
    /// No process runs (s6 may be waiting to restart it: see `want_up`).
    Down,
    /// `./finish` runs after the gateway ended.
    Finishing,
    /// The slot exists but no s6-supervise runs on it (not scanned yet, or
    /// its supervisor died): nothing will start it until a rescan.
    Unsupervised,
    /// The profile has no slot.
    Unregistered,
    /// The slot's state could not be read (see `problems`).
    Unknown,
}

impl SlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Finishing => "finishing",
            Self::Unsupervised => "unsupervised",
            Self::Unregistered => "unregistered",
            Self::Unknown => "unknown",
        }
    }
}

/// How the gateway's process last ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastExit {
    /// Exit code, when it exited.
    pub exit_code: Option<u8>,
    /// Signal number, when a signal killed it.
    pub signal: Option<u8>,
    /// `SIGTERM`, `SIGKILL`, …
    pub signal_name: Option<&'static str>,
}

impl From<ExitCause> for LastExit {
    fn from(cause: ExitCause) -> Self {
        match cause {
            ExitCause::Exited(code) => Self {
                exit_code: Some(code),
                signal: None,
                signal_name: None,
            },
            ExitCause::Signaled(signal) => Self {
                exit_code: None,
                signal: Some(signal),
                signal_name: signal_name(signal),
            },
        }
    }
}

/// The supervised process, as s6 reports it. Every field answers what
/// `s6-svstat -o <field>` answers for the same slot at the same moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStatus {
    /// `up`: the gateway process runs (and it is not `./finish`).
    pub up: bool,
    /// `pid`, while up.
    pub pid: Option<u64>,
    /// `wantedup`: s6 restarts the gateway whenever it goes down.
    pub want_up: bool,
    /// `normallyup`: the slot has no `down` file.
    pub normally_up: bool,
    /// `ready`: up and has notified readiness.
    pub ready: bool,
    /// `paused`: stopped with SIGSTOP.
    pub paused: bool,
    /// `./finish` runs.
    pub finishing: bool,
    /// The gateway has not run since its supervisor started: s6 2.13.2+'s
    /// "down (not started yet)". Always false on older s6, which cannot
    /// tell (their `s6-svstat` says "down (exitcode 0)").
    pub never_started: bool,
    /// `updownsince`, as an ISO-8601 UTC time.
    pub since: Option<String>,
    /// `updownsince`, as s6 prints it (TAI64N label).
    pub since_tai64n: String,
    /// `updownfor`: whole seconds in the current state.
    pub seconds: u64,
    /// `readysince`, as s6 prints it.
    pub ready_since_tai64n: String,
    /// `readyfor`.
    pub ready_seconds: u64,
    /// `exitcode` / `signal`: how the last run ended, while down.
    pub last_exit: Option<LastExit>,
    /// `pgid`: the process group while up (s6 2.13.x: also while
    /// finishing), as `s6-svstat -o pgid` reports it.
    pub pgid: Option<u64>,
}

impl ProcessStatus {
    pub fn from_status(status: &SuperviseStatus, normally_up: bool, now: Tai64N) -> Self {
        Self {
            up: status.is_up(),
            pid: status.up_pid(),
            want_up: status.want_up,
            normally_up,
            ready: status.is_ready(),
            paused: status.is_paused(),
            finishing: status.finishing,
            never_started: status.never_started(),
            since: status.stamp.to_unix_seconds().map(iso8601_utc),
            since_tai64n: status.stamp.to_label_string(),
            seconds: status.seconds_in_state(now),
            ready_since_tai64n: status.ready_stamp.to_label_string(),
            ready_seconds: status.seconds_since_ready(now),
            last_exit: status.last_exit().map(LastExit::from),
            pgid: status.process_group(),
        }
    }
}

/// The record a slot's finish script leaves when it gives up on a gateway
/// that keeps dying fast (the file `crash-loop` in the slot). s6 then keeps
/// the gateway down until the next explicit start or restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrashLoop {
    /// The record as written, e.g. `crash-looping: stopped after 5 failures
    /// in 60 s (last exit 1, at 1795861896)`.
    pub record: String,
    /// Exit code of the last failure as `./finish` saw it (256: killed by a
    /// signal), when the record states it.
    pub last_exit: Option<u32>,
    /// When the gateway was given up on (Unix seconds), when stated.
    pub at: Option<u64>,
}

impl CrashLoop {
    /// Reads what it can from the record; the text is kept whole either way.
    pub fn parse(record: &str) -> Self {
        let record = record.trim().to_owned();
        let number_after = |marker: &str| -> Option<u64> {
            let rest = &record[record.find(marker)? + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        Self {
            last_exit: number_after("last exit ").and_then(|n| u32::try_from(n).ok()),
            at: number_after(", at "),
            record,
        }
    }
}

/// Everything known about one profile's gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayStatus {
    pub profile: ProfileName,
    /// The slot's name in the scan directory (`gateway-<profile>`).
    pub service: String,
    pub state: SlotState,
    /// A slot exists for the profile.
    pub registered: bool,
    /// An s6-supervise process holds the slot's lock: the status is current.
    pub supervised: bool,
    /// Present when supervised and the status file was readable.
    pub process: Option<ProcessStatus>,
    /// Deaths s6 recorded for the slot (`supervise/death_tally`, which keeps
    /// the last 100 by default).
    pub restarts: Option<u64>,
    /// `desired_state` from `gateway_state.json` (`running` / `stopped`).
    pub desired_state: Option<String>,
    /// When `desired_state` was written (Unix seconds).
    pub desired_state_updated_at: Option<serde_json::Number>,
    /// `gateway_state` written by the gateway itself.
    pub gateway_state: Option<String>,
    /// The gateway's current log file.
    pub log: PathBuf,
    /// Present when the slot's finish script gave up on a crash loop.
    pub crash_loop: Option<CrashLoop>,
    /// Things that could not be read, one short sentence each.
    pub problems: Vec<String>,
}

impl GatewayStatus {
    /// A status with nothing known yet but the names.
    pub fn new(profile: ProfileName, log: PathBuf) -> Self {
        Self {
            service: profile.service_name(),
            profile,
            state: SlotState::Unknown,
            registered: false,
            supervised: false,
            process: None,
            restarts: None,
            desired_state: None,
            desired_state_updated_at: None,
            gateway_state: None,
            log,
            crash_loop: None,
            problems: Vec::new(),
        }
    }

    /// What a host service manager can tell: whether the gateway runs.
    pub fn from_is_running(
        profile: ProfileName,
        log: PathBuf,
        running: Result<bool, Error>,
    ) -> Self {
        let mut status = Self::new(profile, log);
        match running {
            Ok(running) => {
                status.registered = true;
                status.supervised = true;
                status.state = if running {
                    SlotState::Up
                } else {
                    SlotState::Down
                };
            }
            Err(e) => status.problems.push(e.to_string()),
        }
        status
    }

    /// The recorded intent, when there is one (`running`, or anything else
    /// for stopped).
    pub fn intent(&self) -> Option<Intent> {
        self.desired_state.as_deref().map(Intent::from_recorded)
    }
}

/// The `--json` document of `gateway status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub schema: &'static str,
    pub service_manager: ServiceManagerKind,
    /// ISO-8601 UTC time the report was made.
    pub generated_at: String,
    pub gateways: Vec<GatewayStatus>,
}

impl StatusReport {
    pub fn new(service_manager: ServiceManagerKind, gateways: Vec<GatewayStatus>) -> Self {
        Self {
            schema: STATUS_SCHEMA,
            service_manager,
            generated_at: iso8601_utc(crate::time::unix_now()),
            gateways,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crash_loop_records() {
        let record = CrashLoop::parse(
            "crash-looping: stopped after 5 failures in 60 s (last exit 256, at 1795861896)\n",
        );
        assert_eq!(record.last_exit, Some(256));
        assert_eq!(record.at, Some(1_795_861_896));
        assert!(record.record.starts_with("crash-looping: stopped"));
        assert!(!record.record.ends_with('\n'));
        let odd = CrashLoop::parse("something else");
        assert_eq!((odd.last_exit, odd.at), (None, None));
        assert_eq!(odd.record, "something else");
    }
}
