//! Stand-in for the Hermes gateway, installed in the emulated container as
//! `/usr/local/bin/hermes`. See `hermes_s6_emu::standin` for the contract.
//!
//! `hermes [-p <profile>] gateway run [--replace]` runs a gateway:
//! - prints `hermes-standin: profile=<p> pid=<pid> starting` on stdout;
//! - appends a JSON line (ids, groups, cwd, argv, environment) to
//!   `<home>/standin-runs.jsonl`;
//! - writes `gateway_state.json` (atomically, keeping other keys):
//!   `starting`, then `running`;
//! - on SIGTERM with a valid planned-stop marker: consumes it, records
//!   `stopped`, exits 0; on any other SIGTERM: exits 1 so the supervisor
//!   revives it;
//! - `standin.conf` in the home adds start-up delay, crashes, start-up
//!   failures and odd SIGTERM handling.
//!
//! `hermes --version` prints a version line; anything else idles until
//! SIGTERM and exits 0 (a container's main program).

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hermes_s6_emu::standin::{
    Behavior, CONF_FILE, EX_CONFIG, Invocation, PLANNED_STOP_MARKER, RUNS_FILE, STATE_FILE,
    check_planned_stop, merged_state, parse_args, profile_home, stat_start_time,
};
use serde_json::{Map, Value, json};
use signal_hook::consts::SIGTERM;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Invocation::Version => {
            say(&format!(
                "hermes-standin {} (stand-in gateway for tests)",
                env!("CARGO_PKG_VERSION")
            ));
            ExitCode::SUCCESS
        }
        Invocation::Gateway { profile, .. } => run_gateway(profile.as_deref()),
        Invocation::Idle => {
            let mut terms = Terms::install();
            say(&format!(
                "hermes-standin: idle (pid {}); exits 0 on SIGTERM",
                std::process::id()
            ));
            terms.wait(None);
            say("hermes-standin: SIGTERM, exiting 0");
            ExitCode::SUCCESS
        }
    }
}

fn run_gateway(profile: Option<&str>) -> ExitCode {
    let pid = std::process::id();
    let hermes_home = std::env::var_os("HERMES_HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/opt/data"), PathBuf::from);
    let home = profile_home(&hermes_home, profile);
    let name = profile.unwrap_or("default");
    say(&format!(
        "hermes-standin: profile={name} pid={pid} starting"
    ));
    if !home.is_dir() {
        warn(&format!("profile home {} does not exist", home.display()));
        return exit_code(EX_CONFIG);
    }
    record_run(&home, name);
    let behavior = read_behavior(&home);
    // Installed before anything that waits, so no SIGTERM kills it outright.
    let mut terms = Terms::install();

    if let Some(code) = behavior.exit_at_start {
        write_state(&home, "startup_failed");
        warn(&format!("start-up failed as told (exit_at_start={code})"));
        return exit_code(code);
    }

    if let Some(ms) = behavior.orphan_ms {
        leave_orphan(ms);
    }
    write_state(&home, "starting");
    let started_up = Instant::now() + Duration::from_millis(behavior.startup_ms);
    while terms.wait(Some(started_up)) {
        if behavior.ignore_sigterm {
            say("hermes-standin: ignoring SIGTERM during start-up");
            continue;
        }
        if let Some(code) = behavior.sigterm_in_startup_exit {
            say(&format!(
                "hermes-standin: SIGTERM during start-up, exiting {code}"
            ));
            return exit_code(code);
        }
        return on_sigterm(&home, pid);
    }

    write_state(&home, "running");
    let crash_at = behavior
        .crash_after_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    loop {
        if !terms.wait(crash_at) {
            warn("crashing as told (crash_after_ms)");
            return ExitCode::from(1);
        }
        if behavior.ignore_sigterm {
            say("hermes-standin: ignoring SIGTERM");
            continue;
        }
        return on_sigterm(&home, pid);
    }
}

/// A SIGTERM is a planned stop only when a marker names this very process.
fn on_sigterm(home: &Path, pid: u32) -> ExitCode {
    let marker = home.join(PLANNED_STOP_MARKER);
    match planned_stop(&marker, pid) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(&marker) {
                warn(&format!("cannot consume {}: {e}", marker.display()));
            }
            write_state(home, "stopped");
            say("hermes-standin: planned stop, exiting 0");
            ExitCode::SUCCESS
        }
        Err(why) => {
            say(&format!(
                "hermes-standin: unplanned SIGTERM ({why}), exiting 1 so the supervisor revives the gateway"
            ));
            ExitCode::from(1)
        }
    }
}

fn planned_stop(marker: &Path, pid: u32) -> Result<(), String> {
    let bytes = match fs::read(marker) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err("no marker".into()),
        Err(e) => return Err(format!("cannot read marker: {e}")),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("marker is not JSON: {e}"))?;
    let stat = fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    let start_time = stat_start_time(&stat).ok_or("cannot parse /proc/self/stat")?;
    check_planned_stop(&value, pid, start_time, now().as_secs_f64())
        .map_err(|problem| format!("marker rejected: {problem:?}"))
}

/// A child of a child, which the child leaves behind when it exits: its
/// parent becomes PID 1 (or the nearest subreaper).
fn leave_orphan(ms: u64) {
    let secs = format!("{}.{:03}", ms / 1000, ms % 1000);
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", "sleep \"$1\" & exit 0", "sh", &secs])
        .stdin(std::process::Stdio::null())
        .status();
    if let Err(e) = child {
        warn(&format!("cannot leave an orphan: {e}"));
    }
}

fn read_behavior(home: &Path) -> Behavior {
    let path = home.join(CONF_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Behavior::default(),
        Err(e) => {
            warn(&format!("cannot read {}: {e}", path.display()));
            return Behavior::default();
        }
    };
    let (behavior, warnings) = Behavior::parse(&text);
    for warning in warnings {
        warn(&format!("{}: {warning}", path.display()));
    }
    behavior
}

/// Rewrites the state file through a temp file and a rename, so a reader
/// never sees it half-written.
fn write_state(home: &Path, state: &str) {
    let pid = std::process::id();
    let path = home.join(STATE_FILE);
    let existing = fs::read(&path).ok();
    let value = merged_state(existing.as_deref(), state, pid, now().as_secs());
    let tmp = home.join(format!(".{STATE_FILE}.{pid}.tmp"));
    let mut text = serde_json::to_vec_pretty(&value).expect("a JSON value serializes");
    text.push(b'\n');
    let result = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        warn(&format!("cannot write {}: {e}", path.display()));
    }
}

/// Appends who started, as whom, where and with what, for tests to check.
fn record_run(home: &Path, profile: &str) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let ids = |key: &str| -> Vec<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("")
            .split_ascii_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    let (uids, gids) = (ids("Uid:"), ids("Gid:"));
    let env: Map<String, Value> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                Value::from(v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let record = json!({
        "pid": std::process::id(),
        "ppid": std::os::unix::process::parent_id(),
        "uid": uids.first(),
        "euid": uids.get(1),
        "gid": gids.first(),
        "egid": gids.get(1),
        "groups": ids("Groups:"),
        "cwd": std::env::current_dir().ok(),
        "argv": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "env": env,
        "profile": profile,
        "home": home,
        "started_at": now().as_secs(),
    });
    let path = home.join(RUNS_FILE);
    let result = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{record}"));
    if let Err(e) = result {
        warn(&format!("cannot append to {}: {e}", path.display()));
    }
}

/// SIGTERMs arrive as bytes on a socket (self-pipe), so waiting for one
/// with a deadline is a plain blocking read: no polling, even with
/// thousands of idle stand-ins.
struct Terms {
    rx: UnixStream,
}

impl Terms {
    fn install() -> Terms {
        let (rx, tx) = UnixStream::pair().expect("hermes-standin: socketpair");
        signal_hook::low_level::pipe::register(SIGTERM, tx)
            .expect("hermes-standin: cannot handle SIGTERM");
        Terms { rx }
    }

    /// Waits for a SIGTERM until `deadline` (`None`: for ever); true when
    /// one arrived.
    fn wait(&mut self, deadline: Option<Instant>) -> bool {
        let mut byte = [0u8; 1];
        loop {
            let remaining = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            self.rx
                .set_read_timeout(remaining)
                .expect("hermes-standin: set_read_timeout");
            match self.rx.read(&mut byte) {
                Ok(1) => return true,
                Ok(_) => panic!("hermes-standin: signal socket closed"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("hermes-standin: waiting for signals: {e}"),
            }
        }
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

/// Writes a line on stdout; a vanished logger is not the stand-in's problem.
fn say(line: &str) {
    let _ = writeln!(io::stdout(), "{line}");
}

fn warn(line: &str) {
    let _ = writeln!(io::stderr(), "hermes-standin: {line}");
}
