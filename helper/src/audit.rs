//! The audit trail (I11): one `authpriv` record per invocation, sent as a
//! plain datagram to /dev/log. A missing syslog never makes an operation fail.
//! (A few lines of std instead of the `syslog` crate, which would bring a
//! date-time library and five more crates into the setuid binary.)

use crate::config::SYSLOG_SOCKET;
use crate::request::Request;
use std::os::unix::net::UnixDatagram;

const LOG_AUTHPRIV: u8 = 10 << 3;
const LOG_WARNING: u8 = 4;
const LOG_INFO: u8 = 6;
/// Enough names to identify a call; a boot batch of hundreds is summarized.
const NAMES_SHOWN: usize = 16;

#[derive(Debug)]
pub struct Record {
    caller_uid: u32,
    op: &'static str,
    profiles: Vec<String>,
    failed: usize,
}

impl Record {
    pub fn new(caller_uid: u32) -> Self {
        Record {
            caller_uid,
            op: "-",
            profiles: Vec::new(),
            failed: 0,
        }
    }

    pub fn request(&mut self, request: &Request) {
        self.op = request.op.name();
        self.profiles = request
            .profiles
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
    }

    pub fn profile_failed(&mut self) {
        self.failed += 1;
    }

    pub fn line(&self, code: u8) -> String {
        let mut names = self
            .profiles
            .iter()
            .take(NAMES_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        if self.profiles.len() > NAMES_SHOWN {
            names.push_str(&format!(",(+{} more)", self.profiles.len() - NAMES_SHOWN));
        }
        if names.is_empty() {
            names.push('-');
        }
        let result = match (code, self.failed) {
            (0, _) => "ok".to_owned(),
            (_, 0) => format!("refused exit={code}"),
            (_, n) => format!("failed exit={code} failed_profiles={n}"),
        };
        format!(
            "caller_uid={} op={} profiles={} result={}",
            self.caller_uid, self.op, names, result
        )
    }
}

pub fn log(record: &Record, code: u8) {
    let severity = if code == 0 { LOG_INFO } else { LOG_WARNING };
    let datagram = format!(
        "<{}>hermes-s6-helper[{}]: {}",
        LOG_AUTHPRIV | severity,
        std::process::id(),
        record.line(code)
    );
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.send_to(datagram.as_bytes(), SYSLOG_SOCKET);
    }
}
