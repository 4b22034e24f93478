//! Checks one operation's trace against `audit/syscalls.allow`.
//!
//! A trace starts with the `execve` of the helper; then comes the C
//! runtime's start-up (for a dynamic executable, ld.so mapping the shared
//! libraries by path first; for the static-pie the helper ships as, glibc's
//! own start-up: `/etc/suid-debug`, `/proc/self/exe`, and reopening closed
//! fds 0-2 for a setuid start); and then Rust's runtime and `main`. The
//! boundary used here is the first system call Rust's runtime makes in
//! every program, before `main`: `poll` on fds 0, 1 and 2 with no events
//! (`std::rt::init` checking that the standard fds are open). When a future
//! std no longer makes it, the checker falls back to the C runtime's last
//! step of main-thread setup (`rseq`, then `set_robust_list`, then
//! `set_tid_address`), which ends the loader's work in a dynamic executable.
//! Path-based accesses before the boundary are checked against the `loader`
//! entries, those after it (including any library a `dlopen` or an NSS
//! lookup would load) against the `path` entries of the operation.
//!
//! Then [`crate::output`] checks what the helper says and when: whole lines
//! on fds 1-2, nothing on a socket but the audit records, and the
//! `result=begun` record before the first change to the scan dir.

use crate::allow::Allow;
use crate::strace::{Call, PathUse, Trace, path_uses};
use std::collections::{BTreeMap, BTreeSet};

/// Fallback boundaries, in order of preference.
pub const MARKERS: [&str; 3] = ["rseq", "set_robust_list", "set_tid_address"];
/// The first argument of Rust's runtime check of fds 0-2.
const RUST_START: &str = "[{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}]";

#[derive(Debug, Clone, Default)]
pub struct OpReport {
    pub op: String,
    pub expected_exit: i32,
    pub exit: Option<i32>,
    pub processes: usize,
    pub calls: usize,
    /// Every syscall with its count, loader and program together.
    pub syscalls: BTreeMap<String, usize>,
    /// Syscalls made from the start-up boundary on (Rust runtime and main).
    pub program_syscalls: BTreeSet<String>,
    pub marker: Option<(String, usize)>,
    pub loader_paths: Vec<PathUse>,
    pub program_paths: Vec<PathUse>,
    /// Lines written, audit records sent, first change to the scan dir.
    pub output: crate::output::Summary,
    pub failures: Vec<String>,
}

/// Index of the boundary call: Rust's first system call, or the fallback.
fn marker_index(calls: &[Call], pid: Option<u32>) -> Option<usize> {
    let rust = calls.iter().position(|c| {
        c.pid == pid && c.name == "poll" && c.args.first().map(String::as_str) == Some(RUST_START)
    });
    rust.or_else(|| {
        MARKERS.iter().find_map(|m| {
            calls
                .iter()
                .position(|c| c.pid == pid && c.name == *m && !c.result.starts_with('-'))
        })
    })
}

pub fn check(
    op: &str,
    trace: &Trace,
    allow: &Allow,
    helper: &str,
    expected_exit: i32,
    exit: Option<i32>,
) -> OpReport {
    let mut r = OpReport {
        op: op.to_owned(),
        expected_exit,
        exit,
        calls: trace.calls.len(),
        ..OpReport::default()
    };
    if exit != Some(expected_exit) {
        r.failures.push(format!(
            "exit status {exit:?}, expected {expected_exit}: the traced operation did not do what it should, so its trace proves nothing"
        ));
    }
    let Some(first) = trace.calls.first() else {
        r.failures.push("empty trace".to_owned());
        return r;
    };
    let first_path = first.args.first().and_then(|a| crate::strace::unquote(a));
    if first.name != "execve" || first_path.as_deref() != Some(helper) || first.result != "0" {
        r.failures.push(format!(
            "the trace does not start with a successful execve of {helper} (line {}: {}{:?} = {})",
            first.line, first.name, first.args, first.result
        ));
    }
    let main_pid = first.pid;
    r.processes = trace
        .calls
        .iter()
        .map(|c| c.pid)
        .collect::<BTreeSet<_>>()
        .len();
    let marker = marker_index(&trace.calls, main_pid);
    match marker {
        Some(i) => r.marker = Some((trace.calls[i].name.clone(), trace.calls[i].line)),
        None => r.failures.push(format!(
            "no start-up boundary found (neither Rust's poll of fds 0-2 nor any of {MARKERS:?} in the main process)"
        )),
    }
    let boundary = marker.unwrap_or(0);
    for (i, call) in trace.calls.iter().enumerate() {
        *r.syscalls.entry(call.name.clone()).or_default() += 1;
        if i >= boundary {
            r.program_syscalls.insert(call.name.clone());
        }
        if i > 0 && (call.name == "execve" || call.name == "execveat") {
            r.failures.push(format!(
                "line {}: executes a program ({} {}): the helper must execute nothing (I7)",
                call.line,
                call.name,
                call.args.first().map(String::as_str).unwrap_or("?")
            ));
        }
        for u in path_uses(call) {
            if i == 0 {
                continue;
            }
            if i < boundary {
                if !allow.loader_allowed(&u.path) {
                    r.failures.push(format!(
                        "line {}: start-up (before Rust's runtime) {} {}, which no 'loader' entry allows",
                        call.line, u.syscall, u.path
                    ));
                }
                r.loader_paths.push(u);
            } else {
                if !allow.path_allowed(&u.syscall, &u.path, op) {
                    r.failures.push(format!(
                        "line {}: path-based {} of {} outside the expected set for '{op}' (I4: descriptors, not paths)",
                        call.line, u.syscall, u.path
                    ));
                }
                r.program_paths.push(u);
            }
        }
    }
    r.output = crate::output::check(op, &trace.calls, boundary, &mut r.failures);
    let via = crate::via(op);
    for (line, record) in &r.output.records {
        if !record.contains(&format!(" via={via} ")) {
            r.failures.push(format!(
                "line {line}: the audit record is \"{record}\", not via={via}: the call did not take the path '{op}' traces"
            ));
        }
    }
    check_drop(op, &trace.calls, &r.output, &mut r.failures);
    for (name, count) in &r.syscalls {
        if !allow.syscall_allowed(name, op) {
            let line = trace
                .calls
                .iter()
                .find(|c| &c.name == name)
                .map_or(0, |c| c.line);
            r.failures.push(format!(
                "syscall {name} (x{count}, first at line {line}) is not allowed for '{op}' in syscalls.allow"
            ));
        }
    }
    r
}

/// The drop (I6): whatever ids the helper sets, it sets all three of each
/// kind to one value, and the one the operation calls for. Root-started
/// operations become root in every uid and gid (so the caller can no
/// longer signal the helper) with hermes as the only supplementary group;
/// in owner mode ([`crate::OWNER`]) the helper has no privilege, so every
/// uid and gid becomes the caller's own (hermes's) and the supplementary
/// groups are left alone (setgroups would need CAP_SETGID; the allowlist
/// has no setgroups for owner operations either). An operation that
/// changes the scan dir has dropped before its first change.
fn check_drop(
    op: &str,
    calls: &[Call],
    output: &crate::output::Summary,
    failures: &mut Vec<String>,
) {
    let main_pid = calls.first().and_then(|c| c.pid);
    let owner = crate::OWNER.contains(&op);
    let (uid, gid) = if owner {
        (crate::HERMES_UID, crate::HERMES_GID)
    } else {
        (0, 0)
    };
    let three = |id: u32| vec![id.to_string(); 3];
    let mut dropped_at = None;
    for call in calls.iter().filter(|c| c.pid == main_pid) {
        let (wanted, what) = match call.name.as_str() {
            "setresuid" => (three(uid), format!("uid {uid}")),
            "setresgid" => (three(gid), format!("gid {gid}")),
            "setgroups" if owner => {
                failures.push(format!(
                    "line {}: setgroups in owner mode (the helper has no CAP_SETGID there; the caller's groups stay)",
                    call.line
                ));
                continue;
            }
            "setgroups" => (
                vec!["1".to_owned(), format!("[{}]", crate::HERMES_GID)],
                format!("hermes ({}) as the only group", crate::HERMES_GID),
            ),
            _ => continue,
        };
        if call.args != wanted {
            failures.push(format!(
                "line {}: {}({}): the drop must set {what} ({})",
                call.line,
                call.name,
                call.args.join(", "),
                if owner {
                    "owner mode: the caller's own ids"
                } else {
                    "root in all three ids"
                }
            ));
        }
        if call.name == "setresuid" && dropped_at.is_none() {
            dropped_at = Some(call.line);
        }
    }
    if let Some((change, name)) = &output.first_change
        && dropped_at.is_none_or(|line| line > *change)
    {
        failures.push(format!(
            "line {change}: changes {} ({name}) before dropping privileges (setresuid)",
            crate::output::SCAN_DIR
        ));
    }
}

/// Entries no traced operation needed: candidates for removal (reported,
/// not failed, since a timing-dependent path may not run every time).
pub fn unused(allow: &Allow, reports: &[OpReport]) -> Vec<String> {
    let mut notes = Vec::new();
    for e in &allow.syscalls {
        let used = reports
            .iter()
            .any(|r| e.ops.contains(&r.op) && r.syscalls.contains_key(&e.name));
        if !used {
            notes.push(format!(
                "syscalls.allow:{}: {} was allowed but not seen in any traced operation it names",
                e.line, e.name
            ));
        }
    }
    for e in &allow.paths {
        let used = reports.iter().any(|r| {
            e.ops.contains(&r.op)
                && r.program_paths
                    .iter()
                    .any(|u| u.syscall == e.syscall && u.path == e.path)
        });
        if !used {
            notes.push(format!(
                "syscalls.allow:{}: path {} {} was allowed but not seen",
                e.line, e.syscall, e.path
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{allow, strace};

    const HELPER: &str = "/usr/libexec/hermes-s6-helper";
    const ALLOW: &str = "\
execve * start
openat * files
rseq * thread setup
readlink * libc start-up
poll * std
read * reads
chdir * cwd
exit_group * exit
write * output
socket * syslog
sendto * syslog
setresgid * drop
setresuid * drop
setgroups * drop
path chdir / * cwd
path openat /etc/group * group database
path sendto /dev/log * syslog
loader /etc/ld.so.cache cache
loader /lib/ libs
loader /proc/self/exe static libc
";

    fn run(trace: &str) -> OpReport {
        let allow = allow::parse(ALLOW).unwrap();
        check("version", &strace::parse(trace), &allow, HELPER, 0, Some(0))
    }

    const GOOD: &str = r#"1 execve("/usr/libexec/hermes-s6-helper", ["x"], 0x1 /* 0 vars */) = 0
1 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
1 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
1 rseq(0x7f, 0x20, 0, 0x53053053) = 0
1 readlink("/proc/self/exe", "/x", 4096) = 2
1 poll([{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}], 3, 0) = 0 (Timeout)
1 chdir("/") = 0
1 openat(AT_FDCWD, "/etc/group", O_RDONLY|O_CLOEXEC) = 3
1 openat(3, "gateway-a", O_RDONLY|O_NOFOLLOW) = 4
1 write(1, "hermes-s6-helper 0.1.0\n", 23) = 23
1 socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 5
1 sendto(5, "<86>hermes-s6-helper[1]: caller_uid=0 via=setuid op=--version profiles=- result=ok", 82, MSG_NOSIGNAL, {sa_family=AF_UNIX, sun_path="/dev/log"}, 11) = 71
1 exit_group(0) = ?
"#;

    #[test]
    fn a_clean_trace_passes() {
        let r = run(GOOD);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(r.marker, Some(("poll".to_owned(), 6)));
        assert_eq!(r.loader_paths.len(), 3);
        assert_eq!(r.program_paths.len(), 3);
        assert_eq!(r.output.writes, 1);
        assert_eq!(r.output.records.len(), 1);
    }

    #[test]
    fn a_new_syscall_fails() {
        let r = run(&GOOD.replace("1 chdir(\"/\") = 0\n", "1 chdir(\"/\") = 0\n1 sync() = 0\n"));
        assert!(
            r.failures.iter().any(|f| f.contains("syscall sync")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn a_path_open_after_the_loader_fails() {
        let r = run(&GOOD.replace("\"/etc/group\"", "\"/etc/hostname\""));
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("path-based openat of /etc/hostname")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn a_second_execve_fails() {
        let r = run(&GOOD.replace(
            "1 exit_group(0) = ?",
            "1 execve(\"/bin/sh\", [\"sh\"], 0x1) = 0\n1 exit_group(0) = ?",
        ));
        assert!(
            r.failures.iter().any(|f| f.contains("executes a program")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn the_record_names_the_path_taken() {
        let r = run(&GOOD.replace("via=setuid", "via=owner"));
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("not via=setuid: the call did not take the path")),
            "{:?}",
            r.failures
        );
    }

    const ROOT_DROP: &str =
        "1 setresgid(0, 0, 0) = 0\n1 setgroups(1, [10000]) = 0\n1 setresuid(0, 0, 0) = 0\n";
    const OWNER_DROP: &str =
        "1 setresgid(10000, 10000, 10000) = 0\n1 setresuid(10000, 10000, 10000) = 0\n";

    /// GOOD with `drop` after chdir, run as `op` with its `via`.
    fn dropping(op: &str, drop: &str) -> OpReport {
        let allow = allow::parse(ALLOW).unwrap();
        let trace = GOOD
            .replace(
                "1 chdir(\"/\") = 0\n",
                &format!("1 chdir(\"/\") = 0\n{drop}"),
            )
            .replace("via=setuid", &format!("via={}", crate::via(op)));
        check(op, &strace::parse(&trace), &allow, HELPER, 0, Some(0))
    }

    #[test]
    fn root_operations_drop_to_root_and_owner_operations_to_the_caller() {
        assert!(dropping("version", ROOT_DROP).failures.is_empty());
        assert!(dropping("owner-intruder", OWNER_DROP).failures.is_empty());
        let r = dropping("version", OWNER_DROP);
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("setresuid(10000, 10000, 10000): the drop must set uid 0")),
            "{:?}",
            r.failures
        );
        let r = dropping("owner-intruder", ROOT_DROP);
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("setgroups in owner mode")),
            "{:?}",
            r.failures
        );
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("setresuid(0, 0, 0): the drop must set uid 10000")),
            "{:?}",
            r.failures
        );
        let partial = ROOT_DROP.replace("setresuid(0, 0, 0)", "setresuid(10000, 0, 0)");
        assert!(
            dropping("version", &partial)
                .failures
                .iter()
                .any(|f| f.contains("the drop must set uid 0")),
        );
        let groups = ROOT_DROP.replace("[10000]", "[10000, 27]");
        assert!(
            dropping("version", &groups)
                .failures
                .iter()
                .any(|f| f.contains("hermes (10000) as the only group")),
        );
    }

    #[test]
    fn a_change_before_the_drop_fails() {
        let mut failures = Vec::new();
        let output = crate::output::Summary {
            first_change: Some((3, "unlinkat".to_owned())),
            ..Default::default()
        };
        let calls = strace::parse(&format!(
            "1 execve(\"/h\", [\"h\"], 0x1) = 0\n1 poll([], 0, 0) = 0\n1 unlinkat(3, \"down\", 0) = 0\n{OWNER_DROP}"
        ))
        .calls;
        check_drop("owner-stop", &calls, &output, &mut failures);
        assert!(
            failures
                .iter()
                .any(|f| f.contains("line 3: changes /run/service (unlinkat) before dropping")),
            "{failures:?}"
        );
    }

    #[test]
    fn a_wrong_exit_or_missing_boundary_fails() {
        let allow = allow::parse(ALLOW).unwrap();
        let r = check("version", &strace::parse(GOOD), &allow, HELPER, 0, Some(1));
        assert!(r.failures.iter().any(|f| f.contains("exit status")));
        let no_poll = GOOD.replace(
            "1 poll([{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}], 3, 0) = 0 (Timeout)\n",
            "",
        );
        let r = run(&no_poll);
        assert_eq!(r.marker, Some(("rseq".to_owned(), 4)));
        let r = run(&no_poll.replace("1 rseq(0x7f, 0x20, 0, 0x53053053) = 0\n", ""));
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("no start-up boundary"))
        );
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;
    use crate::{allow, strace};

    #[test]
    fn output_failures_are_the_operations_failures() {
        let allow = allow::parse("execve * x\npoll * x\nwrite * x\nexit_group * x\n").unwrap();
        let trace = strace::parse(
            "1 execve(\"/h\", [\"h\"], 0x1) = 0\n\
             1 poll([{fd=0, events=0}, {fd=1, events=0}, {fd=2, events=0}], 3, 0) = 0 (Timeout)\n\
             1 write(2, \"hermes-s6-helper: \", 18) = 18\n\
             1 write(2, \"no\\n\", 3) = 3\n\
             1 exit_group(65) = ?\n",
        );
        let r = check("refused", &trace, &allow, "/h", 65, Some(65));
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("line 3: writes a partial line")),
            "{:?}",
            r.failures
        );
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("sends 0 audit record")),
            "{:?}",
            r.failures
        );
    }
}
