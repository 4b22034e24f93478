//! `supervise/death_tally`: one record per death of `./run`, oldest first,
//! kept by s6-supervise up to `max-death-tally` records (default 100, at
//! most 4096). `s6-svdt` prints it.
//!
//! Record layout (14 bytes, worked out against s6 2.11 and `s6-svdt`):
//! a 12-byte TAI64N stamp, then one byte that is the exit code (128 +
//! signal for a signal death, as a shell would report it), then one byte
//! that is the signal number, 0 for a normal exit.

use crate::s6::ExitCause;
use crate::time::Tai64N;

pub const RECORD_LEN: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    pub at: Tai64N,
    pub cause: ExitCause,
}

/// Number of deaths recorded in a death tally of `len` bytes.
pub fn count_for_len(len: u64) -> u64 {
    len / RECORD_LEN as u64
}

/// Decodes every complete record; a torn trailing record is ignored.
pub fn parse(bytes: &[u8]) -> Vec<Death> {
    bytes
        .chunks_exact(RECORD_LEN)
        .map(|record| {
            let mut stamp = [0; 12];
            stamp.copy_from_slice(&record[..12]);
            let (code, signal) = (record[12], record[13]);
            Death {
                at: Tai64N::from_be_bytes(stamp),
                cause: if signal == 0 {
                    ExitCause::Exited(code)
                } else {
                    ExitCause::Signaled(signal)
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_and_signal_records() {
        // Bytes as s6 2.11 wrote them: "exitcode 3", then "signal SIGKILL".
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[
            0x40, 0, 0, 0, 0x6b, 0x0a, 0xad, 0x94, 0x33, 0xc6, 0xc7, 0xc7,
        ]);
        bytes.extend_from_slice(&[3, 0]);
        bytes.extend_from_slice(&[
            0x40, 0, 0, 0, 0x6b, 0x0a, 0xad, 0x94, 0x33, 0xfd, 0xc8, 0xc3,
        ]);
        bytes.extend_from_slice(&[0x89, 9]);
        let deaths = parse(&bytes);
        assert_eq!(deaths.len(), 2);
        assert_eq!(deaths[0].cause, ExitCause::Exited(3));
        assert_eq!(deaths[0].at.to_label_string(), "@400000006b0aad9433c6c7c7");
        assert_eq!(deaths[1].cause, ExitCause::Signaled(9));
        assert_eq!(count_for_len(bytes.len() as u64), 2);
        bytes.push(0);
        assert_eq!(parse(&bytes).len(), 2);
        assert_eq!(count_for_len(bytes.len() as u64), 2);
    }
}
