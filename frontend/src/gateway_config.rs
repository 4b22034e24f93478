//! The one setting of the gateway's configuration the boot needs: whether
//! the root gateway multiplexes every profile (`multiplex_profiles`), in
//! which case named profiles' slots are registered but never started.
//!
//! Read where upstream's gateway reads it: `$HERMES_HOME/config.yaml`'s
//! top-level `multiplex_profiles`, else `gateway.multiplex_profiles`, else
//! the legacy `gateway.json`'s `multiplex_profiles`. The configuration
//! decides when it sets the key; `GATEWAY_MULTIPLEX_PROFILES` (truthy:
//! `1`/`true`/`yes`/`on`) is only the fallback for when it does not, or
//! cannot be loaded; else false. (Upstream's own loader also lets a
//! recognized value of that variable override a configuration that sets the
//! key; the boot does not: the configuration is the source, the variable the
//! fallback.)
//!
//! Only that key is read, with a small line-based reader of YAML's block
//! mappings; anything it does not understand on the way to the key (tabs,
//! flow collections, anchors, tags, block values) means the configuration
//! cannot be loaded. The file is read without following a link.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::nofollow;

pub const CONFIG_FILE: &str = "config.yaml";
pub const LEGACY_CONFIG_FILE: &str = "gateway.json";
const KEY: &str = "multiplex_profiles";
const SECTION: &str = "gateway";
/// Larger configurations are not read.
const MAX_CONFIG: usize = 1 << 20;

/// Whether the root gateway multiplexes, and what said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Multiplex {
    pub enabled: bool,
    pub source: MultiplexSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiplexSource {
    /// The configuration (or, with neither it nor the variable saying
    /// anything, the default: false).
    Config,
    /// The configuration does not set the key or could not be loaded; the
    /// environment decided.
    Fallback,
}

/// A scalar as YAML 1.1 (PyYAML) resolves it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Scalar {
    /// Upstream's coercion of the setting: null false, strings by token
    /// (anything unknown false), numbers non-zero.
    fn truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Int(n) => *n != 0,
            Self::Str(s) => token(s) == Some(true),
        }
    }
}

/// `true`/`false` for a recognized token, else `None`.
fn token(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The decision for the root profile's home `home`, with
/// `GATEWAY_MULTIPLEX_PROFILES` = `env`.
pub fn multiplex_profiles(home: &Path, env: Option<&str>) -> Multiplex {
    match (configured(home), env) {
        (Ok(Some(value)), _) => Multiplex {
            enabled: value.truthy(),
            source: MultiplexSource::Config,
        },
        (Ok(None), None) => Multiplex {
            enabled: false,
            source: MultiplexSource::Config,
        },
        (Ok(None) | Err(()), env) => Multiplex {
            enabled: env.is_some_and(|v| token(v) == Some(true)),
            source: MultiplexSource::Fallback,
        },
    }
}

/// The configured value, `None` when nothing sets it; `Err` when the
/// configuration cannot be loaded.
fn configured(home: &Path) -> Result<Option<Scalar>, ()> {
    let dir = File::open(home).map(OwnedFd::from).map_err(|_| ())?;
    let legacy = read(&dir, LEGACY_CONFIG_FILE)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|doc| doc.get(KEY).map(json_scalar));
    let Some(yaml) = read(&dir, CONFIG_FILE)? else {
        return Ok(legacy);
    };
    let text = std::str::from_utf8(&yaml).map_err(|_| ())?;
    let (top, nested) = find_key(text)?;
    Ok(match (top, nested) {
        (Some(value), _) if value != Scalar::Null => Some(value),
        (_, Some(value)) => Some(value),
        (Some(null), None) => legacy.or(Some(null)),
        (None, None) => legacy,
    })
}

fn json_scalar(value: &Value) -> Scalar {
    match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Int(n.as_i64().unwrap_or(1)),
        Value::String(s) => Scalar::Str(s.clone()),
        Value::Array(a) => Scalar::Bool(!a.is_empty()),
        Value::Object(o) => Scalar::Bool(!o.is_empty()),
    }
}

/// A file of the home, `None` when absent, `Err` when unreadable.
fn read(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, ()> {
    match nofollow::open_file_at(dir, name) {
        Ok(file) => {
            let bytes = nofollow::read_regular(file, MAX_CONFIG as u64).map_err(|_| ())?;
            Ok(Some(bytes))
        }
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(_) => Err(()),
    }
}

/// `multiplex_profiles` at the top level and under `gateway:`.
fn find_key(text: &str) -> Result<(Option<Scalar>, Option<Scalar>), ()> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut top = None;
    let mut nested = None;
    // The indentation of `gateway:`'s children, once inside that block.
    let mut in_section = false;
    let mut child_indent: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if line[indent..].starts_with('\t') {
            return Err(());
        }
        let content = line.trim();
        if indent == 0 {
            in_section = false;
            child_indent = None;
            if n == 0 && (content == "---" || content.starts_with('%')) {
                continue;
            }
            let Some((key, value)) = split_key(content) else {
                return Err(());
            };
            if key == KEY {
                top = Some(scalar(value)?);
            } else if key == SECTION {
                if value.is_empty() {
                    in_section = true;
                } else if value.contains(KEY) {
                    // A flow mapping naming the key: not followed here.
                    return Err(());
                }
            }
            continue;
        }
        if !in_section {
            continue;
        }
        let child = *child_indent.get_or_insert(indent);
        if indent < child {
            return Err(());
        }
        if indent == child
            && let Some((key, value)) = split_key(content)
            && key == KEY
        {
            nested = Some(scalar(value)?);
        }
    }
    Ok((top, nested))
}

/// A line without its comment (` #` outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'\'' | b'"') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `key: value` (the key plain or quoted), `None` otherwise.
fn split_key(content: &str) -> Option<(String, &str)> {
    let (key, rest) = if let Some(quoted) = content.strip_prefix(['"', '\'']) {
        let q = content.as_bytes()[0] as char;
        let end = quoted.find(q)?;
        (quoted[..end].to_owned(), quoted[end + 1..].trim_start())
    } else {
        let colon = content
            .find(": ")
            .or_else(|| content.strip_suffix(':').map(|k| k.len()))?;
        (content[..colon].trim_end().to_owned(), &content[colon..])
    };
    let value = rest.strip_prefix(':')?.trim();
    Some((key, value))
}

/// A plain or quoted scalar; block values, flow collections, anchors,
/// aliases and tags are refused.
fn scalar(value: &str) -> Result<Scalar, ()> {
    if value.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
        return Err(());
    }
    if value.is_empty() {
        return Ok(Scalar::Null);
    }
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return Ok(Scalar::Str(inner.to_owned()));
    }
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return Ok(Scalar::Str(inner.to_owned()));
    }
    Ok(match value {
        "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Scalar::Bool(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Scalar::Bool(false)
        }
        other => match other.replace('_', "").parse::<i64>() {
            Ok(n) => Scalar::Int(n),
            Err(_) => Scalar::Str(other.to_owned()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(yaml: Option<&str>, env: Option<&str>) -> Multiplex {
        let dir = tempfile::tempdir().unwrap();
        if let Some(yaml) = yaml {
            std::fs::write(dir.path().join(CONFIG_FILE), yaml).unwrap();
        }
        multiplex_profiles(dir.path(), env)
    }

    fn on(yaml: Option<&str>, env: Option<&str>) -> bool {
        decide(yaml, env).enabled
    }

    #[test]
    fn reads_the_key_where_upstream_does() {
        assert!(!on(None, None));
        assert!(on(Some("multiplex_profiles: true\n"), None));
        assert!(on(
            Some("# c\nmodel: x\ngateway:\n  port: 1\n  multiplex_profiles: yes # on\n"),
            None
        ));
        assert!(!on(Some("gateway:\n  multiplex_profiles: false\n"), None));
        // The top-level value wins unless null.
        assert!(!on(
            Some("multiplex_profiles: off\ngateway:\n  multiplex_profiles: true\n"),
            None
        ));
        assert!(on(
            Some("multiplex_profiles:\ngateway:\n  multiplex_profiles: true\n"),
            None
        ));
        // Deeper keys are someone else's.
        assert!(!on(
            Some("gateway:\n  relay:\n    multiplex_profiles: true\n"),
            None
        ));
        assert!(!on(Some("other:\n  multiplex_profiles: true\n"), None));
        // Strings by token, numbers non-zero.
        assert!(on(Some("multiplex_profiles: \"on\"\n"), None));
        assert!(!on(Some("multiplex_profiles: \"maybe\"\n"), None));
        assert!(on(Some("multiplex_profiles: 1\n"), None));
        assert_eq!(
            decide(Some("multiplex_profiles: true\n"), None).source,
            MultiplexSource::Config
        );
    }

    #[test]
    fn the_environment_is_only_the_fallback() {
        // A configuration that loads decides, whatever the variable says.
        assert!(on(Some("multiplex_profiles: true\n"), Some("0")));
        assert!(!on(Some("multiplex_profiles: false\n"), Some(" TRUE ")));
        // A configuration that does not set it: the variable decides.
        assert!(on(None, Some("yes")));
        assert!(on(Some("model: x\n"), Some("1")));
        assert!(!on(Some("model: x\n"), Some("maybe")));
        assert_eq!(decide(None, Some("yes")).source, MultiplexSource::Fallback);
        assert_eq!(decide(None, None).source, MultiplexSource::Config);
        // A configuration this reader cannot load: the environment alone.
        for bad in [
            "gateway: {multiplex_profiles: true}\n",
            "multiplex_profiles: &a true\n",
            "\tgateway:\n",
            "- a list\n",
            "multiplex_profiles: |\n  true\n",
        ] {
            let d = decide(Some(bad), Some("1"));
            assert_eq!(
                d,
                Multiplex {
                    enabled: true,
                    source: MultiplexSource::Fallback
                },
                "{bad:?}"
            );
            assert!(!on(Some(bad), None), "{bad:?}");
        }
    }

    #[test]
    fn the_legacy_json_is_the_base_layer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LEGACY_CONFIG_FILE),
            r#"{"multiplex_profiles": true}"#,
        )
        .unwrap();
        assert!(multiplex_profiles(dir.path(), None).enabled);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "gateway:\n  multiplex_profiles: false\n",
        )
        .unwrap();
        assert!(!multiplex_profiles(dir.path(), None).enabled);
    }

    #[test]
    fn a_linked_configuration_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.yaml");
        std::fs::write(&elsewhere, "multiplex_profiles: true\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(CONFIG_FILE)).unwrap();
        let d = multiplex_profiles(dir.path(), Some("0"));
        assert_eq!(d.source, MultiplexSource::Fallback);
        assert!(!d.enabled);
    }
}
