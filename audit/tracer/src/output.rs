//! What the helper says, where it goes, and when, read from a trace.
//!
//! - **Lines.** Every write to fd 1 or 2 from the start-up boundary on is
//!   whole, made by one system call. On stderr, each write is exactly one
//!   complete line: it ends with `\n` and holds no other (`exit::say`). On
//!   stdout, the whole output is one write of complete lines
//!   (`print_version`: one buffer, one write). A `writev` of several
//!   buffers, a short write, a write without its final newline or a second
//!   write to stdout split output: should fd 1 or 2 cut records by write (a
//!   datagram socket, a line-based logger), each piece would be a record.
//! - **Sockets.** Nothing reaches a socket but the audit records: a `sendto`
//!   to /dev/log from the helper's own socket whose payload is
//!   `<pri>hermes-s6-helper[pid]: caller_uid=...`, one line. A socket the
//!   caller left on fds 0-2 (the helper's `fstat` shows `S_IFSOCK`; on
//!   `socket-fds` all three are one socket connected to /dev/log) is never
//!   written to. On `socket-fds`, fds 0, 1 and 2 are /dev/null by the first
//!   record, and every line goes to /dev/null.
//! - **Records.** An operation that changes the scan dir
//!   ([`crate::CHANGING`]) sends two records: `result=begun` before its
//!   first change, and its result. Any other operation sends its result
//!   only and changes nothing.
//!
//! A change to the scan dir is an attempt (whatever its result) of one of
//! these on a descriptor of the scan dir or of anything opened below it:
//! `mkdirat`, `mknodat`, `symlinkat`, `linkat`, `renameat`, `renameat2`,
//! `unlinkat`, `fchownat`, `fchmodat`, `utimensat`, `fchown`, `fchmod`,
//! `ftruncate`, `fallocate`, an `openat` with `O_CREAT` or `O_TRUNC` (the
//! helper's lock file is created this way), and a write (a control FIFO's
//! command, a slot file's content). Descriptors are followed through
//! `openat`, `dup`, `dup2`, `dup3`, `fcntl(F_DUPFD*)` and `close`; the scan
//! dir by path is only its own `openat` (the path check refuses any other
//! path-based access to it, I4).

use crate::strace::{Call, quoted};
use std::collections::BTreeMap;

/// The scan dir of the emulation (and of the image).
pub const SCAN_DIR: &str = hermes_s6_emu::SCAN_DIR;

/// Calls that write or send bytes through their first argument.
const WRITES: &[&str] = &[
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendmmsg",
];
/// Calls that change what their first argument (a directory or a file)
/// refers to.
const CHANGES_AT_0: &[&str] = &[
    "mkdirat",
    "mknodat",
    "unlinkat",
    "fchownat",
    "fchmodat",
    "fchmodat2",
    "utimensat",
    "fchown",
    "fchmod",
    "ftruncate",
    "fallocate",
    "fsetxattr",
    "fremovexattr",
];

/// What a descriptor of the helper refers to, as far as the trace shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fd {
    /// One of fds 0-2 as the caller left it; `socket` once known to be one.
    Inherited {
        socket: bool,
    },
    /// Opened by absolute path, outside the scan dir.
    Path(String),
    /// The scan dir, or anything opened below it.
    Scan,
    /// A socket the helper created.
    Socket,
    Other,
}

/// What the report shows of one operation's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Writes to fd 1 and 2 from the start-up boundary on.
    pub writes: usize,
    /// The audit records sent, each as (trace line, text after `]: `).
    pub records: Vec<(usize, String)>,
    /// The first change to the scan dir: (trace line, call).
    pub first_change: Option<(usize, String)>,
}

fn number(arg: Option<&String>) -> Option<i64> {
    arg?.parse().ok()
}

/// The descriptor a call returned.
fn result_fd(call: &Call) -> Option<i64> {
    call.result
        .split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|fd| *fd >= 0)
}

/// The bytes a write-family call writes and the length it asked for:
/// `None` for a call whose bytes the trace does not show as one string.
fn written(call: &Call) -> Result<(Vec<u8>, bool), String> {
    match call.name.as_str() {
        "write" | "pwrite64" | "sendto" => {
            let arg = call.args.get(1).map_or("", String::as_str);
            quoted(arg).ok_or(format!("{} of {arg}", call.name))
        }
        "writev" | "pwritev" | "pwritev2" => {
            let count = number(call.args.get(2)).unwrap_or(0);
            if count != 1 {
                return Err(format!("{} of {count} buffers", call.name));
            }
            let iov = call.args.get(1).map_or("", String::as_str);
            iov.find("iov_base=")
                .and_then(|at| quoted(&iov[at + "iov_base=".len()..]))
                .ok_or(format!("{} of {iov}", call.name))
        }
        other => Err(format!("{other} (not one plain buffer)")),
    }
}

fn shown(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    if text.len() > 80 {
        format!("{}...", &text[..80])
    } else {
        text
    }
}

fn is_record(payload: &[u8]) -> bool {
    let text = String::from_utf8_lossy(payload);
    payload.starts_with(b"<")
        && text.contains("hermes-s6-helper[")
        && text.contains("caller_uid=")
        && !payload.contains(&b'\n')
}

struct State<'a> {
    op: &'a str,
    fds: BTreeMap<i64, Fd>,
    stdout_writes: usize,
    summary: Summary,
    failures: &'a mut Vec<String>,
}

impl State<'_> {
    fn fd(&self, arg: Option<&String>) -> Option<&Fd> {
        number(arg).and_then(|fd| self.fds.get(&fd))
    }

    fn is_scan(&self, arg: Option<&String>) -> bool {
        self.fd(arg) == Some(&Fd::Scan)
    }

    fn fail(&mut self, call: &Call, what: String) {
        self.failures.push(format!("line {}: {what}", call.line));
    }

    fn change(&mut self, call: &Call) {
        if self.summary.first_change.is_none() {
            self.summary.first_change = Some((call.line, call.name.clone()));
        }
    }

    /// A write or a send: where it goes decides what it may hold.
    fn write(&mut self, call: &Call, after_boundary: bool) {
        let fd = number(call.args.first());
        let target = self.fd(call.args.first()).cloned();
        let to_syslog = call
            .args
            .iter()
            .any(|a| a.contains("sun_path=\"/dev/log\""));
        if to_syslog {
            let payload = quoted(call.args.get(1).map_or("", String::as_str));
            let text = payload.as_ref().map_or(String::new(), |(b, _)| {
                String::from_utf8_lossy(b).into_owned()
            });
            if call.name != "sendto" || target != Some(Fd::Socket) {
                self.fail(
                    call,
                    format!(
                        "{} to /dev/log other than a sendto from the helper's own socket",
                        call.name
                    ),
                );
            } else if !payload.as_ref().is_some_and(|(b, _)| is_record(b)) {
                self.fail(
                    call,
                    format!(
                        "a datagram to /dev/log that is not an audit record: {}",
                        shown(text.as_bytes())
                    ),
                );
            }
            let record = text
                .split_once("]: ")
                .map_or(text.clone(), |(_, r)| r.to_owned());
            self.summary.records.push((call.line, record));
            if self.op == crate::SOCKET_FDS {
                let null = Fd::Path("/dev/null".to_owned());
                for n in 0..3 {
                    if self.fds.get(&n) != Some(&null) {
                        self.fail(
                            call,
                            format!(
                                "an audit record is sent while fd {n} is still {:?}, not /dev/null",
                                self.fds.get(&n)
                            ),
                        );
                    }
                }
            }
            return;
        }
        match target {
            Some(Fd::Inherited { socket: true }) => {
                self.fail(call, format!("{} on fd {}, the socket the caller left there: every write is a syslog record with root's credentials", call.name, fd.unwrap_or(-1)));
            }
            Some(Fd::Socket) => {
                self.fail(
                    call,
                    format!(
                        "{} on the helper's own socket, other than an audit record to /dev/log",
                        call.name
                    ),
                );
            }
            Some(Fd::Scan) => self.change(call),
            _ => {}
        }
        if after_boundary && matches!(fd, Some(1 | 2)) {
            self.line(call, fd.unwrap_or(0), target);
        }
    }

    /// A write to fd 1 or 2: whole lines, one system call.
    fn line(&mut self, call: &Call, fd: i64, target: Option<Fd>) {
        self.summary.writes += 1;
        if self.op == crate::SOCKET_FDS && target != Some(Fd::Path("/dev/null".to_owned())) {
            self.fail(call, format!("writes to fd {fd} while it is {target:?}, not the /dev/null that replaced the caller's socket"));
        }
        let (bytes, cut) = match written(call) {
            Ok(w) => w,
            Err(what) => {
                return self.fail(
                    call,
                    format!("splits its output on fd {fd}: {what} (one line, one write)"),
                );
            }
        };
        if cut {
            return self.fail(call, format!("strace cut the string written to fd {fd} (raise strace's -s): the line cannot be checked"));
        }
        // A failed write (glibc reopens a closed fd 2 read-only: EBADF) loses
        // the line whole; a short one would leave its rest to another write.
        let done: Option<i64> = call
            .result
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok());
        if done.is_none_or(|n| n >= 0 && usize::try_from(n).ok() != Some(bytes.len())) {
            self.fail(call, format!("short write on fd {fd} ({} = {}, of {} bytes): the rest of the line would need another write", call.name, call.result, bytes.len()));
        }
        if !bytes.ends_with(b"\n") {
            self.fail(
                call,
                format!(
                    "writes a partial line to fd {fd} (no final newline): \"{}\"",
                    shown(&bytes)
                ),
            );
        }
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        if fd == 2 && lines > 1 {
            self.fail(
                call,
                format!(
                    "writes {lines} lines to stderr in one write (one line per write): \"{}\"",
                    shown(&bytes)
                ),
            );
        }
        if fd == 1 {
            self.stdout_writes += 1;
            if self.stdout_writes > 1 {
                self.fail(
                    call,
                    "writes to stdout a second time (the whole output is one buffer, one write)"
                        .to_owned(),
                );
            }
        }
    }

    /// The call's effect on the descriptor table, and whether it changes
    /// the scan dir.
    fn apply(&mut self, call: &Call) {
        let args = &call.args;
        let name = call.name.as_str();
        if CHANGES_AT_0.contains(&name) && self.is_scan(args.first())
            || name == "symlinkat" && self.is_scan(args.get(1))
            || matches!(name, "renameat" | "renameat2" | "linkat")
                && (self.is_scan(args.first()) || self.is_scan(args.get(2)))
        {
            self.change(call);
        }
        match name {
            "open" | "creat" | "openat" | "openat2" => {
                let (dir, path) = if name.starts_with("openat") {
                    (self.fd(args.first()).cloned(), args.get(1))
                } else {
                    (None, args.first())
                };
                let path = path
                    .and_then(|p| crate::strace::unquote(p))
                    .unwrap_or_default();
                let kind = if path == SCAN_DIR || path.starts_with(&format!("{SCAN_DIR}/")) {
                    Fd::Scan
                } else if path.starts_with('/') {
                    Fd::Path(path)
                } else if dir == Some(Fd::Scan) {
                    Fd::Scan
                } else {
                    Fd::Other
                };
                let flags = args.get(if name.starts_with("openat") { 2 } else { 1 });
                let creates = name == "creat"
                    || flags.is_some_and(|f| f.contains("O_CREAT") || f.contains("O_TRUNC"));
                if kind == Fd::Scan && creates {
                    self.change(call);
                }
                if let Some(fd) = result_fd(call) {
                    self.fds.insert(fd, kind);
                }
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let dups = name != "fcntl" || args.get(1).is_some_and(|a| a.starts_with("F_DUPFD"));
                let old = self.fd(args.first()).cloned().unwrap_or(Fd::Other);
                if let (true, Some(fd)) = (dups, result_fd(call)) {
                    self.fds.insert(fd, old);
                }
            }
            "socket" | "accept" | "accept4" => {
                if let Some(fd) = result_fd(call) {
                    self.fds.insert(fd, Fd::Socket);
                }
            }
            "close" => {
                if let Some(fd) = number(args.first()) {
                    self.fds.remove(&fd);
                }
            }
            "newfstatat" | "fstat" => {
                let st = args.get(if name == "fstat" { 1 } else { 2 });
                if st.is_some_and(|s| s.contains("S_IFSOCK"))
                    && (name == "fstat" || args.get(1).is_some_and(|p| p == "\"\""))
                    && let Some(Fd::Inherited { socket }) =
                        number(args.first()).and_then(|fd| self.fds.get_mut(&fd))
                {
                    *socket = true;
                }
            }
            _ => {}
        }
    }
}

/// Checks one operation's trace: `boundary` is the index of the start-up
/// boundary call (see [`crate::check`]); only the traced process's own calls
/// count. Failures are appended to `failures`.
pub fn check(op: &str, calls: &[Call], boundary: usize, failures: &mut Vec<String>) -> Summary {
    let main_pid = calls.first().and_then(|c| c.pid);
    let socket = op == crate::SOCKET_FDS;
    let mut state = State {
        op,
        fds: (0..3).map(|fd| (fd, Fd::Inherited { socket })).collect(),
        stdout_writes: 0,
        summary: Summary::default(),
        failures,
    };
    for (i, call) in calls.iter().enumerate() {
        if call.pid != main_pid {
            continue;
        }
        if WRITES.contains(&call.name.as_str()) {
            state.write(call, i >= boundary);
        }
        state.apply(call);
    }
    let summary = state.summary;
    let records = &summary.records;
    let begun = records.iter().find(|(_, r)| r.contains("result=begun"));
    let change = summary.first_change.as_ref();
    if crate::CHANGING.contains(&op) {
        let last_is_result = records
            .last()
            .is_some_and(|(_, r)| !r.contains("result=begun"));
        if records.len() != 2 || !last_is_result {
            failures.push(format!(
                "sends {} audit record(s) ({}), expected two: result=begun, then the result",
                records.len(),
                records
                    .iter()
                    .map(|(_, r)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        match (begun, change) {
            (_, None) => failures.push(format!(
                "makes no change to {SCAN_DIR}: nothing to hold the result=begun record against"
            )),
            (None, Some((line, name))) => failures.push(format!(
                "line {line}: changes {SCAN_DIR} ({name}) with no result=begun record before"
            )),
            (Some((record, _)), Some((line, name))) if record > line => failures.push(format!(
                "line {line}: changes {SCAN_DIR} ({name}) before the result=begun record (line {record})"
            )),
            _ => {}
        }
    } else {
        if records.len() != 1 || begun.is_some() {
            failures.push(format!(
                "sends {} audit record(s) ({}), expected one: its result",
                records.len(),
                records
                    .iter()
                    .map(|(_, r)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        if let Some((line, name)) = change {
            failures.push(format!(
                "line {line}: changes {SCAN_DIR} ({name}), which '{op}' must leave as it is"
            ));
        }
    }
    if socket && summary.writes == 0 {
        failures
            .push("writes no line: the refusal's line should have gone to /dev/null".to_owned());
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strace;

    fn run(op: &str, trace: &str) -> (Summary, Vec<String>) {
        let parsed = strace::parse(trace);
        let boundary = parsed
            .calls
            .iter()
            .position(|c| c.name == "poll")
            .unwrap_or(0);
        let mut failures = Vec::new();
        let summary = check(op, &parsed.calls, boundary, &mut failures);
        (summary, failures)
    }

    fn fails(op: &str, trace: &str, what: &str) {
        let (_, failures) = run(op, trace);
        assert!(
            failures.iter().any(|f| f.contains(what)),
            "expected a failure with '{what}', got {failures:?}"
        );
    }

    const START: &str = "1 execve(\"/h\", [\"h\"], 0x1 /* 0 vars */) = 0\n\
        1 poll([{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}], 3, 0) = 0 (Timeout)\n";
    const RECORD: &str = "1 socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 3\n\
        1 sendto(3, \"<84>hermes-s6-helper[1]: caller_uid=10000 op=- profiles=- result=refused exit=65\", 80, MSG_NOSIGNAL, {sa_family=AF_UNIX, sun_path=\"/dev/log\"}, 11) = 80\n\
        1 exit_group(65) = ?\n";
    const SAY: &str =
        "1 write(2, \"hermes-s6-helper: invalid profile name '\\\\x1b\\\"'\\n\", 47) = 47\n";

    fn refused(middle: &str) -> String {
        format!("{START}{middle}{RECORD}")
    }

    #[test]
    fn a_refusal_line_in_one_write_passes() {
        let (summary, failures) = run("refused", &refused(SAY));
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(summary.writes, 1);
        assert_eq!(
            summary.records,
            vec![(
                5,
                "caller_uid=10000 op=- profiles=- result=refused exit=65".to_owned()
            )]
        );
    }

    #[test]
    fn a_line_split_across_writes_fails() {
        let split = "1 write(2, \"hermes-s6-helper: \", 18) = 18\n\
                     1 write(2, \"invalid profile name\\n\", 21) = 21\n";
        fails("refused", &refused(split), "writes a partial line to fd 2");
        let iov = "1 writev(2, [{iov_base=\"hermes-s6-helper: \", iov_len=18}, {iov_base=\"x\\n\", iov_len=2}], 2) = 20\n";
        fails("refused", &refused(iov), "writev of 2 buffers");
        let one_iov = "1 writev(2, [{iov_base=\"hermes-s6-helper: x\\n\", iov_len=20}], 1) = 20\n";
        assert!(run("refused", &refused(one_iov)).1.is_empty());
        let short = SAY.replace(") = 47", ") = 20");
        fails("refused", &refused(&short), "short write on fd 2");
        let lost = SAY.replace(") = 47", ") = -1 EBADF (Bad file descriptor)");
        assert!(run("refused", &refused(&lost)).1.is_empty());
        let two = "1 write(2, \"a\\nb\\n\", 4) = 4\n";
        fails("refused", &refused(two), "writes 2 lines to stderr");
        let cut = "1 write(2, \"hermes-s6-helper: \"..., 400) = 400\n";
        fails("refused", &refused(cut), "strace cut the string");
        // Before the boundary, nothing is a line of the helper's.
        let early = refused(SAY).replacen("1 poll(", "1 write(2, \"x\", 1) = 1\n1 poll(", 1);
        let (_, failures) = run("refused", &early);
        assert!(failures.is_empty(), "{failures:?}");
    }

    #[test]
    fn stdout_is_one_write_of_whole_lines() {
        let version =
            "1 write(1, \"hermes-s6-helper 0.1.0\\nscan dir: /run/service\\n\", 46) = 46\n";
        assert!(run("version", &refused(version)).1.is_empty());
        fails(
            "version",
            &refused(&format!("{version}{version}")),
            "writes to stdout a second time",
        );
    }

    const SOCKET_START: &str = "1 execve(\"/h\", [\"h\"], 0x1 /* 0 vars */) = 0\n\
        1 poll([{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}], 3, 0) = 0 (Timeout)\n\
        1 newfstatat(0, \"\", {st_mode=S_IFSOCK|0777, st_size=0, ...}, AT_EMPTY_PATH) = 0\n";
    const REPLACE: &str = "1 openat(AT_FDCWD, \"/dev/null\", O_RDWR) = 3\n\
        1 dup2(3, 0) = 0\n1 close(3) = 0\n\
        1 openat(AT_FDCWD, \"/dev/null\", O_RDWR) = 3\n\
        1 dup2(3, 1) = 1\n1 close(3) = 0\n\
        1 openat(AT_FDCWD, \"/dev/null\", O_RDWR) = 3\n\
        1 dup2(3, 2) = 2\n1 close(3) = 0\n";

    #[test]
    fn socket_fds_are_replaced_by_dev_null_before_anything_is_said() {
        let good = format!("{SOCKET_START}{REPLACE}{SAY}{RECORD}");
        let (summary, failures) = run("socket-fds", &good);
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(summary.writes, 1);
        // Said on the caller's socket: a forged record.
        let forged = format!("{SOCKET_START}{SAY}{REPLACE}{RECORD}");
        fails("socket-fds", &forged, "the socket the caller left there");
        // fd 0 left as it was.
        let kept = good.replace("1 dup2(3, 0) = 0\n", "");
        fails("socket-fds", &kept, "while fd 0 is still");
        // No line at all: the case proves nothing.
        fails(
            "socket-fds",
            &format!("{SOCKET_START}{REPLACE}{RECORD}"),
            "writes no line",
        );
        // On any operation, a socket seen on fd 0-2 is never written.
        let other = format!(
            "{SOCKET_START}{}{RECORD}",
            SAY.replace("write(2", "write(0")
        );
        fails("refused", &other, "the socket the caller left there");
    }

    #[test]
    fn only_audit_records_reach_syslog() {
        let forged = RECORD.replace(
            "<84>hermes-s6-helper[1]: caller_uid",
            "<34>sshd[1]: Accepted uid",
        );
        fails(
            "refused",
            &format!("{START}{SAY}{forged}"),
            "not an audit record",
        );
        let own =
            "1 socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 4\n1 write(4, \"x\\n\", 2) = 2\n";
        fails("refused", &refused(own), "on the helper's own socket");
        fails(
            "refused",
            &format!("{START}{SAY}1 exit_group(65) = ?\n"),
            "sends 0 audit record(s)",
        );
    }

    fn stop(records_then_changes: &str) -> String {
        format!(
            "{START}1 openat(AT_FDCWD, \"/run/service\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 3\n\
             1 openat(3, \".s6-svscan\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 4\n\
             1 openat(4, \"control\", O_WRONLY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC) = 5\n\
             1 openat(3, \"gateway-a\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 6\n\
             1 socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 7\n\
             {records_then_changes}\
             1 sendto(7, \"<86>hermes-s6-helper[1]: caller_uid=10000 op=stop profiles=a result=ok\", 70, MSG_NOSIGNAL, {{sa_family=AF_UNIX, sun_path=\"/dev/log\"}}, 11) = 70\n\
             1 exit_group(0) = ?\n"
        )
    }
    const BEGUN: &str = "1 sendto(7, \"<86>hermes-s6-helper[1]: caller_uid=10000 op=stop profiles=a result=begun\", 73, MSG_NOSIGNAL, {sa_family=AF_UNIX, sun_path=\"/dev/log\"}, 11) = 73\n";
    const CHANGE: &str = "1 unlinkat(6, \"restart-requested\", 0) = -1 ENOENT (No such file or directory)\n\
        1 openat(6, \"down\", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 8\n\
        1 close(8) = 0\n";

    #[test]
    fn the_begun_record_precedes_the_first_change() {
        let (summary, failures) = run("stop", &stop(&format!("{BEGUN}{CHANGE}")));
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(
            summary.first_change.map(|(_, c)| c),
            Some("unlinkat".to_owned())
        );
        fails(
            "stop",
            &stop(&format!("{CHANGE}{BEGUN}")),
            "changes /run/service (unlinkat) before the result=begun record",
        );
        fails("stop", &stop(CHANGE), "with no result=begun record before");
        fails("stop", &stop(BEGUN), "makes no change to /run/service");
        // A command byte to a control FIFO is a change; so is O_CREAT,
        // through a duplicated descriptor too.
        let fifo = "1 write(5, \"a\", 1) = 1\n";
        fails(
            "stop",
            &stop(&format!("{fifo}{BEGUN}")),
            "(write) before the result=begun",
        );
        let created = "1 fcntl(3, F_DUPFD_CLOEXEC, 3) = 9\n\
                       1 openat(9, \".hermes-s6-helper.lock\", O_RDONLY|O_CREAT|O_NOFOLLOW|O_CLOEXEC, 0600) = 10\n";
        fails(
            "stop",
            &stop(&format!("{created}{BEGUN}")),
            "(openat) before the result=begun",
        );
        // Reading is no change.
        let read = "1 openat(6, \"supervise\", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 8\n";
        assert!(
            run("stop", &stop(&format!("{read}{BEGUN}{CHANGE}")))
                .1
                .is_empty()
        );
    }

    #[test]
    fn an_operation_that_must_change_nothing_changes_nothing() {
        let (_, failures) = run("cpu-limit", &stop(""));
        assert!(failures.is_empty(), "{failures:?}");
        fails(
            "cpu-limit",
            &stop(CHANGE),
            "which 'cpu-limit' must leave as it is",
        );
        fails("cpu-limit", &stop(BEGUN), "expected one: its result");
    }
}
