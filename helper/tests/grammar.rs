//! The helper's command-line grammar and payload language, as a specification.

use hermes_s6_helper::exit::{escape, DATA, USAGE};
use hermes_s6_helper::payload;
use hermes_s6_helper::request::{parse, Op, Profile, MAX_PROFILES};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn argv(args: &[&[u8]]) -> Vec<OsString> {
    std::iter::once(b"hermes-s6-helper".as_slice())
        .chain(args.iter().copied())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

fn code_of(args: &[&[u8]]) -> u8 {
    parse(&argv(args)).map(|_| 0).unwrap_or_else(|f| f.code)
}

#[test]
fn valid_names_are_lowercase_alnum_dash_underscore_up_to_63_bytes() {
    for name in ["a", "0", "default", "alpha-2", "a_b", "9lives", &"x".repeat(63)] {
        assert!(Profile::parse(name.as_bytes()).is_ok(), "{name} should be valid");
    }
}

#[test]
fn every_malformed_name_class_is_refused_with_65() {
    let too_long = "x".repeat(64);
    let cases: &[&[u8]] = &[
        b"",
        too_long.as_bytes(),
        b"Alpha",
        b"-alpha",
        b"_alpha",
        b".",
        b"..",
        b"a/b",
        b"/etc",
        b"a b",
        b" a",
        b"a\n",
        b"a\tb",
        "caf\u{e9}".as_bytes(),
        b"a\xff",
        b"\x1b[31m",
        b"a.b",
        b"a=b",
        b"gateway-a\0",
    ];
    for &name in cases {
        assert_eq!(code_of(&[b"start", name]), DATA, "name {:?}", String::from_utf8_lossy(name));
    }
}

#[test]
fn the_service_name_is_always_gateway_dash_profile() {
    assert_eq!(Profile::parse(b"alpha").unwrap().service(), "gateway-alpha");
    assert_eq!(Profile::parse(b"default").unwrap().service(), "gateway-default");
}

#[test]
fn usage_errors_are_64() {
    assert_eq!(parse(&[]).unwrap_err().code, USAGE, "argc = 0");
    assert_eq!(code_of(&[]), USAGE, "no operation");
    assert_eq!(code_of(&[b"launch", b"alpha"]), USAGE, "unknown operation");
    assert_eq!(code_of(&[b"START", b"alpha"]), USAGE, "operations are case-sensitive");
    assert_eq!(code_of(&[b"start"]), USAGE, "missing profile");
    assert_eq!(code_of(&[b"rescan", b"alpha"]), USAGE, "rescan takes nothing");
    assert_eq!(code_of(&[b"--version", b"x"]), USAGE, "--version takes nothing");
}

#[test]
fn at_most_4096_profiles_per_call() {
    let names: Vec<Vec<u8>> = (0..=MAX_PROFILES).map(|i| format!("p{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = std::iter::once(b"start".as_slice()).chain(names.iter().map(Vec::as_slice)).collect();
    assert_eq!(code_of(&refs), USAGE);
    assert_eq!(code_of(&refs[..MAX_PROFILES + 1]), 0, "exactly 4096 is fine");
}

#[test]
fn one_bad_name_in_a_batch_refuses_the_whole_call() {
    assert_eq!(code_of(&[b"start", b"alpha", b"beta", b"Bad", b"gamma"]), DATA);
}

#[test]
fn a_batch_keeps_its_order() {
    let request = parse(&argv(&[b"stop", b"b", b"a", b"c"])).unwrap();
    assert_eq!(request.op, Op::Stop);
    let names: Vec<&str> = request.profiles.iter().map(Profile::as_str).collect();
    assert_eq!(names, ["b", "a", "c"]);
}

#[test]
fn messages_never_echo_control_characters() {
    let failure = parse(&argv(&[b"start", b"\x1b]0;owned\x07\n"])).unwrap_err();
    assert!(failure.reason.bytes().all(|b| (0x20..0x7f).contains(&b)), "{:?}", failure.reason);
    assert!(failure.reason.contains("\\x1b"));
    assert_eq!(escape(&[b'a'; 100]).len(), 64 + 3, "long input is cut");
}

fn payload_code(input: &str) -> u8 {
    payload::parse(input.as_bytes()).map(|_| 0).unwrap_or_else(|f| f.code)
}

#[test]
fn a_payload_is_a_flat_object_of_strings_that_round_trips() {
    let vars = payload::parse(br#" { "TOKEN" : "a b\t\"c\"\\ \u00e9\ud83d\ude00 ", "EMPTY": "" } "#).unwrap();
    assert_eq!(vars.len(), 2);
    assert_eq!(vars[0].key, "TOKEN");
    assert_eq!(vars[0].value.as_slice(), "a b\t\"c\"\\ \u{e9}\u{1f600} ".as_bytes());
    assert_eq!(vars[1].value.as_slice(), b"");
    assert!(payload::parse(b"{}").unwrap().is_empty());
}

#[test]
fn malformed_payloads_are_refused_with_65() {
    for bad in [
        "",
        "[]",
        "\"x\"",
        "{",
        "{\"A\":1}",
        "{\"A\":\"x\",}",
        "{\"A\":\"x\"} x",
        "{\"A\" \"x\"}",
        "{A:\"x\"}",
        "{\"A\":\"x\\q\"}",
        "{\"A\":\"\\ud800\"}",
        "{\"A\":\"\\u12\"}",
        "{\"A\":\"raw\ttab\"}",
    ] {
        assert_eq!(payload_code(bad), DATA, "payload {bad:?}");
    }
    assert_eq!(payload::parse(b"{\"A\":\"\xff\"}").unwrap_err().code, DATA, "not UTF-8");
}

#[test]
fn values_with_nul_or_newline_are_refused() {
    assert_eq!(payload_code(r#"{"A":"x\u0000y"}"#), DATA);
    assert_eq!(payload_code(r#"{"A":"x\ny"}"#), DATA);
}

#[test]
fn keys_must_have_the_shell_variable_shape() {
    for bad in ["a", "1A", "A-B", "A B", "", "É"] {
        assert_eq!(payload_code(&format!("{{\"{bad}\":\"x\"}}")), DATA, "key {bad:?}");
    }
    assert_eq!(payload_code(&format!("{{\"{}\":\"x\"}}", "A".repeat(128))), 0);
    assert_eq!(payload_code(&format!("{{\"{}\":\"x\"}}", "A".repeat(129))), DATA);
}

#[test]
fn duplicate_keys_are_refused() {
    assert_eq!(payload_code(r#"{"A":"1","B":"2","A":"3"}"#), DATA);
}

#[test]
fn loader_interpreter_and_gateway_control_keys_are_refused() {
    for key in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "PATH",
        "HOME",
        "HERMES_S6_SUPERVISED_CHILD",
        "HERMES_SUPERVISED_CHILD",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "NODE_OPTIONS",
        "BASH_ENV",
        "PERL5OPT",
        "MALLOC_CHECK_",
    ] {
        assert_eq!(payload_code(&format!("{{\"{key}\":\"x\"}}")), DATA, "key {key}");
    }
}

#[test]
fn at_most_64_keys() {
    let obj = |n: usize| format!("{{{}}}", (0..n).map(|i| format!("\"K{i}\":\"v\"")).collect::<Vec<_>>().join(","));
    assert_eq!(payload_code(&obj(64)), 0);
    assert_eq!(payload_code(&obj(65)), DATA);
}

#[test]
fn compiled_in_configuration_needs_no_quoting_in_the_slot_scripts() {
    for value in hermes_s6_helper::config::PASTED {
        assert!(
            !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b)),
            "{value:?}"
        );
    }
}
