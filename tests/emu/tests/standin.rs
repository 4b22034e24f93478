//! The stand-in gateway under real s6, in a slot shaped like the product's.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hermes_s6_emu::standin::{PLANNED_STOP_MARKER, RUNS_FILE, STATE_FILE, stat_start_time};
use hermes_s6_emu::{
    CONTAINER_PATH, Container, GATEWAY_PATH, Options, SCAN_DIR, Signal, User, skip_unless_root,
};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(10);

/// A root-owned slot `/run/service/gateway-<p>` running the stand-in as
/// hermes, as the product's `register` writes it (roughly), plus a finish
/// script recording each exit of the gateway in `/run/gateway-<p>.exits`.
struct Gateway<'c> {
    c: &'c Container,
    profile: String,
    slot: String,
}

impl<'c> Gateway<'c> {
    fn register(c: &'c Container, profile: &str, conf: &str) -> Gateway<'c> {
        Gateway::register_with_logger(c, profile, conf, false)
    }

    fn register_with_logger(
        c: &'c Container,
        profile: &str,
        conf: &str,
        logger: bool,
    ) -> Gateway<'c> {
        let gateway = Gateway {
            c,
            profile: profile.to_owned(),
            slot: format!("{SCAN_DIR}/gateway-{profile}"),
        };
        let home = gateway.home();
        c.run_as(
            User::Hermes,
            &[
                "sh",
                "-c",
                "mkdir -p \"$1\" && cat > \"$1/standin.conf\"",
                "sh",
                &home,
            ],
            &[],
            Some(conf.as_bytes()),
        )
        .assert_success();

        let staging = format!("{SCAN_DIR}/.gateway-{profile}.new");
        fs::create_dir(c.host_path(&staging)).unwrap();
        let run = format!(
            "#!/command/with-contenv sh\n\
             exec 2>&1\n\
             cd /opt/data || exit 111\n\
             HOME=/opt/data HERMES_S6_SUPERVISED_CHILD=1 HERMES_SUPERVISED_CHILD=1\n\
             export HOME HERMES_S6_SUPERVISED_CHILD HERMES_SUPERVISED_CHILD\n\
             exec s6-setuidgid hermes hermes -p {profile} gateway run --replace\n"
        );
        c.write_file(&format!("{staging}/run"), run, 0o755);
        let finish = format!(
            "#!/bin/sh\n\
             echo \"$1 $2\" >> /run/gateway-{profile}.exits\n\
             case \"$1\" in 0 | 78) exit 125 ;; esac\n"
        );
        c.write_file(&format!("{staging}/finish"), finish, 0o755);
        if logger {
            fs::create_dir(c.host_path(&format!("{staging}/log"))).unwrap();
            let log_run = format!(
                "#!/bin/sh\n\
                 exec s6-setuidgid hermes sh -c \
                 'mkdir -p /opt/data/logs/gateways/{profile} && exec s6-log n3 /opt/data/logs/gateways/{profile}'\n"
            );
            c.write_file(&format!("{staging}/log/run"), log_run, 0o755);
        }
        fs::rename(c.host_path(&staging), c.host_path(&gateway.slot)).unwrap();
        c.run_as(User::Root, &["s6-svscanctl", "-a", SCAN_DIR], &[], None)
            .assert_success();
        gateway
    }

    fn home(&self) -> String {
        format!("/opt/data/profiles/{}", self.profile)
    }

    fn state(&self) -> Option<Value> {
        let bytes = fs::read(self.c.host_path(&format!("{}/{STATE_FILE}", self.home()))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn gateway_state(&self) -> Option<String> {
        Some(self.state()?.get("gateway_state")?.as_str()?.to_owned())
    }

    fn svstat(&self, fields: &str) -> String {
        let out = self.c.run_as(
            User::Root,
            &["s6-svstat", "-o", fields, &self.slot],
            &[],
            None,
        );
        if out.success() {
            out.stdout.trim().to_owned()
        } else {
            String::new()
        }
    }

    /// The running gateway's pid (in the container), per s6.
    fn pid(&self) -> Option<u32> {
        self.svstat("pid")
            .parse::<i64>()
            .ok()
            .and_then(|p| u32::try_from(p).ok())
    }

    fn svc(&self, option: &str) {
        self.c
            .run_as(User::Root, &["s6-svc", option, &self.slot], &[], None)
            .assert_success();
    }

    /// "<exit code> <signal>" per exit, as the finish script saw them.
    fn exits(&self) -> Vec<String> {
        fs::read_to_string(
            self.c
                .host_path(&format!("/run/gateway-{}.exits", self.profile)),
        )
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn wait_state(&self, state: &str) {
        self.c.wait_for(
            PATIENCE,
            &format!("{} in state {state}", self.profile),
            || self.gateway_state().as_deref() == Some(state),
        );
    }

    /// Waits until the gateway runs (as far as s6 and the state file say)
    /// and returns its pid.
    fn wait_running(&self) -> u32 {
        self.wait_running_other_than(None)
    }

    /// [`Gateway::wait_running`], for a gateway whose pid is not `old`.
    fn wait_running_other_than(&self, old: Option<u32>) -> u32 {
        let mut pid = None;
        let what = match old {
            Some(old) => format!("{} running with a pid other than {old}", self.profile),
            None => format!("{} running", self.profile),
        };
        self.c.wait_for(PATIENCE, &what, || {
            pid = self.pid();
            let state = self.state().unwrap_or_default();
            pid.is_some()
                && pid != old
                && state["gateway_state"] == "running"
                && state["pid"].as_u64() == pid.map(u64::from)
        });
        pid.unwrap()
    }

    fn wait_exits(&self, count: usize) -> Vec<String> {
        self.c.wait_for(
            PATIENCE,
            &format!("{} exits of {}", count, self.profile),
            || self.exits().len() >= count,
        );
        self.exits()
    }

    fn start_time(&self, pid: u32) -> u64 {
        let stat = fs::read_to_string(self.c.host_path(&format!("/proc/{pid}/stat"))).unwrap();
        stat_start_time(&stat).unwrap()
    }

    /// Writes the planned-stop marker as the hermes user, as `stop` does.
    fn write_marker(&self, marker: &Value) {
        self.c
            .run_as(
                User::Hermes,
                &["sh", "-c", "cat > \"$1\"", "sh", &self.marker_path()],
                &[],
                Some(marker.to_string().as_bytes()),
            )
            .assert_success();
    }

    fn marker_path(&self) -> String {
        format!("{}/{PLANNED_STOP_MARKER}", self.home())
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn gateway_starts_then_runs_as_hermes() {
    if skip_unless_root("gateway_starts_then_runs_as_hermes") {
        return;
    }
    let c = Container::boot_with(Options {
        container_env: vec![("GREETING".into(), "from the container".into())],
        ..Options::default()
    });
    // Seeded by a lifecycle command earlier: must survive the gateway's writes.
    c.run_as(
        User::Hermes,
        &[
            "sh",
            "-c",
            "mkdir -p /opt/data/profiles/work && cat > /opt/data/profiles/work/gateway_state.json",
        ],
        &[],
        Some("\u{feff}{\"desired_state\":\"running\",\"updated_at\":1}".as_bytes()),
    )
    .assert_success();
    let gw = Gateway::register_with_logger(&c, "work", "startup_ms=800\n", true);

    gw.wait_state("starting");
    let pid = gw.wait_running();
    let state = gw.state().unwrap();
    assert_eq!(state["desired_state"], "running", "{state}");
    assert!(
        state["updated_at"].as_u64().unwrap() > 1_000_000_000,
        "{state}"
    );
    let meta = fs::metadata(c.host_path(&format!("{}/{STATE_FILE}", gw.home()))).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (10000, 10000));

    let runs = fs::read_to_string(c.host_path(&format!("{}/{RUNS_FILE}", gw.home()))).unwrap();
    let run: Value = serde_json::from_str(runs.lines().last().unwrap()).unwrap();
    assert_eq!(run["pid"], pid);
    assert_eq!(
        (
            &run["uid"],
            &run["euid"],
            &run["gid"],
            &run["egid"],
            &run["groups"]
        ),
        (
            &json!(10000),
            &json!(10000),
            &json!(10000),
            &json!(10000),
            &json!([10000])
        ),
        "{run}"
    );
    assert_eq!(run["cwd"], "/opt/data");
    assert_eq!(
        run["argv"],
        json!(["hermes", "-p", "work", "gateway", "run", "--replace"])
    );
    let env = &run["env"];
    assert_eq!(env["HOME"], "/opt/data");
    assert_eq!(env["PATH"], CONTAINER_PATH);
    assert_eq!(env["HERMES_S6_SUPERVISED_CHILD"], "1");
    assert_eq!(env["HERMES_SUPERVISED_CHILD"], "1");
    assert_eq!(
        env["GREETING"], "from the container",
        "with-contenv applied: {env}"
    );

    // The start line reached the slot's logger, which runs as hermes too.
    let log = c.host_path("/opt/data/logs/gateways/work/current");
    let line = format!("hermes-standin: profile=work pid={pid} starting");
    c.wait_for(PATIENCE, "the start line in the gateway's log", || {
        fs::read_to_string(&log).is_ok_and(|l| l.contains(&line))
    });
    assert_eq!(fs::metadata(&log).unwrap().uid(), 10000);
}

#[test]
fn planned_stop_records_stopped_and_exits_0() {
    if skip_unless_root("planned_stop_records_stopped_and_exits_0") {
        return;
    }
    let c = Container::boot();
    let gw = Gateway::register(&c, "p", "");
    let pid = gw.wait_running();
    gw.write_marker(&json!({
        "target_pid": pid,
        "target_start_time": gw.start_time(pid),
        "stopper_pid": 1,
        "written_at": now(),
    }));

    gw.svc("-d");

    assert_eq!(gw.wait_exits(1)[0].split(' ').next(), Some("0"));
    gw.wait_state("stopped");
    assert!(
        !c.host_path(&gw.marker_path()).exists(),
        "the marker is consumed"
    );
    c.wait_for(PATIENCE, "p down", || {
        gw.svstat("up,wantedup") == "false false"
    });
}

#[test]
fn unplanned_sigterm_exits_1_and_s6_revives_the_gateway() {
    if skip_unless_root("unplanned_sigterm_exits_1_and_s6_revives_the_gateway") {
        return;
    }
    let c = Container::boot();
    // No marker; a stale one; one naming another process.
    let bare = Gateway::register(&c, "bare", "");
    let stale = Gateway::register(&c, "stale", "");
    let other = Gateway::register(&c, "other", "");
    let pids: Vec<u32> = [&bare, &stale, &other]
        .iter()
        .map(|g| g.wait_running())
        .collect();
    stale.write_marker(&json!({
        "target_pid": pids[1],
        "target_start_time": stale.start_time(pids[1]),
        "written_at": now() - 120.0,
    }));
    other.write_marker(&json!({
        "target_pid": pids[2],
        "target_start_time": other.start_time(pids[2]) + 1,
        "written_at": now(),
    }));

    for gw in [&bare, &stale, &other] {
        gw.svc("-t");
    }

    for (gw, old_pid) in [&bare, &stale, &other].into_iter().zip(pids) {
        assert_eq!(gw.wait_exits(1), ["1 0"], "{}", gw.profile);
        let new_pid = gw.wait_running();
        assert_ne!(new_pid, old_pid, "{}", gw.profile);
        assert_eq!(gw.svstat("wantedup"), "true");
    }
    // A marker that did not match stays where it was.
    assert!(c.host_path(&stale.marker_path()).exists());
    assert!(c.host_path(&other.marker_path()).exists());
}

#[test]
fn crash_after_ms_makes_s6_restart_the_gateway() {
    if skip_unless_root("crash_after_ms_makes_s6_restart_the_gateway") {
        return;
    }
    let c = Container::boot();
    // s6 and the state file agree on the pid only while a crashing gateway
    // is `running`: 1 s per run, long enough to be seen.
    let gw = Gateway::register(&c, "crashy", "crash_after_ms=1000\n");
    let first = gw.wait_running();
    assert_eq!(gw.wait_exits(1)[0], "1 0");
    // Crashed with exit 1, as told. Gateways started from now on read a
    // configuration without the crash, so the one s6 revives stays running
    // (one already started may still crash once; s6 revives that too).
    c.run_as(
        User::Hermes,
        &["sh", "-c", ": > \"$1/standin.conf\"", "sh", &gw.home()],
        &[],
        None,
    )
    .assert_success();
    gw.wait_running_other_than(Some(first));
    // Let it be now, so teardown meets no restart in flight.
    gw.svc("-d");
}

#[test]
fn exit_at_start_78_is_a_permanent_failure() {
    if skip_unless_root("exit_at_start_78_is_a_permanent_failure") {
        return;
    }
    let c = Container::boot();
    let gw = Gateway::register(&c, "broken", "exit_at_start=78\n");
    assert_eq!(gw.wait_exits(1)[0].split(' ').next(), Some("78"));
    gw.wait_state("startup_failed");
    // The finish script's exit 125 told s6 not to restart it.
    c.wait_for(PATIENCE, "broken permanently down", || {
        gw.svstat("up,wantedup") == "false false"
    });
}

#[test]
fn sigterm_during_startup_exits_as_configured() {
    if skip_unless_root("sigterm_during_startup_exits_as_configured") {
        return;
    }
    let c = Container::boot();
    // The upstream pitfall: exit 0 on a restart's SIGTERM during start-up,
    // which a finish script mapping 0 to 125 turns into a permanent stop.
    let pitfall = Gateway::register(
        &c,
        "pitfall",
        "startup_ms=30000\nsigterm_in_startup_exit=0\n",
    );
    // By default a start-up SIGTERM without a marker is an unplanned exit.
    let plain = Gateway::register(&c, "plain", "startup_ms=30000\n");
    pitfall.wait_state("starting");
    plain.wait_state("starting");
    let plain_pid = plain.pid().unwrap();

    pitfall.svc("-t");
    plain.svc("-t");

    assert_eq!(pitfall.wait_exits(1)[0], "0 0");
    c.wait_for(PATIENCE, "pitfall stays down", || {
        pitfall.svstat("up,wantedup") == "false false"
    });
    assert_eq!(plain.wait_exits(1)[0], "1 0");
    c.wait_for(PATIENCE, "plain restarted", || {
        plain.pid().is_some_and(|p| p != plain_pid)
            && plain.state().unwrap_or_default()["pid"].as_u64() == plain.pid().map(u64::from)
    });
    assert_eq!(plain.gateway_state().as_deref(), Some("starting"));
}

#[test]
fn ignore_sigterm_leaves_only_sigkill() {
    if skip_unless_root("ignore_sigterm_leaves_only_sigkill") {
        return;
    }
    let c = Container::boot();
    let gw = Gateway::register(&c, "stubborn", "ignore_sigterm=1\n");
    let pid = gw.wait_running();

    gw.svc("-d");
    c.wait_for(
        PATIENCE,
        "the stand-in to report the ignored SIGTERM",
        || c.svscan_log().contains("hermes-standin: ignoring SIGTERM"),
    );
    assert_eq!(gw.pid(), Some(pid));
    assert_eq!(gw.svstat("up,wantedup"), "true false");
    assert!(gw.exits().is_empty());

    gw.svc("-k");
    assert_eq!(gw.wait_exits(1), ["256 9"]);
    c.wait_for(PATIENCE, "stubborn down", || gw.svstat("up") == "false");
}

#[test]
fn other_invocations_version_and_idle() {
    if skip_unless_root("other_invocations_version_and_idle") {
        return;
    }
    let c = Container::boot();
    let installed = fs::read(c.host_path(GATEWAY_PATH)).unwrap();
    assert!(installed == fs::read(env!("CARGO_BIN_EXE_hermes-standin")).unwrap());

    let out = c.run_as(User::Hermes, &["hermes", "--version"], &[], None);
    assert!(
        out.assert_success().stdout.starts_with("hermes-standin "),
        "{out:?}"
    );

    // The container's main program: idles until SIGTERM, then exits 0.
    let idle = c.exec(User::Hermes, &["hermes"]).spawn();
    let pid = idle.inner_pid();
    c.wait_for(PATIENCE, "the idle stand-in to handle SIGTERM", || {
        sigterm_is_caught(pid)
    });
    idle.signal(Signal::SIGTERM);
    let out = idle.wait_output();
    out.assert_success();
    assert!(out.stdout.contains("idle"), "{out:?}");
}

/// Whether `pid` has a handler for SIGTERM (bit 15 of SigCgt).
fn sigterm_is_caught(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}
