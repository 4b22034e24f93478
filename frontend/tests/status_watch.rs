//! The operator's view: `gateway status --watch` under a pseudo-terminal
//! (util-linux `script`), and its refusal without one.

mod common;
use common::*;

/// Cursor home + clear screen: the start of every frame.
const CLEAR: &str = "\x1b[H\x1b[2J";

#[test]
fn watch_redraws_the_table_in_place_on_a_terminal() {
    let Some(c) = boot("watch_redraws_the_table_in_place_on_a_terminal") else {
        return;
    };
    profiles(&c, &["alpha", "beta"]);
    ok(&c, &["gateway", "start", "-p", "alpha"]);
    ok(&c, &["profile", "register", "beta", "--down"]);
    wait_up(&c, "gateway-alpha");
    wait_svstat(&c, "gateway-beta", "supervised", |s| s.supervised);
    // Interrupted after 3.5 s, as Ctrl-C would: a frame a second, so at
    // least two even when starting up is slow.
    let out = c.sh(
        User::Hermes,
        "timeout -s INT 3.5 script -qfec 'hermes-s6 gateway status --all --watch' /dev/null",
    );
    let frames: Vec<&str> = out.stdout.split(CLEAR).skip(1).collect();
    assert!(frames.len() >= 2, "{out:?}");
    for frame in &frames {
        assert!(
            frame.starts_with("Every 1s: hermes-s6 gateway status --all    "),
            "{frame:?}"
        );
        assert!(frame.contains("PROFILE  STATE"), "{frame:?}");
        assert!(frame.contains("alpha"), "{frame:?}");
        assert!(frame.contains("2 gateways: 1 up, 1 down"), "{frame:?}");
    }
    // On a terminal the state is colored.
    assert!(out.stdout.contains("\x1b[32mup\x1b[0m"), "{out:?}");

    // Without a terminal, --watch is refused with a clear message.
    let out = hs6(&c, &["gateway", "status", "--all", "--watch"]);
    assert_eq!(out.code, Some(64), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("needs a terminal on standard output"),
        "{out:?}"
    );
    // --json is unchanged by all this.
    let out = ok(&c, &["gateway", "status", "--all", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    check_status_doc(&doc);
}
