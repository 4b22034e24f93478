//! Exit codes (sysexits) and the one failure type every step returns.

pub const OK: u8 = 0;
pub const USAGE: u8 = 64;
pub const DATA: u8 = 65;
pub const NO_SUCH_SLOT: u8 = 66;
pub const NOT_RUNNING: u8 = 69;
pub const INTERNAL: u8 = 70;
pub const EXISTS: u8 = 73;
pub const NOT_AUTHORIZED: u8 = 77;
pub const UNSAFE: u8 = 78;

/// Why a step refused or failed: the exit code and a reason for one line on
/// stderr. Reasons never contain caller-supplied bytes unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub reason: String,
}

impl Failure {
    pub fn new(code: u8, reason: impl Into<String>) -> Self {
        Failure {
            code,
            reason: reason.into(),
        }
    }
}

/// Shows caller-supplied bytes safely on a terminal and in syslog: printable
/// ASCII as is, everything else as `\xNN`, cut after 64 bytes.
pub fn escape(bytes: &[u8]) -> String {
    let mut shown = String::new();
    for &b in bytes.iter().take(64) {
        match b {
            b'!'..=b'~' if b != b'\\' => shown.push(char::from(b)),
            _ => shown.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > 64 {
        shown.push_str("...");
    }
    shown
}
