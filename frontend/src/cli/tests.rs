//! The command line end to end, in process, against a scratch scan
//! directory and a stand-in helper script that records its calls.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

struct Scratch {
    dir: tempfile::TempDir,
    context: Context,
}

impl Scratch {
    /// A scratch tree; the stand-in helper runs `helper_body` (sh) after
    /// logging its arguments to `calls` and its stdin to `stdin`.
    fn new(helper_body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = root.join("data");
        config.scan_dir = root.join("service");
        config.helper = root.join("helper");
        std::fs::create_dir_all(&config.hermes_home).unwrap();
        std::fs::create_dir_all(&config.scan_dir).unwrap();
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncat >> '{stdin}'\n{helper_body}\n",
            log = root.join("calls").display(),
            stdin = root.join("stdin").display(),
        );
        std::fs::write(&config.helper, script).unwrap();
        std::fs::set_permissions(&config.helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            dir,
            context: Context {
                config,
                service_manager: ServiceManagerKind::S6,
                style: Style::default(),
                read_env_payload: || Ok(ExtraEnv::empty()),
            },
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn slot(&self, profile: &str) -> PathBuf {
        let slot = self
            .context
            .config
            .scan_dir
            .join(format!("gateway-{profile}"));
        std::fs::create_dir_all(&slot).unwrap();
        slot
    }

    fn real_profile(&self, profile: &str) -> PathBuf {
        let home = self
            .context
            .config
            .hermes_home
            .join("profiles")
            .join(profile);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("SOUL.md"), "").unwrap();
        home
    }

    fn run(&self, args: &[&str]) -> (u8, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let argv = std::iter::once("hermes-s6").chain(args.iter().copied());
        let code = run(argv, &self.context, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn intent(&self, home: &Path) -> Option<String> {
        crate::state::read_state_summary(&home.join("gateway_state.json"))
            .unwrap()
            .and_then(|s| s.desired_state)
    }
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let s = Scratch::new("exit 0");
    let (code, _, err) = s.run(&["gateway", "start", "-p", "a", "--all"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, _) = s.run(&["frobnicate"]);
    assert_eq!(code, 64);
    let (code, out, _) = s.run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("gateway"));
    assert!(s.calls().is_empty());
}

#[test]
fn an_invalid_profile_name_exits_65_before_anything_runs() {
    let s = Scratch::new("exit 0");
    let (code, _, err) = s.run(&["gateway", "stop", "-p", "../etc"]);
    assert_eq!(code, 65);
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.starts_with("hermes-s6: invalid profile name '../etc'"),
        "{err}"
    );
    assert!(s.calls().is_empty());
}

#[test]
fn reconcile_is_not_implemented_yet() {
    let s = Scratch::new("exit 0");
    let (code, _, err) = s.run(&["reconcile", "--dry-run", "--json"]);
    assert_eq!(code, 70);
    assert_eq!(err, "hermes-s6: reconcile is not implemented yet\n");
}

#[test]
fn start_calls_the_helper_once_and_records_intent() {
    let s = Scratch::new("exit 0");
    s.slot("work");
    let home = s.real_profile("work");
    let (code, out, err) = s.run(&["gateway", "start", "-p", "work"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "work: started\n", "")
    );
    assert_eq!(s.calls(), ["start work"]);
    assert_eq!(s.intent(&home).as_deref(), Some("running"));
}

#[test]
fn the_default_profile_is_the_one_hermes_home_selects() {
    let s = Scratch::new("exit 0");
    s.slot("default");
    let (code, _, err) = s.run(&["gateway", "restart"]);
    assert_eq!(code, 0, "{err}");
    // Not up (no supervisor): restart wants it up.
    assert_eq!(s.calls(), ["start default"]);
    assert_eq!(
        s.intent(&s.context.config.hermes_home).as_deref(),
        Some("running")
    );

    let mut context = s.context.clone();
    context.config.active_profile = ProfileName::new("work").unwrap();
    s.slot("work");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run(
        ["hermes-s6", "gateway", "stop"],
        &context,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0);
    assert_eq!(s.calls().last().map(String::as_str), Some("stop work"));
}

#[test]
fn a_typo_is_reported_with_how_to_create_the_profile() {
    let s = Scratch::new("exit 0");
    let (code, _, err) = s.run(&["gateway", "start", "-p", "typo"]);
    assert_eq!(code, 66);
    assert_eq!(
        err,
        "hermes-s6: no such gateway 'typo': register it with `hermes profile create typo` first, or pass an existing profile name via `-p <name>`\n"
    );
    assert!(s.calls().is_empty());
    assert!(!s.context.config.scan_dir.join("gateway-typo").exists());
    let (code, _, _) = s.run(&["gateway", "status", "-p", "typo"]);
    assert_eq!(code, 66);
}

#[test]
fn a_real_profile_without_a_slot_is_registered_on_start() {
    let s = Scratch::new("exit 0");
    s.real_profile("fresh");
    let (code, out, err) = s.run(&["gateway", "start", "-p", "fresh"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "fresh: started\n");
    assert_eq!(s.calls(), ["register fresh", "start fresh", "rescan"]);
}

#[test]
fn stop_all_batches_and_reports_each_profile() {
    let s = Scratch::new(
        "if [ \"$1\" = stop ]; then echo 'hermes-s6-helper: stop b: unsafe: supervise is a symlink' >&2; exit 78; fi",
    );
    for p in ["b", "a", "default"] {
        s.slot(p);
    }
    let (code, out, err) = s.run(&["gateway", "stop", "--all"]);
    assert_eq!(s.calls(), ["stop a b default"]);
    assert_eq!(code, 78);
    assert_eq!(out, "a: stopped\ndefault: stopped\n");
    assert_eq!(err.lines().count(), 1);
    assert!(err.starts_with("hermes-s6: b: the helper refused"), "{err}");
    assert!(err.contains("supervise is a symlink"), "{err}");
    assert_eq!(
        s.intent(&s.context.config.hermes_home).as_deref(),
        Some("stopped")
    );
}

#[test]
fn all_with_nothing_registered() {
    let s = Scratch::new("exit 0");
    let (code, out, _) = s.run(&["gateway", "restart", "--all"]);
    assert_eq!((code, out.as_str()), (0, "no gateways are registered\n"));
    assert!(s.calls().is_empty());
}

#[test]
fn helper_privilege_failures_say_what_to_change() {
    let s = Scratch::new(
        "echo 'hermes-s6-helper: not effectively root: no_new_privs or a nosuid mount?' >&2; exit 77",
    );
    s.slot("work");
    let (code, _, err) = s.run(&["gateway", "start", "-p", "work"]);
    assert_eq!(code, 77);
    assert_eq!(err.lines().count(), 1);
    // The stand-in is not setuid: that is what the message names.
    assert!(err.contains("is not setuid root"), "{err}");
    assert!(err.contains("mode 4750"), "{err}");
    assert!(err.contains("no_new_privs or a nosuid mount?"), "{err}");
}

#[test]
fn a_missing_helper_says_so() {
    let s = Scratch::new("exit 0");
    std::fs::remove_file(&s.context.config.helper).unwrap();
    s.slot("work");
    let (code, _, err) = s.run(&["gateway", "stop", "-p", "work"]);
    assert_eq!(code, 72);
    assert!(err.contains("is missing"), "{err}");
}

#[test]
fn register_passes_the_payload_on_stdin_and_rescans() {
    let mut s = Scratch::new("exit 0");
    s.context.read_env_payload = || ExtraEnv::new([("TELEGRAM_TOKEN", "s3cr3t")]);
    let (code, out, err) = s.run(&["profile", "register", "work", "--down"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "work: registered (down)\n");
    assert_eq!(s.calls(), ["register work", "rescan"]);
    let stdin = std::fs::read_to_string(s.root().join("stdin")).unwrap();
    assert_eq!(stdin, r#"{"TELEGRAM_TOKEN":"s3cr3t"}"#);
    // The secret never appears in argv.
    assert!(!s.calls().iter().any(|c| c.contains("s3cr3t")));

    let (code, out, _) = s.run(&["profile", "register", "other"]);
    assert_eq!((code, out.as_str()), (0, "other: registered and started\n"));
    assert_eq!(s.calls()[2..], ["register other", "start other", "rescan"]);
}

#[test]
fn register_of_an_existing_slot_passes_73_through() {
    let s =
        Scratch::new("echo 'hermes-s6-helper: register work: slot already exists' >&2; exit 73");
    let (code, _, err) = s.run(&["profile", "register", "work"]);
    assert_eq!(code, 73);
    assert!(err.contains("already registered"), "{err}");
}

#[test]
fn unregister() {
    let s = Scratch::new("exit 0");
    let (code, out, _) = s.run(&["profile", "unregister", "work"]);
    assert_eq!((code, out.as_str()), (0, "work: unregistered\n"));
    assert_eq!(s.calls(), ["unregister work"]);
}

#[test]
fn status_json_is_versioned() {
    let s = Scratch::new("exit 0");
    s.slot("work");
    let home = s.real_profile("work");
    std::fs::write(
        home.join("gateway_state.json"),
        r#"{"gateway_state":"running","desired_state":"running","updated_at":5}"#,
    )
    .unwrap();
    let (code, out, err) = s.run(&["gateway", "status", "--all", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema"], "hermes-s6.status/1");
    assert_eq!(doc["service_manager"], "s6");
    let gateway = &doc["gateways"][0];
    assert_eq!(gateway["profile"], "work");
    assert_eq!(gateway["service"], "gateway-work");
    assert_eq!(gateway["state"], "unsupervised");
    assert_eq!(gateway["registered"], true);
    assert_eq!(gateway["supervised"], false);
    assert_eq!(gateway["process"], serde_json::Value::Null);
    assert_eq!(gateway["desired_state"], "running");
    assert_eq!(gateway["gateway_state"], "running");
    assert_eq!(gateway["desired_state_updated_at"], 5);
    assert_eq!(gateway["crash_loop"], serde_json::Value::Null);
    assert!(
        gateway["log"]
            .as_str()
            .unwrap()
            .ends_with("/logs/gateways/work/current")
    );

    let (code, out, _) = s.run(&["gateway", "status", "-p", "work"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("profile=work state=unsupervised pid=- "),
        "{out}"
    );
}

#[test]
fn doctor_reports_checks() {
    let s = Scratch::new("exit 0");
    let (code, out, _) = s.run(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema"], "hermes-s6.doctor/1");
    // The stand-in helper is not setuid root.
    assert_eq!(code, 1);
    let helper = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "helper")
        .unwrap();
    assert_eq!(helper["verdict"], "fail");
}
