//! `hermes-s6 doctor [--json]`: the checks of [`crate::doctor`], printed.
//! Exit 1 when any check failed, 0 otherwise.

use std::io::{self, Write};

use crate::cli::Context;
use crate::doctor::{DoctorReport, Verdict, examine};
use crate::error::Error;

pub(super) fn run(context: &Context, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let report = examine(&context.config, context.service_manager);
    if json {
        let _ = serde_json::to_writer_pretty(&mut *out, &report);
        let _ = writeln!(out);
    } else {
        let _ = write_text(&report, out, context.style.color);
    }
    Ok(u8::from(report.failed()))
}

/// One line per check, `fix:` lines under the others, then a summary.
fn write_text(report: &DoctorReport, out: &mut dyn Write, color: bool) -> io::Result<()> {
    for check in &report.checks {
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
        report.summary.ok,
        plural(report.summary.warn, "warning"),
        plural(report.summary.fail, "failure")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::vocabulary::ServiceManagerKind;

    #[test]
    fn outside_the_container_only_the_volume_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = dir.path().to_path_buf();
        let report = examine(&config, ServiceManagerKind::Unmanaged);
        assert_eq!(report.checks[0].verdict, Verdict::Warn);
        assert!(report.checks[0].fix.is_some());
        assert_eq!(report.control_mode, None);
        assert!(report.services.is_none());
        // logs/gateways missing: a warning, not a failure.
        assert!(!report.failed());
        let mut text = Vec::new();
        write_text(&report, &mut text, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("warn  service manager: none"), "{text}");
        assert!(text.contains("      fix: "), "{text}");
        assert!(
            text.ends_with("doctor: 0 ok, 2 warnings, 0 failures\n"),
            "{text}"
        );
        config.hermes_home = dir.path().join("absent");
        assert!(examine(&config, ServiceManagerKind::Unmanaged).failed());
    }
}
