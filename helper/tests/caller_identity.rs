//! Who the caller is. In a setuid start, the real ids of the process that
//! ran the helper; when root runs it for s6-sudod (the socket transport),
//! the socket peer's ids, which s6-ipcserverd puts in IPCREMOTEEUID and
//! IPCREMOTEEGID. Only root can make the real uid 0, so only root's
//! environment is believed: the same variables from anyone else mean
//! nothing. Either way the same authorization applies, and the audit record
//! says which transport carried the call.

mod common;
use common::*;

fn with_env(c: &Container, user: User, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut argv = vec![HELPER];
    argv.extend_from_slice(args);
    let mut exec = c.exec(user, &argv);
    for (key, value) in env {
        exec = exec.env(key, value);
    }
    exec.output()
}

fn last_record(c: &Container, at_least: usize) -> String {
    c.wait_for(WAIT, "the audit record", || c.syslog_records().len() >= at_least);
    let record = c.syslog_records().pop().unwrap();
    record.split_once("]: ").map_or(record.clone(), |(_, line)| line.to_owned())
}

#[test]
fn ipc_variables_from_a_caller_that_is_not_root_mean_nothing() {
    // Executable by everyone (4755), so that a caller outside group hermes
    // reaches the authorization at all.
    let options = Options { syslog: true, helper_mode: 0o4755, ..Options::default() };
    let Some(c) = boot_with("ipc_variables_from_a_caller_that_is_not_root_mean_nothing", options) else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    let hermes_gid = c.gid(User::Hermes).to_string();
    // The intruder claims to be root, then to be in group hermes.
    for forged in [
        [("IPCREMOTEEUID", "0"), ("IPCREMOTEEGID", "0")],
        [("IPCREMOTEEUID", "10000"), ("IPCREMOTEEGID", hermes_gid.as_str())],
    ] {
        let before = snapshot(&c);
        let records = c.syslog_records().len();
        let out = with_env(&c, User::Intruder, &forged, &["start", "alpha"]);
        assert_refused(&c, &before, &out, 77, "uid 10001 is not in group hermes");
        assert_eq!(last_record(&c, records + 1), "caller_uid=10001 via=setuid op=- profiles=- result=refused exit=77");
    }
    // hermes claiming to be root is hermes.
    let records = c.syslog_records().len();
    let out = with_env(&c, User::Hermes, &[("IPCREMOTEEUID", "0"), ("IPCREMOTEEGID", "0")], &["start", "alpha"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(last_record(&c, records + 2), "caller_uid=10000 via=setuid op=start profiles=alpha result=ok");
}

#[test]
fn root_running_the_helper_for_a_socket_peer_authorizes_that_peer() {
    let Some(c) =
        boot_with("root_running_the_helper_for_a_socket_peer", Options { syslog: true, ..Options::default() })
    else {
        return;
    };
    profile_dir(&c, "alpha");
    ok(&c, &["register", "alpha"]);
    // What s6-sudod hands the helper for a peer outside group hermes.
    let before = snapshot(&c);
    let records = c.syslog_records().len();
    let intruder = [("IPCREMOTEEUID", "10001"), ("IPCREMOTEEGID", "10001")];
    let out = with_env(&c, User::Root, &intruder, &["start", "alpha"]);
    assert_refused(&c, &before, &out, 77, "uid 10001 is not in group hermes");
    assert_eq!(last_record(&c, records + 1), "caller_uid=10001 via=socket op=- profiles=- result=refused exit=77");
    // For hermes: the same operation as through setuid, recorded as the
    // socket's.
    let hermes_gid = c.gid(User::Hermes).to_string();
    let records = c.syslog_records().len();
    let out =
        with_env(&c, User::Root, &[("IPCREMOTEEUID", "10000"), ("IPCREMOTEEGID", &hermes_gid)], &["start", "alpha"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(last_record(&c, records + 2), "caller_uid=10000 via=socket op=start profiles=alpha result=ok");
    wait_up(&c, "gateway-alpha");
    // Root without those variables is root.
    let records = c.syslog_records().len();
    assert_eq!(helper(&c, User::Root, &["stop", "alpha"]).code, Some(0));
    assert_eq!(last_record(&c, records + 2), "caller_uid=0 via=root op=stop profiles=alpha result=ok");
}
