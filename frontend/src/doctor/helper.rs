//! The transport to the helper, and the helper: installed, owner, group,
//! mode, and whether it really runs as root for this user over that
//! transport; the socket of `hermes-s6-helperd`.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use super::Check;
use crate::config::Config;
use crate::error::PrivilegeBlock;
use crate::helper::{Helper, diagnose_privilege, transport};
use crate::vocabulary::ControlMode;

pub(super) fn mode_check(mode: ControlMode, why: &str) -> Check {
    const ID: &str = "control_mode";
    const NAME: &str = "control mode";
    match mode {
        ControlMode::Unavailable => Check::fail(
            ID,
            NAME,
            format!("no way to the helper: {why}"),
            "allow setuid for the container, or run the image's hermes-s6-helperd service (see README, Deployments)",
        ),
        mode => Check::ok(ID, NAME, format!("{mode}: {why}")),
    }
}

/// The gid of group hermes, by name.
fn hermes_gid(config: &Config) -> Option<u32> {
    nix::unistd::Group::from_name(&config.hermes_user)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The helper's socket: there and connectable (needed in socket mode,
/// reported in the others).
pub(super) fn socket_check(config: &Config, mode: ControlMode) -> Check {
    const ID: &str = "helper.socket";
    const NAME: &str = "helper socket";
    let socket = config.helper_socket.display();
    match (transport::socket_connectable(&config.helper_socket), mode) {
        (Ok(()), _) => Check::ok(
            ID,
            NAME,
            format!("{socket}: hermes-s6-helperd accepts connections from this user"),
        ),
        (Err(why), ControlMode::Socket) => Check::fail(
            ID,
            NAME,
            why,
            format!(
                "the container's hermes-s6-helperd service must run (s6-rc bundle `user`), and this user must be root, {user} or in group {user}",
                user = config.hermes_user
            ),
        ),
        (Err(_), ControlMode::Owner) => Check::ok(
            ID,
            NAME,
            "not used here: s6 runs as this user (a non-root container), and hermes-s6-helperd serves nothing",
        ),
        (Err(why), _) => Check::ok(ID, NAME, format!("not used here ({why})")),
    }
}

pub(super) fn helper_checks(config: &Config, mode: ControlMode) -> Vec<Check> {
    let helper = &config.helper;
    let shown = helper.display();
    let install = format!(
        "as root: chown root:{user} {shown} && chmod 4750 {shown} (chown clears the setuid bit, so chmod comes last)",
        user = config.hermes_user
    );
    let meta = match std::fs::symlink_metadata(helper) {
        Ok(meta) => meta,
        Err(e) => {
            return vec![Check::fail(
                "helper.installed",
                "helper installed",
                format!("{shown}: {e}"),
                format!(
                    "install hermes-s6-helper there, owned by root:{} with mode 4750 (or point HERMES_S6_HELPER at it)",
                    config.hermes_user
                ),
            )];
        }
    };
    if !meta.file_type().is_file() {
        return vec![Check::fail(
            "helper.installed",
            "helper installed",
            format!("{shown} is not a regular file (a symbolic link or another type)"),
            "install the helper itself at that path",
        )];
    }
    let mut checks = vec![Check::ok(
        "helper.installed",
        "helper installed",
        shown.to_string(),
    )];
    let hermes_gid = hermes_gid(config);
    let mode_bits = meta.mode() & 0o7777;
    let mut problems = Vec::new();
    if meta.uid() != 0 {
        problems.push(format!("owned by uid {} instead of root", meta.uid()));
    }
    let installed_as = match mode {
        // Unavailable: the image installs it setuid; say why that fails.
        ControlMode::Setuid | ControlMode::Unavailable => {
            if Some(meta.gid()) != hermes_gid {
                problems.push(format!(
                    "group {} instead of {} ({})",
                    meta.gid(),
                    config.hermes_user,
                    hermes_gid.map_or_else(|| "no such group".to_owned(), |g| format!("gid {g}"))
                ));
            }
            if mode_bits != 0o4750 {
                let why = if mode_bits & 0o4000 == 0 {
                    ": the setuid bit is missing, so the helper cannot act as root"
                } else {
                    ""
                };
                problems.push(format!("mode {mode_bits:o} instead of 4750{why}"));
            }
            format!("setuid root, group {}, mode 4750", config.hermes_user)
        }
        ControlMode::Socket | ControlMode::Root | ControlMode::Owner => {
            if mode_bits & 0o022 != 0 {
                problems.push(format!("mode {mode_bits:o}: writable by group or others"));
            }
            let runs_it = match mode {
                ControlMode::Owner => "this user runs it with its own rights here",
                _ => "root runs it here",
            };
            format!("root-owned, mode {mode_bits:o}; {runs_it}, so its setuid bit is not needed")
        }
    };
    checks.push(if problems.is_empty() {
        Check::ok("helper.permissions", "helper permissions", installed_as)
    } else {
        Check::fail(
            "helper.permissions",
            "helper permissions",
            format!("{shown}: {}", problems.join("; ")),
            install,
        )
    });
    checks.push(match mode {
        ControlMode::Socket => helper_runs_over_socket(config),
        _ => helper_runs(config, mode),
    });
    checks
}

/// Runs `helper --version` as this user and explains a refusal.
fn helper_runs(config: &Config, mode: ControlMode) -> Check {
    const ID: &str = "helper.effective";
    const NAME: &str = "helper works";
    let uid = nix::unistd::getuid();
    let no_setuid_hint = "or run the image's hermes-s6-helperd service, which serves the helper over a socket where setuid cannot work";
    if mode == ControlMode::Owner {
        transport::forgo_privilege_gain();
    }
    let output = Command::new(&config.helper)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Check::fail(
                ID,
                NAME,
                format!(
                    "uid {uid} cannot execute {}: it is executable by group {} only, and this user is not in it",
                    config.helper.display(),
                    config.hermes_user
                ),
                format!(
                    "run hermes-s6 as the hermes user (or another member of group {}) or as root",
                    config.hermes_user
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                NAME,
                format!("cannot run {}: {e}", config.helper.display()),
                "reinstall the helper",
            );
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    match output.status.code() {
        Some(0) if mode == ControlMode::Owner => Check::ok(
            ID,
            NAME,
            format!("`--version` runs with uid {uid}'s own rights, the user s6 runs as"),
        ),
        Some(0) => Check::ok(ID, NAME, format!("`--version` runs as root for uid {uid}")),
        Some(77) if stderr.contains("is not in group") => Check::fail(
            ID,
            NAME,
            format!(
                "the helper refuses uid {uid}: not a member of group {} ({stderr})",
                config.hermes_user
            ),
            format!(
                "run as the hermes user (or add this user to group {}) or as root",
                config.hermes_user
            ),
        ),
        Some(77) => {
            let (detail, fix) = match diagnose_privilege(&config.helper) {
                Some(PrivilegeBlock::NoNewPrivs) => (
                    "the setuid bit is ignored: no_new_privs is set on this process (Kubernetes allowPrivilegeEscalation: false, docker --security-opt no-new-privileges)".to_owned(),
                    format!("allow privilege escalation for the container, {no_setuid_hint}"),
                ),
                Some(PrivilegeBlock::NosuidMount { mount_point, .. }) => (
                    format!(
                        "the setuid bit is ignored: {} lies on {}, which is mounted nosuid",
                        config.helper.display(),
                        mount_point.display()
                    ),
                    format!("install the helper on a filesystem mounted without nosuid, {no_setuid_hint}"),
                ),
                Some(PrivilegeBlock::NotSetuid { .. }) => (
                    format!("{} is not setuid root, so it cannot act as root", config.helper.display()),
                    format!(
                        "as root: chown root:{} {h} && chmod 4750 {h}",
                        config.hermes_user,
                        h = config.helper.display()
                    ),
                ),
                _ => (
                    format!("the helper could not become root ({stderr})"),
                    format!("run it without a tracer or a security module that blocks setuid, {no_setuid_hint}"),
                ),
            };
            Check::fail(ID, NAME, detail, fix)
        }
        Some(code) => Check::fail(
            ID,
            NAME,
            format!("`--version` exited {code}: {stderr}"),
            "reinstall the helper from the image",
        ),
        None => Check::fail(
            ID,
            NAME,
            "`--version` was killed by a signal",
            "reinstall the helper from the image",
        ),
    }
}

/// `--version` through the socket of `hermes-s6-helperd`.
fn helper_runs_over_socket(config: &Config) -> Check {
    const ID: &str = "helper.effective";
    const NAME: &str = "helper works";
    let uid = nix::unistd::getuid();
    match Helper::for_config(config).version() {
        Some(version) => Check::ok(
            ID,
            NAME,
            format!(
                "`--version` runs as root for uid {uid} over {} ({version})",
                config.helper_socket.display()
            ),
        ),
        None => Check::fail(
            ID,
            NAME,
            format!(
                "`--version` over {} did not succeed for uid {uid}",
                config.helper_socket.display()
            ),
            format!(
                "run as root, the hermes user or a member of group {}; check that hermes-s6-helperd runs",
                config.hermes_user
            ),
        ),
    }
}
