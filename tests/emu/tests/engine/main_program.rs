//! The container command under the real engine, as `main_program.rs` shows
//! it in the emulation: the invocation table, piped stdin, the terminal's
//! size, exit statuses and a zombie the main program leaves. The main
//! program is found in the container's process tree as the child of
//! s6-overlay's `rc.init`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{Ctr, Out, REPO, image, podman, run};

/// A process of the container, as root sees it in /proc.
#[derive(Debug)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Real, effective, saved and filesystem uids.
    uids: Vec<u32>,
    argv: Vec<String>,
}

/// One line per process: pid, ppid, uids, argv (0x1f apart).
const PS: &str = r#"for d in /proc/[0-9]*; do
    s=$(cat "$d/stat" 2>/dev/null) || continue
    s=${s##*) }
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$d/status" 2>/dev/null) || continue
    printf '%s\t%s\t%s\t%s\n' "${d#/proc/}" "$(echo "$s" | cut -d' ' -f2)" "$uids" \
        "$(tr '\0' '\037' <"$d/cmdline")"
done"#;

impl Ctr {
    fn processes(&self) -> Vec<Proc> {
        let out = self.sh("root", PS).expect_ok("list processes");
        out.stdout
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let [pid, ppid, uids, argv] = f[..] else {
                    return None;
                };
                Some(Proc {
                    pid: pid.parse().ok()?,
                    ppid: ppid.parse().ok()?,
                    uids: uids.split(' ').filter_map(|u| u.parse().ok()).collect(),
                    argv: argv
                        .trim_end_matches('\x1f')
                        .split('\x1f')
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }

    /// The main program once it runs `argv`: a direct child of rc.init
    /// (every wrapper exec'd).
    fn main_program(&self, argv: &[&str]) -> Proc {
        let mut found = None;
        self.wait(&format!("the main program {argv:?}"), 30, || {
            let mut procs = self.processes();
            let rc_init: Vec<u32> = procs
                .iter()
                .filter(|p| p.argv.iter().take(2).any(|a| a.ends_with("/rc.init")))
                .map(|p| p.pid)
                .collect();
            found = procs
                .iter()
                .position(|p| rc_init.contains(&p.ppid) && p.argv == argv)
                .map(|i| procs.swap_remove(i));
            found.is_some()
        });
        found.expect("found")
    }
}

/// `podman run --rm OPTS IMAGE CMD` in the foreground, `stdin` piped in.
fn run_rm(image: &str, opts: &[&str], cmd: &[&str], stdin: &[u8]) -> Out {
    let mut child = Command::new("podman")
        .arg("run")
        .arg("--rm")
        .args(opts)
        .arg(image)
        .args(cmd)
        .current_dir(REPO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman run");
    let mut pipe = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&stdin));
    let out = child.wait_with_output().expect("podman run");
    writer.join().expect("stdin writer").expect("write stdin");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The last line of the output: the boot steps write theirs before it.
fn last_line(out: &Out) -> &str {
    out.stdout.lines().last().unwrap_or("")
}

/// Checks the main program runs `argv` as hermes, exec'd by every wrapper.
fn runs_as_hermes(c: &Ctr, argv: &[&str]) -> Proc {
    let p = c.main_program(argv);
    assert_eq!(p.uids, [10000; 4], "{p:?}");
    p
}

#[test]
fn invocation_no_arguments_runs_hermes() {
    let Some(image) = image("invocation_no_arguments_runs_hermes") else {
        return;
    };
    // `docker run IMAGE`: the stand-in Hermes idles until SIGTERM, exits 0.
    let c = Ctr::start(image, "mp-noargs", &[], &[]);
    runs_as_hermes(&c, &["hermes"]);
    assert!(c.logs().contains("hermes-standin: idle"), "{}", c.logs());
    podman(&["stop", "-t", "20", &c.name]).expect_ok("podman stop");
    assert_eq!(c.exit_code(), 0, "{}", c.logs());
}

#[test]
fn invocation_a_hermes_subcommand() {
    let Some(image) = image("invocation_a_hermes_subcommand") else {
        return;
    };
    // `docker run IMAGE chat -q hello`: `chat` is no program.
    let c = Ctr::start(image, "mp-chat", &[], &["chat", "-q", "hello"]);
    runs_as_hermes(&c, &["hermes", "chat", "-q", "hello"]);
}

#[test]
fn invocation_a_program_until_podman_stop() {
    let Some(image) = image("invocation_a_program_until_podman_stop") else {
        return;
    };
    // `docker run IMAGE sleep infinity`: the program itself; `docker stop`
    // hands it SIGTERM, and its death is the container's status.
    let c = Ctr::start(image, "mp-sleep", &[], &["sleep", "infinity"]);
    runs_as_hermes(&c, &["sleep", "infinity"]);
    let started = Instant::now();
    podman(&["stop", "-t", "20", &c.name]).expect_ok("podman stop");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "podman stop took {:?} (killed after its timeout?)",
        started.elapsed()
    );
    assert_eq!(c.exit_code(), 128 + 15, "{}", c.logs());
}

#[test]
fn invocation_a_program_exit_status() {
    let Some(image) = image("invocation_a_program_exit_status") else {
        return;
    };
    // `docker run IMAGE bash -c 'exit 7'`
    let out = run_rm(image, &[], &["bash", "-c", "id -u; exit 7"], b"");
    assert_eq!(
        (out.code, last_line(&out)),
        (Some(7), "10000"),
        "{}",
        out.stderr
    );
}

#[test]
fn invocation_tui_keeps_the_terminal() {
    let Some(image) = image("invocation_tui_keeps_the_terminal") else {
        return;
    };
    // `docker run -it IMAGE --tui`: `--tui` reaches hermes (not /init's
    // option parser), on the container's terminal.
    let c = Ctr::start(image, "mp-tui", &["-i", "-t"], &["--tui"]);
    let p = runs_as_hermes(&c, &["hermes", "--tui"]);
    // (Root has no CAP_SYS_PTRACE here: hermes reads its own process's fds.)
    let fds = c
        .sh(
            "hermes",
            &format!("readlink /proc/{}/fd/0 /proc/{}/fd/1", p.pid, p.pid),
        )
        .expect_ok("the main program's fds")
        .stdout;
    let fds: Vec<&str> = fds.lines().collect();
    assert!(
        fds.len() == 2 && fds[0].starts_with("/dev/pts/") && fds[1] == fds[0],
        "stdin and stdout are the terminal: {fds:?}"
    );
}

#[test]
fn piped_stdin_reaches_the_main_program() {
    let Some(image) = image("piped_stdin_reaches_the_main_program") else {
        return;
    };
    // `echo hi | docker run -i IMAGE cat`
    let out = run_rm(image, &["-i"], &["cat"], b"hi\n");
    assert_eq!(
        (out.code, last_line(&out)),
        (Some(0), "hi"),
        "{}",
        out.stderr
    );
    // All of it, binary included, and the end of input.
    let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let out = run_rm(image, &["-i"], &["sh", "-c", "wc -c; exit 4"], &data);
    assert_eq!(
        (out.code, last_line(&out)),
        (Some(4), "200000"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_terminal_size_reaches_the_main_program() {
    let Some(image) = image("the_terminal_size_reaches_the_main_program") else {
        return;
    };
    // `docker run -it IMAGE stty size` (then `tput cols`) in a terminal 123
    // columns wide and 40 rows high.
    let line = format!(
        "stty cols 123 rows 40; podman run -it --rm {image} sh -c 'stty size; tput cols; exit 3'"
    );
    let out = run("script", &["-qec", &line, "/dev/null"]);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        out.code == Some(3) && lines.windows(2).any(|w| w == ["40 123", "123"]),
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
}

#[test]
fn exit_statuses_are_the_containers() {
    let Some(image) = image("exit_statuses_are_the_containers") else {
        return;
    };
    let cases = [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
        ("kill -HUP $$", 128 + 1),
    ];
    std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(script, _)| s.spawn(move || run_rm(image, &[], &["sh", "-c", script], b"")))
            .collect();
        for ((script, want), run) in cases.iter().zip(runs) {
            let out = run.join().expect("podman run");
            assert_eq!(out.code, Some(*want), "{script}: {}", out.stderr);
        }
    });
}

#[test]
fn a_zombie_left_by_the_main_program_is_reaped() {
    let Some(image) = image("a_zombie_left_by_the_main_program_is_reaped") else {
        return;
    };
    // A child of the main program's forks one that exits at once, and
    // never waits for it (`exec` replaces the shell that could have): a
    // zombie until that child ends, then PID 1's (s6-svscan's) to reap,
    // while the main program runs on.
    let c = Ctr::start(
        image,
        "mp-zombie",
        &[],
        &[
            "sh",
            "-c",
            "sh -c 'sleep 0.1 & exec sleep 3'; exec sleep infinity",
        ],
    );
    c.wait("the zombie", 30, || !c.zombies().is_empty());
    runs_as_hermes(&c, &["sleep", "infinity"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.zombies().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    assert_eq!(c.zombies(), "", "zombies left");

    // The main program's own status, zombie or not.
    let out = run_rm(
        image,
        &[],
        &["sh", "-c", "sleep 0.1 & exec sh -c 'sleep 1; exit 5'"],
        b"",
    );
    assert_eq!(out.code, Some(5), "{}", out.stderr);
}
