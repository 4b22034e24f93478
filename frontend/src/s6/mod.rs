//! Reading s6's on-disk supervision state without s6's tools: the binary
//! `supervise/status`, the `supervise/death_tally` records and the
//! `supervise/lock` liveness check, each exactly as `s6-svstat` and
//! `s6-svdt` interpret them; and what the installation says about itself
//! (`installation`: its version, the services it counts; `limit`: how many
//! it supervises at most; `capabilities`: which of those gateways depend
//! on PID 1 holds).

#[cfg(unix)]
pub mod capabilities;
pub mod death_tally;
#[cfg(unix)]
pub mod installation;
pub mod limit;
pub mod status;
#[cfg(unix)]
pub mod supervise;

use serde::Serialize;

/// How a supervised process last ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCause {
    /// It exited with this code.
    Exited(u8),
    /// It was killed by this signal.
    Signaled(u8),
}

impl ExitCause {
    /// Decodes a `wait()` status the way the C macros do
    /// (`WIFEXITED`/`WEXITSTATUS`, `WIFSIGNALED`/`WTERMSIG`). A stopped or
    /// continued status is neither and yields `None`.
    pub fn from_wait_status(status: u16) -> Option<Self> {
        let low = (status & 0x7f) as u8;
        if low == 0 {
            Some(Self::Exited((status >> 8) as u8))
        } else if low != 0x7f {
            Some(Self::Signaled(low))
        } else {
            None
        }
    }
}

/// `SIG…` name of a Linux signal number, as `s6-svstat` prints it.
pub fn signal_name(signal: u8) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(usize::from(signal).checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(
            ExitCause::from_wait_status(0x0000),
            Some(ExitCause::Exited(0))
        );
        assert_eq!(
            ExitCause::from_wait_status(0x0300),
            Some(ExitCause::Exited(3))
        );
        assert_eq!(
            ExitCause::from_wait_status(0x4e00),
            Some(ExitCause::Exited(78))
        );
        assert_eq!(
            ExitCause::from_wait_status(0x0009),
            Some(ExitCause::Signaled(9))
        );
        assert_eq!(
            ExitCause::from_wait_status(0x008f),
            Some(ExitCause::Signaled(15))
        );
        assert_eq!(ExitCause::from_wait_status(0x137f), None);
    }

    #[test]
    fn names_signals() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(64), None);
    }
}
