//! The half of the benchmark that runs inside the container, as root: it
//! starts each contender itself (as hermes or root, through std's
//! `Command::uid`/`gid`, which also clears supplementary groups), so that
//! every contender pays the same spawn cost and nothing else.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PATH: &str = "/command:/usr/local/bin:/usr/bin:/bin";

pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("interleave") => interleave(&args[1..]),
        Some("time") => time_one(&args[1..]),
        Some("crash") => crash(&args[1..]),
        _ => {
            eprintln!("usage: hermes-s6-bench inner interleave|time|crash ...");
            64
        }
    }
}

struct Contender {
    name: String,
    uid: u32,
    argv: Vec<String>,
}

impl Contender {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]).env_clear().env("PATH", PATH).stdin(Stdio::null()).stdout(Stdio::null());
        if self.uid != 0 {
            cmd.uid(self.uid)
                .gid(self.uid)
                .env("HOME", "/opt/data")
                .env("HERMES_HOME", "/opt/data")
                .env("USER", "hermes");
        } else {
            cmd.env("HOME", "/root");
        }
        cmd
    }

    fn run_once(&self) -> Result<Duration, String> {
        let mut cmd = self.command();
        cmd.stderr(Stdio::piped());
        let started = Instant::now();
        let out = cmd.output().map_err(|e| format!("{}: {e}", self.name))?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!("{} failed ({}): {}", self.name, out.status, String::from_utf8_lossy(&out.stderr)));
        }
        Ok(took)
    }
}

/// `interleave --runs N --warmup W -- NAME UID ARGV... -- NAME UID ARGV...`
/// Each round runs every contender once, in an order that rotates from round
/// to round, so drift on a noisy machine hits all of them alike.
fn interleave(args: &[String]) -> i32 {
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, warmup) = (flag("--runs", 100), flag("--warmup", 5));
    let contenders: Vec<Contender> = args
        .split(|a| a == "--")
        .skip(1)
        .filter(|group| group.len() >= 3)
        .map(|g| Contender { name: g[0].clone(), uid: g[1].parse().unwrap_or(0), argv: g[2..].to_vec() })
        .collect();
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(runs); contenders.len()];
    for round in 0..warmup + runs {
        for k in 0..contenders.len() {
            let i = (round + k) % contenders.len();
            match contenders[i].run_once() {
                Ok(took) if round >= warmup => samples[i].push(took.as_micros() as u64),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            }
        }
    }
    let result: serde_json::Map<String, serde_json::Value> =
        contenders.iter().zip(samples).map(|(c, s)| (c.name.clone(), serde_json::json!(s))).collect();
    println!("{}", serde_json::Value::Object(result));
    0
}

/// `time UID ARGV...`: one run, its wall time in microseconds.
fn time_one(args: &[String]) -> i32 {
    let contender = Contender { name: args[1].clone(), uid: args[0].parse().unwrap_or(0), argv: args[1..].to_vec() };
    match contender.run_once() {
        Ok(took) => {
            println!("{}", took.as_micros());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The pid s6 reports for the service, unless it is finishing (then the
/// pid field is the finish script's).
fn status_pid(status_file: &str) -> Option<u64> {
    let bytes = std::fs::read(status_file).ok()?;
    let finishing = bytes.last()? & 0b10 != 0;
    let pid = u64::from_be_bytes(bytes.get(24..32)?.try_into().ok()?);
    (!finishing).then_some(pid)
}

/// `crash SLOT_DIR RUNS UP_MS`: lets the gateway run UP_MS, SIGKILLs it,
/// and measures how long until s6 reports a new process. The slot's
/// crash-loop counter is reset before each kill: this measures restarts, not
/// the cap.
fn crash(args: &[String]) -> i32 {
    let slot = &args[0];
    let status = format!("{slot}/supervise/status");
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    let up_for = Duration::from_millis(args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1200));
    let mut samples = Vec::new();
    for _ in 0..runs {
        let mut old = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(pid) = status_pid(&status).filter(|&p| p != 0) {
                old = Some(pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(old) = old else {
            eprintln!("{slot}: never up");
            return 1;
        };
        std::thread::sleep(up_for);
        let _ = std::fs::remove_file(format!("{slot}/fast-failures"));
        let pid = nix::unistd::Pid::from_raw(old as i32);
        if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
            eprintln!("kill {old}: {e}");
            return 1;
        }
        let killed = Instant::now();
        loop {
            if status_pid(&status).is_some_and(|p| p != 0 && p != old) {
                samples.push(killed.elapsed().as_micros() as u64);
                break;
            }
            if killed.elapsed() > Duration::from_secs(20) {
                eprintln!("{slot}: not back after 20 s");
                return 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    println!("{}", serde_json::json!(samples));
    0
}
