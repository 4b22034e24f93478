//! The result of a lifecycle operation for each profile it named: what
//! `start`, `stop`, `restart` (and the helper's batched calls under them)
//! return, and how partial results are combined.

use crate::error::Error;
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

#[cfg(test)]
mod tests {
    use super::*;

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
