//! Shared steps of the helper's integration tests: run the real setuid helper
//! as a given user inside the container emulation, and look at the result
//! through s6 itself and the filesystem, never through the helper's output.
#![allow(dead_code)]

pub use hermes_s6_emu::{Container, Options, Output, User};
use std::collections::BTreeMap;
use std::time::Duration;

pub const HELPER: &str = "/usr/libexec/hermes-s6-helper";
pub const WAIT: Duration = Duration::from_secs(10);

/// Boots a container, or returns None (after a loud notice) when not root.
pub fn boot(test: &str) -> Option<Container> {
    boot_with(test, Options::default())
}

pub fn boot_with(test: &str, options: Options) -> Option<Container> {
    if hermes_s6_emu::skip_unless_root(test) {
        return None;
    }
    Some(Container::boot_with(options))
}

pub fn helper(c: &Container, user: User, args: &[&str]) -> Output {
    helper_with_stdin(c, user, args, None)
}

pub fn helper_with_stdin(c: &Container, user: User, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut argv = vec![HELPER];
    argv.extend_from_slice(args);
    c.run_as(user, &argv, &[], stdin)
}

/// Runs the helper as hermes and insists it succeeded.
pub fn ok(c: &Container, args: &[&str]) {
    let out = helper(c, User::Hermes, args);
    assert_eq!(out.code, Some(0), "helper {args:?} failed: {}", out.stderr);
}

/// Creates a real profile directory on the volume, owned by hermes.
pub fn profile_dir(c: &Container, profile: &str) {
    let dir = if profile == "default" { "/opt/data".to_owned() } else { format!("/opt/data/profiles/{profile}") };
    let out = c.run_as(User::Hermes, &["sh", "-c", &format!("mkdir -p {dir} && touch {dir}/SOUL.md")], &[], None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// Writes the stand-in gateway's behavior file for a profile.
pub fn standin_conf(c: &Container, profile: &str, conf: &str) {
    let out = c.run_as(
        User::Hermes,
        &["sh", "-c", &format!("cat > /opt/data/profiles/{profile}/standin.conf")],
        &[],
        Some(conf.as_bytes()),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// What s6 itself says about a slot, as root: `up wantedup pid exitcode normallyup`.
pub fn svstat(c: &Container, slot: &str) -> Svstat {
    let out = c.run_as(
        User::Root,
        &["s6-svstat", "-o", "up,wantedup,pid,exitcode,normallyup", &format!("/run/service/{slot}")],
        &[],
        None,
    );
    if out.code != Some(0) {
        return Svstat { supervised: false, up: false, wanted_up: false, pid: 0, exit_code: -1, normally_up: false };
    }
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    Svstat {
        supervised: true,
        up: f[0] == "true",
        wanted_up: f[1] == "true",
        pid: f[2].parse().unwrap_or(0),
        exit_code: f[3].parse().unwrap_or(-1),
        normally_up: f[4] == "true",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Svstat {
    pub supervised: bool,
    pub up: bool,
    pub wanted_up: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub normally_up: bool,
}

pub fn wait_up(c: &Container, slot: &str) -> Svstat {
    let mut last = None;
    c.wait_for(WAIT, &format!("{slot} up"), || {
        let s = svstat(c, slot);
        last = Some(s);
        s.up && s.pid > 0
    });
    last.unwrap()
}

/// Down and done: `finish` has ended too (until then a start can still be
/// undone by `finish` exiting 125).
pub fn wait_down(c: &Container, slot: &str) -> Svstat {
    let mut last = None;
    c.wait_for(WAIT, &format!("{slot} down"), || {
        let s = svstat(c, slot);
        last = Some(s);
        s.supervised && !s.up && !c.finishing(slot)
    });
    last.unwrap()
}

/// Waits until the gateway of `slot` reports `running` in its state file.
pub fn wait_gateway_running(c: &Container, profile: &str) {
    let file = c.volume().join(format!("profiles/{profile}/gateway_state.json"));
    c.wait_for(WAIT, &format!("{profile} reports running"), || {
        std::fs::read_to_string(&file).map(|s| s.contains("\"running\"")).unwrap_or(false)
    });
}

/// Every entry under the scan dir with its type, owner, group and mode
/// (see `hermes_s6_emu::scan_tree`).
pub fn tree(c: &Container) -> BTreeMap<String, String> {
    hermes_s6_emu::scan_tree(c, true)
}

/// The supervision half of "nothing changed": s6's view of every slot.
pub fn supervision(c: &Container) -> BTreeMap<String, Svstat> {
    let mut states = BTreeMap::new();
    if let Ok(read) = std::fs::read_dir(c.host_path("/run/service")) {
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                states.insert(name.clone(), svstat(c, &name));
            }
        }
    }
    states
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tree: BTreeMap<String, String>,
    pub supervision: BTreeMap<String, Svstat>,
}

pub fn snapshot(c: &Container) -> Snapshot {
    Snapshot { tree: tree(c), supervision: supervision(c) }
}

/// Asserts a refusal: its exit code, a single stderr line naming the helper,
/// and no change at all to the scan dir or to any supervised service.
pub fn assert_refused(c: &Container, before: &Snapshot, out: &Output, code: i32, message_part: &str) {
    assert_eq!(out.code, Some(code), "expected exit {code}, got {:?}; stderr: {}", out.code, out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.starts_with("hermes-s6-helper: ")), "stderr: {:?}", out.stderr);
    assert!(out.stderr.contains(message_part), "stderr {:?} should mention {message_part:?}", out.stderr);
    assert!(
        out.stderr.bytes().all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "raw control bytes echoed: {:?}",
        out.stderr
    );
    let after = snapshot(c);
    assert_eq!(before.tree, after.tree, "the scan dir changed");
    assert_eq!(before.supervision, after.supervision, "supervision state changed");
}
