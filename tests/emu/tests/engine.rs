//! The shipped `docker/Dockerfile`, built and run by a real container engine
//! (podman; `docker/engine/setup` installs and configures it, and
//! `docker/engine/build` builds the image with the substitutes it names).
//!
//! These tests run only with `HERMES_ENGINE_TESTS=1` (`./check` sets it and
//! runs them once, not once per s6 version); without it, or without root,
//! or where podman cannot start a container, each says loudly that it is
//! skipped. The gateway lifecycle is driven as users do, with
//! `podman exec -u hermes`, and checked from root.

use std::process::Command;
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The container command: invocation table, stdin, terminal, statuses.
#[path = "engine/main_program.rs"]
mod main_program;

/// The shipped Kubernetes Pod specs, run by `podman kube play`.
#[path = "engine/kube.rs"]
mod kube;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const GATE: &str = "HERMES_ENGINE_TESTS";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn expect_ok(self, what: &str) -> Out {
        assert!(
            self.ok(),
            "{what}: exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn run(program: &str, args: &[&str]) -> Out {
    let out = Command::new(program)
        .args(args)
        .current_dir(REPO)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn podman(args: &[&str]) -> Out {
    run("podman", args)
}

/// The built image, or `None` (after a loud line) when no engine can run.
fn image(case: &str) -> Option<&'static str> {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let built = IMAGE.get_or_init(|| {
        if std::env::var_os(GATE).is_none_or(|v| v != "1") {
            return Err(format!(
                "the container-engine tests run with {GATE}=1 (./check sets it)"
            ));
        }
        if !nix::unistd::geteuid().is_root() {
            return Err("not root: podman runs as root here".to_owned());
        }
        let setup = run(&format!("{REPO}/docker/engine/setup"), &[]);
        if setup.code == Some(77) {
            return Err(format!("docker/engine/setup: {}", setup.stderr.trim()));
        }
        setup.expect_ok("docker/engine/setup");
        let probe = podman(&["run", "--rm", "localhost/debian:13", "true"]);
        if !probe.ok() {
            return Err(format!(
                "podman cannot start a container here: {}",
                probe.stderr.trim()
            ));
        }
        let started = Instant::now();
        let build =
            run(&format!("{REPO}/docker/engine/build"), &[]).expect_ok("docker/engine/build");
        eprintln!(
            "engine: {} built in {:.1}s",
            build.stdout.trim(),
            started.elapsed().as_secs_f64()
        );
        Ok(build.stdout.trim().to_owned())
    });
    match built {
        Ok(image) => Some(image),
        Err(why) => {
            eprintln!("\n*** SKIPPED {case} (container engine): {why} ***\n");
            None
        }
    }
}

/// A container of the test image with a named volume at /opt/data; both
/// are removed on drop.
struct Ctr {
    name: String,
    volume: String,
    /// Who reads s6's state (`s6-svok`, `s6-svstat`): root, or the
    /// container's own user where root has no capability in it (a Pod
    /// that drops them all, where `kubectl exec` runs as that user too).
    admin: &'static str,
}

impl Ctr {
    /// `hermes-s6 doctor --json` as hermes: the transport expected, and
    /// no failing check.
    #[track_caller]
    fn assert_doctor_passes(&self, transport: &str) {
        let out = self.sh("hermes", "hermes-s6 doctor --json");
        let doctor: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor JSON: {e}\n{}{}", out.stdout, out.stderr));
        assert_eq!(doctor["control_mode"], transport, "{doctor}");
        let failing: Vec<&Value> = doctor["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|k| k["verdict"] == "fail")
            .collect();
        assert!(failing.is_empty(), "doctor fails: {failing:#?}");
        assert_eq!(doctor["summary"]["fail"], 0, "{doctor}");
    }

    /// `podman run -d` with `opts` before the image and `cmd` after it.
    fn start(image: &str, case: &str, opts: &[&str], cmd: &[&str]) -> Ctr {
        let name = format!("hermes-s6-engine-{case}-{}", std::process::id());
        let volume = format!("{name}-data");
        let _ = podman(&["rm", "-f", "-t", "0", &name]);
        let _ = podman(&["volume", "rm", "-f", &volume]);
        let mount = format!("{volume}:/opt/data");
        let mut args = vec!["run", "-d", "--name", &name, "-v", &mount];
        args.extend_from_slice(opts);
        args.push(image);
        args.extend_from_slice(cmd);
        podman(&args).expect_ok("podman run");
        Ctr {
            name,
            volume,
            admin: "root",
        }
    }

    fn sh(&self, user: &str, script: &str) -> Out {
        podman(&["exec", "-u", user, &self.name, "/bin/sh", "-c", script])
    }

    fn hermes_s6(&self, args: &str) -> Out {
        self.sh("hermes", &format!("hermes-s6 {args}"))
            .expect_ok(&format!("hermes-s6 {args} (as hermes)"))
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        format!("{}{}", out.stdout, out.stderr)
    }

    fn wait(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}\n--- podman logs ---\n{}",
                self.name,
                self.logs()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Booted: `gateway-default` (always registered) is supervised.
    fn wait_booted(&self) {
        self.wait("the boot (gateway-default supervised)", 60, || {
            self.sh(self.admin, "s6-svok /run/service/gateway-default")
                .ok()
        });
    }

    /// `s6-svstat -o up,wantedup,pid` of a gateway, as `admin`.
    fn svstat(&self, profile: &str) -> (bool, bool, u32) {
        let out = self
            .sh(
                self.admin,
                &format!("s6-svstat -o up,wantedup,pid /run/service/gateway-{profile}"),
            )
            .expect_ok("s6-svstat");
        let f: Vec<&str> = out.stdout.split_whitespace().collect();
        (f[0] == "true", f[1] == "true", f[2].parse().unwrap_or(0))
    }

    fn wait_gateway(&self, profile: &str, up: bool) -> u32 {
        let mut pid = 0;
        self.wait(&format!("gateway-{profile} up={up}"), 30, || {
            let (is_up, _, p) = self.svstat(profile);
            pid = p;
            is_up == up
        });
        pid
    }

    /// Waits until the gateway is up and has recorded `running` with its
    /// pid: the gateway and the lifecycle commands both rewrite
    /// gateway_state.json, and a stop in the instant of the gateway's own
    /// write can lose its intent (README: the two-writer limit).
    fn wait_recorded_running(&self, profile: &str) {
        let home = if profile == "default" {
            "/opt/data".to_owned()
        } else {
            format!("/opt/data/profiles/{profile}")
        };
        self.wait(&format!("{profile} recorded running"), 30, || {
            let (is_up, _, pid) = self.svstat(profile);
            let state = self.sh("hermes", &format!("cat {home}/gateway_state.json"));
            let state: Value = serde_json::from_str(&state.stdout).unwrap_or(Value::Null);
            is_up
                && state["gateway_state"] == "running"
                && state["pid"].as_u64() == Some(u64::from(pid))
        });
    }

    /// `podman restart`, then the boot again.
    fn restart(&self) {
        podman(&["restart", "-t", "20", &self.name]).expect_ok("podman restart");
        self.wait_booted();
    }

    /// Process `pid` runs as hermes: every uid and gid of /proc/PID/status.
    fn assert_runs_as_hermes(&self, pid: u32, what: &str) {
        let ids = self
            .sh("root", &format!("grep -E '^(Uid|Gid):' /proc/{pid}/status"))
            .expect_ok(&format!("the ids of {what}"));
        assert!(
            ids.stdout.lines().count() == 2
                && ids
                    .stdout
                    .split_whitespace()
                    .filter(|f| !f.ends_with(':'))
                    .all(|id| id == HERMES_ID),
            "{what} runs as hermes (10000): {}",
            ids.stdout
        );
    }

    fn exit_code(&self) -> i32 {
        let out = podman(&["inspect", "--format", "{{.State.ExitCode}}", &self.name]);
        out.stdout.trim().parse().expect("exit code")
    }

    fn wait_exited(&self, secs: u64) {
        self.wait("the container to exit", secs, || {
            podman(&["inspect", "--format", "{{.State.Running}}", &self.name])
                .stdout
                .trim()
                == "false"
        });
    }

    /// Every zombie of the container, one `/proc/PID/stat` line each
    /// (processes that end meanwhile are passed over).
    fn zombies(&self) -> String {
        self.sh(
            "root",
            "for s in /proc/[0-9]*/stat; do read -r l <\"$s\" && case ${l##*) } in Z*) echo \"$l\";; esac; done; true",
        )
        .expect_ok("list zombies")
        .stdout
    }

    fn create_profile(&self, profile: &str) {
        self.sh(
            "hermes",
            &format!("mkdir -p /opt/data/profiles/{profile} && touch /opt/data/profiles/{profile}/SOUL.md"),
        )
        .expect_ok("hermes-created profile");
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
        let _ = podman(&["volume", "rm", "-f", &self.volume]);
    }
}

/// The ENTRYPOINT line of the shipped Dockerfile, as JSON.
fn dockerfile_entrypoint() -> Value {
    let text = std::fs::read_to_string(format!("{REPO}/docker/Dockerfile")).expect("Dockerfile");
    let line = text
        .lines()
        .rfind(|l| l.starts_with("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    serde_json::from_str(line.trim_start_matches("ENTRYPOINT ")).expect("ENTRYPOINT in JSON form")
}

#[test]
fn image_is_what_ships() {
    let Some(image) = image("image_is_what_ships") else {
        return;
    };
    let inspect = podman(&["image", "inspect", image]).expect_ok("podman image inspect");
    let config =
        &serde_json::from_str::<Value>(&inspect.stdout).expect("inspect JSON")[0]["Config"];
    assert_eq!(config["Entrypoint"], dockerfile_entrypoint(), "{config}");
    assert!(config["Volumes"].get("/opt/data").is_some(), "{config}");
    assert_eq!(config["WorkingDir"], "/opt/data");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HERMES_HOME=/opt/data",
        // The Hermes-like base's PATH, kept for hermes alone.
        "HERMES_S6_USER_PATH=/opt/hermes/bin:/opt/data/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "S6_BEHAVIOUR_IF_STAGE2_FAILS=2",
    ] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }

    let probe = |script: &str| {
        podman(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            script,
        ])
        .expect_ok(script)
        .stdout
    };
    assert_eq!(
        probe(
            "stat -c '%a %U:%G' /usr/libexec/hermes-s6-helper /usr/local/bin/hermes-s6 /opt/data"
        ),
        "4750 root:hermes\n755 root:root\n755 hermes:hermes\n"
    );
    assert_eq!(
        probe("id hermes"),
        "uid=10000(hermes) gid=10000(hermes) groups=10000(hermes)\n"
    );
    assert_eq!(
        probe("getent passwd hermes | cut -d: -f3,4,6"),
        "10000:10000:/opt/data\n"
    );
    assert_eq!(probe("getent group hermes | cut -d: -f3"), "10000\n");
    let version = probe("/usr/libexec/hermes-s6-helper --version");
    for want in [
        "scan dir: /run/service",
        "s6 programs: /command",
        "user: hermes",
        "group: hermes",
        "HERMES_HOME: /opt/data",
        "gateway command: hermes",
    ] {
        assert!(version.contains(want), "{want:?} not in:\n{version}");
    }
    // What the helper names is there: s6's programs in /command.
    probe("test -x /command/s6-svscan && test -x /command/s6-svc && test -x /init");
    // ... and on the PATH of a `docker exec` shell, as doctor's advice has
    // it: the very programs of /command (linked from /usr/local/bin, or the
    // distribution's own in /usr/bin where the test image has them there).
    probe(
        "for p in s6-svstat s6-svc s6-svscanctl; do \
         [ \"$(readlink -f \"$(command -v $p)\")\" = \"$(readlink -f /command/$p)\" ] || exit 1; done",
    );
    // The generated completions and man pages of the build stage.
    probe(
        "test -s /usr/share/bash-completion/completions/hermes-s6 \
         && test -s /usr/share/man/man1/hermes-s6.1",
    );
}

#[test]
fn default_options_gateway_lifecycle() {
    let Some(image) = image("default_options_gateway_lifecycle") else {
        return;
    };
    let c = Ctr::start(image, "lifecycle", &[], &[]);
    c.wait_booted();
    assert_eq!(
        c.sh("root", "cat /proc/1/comm").stdout.trim(),
        "s6-svscan",
        "PID 1"
    );

    // Register through reconcile.
    c.create_profile("work");
    c.hermes_s6("reconcile");
    let slot = c
        .sh("root", "stat -c '%U:%G %a' /run/service/gateway-work")
        .expect_ok("stat slot");
    assert_eq!(slot.stdout.trim(), "root:root 755");
    c.wait("gateway-work supervised", 20, || {
        c.sh("root", "s6-svok /run/service/gateway-work").ok()
    });
    assert!(!c.svstat("work").1, "registered down");

    // Start: up, as hermes.
    c.hermes_s6("gateway start -p work");
    let pid = c.wait_gateway("work", true);
    c.assert_runs_as_hermes(pid, "the gateway");
    let status = c.hermes_s6("gateway status -p work --json");
    let doc: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(doc["gateways"][0]["profile"], "work", "{doc}");
    assert_eq!(doc["gateways"][0]["state"], "up", "{doc}");

    // Restart: a new process, still wanted up.
    c.hermes_s6("gateway restart -p work");
    c.wait("a new gateway-work process", 30, || {
        let (up, _, p) = c.svstat("work");
        up && p != pid && p != 0
    });
    assert!(c.svstat("work").1, "restart never ends as a stop");

    // Stop: down, wanted down.
    c.hermes_s6("gateway stop -p work");
    c.wait_gateway("work", false);
    assert!(!c.svstat("work").1);

    // Unregister: the slot is gone.
    c.hermes_s6("profile unregister work");
    c.sh("root", "test ! -e /run/service/gateway-work")
        .expect_ok("slot removed");

    // hermes controls nothing of s6's own.
    assert!(!c.sh("hermes", "touch /run/service/x").ok());
    assert!(
        !c.sh("hermes", "s6-svc -d /run/service/s6-linux-init-shutdownd")
            .ok()
    );
}

#[test]
fn podman_restart_keeps_volume_and_intent() {
    let Some(image) = image("podman_restart_keeps_volume_and_intent") else {
        return;
    };
    let c = Ctr::start(image, "restart", &[], &[]);
    c.wait_booted();
    c.create_profile("alpha");
    c.create_profile("beta");
    c.hermes_s6("reconcile");
    c.hermes_s6("gateway start -p alpha");
    c.hermes_s6("gateway start");
    c.hermes_s6("gateway start -p beta");
    c.wait_recorded_running("beta");
    c.hermes_s6("gateway stop -p beta");
    c.wait_gateway("alpha", true);
    c.wait_gateway("default", true);
    c.wait_gateway("beta", false);
    c.sh("hermes", "echo kept >/opt/data/keep.txt")
        .expect_ok("write to the volume");

    c.restart();
    c.wait_gateway("alpha", true);
    c.wait_gateway("default", true);
    c.wait("gateway-beta supervised", 20, || {
        c.sh("root", "s6-svok /run/service/gateway-beta").ok()
    });
    let (up, wanted, _) = c.svstat("beta");
    assert!(
        !up && !wanted,
        "a stopped gateway stays down after a restart"
    );
    assert_eq!(
        c.sh("hermes", "cat /opt/data/keep.txt").stdout,
        "kept\n",
        "the named volume"
    );
}

#[test]
fn podman_stop_exits_with_the_main_program_status() {
    let Some(image) = image("podman_stop_exits_with_the_main_program_status") else {
        return;
    };
    let c = Ctr::start(
        image,
        "stop",
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    );
    c.wait_booted();
    let started = Instant::now();
    podman(&["stop", "-t", "20", &c.name]).expect_ok("podman stop");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "podman stop took {:?} (killed after its timeout?)",
        started.elapsed()
    );
    assert_eq!(c.exit_code(), 42, "{}", c.logs());
}

#[test]
fn an_orphan_left_by_a_gateways_child_is_reaped() {
    let Some(image) = image("an_orphan_left_by_a_gateways_child_is_reaped") else {
        return;
    };
    let c = Ctr::start(image, "gateway-orphan", &[], &[]);
    c.wait_booted();
    // The gateway's child leaves a process behind that ends 3 s later:
    // PID 1 (s6-svscan) adopts it, and must reap it.
    c.create_profile("work");
    c.sh(
        "hermes",
        "echo orphan_ms=3000 > /opt/data/profiles/work/standin.conf",
    )
    .expect_ok("standin.conf");
    c.hermes_s6("gateway start -p work");
    let pid = c.wait_gateway("work", true);
    // The image has no ps: /proc/<pid>/stat, field 4 is the parent.
    let orphans = "cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == \"(sleep)\" && $4 == 1'";
    let adopted = c.sh("root", orphans).expect_ok("ps").stdout;
    assert!(
        !adopted.trim().is_empty(),
        "no orphan adopted by PID 1:\n{}",
        c.sh(
            "root",
            "cat /proc/[0-9]*/stat 2>/dev/null | cut -d' ' -f1-4"
        )
        .stdout
    );
    sleep(Duration::from_secs(4));
    assert_eq!(
        c.sh("root", orphans).expect_ok("ps").stdout,
        "",
        "the orphan still runs"
    );
    assert_eq!(c.zombies(), "", "zombies left");
    let (up, _, now) = c.svstat("work");
    assert!(up && now == pid, "the gateway itself ran on");
}

#[test]
fn hermes_writable_path_gives_no_root() {
    let Some(image) = image("hermes_writable_path_gives_no_root") else {
        return;
    };
    let c = Ctr::start(image, "path", &[], &[]);
    c.wait_booted();
    // hermes plants programs root scripts might call in /opt/data/.local/bin,
    // which is on the Hermes base image's PATH; each records who ran it.
    let plant = "set -e; mkdir -p /opt/data/.local/bin; cd /opt/data/.local/bin; \
        for p in sh bash cat mkdir rm mv ln chown chmod id getent stat env sleep printf \
                 s6-svc s6-svscanctl s6-svok s6-setuidgid s6-envdir s6-svstat s6-log \
                 execlineb hermes-s6 usermod groupmod find grep sed; do \
            printf '#!/bin/sh\\nid -u >>/opt/data/ran-%s\\n' \"$p\" >\"$p\"; chmod 755 \"$p\"; \
        done";
    c.sh("hermes", plant).expect_ok("plant");
    c.restart();
    c.hermes_s6("gateway start");
    c.wait_gateway("default", true);
    c.hermes_s6("gateway stop");
    c.wait_gateway("default", false);
    let ran = c
        .sh("root", "grep -H -x 0 /opt/data/ran-* 2>/dev/null || true")
        .stdout;
    assert_eq!(ran, "", "root ran a program hermes planted");

    // A PATH naming the volume stops the boot (00-hermes-path).
    let bad = Ctr::start(
        image,
        "badpath",
        &[
            "-e",
            "PATH=/opt/data/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
        &[],
    );
    bad.wait_exited(60);
    assert_ne!(bad.exit_code(), 0, "{}", bad.logs());
    assert!(bad.logs().contains("00-hermes-path"), "{}", bad.logs());
}

/// Every command of the gateway lifecycle as hermes (`podman exec -u
/// hermes`), registration included, checked from root; `transport` is what
/// `hermes-s6 info` must say it uses.
fn lifecycle_as_hermes(c: &Ctr, transport: &str) {
    c.wait_booted();
    let info: Value = serde_json::from_str(&c.hermes_s6("info --json").stdout).expect("info JSON");
    assert_eq!(info["control_mode"], transport, "{info}");
    assert_eq!(info["runtime_registration"], true, "{info}");
    c.sh(
        "hermes",
        "mkdir -p /opt/data/profiles/work && touch /opt/data/profiles/work/SOUL.md",
    )
    .expect_ok("a profile");
    c.hermes_s6("profile register work --down");
    c.hermes_s6("gateway start -p work");
    c.wait_gateway("work", true);
    c.hermes_s6("gateway restart -p work");
    c.wait_recorded_running("work");
    c.hermes_s6("gateway stop -p work");
    c.wait_gateway("work", false);
    c.hermes_s6("profile unregister work");
    assert!(!c.sh("root", "test -e /run/service/gateway-work").ok());
}

#[test]
fn no_new_privileges_runs_every_command_over_the_socket() {
    let Some(image) = image("no_new_privileges_runs_every_command_over_the_socket") else {
        return;
    };
    // The setuid bit means nothing here: the image's hermes-s6-helperd
    // serves the helper over its socket, and hermes-s6 picks it by itself.
    let c = Ctr::start(image, "nnp", &["--security-opt", "no-new-privileges"], &[]);
    lifecycle_as_hermes(&c, "socket");
}

#[test]
fn the_smallest_capability_set_runs_every_command() {
    let Some(image) = image("the_smallest_capability_set_runs_every_command") else {
        return;
    };
    // README's Deployments: SETUID, SETGID and KILL; CHOWN for a volume that
    // is not hermes's yet at the first boot.
    let caps = [
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "--cap-add",
        "KILL",
        "--cap-add",
        "CHOWN",
    ];
    let c = Ctr::start(image, "caps", &caps, &[]);
    lifecycle_as_hermes(&c, "setuid");
    let doctor = c.sh("hermes", "hermes-s6 doctor --json");
    let doctor: Value = serde_json::from_str(&doctor.stdout).expect("doctor JSON");
    assert!(
        !doctor["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|k| k["id"] == "svscan.capabilities"),
        "{doctor}"
    );
}

#[test]
fn read_only_root_with_run_on_tmpfs() {
    let Some(image) = image("read_only_root_with_run_on_tmpfs") else {
        return;
    };
    // README's Deployments: /run must allow exec (s6 runs the slots'
    // scripts there).
    let opts = [
        "--read-only",
        "--tmpfs",
        "/run:exec",
        "--tmpfs",
        "/tmp",
        "-e",
        "S6_READ_ONLY_ROOT=1",
    ];
    let c = Ctr::start(image, "read-only", &opts, &[]);
    lifecycle_as_hermes(&c, "setuid");
    let out = c.sh("root", ": > /etc/hermes-probe");
    assert!(
        !out.ok() && out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
}

/// hermes's uid and gid in the image.
const HERMES_ID: &str = "10000";

/// A non-root container (`--user UID`) with /run a tmpfs of that user's,
/// as README's Deployments has it: s6-overlay started as a user needs /run
/// to be that user's (its setuid preinit makes it so only where setuid
/// works). podman's `U` gives the tmpfs to the container's user: podman 4.3
/// refuses the kernel's own `uid=` and `gid=` tmpfs options.
fn user_opts(uid: &str) -> [&str; 4] {
    ["--user", uid, "--tmpfs", "/run:exec,mode=0755,U"]
}

/// Started as hermes (`--user 10000`, plus `extra`): s6-svscan and
/// everything else run as hermes, `hermes-s6` runs the helper with its own
/// rights (the owner transport), and a running gateway comes back after
/// `podman restart`. Returns the container, restarted.
fn runs_as_hermes(image: &str, case: &str, extra: &[&str]) -> Ctr {
    let mut opts = user_opts(HERMES_ID).to_vec();
    opts.extend_from_slice(extra);
    let c = Ctr::start(image, case, &opts, &[]);
    lifecycle_as_hermes(&c, "owner");
    let pid1_is_hermes = |c: &Ctr| {
        assert_eq!(
            c.sh("root", "cat /proc/1/comm").stdout.trim(),
            "s6-svscan",
            "PID 1"
        );
        c.assert_runs_as_hermes(1, "s6-svscan (PID 1)");
    };
    pid1_is_hermes(&c);
    let boot = c.logs();
    assert!(
        boot.contains("started as hermes (--user)") && boot.contains("owner transport"),
        "{boot}"
    );

    // A gateway, registered by reconcile and started as hermes.
    c.create_profile("work");
    c.hermes_s6("reconcile");
    c.hermes_s6("gateway start -p work");
    let pid = c.wait_gateway("work", true);
    c.assert_runs_as_hermes(pid, "the gateway");
    let slot = c
        .sh("root", "stat -c '%u:%g %a' /run/service/gateway-work")
        .expect_ok("stat slot");
    assert_eq!(
        slot.stdout.trim(),
        "10000:10000 755",
        "the slot is hermes's"
    );
    let run = c
        .sh("root", "cat /run/service/gateway-work/run")
        .expect_ok("the slot's run");
    assert!(
        !run.stdout.contains("s6-setuidgid"),
        "no drop in a slot of a non-root container:\n{}",
        run.stdout
    );
    c.assert_doctor_passes("owner");

    // The running gateway comes back after a restart, on a fresh /run.
    c.wait_recorded_running("work");
    c.restart();
    pid1_is_hermes(&c);
    let pid = c.wait_gateway("work", true);
    c.assert_runs_as_hermes(pid, "the gateway after the restart");
    c
}

#[test]
fn user_10000() {
    let Some(image) = image("user_10000") else {
        return;
    };
    runs_as_hermes(image, "user", &[]);
}

#[test]
fn user_10000_with_no_new_privileges() {
    let Some(image) = image("user_10000_with_no_new_privileges") else {
        return;
    };
    // README recommends it for non-root containers: the owner transport
    // needs no privilege, so nothing changes.
    let c = runs_as_hermes(image, "user-nnp", &["--security-opt", "no-new-privileges"]);
    let nnp = c.sh("root", "grep '^NoNewPrivs:' /proc/1/status");
    assert_eq!(
        nnp.stdout.split_whitespace().nth(1),
        Some("1"),
        "{}",
        nnp.stdout
    );
}

#[test]
fn another_user_is_refused() {
    let Some(image) = image("another_user_is_refused") else {
        return;
    };
    // Even with a /run of its own, a uid that is neither root nor hermes
    // stops the boot at 01-hermes-s6-setup.
    let c = Ctr::start(image, "user-other", &user_opts("12345"), &[]);
    c.wait_exited(60);
    let logs = c.logs();
    assert_ne!(c.exit_code(), 0, "{logs}");
    assert!(
        logs.contains("01-hermes-s6-setup: error: this container was started as uid 12345"),
        "{logs}"
    );
}
