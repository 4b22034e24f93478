//! s6-svscan's service limit, as the frontend meets it: the reconciler
//! registers what fits (`default`, then the profiles meant to run, then the
//! rest in name order) and says which it left out, in its summary, its JSON
//! and the boot log; `info` reports the limit and its use; the helper never
//! has to refuse.

mod common;
use common::*;
use hermes_s6_emu::{S6Version, skip_unless_s6};

/// `-c` counts service directories: s6-overlay's five entries, and room
/// for `slots` gateway slots.
fn boot_with_room(test: &str, slots: u32) -> Option<Container> {
    let cap = hermes_s6_emu::overlay_entries().len() as u32 - 1 + slots;
    boot_with(
        test,
        Options {
            service_cap: Some(cap),
            ..Options::default()
        },
    )
}

#[test]
fn reconcile_registers_what_fits_and_says_what_it_left_out() {
    let test = "reconcile_registers_what_fits_and_says_what_it_left_out";
    if skip_unless_s6(
        &[S6Version::V2_11, S6Version::V2_13],
        test,
        "s6 2.15 takes no -c",
    ) {
        return;
    }
    // The boot reconciled `default` already: two slots left.
    let Some(c) = boot_with_room(test, 3) else {
        return;
    };
    profiles(&c, &["alpha", "bravo", "charlie"]);
    write_as_hermes(
        &c,
        "/opt/data/profiles/charlie/gateway_state.json",
        br#"{"desired_state": "running"}"#,
    );
    let records = helper_calls(&c).len();
    let out = hs6(&c, &["reconcile", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    check_reconcile_doc(&doc);
    let by_name = |name: &str| {
        doc["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["profile"] == name)
            .cloned()
            .unwrap()
    };
    // charlie is meant to run: it gets the room before alpha and bravo.
    assert_eq!(by_name("charlie")["action"], "started");
    assert_eq!(by_name("alpha")["action"], "registered");
    let bravo = by_name("bravo");
    assert_eq!(bravo["action"], "skipped", "{bravo}");
    let why = bravo["left_out"].as_str().unwrap();
    assert!(
        why.contains("s6-svscan supervises at most 8 services here (s6-svscan -c)"),
        "{why}"
    );
    assert!(by_name("default")["left_out"].is_null());
    // The helper was never asked for what does not fit.
    assert!(
        !helper_calls(&c)[records..]
            .iter()
            .any(|r| r.contains("exit=75"))
    );
    wait_gateway_running(&c, "charlie");
    assert!(!c.host_path("/run/service/gateway-bravo").exists());
    let log = std::fs::read_to_string(on_volume(&c, "/opt/data/logs/container-boot.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(" profile=bravo ") && l.contains(" action=skipped ")),
        "{log}"
    );

    // The text summary says it too.
    let text = ok(&c, &["reconcile", "--dry-run"]).stdout;
    assert!(
        text.contains("bravo: skipped") && text.contains("left out"),
        "{text}"
    );

    // info: the limit and its use.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&c, &["info", "--json"]).stdout).unwrap();
    assert_eq!(info["scan_dir"]["limit"], 8);
    assert_eq!(info["scan_dir"]["services"], 8);

    // doctor: the use of the limit, and a warning this near it.
    let doctor: serde_json::Value =
        serde_json::from_str(&hs6(&c, &["doctor", "--json"]).stdout).unwrap();
    let limit = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "scandir.limit")
        .unwrap();
    assert_eq!(limit["verdict"], "warn", "{limit}");
    assert!(
        limit["detail"]
            .as_str()
            .unwrap()
            .contains("8 of 8 services in use (s6-svscan -c): room for 0 more"),
        "{limit}"
    );

    // A registration by hand past the limit: the helper's refusal, as is.
    let out = hs6(&c, &["profile", "register", "bravo"]);
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        out.stderr.contains("at most 8 services here"),
        "{}",
        out.stderr
    );
    assert!(!c.host_path("/run/service/gateway-bravo").exists());
}
