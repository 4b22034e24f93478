//! Running the helper and turning what it reports into [`Error`]s.
//!
//! Contract (design §4): `hermes-s6-helper <op> <profile>...` with at most
//! 4096 profiles per call; each profile is processed in order, a failure
//! does not stop the rest, every failure prints
//! `hermes-s6-helper: <op> <profile>: <reason>` on stderr, and the exit code
//! is the first failure's.
//!
//! The helper is reached through one of two transports ([`transport`]):
//! executed (setuid, or by root), or served by the root service
//! `hermes-s6-helperd` over its socket, through `s6-sudo`, which passes the
//! arguments, stdin (the environment payload), stdout, stderr and the exit
//! code through. Everything after the call is the same for both.
//!
//! This module runs the helper; [`protocol`] reads what it says,
//! [`privilege`] works out why it could not act as root, and [`transport`]
//! picks the way to it.

mod privilege;
mod protocol;
pub mod transport;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use self::privilege::diagnose_privilege;
use self::protocol::interpret;
use self::transport::Choice;
use crate::config::Config;
use crate::error::{Error, PrivilegeBlock};
use crate::extra_env::ExtraEnv;
use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;
use crate::vocabulary::ControlMode;
pub use crate::vocabulary::HelperOp;

/// Most profiles one helper call accepts.
pub const MAX_PROFILES_PER_CALL: usize = 4096;

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

/// The socket transport's ends.
#[derive(Debug, Clone)]
struct Socket {
    client: PathBuf,
    socket: PathBuf,
}

/// The helper, and the way to it.
#[derive(Debug, Clone)]
pub struct Helper {
    path: PathBuf,
    /// Chosen on first use from [`Helper::for_config`]'s configuration;
    /// [`Helper::new`] executes `path`.
    config: Option<Box<Config>>,
    choice: OnceLock<Choice>,
}

impl Helper {
    /// The helper at `path`, executed.
    #[cfg(test)]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            config: None,
            choice: OnceLock::new(),
        }
    }

    /// The helper of `config`, through the transport that works for this
    /// process (see [`transport::choose`]), chosen on first use.
    pub fn for_config(config: &Config) -> Self {
        Self {
            path: config.helper.clone(),
            config: Some(Box::new(config.clone())),
            choice: OnceLock::new(),
        }
    }

    /// The transport, and why.
    pub fn choice(&self) -> &Choice {
        self.choice.get_or_init(|| match &self.config {
            Some(config) => transport::choose(config),
            None => Choice {
                mode: ControlMode::Setuid,
                why: format!("{} is executed", self.path.display()),
            },
        })
    }

    fn socket(&self) -> Option<Socket> {
        if self.choice().mode != ControlMode::Socket {
            return None;
        }
        let config = self.config.as_ref()?;
        Some(Socket {
            client: config.socket_client.clone(),
            socket: config.helper_socket.clone(),
        })
    }

    /// The command for one call. The helper clears its environment and
    /// closes inherited descriptors itself; stdin is `/dev/null` unless a
    /// payload is sent, since the helper reads a payload from any other stdin.
    /// Over the socket, `s6-sudo -e` sends no environment, and runs with a
    /// fixed `PATH` of s6's directories.
    pub fn command(&self, op: HelperOp, profiles: &[ProfileName]) -> Command {
        self.command_with(helper_args(op, profiles))
    }

    fn command_with(&self, args: Vec<OsString>) -> Command {
        let mut command = match self.socket() {
            Some(Socket { client, socket }) => {
                let mut command = Command::new(client);
                command
                    .env_clear()
                    .env("PATH", "/command:/usr/bin:/bin")
                    .arg("-e")
                    .arg(socket);
                command
            }
            None => {
                if self.choice().mode == ControlMode::Owner {
                    transport::forgo_privilege_gain();
                }
                Command::new(&self.path)
            }
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// The first line of `--version`, without the program's name, when the
    /// helper runs as root for this process.
    pub fn version(&self) -> Option<String> {
        let output = self
            .command_with(vec![OsString::from("--version")])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let first = text.lines().next()?.trim();
        let version = first
            .strip_prefix("hermes-s6-helper")
            .unwrap_or(first)
            .trim();
        (!version.is_empty()).then(|| version.to_owned())
    }

    /// Why a call was refused with 77, for the transport in use.
    fn diagnose(&self) -> Option<PrivilegeBlock> {
        match self.choice().mode {
            ControlMode::Setuid => diagnose_privilege(&self.path),
            _ => None,
        }
    }

    fn unavailable(&self) -> Option<Error> {
        let choice = self.choice();
        if choice.mode == ControlMode::Unavailable && std::fs::symlink_metadata(&self.path).is_err()
        {
            return Some(Error::HelperMissing {
                path: self.path.clone(),
            });
        }
        (choice.mode == ControlMode::Unavailable).then(|| Error::HelperUnavailable {
            why: choice.why.clone(),
        })
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
            outcomes.extend(interpret(op, batch, exit, &stderr, || self.diagnose())?);
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
            self.diagnose()
        })?;
        outcomes.pop().map_or(Ok(()), |(_, result)| result)
    }

    /// `rescan`: s6-svscan picks up new slots and prunes retired ones.
    pub fn rescan(&self) -> Result<(), Error> {
        let (exit, stderr) = self.exec(HelperOp::Rescan, &[], None)?;
        interpret(HelperOp::Rescan, &[], exit, &stderr, || self.diagnose()).map(drop)
    }

    fn exec(
        &self,
        op: HelperOp,
        profiles: &[ProfileName],
        payload: Option<&[u8]>,
    ) -> Result<(HelperExit, String), Error> {
        if let Some(error) = self.unavailable() {
            return Err(error);
        }
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
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if let (Some(socket), HelperExit::Code(code)) = (self.socket(), exit)
            && let Some(error) = transport::socket_failure(&socket.socket, code, &stderr)
        {
            return Err(error);
        }
        Ok((exit, stderr))
    }

    fn spawn_error(&self, error: io::Error) -> Error {
        if let Some(socket) = self.socket() {
            return Error::io("run", socket.client, error);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(names: &[&str]) -> Vec<ProfileName> {
        names.iter().map(|n| ProfileName::new(n).unwrap()).collect()
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
