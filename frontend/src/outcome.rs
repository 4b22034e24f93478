//! The result of a lifecycle operation for each profile it named: what
//! `start`, `stop`, `restart` (and the helper's batched calls under them)
//! return, how partial results are combined, and the
//! `hermes-s6.control/1` document that reports them.

use serde::Serialize;

use crate::error::{Error, exit};
use crate::profile::{ProfileName, dedup};

/// One profile's result.
pub type ProfileOutcome = (ProfileName, Result<(), Error>);

/// The outcome of one operation for each profile it named, in order.
pub type ProfileOutcomes = Vec<ProfileOutcome>;

/// Combines the control result with the intent result of each profile: the
/// control error wins, an intent error shows when control succeeded.
pub fn merge(control: ProfileOutcomes, intent: ProfileOutcomes) -> ProfileOutcomes {
    let mut intent = intent;
    control
        .into_iter()
        .map(|(profile, result)| {
            let recorded = intent
                .iter()
                .position(|(p, _)| *p == profile)
                .map(|i| intent.swap_remove(i).1)
                .unwrap_or(Ok(()));
            (profile, result.and(recorded))
        })
        .collect()
}

/// Orders outcomes as the caller listed the profiles (first occurrence).
pub fn in_order(requested: &[ProfileName], mut outcomes: ProfileOutcomes) -> ProfileOutcomes {
    let order = dedup(requested);
    outcomes.sort_by_key(|(p, _)| order.iter().position(|q| q == p).unwrap_or(usize::MAX));
    outcomes
}

/// Schema of [`ControlReport`].
pub const CONTROL_SCHEMA: &str = "hermes-s6.control/1";

/// What a control command did, one result per profile
/// (`hermes-s6.control/1`, see `SCHEMA.md`). `exit_code` is the first
/// failure's code, the command's exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlReport {
    pub schema: &'static str,
    /// `start`, `stop`, `restart`, `register` or `unregister`.
    pub action: &'static str,
    pub results: Vec<ControlResult>,
    pub exit_code: u8,
}

/// One profile's line of a [`ControlReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlResult {
    pub profile: ProfileName,
    pub service: String,
    /// `done` or `failed`.
    pub outcome: &'static str,
    /// 0 when done, else the failure's exit code.
    pub exit_code: u8,
    /// What was done (`started`, …), or the error, one sentence.
    pub message: String,
}

impl ControlResult {
    pub fn done(profile: &ProfileName, message: &str) -> Self {
        Self {
            profile: profile.clone(),
            service: profile.service_name(),
            outcome: "done",
            exit_code: exit::OK,
            message: message.to_owned(),
        }
    }

    pub fn failed(profile: &ProfileName, error: &Error) -> Self {
        Self {
            profile: profile.clone(),
            service: profile.service_name(),
            outcome: "failed",
            exit_code: error.exit_code(),
            message: error.to_string(),
        }
    }

    pub fn of(profile: &ProfileName, result: &Result<(), Error>, done: &str) -> Self {
        match result {
            Ok(()) => Self::done(profile, done),
            Err(e) => Self::failed(profile, e),
        }
    }
}

impl ControlReport {
    /// The report of `results`; the exit code is the first failure's.
    pub fn new(action: &'static str, results: Vec<ControlResult>) -> Self {
        let exit_code = results
            .iter()
            .map(|r| r.exit_code)
            .find(|&code| code != exit::OK)
            .unwrap_or(exit::OK);
        Self {
            schema: CONTROL_SCHEMA,
            action,
            results,
            exit_code,
        }
    }

    /// Each profile's outcome; `done` names what success means.
    pub fn of_outcomes(action: &'static str, outcomes: &ProfileOutcomes, done: &str) -> Self {
        Self::new(
            action,
            outcomes
                .iter()
                .map(|(profile, result)| ControlResult::of(profile, result, done))
                .collect(),
        )
    }

    /// An operation that failed as a whole: every profile it named failed
    /// with `error` (no profile at all when they were not known yet).
    pub fn failed(action: &'static str, profiles: &[ProfileName], error: &Error) -> Self {
        let mut report = Self::new(
            action,
            dedup(profiles)
                .iter()
                .map(|profile| ControlResult::failed(profile, error))
                .collect(),
        );
        report.exit_code = error.exit_code();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_report_exits_with_the_first_failure() {
        let outcomes = vec![
            (p("a"), Ok(())),
            (p("b"), Err(Error::GatewayNotRegistered { profile: p("b") })),
            (p("c"), Err(Error::AlreadyRegistered { profile: p("c") })),
        ];
        let report = ControlReport::of_outcomes("start", &outcomes, "started");
        assert_eq!(report.exit_code, 66);
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["schema"], "hermes-s6.control/1");
        assert_eq!(doc["action"], "start");
        assert_eq!(
            doc["results"][0],
            serde_json::json!({"profile": "a", "service": "gateway-a", "outcome": "done", "exit_code": 0, "message": "started"})
        );
        assert_eq!(doc["results"][1]["outcome"], "failed");
        assert_eq!(doc["results"][1]["exit_code"], 66);
        assert_eq!(doc["results"][2]["exit_code"], 73);
        assert_eq!(
            ControlReport::of_outcomes("stop", &Vec::new(), "stopped").exit_code,
            0
        );
        let whole = ControlReport::failed(
            "restart",
            &[p("a"), p("a")],
            &Error::NotImplemented { what: "x" },
        );
        assert_eq!(whole.results.len(), 1);
        assert_ne!(whole.exit_code, 0);
        assert_eq!(whole.results[0].exit_code, whole.exit_code);
        let none = ControlReport::failed("start", &[], &Error::NotImplemented { what: "x" });
        assert!(none.results.is_empty() && none.exit_code != 0);
    }

    fn p(name: &str) -> ProfileName {
        ProfileName::new(name).unwrap()
    }

    #[test]
    fn merge_prefers_the_control_error() {
        let control = vec![
            (p("a"), Ok(())),
            (p("b"), Err(Error::NotImplemented { what: "x" })),
            (p("c"), Ok(())),
        ];
        let intent = vec![
            (p("c"), Err(Error::NotImplemented { what: "intent" })),
            (p("b"), Err(Error::NotImplemented { what: "intent" })),
            (p("a"), Ok(())),
        ];
        let merged = merge(control, intent);
        assert!(merged[0].1.is_ok());
        assert!(matches!(
            merged[1].1,
            Err(Error::NotImplemented { what: "x" })
        ));
        assert!(matches!(
            merged[2].1,
            Err(Error::NotImplemented { what: "intent" })
        ));
    }

    #[test]
    fn in_order_follows_the_request() {
        let outcomes = vec![(p("c"), Ok(())), (p("a"), Ok(())), (p("b"), Ok(()))];
        let ordered = in_order(&[p("b"), p("c"), p("b"), p("a")], outcomes);
        let names: Vec<&str> = ordered.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
    }
}
