//! The checks behind the fuzz targets, shared with the stable replay test.
//! Each takes raw fuzzer bytes and panics when the helper's parser breaks
//! one of its invariants, judged against an implementation written here
//! independently from the design (docs §3 I3, §4, I10): a small regular
//! expression matcher for the name and key shapes, and serde_json for JSON.

use hermes_s6_helper::exit::{DATA, USAGE};
use hermes_s6_helper::payload;
use hermes_s6_helper::request::{self, Profile, MAX_PROFILES};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

/// I3, verbatim from the design.
pub const PROFILE_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";
/// §4, verbatim from the design.
pub const KEY_PATTERN: &str = "^[A-Z_][A-Z0-9_]{0,127}$";
pub const MAX_KEYS: usize = 64;

/// The reserved keys as reviewed (I10 names the first ones; the rest is the
/// helper's list). The payload check needs the exact set to predict the
/// helper's answer, so a change to the helper's list fails the fuzz run
/// until it is mirrored here: each change gets looked at.
const RESERVED: &[&str] = &[
    "HOME",
    "PATH",
    "HERMES_S6_SUPERVISED_CHILD",
    "HERMES_SUPERVISED_CHILD",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "TZDIR",
    "ENV",
    "IFS",
    "CDPATH",
    "SHELLOPTS",
    "PS4",
];
const RESERVED_PREFIXES: &[&str] = &["LD_", "MALLOC_", "BASH_", "PYTHON", "PERL", "RUBY", "NODE_"];

// --- a tiny anchored regular expression matcher -------------------------

/// One element of a pattern: a byte class and how often it repeats.
struct Atom {
    class: Vec<(u8, u8)>,
    min: usize,
    max: usize,
}

/// Parses the subset the design's patterns use: `^`, `$`, literal bytes,
/// `[...]` classes with ranges, and `{m,n}` / `{m}` quantifiers.
fn compile(pattern: &str) -> Vec<Atom> {
    let p = pattern.as_bytes();
    assert!(
        p.first() == Some(&b'^') && p.last() == Some(&b'$'),
        "anchored patterns only"
    );
    let body = &p[1..p.len() - 1];
    let mut atoms = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let mut class = Vec::new();
        if body[i] == b'[' {
            i += 1;
            while body[i] != b']' {
                let lo = body[i];
                if body.get(i + 1) == Some(&b'-') && body.get(i + 2).is_some_and(|&c| c != b']') {
                    class.push((lo, body[i + 2]));
                    i += 3;
                } else {
                    class.push((lo, lo));
                    i += 1;
                }
            }
            i += 1;
        } else {
            class.push((body[i], body[i]));
            i += 1;
        }
        let (mut min, mut max) = (1, 1);
        if body.get(i) == Some(&b'{') {
            let end = i + body[i..].iter().position(|&c| c == b'}').expect("closed {");
            let spec = std::str::from_utf8(&body[i + 1..end]).expect("ascii");
            let (a, b) = spec.split_once(',').unwrap_or((spec, spec));
            min = a.parse().expect("number");
            max = b.parse().expect("number");
            i = end + 1;
        }
        atoms.push(Atom { class, min, max });
    }
    atoms
}

fn match_from(atoms: &[Atom], input: &[u8]) -> bool {
    let Some((atom, rest)) = atoms.split_first() else {
        return input.is_empty();
    };
    let in_class = |b: u8| atom.class.iter().any(|&(lo, hi)| lo <= b && b <= hi);
    let run = input
        .iter()
        .take(atom.max)
        .take_while(|&&b| in_class(b))
        .count();
    (atom.min..=run)
        .rev()
        .any(|n| match_from(rest, &input[n..]))
}

/// Whether `input` matches the anchored `pattern` as a whole. The two
/// patterns of the design are compiled once.
pub fn matches(pattern: &str, input: &[u8]) -> bool {
    static PROFILE: OnceLock<Vec<Atom>> = OnceLock::new();
    static KEY: OnceLock<Vec<Atom>> = OnceLock::new();
    match pattern {
        PROFILE_PATTERN => match_from(PROFILE.get_or_init(|| compile(pattern)), input),
        KEY_PATTERN => match_from(KEY.get_or_init(|| compile(pattern)), input),
        _ => match_from(&compile(pattern), input),
    }
}

fn reserved(key: &str) -> bool {
    RESERVED.contains(&key) || RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Failure reasons go to a terminal and to syslog: no caller byte may show
/// up raw, and they stay short.
fn check_reason(reason: &str) {
    assert!(
        reason.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "reason with raw bytes: {reason:?}"
    );
    assert!(
        reason.len() <= 1024,
        "reason too long: {} bytes",
        reason.len()
    );
}

// --- argv ----------------------------------------------------------------

/// The fuzzer's bytes as an argv: NUL-separated arguments, argv[0] first;
/// the empty input is argc = 0.
pub fn argv_from(data: &[u8]) -> Vec<OsString> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// What design §4 says the grammar answers: the operation and names, or
/// the exit code of the refusal.
fn expected_request(argv: &[OsString]) -> Result<(&'static str, Vec<Vec<u8>>), u8> {
    let op = argv.get(1).ok_or(USAGE)?;
    let (name, takes_profiles) = match op.as_bytes() {
        b"register" => ("register", true),
        b"unregister" => ("unregister", true),
        b"start" => ("start", true),
        b"stop" => ("stop", true),
        b"restart" => ("restart", true),
        b"rescan" => ("rescan", false),
        b"--version" => ("--version", false),
        _ => return Err(USAGE),
    };
    let names = &argv[2..];
    if !takes_profiles {
        return if names.is_empty() {
            Ok((name, Vec::new()))
        } else {
            Err(USAGE)
        };
    }
    if names.is_empty() || names.len() > MAX_PROFILES {
        return Err(USAGE);
    }
    if names
        .iter()
        .any(|n| !matches(PROFILE_PATTERN, n.as_bytes()))
    {
        return Err(DATA);
    }
    Ok((name, names.iter().map(|n| n.as_bytes().to_vec()).collect()))
}

pub fn check_argv(data: &[u8]) {
    let argv = argv_from(data);
    match (request::parse(&argv), expected_request(&argv)) {
        (Ok(req), Ok((op, names))) => {
            assert_eq!(req.op.name(), op);
            let got: Vec<&[u8]> = req.profiles.iter().map(|p| p.as_str().as_bytes()).collect();
            let want: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            assert_eq!(got, want, "profiles differ from the arguments");
            for p in &req.profiles {
                check_profile_value(p);
            }
        }
        (Err(f), Err(code)) => {
            assert_eq!(
                f.code, code,
                "refused with {} instead of {code}: {}",
                f.code, f.reason
            );
            check_reason(&f.reason);
        }
        (Ok(req), Err(code)) => panic!("accepted {req:?}; the grammar says exit {code}"),
        (Err(f), Ok(_)) => panic!("refused ({} {}) a valid request", f.code, f.reason),
    }
}

// --- profile names --------------------------------------------------------

fn check_profile_value(p: &Profile) {
    let name = p.as_str();
    assert!(
        matches(PROFILE_PATTERN, name.as_bytes()),
        "accepted {name:?}"
    );
    assert_eq!(p.service(), format!("gateway-{name}"));
}

pub fn check_profile(data: &[u8]) {
    let valid = matches(PROFILE_PATTERN, data);
    match Profile::parse(data) {
        Ok(p) => {
            assert!(
                valid,
                "accepted {data:?}, which does not match {PROFILE_PATTERN}"
            );
            assert_eq!(p.as_str().as_bytes(), data, "name changed while parsing");
            check_profile_value(&p);
        }
        Err(f) => {
            assert!(!valid, "refused {data:?}, which matches {PROFILE_PATTERN}");
            assert_eq!(f.code, DATA);
            check_reason(&f.reason);
        }
    }
}

// --- environment payload ---------------------------------------------------

/// A JSON object of strings, every member in order, duplicates kept.
struct Pairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

fn has_duplicates(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .enumerate()
        .any(|(i, (k, _))| pairs[..i].iter().any(|(j, _)| j == k))
}

fn pair_ok(key: &str, value: &str) -> bool {
    matches(KEY_PATTERN, key.as_bytes()) && !reserved(key) && !value.contains(['\0', '\n'])
}

pub fn check_payload(data: &[u8]) {
    let got = payload::parse(data);
    match &got {
        Ok(vars) => {
            assert!(vars.len() <= MAX_KEYS, "{} keys accepted", vars.len());
            for (i, v) in vars.iter().enumerate() {
                assert!(
                    matches(KEY_PATTERN, v.key.as_bytes()),
                    "key {:?} accepted",
                    v.key
                );
                assert!(!reserved(&v.key), "reserved key {:?} accepted", v.key);
                assert!(
                    !v.value.iter().any(|&b| b == 0 || b == b'\n'),
                    "value of {} with NUL or newline accepted",
                    v.key
                );
                assert!(
                    vars[..i].iter().all(|w| w.key != v.key),
                    "duplicate key {} accepted",
                    v.key
                );
            }
        }
        Err(f) => {
            assert_eq!(f.code, DATA);
            check_reason(&f.reason);
        }
    }
    // The reference: serde_json, which never accepts what is not JSON.
    let reference = serde_json::from_slice::<Pairs>(data).ok().map(|p| p.0);
    let expected_ok = reference.as_ref().is_some_and(|pairs| {
        !has_duplicates(pairs)
            && pairs.len() <= MAX_KEYS
            && pairs.iter().all(|(k, v)| pair_ok(k, v))
    });
    match (&got, reference) {
        (Ok(vars), Some(pairs)) if expected_ok => {
            let got: Vec<(&[u8], &[u8])> = vars
                .iter()
                .map(|v| (v.key.as_bytes(), v.value.as_slice()))
                .collect();
            let want: Vec<(&[u8], &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                .collect();
            assert_eq!(got, want, "the helper and serde_json read different values");
        }
        (Ok(vars), _) => panic!(
            "accepted {} variable(s) from input serde_json refuses or the rules forbid",
            vars.len()
        ),
        (Err(f), Some(_)) if expected_ok => {
            panic!("refused a valid payload: {}", f.reason)
        }
        (Err(_), _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matcher_follows_the_patterns() {
        for ok in ["a", "0", "default", "a-b_c", &"x".repeat(63)] {
            assert!(matches(PROFILE_PATTERN, ok.as_bytes()), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a/b", "a.b", &"x".repeat(64), "é"] {
            assert!(!matches(PROFILE_PATTERN, bad.as_bytes()), "{bad}");
        }
        assert!(matches(KEY_PATTERN, b"_"));
        assert!(matches(KEY_PATTERN, b"API_KEY2"));
        assert!(!matches(KEY_PATTERN, b"2KEY"));
        assert!(!matches(KEY_PATTERN, b"key"));
        assert!(matches(KEY_PATTERN, "K".repeat(128).as_bytes()));
        assert!(!matches(KEY_PATTERN, "K".repeat(129).as_bytes()));
    }

    #[test]
    fn argv_shapes() {
        assert!(argv_from(b"").is_empty());
        assert_eq!(argv_from(b"x").len(), 1);
        assert_eq!(argv_from(b"x\0start\0a").len(), 3);
        assert_eq!(argv_from(b"x\0").len(), 2);
    }

    #[test]
    fn checks_pass_on_simple_inputs() {
        check_argv(b"");
        check_argv(b"x\0start\0a\0b");
        check_argv(b"x\0start\0../x");
        check_profile(b"default");
        check_profile(b"../x");
        check_payload(br#"{"A": "b"}"#);
        check_payload(br#"{"A": "b", "A": "c"}"#);
        check_payload(br#"{"LD_PRELOAD": "/x"}"#);
    }
}
