//! `hermes-s6 doctor`: whether gateways can be supervised and controlled
//! from here, and what to change when they cannot.
//!
//! Every check ends `ok`, `warn` or `fail`; a `warn` or `fail` says what to
//! do. Checks that look at gateways produce one `ok` line when nothing is
//! wrong, and one line per gateway otherwise. The report is the
//! `hermes-s6.doctor/1` document (`SCHEMA.md`); [`Report::failed`] decides
//! the exit status.
//!
//! Checked, in order: the service manager; the control mode the boot
//! recorded ([`crate::mode`]); the helper (installed, owner, group, mode,
//! and whether it really runs as root for this user: `--version`, whose exit
//! 77 is explained as `no_new_privs`, a `nosuid` mount, a missing setuid bit
//! or a caller outside group hermes); s6-svscan and its scan directory (root's,
//! nothing in it writable by hermes or owned by it, `event/` directories
//! root's); in no-setuid mode, the control grant of every gateway slot; the
//! services present (`main-hermes`, `dashboard`, gateways) and how many are
//! up; per gateway: crash loops, an intent of running while down, slots
//! without a profile and profiles without a slot, profiles whose last
//! [`FAILED_BOOTS`] container runs all ended in `startup_failed` (from the
//! boot log); and `$HERMES_HOME`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::config::Config;
use crate::direct::{check_granted_fifo, control_gid};
use crate::error::PrivilegeBlock;
use crate::helper::diagnose_privilege;
use crate::manager::ServiceManagerKind;
use crate::manager::s6::S6Manager;
use crate::mode::{ControlMode, Marker, read_marker};
use crate::profile::ProfileName;
use crate::reconcile::bootlog::{BOOT_LOG, BOOT_LOG_ROTATED, LOGS_DIR};
use crate::reconcile::survey::{EntryFacts, ProfilesDir, Survey};
use crate::s6::supervise;
use crate::status::{GatewayState, GatewayStatus};
use crate::time::{iso8601_utc, unix_now};

/// Identifier of the doctor document's schema.
pub const DOCTOR_SCHEMA: &str = "hermes-s6.doctor/1";

/// A profile whose last this many container runs all ended in
/// `startup_failed` is reported.
pub const FAILED_BOOTS: usize = 3;

/// Services of the image that live in the scan directory next to the
/// gateways.
pub const IMAGE_SERVICES: [&str; 2] = ["main-hermes", "dashboard"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `helper.permissions`, `gateway.crash_loop`.
    pub id: &'static str,
    /// Short label for people.
    pub name: String,
    pub verdict: Verdict,
    /// The gateway the line is about, for per-gateway checks.
    pub profile: Option<ProfileName>,
    /// What was found.
    pub detail: String,
    /// What to do; present for every `warn` and `fail`.
    pub fix: Option<String>,
}

impl Check {
    fn ok(id: &'static str, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            verdict: Verdict::Ok,
            profile: None,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(
        verdict: Verdict,
        id: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            verdict,
            profile: None,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(
        id: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::problem(Verdict::Fail, id, name, detail, fix)
    }

    fn warn(
        id: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::problem(Verdict::Warn, id, name, detail, fix)
    }

    fn about(mut self, profile: &ProfileName) -> Self {
        self.profile = Some(profile.clone());
        self
    }
}

/// How a service of the scan directory is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Not in the scan directory.
    Absent,
    Up,
    Down,
    /// Present, but no s6-supervise runs on it.
    Unsupervised,
    /// Present, but its status cannot be read by this user.
    Unreadable,
}

/// The services of the scan directory, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Services {
    pub main_hermes: ServiceState,
    pub dashboard: ServiceState,
    /// Profile gateway slots.
    pub gateways: usize,
    /// Of which up.
    pub gateways_up: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

/// The `--json` document of `doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: String,
    pub service_manager: ServiceManagerKind,
    /// `setuid` or `no-setuid` in the container; null elsewhere.
    pub control_mode: Option<ControlMode>,
    /// Null outside the container.
    pub services: Option<Services>,
    pub checks: Vec<Check>,
    pub summary: Summary,
}

impl Report {
    /// Whether any check failed (the command then exits 1).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }

    /// One line per check, `fix:` lines under the others, then a summary.
    pub fn write_text(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        for check in &self.checks {
            let verdict = check.verdict.as_str();
            let padded = format!("{verdict:<4}");
            let shown = match (color, check.verdict) {
                (false, _) | (true, Verdict::Ok) => padded,
                (true, Verdict::Warn) => format!("\x1b[33m{padded}\x1b[0m"),
                (true, Verdict::Fail) => format!("\x1b[31m{padded}\x1b[0m"),
            };
            writeln!(out, "{shown}  {}: {}", check.name, check.detail)?;
            if let Some(fix) = &check.fix {
                writeln!(out, "      fix: {fix}")?;
            }
        }
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        writeln!(
            out,
            "doctor: {} ok, {}, {}",
            self.summary.ok,
            plural(self.summary.warn, "warning"),
            plural(self.summary.fail, "failure")
        )
    }
}

/// Runs every check for `config` under `service_manager`.
pub fn examine(config: &Config, service_manager: ServiceManagerKind) -> Report {
    let mut checks = Vec::new();
    let in_container = service_manager == ServiceManagerKind::S6;
    let (control_mode, services) = if in_container {
        checks.push(Check::ok(
            "service_manager",
            "service manager",
            "s6: s6-svscan is PID 1 and /run/s6/basedir exists (the Hermes container)",
        ));
        let marker = read_marker(&config.mode_file);
        let mode = marker.mode();
        checks.push(mode_check(config, &marker));
        checks.extend(helper_checks(config, mode));
        checks.extend(svscan_checks(config, mode));
        if mode == ControlMode::NoSetuid {
            checks.push(grant_check(config));
        }
        let manager = S6Manager::new(config.clone()).with_control_mode(mode);
        let gateways = manager.status_all().unwrap_or_default();
        let services = services(config, &gateways);
        checks.push(services_check(&services));
        checks.extend(gateway_checks(config, mode, &gateways));
        (Some(mode), Some(services))
    } else {
        checks.push(Check::warn(
            "service_manager",
            "service manager",
            format!(
                "{service_manager}: not the Hermes container; gateways cannot be registered at run time and the s6 checks are skipped"
            ),
            "run the gateway in the foreground (`hermes gateway run`), or run doctor inside the Hermes container",
        ));
        (None, None)
    };
    checks.push(home_check(config));
    let mut summary = Summary::default();
    for check in &checks {
        match check.verdict {
            Verdict::Ok => summary.ok += 1,
            Verdict::Warn => summary.warn += 1,
            Verdict::Fail => summary.fail += 1,
        }
    }
    Report {
        schema: DOCTOR_SCHEMA,
        generated_at: iso8601_utc(unix_now()),
        service_manager,
        control_mode,
        services,
        checks,
        summary,
    }
}

// --- control mode and helper --------------------------------------------------

fn mode_check(config: &Config, marker: &Marker) -> Check {
    const ID: &str = "control_mode";
    const NAME: &str = "control mode";
    let file = config.mode_file.display();
    match marker {
        Marker::Recorded(ControlMode::Setuid) => Check::ok(
            ID,
            NAME,
            format!("setuid ({file}): lifecycle commands go through the setuid helper"),
        ),
        Marker::Recorded(ControlMode::NoSetuid) => Check::ok(
            ID,
            NAME,
            format!(
                "no-setuid ({file}): group hermes writes s6 control commands into the gateways' control FIFOs; registering and unregistering wait for the next boot (see SECURITY.md)"
            ),
        ),
        Marker::Absent => Check::ok(
            ID,
            NAME,
            format!("setuid (no record at {file}: the default)"),
        ),
        Marker::Untrusted(why) => Check::warn(
            ID,
            NAME,
            format!("setuid assumed: the boot's record cannot be trusted: {why}"),
            format!(
                "the record must be a root-owned file, writable by root only, holding `setuid` or `no-setuid`; remove {file} as root and restart the container"
            ),
        ),
    }
}

fn helper_checks(config: &Config, mode: ControlMode) -> Vec<Check> {
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

// --- s6-svscan and the scan directory ---------------------------------------

fn svscan_running(proc_dir: &Path) -> Option<u32> {
    let comm = |pid: &str| {
        std::fs::read_to_string(proc_dir.join(pid).join("comm"))
            .is_ok_and(|c| c.trim_end() == "s6-svscan")
    };
    if comm("1") {
        return Some(1);
    }
    std::fs::read_dir(proc_dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| comm(&pid.to_string()))
}

fn svscan_checks(config: &Config, mode: ControlMode) -> Vec<Check> {
    let scan = &config.scan_dir;
    let mut checks = Vec::new();
    let control = scan.join(".s6-svscan/control");
    // `.s6-svscan` is root's 0700: only root sees the FIFO itself.
    let control_ok = match std::fs::symlink_metadata(&control) {
        Ok(meta) => std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
        Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
    };
    checks.push(match (svscan_running(&config.proc_dir), control_ok) {
        (Some(pid), true) => Check::ok(
            "svscan.running",
            "s6-svscan",
            format!("running (pid {pid}) on {}", scan.display()),
        ),
        (pid, _) => Check::fail(
            "svscan.running",
            "s6-svscan",
            match pid {
                Some(pid) => format!(
                    "s6-svscan runs (pid {pid}) but {} is not its control FIFO",
                    control.display()
                ),
                None => "no s6-svscan process: nothing supervises the gateways".to_owned(),
            },
            "this works only inside the Hermes container, whose PID 1 is s6-svscan",
        ),
    });
    let hermes_uid = nix::unistd::User::from_name(&config.hermes_user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let hermes_gid = control_gid(config).ok().map(|g| g.as_raw());
    let mut offenders = Vec::new();
    // Anything not root's, or writable by group or others (a symbolic
    // link's own mode means nothing; its owner does).
    let mut look = |path: &Path, allowed: &dyn Fn(&std::fs::Metadata) -> bool| {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if allowed(&meta) {
            return;
        }
        let writable = !meta.file_type().is_symlink() && meta.mode() & 0o022 != 0;
        if meta.uid() != 0 || Some(meta.uid()) == hermes_uid || writable {
            offenders.push(format!(
                "{} ({}:{} {:o})",
                path.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ));
        }
    };
    let nothing_allowed = |_: &std::fs::Metadata| false;
    look(scan, &nothing_allowed);
    look(&scan.join(".s6-svscan"), &nothing_allowed);
    look(&control, &nothing_allowed);
    // s6's own event/ directories are 3730 root:root: group-writable for
    // root's group only. Any other group would let its members make root
    // write into any file.
    let event_ok =
        |m: &std::fs::Metadata| m.is_dir() && m.uid() == 0 && m.gid() == 0 && m.mode() & 0o002 == 0;
    let granted_ok = |m: &std::fs::Metadata| {
        mode == ControlMode::NoSetuid
            && std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type())
            && m.uid() == 0
            && Some(m.gid()) == hermes_gid
            && m.mode() & 0o7777 == 0o620
    };
    let entries: Vec<PathBuf> = std::fs::read_dir(scan)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for entry in &entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == ".s6-svscan" {
            continue;
        }
        look(entry, &nothing_allowed);
        let is_real_dir = std::fs::symlink_metadata(entry).is_ok_and(|m| m.is_dir());
        if !is_real_dir {
            continue;
        }
        let is_gateway = ProfileName::from_service_name(name).is_some();
        for part in ["", "log"] {
            let dir = entry.join(part);
            if !part.is_empty() {
                look(&dir, &nothing_allowed);
            }
            for file in ["run", "finish", "down", "supervise", "env"] {
                look(&dir.join(file), &nothing_allowed);
            }
            look(&dir.join("event"), &event_ok);
            let granted: &dyn Fn(&std::fs::Metadata) -> bool = if is_gateway && part.is_empty() {
                &granted_ok
            } else {
                &nothing_allowed
            };
            look(&dir.join("supervise/control"), granted);
            for file in ["status", "lock", "death_tally"] {
                look(&dir.join("supervise").join(file), &nothing_allowed);
            }
        }
    }
    checks.push(if offenders.is_empty() {
        Check::ok(
            "scandir.permissions",
            "scan directory",
            format!(
                "{} and its {} service(s) are root's; nothing s6 runs or writes as root is writable by {}",
                scan.display(),
                entries.iter().filter(|e| !e.ends_with(".s6-svscan")).count(),
                config.hermes_user
            ),
        )
    } else {
        let shown: Vec<&str> = offenders.iter().take(5).map(String::as_str).collect();
        let more = offenders.len().saturating_sub(5);
        Check::fail(
            "scandir.permissions",
            "scan directory",
            format!(
                "owned by a user other than root, or writable by group or others (hermes could make s6 run code as root or write files as root): {}{}",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
            "remove whatever changes the owner or mode of the scan directory (e.g. an init script doing `chown -R hermes /run/service`), rebuild the image from docker/Dockerfile and restart the container",
        )
    });
    checks
}

/// No-setuid mode: each gateway's control FIFO is granted to group hermes.
fn grant_check(config: &Config) -> Check {
    const ID: &str = "control.granted";
    const NAME: &str = "control grant";
    let gid = match control_gid(config) {
        Ok(gid) => gid,
        Err(why) => {
            return Check::fail(
                ID,
                NAME,
                why,
                "the image must have a hermes group; rebuild it",
            );
        }
    };
    let manager = S6Manager::new(config.clone());
    let slots = crate::manager::ServiceManager::list_profile_gateways(&manager).unwrap_or_default();
    let mut missing = Vec::new();
    for profile in &slots {
        let fifo = config.slot_dir(profile).join("supervise/control");
        let verdict = match nix::sys::stat::lstat(&fifo) {
            Ok(st) => check_granted_fifo(&st, gid),
            Err(e) => Err(format!("supervise/control: {}", e.desc())),
        };
        if let Err(why) = verdict {
            missing.push(format!("{}: {why}", profile.service_name()));
        }
    }
    if missing.is_empty() {
        Check::ok(
            ID,
            NAME,
            format!(
                "{} gateway slot(s): supervise/control is root:{} 0620 (s6-svperms -G); event/ stays root's",
                slots.len(),
                config.hermes_user
            ),
        )
    } else {
        Check::fail(
            ID,
            NAME,
            format!(
                "group {} cannot control: {}",
                config.hermes_user,
                missing.join("; ")
            ),
            "restart the container: the boot grants control of every gateway slot it registers (slots registered later by root are not granted)",
        )
    }
}

// --- services and gateways -------------------------------------------------

fn service_state(slot: &Path) -> ServiceState {
    if std::fs::metadata(slot).is_err() {
        return ServiceState::Absent;
    }
    match supervise::supervisor_running(slot) {
        Ok(false) => ServiceState::Unsupervised,
        Err(_) => ServiceState::Unreadable,
        Ok(true) => match supervise::read_status(slot) {
            Ok(status) if status.is_up() => ServiceState::Up,
            Ok(_) => ServiceState::Down,
            Err(_) => ServiceState::Unreadable,
        },
    }
}

fn services(config: &Config, gateways: &[GatewayStatus]) -> Services {
    Services {
        main_hermes: service_state(&config.scan_dir.join(IMAGE_SERVICES[0])),
        dashboard: service_state(&config.scan_dir.join(IMAGE_SERVICES[1])),
        gateways: gateways.len(),
        gateways_up: gateways
            .iter()
            .filter(|g| g.state == GatewayState::Up)
            .count(),
    }
}

fn services_check(services: &Services) -> Check {
    let describe = |state: ServiceState| match state {
        ServiceState::Absent => "absent",
        ServiceState::Up => "up",
        ServiceState::Down => "down",
        ServiceState::Unsupervised => "not supervised",
        ServiceState::Unreadable => "present (status readable by root only)",
    };
    Check::ok(
        "services",
        "services",
        format!(
            "main-hermes {}, dashboard {}, {} profile gateway(s) ({} up)",
            describe(services.main_hermes),
            describe(services.dashboard),
            services.gateways,
            services.gateways_up
        ),
    )
}

/// Whether the gateway is meant to run: its recorded intent, or, without
/// one, what s6 wants.
fn wanted_up(g: &GatewayStatus) -> bool {
    match g.desired_state.as_deref() {
        Some(desired) => desired == "running",
        None => g.process.as_ref().is_some_and(|p| p.want_up),
    }
}

fn gateway_checks(config: &Config, mode: ControlMode, gateways: &[GatewayStatus]) -> Vec<Check> {
    let mut checks = Vec::new();
    let start = |p: &ProfileName| format!("hermes-s6 gateway start -p {p}");
    let log = |g: &GatewayStatus| g.log.display().to_string();

    // Crash loops.
    let looping: Vec<&GatewayStatus> = gateways.iter().filter(|g| g.crash_loop.is_some()).collect();
    if looping.is_empty() {
        checks.push(Check::ok("gateway.crash_loop", "crash loops", "none"));
    }
    for g in &looping {
        let record = g
            .crash_loop
            .as_ref()
            .map(|c| c.record.as_str())
            .unwrap_or("");
        let after = match mode {
            ControlMode::Setuid => "",
            ControlMode::NoSetuid => {
                " (in no-setuid mode the record stays until the gateway runs again; it fails after a single fast failure within the next minute)"
            }
        };
        checks.push(
            Check::fail(
                "gateway.crash_loop",
                format!("gateway {}", g.profile),
                format!("crash-looping, s6 keeps it down: {record}"),
                format!(
                    "read its log ({}), fix the cause, then `{}`{after}",
                    log(g),
                    start(&g.profile)
                ),
            )
            .about(&g.profile),
        );
    }

    // Intent against state.
    let mut intent_problems = 0;
    for g in gateways
        .iter()
        .filter(|g| g.crash_loop.is_none() && wanted_up(g))
    {
        let want_up = g.process.as_ref().is_some_and(|p| p.want_up);
        let last_exit = g
            .process
            .as_ref()
            .and_then(|p| p.last_exit.as_ref())
            .map(|e| match (e.exit_code, e.signal_name) {
                (Some(code), _) => format!(", last exit {code}"),
                (None, Some(name)) => format!(", killed by {name}"),
                _ => String::new(),
            })
            .unwrap_or_default();
        let check = match g.state {
            GatewayState::Up => continue,
            GatewayState::Unsupervised => Check::fail(
                "gateway.down",
                format!("gateway {}", g.profile),
                "meant to run, but no s6-supervise runs on its slot",
                match mode {
                    ControlMode::Setuid => format!("`{}` (a start has s6-svscan rescan)", start(&g.profile)),
                    ControlMode::NoSetuid => "restart the container (in no-setuid mode only root can have s6-svscan rescan)".to_owned(),
                },
            ),
            GatewayState::Down | GatewayState::Finishing if want_up => Check::warn(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!(
                    "meant to run and down, s6 is restarting it ({} restart(s) recorded{last_exit})",
                    g.restarts.unwrap_or(0)
                ),
                format!("if it keeps going down, read its log ({})", log(g)),
            ),
            GatewayState::Down | GatewayState::Finishing => Check::fail(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!("meant to run (intent running), but down and not wanted up by s6{last_exit}"),
                format!("`{}`; if it stops again, read its log ({})", start(&g.profile), log(g)),
            ),
            GatewayState::Unregistered | GatewayState::Unknown => Check::warn(
                "gateway.down",
                format!("gateway {}", g.profile),
                format!("state unknown: {}", g.problems.join("; ")),
                "run doctor as the hermes user or as root",
            ),
        };
        intent_problems += 1;
        checks.push(check.about(&g.profile));
    }
    if intent_problems == 0 {
        checks.push(Check::ok(
            "gateway.down",
            "intents",
            "every gateway meant to run is up",
        ));
    }

    // Slots and profiles on the volume.
    let on_volume = profiles_on_volume(config);
    let slots: Vec<&ProfileName> = gateways.iter().map(|g| &g.profile).collect();
    let orphans: Vec<&ProfileName> = slots
        .iter()
        .copied()
        .filter(|p| !config.profile_exists(p))
        .collect();
    if orphans.is_empty() {
        checks.push(Check::ok(
            "gateway.orphan_slot",
            "slots without profile",
            "none",
        ));
    }
    for p in orphans {
        checks.push(
            Check::warn(
                "gateway.orphan_slot",
                format!("gateway {p}"),
                format!(
                    "slot {} has no profile on the volume ({})",
                    p.service_name(),
                    if p.is_default() {
                        config.hermes_home.display().to_string()
                    } else {
                        format!("no {}/SOUL.md", config.profile_home(p).display())
                    }
                ),
                match mode {
                    ControlMode::Setuid => format!("`hermes-s6 profile unregister {p}`, or create the profile again"),
                    ControlMode::NoSetuid => "the next container boot does not register it again; or create the profile again".to_owned(),
                },
            )
            .about(p),
        );
    }
    let homeless: Vec<&ProfileName> = on_volume.iter().filter(|p| !slots.contains(p)).collect();
    if homeless.is_empty() {
        checks.push(Check::ok(
            "profile.no_slot",
            "profiles without slot",
            "none",
        ));
    }
    for p in homeless {
        checks.push(
            Check::warn(
                "profile.no_slot",
                format!("profile {p}"),
                format!("has no gateway slot ({})", p.service_name()),
                match mode {
                    ControlMode::Setuid => format!(
                        "`{}` registers and starts it (`hermes-s6 profile register {p} --down` keeps it stopped)",
                        start(p)
                    ),
                    ControlMode::NoSetuid => "the next container boot registers it".to_owned(),
                },
            )
            .about(p),
        );
    }

    // Boot history.
    let history = boot_history(&config.hermes_home);
    let mut failing = Vec::new();
    for (name, states) in &history {
        if states.len() >= FAILED_BOOTS
            && states[states.len() - FAILED_BOOTS..]
                .iter()
                .all(|s| s == "startup_failed")
        {
            failing.push(name.clone());
        }
    }
    if failing.is_empty() {
        checks.push(Check::ok(
            "profile.startup_failed",
            "boot history",
            format!("no profile ended its last {FAILED_BOOTS} container runs in startup_failed"),
        ));
    }
    for name in failing {
        let Ok(profile) = ProfileName::new(&name) else {
            continue;
        };
        let up = gateways
            .iter()
            .any(|g| g.profile == profile && g.state == GatewayState::Up);
        let detail = format!(
            "its gateway ended in startup_failed in each of the last {FAILED_BOOTS} container runs{}",
            if up { " (it runs now)" } else { "" }
        );
        let fix = format!(
            "read its log ({}), fix its configuration, then `{}`",
            config.log_file(&profile).display(),
            start(&profile)
        );
        let check = if up {
            Check::warn(
                "profile.startup_failed",
                format!("profile {profile}"),
                detail,
                fix,
            )
        } else {
            Check::fail(
                "profile.startup_failed",
                format!("profile {profile}"),
                detail,
                fix,
            )
        };
        checks.push(check.about(&profile));
    }
    checks
}

/// Real profiles on the volume: `default`, then every `profiles/<p>` with
/// a `SOUL.md` and a valid name.
fn profiles_on_volume(config: &Config) -> Vec<ProfileName> {
    let survey = Survey::take(config);
    let mut profiles = Vec::new();
    if survey.root.is_ok() {
        profiles.push(ProfileName::default_profile());
    }
    if let ProfilesDir::Entries(entries) = &survey.profiles_dir {
        for entry in entries {
            let EntryFacts::Dir { has_seed: true, .. } = entry.facts else {
                continue;
            };
            if let Some(profile) = entry
                .name
                .to_str()
                .filter(|n| *n != "default")
                .and_then(|n| ProfileName::new(n).ok())
            {
                profiles.push(profile);
            }
        }
    }
    profiles
}

/// `prior_state` of every boot log line, per profile, oldest first (the
/// rotated log, then the current one).
pub fn boot_history(home: &Path) -> BTreeMap<String, Vec<String>> {
    let logs = home.join(LOGS_DIR);
    let mut history: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in [BOOT_LOG_ROTATED, BOOT_LOG] {
        let Some(text) = read_small(&logs.join(name)) else {
            continue;
        };
        for (profile, prior) in text.lines().filter_map(parse_boot_line) {
            history.entry(profile).or_default().push(prior);
        }
    }
    history
}

/// `profile` and `prior_state` of one boot log line.
pub fn parse_boot_line(line: &str) -> Option<(String, String)> {
    let mut profile = None;
    let mut prior = None;
    for field in line.split_whitespace().skip(1) {
        if let Some(value) = field.strip_prefix("profile=") {
            profile = Some(value.to_owned());
        } else if let Some(value) = field.strip_prefix("prior_state=") {
            prior = Some(value.to_owned());
        }
    }
    Some((profile?, prior?))
}

/// A regular file of the volume, read without following a link, at most
/// 1 MiB.
fn read_small(path: &Path) -> Option<String> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

// --- the volume ---------------------------------------------------------------

fn home_check(config: &Config) -> Check {
    let home = &config.hermes_home;
    if !home.is_dir() {
        return Check::fail(
            "hermes_home",
            "HERMES_HOME",
            format!("{} is not a directory", home.display()),
            "mount the data volume there, or set HERMES_HOME to it",
        );
    }
    let gateways_logs = home.join("logs/gateways");
    match std::fs::symlink_metadata(&gateways_logs) {
        Ok(meta) if meta.is_dir() => Check::ok(
            "hermes_home",
            "HERMES_HOME",
            format!(
                "{} (gateway logs in {})",
                home.display(),
                gateways_logs.display()
            ),
        ),
        _ => Check::warn(
            "hermes_home",
            "HERMES_HOME",
            format!(
                "{} is not a directory: gateways' loggers cannot start",
                gateways_logs.display()
            ),
            "restart the container (its first init step creates logs/gateways as hermes), or create it as hermes",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boot_log_lines() {
        assert_eq!(
            parse_boot_line(
                "2026-11-28T10:30:00Z profile=work prior_state=startup_failed action=registered prior_exit=unknown"
            ),
            Some(("work".into(), "startup_failed".into()))
        );
        assert_eq!(parse_boot_line("garbage"), None);
        assert_eq!(parse_boot_line(""), None);
    }

    #[test]
    fn boot_history_reads_the_rotated_log_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let line = |p: &str, s: &str| {
            format!(
                "2026-11-28T10:30:00Z profile={p} prior_state={s} action=registered prior_exit=unknown\n"
            )
        };
        std::fs::write(
            dir.path().join("logs/container-boot.log.1"),
            line("a", "running") + &line("a", "startup_failed"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("logs/container-boot.log"),
            line("a", "startup_failed") + &line("b", "None") + &line("a", "startup_failed"),
        )
        .unwrap();
        let history = boot_history(dir.path());
        assert_eq!(
            history["a"],
            [
                "running",
                "startup_failed",
                "startup_failed",
                "startup_failed"
            ]
        );
        assert_eq!(history["b"], ["None"]);
    }

    #[test]
    fn outside_the_container_only_the_volume_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = dir.path().to_path_buf();
        let report = examine(&config, ServiceManagerKind::None);
        assert_eq!(report.checks[0].verdict, Verdict::Warn);
        assert!(report.checks[0].fix.is_some());
        assert_eq!(report.control_mode, None);
        assert!(report.services.is_none());
        // logs/gateways missing: a warning, not a failure.
        assert!(!report.failed());
        let mut text = Vec::new();
        report.write_text(&mut text, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("warn  service manager: none"), "{text}");
        assert!(text.contains("      fix: "), "{text}");
        assert!(
            text.ends_with("doctor: 0 ok, 2 warnings, 0 failures\n"),
            "{text}"
        );
        config.hermes_home = dir.path().join("absent");
        assert!(examine(&config, ServiceManagerKind::None).failed());
    }

    #[test]
    fn every_problem_says_what_to_do() {
        let checks = [
            Check::fail("a", "a", "x", "do y"),
            Check::warn("b", "b", "x", "do z"),
        ];
        assert!(checks.iter().all(|c| c.fix.is_some()));
        let json = serde_json::to_value(&checks[0]).unwrap();
        assert_eq!(json["verdict"], "fail");
        assert_eq!(json["fix"], "do y");
        assert!(json["profile"].is_null());
    }
}
