//! The command-line grammar (design §4): one operation, then profile names,
//! each validated before anything is touched.

use crate::exit::{escape, Failure, DATA, USAGE};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub const MAX_PROFILES: usize = 4096;
const NAME_RULE: &str = "use 1-63 of a-z 0-9 _ -, starting with a letter or digit";

#[rustfmt::skip]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op { Register, Unregister, Start, Stop, Restart, Rescan, Version }

#[rustfmt::skip]
const OPS: [(&str, Op); 7] = [("register", Op::Register), ("unregister", Op::Unregister), ("start", Op::Start),
    ("stop", Op::Stop), ("restart", Op::Restart), ("rescan", Op::Rescan), ("--version", Op::Version)];

impl Op {
    pub fn name(self) -> &'static str {
        OPS.iter().find(|(_, op)| *op == self).map_or("?", |(name, _)| name)
    }
}

/// A profile name that matched `^[a-z0-9][a-z0-9_-]{0,62}$`. Only this type
/// ever becomes part of a path or a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile(String);

impl Profile {
    pub fn parse(raw: &[u8]) -> Result<Profile, Failure> {
        let valid = matches!(raw.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
            && raw.len() <= 63
            && raw.iter().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        match std::str::from_utf8(raw) {
            Ok(name) if valid => Ok(Profile(name.to_owned())),
            _ => Err(Failure::new(DATA, format!("invalid profile name '{}': {NAME_RULE}", escape(raw)))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The s6 service directory name; the only name the helper ever forms.
    pub fn service(&self) -> String {
        format!("gateway-{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub profiles: Vec<Profile>,
}

const USAGE_TEXT: &str =
    "usage: hermes-s6-helper register|unregister|start|stop|restart <profile>... | rescan | --version";

/// Parses argv, argv[0] included (it may be missing: argc = 0).
pub fn parse(argv: &[OsString]) -> Result<Request, Failure> {
    let usage = |reason: String| Err(Failure::new(USAGE, reason));
    let Some(arg) = argv.get(1) else { return usage(USAGE_TEXT.into()) };
    let Some(&(name, op)) = OPS.iter().find(|(name, _)| name.as_bytes() == arg.as_bytes()) else {
        return usage(format!("unknown operation '{}'; {USAGE_TEXT}", escape(arg.as_bytes())));
    };
    let names = &argv[2..];
    let takes_profiles = !matches!(op, Op::Rescan | Op::Version);
    if takes_profiles == names.is_empty() {
        let problem = if takes_profiles { "needs at least one profile" } else { "takes no arguments" };
        return usage(format!("{name} {problem}"));
    }
    if names.len() > MAX_PROFILES {
        return usage(format!("at most {MAX_PROFILES} profiles per call"));
    }
    let profiles = names.iter().map(|n| Profile::parse(n.as_bytes())).collect::<Result<_, _>>()?;
    Ok(Request { op, profiles })
}
