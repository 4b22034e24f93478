//! Extra environment for a gateway, handed to the helper's `register` on
//! stdin as a JSON object (never argv: other users can read argv).
//!
//! The helper validates the payload again and is the authority; checking
//! here first turns a refusal into a message that names the variable.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::error::Error;

/// Most variables one payload may carry.
pub const MAX_KEYS: usize = 64;
/// Largest serialized payload, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Longest variable name (`^[A-Z_][A-Z0-9_]{0,127}$`).
pub const MAX_KEY_LEN: usize = 128;

/// Variables the gateway's run script owns, or that hook the dynamic
/// loader or libc; the helper refuses them too.
const RESERVED: [&str; 6] = [
    "HERMES_S6_SUPERVISED_CHILD",
    "HERMES_SUPERVISED_CHILD",
    "HOME",
    "PATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
];
const RESERVED_PREFIXES: [&str; 1] = ["LD_"];

/// A validated set of extra environment variables, kept sorted so the
/// payload is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraEnv(BTreeMap<String, String>);

impl ExtraEnv {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Validates every variable and the payload as a whole.
    pub fn new<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, Error>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (key, value) in vars {
            let (key, value) = (key.into(), value.into());
            check_key(&key)?;
            check_value(&key, &value)?;
            if map.insert(key.clone(), value).is_some() {
                return Err(Error::InvalidEnvVar {
                    key,
                    reason: "it is given twice".into(),
                });
            }
        }
        if map.len() > MAX_KEYS {
            return Err(Error::InvalidEnvPayload {
                reason: format!("{} variables, at most {MAX_KEYS} are allowed", map.len()),
            });
        }
        let env = Self(map);
        let size = env.to_payload().len();
        if size > MAX_PAYLOAD {
            return Err(Error::InvalidEnvPayload {
                reason: format!("{size} bytes, at most {MAX_PAYLOAD} are allowed"),
            });
        }
        Ok(env)
    }

    /// Parses a JSON object of string to string, as the helper reads it;
    /// a key given twice is refused rather than silently collapsed.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let pairs: Pairs = serde_json::from_slice(bytes).map_err(|e| Error::InvalidEnvPayload {
            reason: format!("expected a JSON object of string values ({e})"),
        })?;
        Self::new(pairs.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The JSON object the helper reads on stdin.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a string map always serializes")
    }
}

/// Object members in document order, duplicates included.
struct Pairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;

        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }

        deserializer.deserialize_map(PairsVisitor)
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::InvalidEnvVar {
            key: key.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let bytes = key.as_bytes();
    let shape_ok = !bytes.is_empty()
        && bytes.len() <= MAX_KEY_LEN
        && (bytes[0].is_ascii_uppercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !shape_ok {
        return invalid(
            "names are 1-128 characters from A-Z, 0-9 and '_', not starting with a digit",
        );
    }
    if RESERVED.contains(&key) || RESERVED_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return invalid("it is reserved for the gateway's run script or the system loader");
    }
    Ok(())
}

fn check_value(key: &str, value: &str) -> Result<(), Error> {
    // An envdir file holds one line, and NUL ends a C string: neither
    // would round-trip.
    if value.contains('\0') || value.contains('\n') {
        return Err(Error::InvalidEnvVar {
            key: key.to_owned(),
            reason: "values cannot contain NUL or newline characters".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(vars: &[(&str, &str)]) -> Error {
        ExtraEnv::new(vars.iter().copied()).unwrap_err()
    }

    #[test]
    fn accepts_ordinary_variables_and_serializes_sorted() {
        let env = ExtraEnv::new([("TELEGRAM_TOKEN", "a b=c\"d"), ("_X1", "")]).unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(
            String::from_utf8(env.to_payload()).unwrap(),
            r#"{"TELEGRAM_TOKEN":"a b=c\"d","_X1":""}"#
        );
        assert_eq!(ExtraEnv::empty().to_payload(), b"{}");
    }

    #[test]
    fn parses_json_payloads() {
        let env = ExtraEnv::from_json(br#"{"B":"2","A":"1"}"#).unwrap();
        assert_eq!(env.iter().collect::<Vec<_>>(), [("A", "1"), ("B", "2")]);
        assert!(ExtraEnv::from_json(b"{}").unwrap().is_empty());
        for bad in [
            &br#"{"A":1}"#[..],
            b"[]",
            b"\"x\"",
            b"{",
            br#"{"A":"1","A":"2"}"#,
            br#"{"a":"1"}"#,
        ] {
            assert!(
                ExtraEnv::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_bad_names() {
        for key in ["", "lower", "1ABC", "A-B", "A B", "Ä", &"A".repeat(129)] {
            assert!(
                matches!(refused(&[(key, "v")]), Error::InvalidEnvVar { .. }),
                "{key:?}"
            );
        }
        assert!(ExtraEnv::new([("A".repeat(128), "v")]).is_ok());
    }

    #[test]
    fn refuses_reserved_names() {
        for key in [
            "HOME",
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "GCONV_PATH",
            "GLIBC_TUNABLES",
            "HERMES_S6_SUPERVISED_CHILD",
            "HERMES_SUPERVISED_CHILD",
        ] {
            let err = refused(&[(key, "x")]);
            assert!(err.to_string().contains("reserved"), "{key}: {err}");
        }
    }

    #[test]
    fn refuses_values_that_do_not_round_trip() {
        for value in ["a\nb", "a\0b"] {
            assert!(matches!(
                refused(&[("KEY", value)]),
                Error::InvalidEnvVar { .. }
            ));
        }
    }

    #[test]
    fn refuses_duplicates_and_oversized_payloads() {
        assert!(
            refused(&[("A", "1"), ("A", "2")])
                .to_string()
                .contains("twice")
        );
        let many: Vec<(String, String)> = (0..65).map(|i| (format!("K{i}"), "v".into())).collect();
        assert!(matches!(
            ExtraEnv::new(many).unwrap_err(),
            Error::InvalidEnvPayload { .. }
        ));
        let big = ExtraEnv::new([("BIG", "x".repeat(MAX_PAYLOAD))]).unwrap_err();
        assert!(matches!(big, Error::InvalidEnvPayload { .. }));
    }
}
