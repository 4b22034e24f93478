//! The doctor document: one [`Check`] per line, the services found, and
//! the summary (schema `hermes-s6.doctor/1`).

use serde::Serialize;

use crate::profile::ProfileName;
use crate::vocabulary::ControlMode;
use crate::vocabulary::ServiceManagerKind;

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
    pub(crate) fn ok(id: &'static str, name: impl Into<String>, detail: impl Into<String>) -> Self {
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

    pub(crate) fn fail(
        id: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::problem(Verdict::Fail, id, name, detail, fix)
    }

    pub(crate) fn warn(
        id: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::problem(Verdict::Warn, id, name, detail, fix)
    }

    pub(crate) fn about(mut self, profile: &ProfileName) -> Self {
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
pub struct DoctorReport {
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

impl DoctorReport {
    /// Whether any check failed (the command then exits 1).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
