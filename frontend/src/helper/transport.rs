//! Which transport reaches the helper from this process (see
//! [`ControlMode`]), and what `s6-sudo` says when the socket fails.
//!
//! The order: root runs the helper itself; where s6 runs as this very user
//! (a non-root container), this process runs it with its own rights;
//! `HERMES_S6_NO_SETUID` asks for
//! the socket alone; setuid where it works (the helper a setuid root file,
//! no `no_new_privs` on this process, no `nosuid` on the helper's mount);
//! else the socket where `hermes-s6-helperd` serves it; else nothing, with
//! both reasons.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag, open};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::privilege::{explain_privilege_failure, privilege_facts};
use crate::config::Config;
use crate::error::Error;
use crate::vocabulary::ControlMode;

/// The transport chosen, and why, in words for `doctor` and `info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub mode: ControlMode,
    pub why: String,
}

/// Chooses the transport for this process.
pub fn choose(config: &Config) -> Choice {
    if let Some(mode) = config.control_mode {
        return Choice {
            mode,
            why: "set by the program".to_owned(),
        };
    }
    if nix::unistd::geteuid().is_root() {
        return Choice {
            mode: ControlMode::Root,
            why: "this process is root: it runs the helper itself".to_owned(),
        };
    }
    if let Some(uid) = supervised_by_this_user(config) {
        return Choice {
            mode: ControlMode::Owner,
            why: format!(
                "s6 runs as uid {uid}, this process's own (a non-root container): it runs the helper with its own rights, without privilege"
            ),
        };
    }
    let socket = socket_present(&config.helper_socket);
    let service = "the root service hermes-s6-helperd serves the helper";
    if config.force_socket {
        return match socket {
            Ok(()) => Choice {
                mode: ControlMode::Socket,
                why: format!(
                    "HERMES_S6_NO_SETUID is set: {service} on {}",
                    config.helper_socket.display()
                ),
            },
            Err(why) => Choice {
                mode: ControlMode::Unavailable,
                why: format!(
                    "HERMES_S6_NO_SETUID asks for the socket transport, but {why}; start the container's hermes-s6-helperd service, or unset HERMES_S6_NO_SETUID where setuid works"
                ),
            },
        };
    }
    let setuid = setuid_works(config);
    match (setuid, socket) {
        (Ok(()), _) => Choice {
            mode: ControlMode::Setuid,
            why: format!(
                "{} is setuid root, and setuid works for this process (no no_new_privs, no nosuid mount)",
                config.helper.display()
            ),
        },
        (Err(setuid), Ok(())) => Choice {
            mode: ControlMode::Socket,
            why: format!(
                "setuid cannot work here ({setuid}); {service} on {}",
                config.helper_socket.display()
            ),
        },
        (Err(setuid), Err(socket)) => Choice {
            mode: ControlMode::Unavailable,
            why: format!(
                "setuid cannot work here ({setuid}), and the socket transport is not there either ({socket}); allow setuid (no no_new_privs: Kubernetes allowPrivilegeEscalation: true, no docker --security-opt no-new-privileges; the helper installed 4750 root:{user} on a mount without nosuid), or run the image's hermes-s6-helperd service (s6-rc bundle `user`)",
                user = config.hermes_user
            ),
        },
    }
}

/// This process's uid, when it is not root and owns the scan directory:
/// s6-svscan runs as this user (s6 creates nothing there as another).
fn supervised_by_this_user(config: &Config) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid();
    let owner = std::fs::symlink_metadata(&config.scan_dir).ok()?.uid();
    (!euid.is_root() && owner == euid.as_raw()).then_some(owner)
}

/// Sets `no_new_privs` on this process, before it runs the helper with its
/// own rights ([`ControlMode::Owner`]): where the kernel would honor the
/// helper's setuid bit, the helper would run as root and rightly refuse a
/// supervision tree that is not root's. This process, in a container whose
/// s6 runs as its own user, has no privilege to gain anyway. Best effort:
/// a kernel without it leaves the helper to refuse.
pub(crate) fn forgo_privilege_gain() {
    let _ = nix::sys::prctl::set_no_new_privs();
}

/// Whether executing the helper would make it root: a root-owned setuid
/// file, and nothing that makes the kernel ignore the bit.
fn setuid_works(config: &Config) -> Result<(), String> {
    let facts = privilege_facts(&config.helper, &config.proc_dir.join("self"));
    if facts.owner_and_mode.is_none() {
        return Err(format!("{} is missing", config.helper.display()));
    }
    match explain_privilege_failure(&facts) {
        None => Ok(()),
        Some(block) => Err(block.to_string()),
    }
}

/// The socket is there and can be trusted with a payload: a socket owned by
/// root, in a root-owned directory no one else may write.
pub fn socket_present(socket: &Path) -> Result<(), String> {
    let shown = socket.display();
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Err(format!("{shown} is not a socket path"));
    };
    let dir_fd = match open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            return Err(format!(
                "no socket at {shown} (hermes-s6-helperd is not running)"
            ));
        }
        Err(e) => return Err(format!("{}: {}", dir.display(), e.desc())),
    };
    root_only(
        &fstat(&dir_fd).map_err(|e| e.desc().to_owned())?,
        SFlag::S_IFDIR,
    )
    .map_err(|why| format!("{}: {why}", dir.display()))?;
    let st = match fstatat(&dir_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => {
            return Err(format!(
                "no socket at {shown} (hermes-s6-helperd is not running)"
            ));
        }
        Err(e) => return Err(format!("{shown}: {}", e.desc())),
    };
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFSOCK.bits() {
        return Err(format!("{shown} is not a socket"));
    }
    if st.st_uid != 0 {
        return Err(format!("{shown} is not owned by root"));
    }
    Ok(())
}

/// Whether this process can connect to the socket now (for `doctor` and
/// `info`; the server then sees a client that says nothing, and drops it).
pub fn socket_connectable(socket: &Path) -> Result<(), String> {
    socket_present(socket)?;
    match UnixStream::connect(socket) {
        Ok(_) => Ok(()),
        Err(e) => Err(connect_failure(socket, &e)),
    }
}

fn connect_failure(socket: &Path, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "{}: permission denied (only root and group hermes may connect)",
            socket.display()
        ),
        io::ErrorKind::ConnectionRefused => format!(
            "{}: nothing listens (hermes-s6-helperd is down)",
            socket.display()
        ),
        _ => format!("{}: {error}", socket.display()),
    }
}

/// The object is of type `kind`, owned by root and not writable by group
/// or others.
fn root_only(st: &FileStat, kind: SFlag) -> Result<(), &'static str> {
    if st.st_mode & SFlag::S_IFMT.bits() != kind.bits() {
        return Err("wrong file type");
    }
    if st.st_uid != 0 {
        return Err("not owned by root");
    }
    if st.st_mode & 0o022 != 0 {
        return Err("writable by group or others");
    }
    Ok(())
}

/// `s6-sudo` exits 100 (usage) or 111 (a system call failed) for its own
/// failures, codes the helper never uses. Its stderr then says which:
/// `s6-ipcclient` could not connect (no server, or not permitted), or
/// `s6-sudoc` was hung up on (`s6-ipcserver-access` refused this user).
pub fn socket_failure(socket: &Path, code: i32, stderr: &str) -> Option<Error> {
    if !matches!(code, 100 | 111) {
        return None;
    }
    let said = |prefix: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l.trim().to_owned())
    };
    if let Some(line) = said("s6-ipcclient:") {
        return Some(Error::HelperSocketUnreachable {
            socket: socket.to_path_buf(),
            denied: line.ends_with("Permission denied"),
            message: line,
        });
    }
    if let Some(line) = said("s6-sudoc:") {
        if line.contains("unable to connect to the s6-sudod server") {
            return Some(Error::HelperSocketRefused {
                socket: socket.to_path_buf(),
            });
        }
        return Some(Error::HelperSocketUnreachable {
            socket: socket.to_path_buf(),
            denied: false,
            message: line,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s6_sudos_own_failures() {
        let socket = Path::new("/run/hermes-s6/helper.sock");
        let err = socket_failure(
            socket,
            111,
            "s6-ipcclient: fatal: unable to connect to /run/hermes-s6/helper.sock: No such file or directory\n",
        )
        .unwrap();
        assert!(matches!(
            err,
            Error::HelperSocketUnreachable { denied: false, .. }
        ));
        assert_eq!(err.exit_code(), 69);
        let err = socket_failure(
            socket,
            111,
            "s6-ipcclient: fatal: unable to connect to /run/hermes-s6/helper.sock: Permission denied\n",
        )
        .unwrap();
        assert_eq!(err.exit_code(), 77);
        let err = socket_failure(
            socket,
            111,
            "s6-sudoc: fatal: : unable to connect to the s6-sudod server - check that you have appropriate permissions\n",
        )
        .unwrap();
        assert!(matches!(err, Error::HelperSocketRefused { .. }));
        assert_eq!(err.exit_code(), 77);
        assert!(err.to_string().contains("group hermes"), "{err}");
        // The helper's own codes pass through.
        assert!(socket_failure(socket, 65, "hermes-s6-helper: register x: bad\n").is_none());
        assert!(socket_failure(socket, 111, "something else\n").is_none());
    }

    #[test]
    fn a_missing_socket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let why = socket_present(&dir.path().join("none/helper.sock")).unwrap_err();
        assert!(why.contains("hermes-s6-helperd is not running"), "{why}");
    }
}
