//! `hermes-s6 doctor`: whether gateways can be supervised and controlled
//! from here, and what to change when they cannot.
//!
//! Every check ends `ok`, `warn` or `fail`; a `warn` or `fail` says what to
//! do. Checks that look at gateways produce one `ok` line when nothing is
//! wrong, and one line per gateway otherwise. The report is the
//! `hermes-s6.doctor/1` document (`SCHEMA.md`); [`DoctorReport::failed`]
//! decides the exit status; `cli` prints it.
//!
//! Checked, in order: the service manager; the transport to the helper
//! this process uses, and why (`control_mode`: setuid, the socket of
//! `hermes-s6-helperd`, root, or none, naming what to change); the helper
//! (installed, owner, group, mode, and whether it really runs as root for
//! this user over that transport: `--version`, whose exit 77 is explained as
//! `no_new_privs`, a `nosuid` mount, a missing setuid bit or a caller
//! outside group hermes); the socket (`helper.socket`); s6-svscan, the
//! capabilities gateways depend on that it lacks, and its scan directory (root's, nothing in it writable by hermes or owned by it,
//! `event/` directories root's); the services present (`main-hermes`, `dashboard`, gateways) and how many are
//! up; per gateway: crash loops, an intent of running while down, slots
//! without a profile and profiles without a slot, profiles whose last
//! [`FAILED_BOOTS`] container runs all ended in `startup_failed` (from the
//! boot log); where the image's entry point was not PID 1 (s6-overlay did
//! not start), that record (`pid1`); and `$HERMES_HOME`.

//!
//! The checks live by what they look at: `helper` (the transport and the
//! helper), `scandir` (s6-svscan, the scan directory, the services), `gateways` (each gateway against its intent and the
//! volume) and `volume` (`$HERMES_HOME` and the boot history).

mod gateways;
mod helper;
mod pid1;
mod report;
mod scandir;
mod volume;

use std::path::Path;

use crate::config::Config;
use crate::manager::ServiceManager;
use crate::manager::s6::S6Manager;
use crate::time::{iso8601_utc, unix_now};
use crate::vocabulary::{ControlMode, ServiceManagerKind};

pub use self::report::{Check, DoctorReport, ServiceState, Services, Summary, Verdict};

/// Identifier of the doctor document's schema.
pub const DOCTOR_SCHEMA: &str = "hermes-s6.doctor/1";

/// A profile whose last this many container runs all ended in
/// `startup_failed` is reported.
pub const FAILED_BOOTS: usize = 3;

/// Services of the image that live in the scan directory next to the
/// gateways.
pub const IMAGE_SERVICES: [&str; 2] = ["main-hermes", "dashboard"];

/// Runs every check for `config` under `service_manager`.
pub fn examine(config: &Config, service_manager: ServiceManagerKind) -> DoctorReport {
    let mut checks = Vec::new();
    let in_container = service_manager == ServiceManagerKind::S6;
    let (control_mode, services) = if in_container {
        checks.push(Check::ok(
            "service_manager",
            "service manager",
            "s6: s6-svscan is PID 1 and /run/s6/basedir exists (the Hermes container)",
        ));
        let manager = S6Manager::new(config.clone());
        let mode = manager.control_mode();
        checks.push(helper::mode_check(mode, manager.control_reason()));
        checks.extend(helper::helper_checks(config, mode));
        checks.push(helper::socket_check(config, mode));
        // In a non-root container s6 runs as this very user: supervision
        // is its own (and capabilities_check finds nothing to ask of it).
        let owner = match mode {
            ControlMode::Owner => nix::unistd::geteuid().as_raw(),
            _ => 0,
        };
        checks.extend(scandir::svscan_checks(config, owner));
        checks.extend(scandir::capabilities_check(config));
        let gateways = manager.status_all(config).unwrap_or_default();
        let services = scandir::services(config, &gateways);
        checks.push(scandir::services_check(&services));
        checks.extend(gateways::gateway_checks(config, &gateways));
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
    checks.extend(pid1::not_pid1_check(Path::new(pid1::NOT_PID1_RECORD)));
    checks.push(volume::home_check(config));
    let mut summary = Summary::default();
    for check in &checks {
        match check.verdict {
            Verdict::Ok => summary.ok += 1,
            Verdict::Warn => summary.warn += 1,
            Verdict::Fail => summary.fail += 1,
        }
    }
    DoctorReport {
        schema: DOCTOR_SCHEMA,
        generated_at: iso8601_utc(unix_now()),
        service_manager,
        control_mode,
        services,
        checks,
        summary,
    }
}
