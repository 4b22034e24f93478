//! The container command, as the image runs it: s6-overlay's main program
//! (`/init /usr/local/libexec/hermes-main ARGS...`, started by rc.init once
//! the boot is done, as root, with the container's stdin, stdout and
//! terminal), dropped to hermes. The invocation table of the design, piped
//! stdin, the terminal's size, exit statuses and zombies; the stage 2 hook's
//! record of the command; and the entry point, as PID 1 and where another
//! init is PID 1 (`docker run --init`), with what `hermes-s6 doctor` says
//! then.
//!
//! rc.init is stood in for by a shell running the main program as rc.init
//! does (`$arg0 "$@"; echo $? > exitcode`): the status it prints is the one
//! the container exits with.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use hermes_s6_emu::{Container, Options, Signal, User, skip_unless_root, wait_until};

mod assets;
use assets::*;

/// hermes's PATH in the Hermes image: `/opt/hermes/bin` (where `hermes`
/// is) first; the image's own PATH is root's.
const USER_PATH: &str = "/opt/hermes/bin:/usr/local/bin:/usr/bin:/bin";

/// A stand-in for the Hermes CLI at /opt/hermes/bin/hermes, on hermes's
/// PATH only: says who runs it with which arguments, whether stdin and
/// stdout are a terminal (and its width), echoes the first line of a piped
/// stdin, and `exit N` exits N.
const FAKE_HERMES: &str = r#"#!/bin/sh
echo "hermes uid=$(id -u) args=[$*]"
[ "$1" != exit ] || exit "$2"
if [ -t 0 ] && [ -t 1 ]; then
    echo "on a terminal of $(tput cols) columns"
elif [ ! -t 0 ] && IFS= read -r line; then
    echo "stdin: $line"
fi
[ "$1 $2" != "chat -q" ] || echo "answer to $3"
exit 0
"#;

fn container() -> Container {
    let c = with_assets(Options {
        container_env: vec![
            ("HERMES_S6_USER_PATH".into(), USER_PATH.into()),
            // What `docker run -t` puts in the container's environment.
            ("TERM".into(), "xterm".into()),
        ],
        ..Options::default()
    });
    install(&c, "/opt/hermes/bin/hermes", FAKE_HERMES);
    c
}

/// rc.init's part: runs the main program with `args`, then prints the
/// status the container would exit with on a last line, `exit code N`.
fn rc_init(args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "/bin/sh",
        "-c",
        "\"$@\"; echo \"exit code $?\"",
        "rc.init",
        WRAPPER,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    argv
}

/// The main program with `stdin` piped in: its output, and the container's
/// exit status.
fn main_program(c: &Container, args: &[&str], stdin: &[u8]) -> (String, i32) {
    let out = c
        .exec(User::Root, &rc_init(args))
        .stdin_bytes(stdin)
        .output();
    out.assert_success();
    split_status(&out.stdout)
}

fn split_status(stdout: &str) -> (String, i32) {
    let text = stdout.replace("\r\n", "\n");
    let (body, last) = text
        .trim_end_matches('\n')
        .rsplit_once("exit code ")
        .unwrap_or_else(|| panic!("no exit status in {stdout:?}"));
    (
        body.trim_end_matches('\n').to_owned(),
        last.trim().parse().unwrap(),
    )
}

/// The main program on a terminal `cols` wide (`docker run -it`), through
/// script(1): its output and the container's exit status.
fn on_a_terminal(c: &Container, cols: u32, args: &[&str]) -> (String, i32) {
    for arg in args {
        assert!(
            arg.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)),
            "keep terminal test arguments simple: {arg:?}"
        );
    }
    let line = format!(
        "stty cols {cols} rows 40; {WRAPPER} {}; echo \"exit code $?\"",
        args.join(" ")
    );
    let out = c
        .exec(User::Root, &["script", "-qec", &line, "/dev/null"])
        .output();
    out.assert_success();
    split_status(&out.stdout)
}

#[test]
fn the_invocation_table() {
    if skip_unless_root("the_invocation_table") {
        return;
    }
    let c = container();

    // `docker run IMAGE`: hermes, as hermes, from hermes's PATH.
    let (out, code) = main_program(&c, &[], b"");
    assert_eq!((out.as_str(), code), ("hermes uid=10000 args=[]", 0));

    // `docker run IMAGE chat -q hello`: a hermes subcommand.
    let (out, code) = main_program(&c, &["chat", "-q", "hello"], b"");
    assert_eq!(
        (out.as_str(), code),
        ("hermes uid=10000 args=[chat -q hello]\nanswer to hello", 0)
    );

    // `docker run IMAGE bash`: the program itself, as hermes, with hermes's
    // PATH and home.
    let (out, code) = main_program(
        &c,
        &["bash"],
        b"id -u; echo \"$PATH\"; echo \"$HOME $HERMES_HOME\"; pwd\n",
    );
    assert_eq!(
        (out.as_str(), code),
        (
            format!("10000\n{USER_PATH}\n/opt/data /opt/data\n/opt/data").as_str(),
            0
        )
    );

    // `docker run IMAGE sleep infinity`: runs until stopped, as the
    // program itself (every wrapper exec'd), as hermes.
    let spawned = c.exec(User::Root, &rc_init(&["sleep", "infinity"])).spawn();
    let mut sleeper = None;
    c.wait_for(Duration::from_secs(10), "sleep infinity running", || {
        sleeper = c.pid_namespace().processes().into_iter().find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|l| l == b"sleep\0infinity\0")
        });
        sleeper.is_some()
    });
    let sleeper = sleeper.unwrap();
    assert_eq!(
        fs::metadata(format!("/proc/{sleeper}")).unwrap().uid(),
        10000
    );
    // Its parent is rc.init: every wrapper exec'd.
    let stat = fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{ppid}/cmdline"))
            .unwrap()
            .split('\0')
            .nth(3),
        Some("rc.init")
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleeper as i32), Signal::SIGTERM).unwrap();
    let (_, code) = split_status(&spawned.wait_output().stdout);
    assert_eq!(code, 128 + 15, "stopped by SIGTERM");

    // `docker run -it IMAGE` and `docker run -it IMAGE --tui`: hermes on
    // the container's terminal.
    let (out, code) = on_a_terminal(&c, 100, &[]);
    assert_eq!(
        (out.as_str(), code),
        ("hermes uid=10000 args=[]\non a terminal of 100 columns", 0)
    );
    let (out, code) = on_a_terminal(&c, 100, &["--tui"]);
    assert_eq!(
        (out.as_str(), code),
        (
            "hermes uid=10000 args=[--tui]\non a terminal of 100 columns",
            0
        )
    );
}

#[test]
fn piped_stdin_reaches_the_main_program() {
    if skip_unless_root("piped_stdin_reaches_the_main_program") {
        return;
    }
    let c = container();
    // `echo hi | docker run -i IMAGE cat`
    assert_eq!(main_program(&c, &["cat"], b"hi\n"), ("hi".to_owned(), 0));
    // `echo hi | docker run -i IMAGE chat`: hermes reads it.
    assert_eq!(
        main_program(&c, &["chat"], b"hi\n"),
        ("hermes uid=10000 args=[chat]\nstdin: hi".to_owned(), 0)
    );
    // All of it, binary included, and the end of input.
    let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let out = c
        .exec(User::Root, &rc_init(&["sh", "-c", "wc -c; exit 4"]))
        .stdin_bytes(data)
        .output();
    assert_eq!(split_status(&out.stdout), ("200000".to_owned(), 4));
}

#[test]
fn the_terminal_size_reaches_the_main_program() {
    if skip_unless_root("the_terminal_size_reaches_the_main_program") {
        return;
    }
    let c = container();
    // `docker run -it IMAGE tput cols` in a 123-column terminal.
    assert_eq!(
        on_a_terminal(&c, 123, &["tput", "cols"]),
        ("123".to_owned(), 0)
    );
    assert_eq!(
        on_a_terminal(&c, 123, &["stty", "size"]),
        ("40 123".to_owned(), 0)
    );
}

#[test]
fn exit_statuses_are_the_containers() {
    if skip_unless_root("exit_statuses_are_the_containers") {
        return;
    }
    let c = container();
    for (args, want) in [
        (&["sh", "-c", "exit 42"][..], 42),
        (&["false"][..], 1),
        // `exit` is no program: hermes gets it (the stand-in exits 7).
        (&["exit", "7"][..], 7),
        (&["sh", "-c", "kill -TERM $$"][..], 128 + 15),
        (&["sh", "-c", "kill -KILL $$"][..], 128 + 9),
        (&["sh", "-c", "exit 255"][..], 255),
        // Not a program: a hermes subcommand (the stand-in exits 0).
        (&["no-such-program", "x"][..], 0),
    ] {
        let (_, code) = main_program(&c, args, b"");
        assert_eq!(code, want, "{args:?}");
    }
    // hermes-main itself adds no process: nothing of it is left waiting.
    let (out, _) = main_program(&c, &["sh", "-c", "ps -o comm= -p $PPID"], b"");
    assert_eq!(out, "sh", "the main program's parent is rc.init");
}

#[test]
fn a_zombie_left_by_the_main_program_is_reaped() {
    if skip_unless_root("a_zombie_left_by_the_main_program_is_reaped") {
        return;
    }
    let c = container();
    // The program forks a child that exits at once, and never waits for it
    // (`exec` replaces the shell that could have): a zombie until the
    // program ends, then PID 1's (s6-svscan's) to reap.
    let program = "sleep 0.1 & exec python3 -c 'import sys, time; time.sleep(2); sys.exit(5)'";
    let spawned = c.exec(User::Root, &rc_init(&["sh", "-c", program])).spawn();
    let zombies = || {
        let out = c.sh(User::Root, "ps -eo stat=,ppid=,comm= | awk '$1 ~ /^Z/'");
        out.assert_success();
        out.stdout.trim().to_owned()
    };
    c.wait_for(Duration::from_secs(10), "the program's zombie", || {
        !zombies().is_empty()
    });
    let (_, code) = split_status(&spawned.wait_output().stdout);
    assert_eq!(code, 5, "the program's own status, zombie or not");
    assert!(
        wait_until(Duration::from_secs(5), || zombies().is_empty()),
        "zombies left: {}",
        zombies()
    );
}

#[test]
fn stage2_hook_records_the_container_command() {
    if skip_unless_root("stage2_hook_records_the_container_command") {
        return;
    }
    let c = boot();
    let command = "/run/hermes/container-command";
    let case = |args: &[&str]| -> (String, bool) {
        run_hook(&c, args);
        (read(&c, command), exists(&c, "/run/hermes/dashboard-only"))
    };
    assert_eq!(case(&[]), ("\n".to_owned(), false));
    // The reconciler learns a legacy `gateway run` container from it.
    assert_eq!(
        case(&["gateway", "run"]),
        ("gateway run\n".to_owned(), false)
    );
    assert_eq!(owner_mode(&c, command), (0, 0, 0o600));
    assert_eq!(owner_mode(&c, "/run/hermes"), (0, 0, 0o755));
    // A dashboard-only container.
    assert!(case(&["dashboard"]).1);
    assert!(case(&["hermes", "dashboard", "--port", "1"]).1);
    assert!(case(&["/opt/hermes/bin/hermes", "dashboard"]).1);
    assert!(!case(&["gateway", "dashboard"]).1);
    assert!(!case(&["sleep", "infinity"]).1);
    // Reached through the Hermes image's tini shim (main-wrapper.sh).
    let out = root(
        &c,
        &[
            "/bin/sh",
            "-c",
            "/usr/local/libexec/hermes-stage2-hook; exit $?",
            "rc.init",
            "top",
            "/opt/hermes/docker/main-wrapper.sh",
            "gateway",
            "run",
        ],
    );
    out.assert_success();
    assert_eq!(read(&c, command), "gateway run\n");
    // Another entry point: nothing recorded, said so, the boot goes on.
    let out = root(
        &c,
        &[
            "/bin/sh",
            "-c",
            "/usr/local/libexec/hermes-stage2-hook; exit $?",
            "rc.init",
            "top",
            "gateway",
            "run",
        ],
    );
    out.assert_success();
    assert!(!exists(&c, command));
    assert!(
        out.stderr.contains("the container command is not known"),
        "{out:?}"
    );
}

#[test]
fn the_entry_point_as_pid_1_hands_over_to_s6_overlay() {
    if skip_unless_root("the_entry_point_as_pid_1_hands_over_to_s6_overlay") {
        return;
    }
    let c = container();
    // A stand-in for s6-overlay's /init: its arguments and PATH.
    install(
        &c,
        "/init",
        "#!/bin/sh\nprintf '[%s]' \"$@\"; echo\necho \"PATH=$PATH\"\n",
    );
    // PID 1 of a new PID namespace, as in `docker run`.
    let out = root(
        &c,
        &[
            "unshare", "--pid", "--fork", ENTRYPOINT, "--tui", "-x", "a b",
        ],
    );
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!(
            "[{WRAPPER}][--tui][-x][a b]\nPATH=/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        ),
        "{out:?}"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(!exists(&c, "/run/hermes/not-pid1"));
}

#[test]
fn where_the_image_is_not_pid_1_it_boots_without_s6_and_says_so() {
    if skip_unless_root("where_the_image_is_not_pid_1_it_boots_without_s6_and_says_so") {
        return;
    }
    let c = container();
    // `docker run --init IMAGE chat -q hi`: tini is PID 1, the entry point
    // its child (here: s6-svscan is PID 1, the entry point one of its
    // descendants). Docker hands the entry point the image's environment.
    let out = c
        .exec(User::Root, &[ENTRYPOINT, "chat", "-q", "hi"])
        .env("HERMES_S6_USER_PATH", USER_PATH)
        .env("HERMES_HOME", "/opt/data")
        .output();
    out.assert_success();
    assert!(
        out.stdout
            .ends_with("hermes uid=10000 args=[chat -q hi]\nanswer to hi\n"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("hermes-entrypoint: warning: this container's entry point is not PID 1")
            && out
                .stderr
                .contains("no gateway and no dashboard is supervised"),
        "{out:?}"
    );
    // The boot steps ran, in order; the reconciler said why it did nothing.
    let steps: Vec<usize> = [
        "00-hermes-path: PATH is root's alone",
        "01-hermes-s6-setup: ready",
        "02-reconcile-profiles: not reconciling: PID 1 is s6-svscan",
    ]
    .iter()
    .map(|line| {
        out.stdout
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing: {out:?}"))
    })
    .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{out:?}");
    assert_eq!(owner_mode(&c, "/run/hermes/not-pid1"), (0, 0, 0o644));

    // `hermes-s6 doctor` says why nothing is supervised.
    let doctor = c.run_as(User::Hermes, &["hermes-s6", "doctor", "--json"], &[], None);
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {doctor:?}"));
    let pid1 = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "pid1")
        .unwrap_or_else(|| panic!("no pid1 check: {report}"));
    assert_eq!(pid1["verdict"], "warn", "{pid1}");
    assert!(
        pid1["detail"]
            .as_str()
            .unwrap()
            .contains("PID 1 is s6-svscan, not s6-overlay's /init"),
        "{pid1}"
    );
    assert!(pid1["fix"].as_str().unwrap().contains("--init"), "{pid1}");

    // Exit statuses are the command's; a failing boot step stops it first.
    let out = c
        .exec(User::Root, &[ENTRYPOINT, "sh", "-c", "exit 6"])
        .env("HERMES_S6_USER_PATH", USER_PATH)
        .output();
    out.assert_code(6);
    let out = c
        .exec(User::Root, &[ENTRYPOINT, "sh", "-c", "exit 6"])
        .env("HERMES_UID", "abc")
        .output();
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "hermes-entrypoint: error: the boot step /etc/cont-init.d/01-hermes-s6-setup exited 1"
        ),
        "{out:?}"
    );
}
