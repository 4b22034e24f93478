//! The command line end to end, in process, against a scratch scan
//! directory and a stand-in helper script that records its calls.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

struct Scratch {
    dir: tempfile::TempDir,
    context: Context,
    /// `supervisor-lock`, write-locked: a slot whose `supervise/lock`
    /// leads here looks supervised.
    _supervisor: std::fs::File,
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
        config.control_mode = Some(crate::vocabulary::ControlMode::Setuid);
        // Run as root, the reconciler acts as this user on the volume: the
        // scratch tree is the test user's own.
        config.hermes_user = "root".to_owned();
        std::fs::create_dir_all(&config.hermes_home).unwrap();
        std::fs::create_dir_all(&config.scan_dir).unwrap();
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncat >> '{stdin}'\n{helper_body}\n",
            log = root.join("calls").display(),
            stdin = root.join("stdin").display(),
        );
        std::fs::write(&config.helper, script).unwrap();
        std::fs::set_permissions(&config.helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let supervisor = std::fs::File::create(root.join("supervisor-lock")).unwrap();
        // An open-file-description lock: visible to F_GETLK from this process.
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as nix::libc::c_short,
            l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        nix::fcntl::fcntl(&supervisor, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).unwrap();
        Self {
            _supervisor: supervisor,
            dir,
            context: Context {
                config,
                service_manager: ServiceManagerKind::S6,
                style: Style::default(),
                read_env_payload: || Ok(ExtraEnv::empty()),
                env: |_| None,
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

    /// The profile's slot, with an s6-supervise on it.
    fn supervised_slot(&self, profile: &str) -> PathBuf {
        let slot = self.slot(profile);
        std::fs::create_dir_all(slot.join("supervise")).unwrap();
        std::os::unix::fs::symlink(
            self.root().join("supervisor-lock"),
            slot.join("supervise/lock"),
        )
        .unwrap();
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
fn reconcile_dry_run_changes_nothing_and_runs_no_helper() {
    let s = Scratch::new("exit 0");
    let home = s.real_profile("work");
    std::fs::write(
        home.join("gateway_state.json"),
        r#"{"desired_state":"running"}"#,
    )
    .unwrap();
    std::fs::write(home.join("gateway.pid"), "42").unwrap();
    let (code, out, err) = s.run(&["reconcile", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("work: would start (desired_state running; would remove gateway.pid)"),
        "{out}"
    );
    assert!(
        out.contains("default: would register down (no recorded state)"),
        "{out}"
    );
    assert!(out.ends_with("(dry run: nothing changed)\n"), "{out}");
    assert!(s.calls().is_empty());
    assert!(home.join("gateway.pid").exists());
    assert!(!s.context.config.hermes_home.join("logs").exists());
}

#[test]
fn reconcile_makes_one_helper_call_per_step() {
    let s = Scratch::new("exit 0");
    for name in ["b", "a", "c"] {
        s.real_profile(name);
    }
    std::fs::write(
        s.context
            .config
            .hermes_home
            .join("profiles/b/gateway_state.json"),
        r#"{"gateway_state":"degraded"}"#,
    )
    .unwrap();
    // The gateway's lifecycle ledger says its last life never ended cleanly.
    let ledger = s.context.config.hermes_home.join("profiles/b/state");
    std::fs::create_dir(&ledger).unwrap();
    std::fs::write(
        ledger.join("gateway.lifecycle.json"),
        r#"{"phase": "running", "pid": 7}"#,
    )
    .unwrap();
    let (code, out, err) = s.run(&["reconcile", "--container-command", "gateway run"]);
    assert_eq!(code, 0, "{out}{err}");
    // `start` reaches slots registered by this run: the helper rescans as
    // part of it, so no separate rescan follows.
    assert_eq!(s.calls(), ["register default a b c", "start default b"]);
    assert!(out.contains("root gateway seeded running"), "{out}");
    let log = std::fs::read_to_string(s.context.config.hermes_home.join("logs/container-boot.log"))
        .unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(
        log.lines()
            .nth(2)
            .unwrap()
            .ends_with(" profile=b prior_state=running action=started prior_exit=unclean"),
        "{log}"
    );
    // Upstream's stamp: local time, `%Y-%m-%dT%H:%M:%S%z`.
    let stamp = log.split(' ').next().unwrap();
    assert_eq!(stamp.len(), 24, "{stamp}");
    assert!(
        stamp.as_bytes()[10] == b'T' && matches!(stamp.as_bytes()[19], b'+' | b'-'),
        "{stamp}"
    );
    assert!(
        log.starts_with(&format!(
            "{stamp} profile=default prior_state=running action=started "
        )),
        "{log}"
    );

    // Slots that exist are not registered again.
    s.slot("default");
    s.slot("a");
    let (code, _, err) = s.run(&["reconcile"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.calls()[2..], ["register b c", "start default b"]);
}

#[test]
fn reconcile_takes_already_registered_slots_and_per_profile_refusals_in_its_stride() {
    // The helper, racing another registration, finds a and b registered and
    // refuses c as unsafe; the boot goes on.
    let s = Scratch::new(
        r#"case "$1" in
register)
    echo 'hermes-s6-helper: register a: slot already exists; nothing changed' >&2
    echo 'hermes-s6-helper: register b: slot already exists; nothing changed' >&2
    echo 'hermes-s6-helper: register c: supervise is a symlink; nothing changed' >&2
    exit 73 ;;
esac
exit 0"#,
    );
    for name in ["a", "b", "c"] {
        let home = s.real_profile(name);
        std::fs::write(
            home.join("gateway_state.json"),
            r#"{"desired_state":"running"}"#,
        )
        .unwrap();
    }
    let (code, out, err) = s.run(&["reconcile", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.calls(), ["register default a b c", "start a b", "rescan"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let profile = |i: usize| &doc["profiles"][i];
    assert_eq!(profile(1)["already_registered"], true);
    assert_eq!(profile(1)["action"], "started");
    assert_eq!(profile(2)["already_registered"], true);
    assert_eq!(profile(3)["action"], "skipped");
    assert!(
        profile(3)["problems"][0]
            .as_str()
            .unwrap()
            .contains("supervise is a symlink"),
        "{doc:#}"
    );
    assert_eq!(doc["helper_calls"][0]["result"], "partial");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("hermes-s6: c: not registered: "), "{err}");
    let log = std::fs::read_to_string(s.context.config.hermes_home.join("logs/container-boot.log"))
        .unwrap();
    assert!(
        log.lines()
            .nth(3)
            .unwrap()
            .ends_with(" profile=c prior_state=running action=skipped prior_exit=unknown"),
        "{log}"
    );
}

#[test]
fn reconcile_fails_when_the_helper_cannot_act() {
    let s = Scratch::new(
        "echo 'hermes-s6-helper: register: s6-svscan is not running: no reader on .s6-svscan/control' >&2; exit 69",
    );
    // `work` has a slot already and wants to run; it is not started.
    s.slot("work");
    let home = s.real_profile("work");
    std::fs::write(
        home.join("gateway_state.json"),
        r#"{"desired_state":"running"}"#,
    )
    .unwrap();
    let (code, out, err) = s.run(&["reconcile", "--json"]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("s6-svscan is not running"), "{err}");
    assert_eq!(err.lines().count(), 1, "reported once: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema"], "hermes-s6.reconcile/1");
    assert!(doc["error"].as_str().unwrap().contains("s6-svscan"));
    assert_eq!(doc["profiles"][0]["action"], "skipped");
    assert_eq!(doc["profiles"][1]["action"], "registered");
    assert_eq!(doc["helper_calls"][0]["result"], "failed");
    assert_eq!(s.calls(), ["register default"]);
    // The boot log says what happened.
    let log = std::fs::read_to_string(s.context.config.hermes_home.join("logs/container-boot.log"))
        .unwrap();
    assert!(
        log.contains(" profile=default prior_state=None action=skipped "),
        "{log}"
    );
    assert!(
        log.contains(" profile=work prior_state=running action=registered "),
        "{log}"
    );
}

#[test]
fn reconcile_in_a_dashboard_container_does_nothing() {
    let s = Scratch::new("exit 0");
    s.real_profile("work");
    let (code, out, _) = s.run(&["reconcile", "--container-command", "dashboard"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "dashboard-only container: gateway slots are not reconciled\n"
    );
    assert!(s.calls().is_empty());
}

#[test]
fn start_calls_the_helper_once_and_records_intent() {
    let s = Scratch::new("exit 0");
    s.supervised_slot("work");
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
    s.supervised_slot("default");
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
    // The stand-in registers the slot; the rescan has a supervisor take it.
    let s = Scratch::new(
        r#"slot="$(dirname "$0")/service/gateway-fresh"
if [ "$1" = register ]; then mkdir -p "$slot/supervise"; fi
if [ "$1" = rescan ]; then ln -s ../../../supervisor-lock "$slot/supervise/lock"; fi"#,
    );
    s.real_profile("fresh");
    let (code, out, err) = s.run(&["gateway", "start", "-p", "fresh"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "fresh: started\n");
    assert_eq!(s.calls(), ["register fresh", "start fresh", "rescan"]);
}

#[test]
fn a_start_that_no_supervisor_takes_up_fails_saying_so() {
    let s = Scratch::new("exit 0");
    s.supervised_slot("a");
    s.slot("b");
    let (code, out, err) = s.run(&["gateway", "start", "--all"]);
    assert_eq!(s.calls(), ["start a b"]);
    assert_eq!((code, out.as_str()), (69, "a: started\n"));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no s6-supervise took gateway 'b'"), "{err}");
    assert!(err.contains("restart the container"), "{err}");
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
    let checks = doc["checks"].as_array().unwrap();
    let helper = checks
        .iter()
        .find(|c| c["id"] == "helper.permissions")
        .unwrap();
    assert_eq!(helper["verdict"], "fail");
    assert!(
        helper["detail"]
            .as_str()
            .unwrap()
            .contains("the setuid bit is missing"),
        "{helper}"
    );
    assert!(helper["fix"].as_str().unwrap().contains("chmod 4750"));
    assert_eq!(doc["control_mode"], "setuid");
    assert!(doc["summary"]["fail"].as_u64().unwrap() > 0);
    // Every problem says what to do.
    for check in checks {
        assert_eq!(check["verdict"] == "ok", check["fix"].is_null(), "{check}");
    }
    let (code, out, _) = s.run(&["doctor"]);
    assert_eq!(code, 1);
    assert!(out.contains("fail  helper permissions: "), "{out}");
    assert!(out.contains("      fix: "), "{out}");
}

#[test]
fn watch_needs_a_terminal_and_conflicts_with_json() {
    let s = Scratch::new("exit 0");
    let (code, out, err) = s.run(&["gateway", "status", "--all", "--watch"]);
    assert_eq!((code, out.as_str()), (64, ""));
    assert!(
        err.contains("--watch redraws the table in place and needs a terminal"),
        "{err}"
    );
    let (code, _, err) = s.run(&["gateway", "status", "--watch", "--json"]);
    assert_eq!(code, 64);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let s = Scratch::new("exit 0");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = s.run(&["generate", "completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("gateway") && out.contains("doctor"),
            "{shell}: {out}"
        );
        // The hidden command stays hidden.
        assert!(!out.contains("generate"), "{shell}");
        if shell == "bash" {
            let script = s.root().join("completion.bash");
            std::fs::write(&script, &out).unwrap();
            let syntax = std::process::Command::new("bash")
                .arg("-n")
                .arg(&script)
                .status()
                .unwrap();
            assert!(syntax.success(), "bash -n on the completions");
        }
    }
    let (code, out, _) = s.run(&["generate", "man"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(".ie") || out.contains(".TH hermes-s6 1"),
        "{out}"
    );
    assert!(
        out.contains("gateway") && out.contains("HERMES_HOME"),
        "{out}"
    );
    let (code, _, _) = s.run(&["generate", "completions", "tcsh"]);
    assert_eq!(code, 64);
    // Not listed in the help either.
    let (_, help, _) = s.run(&["--help"]);
    assert!(!help.contains("generate"), "{help}");
}
