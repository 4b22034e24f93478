//! The helper's stderr protocol: `hermes-s6-helper: <op> <profile>: <reason>`
//! lines and its exit code, turned into per-profile outcomes or one error
//! for the whole call.

use super::HelperExit;
use crate::error::{Error, PrivilegeBlock};
use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;
use crate::vocabulary::HelperOp;

/// Prefix of every line the helper writes on stderr.
const STDERR_PREFIX: &str = "hermes-s6-helper: ";

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
}
