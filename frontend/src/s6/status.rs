//! `supervise/status`: the binary record s6-supervise rewrites (atomically,
//! by rename) on every state change.
//!
//! Layout, big-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 12 | TAI64N stamp of the last up/down transition |
//! | 12 | TAI64N stamp of the last readiness change |
//! | 8 | pid of `./run` (or of `./finish` while finishing); 0 when none |
//! | 8 | process group id — present only in s6 2.13.x's 43-byte files |
//! | 2 | `wait()` status of the last `./run` |
//! | 1 | flags: bit0 paused, bit1 finishing, bit2 want up, bit3 ready |
//!
//! s6 2.11 (Debian 12) and 2.15 (sid; s6-overlay 3.2.3.0 ships 2.15.0.0)
//! write 35 bytes; 2.13.x (Debian 13) writes 43. Any other size is refused:
//! guessing at an unknown layout would report a wrong pid or state.
//!
//! Since s6 2.13.2, a service that has never run (registered down, never
//! started) carries the flags paused and ready with pid 0: a "not started
//! yet" marker, not a paused process ([`SuperviseStatus::never_started`]).
//!
//! The accessors answer exactly what `s6-svstat -o …` answers for the same
//! file, on every version; note that its human line differs for `ready` (see
//! [`SuperviseStatus::ready_flag`]).

use crate::s6::ExitCause;
use crate::time::Tai64N;

/// Size of the status file without the pgid field (s6 2.11, as in Debian 12).
pub const STATUS_LEN: usize = 35;
/// Size of the status file written by s6 2.13.x (with the pgid).
pub const STATUS_LEN_WITH_PGID: usize = 43;

const FLAG_PAUSED: u8 = 1;
const FLAG_FINISHING: u8 = 2;
const FLAG_WANT_UP: u8 = 4;
const FLAG_READY: u8 = 8;

/// A size that is neither 35 nor 43 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadStatusLength(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperviseStatus {
    /// Last time the service went up or down.
    pub stamp: Tai64N,
    /// Last time the service became ready (or ready to be started).
    pub ready_stamp: Tai64N,
    /// Raw pid field: `./run`'s pid while up, `./finish`'s while finishing, 0 otherwise.
    pub pid: u64,
    /// Process group, only recorded by s6 2.13.x (see [`SuperviseStatus::process_group`]).
    pub pgid: Option<u64>,
    /// `wait()` status of the last `./run` that ended.
    pub wait_status: u16,
    /// Raw paused flag: the process is stopped (`s6-svc -p`), or, with pid
    /// 0 and the ready flag, s6 2.13.2+'s "not started yet" marker (see
    /// [`SuperviseStatus::is_paused`]).
    pub paused: bool,
    /// `./finish` is running.
    pub finishing: bool,
    /// s6-supervise will (re)start the service when it is down.
    pub want_up: bool,
    /// Raw ready flag. While the service is down it means "ready to be
    /// started" (no `./finish` running), which `s6-svstat`'s human line
    /// prints as "ready N seconds" but `-o ready` reports as false.
    pub ready_flag: bool,
}

impl SuperviseStatus {
    /// Parses a 35- or 43-byte status file.
    pub fn parse(bytes: &[u8]) -> Result<Self, BadStatusLength> {
        let has_pgid = match bytes.len() {
            STATUS_LEN => false,
            STATUS_LEN_WITH_PGID => true,
            other => return Err(BadStatusLength(other)),
        };
        let stamp = |at: usize| {
            let mut raw = [0; 12];
            raw.copy_from_slice(&bytes[at..at + 12]);
            Tai64N::from_be_bytes(raw)
        };
        let u64_at = |at: usize| {
            let mut raw = [0; 8];
            raw.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(raw)
        };
        let tail = if has_pgid { 40 } else { 32 };
        let flags = bytes[tail + 2];
        Ok(Self {
            stamp: stamp(0),
            ready_stamp: stamp(12),
            pid: u64_at(24),
            pgid: has_pgid.then(|| u64_at(32)),
            wait_status: u16::from_be_bytes([bytes[tail], bytes[tail + 1]]),
            paused: flags & FLAG_PAUSED != 0,
            finishing: flags & FLAG_FINISHING != 0,
            want_up: flags & FLAG_WANT_UP != 0,
            ready_flag: flags & FLAG_READY != 0,
        })
    }

    /// Serializes back to the on-disk layout: 43 bytes when `pgid` is set,
    /// 35 otherwise. Used to build fixtures; `parse(to_bytes())` round-trips.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATUS_LEN_WITH_PGID);
        out.extend_from_slice(&self.stamp.to_be_bytes());
        out.extend_from_slice(&self.ready_stamp.to_be_bytes());
        out.extend_from_slice(&self.pid.to_be_bytes());
        if let Some(pgid) = self.pgid {
            out.extend_from_slice(&pgid.to_be_bytes());
        }
        out.extend_from_slice(&self.wait_status.to_be_bytes());
        let flags = [
            (self.paused, FLAG_PAUSED),
            (self.finishing, FLAG_FINISHING),
            (self.want_up, FLAG_WANT_UP),
            (self.ready_flag, FLAG_READY),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, bit)| flags | bit);
        out.push(flags);
        out
    }

    /// s6 2.13.2 and later: the service has never run since its supervisor
    /// started (flags paused and ready, pid 0). `s6-svstat` prints "down
    /// (not started yet)", `-o paused` false and `-o exitcode` -1. Older
    /// versions leave a plain "down (exitcode 0)" instead.
    pub fn never_started(&self) -> bool {
        self.pid == 0 && self.paused && self.ready_flag && !self.finishing
    }

    /// `-o paused`: the process is stopped by SIGSTOP (not the "not started
    /// yet" marker).
    pub fn is_paused(&self) -> bool {
        self.paused && !self.never_started()
    }

    /// `-o pgid`: the service's process group while up. s6 2.13.x records
    /// it (and `s6-svstat` shows it while `./finish` runs too); s6 2.15
    /// dropped the field because s6-supervise always starts `./run` as a
    /// process group leader, and its `s6-svstat` prints the pid. s6 2.11
    /// starts it the same way (its `s6-svstat` prints no pgid), so the pid
    /// is the process group there too.
    pub fn process_group(&self) -> Option<u64> {
        match self.pgid {
            Some(pgid) => (pgid > 0).then_some(pgid),
            None => self.up_pid(),
        }
    }

    /// `-o up`: a process is running and it is not `./finish`.
    pub fn is_up(&self) -> bool {
        self.pid != 0 && !self.finishing
    }

    /// `-o pid`: the service's pid while it is up.
    pub fn up_pid(&self) -> Option<u64> {
        self.is_up().then_some(self.pid)
    }

    /// `-o ready`: the service is up (or finishing) and has notified readiness.
    pub fn is_ready(&self) -> bool {
        self.pid != 0 && self.ready_flag
    }

    /// `-o exitcode` / `-o signum`: how `./run` last ended, while it is down
    /// (nothing when it never ran).
    pub fn last_exit(&self) -> Option<ExitCause> {
        if self.is_up() || self.never_started() {
            None
        } else {
            ExitCause::from_wait_status(self.wait_status)
        }
    }

    /// `-o updownfor`: whole seconds since the last up/down transition.
    /// Like `s6-svstat`, a stamp in the future counts as now.
    pub fn seconds_in_state(&self, now: Tai64N) -> u64 {
        self.stamp.whole_seconds_until(now)
    }

    /// `-o readyfor`: whole seconds since `ready_stamp`.
    pub fn seconds_since_ready(&self, now: Tai64N) -> u64 {
        self.ready_stamp.whole_seconds_until(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SuperviseStatus {
        SuperviseStatus {
            stamp: Tai64N::from_label_str("@400000006b0aad901e4a0c19").unwrap(),
            ready_stamp: Tai64N::from_label_str("@400000006b0aad901e2913b1").unwrap(),
            pid: 3622,
            pgid: None,
            wait_status: 0,
            paused: false,
            finishing: false,
            want_up: true,
            ready_flag: false,
        }
    }

    #[test]
    fn refuses_other_sizes() {
        let good = sample().to_bytes();
        assert_eq!(good.len(), STATUS_LEN);
        for len in [0, 1, 34, 36, 42, 44, 70] {
            let mut bytes = good.clone();
            bytes.resize(len, 0);
            assert_eq!(SuperviseStatus::parse(&bytes), Err(BadStatusLength(len)));
        }
    }

    #[test]
    fn round_trips_both_layouts() {
        let short = sample();
        assert_eq!(SuperviseStatus::parse(&short.to_bytes()), Ok(short));
        let long = SuperviseStatus {
            pgid: Some(3622),
            paused: true,
            finishing: true,
            ready_flag: true,
            wait_status: 0x0109,
            ..short
        };
        let bytes = long.to_bytes();
        assert_eq!(bytes.len(), STATUS_LEN_WITH_PGID);
        assert_eq!(SuperviseStatus::parse(&bytes), Ok(long));
    }

    #[test]
    fn the_not_started_yet_marker_is_neither_paused_nor_an_exit() {
        let marker = SuperviseStatus {
            pid: 0,
            paused: true,
            ready_flag: true,
            want_up: false,
            ..sample()
        };
        assert!(marker.never_started());
        assert!(!marker.is_up() && !marker.is_paused() && !marker.is_ready());
        assert_eq!(marker.last_exit(), None);
        assert_eq!(marker.process_group(), None);
        // A stopped process is paused; a plain down service is not new.
        let paused = SuperviseStatus {
            paused: true,
            ..sample()
        };
        assert!(!paused.never_started() && paused.is_paused());
        let down = SuperviseStatus {
            pid: 0,
            ready_flag: true,
            ..sample()
        };
        assert!(!down.never_started());
        assert_eq!(down.last_exit(), Some(ExitCause::Exited(0)));
    }

    #[test]
    fn finishing_is_not_up_but_keeps_its_pid_out_of_sight() {
        let finishing = SuperviseStatus {
            finishing: true,
            ..sample()
        };
        assert!(!finishing.is_up());
        assert_eq!(finishing.up_pid(), None);
        assert_eq!(finishing.last_exit(), Some(ExitCause::Exited(0)));
    }
}
