//! The audit trail (I11): `authpriv` records of each invocation, sent as a
//! plain datagram to /dev/log; a missing syslog never makes an operation
//! fail. (A few lines of std instead of the `syslog` crate, which would bring
//! a date-time library and five more crates into the setuid binary.)

use crate::process::Caller;
use crate::request::Request;

/// An operation that may change the tree is recorded twice: `Begun` before
/// its first change, `Done` with its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Begun,
    Done { failed: usize, code: u8 },
}

/// caller uid, transport, operation, profiles (a boot batch of hundreds
/// summarized after 16 names), result; LOG_AUTHPRIV (10 << 3) with LOG_INFO
/// (6), or LOG_WARNING (4) for a failure.
pub fn log(caller: &Caller, request: Option<&Request>, outcome: Outcome) {
    let op = request.map_or("-", |r| r.op.name());
    let profiles = request.map_or(&[][..], |r| &r.profiles[..]);
    let mut names = profiles.iter().take(16).map(|p| p.as_str()).collect::<Vec<_>>().join(",");
    if profiles.len() > 16 {
        names.push_str(&format!(",(+{} more)", profiles.len() - 16));
    }
    let result = match outcome {
        Outcome::Begun => "begun".to_owned(),
        Outcome::Done { code: 0, .. } => "ok".to_owned(),
        Outcome::Done { failed: 0, code } => format!("refused exit={code}"),
        Outcome::Done { failed, code } => format!("failed exit={code} failed_profiles={failed}"),
    };
    let names = if names.is_empty() { "-" } else { &names };
    let priority = (10 << 3) | if matches!(outcome, Outcome::Done { code: 1.., .. }) { 4 } else { 6 };
    let line = format!("caller_uid={} via={} op={op} profiles={names} result={result}", caller.uid, caller.via);
    let datagram = format!("<{priority}>hermes-s6-helper[{}]: {line}", std::process::id());
    if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = socket.send_to(datagram.as_bytes(), crate::config::SYSLOG_SOCKET);
    }
}
