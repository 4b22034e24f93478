//! Exit codes (sysexits) and the one failure type every step returns.

// 0 done; 64 usage; 65 invalid name or payload; 66 no such slot; 69 s6-svscan
// not running; 70 internal; 73 slot exists; 75 s6-svscan's service limit
// would be exceeded (nothing changed); 77 not authorized or not root; 78 the
// tree is not as the helper left it (nothing changed).
pub const OK: u8 = 0;
pub const USAGE: u8 = 64;
pub const DATA: u8 = 65;
pub const NO_SUCH_SLOT: u8 = 66;
pub const NOT_RUNNING: u8 = 69;
pub const INTERNAL: u8 = 70;
pub const EXISTS: u8 = 73;
pub const LIMIT: u8 = 75;
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
        Failure { code, reason: reason.into() }
    }
}

/// A system call failed where nothing about the tree is wrong.
pub fn internal(what: &str, e: nix::errno::Errno) -> Failure {
    Failure::new(INTERNAL, format!("{what}: {}", e.desc()))
}

/// The tree is not as the helper left it (I4): refuse, change nothing.
pub fn unsafe_state(what: &str) -> Failure {
    Failure::new(UNSAFE, format!("{what}; nothing changed"))
}

/// The one line on stderr that explains a refusal or a failure, written with
/// one system call: a line is never split into several writes (each of which
/// could become a record of its own, should stderr cut records by write).
pub fn say(reason: &str) {
    let _ = nix::unistd::write(std::io::stderr(), format!("hermes-s6-helper: {reason}\n").as_bytes());
}

/// Shows caller-supplied bytes safely on a terminal and in syslog: printable
/// ASCII as is, everything else escaped (`\n`, `\xNN`, ...), cut after 64
/// bytes.
pub fn escape(bytes: &[u8]) -> String {
    let shown = bytes[..bytes.len().min(64)].escape_ascii().to_string();
    shown + if bytes.len() > 64 { "..." } else { "" }
}
