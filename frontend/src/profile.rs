//! Profile names and the one service name each maps to.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Prefix of every gateway slot in the scan directory.
pub const SERVICE_PREFIX: &str = "gateway-";

/// The root profile: its home is `$HERMES_HOME` itself.
pub const DEFAULT_PROFILE: &str = "default";

/// Longest profile name. With the `gateway-` prefix and the helper's
/// dot-prefixed staging suffix the slot name stays well under NAME_MAX.
pub const MAX_PROFILE_LEN: usize = 63;

/// A profile name that matches `^[a-z0-9][a-z0-9_-]{0,62}$`.
///
/// The helper enforces the same rule; checking it here too means a typo is
/// reported before anything is executed, with a message that says what is
/// allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName(String);

impl ProfileName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, InvalidProfileName> {
        if is_valid_profile_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidProfileName {
                name: name.to_owned(),
            })
        }
    }

    /// The root profile, `default`.
    pub fn default_profile() -> Self {
        Self(DEFAULT_PROFILE.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_PROFILE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `gateway-<profile>`: the slot's name in the scan directory.
    pub fn service_name(&self) -> String {
        format!("{SERVICE_PREFIX}{}", self.0)
    }

    /// The profile a slot name belongs to, if it is a gateway slot at all.
    /// Dot-prefixed staging entries and foreign services yield `None`.
    pub fn from_service_name(service: &str) -> Option<Self> {
        let name = service.strip_prefix(SERVICE_PREFIX)?;
        is_valid_profile_name(name).then(|| Self(name.to_owned()))
    }
}

/// Removes repeated profiles, keeping the first occurrence's position.
pub fn dedup(profiles: &[ProfileName]) -> Vec<ProfileName> {
    let mut seen = std::collections::HashSet::new();
    profiles
        .iter()
        .filter(|p| seen.insert(p.as_str()))
        .cloned()
        .collect()
}

/// A name that is not a profile name; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid profile name '{name}': use 1-63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
)]
pub struct InvalidProfileName {
    pub name: String,
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`, without pulling in a regex engine.
pub fn is_valid_profile_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    bytes.len() <= MAX_PROFILE_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl FromStr for ProfileName {
    type Err = InvalidProfileName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProfileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ProfileName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_shape() {
        for name in ["default", "a", "0", "work", "my_bot-2", &"a".repeat(63)] {
            assert!(ProfileName::new(name).is_ok(), "{name} should be valid");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "",
            "-lead",
            "_lead",
            "Upper",
            "dot.ted",
            "sla/sh",
            "..",
            "spa ce",
            "é",
            "new\nline",
            &"a".repeat(64),
        ] {
            let err = ProfileName::new(name).unwrap_err();
            assert_eq!(err.name, name);
            assert!(
                err.to_string().starts_with("invalid profile name"),
                "{name:?}"
            );
        }
    }

    #[test]
    fn dedup_keeps_first_positions() {
        let p = |n: &str| ProfileName::new(n).unwrap();
        assert_eq!(
            dedup(&[p("b"), p("a"), p("b"), p("c"), p("a")]),
            [p("b"), p("a"), p("c")]
        );
    }

    #[test]
    fn maps_to_and_from_service_names() {
        let p = ProfileName::new("work").unwrap();
        assert_eq!(p.service_name(), "gateway-work");
        assert_eq!(ProfileName::from_service_name("gateway-work"), Some(p));
        assert_eq!(
            ProfileName::from_service_name("gateway-default"),
            Some(ProfileName::default_profile())
        );
        assert!(ProfileName::default_profile().is_default());
        for foreign in [
            "main-hermes",
            "dashboard",
            ".gateway-work.tmp",
            "gateway-",
            "gateway-Bad",
            "gatewaywork",
            ".s6-svscan",
        ] {
            assert_eq!(ProfileName::from_service_name(foreign), None, "{foreign}");
        }
    }
}
