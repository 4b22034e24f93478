//! The command-line grammar (design §4): one operation, then profile names,
//! each validated before anything is touched.

use crate::exit::{escape, Failure, DATA, USAGE};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub const MAX_PROFILES: usize = 4096;
const MAX_NAME_LEN: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Register,
    Unregister,
    Start,
    Stop,
    Restart,
    Rescan,
    Version,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Unregister => "unregister",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::Rescan => "rescan",
            Op::Version => "--version",
        }
    }

    fn takes_profiles(self) -> bool {
        !matches!(self, Op::Rescan | Op::Version)
    }
}

/// A profile name that matched `^[a-z0-9][a-z0-9_-]{0,62}$`. Only this type
/// ever becomes part of a path or a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile(String);

impl Profile {
    pub fn parse(raw: &[u8]) -> Result<Profile, Failure> {
        let first_ok = matches!(raw.first(), Some(b'a'..=b'z' | b'0'..=b'9'));
        let rest_ok = raw
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if !first_ok || !rest_ok || raw.len() > MAX_NAME_LEN {
            return Err(Failure::new(
                DATA,
                format!("invalid profile name '{}': use 1-63 of a-z 0-9 _ -, starting with a letter or digit", escape(raw)),
            ));
        }
        // Every byte is ASCII here, so this conversion cannot fail.
        Ok(Profile(String::from_utf8_lossy(raw).into_owned()))
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

const USAGE_TEXT: &str = "usage: hermes-s6-helper register|unregister|start|stop|restart <profile>... | rescan | --version";

/// Parses argv (including argv[0], which may be missing: argc = 0).
pub fn parse(argv: &[OsString]) -> Result<Request, Failure> {
    let Some(op_arg) = argv.get(1) else {
        return Err(Failure::new(USAGE, USAGE_TEXT));
    };
    let op = match op_arg.as_bytes() {
        b"register" => Op::Register,
        b"unregister" => Op::Unregister,
        b"start" => Op::Start,
        b"stop" => Op::Stop,
        b"restart" => Op::Restart,
        b"rescan" => Op::Rescan,
        b"--version" => Op::Version,
        other => {
            return Err(Failure::new(
                USAGE,
                format!("unknown operation '{}'; {USAGE_TEXT}", escape(other)),
            ));
        }
    };
    let names = &argv[2..];
    if !op.takes_profiles() {
        if !names.is_empty() {
            return Err(Failure::new(
                USAGE,
                format!("{} takes no arguments", op.name()),
            ));
        }
        return Ok(Request {
            op,
            profiles: Vec::new(),
        });
    }
    if names.is_empty() {
        return Err(Failure::new(
            USAGE,
            format!("{} needs at least one profile", op.name()),
        ));
    }
    if names.len() > MAX_PROFILES {
        return Err(Failure::new(
            USAGE,
            format!("at most {MAX_PROFILES} profiles per call"),
        ));
    }
    let profiles = names
        .iter()
        .map(|n| Profile::parse(n.as_bytes()))
        .collect::<Result<_, _>>()?;
    Ok(Request { op, profiles })
}
