//! A hostile invocation environment: whatever the caller sets up, the helper
//! either does the job correctly or refuses cleanly, and is never left half
//! done, even when killed or stopped at any point.

mod common;
use common::*;

/// A complete, published slot for `p`, or none at all: never anything between.
fn assert_old_or_new(c: &Container, p: &str) -> bool {
    let slot = c.host_path(&format!("/run/service/gateway-{p}"));
    if !slot.exists() {
        return false;
    }
    for f in ["run", "finish", "timeout-kill", "supervise", "log/run", "log/supervise"] {
        assert!(slot.join(f).exists(), "published slot {p} lacks {f}");
    }
    true
}

/// Nothing left behind once a later call has run.
fn assert_no_leftovers(c: &Container) {
    let names: Vec<String> = std::fs::read_dir(c.host_path("/run/service"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let stale: Vec<&String> = names.iter().filter(|n| n.ends_with(".new") || n.ends_with(".old")).collect();
    assert!(stale.is_empty(), "stale staging or retired dirs: {stale:?}");
}

#[test]
fn attacker_chosen_environment_variables_change_nothing_about_the_result() {
    let Some(c) = boot("attacker_chosen_environment_variables") else {
        return;
    };
    profile_dir(&c, "alpha");
    let prep = c.run_as(User::Hermes, &["sh", "-c", "mkdir -p /tmp/evil && printf '#!/bin/sh\\ntouch /run/pwned\\n' > /tmp/evil/s6-svc && chmod +x /tmp/evil/s6-svc"], &[], None);
    assert_eq!(prep.code, Some(0), "{}", prep.stderr);
    let hostile = [
        ("PATH", "/tmp/evil"),
        ("IFS", "/"),
        ("HOME", "/tmp/evil"),
        ("LD_PRELOAD", "/tmp/evil/x.so"),
        ("LD_LIBRARY_PATH", "/tmp/evil"),
        ("GCONV_PATH", "/tmp/evil"),
        ("LANG", "xx_XX.EVIL"),
        ("LC_ALL", "../../tmp/evil"),
        ("RUST_BACKTRACE", "full"),
        ("RUST_LOG", "trace"),
        ("TMPDIR", "/tmp/evil"),
        ("MALLOC_CHECK_", "3"),
        ("RUST_MIN_STACK", "1"),
    ];
    for args in [
        &["register", "alpha"][..],
        &["start", "alpha"],
        &["restart", "alpha"],
        &["stop", "alpha"],
        &["unregister", "alpha"],
        &["register", "alpha"],
    ] {
        let mut argv = vec![HELPER];
        argv.extend_from_slice(args);
        let out = c.run_as(User::Hermes, &argv, &hostile, None);
        assert_eq!(out.code, Some(0), "{args:?} under a hostile environment: {}", out.stderr);
        if args[0] == "start" {
            wait_up(&c, "gateway-alpha");
        }
    }
    assert!(assert_old_or_new(&c, "alpha"));
    assert!(!c.host_path("/run/pwned").exists());
    let run = std::fs::read_to_string(c.host_path("/run/service/gateway-alpha/run")).unwrap();
    assert!(!run.contains("evil"));
}

#[test]
fn closed_standard_fds_many_inherited_fds_and_tiny_limits_are_survived() {
    let Some(c) = boot("closed_standard_fds_many_inherited_fds") else {
        return;
    };
    for p in ["a", "b", "d", "e", "f", "g"] {
        profile_dir(&c, p);
    }
    let script = format!(
        "{h} register a <&- >&- 2>&-; echo $? > /tmp/rc-closed
         perl -e '$^F = 100000; open($f{{$_}}, \"<\", \"/etc/passwd\") for 1..600; exec(\"{h}\", \"register\", \"b\")'; echo $? > /tmp/rc-fds
         prlimit --nofile=5:1024 {h} register d; echo $? > /tmp/rc-nofile
         prlimit --fsize=0:unlimited {h} register e; echo $? > /tmp/rc-fsize
         (umask 000; {h} register f); echo $? > /tmp/rc-umask000
         (umask 777; {h} register g); echo $? > /tmp/rc-umask777
         mkdir -p /tmp/locked && cd /tmp/locked && chmod 0 /tmp/locked && {h} start a; echo $? > /tmp/rc-cwd",
        h = HELPER
    );
    let out = c.run_as(User::Hermes, &["sh", "-c", &script], &[], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for case in ["closed", "fds", "nofile", "fsize", "umask000", "umask777", "cwd"] {
        let rc = std::fs::read_to_string(c.host_path(&format!("/tmp/rc-{case}"))).unwrap();
        assert_eq!(rc.trim(), "0", "case {case}");
    }
    // Modes come out exact whatever the caller's umask. (Only what the helper
    // writes is compared: s6 adds its own files whenever it gets to a slot.)
    let written_by_helper = |k: &String| !k.contains("/supervise/") && !k.ends_with("/event");
    let reference = tree(&c)
        .into_iter()
        .filter(|(k, _)| k.starts_with("/gateway-b/") && written_by_helper(k))
        .map(|(k, v)| (k.replacen("/gateway-b/", "/", 1), v))
        .collect::<std::collections::BTreeMap<_, _>>();
    for p in ["d", "e", "f", "g"] {
        let theirs = tree(&c)
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("/gateway-{p}/")) && written_by_helper(k))
            .map(|(k, v)| (k.replacen(&format!("/gateway-{p}/"), "/", 1), v))
            .collect::<std::collections::BTreeMap<_, _>>();
        assert_eq!(theirs, reference, "slot {p} differs from a normal registration");
    }
    wait_up(&c, "gateway-a");
}

#[test]
fn a_helper_killed_or_stopped_at_any_point_leaves_old_or_new_and_the_next_call_succeeds() {
    let Some(c) = boot("a_helper_killed_or_stopped_at_any_point") else {
        return;
    };
    profile_dir(&c, "k");
    // Root kills the helper (an OOM kill, a container stop): the caller
    // itself cannot signal it once it has become root.
    for round in 0..24 {
        let delay_us = (round % 8) * 400;
        let op = if round % 2 == 0 { "register" } else { "unregister" };
        let script = format!(
            "setpriv --reuid=hermes --regid=hermes --init-groups {HELPER} {op} k 2>/dev/null & pid=$!
             usleep() {{ perl -e 'select(undef,undef,undef,$ARGV[0]/1e6)' \"$1\"; }}
             usleep {delay_us}; kill -KILL $pid 2>/dev/null; wait $pid; true"
        );
        let out = c.run_as(User::Root, &["sh", "-c", &script], &[], None);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_old_or_new(&c, "k");
        // The next call completes whatever state it finds.
        let next = helper(&c, User::Hermes, &[op, "k"]);
        assert!(
            matches!(next.code, Some(0) | Some(73)),
            "round {round}: {op} after a kill: {:?} {}",
            next.code,
            next.stderr
        );
        assert_eq!(assert_old_or_new(&c, "k"), op == "register");
        assert_no_leftovers(&c);
        if op == "register" {
            ok(&c, &["start", "k"]);
            ok(&c, &["rescan"]);
            wait_up(&c, "gateway-k");
        }
    }

    // SIGSTOP mid-register: while frozen, the scan shows old or new; after
    // SIGCONT the call completes. The pid is published with a rename: read
    // while half-written, it would leave the helper frozen for good.
    for round in 0..6 {
        let delay_us = round * 500;
        let script = format!(
            "setpriv --reuid=hermes --regid=hermes --init-groups {HELPER} register k & pid=$!
             perl -e 'select(undef,undef,undef,$ARGV[0]/1e6)' {delay_us}; kill -STOP $pid 2>/dev/null
             echo $pid > /tmp/stopped-pid.new; mv /tmp/stopped-pid.new /tmp/stopped-pid
             wait $pid; echo $? > /tmp/stopped-rc"
        );
        let child = c.exec(User::Root, &["sh", "-c", &script]).spawn();
        c.wait_for(WAIT, "helper stopped", || c.host_path("/tmp/stopped-pid").exists());
        assert_old_or_new(&c, "k");
        let pid = std::fs::read_to_string(c.host_path("/tmp/stopped-pid")).unwrap();
        let cont =
            c.run_as(User::Root, &["sh", "-c", &format!("kill -CONT {} 2>/dev/null; true", pid.trim())], &[], None);
        assert_eq!(cont.code, Some(0));
        let out = child.wait_with_output().expect("wait for the stopped helper");
        assert!(out.status.success());
        let rc = std::fs::read_to_string(c.host_path("/tmp/stopped-rc")).unwrap();
        assert_eq!(rc.trim(), "0", "round {round}: the frozen register completes after SIGCONT");
        assert!(assert_old_or_new(&c, "k"));
        assert_no_leftovers(&c);
        ok(&c, &["unregister", "k"]);
        let _ = std::fs::remove_file(c.host_path("/tmp/stopped-pid"));
    }
}

/// I6 seen from outside: a helper frozen while it acts on the scan dir holds
/// no capability at all, runs as root only, and has no_new_privs set.
#[test]
fn a_running_helper_holds_no_capabilities_once_it_has_switched_to_root() {
    let Some(c) = boot("a_running_helper_holds_no_capabilities") else {
        return;
    };
    let names: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    let mut checked = 0;
    // Until caught twice while acting (a loaded machine can make the freeze
    // land before or after), at most 40 rounds.
    for round in 0..40 {
        if checked == 2 {
            break;
        }
        // A big batch keeps the helper busy long enough to be caught.
        let op = if round % 2 == 0 { "register" } else { "unregister" };
        let script = format!(
            "setpriv --reuid=hermes --regid=hermes --init-groups {HELPER} {op} {} & pid=$!
             perl -e 'select(undef,undef,undef,$ARGV[0]/1e6)' {}; kill -STOP $pid 2>/dev/null
             grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/$pid/status
             ls -l /proc/$pid/fd | grep -q ' /run/service$' && echo 'Acting: yes'; kill -CONT $pid; wait $pid",
            names.join(" "),
            2000 + (round % 8) * 1500
        );
        let out = c.run_as(User::Root, &["sh", "-c", &script], &[], None);
        let status: std::collections::HashMap<&str, &str> =
            out.stdout.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k, v.trim())).collect();
        if status.get("Acting") != Some(&"yes") {
            continue; // caught before it opened the scan dir, i.e. before it acts
        }
        checked += 1;
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"] {
            assert_eq!(status[set], "0000000000000000", "{set} in {status:?}");
        }
        assert_eq!(status["NoNewPrivs"], "1");
        assert_eq!(status["Gid"].split_whitespace().collect::<Vec<_>>(), ["0", "0", "0", "0"]);
        assert_eq!(status["Groups"], "10000", "only the hermes group, to hand files to it");
    }
    assert!(checked > 0, "never caught the helper after its identity switch");
}
