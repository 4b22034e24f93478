//! Running the setuid helper and turning what it reports into [`Error`]s.
//!
//! Contract (design §4): `hermes-s6-helper <op> <profile>...` with at most
//! 4096 profiles per call; each profile is processed in order, a failure
//! does not stop the rest, every failure prints
//! `hermes-s6-helper: <op> <profile>: <reason>` on stderr, and the exit code
//! is the first failure's.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::env_payload::ExtraEnv;
use crate::error::{Error, PrivilegeBlock};
use crate::profile::ProfileName;

/// Most profiles one helper call accepts.
pub const MAX_PROFILES_PER_CALL: usize = 4096;

/// Prefix of every line the helper writes on stderr.
const STDERR_PREFIX: &str = "hermes-s6-helper: ";

/// The helper's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelperOp {
    Register,
    Unregister,
    Start,
    Stop,
    Restart,
    Rescan,
}

impl HelperOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Unregister => "unregister",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Rescan => "rescan",
        }
    }
}

impl fmt::Display for HelperOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one operation for each profile it named, in order.
pub type ProfileOutcomes = Vec<(ProfileName, Result<(), Error>)>;

/// How a helper process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperExit {
    Code(i32),
    Signal(i32),
}

/// The arguments of one helper call (without the program name).
pub fn helper_args(op: HelperOp, profiles: &[ProfileName]) -> Vec<OsString> {
    std::iter::once(OsString::from(op.as_str()))
        .chain(profiles.iter().map(|p| OsString::from(p.as_str())))
        .collect()
}

/// The helper at a fixed path.
#[derive(Debug, Clone)]
pub struct Helper {
    path: PathBuf,
}

impl Helper {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The command for one call. The helper clears its environment and
    /// closes inherited descriptors itself; stdin is `/dev/null` unless a
    /// payload is sent, since the helper reads a payload from any other stdin.
    pub fn command(&self, op: HelperOp, profiles: &[ProfileName]) -> Command {
        let mut command = Command::new(&self.path);
        command
            .args(helper_args(op, profiles))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `op` on every profile, in calls of at most 4096 profiles.
    ///
    /// `Err` is a failure of the whole call (helper missing or not
    /// privileged, s6-svscan not running, …): profiles of later batches were
    /// not attempted. Otherwise each profile has its own result.
    pub fn run(&self, op: HelperOp, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        let mut outcomes = Vec::with_capacity(profiles.len());
        for batch in profiles.chunks(MAX_PROFILES_PER_CALL) {
            let (exit, stderr) = self.exec(op, batch, None)?;
            outcomes.extend(interpret(op, batch, exit, &stderr, || {
                diagnose_privilege(&self.path)
            })?);
        }
        Ok(outcomes)
    }

    /// `register <profile>` with an environment payload on stdin (sent
    /// only when there is something to send).
    pub fn register(&self, profile: &ProfileName, env: &ExtraEnv) -> Result<(), Error> {
        let profiles = std::slice::from_ref(profile);
        let payload = (!env.is_empty()).then(|| env.to_payload());
        let (exit, stderr) = self.exec(HelperOp::Register, profiles, payload.as_deref())?;
        let mut outcomes = interpret(HelperOp::Register, profiles, exit, &stderr, || {
            diagnose_privilege(&self.path)
        })?;
        outcomes.pop().map_or(Ok(()), |(_, result)| result)
    }

    /// `rescan`: s6-svscan picks up new slots and prunes retired ones.
    pub fn rescan(&self) -> Result<(), Error> {
        let (exit, stderr) = self.exec(HelperOp::Rescan, &[], None)?;
        interpret(HelperOp::Rescan, &[], exit, &stderr, || {
            diagnose_privilege(&self.path)
        })
        .map(drop)
    }

    fn exec(
        &self,
        op: HelperOp,
        profiles: &[ProfileName],
        payload: Option<&[u8]>,
    ) -> Result<(HelperExit, String), Error> {
        let mut command = self.command(op, profiles);
        if payload.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(|e| self.spawn_error(e))?;
        if let (Some(payload), Some(mut stdin)) = (payload, child.stdin.take()) {
            // A helper that refuses early closes its end; its exit code then
            // says why, so a broken pipe here is not an error of its own.
            let _ = stdin.write_all(payload);
        }
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io("wait for", &self.path, e))?;
        let exit = exit_of(&output.status);
        Ok((exit, String::from_utf8_lossy(&output.stderr).into_owned()))
    }

    fn spawn_error(&self, error: io::Error) -> Error {
        match error.kind() {
            io::ErrorKind::NotFound => Error::HelperMissing {
                path: self.path.clone(),
            },
            io::ErrorKind::PermissionDenied => Error::HelperNotExecutable {
                path: self.path.clone(),
            },
            _ => Error::io("run", &self.path, error),
        }
    }
}

#[cfg(unix)]
fn exit_of(status: &std::process::ExitStatus) -> HelperExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => HelperExit::Code(code),
        (None, Some(signal)) => HelperExit::Signal(signal),
        (None, None) => HelperExit::Code(-1),
    }
}

#[cfg(not(unix))]
fn exit_of(status: &std::process::ExitStatus) -> HelperExit {
    HelperExit::Code(status.code().unwrap_or(-1))
}

/// One stderr line of the helper, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperLine<'a> {
    /// `<op>` or `<op> <profile>`, when the line has that shape.
    pub subject: Option<&'a str>,
    pub reason: &'a str,
}

impl<'a> HelperLine<'a> {
    pub fn parse(line: &'a str) -> Self {
        let body = line.strip_prefix(STDERR_PREFIX).unwrap_or(line);
        match body.split_once(": ") {
            Some((subject, reason)) if !subject.is_empty() => Self {
                subject: Some(subject),
                reason,
            },
            _ => Self {
                subject: None,
                reason: body,
            },
        }
    }

    /// The profile this line is about, if it names one of `profiles` after
    /// the operation `op`.
    fn profile<'p>(&self, op: HelperOp, profiles: &'p [ProfileName]) -> Option<&'p ProfileName> {
        let (line_op, name) = self.subject?.split_once(' ')?;
        if line_op != op.as_str() {
            return None;
        }
        profiles.iter().find(|p| p.as_str() == name)
    }
}

/// Turns one helper run into per-profile outcomes, or into one error for
/// the whole call. `diagnose` is asked only when the helper could not act
/// as root (exit 77).
pub fn interpret(
    op: HelperOp,
    profiles: &[ProfileName],
    exit: HelperExit,
    stderr: &str,
    diagnose: impl FnOnce() -> Option<PrivilegeBlock>,
) -> Result<ProfileOutcomes, Error> {
    let code = match exit {
        HelperExit::Code(0) => return Ok(profiles.iter().map(|p| (p.clone(), Ok(()))).collect()),
        HelperExit::Code(code) => code,
        HelperExit::Signal(signal) => return Err(Error::HelperKilled { op, signal }),
    };
    let lines: Vec<HelperLine<'_>> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(HelperLine::parse)
        .collect();
    let per_profile: Vec<(&ProfileName, &str)> = lines
        .iter()
        .filter_map(|line| line.profile(op, profiles).map(|p| (p, line.reason)))
        .collect();
    let code_u8 = u8::try_from(code).ok();

    // Codes that concern the whole call, and failures no line attributes to
    // a profile, become one error.
    let call_wide = matches!(code, 64 | 65 | 69 | 77) || per_profile.is_empty();
    if call_wide {
        let message = lines
            .iter()
            .map(|l| match l.subject {
                Some(subject) => format!("{subject}: {}", l.reason),
                None => l.reason.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let single = match profiles {
            [only] => Some(only.clone()),
            _ => None,
        };
        return Err(match code {
            77 => match diagnose() {
                Some(cause) => Error::HelperNotPrivileged { cause, message },
                // The helper says whether it failed to become root or
                // refused the caller.
                None if message.contains("not running as root") => Error::HelperNotPrivileged {
                    cause: PrivilegeBlock::SetuidIgnored,
                    message,
                },
                None => Error::HelperNotPrivileged {
                    cause: PrivilegeBlock::NotAuthorized,
                    message,
                },
            },
            69 => Error::SupervisorNotRunning { message },
            78 => Error::UnsafeState { message },
            65 if op == HelperOp::Register && single.is_some() => {
                Error::InvalidEnvPayload { reason: message }
            }
            66 if single.is_some() => Error::GatewayNotRegistered {
                profile: single.unwrap_or_else(ProfileName::default_profile),
            },
            73 if single.is_some() => Error::AlreadyRegistered {
                profile: single.unwrap_or_else(ProfileName::default_profile),
            },
            _ => Error::HelperFailed {
                op,
                profile: single,
                code: code_u8,
                message,
            },
        });
    }

    // The exit code belongs to the first failure; later failures only have
    // their line.
    let mut outcomes: ProfileOutcomes = profiles.iter().map(|p| (p.clone(), Ok(()))).collect();
    for (index, (profile, reason)) in per_profile.into_iter().enumerate() {
        let known_code = if index == 0 { code_u8 } else { None };
        let error = profile_error(op, profile, known_code, reason);
        if let Some(slot) = outcomes.iter_mut().find(|(p, r)| p == profile && r.is_ok()) {
            slot.1 = Err(error);
        }
    }
    Ok(outcomes)
}

/// Reasons whose exit code is known from the helper's contract, for the
/// failures after the first (the helper exits with the first one's code
/// only).
const KNOWN_REASONS: [(&str, u8); 2] = [("slot already exists", 73), ("no such slot", 66)];

fn profile_error(op: HelperOp, profile: &ProfileName, code: Option<u8>, reason: &str) -> Error {
    let code = code.or_else(|| {
        KNOWN_REASONS
            .iter()
            .find(|(start, _)| reason.starts_with(start))
            .map(|(_, code)| *code)
    });
    match code {
        Some(66) => Error::GatewayNotRegistered {
            profile: profile.clone(),
        },
        Some(73) => Error::AlreadyRegistered {
            profile: profile.clone(),
        },
        Some(78) => Error::UnsafeState {
            message: format!("{op} {profile}: {reason}"),
        },
        _ => Error::HelperFailed {
            op,
            profile: Some(profile.clone()),
            code,
            message: reason.to_owned(),
        },
    }
}

/// What is known about the helper file and this process when the helper
/// could not act as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeFacts {
    pub helper: PathBuf,
    /// Owner and mode of the helper file, if it could be examined.
    pub owner_and_mode: Option<(u32, u32)>,
    /// `NoNewPrivs: 1` in `/proc/self/status`.
    pub no_new_privs: bool,
    /// The helper's mount point when that mount is `nosuid`.
    pub nosuid_mount: Option<PathBuf>,
}

/// Picks the most likely reason, most specific first.
pub fn explain_privilege_failure(facts: &PrivilegeFacts) -> Option<PrivilegeBlock> {
    const SETUID: u32 = 0o4000;
    match facts.owner_and_mode {
        Some((uid, mode)) if uid != 0 || mode & SETUID == 0 => {
            return Some(PrivilegeBlock::NotSetuid {
                path: facts.helper.clone(),
            });
        }
        _ => {}
    }
    if let Some(mount_point) = &facts.nosuid_mount {
        return Some(PrivilegeBlock::NosuidMount {
            path: facts.helper.clone(),
            mount_point: mount_point.clone(),
        });
    }
    if facts.no_new_privs {
        return Some(PrivilegeBlock::NoNewPrivs);
    }
    None
}

/// Gathers [`PrivilegeFacts`] for `helper` from the file system and procfs.
pub fn diagnose_privilege(helper: &Path) -> Option<PrivilegeBlock> {
    explain_privilege_failure(&privilege_facts(helper, Path::new("/proc/self")))
}

pub fn privilege_facts(helper: &Path, proc_self: &Path) -> PrivilegeFacts {
    let resolved = std::fs::canonicalize(helper).unwrap_or_else(|_| helper.to_path_buf());
    let owner_and_mode = owner_and_mode(&resolved);
    let no_new_privs = std::fs::read_to_string(proc_self.join("status"))
        .map(|status| no_new_privs_in(&status))
        .unwrap_or(false);
    let nosuid_mount = std::fs::read_to_string(proc_self.join("mountinfo"))
        .ok()
        .and_then(|mountinfo| nosuid_mount_of(&resolved, &mountinfo));
    PrivilegeFacts {
        helper: helper.to_path_buf(),
        owner_and_mode,
        no_new_privs,
        nosuid_mount,
    }
}

#[cfg(unix)]
fn owner_and_mode(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.mode()))
}

#[cfg(not(unix))]
fn owner_and_mode(_path: &Path) -> Option<(u32, u32)> {
    None
}

/// Whether a `/proc/<pid>/status` text says `NoNewPrivs: 1`.
pub fn no_new_privs_in(status: &str) -> bool {
    status.lines().any(|line| {
        line.strip_prefix("NoNewPrivs:")
            .is_some_and(|value| value.trim() == "1")
    })
}

/// The mount point holding `path` according to a `/proc/self/mountinfo`
/// text, if that mount has the `nosuid` flag. The deepest mount point that
/// contains the path wins; among equal ones, the last listed (the one on top).
pub fn nosuid_mount_of(path: &Path, mountinfo: &str) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount_point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        if best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            let nosuid = options.split(',').any(|o| o == "nosuid");
            best = Some((depth, mount_point, nosuid));
        }
    }
    best.and_then(|(_, mount_point, nosuid)| nosuid.then_some(mount_point))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(names: &[&str]) -> Vec<ProfileName> {
        names.iter().map(|n| ProfileName::new(n).unwrap()).collect()
    }

    fn no_diagnosis() -> Option<PrivilegeBlock> {
        None
    }

    #[test]
    fn builds_the_argument_list() {
        let args = helper_args(HelperOp::Start, &profiles(&["a", "b"]));
        assert_eq!(args, ["start", "a", "b"]);
        assert_eq!(helper_args(HelperOp::Rescan, &[]), ["rescan"]);
        let command = Helper::new("/usr/libexec/hermes-s6-helper")
            .command(HelperOp::Stop, &profiles(&["default"]));
        assert_eq!(command.get_program(), "/usr/libexec/hermes-s6-helper");
        assert_eq!(command.get_args().collect::<Vec<_>>(), ["stop", "default"]);
    }

    #[test]
    fn success_is_success_for_everyone() {
        let ps = profiles(&["a", "b"]);
        let out = interpret(HelperOp::Start, &ps, HelperExit::Code(0), "", no_diagnosis).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn attributes_failures_to_their_profiles() {
        let ps = profiles(&["a", "b", "c", "d"]);
        let stderr = "hermes-s6-helper: start b: no such slot\n\
                      hermes-s6-helper: start d: write control: broken pipe\n";
        let out = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(66),
            stderr,
            no_diagnosis,
        )
        .unwrap();
        assert!(out[0].1.is_ok());
        assert!(out[2].1.is_ok());
        let b = out[1].1.as_ref().unwrap_err();
        assert!(matches!(b, Error::GatewayNotRegistered { profile } if profile.as_str() == "b"));
        assert_eq!(b.exit_code(), 66);
        // Only the first failure's code is known.
        let d = out[3].1.as_ref().unwrap_err();
        assert!(
            matches!(d, Error::HelperFailed { code: None, message, .. } if message == "write control: broken pipe"),
            "{d:?}"
        );
        assert_eq!(
            d.to_string(),
            "gateway helper `start d` failed: write control: broken pipe"
        );
    }

    #[test]
    fn later_failures_with_a_known_reason_get_their_code() {
        let ps = profiles(&["a", "b", "c"]);
        let stderr = "hermes-s6-helper: register a: slot already exists; nothing changed\n\
                      hermes-s6-helper: register b: slot already exists; nothing changed\n\
                      hermes-s6-helper: register c: publishing the slot: EIO\n";
        let out = interpret(
            HelperOp::Register,
            &ps,
            HelperExit::Code(73),
            stderr,
            no_diagnosis,
        )
        .unwrap();
        assert!(matches!(out[0].1, Err(Error::AlreadyRegistered { .. })));
        assert!(matches!(out[1].1, Err(Error::AlreadyRegistered { .. })));
        assert!(matches!(
            out[2].1,
            Err(Error::HelperFailed { code: None, .. })
        ));
        let stderr = "hermes-s6-helper: start a: supervise is a symlink\n\
                      hermes-s6-helper: start b: no such slot: register the profile first\n";
        let out = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(78),
            stderr,
            no_diagnosis,
        )
        .unwrap();
        assert!(matches!(out[1].1, Err(Error::GatewayNotRegistered { .. })));
    }

    #[test]
    fn passes_the_helpers_code_through() {
        let ps = profiles(&["work"]);
        let stderr = "hermes-s6-helper: stop work: internal error: out of memory\n";
        let out = interpret(
            HelperOp::Stop,
            &ps,
            HelperExit::Code(70),
            stderr,
            no_diagnosis,
        )
        .unwrap();
        let err = out[0].1.as_ref().unwrap_err();
        assert_eq!(err.exit_code(), 70);
        assert_eq!(
            err.to_string(),
            "gateway helper `stop work` failed (exit 70): internal error: out of memory"
        );
        let out = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(78),
            "hermes-s6-helper: start work: supervise is a symlink\n",
            no_diagnosis,
        )
        .unwrap();
        let err = out[0].1.as_ref().unwrap_err();
        assert!(matches!(err, Error::UnsafeState { .. }));
        assert_eq!(err.exit_code(), 78);
        assert!(err.to_string().contains("supervise is a symlink"));
    }

    #[test]
    fn whole_call_failures() {
        let ps = profiles(&["a", "b"]);
        let err = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(69),
            "hermes-s6-helper: start: s6-svscan is not running on /run/service\n",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(err, Error::SupervisorNotRunning { .. }));
        assert_eq!(err.exit_code(), 69);
        assert!(
            err.to_string()
                .contains("s6-svscan is not running on /run/service")
        );

        let err = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(77),
            "hermes-s6-helper: not running as root (no_new_privs or nosuid?)\n",
            || Some(PrivilegeBlock::NoNewPrivs),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 77);
        let line = err.to_string();
        assert!(line.contains("allowPrivilegeEscalation"), "{line}");
        assert!(line.contains("not running as root"), "{line}");

        let err = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(77),
            "hermes-s6-helper: not running as root: the setuid bit was not honored\n",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::HelperNotPrivileged {
                cause: PrivilegeBlock::SetuidIgnored,
                ..
            }
        ));
        let err = interpret(
            HelperOp::Start,
            &ps,
            HelperExit::Code(77),
            "hermes-s6-helper: uid 10001 is not in group hermes\n",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not in group hermes"), "{err}");
        assert!(matches!(
            err,
            Error::HelperNotPrivileged {
                cause: PrivilegeBlock::NotAuthorized,
                ..
            }
        ));

        let err = interpret(
            HelperOp::Rescan,
            &[],
            HelperExit::Signal(9),
            "",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(err, Error::HelperKilled { signal: 9, .. }));
        assert_eq!(err.exit_code(), 70);

        // A failure no line explains keeps the code and whatever was said.
        let err = interpret(
            HelperOp::Stop,
            &ps,
            HelperExit::Code(70),
            "boom\n",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(err, Error::HelperFailed { code: Some(70), .. }));
        assert!(err.to_string().ends_with(": boom"), "{err}");
    }

    #[test]
    fn single_profile_codes_become_specific_errors() {
        let ps = profiles(&["work"]);
        // Without a line naming the profile, the only profile is the one.
        let err = interpret(
            HelperOp::Register,
            &ps,
            HelperExit::Code(73),
            "",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(err, Error::AlreadyRegistered { .. }));
        assert_eq!(err.exit_code(), 73);
        let err = interpret(
            HelperOp::Register,
            &ps,
            HelperExit::Code(65),
            "hermes-s6-helper: register work: environment key LD_PRELOAD is refused\n",
            no_diagnosis,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidEnvPayload { .. }));
        assert!(err.to_string().contains("LD_PRELOAD"));
    }

    #[test]
    fn parses_helper_lines() {
        let line = HelperLine::parse("hermes-s6-helper: start work: no such slot: gateway-work");
        assert_eq!(line.subject, Some("start work"));
        assert_eq!(line.reason, "no such slot: gateway-work");
        let line = HelperLine::parse("something odd");
        assert_eq!(line.subject, None);
        assert_eq!(line.reason, "something odd");
        // Lines about another operation or an unknown profile are not
        // attributed.
        let ps = profiles(&["work"]);
        assert!(
            HelperLine::parse("hermes-s6-helper: stop work: x")
                .profile(HelperOp::Start, &ps)
                .is_none()
        );
        assert!(
            HelperLine::parse("hermes-s6-helper: start other: x")
                .profile(HelperOp::Start, &ps)
                .is_none()
        );
    }

    #[test]
    fn explains_privilege_failures() {
        let base = PrivilegeFacts {
            helper: "/usr/libexec/hermes-s6-helper".into(),
            owner_and_mode: Some((0, 0o104750)),
            no_new_privs: false,
            nosuid_mount: None,
        };
        assert_eq!(explain_privilege_failure(&base), None);
        let not_setuid = PrivilegeFacts {
            owner_and_mode: Some((0, 0o100755)),
            ..base.clone()
        };
        assert!(matches!(
            explain_privilege_failure(&not_setuid),
            Some(PrivilegeBlock::NotSetuid { .. })
        ));
        let wrong_owner = PrivilegeFacts {
            owner_and_mode: Some((10000, 0o104750)),
            ..base.clone()
        };
        assert!(matches!(
            explain_privilege_failure(&wrong_owner),
            Some(PrivilegeBlock::NotSetuid { .. })
        ));
        let nnp = PrivilegeFacts {
            no_new_privs: true,
            ..base.clone()
        };
        assert_eq!(
            explain_privilege_failure(&nnp),
            Some(PrivilegeBlock::NoNewPrivs)
        );
        let nosuid = PrivilegeFacts {
            nosuid_mount: Some("/usr".into()),
            ..base
        };
        let cause = explain_privilege_failure(&nosuid).unwrap();
        assert!(cause.to_string().contains("nosuid"), "{cause}");
    }

    #[test]
    fn reads_no_new_privs() {
        assert!(no_new_privs_in("Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t0\n"));
        assert!(!no_new_privs_in("Name:\tx\nNoNewPrivs:\t0\n"));
        assert!(!no_new_privs_in(""));
    }

    #[test]
    fn finds_the_nosuid_mount_holding_a_path() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /usr rw,nosuid,relatime shared:2 - ext4 /dev/sda2 rw
31 30 0:26 / /usr/lib rw,relatime shared:3 - ext4 /dev/sda3 rw
40 22 0:27 / /opt/my\\040dir rw,nosuid - tmpfs tmpfs rw
";
        let helper = Path::new("/usr/libexec/hermes-s6-helper");
        assert_eq!(
            nosuid_mount_of(helper, mountinfo),
            Some(PathBuf::from("/usr"))
        );
        assert_eq!(nosuid_mount_of(Path::new("/usr/lib/x"), mountinfo), None);
        assert_eq!(nosuid_mount_of(Path::new("/bin/x"), mountinfo), None);
        assert_eq!(nosuid_mount_of(Path::new("/usrx/y"), mountinfo), None);
        assert_eq!(
            nosuid_mount_of(Path::new("/opt/my dir/h"), mountinfo),
            Some(PathBuf::from("/opt/my dir"))
        );
        // A later mount on the same point covers the earlier one.
        let stacked = format!("{mountinfo}50 22 0:28 / /usr rw,relatime - ext4 /dev/sda4 rw\n");
        assert_eq!(nosuid_mount_of(helper, &stacked), None);
    }

    #[test]
    fn spawn_errors_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Helper::new(dir.path().join("absent"));
        let err = missing.rescan().unwrap_err();
        assert!(matches!(err, Error::HelperMissing { .. }));
        assert!(err.to_string().contains("HERMES_S6_HELPER"));
    }

    #[test]
    fn batches_beyond_4096_profiles_per_call() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("helper");
        let log = dir.path().join("calls");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1 $(($# - 1))\" >> '{}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let names: Vec<ProfileName> = (0..MAX_PROFILES_PER_CALL + 5)
            .map(|i| ProfileName::new(&format!("p{i}")).unwrap())
            .collect();
        let outcomes = Helper::new(&script)
            .run(HelperOp::Register, &names)
            .unwrap();
        assert_eq!(outcomes.len(), names.len());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "register 4096\nregister 5\n"
        );
    }
}
