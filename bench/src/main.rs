//! hermes-s6-bench: hermes-s6 against s6's own tools and against what a
//! Python frontend pays, measured side by side in one run, interleaved, inside
//! the container emulation (design §8 holds the targets).
//!
//! `hermes-s6-bench [--smoke]`, as root. The binaries measured are the ones
//! the emulation finds (`HERMES_S6_BIN_DIR`; `./bench` points it at the
//! release build). `--smoke` runs every measurement a few times only, to
//! prove the benchmark works; its numbers mean nothing.
//!
//! It runs on the s6 the emulation selects (`HERMES_EMU_S6`: 2.11, the
//! default, 2.13 or 2.15); every row names that s6's package version.

mod inner;
mod stats;

use hermes_s6_emu::{Container, DEFAULT_SERVICE_CAP, Options, S6Version, User, Userland};
use stats::Summary;
use std::collections::BTreeMap;
use std::time::Duration;

const HELPER: &str = "/usr/libexec/hermes-s6-helper";
const FRONTEND: &str = "/usr/local/bin/hermes-s6";
/// On the volume, so it survives container restarts.
const SELF_IN_CONTAINER: &str = "/opt/data/.bench/hermes-s6-bench";
const HERMES: &str = "10000";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("inner") {
        std::process::exit(inner::main(&args[2..]));
    }
    if hermes_s6_emu::skip_unless_root("hermes-s6-bench") {
        std::process::exit(1);
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    // `--only control,start,reconcile,status,crash` runs a subset.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_owned).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));
    let mut bench = Bench::new(smoke);
    if wanted("control") {
        bench.control_ops();
    }
    if wanted("start") {
        bench.end_to_end_start();
    }
    if wanted("socket") {
        bench.socket_vs_setuid();
    }
    if wanted("python") {
        bench.python_start();
    }
    if wanted("reconcile") {
        bench.reconcile();
    }
    if wanted("status") {
        bench.status_all();
    }
    if wanted("crash") {
        bench.crash_recovery();
    }
    bench.report();
}

struct Row {
    /// The s6 package version the row was measured on.
    s6: String,
    what: String,
    ours: Summary,
    theirs: Summary,
    target: String,
    met: Option<bool>,
}

struct Bench {
    c: Container,
    smoke: bool,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Bench {
    fn new(smoke: bool) -> Bench {
        // Room for 1000 profiles where s6-svscan takes -c (2.15's does not).
        let service_cap = S6Version::selected().takes_service_cap().then_some(DEFAULT_SERVICE_CAP);
        let c = Self::boot(Options { service_cap, ..Options::default() });
        Bench { c, smoke, rows: Vec::new(), notes: Vec::new() }
    }

    /// A container with the benchmark program on its volume and the
    /// `bench` gateway registered and up.
    fn boot(options: Options) -> Container {
        let c = Container::boot_with(options);
        let me = std::env::current_exe().expect("own path");
        let target = c.volume().join(".bench/hermes-s6-bench");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&me, &target).expect("install the benchmark in the container");
        c.sh(
            User::Hermes,
            "mkdir -p /opt/data/logs/gateways /opt/data/profiles/bench && touch /opt/data/profiles/bench/SOUL.md",
        )
        .assert_success();
        for op in ["register", "start"] {
            let out = c.run_as(User::Hermes, &[HELPER, op, "bench"], &[], None);
            assert!(out.code == Some(0) || (op == "register" && out.code == Some(73)), "{op}: {}", out.stderr);
        }
        c.wait_for(Duration::from_secs(10), "gateway-bench up", || {
            c.run_as(User::Root, &["s6-svok", "/run/service/gateway-bench"], &[], None).code == Some(0)
        });
        c
    }

    /// How many more gateway slots (a service and its logger each) fit
    /// under s6-svscan's limit now: all that is asked for where s6-svscan
    /// takes -c (the emulation gives it room); under s6 2.15's default of
    /// 1000 services, what the scan directory leaves.
    fn slots_that_fit(&self, wanted: usize) -> usize {
        if S6Version::selected().takes_service_cap() {
            return wanted;
        }
        let used = std::fs::read_dir(self.c.host_path("/run/service"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| 1 + usize::from(e.path().join("log").is_dir()))
            .sum::<usize>();
        wanted.min(1000usize.saturating_sub(used) / 2)
    }

    fn runs(&self, full: usize) -> usize {
        if self.smoke { 3 } else { full }
    }

    fn hermes_sh(&self, script: &str) {
        let out = self.c.run_as(User::Hermes, &["sh", "-ec", script], &[], None);
        assert_eq!(out.code, Some(0), "{script}: {}", out.stderr);
    }

    fn helper_ok(&self, args: &[&str]) {
        let mut argv = vec![HELPER];
        argv.extend_from_slice(args);
        let out = self.c.run_as(User::Hermes, &argv, &[], None);
        assert_eq!(out.code, Some(0), "helper {args:?}: {}", out.stderr);
    }

    fn inner(&self, args: &[&str]) -> String {
        let mut argv = vec![SELF_IN_CONTAINER, "inner"];
        argv.extend_from_slice(args);
        let out = self.c.exec(User::Root, &argv).timeout(Duration::from_secs(1800)).output();
        assert_eq!(out.code, Some(0), "inner {args:?}: {}", out.stderr);
        out.stdout
    }

    /// Runs contenders interleaved; returns each one's samples (µs).
    fn interleave(&self, runs: usize, contenders: &[(&str, &str, &[&str])]) -> BTreeMap<String, Vec<u64>> {
        let runs = runs.to_string();
        let mut args = vec!["interleave", "--runs", &runs, "--warmup", "3"];
        for (name, uid, argv) in contenders {
            args.push("--");
            args.push(name);
            args.push(uid);
            args.extend_from_slice(argv);
        }
        let json: serde_json::Value = serde_json::from_str(&self.inner(&args)).expect("inner output");
        json.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()))
            .collect()
    }

    fn row(&mut self, what: &str, ours: Summary, theirs: Summary, target: &str, met: Option<bool>) {
        let s6 = Userland::get().package_version.clone();
        self.rows.push(Row { s6, what: what.into(), ours, theirs, target: target.into(), met });
    }

    /// Section 1: one control operation: the helper as hermes vs `s6-svc` as root.
    fn control_ops(&mut self) {
        let dir = "/run/service/gateway-bench";
        let runs = self.runs(300);
        for (op, flag) in [("start", "-u"), ("stop", "-d")] {
            let s = self.interleave(
                runs,
                &[("helper", HERMES, &[HELPER, op, "bench"]), ("s6-svc", "0", &["/command/s6-svc", flag, dir])],
            );
            let (ours, theirs) = (Summary::of(&s["helper"]), Summary::of(&s["s6-svc"]));
            let ratio = ours.median / theirs.median;
            self.row(
                &format!("helper {op} vs s6-svc {flag} (one slot)"),
                ours,
                theirs,
                "ratio <= 1.3",
                Some(ratio <= 1.3),
            );
        }
        self.helper_ok(&["start", "bench"]);
        if !self.smoke {
            self.callgrind();
        }
    }

    /// Instruction counts are repeatable where wall time is not.
    fn callgrind(&mut self) {
        let copy = std::process::Command::new("cp")
            .args(["-a", "/usr/libexec/valgrind"])
            .arg(self.c.host_path("/usr/libexec/"))
            .status();
        if !copy.is_ok_and(|s| s.success()) {
            self.notes.push("callgrind: valgrind not available, skipped".into());
            return;
        }
        let count = |argv: &[&str]| -> Option<u64> {
            let mut full = vec!["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"];
            full.extend_from_slice(argv);
            let out = self.c.run_as(User::Root, &full, &[], None);
            out.stderr.lines().find_map(|l| l.split("Collected :").nth(1)).and_then(|n| n.trim().parse().ok())
        };
        // valgrind refuses setuid programs: measure a plain copy, run by root.
        let copy = self.c.run_as(
            User::Root,
            &["sh", "-c", "cp /usr/libexec/hermes-s6-helper /tmp/helper-plain && chmod 0755 /tmp/helper-plain"],
            &[],
            None,
        );
        assert_eq!(copy.code, Some(0), "{}", copy.stderr);
        let ours = count(&["/tmp/helper-plain", "start", "bench"]);
        let theirs = count(&["/command/s6-svc", "-u", "/run/service/gateway-bench"]);
        match (ours, theirs) {
            (Some(o), Some(t)) => self.notes.push(format!(
                "callgrind instructions, whole process (run as root under valgrind): helper start {o}, s6-svc -u {t}, ratio {:.2}",
                o as f64 / t as f64
            )),
            _ => self.notes.push("callgrind: could not read the instruction counts".into()),
        }
    }

    /// Section 2: `hermes-s6 gateway start -p P` end to end vs the floor and
    /// vs the least any Python frontend pays.
    fn end_to_end_start(&mut self) {
        let dir = "/run/service/gateway-bench";
        let python = format!("import subprocess; subprocess.run(['/command/s6-svc','-u','{dir}'])");
        let runs = self.runs(60);
        let s = self.interleave(
            runs,
            &[
                ("hermes-s6", HERMES, &[FRONTEND, "gateway", "start", "-p", "bench"]),
                ("s6-svc", "0", &["/command/s6-svc", "-u", dir]),
                ("python", "0", &["/usr/bin/python3", "-c", &python]),
            ],
        );
        let (ours, floor, py) = (Summary::of(&s["hermes-s6"]), Summary::of(&s["s6-svc"]), Summary::of(&s["python"]));
        let speedup = py.median / ours.median;
        self.row(
            "hermes-s6 gateway start -p P vs python3 subprocess s6-svc -u",
            ours.clone(),
            py,
            "python/ours >= 20",
            Some(speedup >= 20.0),
        );
        self.row("hermes-s6 gateway start -p P vs s6-svc -u (floor)", ours, floor, "(reference)", None);
    }

    /// Section 2c: the socket transport (for containers where setuid cannot
    /// work) vs setuid, side by side in a container whose boot started
    /// hermes-s6-helperd: one helper call (`s6-sudo` to the server vs the
    /// setuid helper), and `hermes-s6 gateway start` end to end with each.
    fn socket_vs_setuid(&mut self) {
        let service_cap = S6Version::selected().takes_service_cap().then_some(DEFAULT_SERVICE_CAP);
        let socket_container = Self::boot(Options { service_cap, cont_init: true, ..Options::default() });
        let main = std::mem::replace(&mut self.c, socket_container);
        let runs = self.runs(200);
        let sudo: &[&str] = &["/command/s6-sudo", "-e", hermes_s6_emu::HELPER_SOCKET, "start", "bench"];
        let s = self.interleave(runs, &[("socket", HERMES, sudo), ("setuid", HERMES, &[HELPER, "start", "bench"])]);
        let (ours, theirs) = (Summary::of(&s["socket"]), Summary::of(&s["setuid"]));
        self.row("helper start over the socket (s6-sudo) vs setuid", ours, theirs, "(comparison)", None);
        let runs = self.runs(60);
        let over_socket: &[&str] =
            &["/usr/bin/env", "HERMES_S6_NO_SETUID=1", FRONTEND, "gateway", "start", "-p", "bench"];
        let s = self.interleave(
            runs,
            &[("socket", HERMES, over_socket), ("setuid", HERMES, &[FRONTEND, "gateway", "start", "-p", "bench"])],
        );
        let (ours, theirs) = (Summary::of(&s["socket"]), Summary::of(&s["setuid"]));
        self.row("hermes-s6 gateway start -p P over the socket vs setuid", ours, theirs, "(comparison)", None);
        self.c = main;
    }

    /// Section 2b: one gateway start from Python, as Hermes makes it:
    /// `S6ServiceManager().start()` (hermes_s6, through `hermes-s6 --json`,
    /// as hermes) vs upstream's `subprocess.run(["s6-svc", "-u", ...])` (as
    /// root, the only user it works for), within a running interpreter and
    /// as whole processes; bench/python_start.py measures both, interleaved.
    fn python_start(&mut self) {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dest = self.c.volume().join(".bench/python");
        let _ = std::fs::remove_dir_all(&dest);
        let copied = std::process::Command::new("cp")
            .args(["-r", "--no-preserve=ownership"])
            .arg(repo.join("python/src"))
            .arg(&dest)
            .status()
            .is_ok_and(|s| s.success());
        assert!(copied, "copy the hermes_s6 package into the container");
        std::fs::copy(repo.join("bench/python_start.py"), dest.join("python_start.py")).expect("copy python_start.py");
        self.c.sh(User::Root, "chmod -R a+rX /opt/data/.bench/python").assert_success();
        let runs = self.runs(60).to_string();
        let out = self
            .c
            .exec(
                User::Root,
                &[
                    "/usr/bin/python3",
                    "/opt/data/.bench/python/python_start.py",
                    "--profile",
                    "bench",
                    "--runs",
                    &runs,
                    "--ours-user",
                    "hermes",
                    "--upstream-user",
                    "root",
                    "--cli",
                    FRONTEND,
                    "--json",
                ],
            )
            .env("PYTHONPATH", "/opt/data/.bench/python")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .timeout(Duration::from_secs(900))
            .output();
        assert_eq!(out.code, Some(0), "python_start: {}", out.stderr);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("python_start --json");
        for result in doc["results"].as_array().expect("results") {
            let side = |name: &str| {
                let ms = |key: &str| result[name][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
                Summary {
                    n: result[name]["runs"].as_u64().unwrap_or(0) as usize,
                    median: ms("median_ms"),
                    p95: ms("p90_ms"),
                }
            };
            let level = result["level"].as_str().unwrap_or("?");
            let what = match level {
                "call" => "S6ServiceManager.start() in a running Python vs subprocess s6-svc -u (root)",
                _ => "python3 -c S6ServiceManager.start() vs python3 -c subprocess s6-svc -u (root)",
            };
            self.row(what, side("ours"), side("upstream"), "(comparison; the p95 columns hold p90)", None);
        }
        self.notes.push("the Python rows: hermes_s6 runs as hermes through hermes-s6 and the setuid helper; upstream's s6-svc works only for a user who may write the control FIFO (root here)".into());
    }

    /// Section 3: reconcile of N profiles, whole process, on a fresh /run each time.
    fn reconcile(&mut self) {
        // 1000 profiles where s6-svscan takes -c; under s6 2.15's default
        // limit, the largest count that fits: `default` and s6-overlay's own
        // entries take the rest.
        self.c.restart();
        let largest = self.slots_that_fit(1001) - 1;
        let sizes: Vec<usize> = if self.smoke { vec![10] } else { vec![10, 100, largest] };
        let runs = if self.smoke { 1 } else { 9 };
        let mut medians = BTreeMap::new();
        for &n in &sizes {
            // No gateway may still be writing into the profiles replaced here.
            self.c.restart();
            // Every tenth profile was running before the restart.
            self.hermes_sh(&format!(
                "rm -rf /opt/data/profiles; mkdir -p /opt/data/profiles
                 i=0; while [ $i -lt {n} ]; do p=$(printf 'p%04d' $i); mkdir /opt/data/profiles/$p; : > /opt/data/profiles/$p/SOUL.md
                   if [ $((i % 10)) -eq 0 ]; then s=running; else s=stopped; fi
                   printf '{{\"desired_state\": \"%s\"}}' $s > /opt/data/profiles/$p/gateway_state.json; i=$((i + 1)); done"
            ));
            let mut samples = Vec::new();
            for _ in 0..runs {
                self.c.restart();
                let out = self.inner(&["time", HERMES, FRONTEND, "reconcile"]);
                samples.push(out.trim().parse::<u64>().expect("µs"));
                let slots = std::fs::read_dir(self.c.host_path("/run/service"))
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("gateway-"))
                    .count();
                assert_eq!(slots, n + 1, "reconcile of {n} profiles registered every slot");
            }
            let summary = Summary::of(&samples);
            medians.insert(n, summary.median);
            let anchor = Summary::anchor(331_000.0 * n as f64 / 1000.0);
            let met = if n == 1000 {
                Some(summary.median <= 110_000.0)
            } else if n == largest && !self.smoke {
                Some(summary.median <= 110_000.0 * n as f64 / 1000.0)
            } else {
                None
            };
            self.row(
                &format!(
                    "reconcile {n} profiles (whole process, per profile {:.3} ms)",
                    summary.median / 1000.0 / n as f64
                ),
                summary,
                anchor,
                if n == 1000 {
                    "<= 110 ms (3x the upstream anchor)"
                } else if met.is_some() {
                    "3x the upstream anchor (the most that fit)"
                } else {
                    "(scaling)"
                },
                met,
            );
        }
        if let (Some(a), Some(b)) = (medians.get(&100), medians.get(&1000)) {
            let growth = b / a;
            self.notes.push(format!(
                "reconcile growth 1000/100 = {growth:.1} (target <= 12): {}",
                if growth <= 12.0 { "met" } else { "NOT met" }
            ));
        }
        self.notes.push("reconcile is compared with the upstream Python reconciler's measured anchor (331 ms per 1000 profiles, scaled linearly), not run here".into());
        // Back to a container with the benchmark slot (and its profile,
        // which the sizes above replaced) for what follows.
        self.c.restart();
        self.hermes_sh("mkdir -p /opt/data/profiles/bench && touch /opt/data/profiles/bench/SOUL.md");
        self.helper_ok(&["register", "bench"]);
        self.helper_ok(&["start", "bench"]);
    }

    /// Section 4: `gateway status --all --json` at 1000 gateways vs 1000 s6-svstat.
    fn status_all(&mut self) {
        let n = if self.smoke { 20 } else { self.slots_that_fit(1000) };
        self.hermes_sh(&format!(
            "i=0; while [ $i -lt {n} ]; do p=$(printf 's%04d' $i); mkdir -p /opt/data/profiles/$p; : > /opt/data/profiles/$p/SOUL.md; i=$((i + 1)); done"
        ));
        let names: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
        let mut register = vec![HELPER, "register"];
        register.extend(names.iter().map(String::as_str));
        let out = self.c.run_as(User::Hermes, &register, &[], None);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        self.helper_ok(&["rescan"]);
        let svok_all = "for d in /run/service/gateway-s*; do s6-svok $d || exit 1; done";
        self.c.wait_for(Duration::from_secs(60), "all slots supervised", || {
            self.c.run_as(User::Root, &["sh", "-c", svok_all], &[], None).code == Some(0)
        });
        let loop_svstat = "for d in /run/service/gateway-*; do /command/s6-svstat \"$d\" >/dev/null || exit 1; done";
        let runs = self.runs(15);
        let s = self.interleave(
            runs,
            &[
                ("hermes-s6", HERMES, &[FRONTEND, "gateway", "status", "--all", "--json"]),
                ("s6-svstat", HERMES, &["/bin/sh", "-c", loop_svstat]),
            ],
        );
        let (ours, theirs) = (Summary::of(&s["hermes-s6"]), Summary::of(&s["s6-svstat"]));
        let met = theirs.median / ours.median >= 10.0 && ours.median <= 50_000.0;
        self.row(
            &format!("gateway status --all --json, {} gateways vs one s6-svstat each", n + 1),
            ours,
            theirs,
            ">= 10x faster and <= 50 ms",
            Some(met),
        );
    }

    /// Section 5: a crashed gateway back up, vs s6's one-second restart delay.
    fn crash_recovery(&mut self) {
        let runs = self.runs(8).to_string();
        let slot = "/run/service/gateway-bench";
        for (label, up_ms) in [("after running > 1 s", "1200"), ("right after its start", "0")] {
            let json: serde_json::Value = serde_json::from_str(&self.inner(&["crash", slot, &runs, up_ms])).unwrap();
            let samples: Vec<u64> = json.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            let ours = Summary::of(&samples);
            let met = ours.median <= 1_200_000.0;
            self.row(
                &format!("crashed gateway back up ({label})"),
                ours,
                Summary::anchor(1_000_000.0),
                "<= 1.2 x s6's 1 s delay",
                Some(met),
            );
        }
    }

    fn report(&self) {
        println!(
            "\nhermes-s6 benchmarks{}  (medians and p95 in ms; ratio = ours / theirs)\n",
            if self.smoke { " -- SMOKE RUN, numbers meaningless" } else { "" }
        );
        println!(
            "{:<12} {:<72} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7}  {:<36} met",
            "s6", "measurement", "n", "ours med", "ours p95", "them med", "them p95", "ratio", "target"
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            println!(
                "{:<12} {:<72} {:>5} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>7.3}  {:<36} {}",
                r.s6,
                r.what,
                r.ours.n,
                r.ours.median / 1000.0,
                r.ours.p95 / 1000.0,
                r.theirs.median / 1000.0,
                r.theirs.p95 / 1000.0,
                r.ours.median / r.theirs.median,
                r.target,
                met
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}
