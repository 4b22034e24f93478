//! The audit trail (I11): one `authpriv` record per invocation, sent as a
//! plain datagram to /dev/log; a missing syslog never makes an operation
//! fail. (A few lines of std instead of the `syslog` crate, which would bring
//! a date-time library and five more crates into the setuid binary.)

use crate::request::Request;

/// caller uid, operation, profiles (a boot batch of hundreds summarized after
/// 16 names), result.
pub fn line(caller_uid: u32, request: Option<&Request>, failed_profiles: usize, code: u8) -> String {
    let op = request.map_or("-", |r| r.op.name());
    let profiles = request.map_or(&[][..], |r| &r.profiles[..]);
    let mut names = profiles.iter().take(16).map(|p| p.as_str()).collect::<Vec<_>>().join(",");
    if profiles.len() > 16 {
        names.push_str(&format!(",(+{} more)", profiles.len() - 16));
    }
    let result = match (code, failed_profiles) {
        (0, _) => "ok".to_owned(),
        (_, 0) => format!("refused exit={code}"),
        (_, n) => format!("failed exit={code} failed_profiles={n}"),
    };
    let names = if names.is_empty() { "-" } else { &names };
    format!("caller_uid={caller_uid} op={op} profiles={names} result={result}")
}

pub fn log(line: &str, code: u8) {
    // LOG_AUTHPRIV (10 << 3) with LOG_INFO (6) or LOG_WARNING (4).
    let priority = (10 << 3) | if code == 0 { 6 } else { 4 };
    let datagram = format!("<{priority}>hermes-s6-helper[{}]: {line}", std::process::id());
    if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = socket.send_to(datagram.as_bytes(), crate::config::SYSLOG_SOCKET);
    }
}
