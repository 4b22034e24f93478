//! The closed sets of words the whole crate speaks: the helper's
//! operations, the ways to the helper (`control_mode`), the service
//! managers, and a gateway's lifecycle intent.
//! Pure values, imported by everything above, importing nothing of the
//! crate.

use std::fmt;

use serde::Serialize;

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

/// Which service manager runs the gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceManagerKind {
    /// s6-svscan as PID 1: the Hermes container.
    S6,
    /// A systemd user manager on a host.
    Systemd,
    /// launchd user agents on macOS.
    Launchd,
    /// The Windows service control manager.
    Windows,
    /// Nothing: gateways run in the foreground (`none`).
    #[serde(rename = "none")]
    Unmanaged,
}

impl ServiceManagerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S6 => "s6",
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
            Self::Windows => "windows",
            Self::Unmanaged => "none",
        }
    }
}

impl fmt::Display for ServiceManagerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a gateway is meant to run: what `start`, `stop` and `restart`
/// record as `desired_state`, and what the boot leaves it wanting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    Running,
    Stopped,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }

    /// `running` is running; any other recorded value means stopped.
    pub fn from_recorded(value: &str) -> Self {
        if value == Self::Running.as_str() {
            Self::Running
        } else {
            Self::Stopped
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How lifecycle commands reach the helper from this process.
///
/// - **setuid** (where the kernel honors the helper's setuid bit): the
///   helper is executed, and becomes root itself;
/// - **socket** (where setuid cannot work: `no_new_privs`, as under
///   Kubernetes `allowPrivilegeEscalation: false` or `docker --security-opt
///   no-new-privileges`, or the helper on a `nosuid` mount; or forced with
///   `HERMES_S6_NO_SETUID=1`): `s6-sudo` asks the root service
///   `hermes-s6-helperd` to run the very same helper for this process, over
///   a Unix socket only root and group hermes can reach;
/// - **root**: this process is root, and runs the helper itself;
/// - **unavailable**: neither works; the reason names both and what to
///   change.
///
/// The choice is made per process by `helper::transport`, from what the
/// kernel says about this process and the helper's file, never from a
/// record anyone wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlMode {
    /// The setuid helper, executed.
    Setuid,
    /// The helper served by `hermes-s6-helperd` over its socket.
    Socket,
    /// The helper executed by root.
    Root,
    /// The helper executed with this process's own rights, no privilege
    /// involved: s6 itself runs as this user (a non-root container), so
    /// supervision is this user's to change.
    Owner,
    /// Neither transport works from here.
    Unavailable,
}

impl ControlMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setuid => "setuid",
            Self::Socket => "socket",
            Self::Root => "root",
            Self::Owner => "owner",
            Self::Unavailable => "unavailable",
        }
    }

    /// Whether the helper can be reached at all.
    pub fn reaches_helper(self) -> bool {
        self != Self::Unavailable
    }
}

impl fmt::Display for ControlMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_serialize_as_before() {
        assert_eq!(
            serde_json::to_string(&ServiceManagerKind::Unmanaged).unwrap(),
            "\"none\""
        );
        assert_eq!(ServiceManagerKind::Unmanaged.to_string(), "none");
        assert_eq!(
            serde_json::to_string(&Intent::Stopped).unwrap(),
            "\"stopped\""
        );
        assert_eq!(Intent::from_recorded("running"), Intent::Running);
        assert_eq!(Intent::from_recorded("paused"), Intent::Stopped);
        assert_eq!(HelperOp::Rescan.to_string(), "rescan");
    }
}
