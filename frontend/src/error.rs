//! The one error type of the library. Each variant renders as one line that
//! says what went wrong and what to do about it; [`Error::exit_code`] gives
//! the process exit code (sysexits, the helper's own code where the helper
//! is the cause).

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::profile::{InvalidProfileName, ProfileName};
#[cfg(unix)]
use crate::s6::supervise::SuperviseError;
use crate::vocabulary::{HelperOp, ServiceManagerKind};

/// Exit codes (sysexits.h), shared with the helper's contract.
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOINPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const OSFILE: u8 = 72;
    pub const CANTCREAT: u8 = 73;
    pub const IOERR: u8 = 74;
    pub const TEMPFAIL: u8 = 75;
    pub const NOPERM: u8 = 77;
    pub const CONFIG: u8 = 78;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    InvalidProfileName(#[from] InvalidProfileName),

    #[error(
        "no such gateway '{profile}': register it with `hermes profile create {profile}` first, or pass an existing profile name via `-p <name>`"
    )]
    GatewayNotRegistered { profile: ProfileName },

    #[error(
        "gateway '{profile}' is already registered: start it with `hermes-s6 gateway start -p {profile}`, or unregister it first"
    )]
    AlreadyRegistered { profile: ProfileName },

    #[error("cannot pass environment variable '{key}' to the gateway: {reason}")]
    InvalidEnvVar { key: String, reason: String },

    #[error("invalid gateway environment: {reason}")]
    InvalidEnvPayload { reason: String },

    #[error(
        "cannot {operation} on the {manager} service manager: gateways are registered at run time only under s6 (the Hermes container)"
    )]
    Unsupported {
        manager: ServiceManagerKind,
        operation: &'static str,
    },

    #[error(
        "cannot {operation}: no service manager was found (not the Hermes container, no systemd user manager); run the gateway in the foreground with `hermes gateway run`"
    )]
    NoServiceManager { operation: &'static str },

    #[error(
        "the gateway helper {} is missing: install it as root:hermes mode 4750, or point HERMES_S6_HELPER at it",
        path.display()
    )]
    HelperMissing { path: PathBuf },

    #[error(
        "cannot run the gateway helper {}: permission denied; run as root or as a member of group hermes",
        path.display()
    )]
    HelperNotExecutable { path: PathBuf },

    #[error(
        "the gateway helper cannot act as root: {cause}{}",
        helper_said(message)
    )]
    HelperNotPrivileged {
        cause: PrivilegeBlock,
        message: String,
    },

    #[error(
        "s6-svscan is not running, so gateways cannot be controlled{}: this works only inside the Hermes container",
        helper_said(message)
    )]
    SupervisorNotRunning { message: String },

    #[error(
        "the helper refused to touch an unsafe scan directory entry and changed nothing{}: inspect it as root",
        helper_said(message)
    )]
    UnsafeState { message: String },

    #[error("refusing to use {}: {reason}", path.display())]
    UnsafePath { path: PathBuf, reason: &'static str },

    #[error("{}", HelperFailureLine { op: *op, profile: profile.as_ref(), code: *code, message })]
    HelperFailed {
        op: HelperOp,
        profile: Option<ProfileName>,
        /// The helper's exit code, when it is known to belong to this failure
        /// (the helper exits with the first failure's code only).
        code: Option<u8>,
        message: String,
    },

    #[error("the gateway helper was killed by signal {signal} during `{op}`")]
    HelperKilled { op: HelperOp, signal: i32 },

    #[error("`{command}` failed{}: {message}", code.map(|c| format!(" (exit {c})")).unwrap_or_default())]
    HostCommand {
        command: String,
        code: Option<i32>,
        message: String,
    },

    #[error(
        "{}: {len} bytes is not an s6 status file this version understands (expected 35 or 43)",
        path.display()
    )]
    StatusFormat { path: PathBuf, len: usize },

    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{what} is not implemented yet")]
    NotImplemented { what: &'static str },

    #[error(
        "{what} refuses to run as root: it acts on the volume, which {user} may change at any moment; run it as {user} (`s6-setuidgid {user} {what}`)"
    )]
    RefusedAsRoot { what: &'static str, user: String },

    #[error("gateways cannot be controlled from here: {why}")]
    HelperUnavailable { why: String },

    #[error(
        "cannot reach the gateway helper's socket {}: {message}{}",
        socket.display(),
        if *denied { "; only root and group hermes may use it" } else { "; the container's hermes-s6-helperd service serves it" }
    )]
    HelperSocketUnreachable {
        socket: PathBuf,
        /// The socket refused this user (permissions), rather than being absent or dead.
        denied: bool,
        message: String,
    },

    #[error(
        "the gateway helper's socket server ({}) refused this user: only root and the hermes user (group hermes) may use it",
        socket.display()
    )]
    HelperSocketRefused { socket: PathBuf },

    #[error(
        "gateway '{profile}' was sent SIGTERM but its process did not end within {seconds} s; s6 kills it once the slot's timeout-kill expires and starts it again, unless it then exits 0: check with `hermes-s6 gateway status -p {profile}` and start it if it is down"
    )]
    RestartUnfinished { profile: ProfileName, seconds: u64 },

    #[error(
        "no s6-supervise took gateway '{profile}' within {seconds} s: s6-svscan did not restart its supervisor (s6 2.13 and later can lose one that died within a second of its start; a rescan does not bring it back); its intent (running) is recorded: restart the container"
    )]
    Unsupervised { profile: ProfileName, seconds: u64 },

    #[error(
        "`{op}` cannot work in this container, so nothing was changed: s6-svscan (PID 1) lacks CAP_{cap}, which {needed_for}; add it to the container's capabilities (docker run --cap-add {cap}; Kubernetes securityContext.capabilities.add: [{cap}]) and restart it"
    )]
    MissingCapability {
        op: HelperOp,
        cap: &'static str,
        needed_for: &'static str,
    },
}

impl Error {
    /// The process exit code for this error (sysexits; the helper's own code
    /// when the helper reported the failure).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidProfileName { .. }
            | Self::InvalidEnvVar { .. }
            | Self::InvalidEnvPayload { .. }
            | Self::StatusFormat { .. } => exit::DATAERR,
            Self::GatewayNotRegistered { .. } => exit::NOINPUT,
            Self::AlreadyRegistered { .. } => exit::CANTCREAT,
            Self::Unsupported { .. }
            | Self::NoServiceManager { .. }
            | Self::SupervisorNotRunning { .. } => exit::UNAVAILABLE,
            Self::HelperMissing { .. } => exit::OSFILE,
            Self::HelperNotExecutable { .. } | Self::HelperNotPrivileged { .. } => exit::NOPERM,
            Self::UnsafeState { .. } | Self::UnsafePath { .. } => exit::CONFIG,
            Self::HelperFailed { code, .. } => code.unwrap_or(exit::SOFTWARE),
            Self::HelperKilled { .. } | Self::HostCommand { .. } | Self::NotImplemented { .. } => {
                exit::SOFTWARE
            }
            Self::RestartUnfinished { .. } => exit::TEMPFAIL,
            Self::Unsupervised { .. } => exit::UNAVAILABLE,
            Self::MissingCapability { .. } => exit::NOPERM,
            Self::HelperUnavailable { .. }
            | Self::HelperSocketRefused { .. }
            | Self::RefusedAsRoot { .. } => exit::NOPERM,
            Self::HelperSocketUnreachable { denied, .. } => {
                if *denied {
                    exit::NOPERM
                } else {
                    exit::UNAVAILABLE
                }
            }
            Self::Io { .. } => exit::IOERR,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(unix)]
impl From<SuperviseError> for Error {
    fn from(error: SuperviseError) -> Self {
        match error {
            SuperviseError::Io { path, source } => Self::io("read", path, source),
            SuperviseError::Format { path, len } => Self::StatusFormat { path, len },
        }
    }
}

/// Why a setuid helper that exited 77 could not act as root, worked out by
/// looking at the helper file and this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivilegeBlock {
    /// The helper file is not owned by root or lacks the setuid bit.
    NotSetuid { path: PathBuf },
    /// `no_new_privs` is set on this process: exec ignores setuid bits.
    NoNewPrivs,
    /// The helper lies on a filesystem mounted `nosuid`.
    NosuidMount { path: PathBuf, mount_point: PathBuf },
    /// The helper runs as root but refused this caller.
    NotAuthorized,
    /// The helper did not run as root although nothing known blocks its
    /// setuid bit (a tracer attached, or a security policy).
    SetuidIgnored,
}

impl fmt::Display for PrivilegeBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSetuid { path } => write!(
                f,
                "{} is not setuid root; reinstall it owned by root:hermes with mode 4750",
                path.display()
            ),
            Self::NoNewPrivs => f.write_str(
                "no_new_privs is set on this process, which disables setuid; allow privilege escalation for the container (Kubernetes `allowPrivilegeEscalation: true`, no Docker `--security-opt no-new-privileges`)",
            ),
            Self::NosuidMount { path, mount_point } => write!(
                f,
                "{} lies on {}, which is mounted nosuid; install the helper on a filesystem mounted without nosuid",
                path.display(),
                mount_point.display()
            ),
            Self::SetuidIgnored => f.write_str(
                "the helper's setuid bit was not honored although it is installed setuid root and no_new_privs is off (a tracer attached, or a security module); run it without a debugger or tracer",
            ),
            Self::NotAuthorized => f.write_str(
                "this user may not control gateways; run as the hermes user (or another member of group hermes) or as root",
            ),
        }
    }
}

fn helper_said(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" (helper: {message})")
    }
}

struct HelperFailureLine<'a> {
    op: HelperOp,
    profile: Option<&'a ProfileName>,
    code: Option<u8>,
    message: &'a str,
}

impl fmt::Display for HelperFailureLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gateway helper `{}", self.op)?;
        if let Some(profile) = self.profile {
            write!(f, " {profile}")?;
        }
        f.write_str("` failed")?;
        if let Some(code) = self.code {
            write!(f, " (exit {code})")?;
        }
        if self.message.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let samples = [
            Error::from(ProfileName::new("X").unwrap_err()),
            Error::GatewayNotRegistered {
                profile: ProfileName::new("typo").unwrap(),
            },
            Error::HelperNotPrivileged {
                cause: PrivilegeBlock::NoNewPrivs,
                message: "not running as root".into(),
            },
            Error::HelperFailed {
                op: HelperOp::Start,
                profile: Some(ProfileName::new("work").unwrap()),
                code: Some(70),
                message: "internal error".into(),
            },
        ];
        for error in samples {
            let line = error.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.is_empty());
        }
    }

    #[test]
    fn a_missing_slot_says_how_to_create_the_profile() {
        let error = Error::GatewayNotRegistered {
            profile: ProfileName::new("typo").unwrap(),
        };
        assert_eq!(
            error.to_string(),
            "no such gateway 'typo': register it with `hermes profile create typo` first, or pass an existing profile name via `-p <name>`"
        );
        assert_eq!(error.exit_code(), 66);
    }

    #[test]
    fn helper_failures_keep_the_helpers_code_and_message() {
        let error = Error::HelperFailed {
            op: HelperOp::Stop,
            profile: Some(ProfileName::new("work").unwrap()),
            code: Some(70),
            message: "write control: broken pipe".into(),
        };
        assert_eq!(
            error.to_string(),
            "gateway helper `stop work` failed (exit 70): write control: broken pipe"
        );
        assert_eq!(error.exit_code(), 70);
    }
}
