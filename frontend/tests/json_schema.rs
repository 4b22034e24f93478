//! Every command's `--json` document, printed for real in the container
//! emulation, checked against `SCHEMA.md`: each schema's required fields
//! and their types (the tables of `SCHEMA.md`, restated below), and no
//! field that its section of `SCHEMA.md` does not name. A control
//! document's `exit_code` is the process's exit status and its first
//! failure's code.

mod common;
use common::*;

use serde_json::Value;

const SCHEMA_MD: &str = include_str!("../SCHEMA.md");

/// `(path, types)`: `a.b` is a field of an object, `a[]` every element of
/// an array; `types` are `|`-separated JSON types (`string`, `integer`,
/// `number`, `bool`, `array`, `object`, `null`). A field under a null
/// parent is not required.
type Rules = &'static [(&'static str, &'static str)];

const CONTROL: Rules = &[
    ("schema", "string"),
    ("action", "string"),
    ("results", "array"),
    ("results[].profile", "string"),
    ("results[].service", "string"),
    ("results[].outcome", "string"),
    ("results[].exit_code", "integer"),
    ("results[].message", "string"),
    ("exit_code", "integer"),
];

const PROFILES: Rules = &[
    ("schema", "string"),
    ("service_manager", "string"),
    ("profiles", "array"),
    ("profiles[]", "string"),
];

const INFO: Rules = &[
    ("schema", "string"),
    ("service_manager", "string"),
    ("control_mode", "string|null"),
    ("control_reason", "string|null"),
    ("runtime_registration", "bool"),
    ("versions", "object"),
    ("versions.cli", "string"),
    ("versions.helper", "string|null"),
    ("versions.s6", "string|null"),
    ("scan_dir", "object|null"),
    ("scan_dir.path", "string"),
    ("scan_dir.services", "integer|null"),
    ("scan_dir.limit", "integer|null"),
];

const STATUS: Rules = &[
    ("schema", "string"),
    ("service_manager", "string"),
    ("generated_at", "string"),
    ("gateways", "array"),
    ("gateways[].profile", "string"),
    ("gateways[].service", "string"),
    ("gateways[].state", "string"),
    ("gateways[].registered", "bool"),
    ("gateways[].supervised", "bool"),
    ("gateways[].process", "object|null"),
    ("gateways[].process.up", "bool"),
    ("gateways[].process.pid", "integer|null"),
    ("gateways[].process.want_up", "bool"),
    ("gateways[].process.normally_up", "bool"),
    ("gateways[].process.ready", "bool"),
    ("gateways[].process.paused", "bool"),
    ("gateways[].process.finishing", "bool"),
    ("gateways[].process.since", "string|null"),
    ("gateways[].process.since_tai64n", "string"),
    ("gateways[].process.seconds", "integer"),
    ("gateways[].process.ready_since_tai64n", "string"),
    ("gateways[].process.ready_seconds", "integer"),
    ("gateways[].process.last_exit", "object|null"),
    ("gateways[].process.last_exit.exit_code", "integer|null"),
    ("gateways[].process.last_exit.signal", "integer|null"),
    ("gateways[].process.last_exit.signal_name", "string|null"),
    ("gateways[].process.pgid", "integer|null"),
    ("gateways[].restarts", "integer|null"),
    ("gateways[].desired_state", "string|null"),
    ("gateways[].desired_state_updated_at", "number|null"),
    ("gateways[].gateway_state", "string|null"),
    ("gateways[].log", "string"),
    ("gateways[].crash_loop", "object|null"),
    ("gateways[].crash_loop.record", "string"),
    ("gateways[].crash_loop.last_exit", "integer|null"),
    ("gateways[].crash_loop.at", "integer|null"),
    ("gateways[].problems", "array"),
    ("gateways[].problems[]", "string"),
];

const RECONCILE: Rules = &[
    ("schema", "string"),
    ("dry_run", "bool"),
    ("mode", "string"),
    ("generated_at", "string"),
    ("hermes_home", "string"),
    ("container_command", "array|null"),
    ("container_command[]", "string"),
    ("multiplex", "bool"),
    ("root_state_seeded", "bool"),
    ("profiles", "array"),
    ("profiles[].profile", "string"),
    ("profiles[].service", "string"),
    ("profiles[].home", "string"),
    ("profiles[].state_file", "string"),
    ("profiles[].prior_state", "string|null"),
    ("profiles[].desired_state", "string|null"),
    ("profiles[].intent", "string"),
    ("profiles[].intent_source", "string"),
    ("profiles[].prior_exit", "string"),
    ("profiles[].action", "string"),
    ("profiles[].already_registered", "bool"),
    ("profiles[].already_up", "bool"),
    ("profiles[].stale_files_removed", "array"),
    ("profiles[].stale_files_removed[]", "string"),
    ("profiles[].notes", "array"),
    ("profiles[].notes[]", "string"),
    ("profiles[].problems", "array"),
    ("profiles[].problems[]", "string"),
    ("skipped", "array"),
    ("skipped[].entry", "string"),
    ("skipped[].reason", "string"),
    ("skipped[].message", "string"),
    ("ignored", "array"),
    ("ignored[].entry", "string"),
    ("ignored[].why", "string"),
    ("other_slots", "array"),
    ("other_slots[]", "string"),
    ("helper_calls", "array"),
    ("helper_calls[].op", "string"),
    ("helper_calls[].profiles", "integer"),
    ("helper_calls[].result", "string"),
    ("boot_log", "string|null"),
    ("warnings", "array"),
    ("warnings[]", "string"),
    ("error", "string|null"),
];

const DOCTOR: Rules = &[
    ("schema", "string"),
    ("generated_at", "string"),
    ("service_manager", "string"),
    ("control_mode", "string|null"),
    ("services", "object|null"),
    ("services.main_hermes", "string"),
    ("services.dashboard", "string"),
    ("services.gateways", "integer"),
    ("services.gateways_up", "integer"),
    ("checks", "array"),
    ("checks[].id", "string"),
    ("checks[].name", "string"),
    ("checks[].verdict", "string"),
    ("checks[].profile", "string|null"),
    ("checks[].detail", "string"),
    ("checks[].fix", "string|null"),
    ("summary", "object"),
    ("summary.ok", "integer"),
    ("summary.warn", "integer"),
    ("summary.fail", "integer"),
];

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(value: &Value, types: &str) -> bool {
    let actual = type_of(value);
    types
        .split('|')
        .any(|t| t == actual || (t == "number" && actual == "integer"))
}

/// The values at `path` (every element for `[]`), with where each is.
fn select<'a>(doc: &'a Value, path: &str) -> Result<Vec<(String, &'a Value)>, String> {
    let mut current = vec![(String::new(), doc)];
    for step in path.split('.') {
        let (key, each) = match step.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (step, false),
        };
        let mut next = Vec::new();
        for (at, value) in current {
            let value = if key.is_empty() {
                value
            } else {
                match value {
                    // A null parent: the fields below it are absent.
                    Value::Null => continue,
                    Value::Object(map) => match map.get(key) {
                        Some(v) => v,
                        None => return Err(format!("{at}: no field `{key}`")),
                    },
                    other => return Err(format!("{at}: not an object: {other}")),
                }
            };
            let at = if key.is_empty() {
                at
            } else if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            };
            if each {
                match value {
                    Value::Array(items) => next.extend(
                        items
                            .iter()
                            .enumerate()
                            .map(|(n, v)| (format!("{at}[{n}]"), v)),
                    ),
                    Value::Null => {}
                    other => return Err(format!("{at}: not an array: {other}")),
                }
            } else {
                next.push((at, value));
            }
        }
        current = next;
    }
    Ok(current)
}

/// The section of SCHEMA.md about `schema`: from its heading to the next.
fn section(schema: &str) -> &'static str {
    let start = SCHEMA_MD
        .find(&format!("## `{schema}`"))
        .unwrap_or_else(|| panic!("SCHEMA.md has no section for {schema}"));
    let rest = &SCHEMA_MD[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e);
    &rest[..end]
}

/// Every object key in `value`, recursively.
fn keys(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                into.push(key.clone());
                keys(v, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, into)),
        _ => {}
    }
}

/// Checks `doc` against `rules` and the section of SCHEMA.md its schema
/// names; returns the document.
#[track_caller]
fn check(out: &Output, schema: &str, rules: Rules) -> Value {
    let doc: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not a JSON document ({e}): {out:?}"));
    assert_eq!(doc["schema"], schema, "{out:?}");
    for (path, types) in rules {
        let found = select(&doc, path).unwrap_or_else(|e| panic!("{schema}: {e}\n{doc:#}"));
        for (at, value) in found {
            assert!(
                type_matches(value, types),
                "{schema}: {at} is {} ({value}), SCHEMA.md says {types}\n{doc:#}",
                type_of(value)
            );
        }
    }
    let text = section(schema);
    let mut all = Vec::new();
    keys(&doc, &mut all);
    for key in all {
        assert!(
            text.contains(&format!("`{key}`")) || text.contains(&format!("\"{key}\"")),
            "{schema}: field `{key}` is not described in SCHEMA.md\n{doc:#}"
        );
    }
    doc
}

/// A control document: checked, and its exit code is the process's and
/// the first failure's.
#[track_caller]
fn control(c: &Container, args: &[&str], action: &str, code: i32) -> Value {
    let out = hs6(c, args);
    out.assert_code(code);
    let doc = check(&out, "hermes-s6.control/1", CONTROL);
    assert_eq!(doc["action"], action, "{out:?}");
    assert_eq!(doc["exit_code"], code, "{out:?}");
    let results = doc["results"].as_array().unwrap();
    let first_failure = results
        .iter()
        .map(|r| r["exit_code"].as_i64().unwrap())
        .find(|&c| c != 0);
    if let Some(first) = first_failure {
        assert_eq!(i64::from(code), first, "{out:?}");
    }
    for result in results {
        let failed = result["exit_code"] != 0;
        assert_eq!(
            result["outcome"],
            if failed { "failed" } else { "done" },
            "{result}"
        );
        assert_eq!(
            result["service"],
            format!("gateway-{}", result["profile"].as_str().unwrap())
        );
    }
    doc
}

#[test]
fn every_document_matches_schema_md() {
    let Some(c) = boot("every_document_matches_schema_md") else {
        return;
    };
    profiles(&c, &["alpha", "beta"]);

    // The boot reconciler's report, planned then done.
    let out = hs6(&c, &["reconcile", "--dry-run", "--json"]);
    out.assert_success();
    check(&out, "hermes-s6.reconcile/1", RECONCILE);
    let out = hs6(&c, &["reconcile", "--json"]);
    out.assert_success();
    let doc = check(&out, "hermes-s6.reconcile/1", RECONCILE);
    assert_eq!(doc["profiles"].as_array().unwrap().len(), 3, "{doc:#}");

    // Register, control, unregister: one result each.
    let doc = control(
        &c,
        &["profile", "unregister", "beta", "--json"],
        "unregister",
        0,
    );
    assert_eq!(doc["results"][0]["message"], "unregistered");
    let doc = control(
        &c,
        &["profile", "register", "beta", "--down", "--json"],
        "register",
        0,
    );
    assert_eq!(doc["results"][0]["message"], "registered (down)");
    let doc = control(
        &c,
        &["profile", "register", "beta", "--json"],
        "register",
        73,
    );
    assert_eq!(doc["results"][0]["profile"], "beta");
    let doc = control(
        &c,
        &["profile", "register", "Bad", "--json"],
        "register",
        65,
    );
    assert_eq!(doc["results"], Value::Array(Vec::new()));
    let doc = control(
        &c,
        &["gateway", "start", "-p", "beta", "--json"],
        "start",
        0,
    );
    assert_eq!(doc["results"][0]["message"], "started");
    wait_up(&c, "gateway-beta");
    control(
        &c,
        &["gateway", "restart", "-p", "beta", "--json"],
        "restart",
        0,
    );
    let doc = control(&c, &["gateway", "stop", "--all", "--json"], "stop", 0);
    let stopped: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(stopped, ["alpha", "beta", "default"]);
    let doc = control(
        &c,
        &["gateway", "start", "-p", "typo", "--json"],
        "start",
        66,
    );
    assert_eq!(
        doc["results"][0]["message"],
        "no such gateway 'typo': register it with `hermes profile create typo` first, or pass an existing profile name via `-p <name>`"
    );
    control(
        &c,
        &["profile", "unregister", "alpha", "--json"],
        "unregister",
        0,
    );
    control(
        &c,
        &["gateway", "stop", "-p", "alpha", "--json"],
        "stop",
        66,
    );
    control(
        &c,
        &["gateway", "restart", "-p", "alpha", "--json"],
        "restart",
        66,
    );

    // Status, the profile list, info, doctor.
    for args in [
        &["gateway", "status", "--all", "--json"][..],
        &["gateway", "status", "-p", "beta", "--json"],
        &["gateway", "status", "-p", "alpha", "--json"],
    ] {
        let out = hs6(&c, args);
        out.assert_success();
        check(&out, "hermes-s6.status/1", STATUS);
    }
    let out = hs6(&c, &["profile", "list", "--json"]);
    out.assert_success();
    let doc = check(&out, "hermes-s6.profiles/1", PROFILES);
    assert_eq!(doc["profiles"], serde_json::json!(["beta", "default"]));
    assert_eq!(ok(&c, &["profile", "list"]).stdout, "beta\ndefault\n");

    let out = hs6(&c, &["info", "--json"]);
    out.assert_success();
    let doc = check(&out, "hermes-s6.info/1", INFO);
    assert_eq!(doc["service_manager"], "s6");
    assert_eq!(doc["control_mode"], "setuid");
    assert_eq!(doc["runtime_registration"], true);
    assert_eq!(doc["versions"]["helper"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["versions"]["cli"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["scan_dir"]["path"], "/run/service");
    // s6-svscan's count: every non-dot directory, and every logger.
    let counted = sh_ok(
        &c,
        User::Root,
        "n=0; for d in /run/service/*; do [ -d \"$d\" ] || continue; n=$((n+1)); \
         [ -d \"$d/log\" ] && n=$((n+1)); done; echo $n",
    );
    assert_eq!(
        doc["scan_dir"]["services"].to_string(),
        counted.trim(),
        "{doc:#}"
    );
    let text = ok(&c, &["info"]).stdout;
    assert!(text.lines().all(|l| l.contains(": ")), "{text}");
    assert!(text.contains("runtime_registration: yes\n"), "{text}");

    let out = hs6(&c, &["doctor", "--json"]);
    let doc = check(&out, "hermes-s6.doctor/1", DOCTOR);
    assert_eq!(
        out.code,
        Some(i32::from(doc["summary"]["fail"] != 0)),
        "{out:?}"
    );
}

#[test]
fn the_checker_catches_what_it_should() {
    let doc: Value = serde_json::json!({"schema": "x", "a": [{"b": 1}, {"b": null}], "c": null});
    assert!(select(&doc, "a[].b").is_ok());
    assert!(select(&doc, "c.d").unwrap().is_empty(), "null parent");
    assert!(select(&doc, "a[].e").is_err());
    assert!(type_matches(&serde_json::json!(1), "number"));
    assert!(!type_matches(&serde_json::json!(1.5), "integer"));
    assert!(!type_matches(&Value::Null, "string"));
    let mut all = Vec::new();
    keys(&doc, &mut all);
    assert_eq!(all, ["schema", "a", "b", "b", "c"]);
    assert!(section("hermes-s6.control/1").contains("`exit_code`"));
}
