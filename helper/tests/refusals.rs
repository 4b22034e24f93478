//! Every refusal path of the helper: the exit code, one clean stderr line, and
//! proof that nothing changed (the scan dir's tree with owners and modes, and
//! s6's view of every slot, before and after).

mod common;
use common::*;

/// A refusal case: an optional root-side setup (undone afterwards), who
/// calls, with which arguments and stdin, and what must come back.
struct Case<'a> {
    what: &'a str,
    setup: &'a str,
    undo: &'a str,
    user: User,
    program: &'a str,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    code: i32,
    message: &'a str,
}

fn case<'a>(what: &'a str, args: &[&str], code: i32, message: &'a str) -> Case<'a> {
    Case {
        what,
        setup: "",
        undo: "",
        user: User::Hermes,
        program: HELPER,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: None,
        code,
        message,
    }
}

fn run_case(c: &Container, k: &Case) {
    if !k.setup.is_empty() {
        let out = c.run_as(User::Root, &["sh", "-ec", k.setup], &[], None);
        assert_eq!(out.code, Some(0), "{}: setup failed: {}", k.what, out.stderr);
    }
    let before = snapshot(c);
    let mut argv = vec![k.program];
    argv.extend(k.args.iter().map(String::as_str));
    let out = c.run_as(k.user, &argv, &[], k.stdin.as_deref());
    eprintln!("case: {} ({:?})", k.what, k.args.iter().take(3).collect::<Vec<_>>());
    assert_refused(c, &before, &out, k.code, k.message);
    if !k.undo.is_empty() {
        let out = c.run_as(User::Root, &["sh", "-ec", k.undo], &[], None);
        assert_eq!(out.code, Some(0), "{}: undo failed: {}", k.what, out.stderr);
    }
    eprintln!("refused as specified: {}", k.what);
}

/// alpha registered and running, beta registered and down.
fn base(test: &str) -> Option<Container> {
    let c = boot(test)?;
    for p in ["alpha", "beta"] {
        profile_dir(&c, p);
    }
    ok(&c, &["register", "alpha", "beta"]);
    ok(&c, &["start", "alpha"]);
    ok(&c, &["rescan"]);
    wait_up(&c, "gateway-alpha");
    wait_gateway_running(&c, "alpha");
    c.wait_for(WAIT, "beta supervised", || svstat(&c, "gateway-beta").supervised);
    Some(c)
}

#[test]
fn malformed_names_usage_errors_and_missing_or_existing_slots_change_nothing() {
    let Some(c) = base("malformed_names_usage_errors") else {
        return;
    };
    let long = "a".repeat(64);
    let names = [
        "",
        &long,
        "Alpha",
        "-alpha",
        "_alpha",
        ".",
        "..",
        "a/b",
        "../gateway-alpha",
        "a b",
        " alpha",
        "alpha\n",
        "\u{e9}t\u{e9}",
        "\u{1b}[31mred",
        "alpha;reboot",
        "*",
    ];
    let mut cases = Vec::new();
    for op in ["register", "start", "unregister"] {
        for name in names {
            cases.push(case("malformed name", &[op, name], 65, "invalid profile name"));
        }
    }
    cases.extend([
        case("unknown operation", &["launch", "alpha"], 64, "unknown operation"),
        case("operation in capitals", &["START", "alpha"], 64, "unknown operation"),
        case("no operation", &[], 64, "usage"),
        case("missing profile", &["start"], 64, "needs at least one profile"),
        case("argument to rescan", &["rescan", "alpha"], 64, "takes no arguments"),
        case(
            "one bad name among good ones",
            &["register", "gamma", "delta", "Bad", "epsilon"],
            65,
            "invalid profile name",
        ),
        case("start of an unregistered profile", &["start", "gamma"], 66, "no such slot"),
        case("stop of an unregistered profile", &["stop", "gamma"], 66, "no such slot"),
        case("restart of an unregistered profile", &["restart", "gamma"], 66, "no such slot"),
        case("register twice", &["register", "alpha"], 73, "already exists"),
    ]);
    let too_many: Vec<String> = (0..4097).map(|i| format!("p{i}")).collect();
    let mut k = case("more than 4096 profiles", &["register"], 64, "at most 4096");
    k.args.extend(too_many);
    cases.push(k);
    // Hard limits too low to finish an operation (the helper can only lift
    // soft limits): it fails cleanly and changes nothing.
    for (what, limit, name) in
        [("tiny RLIMIT_NOFILE", "--nofile=5", "Too many open files"), ("RLIMIT_FSIZE 0", "--fsize=0", "File too large")]
    {
        let mut k = case(what, &[limit, HELPER, "register", "gamma"], 70, name);
        k.program = "prlimit";
        cases.push(k);
    }
    // argc = 0: argv[0] missing altogether.
    let mut k = case("argc = 0", &["-e", &format!("exec {{'{HELPER}'}} ()")], 64, "usage");
    k.program = "perl";
    cases.push(k);
    for k in &cases {
        run_case(&c, k);
    }
    // Non-UTF-8 bytes cannot go through the harness's &str argv; a shell
    // printf builds them.
    let before = snapshot(&c);
    let out = c.run_as(User::Hermes, &["sh", "-c", &format!("exec {HELPER} start \"$(printf 'a\\377b')\"")], &[], None);
    assert_refused(&c, &before, &out, 65, "a\\xffb");
}

#[test]
fn callers_outside_group_hermes_and_a_helper_that_is_not_effectively_root_get_77() {
    let Some(c) = base("callers_outside_group_hermes") else {
        return;
    };
    let copies = "cp /usr/libexec/hermes-s6-helper /usr/libexec/open-helper && chmod 4755 /usr/libexec/open-helper \
                  && cp /usr/libexec/hermes-s6-helper /usr/libexec/plain-helper && chmod 0755 /usr/libexec/plain-helper";
    let out = c.run_as(User::Root, &["sh", "-ec", copies], &[], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // The installed mode keeps others from even executing it.
    let before = snapshot(&c);
    let out = c.run_as(User::Intruder, &[HELPER, "stop", "alpha"], &[], None);
    assert_eq!(out.code, Some(126), "exec must be denied: {}", out.stderr);
    assert_eq!(before, snapshot(&c));

    let mut cases = vec![
        Case {
            user: User::Intruder,
            program: "/usr/libexec/open-helper",
            ..case("caller not in group hermes", &["stop", "alpha"], 77, "not in group hermes")
        },
        Case {
            program: "/usr/libexec/plain-helper",
            ..case("copy without the setuid bit", &["stop", "alpha"], 77, "setuid bit was not honored")
        },
    ];
    let mut k =
        case("no_new_privs set by the caller", &["--no-new-privs", HELPER, "stop", "alpha"], 77, "no_new_privs");
    k.program = "setpriv";
    cases.push(k);
    for k in &cases {
        run_case(&c, k);
    }
}

#[test]
fn without_a_running_s6_svscan_every_operation_gets_69() {
    let Some(c) = base("without_a_running_s6_svscan") else {
        return;
    };
    let no_reader = Case {
        setup: "cd /run/service/.s6-svscan && mv control control.real && mkfifo -m 600 control",
        undo: "cd /run/service/.s6-svscan && rm control && mv control.real control",
        ..case("no reader on .s6-svscan/control", &["start", "beta"], 69, "s6-svscan is not running")
    };
    run_case(&c, &no_reader);
    run_case(&c, &Case { args: vec!["rescan".into()], ..no_reader });
    let no_scan_dir = Case {
        setup: "mv /run/service /run/service.away",
        undo: "mv /run/service.away /run/service",
        ..case("no scan dir", &["register", "gamma"], 69, "does not exist")
    };
    run_case(&c, &no_scan_dir);
}

#[test]
fn an_unsafe_tree_is_refused_with_78_and_left_untouched() {
    let Some(c) = base("an_unsafe_tree_is_refused") else {
        return;
    };
    let slot = "/run/service/gateway-beta";
    for op in ["start", "stop", "restart", "unregister", "register"] {
        let message = if op == "register" { "other than a root-owned directory" } else { "symlink" };
        run_case(
            &c,
            &Case {
                setup: "mv /run/service/gateway-beta /run/beta.real && ln -s /run/beta.real /run/service/gateway-beta",
                undo: "rm /run/service/gateway-beta && mv /run/beta.real /run/service/gateway-beta",
                ..case("slot replaced by a symlink", &[op, "beta"], 78, message)
            },
        );
    }
    let control_file = format!("cd {slot}/supervise && mv control control.real && touch control");
    let control_link = format!("cd {slot}/supervise && mv control control.real && ln -s /etc/passwd control");
    let control_undo = format!("cd {slot}/supervise && rm control && mv control.real control");
    let hermes_slot = format!("chown hermes {slot}");
    let root_slot = format!("chown root {slot}");
    let cases = [
        Case {
            setup: &control_file,
            undo: &control_undo,
            ..case("supervise/control is a regular file", &["start", "beta"], 78, "not a root-owned FIFO")
        },
        Case {
            setup: &control_link,
            undo: &control_undo,
            ..case("supervise/control is a symlink", &["stop", "beta"], 78, "symlink")
        },
        Case {
            setup: &control_link,
            undo: &control_undo,
            ..case("supervise/control is a symlink (unregister)", &["unregister", "beta"], 78, "symlink")
        },
        Case {
            setup: "chmod g+w /run/service",
            undo: "chmod g-w /run/service",
            ..case("scan dir group-writable", &["start", "beta"], 78, "not a root-owned directory")
        },
        Case {
            setup: &hermes_slot,
            undo: &root_slot,
            ..case("slot owned by hermes", &["start", "beta"], 78, "not a root-owned directory")
        },
        Case {
            setup: &hermes_slot,
            undo: &root_slot,
            ..case("slot owned by hermes (unregister)", &["unregister", "beta"], 78, "not a root-owned directory")
        },
    ];
    for k in &cases {
        run_case(&c, k);
    }
}

#[test]
fn a_bad_environment_payload_is_refused_with_65_and_nothing_is_written() {
    let Some(c) = base("a_bad_environment_payload_is_refused") else {
        return;
    };
    let big = format!("{{\"A\":\"{}\"}}", "x".repeat(70 * 1024));
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("larger than 64 KiB", big.into_bytes()),
        ("bad key", br#"{"lower":"x"}"#.to_vec()),
        ("NUL in a value", br#"{"A":"x\u0000y"}"#.to_vec()),
        ("newline in a value", br#"{"A":"x\ny"}"#.to_vec()),
        ("not an object", br#"["A","x"]"#.to_vec()),
        ("number value", br#"{"A":1}"#.to_vec()),
        ("duplicate keys", br#"{"A":"1","A":"2"}"#.to_vec()),
        ("loader hook", br#"{"LD_PRELOAD":"/tmp/x.so"}"#.to_vec()),
        ("glibc tunables", br#"{"GLIBC_TUNABLES":"x"}"#.to_vec()),
        ("gateway control variable", br#"{"HERMES_S6_SUPERVISED_CHILD":"0"}"#.to_vec()),
        ("PATH", br#"{"PATH":"/tmp"}"#.to_vec()),
        ("truncated", br#"{"A":"x"#.to_vec()),
    ];
    for (what, bytes) in payloads {
        run_case(
            &c,
            &Case { stdin: Some(bytes), ..case(what, &["register", "gamma"], 65, "invalid environment payload") },
        );
    }
    // A writer that never closes stdin is cut off after about 2 s: had the
    // helper read on until the end of input (at 4 s), it would have refused
    // a truncated object instead.
    let before = snapshot(&c);
    let out =
        c.run_as(User::Hermes, &["sh", "-c", &format!("(printf '{{'; sleep 4) | {HELPER} register gamma")], &[], None);
    assert_refused(&c, &before, &out, 65, "not complete within 2 s");
}
