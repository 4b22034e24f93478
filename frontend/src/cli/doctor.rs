//! `hermes-s6 doctor`: a first set of checks that explain why gateways
//! cannot be controlled here. Exit 0 when nothing failed, 1 otherwise.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::cli::Context;
use crate::error::{Error, PrivilegeBlock};
use crate::helper::{no_new_privs_in, nosuid_mount_of};
use crate::manager::ServiceManagerKind;
use crate::profile::ProfileName;

/// Identifier of the doctor document's schema.
pub const DOCTOR_SCHEMA: &str = "hermes-s6.doctor/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    schema: &'static str,
    service_manager: ServiceManagerKind,
    checks: Vec<Check>,
}

pub(super) fn run(context: &Context, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let checks = checks(context);
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    if json {
        let report = DoctorReport {
            schema: DOCTOR_SCHEMA,
            service_manager: context.service_manager,
            checks,
        };
        let _ = serde_json::to_writer_pretty(&mut *out, &report);
        let _ = writeln!(out);
    } else {
        for check in &checks {
            let verdict = match check.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
            };
            let _ = writeln!(out, "{verdict}  {}: {}", check.name, check.detail);
        }
    }
    Ok(u8::from(failed))
}

fn checks(context: &Context) -> Vec<Check> {
    let in_container = context.service_manager == ServiceManagerKind::S6;
    // Outside the container the s6 pieces are expected to be missing.
    let missing = if in_container {
        Verdict::Fail
    } else {
        Verdict::Warn
    };
    let config = &context.config;
    let mut checks = vec![Check {
        name: "service manager",
        verdict: if in_container {
            Verdict::Ok
        } else {
            Verdict::Warn
        },
        detail: if in_container {
            "s6 (Hermes container)".to_owned()
        } else {
            format!(
                "{}: not the Hermes container; gateways cannot be registered at run time",
                context.service_manager
            )
        },
    }];
    checks.push(helper_check(&config.helper, missing));
    checks.push(privilege_check(&config.helper, missing));
    checks.push(match std::fs::read_dir(&config.scan_dir) {
        Ok(entries) => {
            let slots = entries
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(ProfileName::from_service_name)
                        .is_some()
                })
                .count();
            Check {
                name: "scan directory",
                verdict: Verdict::Ok,
                detail: format!("{}: {slots} gateway slot(s)", config.scan_dir.display()),
            }
        }
        Err(e) => Check {
            name: "scan directory",
            verdict: missing,
            detail: format!("cannot read {}: {e}", config.scan_dir.display()),
        },
    });
    checks.push(if config.hermes_home.is_dir() {
        Check {
            name: "HERMES_HOME",
            verdict: Verdict::Ok,
            detail: config.hermes_home.display().to_string(),
        }
    } else {
        Check {
            name: "HERMES_HOME",
            verdict: Verdict::Fail,
            detail: format!("{} is not a directory", config.hermes_home.display()),
        }
    });
    checks
}

fn helper_check(helper: &Path, missing: Verdict) -> Check {
    const NAME: &str = "helper";
    match std::fs::metadata(helper) {
        Err(e) => Check {
            name: NAME,
            verdict: missing,
            detail: format!("{}: {e}", helper.display()),
        },
        Ok(meta) if meta.uid() != 0 || meta.mode() & 0o4000 == 0 => Check {
            name: NAME,
            verdict: Verdict::Fail,
            detail: PrivilegeBlock::NotSetuid {
                path: helper.to_path_buf(),
            }
            .to_string(),
        },
        Ok(meta) => Check {
            name: NAME,
            verdict: Verdict::Ok,
            detail: format!(
                "{}: setuid root, group {}, mode {:o}",
                helper.display(),
                meta.gid(),
                meta.mode() & 0o7777
            ),
        },
    }
}

fn privilege_check(helper: &Path, missing: Verdict) -> Check {
    const NAME: &str = "privilege escalation";
    let no_new_privs = std::fs::read_to_string("/proc/self/status")
        .map(|status| no_new_privs_in(&status))
        .unwrap_or(false);
    if no_new_privs {
        return Check {
            name: NAME,
            verdict: missing,
            detail: PrivilegeBlock::NoNewPrivs.to_string(),
        };
    }
    let resolved = std::fs::canonicalize(helper).unwrap_or_else(|_| helper.to_path_buf());
    let nosuid = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|mountinfo| nosuid_mount_of(&resolved, &mountinfo));
    match nosuid {
        Some(mount_point) => Check {
            name: NAME,
            verdict: missing,
            detail: PrivilegeBlock::NosuidMount {
                path: helper.to_path_buf(),
                mount_point,
            }
            .to_string(),
        },
        None => Check {
            name: NAME,
            verdict: Verdict::Ok,
            detail: "setuid is honoured (no no_new_privs, no nosuid mount)".to_owned(),
        },
    }
}
