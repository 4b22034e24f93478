//! What a container shows of itself, for checks and for failure reports:
//! its s6-svscan output, the boot script's trace, its syslog records, the
//! traces of an escalation attempt, and waits that show the svscan log when
//! they time out.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use crate::Container;

impl Container {
    /// The raw datagrams received on `/dev/log` so far (all boots), each as
    /// a string, including everything sent before this call.
    ///
    /// # Panics
    /// When the container was booted without [`crate::Options::syslog`].
    pub fn syslog_records(&self) -> Vec<String> {
        self.syslog
            .as_ref()
            .expect("hermes-s6-emu: syslog_records needs Options { syslog: true, .. }")
            .records()
    }

    /// What s6-svscan and the services without a logger wrote to their
    /// stdout and stderr (all boots), like `docker logs`.
    pub fn svscan_log(&self) -> String {
        let bytes = fs::read(self.temp_dir().join("svscan.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Polls `cond` (quickly at first, then every 20 ms) until it holds.
    ///
    /// # Panics
    /// After `timeout`, naming `what` and showing the tail of the svscan log.
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if !poll_until(timeout, cond) {
            panic!(
                "hermes-s6-emu: timed out after {:?} waiting for {what}\n--- s6-svscan output (last lines) ---\n{}",
                timeout,
                tail(&self.svscan_log(), 20)
            );
        }
    }

    /// The `/run/pwned*` files an escalation attempt leaves behind when it
    /// gets code run as root: the attack scripts of the tests write them.
    pub fn pwned(&self) -> Vec<String> {
        fs::read_dir(self.host_path("/run"))
            .expect("hermes-s6-emu: cannot list /run")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pwned"))
            .collect()
    }

    /// The tails of the boot script's trace and of the s6-svscan output,
    /// for the message of a failed boot.
    pub(crate) fn diagnostics(&self) -> String {
        let boot_log = fs::read_to_string(self.temp_dir().join("boot.log")).unwrap_or_default();
        format!(
            "--- boot script trace (last lines) ---\n{}\n--- s6-svscan output ---\n{}",
            tail(&boot_log, 30),
            tail(&self.svscan_log(), 30)
        )
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
/// Starts at 1 ms between polls and backs off to 20 ms.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_until(timeout, cond)
}

fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
