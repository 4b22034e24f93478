//! s6-svscan's service limit: `register` never takes the scan directory
//! past it. Past it, s6 2.15 aborts whole scans, and entries such a scan saw
//! (of any service, not only gateways) may stay unsupervised; so a
//! registration that would not fit is refused with 75 before anything
//! changes, saying the limit, what is in use and what to do.

mod common;
use common::*;
use hermes_s6_emu::{skip_unless_s6, S6Version};

fn profiles(c: &Container, names: &[String]) {
    let dirs: Vec<String> = names.iter().map(|p| format!("/opt/data/profiles/{p}")).collect();
    let script = format!("for d in {}; do mkdir -p $d && touch $d/SOUL.md || exit 1; done", dirs.join(" "));
    c.sh(User::Hermes, &script).assert_success();
}

/// Any call that takes the helper's lock leaves its (root-only) lock file in
/// the scan dir; one is made first, so that "nothing changed" compares what
/// a boot's later calls would see.
fn take_the_helper_lock_once(c: &Container) {
    assert_eq!(helper(c, User::Hermes, &["stop", "nosuch"]).code, Some(66));
}

fn register(c: &Container, names: &[String]) -> Output {
    let mut args = vec!["register"];
    args.extend(names.iter().map(String::as_str));
    helper(c, User::Hermes, &args)
}

/// Every one of these gateway slots has its s6-supervise and its logger's
/// (read from the container's processes: hundreds of s6-svok would be slow).
fn all_supervised(c: &Container, names: &[String]) -> bool {
    let running: std::collections::HashSet<Vec<u8>> = c
        .pid_namespace()
        .processes()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .filter_map(|cmdline| cmdline.strip_prefix(b"s6-supervise\0").map(<[u8]>::to_vec))
        .collect();
    names.iter().all(|p| {
        running.contains(format!("gateway-{p}\0").as_bytes())
            && running.contains(format!("gateway-{p}/log\0").as_bytes())
    })
}

#[test]
fn registration_past_a_limit_given_to_s6_svscan_with_c_is_refused_before_anything_changes() {
    if skip_unless_s6(
        &[S6Version::V2_11, S6Version::V2_13],
        "registration_past_a_limit_given_with_c",
        "s6 2.15 takes no -c",
    ) {
        return;
    }
    // -c counts service directories, a logger included: s6-overlay's own
    // five entries leave room for three gateway slots.
    let cap = hermes_s6_emu::overlay_entries().len() as u32 - 1 + 3;
    let Some(c) =
        boot_with("registration_past_a_limit_given_with_c", Options { service_cap: Some(cap), ..Options::default() })
    else {
        return;
    };
    let used = hermes_s6_emu::overlay_entries().len() - 1;
    let names: Vec<String> = (1..=4).map(|i| format!("p{i}")).collect();
    profiles(&c, &names);
    take_the_helper_lock_once(&c);
    let before = snapshot(&c);
    let out = register(&c, &names);
    let expected = format!("at most {cap} services here (s6-svscan -c), {used} are in use and 4 new slot(s) need 4");
    assert_refused(&c, &before, &out, 75, &expected);
    assert!(out.stderr.contains("unregister gateways no longer needed"), "{}", out.stderr);
    ok(&c, &["register", "p1", "p2", "p3"]);
    ok(&c, &["rescan"]);
    c.wait_for(WAIT, "every registered slot supervised", || all_supervised(&c, &names[..3]));
    let before = snapshot(&c);
    let out = register(&c, &names[3..]);
    assert_refused(&c, &before, &out, 75, &format!("{} are in use and 1 new slot(s) need 1", used + 3));
    // A slot that exists needs no room: its refusal is the usual one.
    let out = register(&c, &names[..1]);
    assert_eq!(out.code, Some(73), "{}", out.stderr);
}

#[test]
fn the_scan_directory_fills_to_s6_2_15s_default_limit_and_no_further() {
    if skip_unless_s6(
        &[S6Version::V2_15],
        "the_scan_directory_fills_to_s6_2_15s_default_limit",
        "the default limit of 1000 with every logger counted is s6 2.15's",
    ) {
        return;
    }
    let Some(c) = boot("the_scan_directory_fills_to_s6_2_15s_default_limit") else {
        return;
    };
    // s6-overlay's own 5 entries, then gateway slots of two services each:
    // 497 fit under 1000, the 498th does not.
    let used = hermes_s6_emu::overlay_entries().len() - 1;
    let fit = (1000 - used) / 2;
    let names: Vec<String> = (0..=fit).map(|i| format!("g{i:03}")).collect();
    profiles(&c, &names);
    take_the_helper_lock_once(&c);
    let before = snapshot(&c);
    let out = register(&c, &names);
    assert_refused(
        &c,
        &before,
        &out,
        75,
        &format!(
            "at most 1000 services here (s6's default), {used} are in use and {} new slot(s) need {}",
            fit + 1,
            2 * (fit + 1)
        ),
    );
    ok(&c, &{
        let mut args = vec!["register"];
        args.extend(names[..fit].iter().map(String::as_str));
        args
    });
    ok(&c, &["rescan"]);
    c.wait_for(std::time::Duration::from_secs(120), "every registered slot supervised", || {
        all_supervised(&c, &names[..fit])
    });
    let before = snapshot(&c);
    let out = register(&c, &names[fit..]);
    assert_refused(&c, &before, &out, 75, &format!("{} are in use and 1 new slot(s) need 2", used + 2 * fit));
    // s6 itself still supervises everything: a rescan changes nothing.
    ok(&c, &["rescan"]);
    assert!(all_supervised(&c, &names[..fit]));
    assert!(c.sh(User::Root, "s6-svok /run/service/s6-linux-init-shutdownd").success());
}
