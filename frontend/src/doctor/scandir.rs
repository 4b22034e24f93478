//! s6-svscan and its scan directory (root's, nothing in it writable by
//! hermes or owned by it, `event/` directories root's; in a non-root
//! container, the user's s6 runs as), and the services present.

use crate::s6::installation::count_services;
use crate::s6::limit::ServiceLimit;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Check, IMAGE_SERVICES, ServiceState, Services};
use crate::config::Config;
use crate::s6::supervise;
use crate::status::{GatewayStatus, SlotState};

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

/// A `fail` naming each capability gateways depend on that s6-svscan
/// (PID 1) lacks, so the container lacks it (see
/// [`crate::s6::capabilities`]); nothing when none is missing or PID 1 is
/// not s6-svscan.
pub(super) fn capabilities_check(config: &Config) -> Option<Check> {
    use crate::s6::capabilities;
    let effective = capabilities::svscan_effective(&config.proc_dir)?;
    let missing = capabilities::missing(effective, &capabilities::NEEDED);
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|cap| cap.name).collect();
    let why: Vec<String> = missing
        .iter()
        .map(|cap| format!("CAP_{}: {}", cap.name, cap.needed_for))
        .collect();
    Some(Check::fail(
        "svscan.capabilities",
        "capabilities",
        format!("s6-svscan (PID 1) lacks {}", why.join("; ")),
        format!(
            "add {} to the container's capabilities (docker run --cap-add; Kubernetes securityContext.capabilities.add) and restart it",
            names.join(", ")
        ),
    ))
}

/// `owner`: who must own supervision, root but in a non-root container.
pub(super) fn svscan_checks(config: &Config, owner: u32) -> Vec<Check> {
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
        let hermes_owned = owner == 0 && Some(meta.uid()) == hermes_uid;
        if meta.uid() != owner || hermes_owned || writable {
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
    // write into any file. (In a non-root container, they have the owner's
    // group, and root writes nothing.)
    let event_ok = |m: &std::fs::Metadata| {
        m.is_dir() && m.uid() == owner && (owner != 0 || m.gid() == 0) && m.mode() & 0o002 == 0
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
        for part in ["", "log"] {
            let dir = entry.join(part);
            if !part.is_empty() {
                look(&dir, &nothing_allowed);
            }
            for file in ["run", "finish", "down", "supervise", "env"] {
                look(&dir.join(file), &nothing_allowed);
            }
            look(&dir.join("event"), &event_ok);
            look(&dir.join("supervise/control"), &nothing_allowed);
            for file in ["status", "lock", "death_tally"] {
                look(&dir.join("supervise").join(file), &nothing_allowed);
            }
        }
    }
    checks.push(limit_check(scan, ServiceLimit::of_pid1()));
    let services = entries
        .iter()
        .filter(|e| !e.ends_with(".s6-svscan"))
        .count();
    checks.push(if offenders.is_empty() && owner != 0 {
        Check::ok(
            "scandir.permissions",
            "scan directory",
            format!(
                "{} and its {services} service(s) are uid {owner}'s, the user s6 runs as (a non-root container: no privilege boundary to keep, see SECURITY.md)",
                scan.display(),
            ),
        )
    } else if offenders.is_empty() {
        Check::ok(
            "scandir.permissions",
            "scan directory",
            format!(
                "{} and its {services} service(s) are root's; nothing s6 runs or writes as root is writable by {}",
                scan.display(),
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

/// Services in use of s6-svscan's limit: past it s6 2.15 aborts whole scans
/// (the helper refuses to register past it); near it, a few more profiles
/// are all that fit.
fn limit_check(scan: &Path, limit: ServiceLimit) -> Check {
    let Some(used) = count_services(scan, limit.counts_loggers) else {
        return Check::warn(
            "scandir.limit",
            "service limit",
            format!("{} cannot be counted", scan.display()),
            "check that the scan directory is readable by hermes",
        );
    };
    let slots = limit.max.saturating_sub(used) / limit.slot_cost();
    let detail = format!(
        "{used} of {} services in use ({}): room for {slots} more gateway slot(s)",
        limit.max,
        limit.source.as_str()
    );
    let fix = "unregister the gateways of profiles no longer used (hermes-s6 profile unregister <profile>); each slot is a service and its logger";
    if used > limit.max {
        Check::fail(
            "scandir.limit",
            "service limit",
            format!("{detail}: over the limit, s6-svscan aborts its scans"),
            fix,
        )
    } else if used * 10 >= limit.max * 9 {
        Check::warn(
            "scandir.limit",
            "service limit",
            format!("{detail}: near the limit"),
            fix,
        )
    } else {
        Check::ok("scandir.limit", "service limit", detail)
    }
}

fn service_state(slot: &Path) -> ServiceState {
    if std::fs::metadata(slot).is_err() {
        return ServiceState::Absent;
    }
    match supervise::supervised_status(slot) {
        Ok(None) => ServiceState::Unsupervised,
        Ok(Some(status)) if status.is_up() => ServiceState::Up,
        Ok(Some(_)) => ServiceState::Down,
        Err(_) => ServiceState::Unreadable,
    }
}

pub(super) fn services(config: &Config, gateways: &[GatewayStatus]) -> Services {
    Services {
        main_hermes: service_state(&config.scan_dir.join(IMAGE_SERVICES[0])),
        dashboard: service_state(&config.scan_dir.join(IMAGE_SERVICES[1])),
        gateways: gateways.len(),
        gateways_up: gateways.iter().filter(|g| g.state == SlotState::Up).count(),
    }
}

pub(super) fn services_check(services: &Services) -> Check {
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
