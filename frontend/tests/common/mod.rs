//! Shared steps of the frontend's integration tests: run `hermes-s6` as the
//! hermes user inside the container emulation, and check the result through
//! s6 itself (`s6-svstat` as root), the files on the volume, and the
//! helper's audit trail — never through the frontend's own output alone.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

pub use hermes_s6_emu::{Container, Options, Output, User};
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(15);
pub const HELPER: &str = "/usr/libexec/hermes-s6-helper";
pub const HERMES_UID: u32 = 10000;

/// Boots a container (with the helper's audit trail collected), or
/// returns None after a loud notice when not root.
pub fn boot(test: &str) -> Option<Container> {
    boot_with(test, Options::default())
}

pub fn boot_with(test: &str, options: Options) -> Option<Container> {
    if hermes_s6_emu::skip_unless_root(test) {
        return None;
    }
    Some(Container::boot_with(Options {
        syslog: true,
        ..options
    }))
}

/// A command's stdout as JSON; the whole output in the panic otherwise.
pub fn json(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// `hermes-s6 <args>` as hermes.
pub fn hs6(c: &Container, args: &[&str]) -> Output {
    hs6_as(c, User::Hermes, args, &[], None)
}

pub fn hs6_as(
    c: &Container,
    user: User,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Output {
    let mut argv = vec!["hermes-s6"];
    argv.extend_from_slice(args);
    c.run_as(user, &argv, env, stdin)
}

/// Runs `hermes-s6 <args>` as hermes and insists it exited 0.
#[track_caller]
pub fn ok(c: &Container, args: &[&str]) -> Output {
    let out = hs6(c, args);
    out.assert_success();
    out
}

/// The helper itself, as hermes (for set-up that is not under test).
#[track_caller]
pub fn helper_ok(c: &Container, args: &[&str]) {
    let mut argv = vec![HELPER];
    argv.extend_from_slice(args);
    c.run_as(User::Hermes, &argv, &[], None).assert_success();
}

/// `sh -c script` as `user`, insisting on success.
#[track_caller]
pub fn sh_ok(c: &Container, user: User, script: &str) -> String {
    let out = c.sh(user, script);
    out.assert_success();
    out.stdout
}

/// The profile's home in the container.
pub fn home_of(profile: &str) -> String {
    if profile == "default" {
        "/opt/data".to_owned()
    } else {
        format!("/opt/data/profiles/{profile}")
    }
}

/// Creates real profile directories (with `SOUL.md`), as hermes.
pub fn profiles(c: &Container, names: &[&str]) {
    let mut script = String::from("set -e\n");
    for name in names {
        let home = home_of(name);
        script.push_str(&format!("mkdir -p '{home}' && : > '{home}/SOUL.md'\n"));
    }
    sh_ok(c, User::Hermes, &script);
}

/// Writes a file on the volume as hermes (so it is hermes-owned).
pub fn write_as_hermes(c: &Container, path: &str, contents: &[u8]) {
    let out = c.run_as(
        User::Hermes,
        &["sh", "-c", &format!("cat > '{path}'")],
        &[],
        Some(contents),
    );
    out.assert_success();
}

pub fn standin_conf(c: &Container, profile: &str, conf: &str) {
    write_as_hermes(
        c,
        &format!("{}/standin.conf", home_of(profile)),
        conf.as_bytes(),
    );
}

/// `gateway_state.json` of a profile, parsed (`Null` when absent).
pub fn state(c: &Container, profile: &str) -> Value {
    let path = c
        .volume()
        .join(
            home_of(profile)
                .trim_start_matches("/opt/data")
                .trim_start_matches('/'),
        )
        .join("gateway_state.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
        Err(_) => Value::Null,
    }
}

/// Host path of a file on the volume, from its container path under
/// `/opt/data`.
pub fn on_volume(c: &Container, path: &str) -> std::path::PathBuf {
    let rel = path
        .strip_prefix("/opt/data")
        .expect("a path on the volume")
        .trim_start_matches('/');
    c.volume().join(rel)
}

/// What s6 itself says about a slot, as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svstat {
    /// s6-svstat could read a current status (a supervisor runs).
    pub supervised: bool,
    pub up: bool,
    pub wanted_up: bool,
    pub normally_up: bool,
    pub ready: bool,
    pub paused: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub signum: i64,
    /// TAI64N label of the last up/down transition: two reads with the same
    /// label saw no transition in between.
    pub since: String,
}

impl Svstat {
    /// What s6-svstat's silence means: no supervisor, nothing else known.
    pub fn unsupervised() -> Self {
        Svstat {
            supervised: false,
            up: false,
            wanted_up: false,
            normally_up: false,
            ready: false,
            paused: false,
            pid: -1,
            exit_code: -1,
            signum: -1,
            since: String::new(),
        }
    }
}

const SVSTAT_FIELDS: &str = "up,wantedup,normallyup,ready,paused,pid,exitcode,signum,updownsince";

fn parse_svstat(line: &str) -> Svstat {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 9 {
        return Svstat::unsupervised();
    }
    Svstat {
        supervised: true,
        up: f[0] == "true",
        wanted_up: f[1] == "true",
        normally_up: f[2] == "true",
        ready: f[3] == "true",
        paused: f[4] == "true",
        pid: f[5].parse().unwrap(),
        exit_code: f[6].parse().unwrap(),
        signum: f[7].parse().unwrap(),
        since: f[8].to_owned(),
    }
}

/// s6's view of `slot`, read by the user s6 runs as (root, or hermes in
/// a non-root container, where root may lack the capability to look into
/// hermes's `supervise/`).
pub fn svstat(c: &Container, slot: &str) -> Svstat {
    let out = c.run_as(
        c.init_user(),
        &[
            "s6-svstat",
            "-o",
            SVSTAT_FIELDS,
            &format!("/run/service/{slot}"),
        ],
        &[],
        None,
    );
    if out.success() {
        parse_svstat(&out.stdout)
    } else {
        parse_svstat("")
    }
}

/// s6's view of every `gateway-*` slot, in one exec.
pub fn svstat_all(c: &Container) -> BTreeMap<String, Svstat> {
    let script = format!(
        "cd /run/service && for d in gateway-*; do [ -d \"$d\" ] || continue; \
         printf '%s %s\\n' \"$d\" \"$(s6-svstat -o {SVSTAT_FIELDS} \"$d\" 2>/dev/null)\"; done"
    );
    sh_ok(c, c.init_user(), &script)
        .lines()
        .map(|line| {
            let (slot, rest) = line.split_once(' ').unwrap_or((line, ""));
            (slot.to_owned(), parse_svstat(rest))
        })
        .collect()
}

#[track_caller]
pub fn wait_svstat(
    c: &Container,
    slot: &str,
    what: &str,
    cond: impl Fn(&Svstat) -> bool,
) -> Svstat {
    let mut last = None;
    c.wait_for(WAIT, &format!("{slot}: {what}"), || {
        let s = svstat(c, slot);
        let done = cond(&s);
        last = Some(s);
        done
    });
    last.unwrap()
}

#[track_caller]
pub fn wait_up(c: &Container, slot: &str) -> Svstat {
    wait_svstat(c, slot, "up", |s| s.up && s.pid > 0)
}

/// Down and done: `finish` has ended too (until then a start can still be
/// undone by `finish` exiting 125).
#[track_caller]
pub fn wait_down(c: &Container, slot: &str) -> Svstat {
    wait_svstat(c, slot, "down", |s| {
        s.supervised && !s.up && !c.finishing(slot)
    })
}

/// Waits until the profile's gateway reports `state` in its state file.
#[track_caller]
pub fn wait_gateway_state(c: &Container, profile: &str, want: &str) {
    c.wait_for(WAIT, &format!("{profile} reports {want}"), || {
        state(c, profile)["gateway_state"] == want
    });
}

/// Waits until the gateway process s6 runs for `profile` has written
/// `running` with its own pid (it then handles SIGTERM).
#[track_caller]
pub fn wait_gateway_running(c: &Container, profile: &str) -> i64 {
    let slot = format!("gateway-{profile}");
    let mut pid = 0;
    c.wait_for(WAIT, &format!("{profile}'s gateway running"), || {
        let s = svstat(c, &slot);
        let st = state(c, profile);
        pid = s.pid;
        s.up && st["gateway_state"] == "running" && st["pid"].as_i64() == Some(s.pid)
    });
    pid
}

/// The helper's audit records (`op=… profiles=… result=…`) so far: one per
/// call, its result (the `result=begun` record a call that reaches the tree
/// writes first is left out).
pub fn helper_calls(c: &Container) -> Vec<String> {
    c.syslog_records()
        .into_iter()
        .filter(|r| r.contains("hermes-s6-helper[") && !r.ends_with(" result=begun"))
        .map(|r| r.split_once("]: ").map(|(_, l)| l.to_owned()).unwrap_or(r))
        .collect()
}

/// Every operation that changes slots, each with a successful call among
/// `records`.
#[track_caller]
pub fn assert_every_operation_succeeded(records: &[String]) {
    for op in [
        "register",
        "start",
        "restart",
        "stop",
        "unregister",
        "rescan",
    ] {
        assert!(
            calls_of(records, op)
                .iter()
                .any(|r| r.ends_with(" result=ok")),
            "no successful {op}: {records:#?}"
        );
    }
}

/// Helper records whose operation is `op`.
pub fn calls_of(records: &[String], op: &str) -> Vec<String> {
    let needle = format!(" op={op} ");
    records
        .iter()
        .filter(|r| r.contains(&needle))
        .cloned()
        .collect()
}

/// Every entry under the scan dir with its type, owner, group and mode
/// (see `hermes_s6_emu::scan_tree`).
pub fn tree(c: &Container) -> BTreeMap<String, String> {
    hermes_s6_emu::scan_tree(c, false)
}

/// Invariant I1 after any command: nothing under the scan dir is owned by
/// hermes, and nothing is writable by group or other, except s6's own
/// `event/` FIFO directories (root group, sticky, setgid).
#[track_caller]
/// One of s6-overlay's own root-owned links from the scan dir to its s6-rc
/// service directories (`main-hermes`, `dashboard`, ...): the only symbolic
/// links a real container's scan dir holds.
pub fn overlay_link(path: &str, description: &str) -> bool {
    let name = path.trim_start_matches('/');
    description.starts_with("link 0:0 ")
        && (hermes_s6_emu::S6RC_SERVICES
            .iter()
            .any(|(service, _)| *service == name)
            || hermes_s6_emu::IMAGE_LONGRUNS.contains(&name))
}

pub fn assert_root_owns_the_tree(c: &Container) {
    let hermes = c.uid(User::Hermes);
    for (path, description) in tree(c) {
        let fields: Vec<&str> = description.split(' ').collect();
        let (uid, gid) = fields[1].split_once(':').unwrap();
        let mode = u32::from_str_radix(fields[2], 8).unwrap();
        assert_ne!(
            uid,
            hermes.to_string(),
            "{path} is owned by hermes: {description}"
        );
        if overlay_link(&path, &description) {
            continue;
        }
        assert_ne!(fields[0], "link", "{path} is a symlink");
        if path.ends_with("/event") {
            assert_eq!((uid, gid), ("0", "0"), "{path}: {description}");
            continue;
        }
        assert_eq!(
            mode & 0o022,
            0,
            "{path} is writable by group or other: {description}"
        );
    }
}

// ---------------------------------------------------------------------------
// Schema checks (SCHEMA.md), field by field.

fn is_iso8601_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 20
            && s.ends_with('Z')
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && s.as_bytes()[13] == b':'
    })
}

fn is_tai64n_label(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 25 && s.starts_with('@') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[track_caller]
fn expect_keys(object: &Value, keys: &[&str], what: &str) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {object}"));
    let mut have: Vec<&str> = map.keys().map(String::as_str).collect();
    have.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(have, want, "{what}: fields");
}

fn null_or<F: Fn(&Value) -> bool>(v: &Value, f: F) -> bool {
    v.is_null() || f(v)
}

/// Checks a `hermes-s6.status/1` document against SCHEMA.md.
#[track_caller]
pub fn check_status_doc(doc: &Value) {
    expect_keys(
        doc,
        &["schema", "service_manager", "generated_at", "gateways"],
        "status document",
    );
    assert_eq!(doc["schema"], "hermes-s6.status/1");
    assert!(
        ["s6", "systemd", "launchd", "windows", "none"]
            .contains(&doc["service_manager"].as_str().unwrap()),
        "{}",
        doc["service_manager"]
    );
    assert!(
        is_iso8601_utc(&doc["generated_at"]),
        "{}",
        doc["generated_at"]
    );
    let gateways = doc["gateways"].as_array().expect("gateways is an array");
    let profiles: Vec<&str> = gateways
        .iter()
        .map(|g| g["profile"].as_str().unwrap())
        .collect();
    let mut sorted = profiles.clone();
    sorted.sort_unstable();
    assert_eq!(profiles, sorted, "gateways sorted by profile");
    for g in gateways {
        check_gateway(g);
    }
}

#[track_caller]
fn check_gateway(g: &Value) {
    expect_keys(
        g,
        &[
            "profile",
            "service",
            "state",
            "registered",
            "supervised",
            "process",
            "restarts",
            "desired_state",
            "desired_state_updated_at",
            "gateway_state",
            "log",
            "crash_loop",
            "problems",
        ],
        "gateway",
    );
    let profile = g["profile"].as_str().expect("profile is a string");
    assert_eq!(g["service"], format!("gateway-{profile}"));
    let state = g["state"].as_str().unwrap();
    assert!(
        [
            "up",
            "down",
            "finishing",
            "unsupervised",
            "unregistered",
            "unknown"
        ]
        .contains(&state),
        "{state}"
    );
    assert!(g["registered"].is_boolean() && g["supervised"].is_boolean());
    assert!(null_or(&g["restarts"], Value::is_u64));
    for key in ["desired_state", "gateway_state"] {
        assert!(null_or(&g[key], Value::is_string), "{key}: {}", g[key]);
    }
    assert!(null_or(&g["desired_state_updated_at"], Value::is_number));
    assert_eq!(
        g["log"],
        format!("/opt/data/logs/gateways/{profile}/current")
    );
    assert!(
        g["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    if !g["crash_loop"].is_null() {
        let cl = &g["crash_loop"];
        expect_keys(cl, &["record", "last_exit", "at"], "crash_loop");
        assert!(cl["record"].is_string());
        assert!(null_or(&cl["last_exit"], Value::is_u64));
        assert!(null_or(&cl["at"], Value::is_u64));
    }
    // Consistency between the fields.
    match state {
        "unregistered" => assert_eq!(g["registered"], false),
        "unsupervised" => {
            assert_eq!(g["registered"], true);
            assert_eq!(g["supervised"], false);
            assert!(g["process"].is_null());
        }
        "up" | "down" | "finishing" => {
            assert_eq!(g["registered"], true);
            assert_eq!(g["supervised"], true);
        }
        _ => {}
    }
    let p = &g["process"];
    if p.is_null() {
        return;
    }
    expect_keys(
        p,
        &[
            "up",
            "pid",
            "want_up",
            "normally_up",
            "ready",
            "paused",
            "finishing",
            "never_started",
            "since",
            "since_tai64n",
            "seconds",
            "ready_since_tai64n",
            "ready_seconds",
            "last_exit",
            "pgid",
        ],
        "process",
    );
    for key in [
        "up",
        "want_up",
        "normally_up",
        "ready",
        "paused",
        "finishing",
        "never_started",
    ] {
        assert!(p[key].is_boolean(), "{key}");
    }
    assert!(null_or(&p["pid"], Value::is_u64));
    assert_eq!(
        p["up"].as_bool(),
        Some(!p["pid"].is_null()),
        "pid only while up"
    );
    assert_eq!(p["up"].as_bool(), Some(state == "up"));
    assert!(null_or(&p["since"], is_iso8601_utc));
    assert!(is_tai64n_label(&p["since_tai64n"]) && is_tai64n_label(&p["ready_since_tai64n"]));
    assert!(p["seconds"].is_u64() && p["ready_seconds"].is_u64());
    assert!(null_or(&p["pgid"], Value::is_u64));
    let last_exit = &p["last_exit"];
    if !last_exit.is_null() {
        expect_keys(
            last_exit,
            &["exit_code", "signal", "signal_name"],
            "last_exit",
        );
        let exited = last_exit["exit_code"].is_u64();
        let signaled = last_exit["signal"].is_u64();
        assert!(exited != signaled, "{last_exit}");
        if exited {
            assert!(last_exit["signal_name"].is_null());
        } else {
            assert!(
                last_exit["signal_name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("SIG"))
            );
        }
    }
}

/// Checks a `hermes-s6.reconcile/1` document against SCHEMA.md.
#[track_caller]
pub fn check_reconcile_doc(doc: &Value) {
    expect_keys(
        doc,
        &[
            "schema",
            "dry_run",
            "mode",
            "generated_at",
            "hermes_home",
            "container_command",
            "multiplex",
            "multiplex_source",
            "root_state_seeded",
            "profiles",
            "skipped",
            "ignored",
            "other_slots",
            "helper_calls",
            "boot_log",
            "warnings",
            "error",
        ],
        "reconcile document",
    );
    assert_eq!(doc["schema"], "hermes-s6.reconcile/1");
    assert!(doc["dry_run"].is_boolean() && doc["multiplex"].is_boolean());
    assert!(doc["root_state_seeded"].is_boolean());
    assert!(["reconcile", "dashboard_only"].contains(&doc["mode"].as_str().unwrap()));
    assert!(is_iso8601_utc(&doc["generated_at"]));
    assert!(doc["hermes_home"].is_string());
    assert!(null_or(&doc["container_command"], |v| v
        .as_array()
        .is_some_and(|a| a.iter().all(Value::is_string))));
    assert!(null_or(&doc["boot_log"], Value::is_string));
    assert!(null_or(&doc["error"], Value::is_string));
    for key in ["warnings", "other_slots"] {
        assert!(
            doc[key].as_array().unwrap().iter().all(Value::is_string),
            "{key}"
        );
    }
    for s in doc["skipped"].as_array().unwrap() {
        expect_keys(s, &["entry", "reason", "message"], "skipped");
        assert!(
            ["reserved_name", "invalid_name", "symlink", "unreadable"]
                .contains(&s["reason"].as_str().unwrap())
        );
    }
    for i in doc["ignored"].as_array().unwrap() {
        expect_keys(i, &["entry", "why"], "ignored");
    }
    for call in doc["helper_calls"].as_array().unwrap() {
        expect_keys(call, &["op", "profiles", "result"], "helper call");
        assert!(["register", "start", "rescan"].contains(&call["op"].as_str().unwrap()));
        assert!(call["profiles"].is_u64());
        assert!(["ok", "partial", "failed"].contains(&call["result"].as_str().unwrap()));
    }
    let profiles = doc["profiles"].as_array().unwrap();
    if doc["mode"] == "reconcile" {
        assert_eq!(profiles[0]["profile"], "default", "default first");
    }
    for p in profiles {
        expect_keys(
            p,
            &[
                "profile",
                "service",
                "home",
                "state_file",
                "prior_state",
                "desired_state",
                "intent",
                "intent_source",
                "prior_exit",
                "action",
                "already_registered",
                "left_out",
                "already_up",
                "stale_files_removed",
                "notes",
                "problems",
            ],
            "reconciled profile",
        );
        assert!(null_or(&p["left_out"], Value::is_string));
        if p["left_out"].is_string() {
            assert_eq!(p["action"], "skipped", "{p}");
        }
        let name = p["profile"].as_str().unwrap();
        assert_eq!(p["service"], format!("gateway-{name}"));
        assert_eq!(p["home"], home_of(name));
        assert!(["present", "missing", "unusable"].contains(&p["state_file"].as_str().unwrap()));
        assert!(null_or(&p["prior_state"], Value::is_string));
        assert!(null_or(&p["desired_state"], Value::is_string));
        assert!(["running", "stopped"].contains(&p["intent"].as_str().unwrap()));
        assert!(
            [
                "desired_state",
                "gateway_state",
                "seeded",
                "none",
                "unusable"
            ]
            .contains(&p["intent_source"].as_str().unwrap())
        );
        assert!(["clean", "unclean", "unknown"].contains(&p["prior_exit"].as_str().unwrap()));
        assert!(["started", "registered", "skipped"].contains(&p["action"].as_str().unwrap()));
        assert!(p["already_registered"].is_boolean() && p["already_up"].is_boolean());
        for key in ["stale_files_removed", "notes", "problems"] {
            assert!(
                p[key].as_array().unwrap().iter().all(Value::is_string),
                "{key}"
            );
        }
    }
}
