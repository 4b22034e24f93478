//! hermes-s6-demo: the product at work in an emulated Hermes container (a
//! real s6 tree, the real setuid helper, the shipped cont-init scripts),
//! narrated step by step with the real commands. Every step checks that s6
//! did what the narration says; the exit code is non-zero if one did not.
//!
//! `hermes-s6-demo` runs the story; `hermes-s6-demo shell` leaves you in a
//! shell as the hermes user inside the container instead. Both need root
//! (to build the namespaces) and tear everything down at the end.

use hermes_s6_emu::{Container, Options, Output, User};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn main() {
    if hermes_s6_emu::skip_unless_root("hermes-s6-demo") {
        eprintln!("demo: run it as root: it builds Linux namespaces to emulate the container");
        std::process::exit(1);
    }
    let shell = std::env::args().nth(1).as_deref() == Some("shell");
    let mut demo = Demo::new();
    let code = if shell { demo.shell() } else { demo.story() };
    std::process::exit(code);
}

struct Demo {
    c: Option<Container>,
    color: bool,
    failures: Vec<String>,
    started: Instant,
}

impl Demo {
    fn new() -> Demo {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut demo = Demo {
            c: None,
            color,
            failures: Vec::new(),
            started: Instant::now(),
        };
        demo.say("booting the emulated container: PID 1 s6-svscan, /run on tmpfs, /opt/data volume, cont-init scripts");
        let c = Container::boot_with(Options {
            cont_init: true,
            syslog: true,
            container_env: vec![("HERMES_HOME".into(), "/opt/data".into())],
            ..Options::default()
        });
        for run in c.boot_log() {
            let code = run.code.map_or("?".into(), |c| c.to_string());
            demo.say(&format!("  cont-init {} -> exit {code}", run.script));
        }
        demo.c = Some(c);
        demo
    }

    fn c(&self) -> &Container {
        self.c.as_ref().expect("container")
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn heading(&self, text: &str) {
        println!("\n{}", self.paint("1;36", &format!("== {text}")));
    }

    fn say(&self, text: &str) {
        println!("{text}");
    }

    /// Runs a command as `user` in the container, showing it and its output.
    fn run(&self, user: User, cmd: &str) -> Output {
        let prompt = if user == User::Root { "#" } else { "$" };
        println!(
            "{}",
            self.paint("1", &format!("{} {prompt} {cmd}", user.name()))
        );
        let out = self.c().run_as(
            user,
            &["sh", "-c", cmd],
            &[("HERMES_HOME", "/opt/data")],
            None,
        );
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            println!("    {line}");
        }
        if out.code != Some(0) {
            let code = out.code.map_or("signal".into(), |c| c.to_string());
            println!("    {}", self.paint("2", &format!("(exit {code})")));
        }
        out
    }

    /// Records whether what s6 shows matches the narration.
    fn check(&mut self, what: &str, ok: bool) {
        if ok {
            println!("  {} {what}", self.paint("32", "ok"));
        } else {
            println!("  {} {what}", self.paint("1;31", "NOT AS NARRATED:"));
            self.failures.push(what.to_owned());
        }
    }

    /// s6's own view of a gateway slot, as root: (up, pid).
    fn svstat(&self, profile: &str) -> (bool, i64) {
        self.svstat_service(&format!("gateway-{profile}"))
    }

    /// s6's own view of `/run/service/<name>`, as root: (up, pid).
    fn svstat_service(&self, name: &str) -> (bool, i64) {
        let slot = format!("/run/service/{name}");
        let out = self
            .c()
            .run_as(User::Root, &["s6-svstat", "-o", "up,pid", &slot], &[], None);
        let mut fields = out.stdout.split_whitespace();
        (
            fields.next() == Some("true"),
            fields.next().and_then(|p| p.parse().ok()).unwrap_or(-1),
        )
    }

    fn wait(&self, what: &str, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("    (gave up waiting for {what})");
        false
    }

    /// Records a failure, without narrating anything on success, when a
    /// precondition of the next step (waited for with [`Demo::wait`]) never
    /// held.
    fn require(&mut self, what: &str, held: bool) {
        if !held {
            self.failures.push(format!("precondition: {what}"));
        }
    }

    /// A silent command as root in the container: its stdout.
    fn quiet(&self, cmd: &str) -> String {
        self.c()
            .run_as(User::Root, &["sh", "-c", cmd], &[], None)
            .stdout
    }

    /// Whether `profile`'s gateway has recorded itself `running` with `pid`
    /// in its state file (read through the host's view of the volume).
    fn gateway_recorded_running(&self, profile: &str, pid: i64) -> bool {
        let path = self
            .c()
            .volume()
            .join(format!("profiles/{profile}/gateway_state.json"));
        let state: serde_json::Value = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        state["gateway_state"] == "running" && state["pid"].as_i64() == Some(pid)
    }

    fn wait_up(&self, profile: &str) -> i64 {
        let mut pid = -1;
        self.wait(&format!("gateway-{profile} up"), || {
            let (up, p) = self.svstat(profile);
            pid = p;
            up && p > 0
        });
        pid
    }

    /// Names, owners and modes under /run/service, and s6's view of each slot.
    fn tree(&self) -> String {
        let script = "find /run/service -printf '%p %u:%g %m %y\\n' | sort; \
                      for d in /run/service/*; do s6-svstat -o up,pid,wantedup \"$d\"; done";
        self.c()
            .run_as(User::Root, &["sh", "-c", script], &[], None)
            .stdout
    }

    fn story(&mut self) -> i32 {
        self.heading("1. Three profiles; two gateways started by the hermes user");
        self.run(
            User::Hermes,
            "for p in alpha beta gamma; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md; done; ls /opt/data/profiles",
        );
        self.run(User::Hermes, "hermes-s6 gateway start -p alpha");
        self.run(User::Hermes, "hermes-s6 gateway start -p beta");
        let alpha = self.wait_up("alpha");
        let beta = self.wait_up("beta");
        self.check("s6 reports alpha and beta up", alpha > 0 && beta > 0);
        // s6 reports "up" as soon as it forked ./run, which is still root
        // until s6-setuidgid: wait for the drop before showing it.
        let ps = format!("ps -o user=,pid=,args= -p {alpha}");
        self.wait("alpha to run as hermes", || {
            self.quiet(&ps).trim_start().starts_with("hermes")
        });
        let who = self.run(User::Root, &ps);
        self.check(
            "the gateway runs as hermes, not root",
            who.stdout.trim_start().starts_with("hermes"),
        );
        self.run(User::Hermes, "hermes-s6 gateway status --all");

        self.heading("2. A gateway crashes: s6 brings it back");
        self.run(
            User::Root,
            &format!("kill -KILL {alpha}    # simulate a crash"),
        );
        let back = self.wait("a new alpha", || {
            let (up, pid) = self.svstat("alpha");
            up && pid > 0 && pid != alpha
        });
        self.check("alpha is back with a new pid", back);
        let status = self.run(User::Hermes, "hermes-s6 gateway status -p alpha --json");
        let counted = status.stdout.replace(' ', "").contains("\"restarts\":1");
        self.check("the restart is counted", counted);

        self.heading("3. One gateway stopped, one restarted");
        // The gateway read-merge-renames its state file on the way to
        // `running`; a stop written meanwhile could be lost. Step 4 relies
        // on the stop intent, so let beta finish starting first.
        let what = "beta to record itself running";
        let held = self.wait(what, || {
            let (up, pid) = self.svstat("beta");
            up && pid > 0 && self.gateway_recorded_running("beta", pid)
        });
        self.require(what, held);
        self.run(User::Hermes, "hermes-s6 gateway stop -p beta");
        let stopped = self.wait("beta down", || !self.svstat("beta").0);
        self.check("beta is down and stays down", stopped);
        let before = self.svstat("alpha").1;
        self.run(User::Hermes, "hermes-s6 gateway restart -p alpha");
        let restarted = self.wait("alpha with a new pid", || {
            let (up, pid) = self.svstat("alpha");
            up && pid > 0 && pid != before
        });
        self.check("alpha restarted with a new pid", restarted);
        self.run(User::Hermes, "hermes-s6 gateway status --all");

        self.heading(
            "4. docker restart: /run is wiped, reconcile brings back exactly what was running",
        );
        self.c.as_mut().expect("container").restart();
        self.say("(container restarted; cont-init ran again)");
        let alpha_up = self.wait_up("alpha") > 0;
        self.check("alpha (was running) is up again", alpha_up);
        self.check("beta (was stopped) is not running", !self.svstat("beta").0);
        self.run(User::Hermes, "tail -n 4 /opt/data/logs/container-boot.log");
        self.run(User::Hermes, "hermes-s6 gateway status --all");

        self.heading("5. A crash-looping gateway is capped instead of restarting forever");
        self.run(
            User::Hermes,
            "mkdir -p /opt/data/profiles/broken && touch /opt/data/profiles/broken/SOUL.md && echo crash_after_ms=0 > /opt/data/profiles/broken/standin.conf",
        );
        self.run(User::Hermes, "hermes-s6 gateway start -p broken");
        let record = self.c().host_path("/run/service/gateway-broken/crash-loop");
        // The finish script writes the record, then exits 125: s6 has
        // stopped it once the slot is down and no longer wanted up.
        let capped = self.wait("the crash-loop cap", || {
            record.exists()
                && self
                    .quiet("s6-svstat -o up,wantedup /run/service/gateway-broken")
                    .split_whitespace()
                    .eq(["false", "false"])
        });
        self.check("s6 stopped restarting it after 5 fast failures", capped);
        self.run(User::Hermes, "cat /run/service/gateway-broken/crash-loop");

        self.heading("6. Refusals, as the hermes user: nothing changes");
        self.c()
            .add_service("main-hermes", "#!/bin/sh\nexec sleep 100000\n", None);
        // add_service only waits for the supervisor: let main-hermes come up
        // before the snapshot, or s6's view of it changes under the checks.
        let what = "main-hermes up";
        let held = self.wait(what, || {
            let (up, pid) = self.svstat_service("main-hermes");
            up && pid > 0
        });
        self.require(what, held);
        let before = self.tree();
        let name = self.run(
            User::Hermes,
            "/usr/libexec/hermes-s6-helper start '../main-hermes'",
        );
        self.check(
            "a malicious profile name is refused (65)",
            name.code == Some(65),
        );
        let svc = self.run(User::Hermes, "s6-svc -d /run/service/main-hermes");
        self.check(
            "hermes cannot control main-hermes with s6 directly",
            svc.code != Some(0),
        );
        let other = self.run(
            User::Hermes,
            "/usr/libexec/hermes-s6-helper stop main-hermes",
        );
        self.check(
            "the helper only ever forms gateway-<profile>: no such slot (66)",
            other.code == Some(66),
        );
        let plant = self.run(
            User::Hermes,
            "mkdir /run/service/evil && echo 'id > /tmp/pwned' > /run/service/evil/run",
        );
        self.check(
            "hermes cannot plant a service in /run/service",
            plant.code != Some(0),
        );
        let unchanged = self.tree() == before;
        self.check(
            "the scan dir and every service are exactly as before",
            unchanged,
        );

        self.heading("7. The audit trail of every privileged call (syslog, authpriv)");
        for record in self.c().syslog_records() {
            println!("    {record}");
        }

        self.heading("8. Teardown");
        self.teardown();

        self.non_root();
        self.teardown();
        self.finish()
    }

    /// Ends the container, and checks that nothing of it is left.
    fn teardown(&mut self) {
        let namespace = self.c().pid_namespace();
        self.c = None;
        self.check(
            "no process of the container survives, no mount is left",
            namespace.processes().is_empty(),
        );
    }

    /// The same image started as hermes (docker run --user 10000): s6
    /// itself runs as hermes, and hermes-s6 runs the same helper with no
    /// privilege at all.
    fn non_root(&mut self) {
        self.heading(
            "9. The same image started as hermes (docker run --user 10000): no privilege anywhere",
        );
        let c = Container::boot_with(Options {
            non_root: true,
            cont_init: true,
            syslog: true,
            container_env: vec![("HERMES_HOME".into(), "/opt/data".into())],
            ..Options::default()
        });
        self.c = Some(c);
        let pid1 = self.run(User::Root, "grep -E '^(Name|Uid|CapEff)' /proc/1/status");
        self.check(
            "PID 1 is s6-svscan, as hermes, with no capability",
            pid1.stdout.contains("s6-svscan")
                && pid1.stdout.contains("Uid:\t10000\t10000")
                && pid1.stdout.contains("CapEff:\t0000000000000000"),
        );
        let info = self.run(
            User::Hermes,
            "hermes-s6 info | grep -i -E 'control|registration'",
        );
        self.check(
            "hermes-s6 picks the owner transport",
            info.stdout.contains("owner"),
        );
        self.run(
            User::Hermes,
            "mkdir -p /opt/data/profiles/alpha && touch /opt/data/profiles/alpha/SOUL.md && hermes-s6 gateway start -p alpha",
        );
        let alpha = self.wait_up("alpha");
        self.check("s6 reports alpha up", alpha > 0);
        let slot = self.run(
            User::Hermes,
            "stat -c '%U:%G %a %n' /run/service/gateway-alpha /run/service/gateway-alpha/run; grep -c s6-setuidgid /run/service/gateway-alpha/run || true",
        );
        self.check(
            "the slot is hermes's, and its run script has no drop to hermes: s6 already runs as hermes",
            slot.stdout
                .contains("hermes:hermes 755 /run/service/gateway-alpha\n")
                && slot.stdout.ends_with("\n0\n"),
        );
        let what = "alpha to record itself running";
        let held = self.wait(what, || self.gateway_recorded_running("alpha", alpha));
        self.require(what, held);
        self.run(User::Hermes, "hermes-s6 gateway stop -p alpha");
        let stopped = self.wait("alpha down", || !self.svstat("alpha").0);
        self.check("alpha is down", stopped);
        let records = self.c().syslog_records();
        for record in &records {
            println!("    {record}");
        }
        self.check(
            "the helper's records say via=owner",
            records.iter().any(|r| r.contains("via=owner op=start")),
        );
    }

    fn shell(&mut self) -> i32 {
        self.run(
            User::Hermes,
            "for p in alpha beta; do mkdir -p /opt/data/profiles/$p && touch /opt/data/profiles/$p/SOUL.md; done; hermes-s6 gateway start -p alpha",
        );
        self.heading("A shell as hermes inside the emulated container. Try:");
        for hint in [
            "hermes-s6 gateway status --all",
            "hermes-s6 gateway start -p beta; hermes-s6 gateway stop -p alpha",
            "hermes-s6 doctor",
            "/usr/libexec/hermes-s6-helper start '../x'      # refused",
            "mkdir /run/service/evil                        # refused",
            "exit                                           # tears everything down",
        ] {
            println!("    {hint}");
        }
        let shell = self.c().exec(User::Hermes, &["/bin/bash", "--norc", "-i"]);
        let mut cmd = shell
            .env("HERMES_HOME", "/opt/data")
            .env("PS1", "hermes@container:\\w$ ")
            .command();
        let status = cmd.status();
        self.c = None;
        println!("container torn down");
        status.map_or(1, |s| s.code().unwrap_or(1))
    }

    fn finish(&self) -> i32 {
        let secs = self.started.elapsed().as_secs_f64();
        if self.failures.is_empty() {
            println!(
                "\n{} (in {secs:.1} s)",
                self.paint("1;32", "Every step behaved as narrated.")
            );
            return 0;
        }
        let summary = format!(
            "{} step(s) did not behave as narrated:",
            self.failures.len()
        );
        println!("\n{} {:?}", self.paint("1;31", &summary), self.failures);
        1
    }
}
