//! The control mode the boot recorded, and the helper: installed, owner,
//! group, mode, and whether it really runs as root for this user.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use super::Check;
use crate::config::Config;
use crate::control_mode::{ControlMode, ModeRecord};
use crate::error::PrivilegeBlock;
use crate::fifo_control::control_gid;
use crate::helper::diagnose_privilege;

pub(super) fn mode_check(config: &Config, record: &ModeRecord) -> Check {
    const ID: &str = "control_mode";
    const NAME: &str = "control mode";
    let file = config.mode_file.display();
    match record {
        ModeRecord::Recorded(ControlMode::Setuid) => Check::ok(
            ID,
            NAME,
            format!("setuid ({file}): lifecycle commands go through the setuid helper"),
        ),
        ModeRecord::Recorded(ControlMode::NoSetuid) => Check::ok(
            ID,
            NAME,
            format!(
                "no-setuid ({file}): group hermes writes s6 control commands into the gateways' control FIFOs; registering and unregistering wait for the next boot (see SECURITY.md)"
            ),
        ),
        ModeRecord::Absent => Check::ok(
            ID,
            NAME,
            format!("setuid (no record at {file}: the default)"),
        ),
        ModeRecord::Untrusted(why) => Check::warn(
            ID,
            NAME,
            format!("setuid assumed: the boot's record cannot be trusted: {why}"),
            format!(
                "the record must be a root-owned file, writable by root only, holding `setuid` or `no-setuid`; remove {file} as root and restart the container"
            ),
        ),
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
    let hermes_gid = control_gid(config).ok().map(|gid| gid.as_raw());
    let mode_bits = meta.mode() & 0o7777;
    let mut problems = Vec::new();
    if meta.uid() != 0 {
        problems.push(format!("owned by uid {} instead of root", meta.uid()));
    }
    match mode {
        ControlMode::Setuid => {
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
            checks.push(if problems.is_empty() {
                Check::ok(
                    "helper.permissions",
                    "helper permissions",
                    format!("setuid root, group {}, mode 4750", config.hermes_user),
                )
            } else {
                Check::fail(
                    "helper.permissions",
                    "helper permissions",
                    format!("{shown}: {}", problems.join("; ")),
                    install,
                )
            });
            checks.push(helper_runs(config));
        }
        ControlMode::NoSetuid => {
            if mode_bits & 0o022 != 0 {
                problems.push(format!("mode {mode_bits:o}: writable by group or others"));
            }
            checks.push(if problems.is_empty() {
                Check::ok(
                    "helper.permissions",
                    "helper permissions",
                    format!(
                        "root-owned, mode {mode_bits:o}; the setuid bit is not needed in no-setuid mode"
                    ),
                )
            } else {
                Check::fail(
                    "helper.permissions",
                    "helper permissions",
                    format!("{shown}: {}", problems.join("; ")),
                    format!("as root: chown root {shown} && chmod 0755 {shown}"),
                )
            });
            checks.push(Check::ok(
                "helper.effective",
                "helper works",
                "not used at run time: in no-setuid mode root runs the helper at boot only",
            ));
        }
    }
    checks
}

/// Runs `helper --version` as this user and explains a refusal.
fn helper_runs(config: &Config) -> Check {
    const ID: &str = "helper.effective";
    const NAME: &str = "helper works";
    let uid = nix::unistd::getuid();
    let no_setuid_hint =
        "or start the container with HERMES_S6_NO_SETUID=1 (no-setuid mode, see SECURITY.md)";
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
