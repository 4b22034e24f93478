//! The status parser against real s6 status files: every answer must equal
//! what `s6-svstat` said about the same file (see tests/fixtures/README.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hermes_s6::s6::death_tally;
use hermes_s6::s6::status::SuperviseStatus;
use hermes_s6::s6::supervise;
use hermes_s6::status::ProcessStatus;
use hermes_s6::time::Tai64N;

struct Fixture {
    name: String,
    status_bytes: Vec<u8>,
    death_tally: Vec<u8>,
    facts: HashMap<String, String>,
}

impl Fixture {
    fn load(dir: &Path) -> Self {
        let facts = std::fs::read_to_string(dir.join("svstat.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            name: dir.display().to_string(),
            status_bytes: std::fs::read(dir.join("status")).unwrap(),
            death_tally: std::fs::read(dir.join("death_tally")).unwrap(),
            facts,
        }
    }

    fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{}: no {key}", self.name))
    }

    fn instant(&self, key: &str) -> Tai64N {
        Tai64N::from_label_str(self.fact(key)).unwrap()
    }

    fn normally_up(&self) -> bool {
        self.fact("down_file") == "false"
    }
}

fn fixtures(set: &str) -> Vec<Fixture> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("svstat.txt").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| Fixture::load(d)).collect()
}

fn flag(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn or_minus_one<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-1".to_owned(), |v| v.to_string())
}

/// The `-o` line our parser implies, given the seconds to report.
fn machine_line(p: &ProcessStatus, updownfor: u64, readyfor: u64) -> String {
    let exit = p.last_exit.as_ref();
    [
        flag(p.up).to_owned(),
        flag(p.want_up).to_owned(),
        flag(p.normally_up).to_owned(),
        flag(p.ready).to_owned(),
        flag(p.paused).to_owned(),
        or_minus_one(p.pid),
        or_minus_one(exit.and_then(|e| e.exit_code)),
        exit.and_then(|e| e.signal_name).unwrap_or("NA").to_owned(),
        or_minus_one(exit.and_then(|e| e.signal)),
        p.since_tai64n.clone(),
        p.ready_since_tai64n.clone(),
        updownfor.to_string(),
        readyfor.to_string(),
    ]
    .join(" ")
}

/// The human line `s6-svstat` prints: 2.11's shape; 2.13 and later print
/// ` pgid N` after the pid, and 2.13.2 and later print "down (not started
/// yet) " and nothing more for a service that never ran.
fn human_line(
    raw: &SuperviseStatus,
    p: &ProcessStatus,
    prints_pgid: bool,
    updownfor: u64,
    readyfor: u64,
) -> String {
    if p.never_started {
        return "down (not started yet) ".to_owned();
    }
    let mut line = if p.up {
        match p.pgid.filter(|_| prints_pgid) {
            Some(pgid) => format!("up (pid {} pgid {pgid}) ", raw.pid),
            None => format!("up (pid {}) ", raw.pid),
        }
    } else {
        // s6-svstat prints the wait status of the last run even when it
        // is neither an exit nor a signal; ours reports those as unknown.
        match hermes_s6::s6::ExitCause::from_wait_status(raw.wait_status) {
            Some(hermes_s6::s6::ExitCause::Signaled(sig)) => format!(
                "down (signal {}) ",
                hermes_s6::s6::signal_name(sig).unwrap()
            ),
            Some(hermes_s6::s6::ExitCause::Exited(code)) => format!("down (exitcode {code}) "),
            None => panic!("unexpected wait status"),
        }
    };
    line.push_str(&format!("{updownfor} seconds"));
    if p.up && !p.normally_up {
        line.push_str(", normally down");
    }
    if !p.up && p.normally_up {
        line.push_str(", normally up");
    }
    if p.up && p.paused {
        line.push_str(", paused");
    }
    if !p.up && p.want_up {
        line.push_str(", want up");
    }
    if p.up && !p.want_up {
        line.push_str(", want down");
    }
    if raw.ready_flag {
        line.push_str(&format!(", ready {readyfor} seconds"));
    }
    line
}

fn check_against_svstat(fixture: &Fixture, prints_pgid: bool) {
    let raw = SuperviseStatus::parse(&fixture.status_bytes)
        .unwrap_or_else(|e| panic!("{}: {e:?}", fixture.name));
    let before =
        ProcessStatus::from_status(&raw, fixture.normally_up(), fixture.instant("now_before"));
    let after =
        ProcessStatus::from_status(&raw, fixture.normally_up(), fixture.instant("now_after"));

    // s6-svstat ran between the two instants: its seconds lie between ours.
    let fields: Vec<&str> = fixture.fact("svstat_o").split(' ').collect();
    let said_updownfor: u64 = fields[11].parse().unwrap();
    let said_readyfor: u64 = fields[12].parse().unwrap();
    assert!(
        (before.seconds..=after.seconds).contains(&said_updownfor),
        "{}: updownfor {said_updownfor} not in {}..={}",
        fixture.name,
        before.seconds,
        after.seconds
    );
    assert!(
        (before.ready_seconds..=after.ready_seconds).contains(&said_readyfor),
        "{}: readyfor",
        fixture.name
    );
    assert_eq!(
        machine_line(&before, said_updownfor, said_readyfor),
        fixture.fact("svstat_o"),
        "{}",
        fixture.name
    );
    assert_eq!(
        human_line(&raw, &before, prints_pgid, said_updownfor, said_readyfor),
        fixture.fact("svstat"),
        "{}",
        fixture.name
    );
    // `-o pgid`, where s6-svstat has it (2.13 and later).
    if let Some(said_pgid) = fixture.facts.get("svstat_pgid") {
        assert_eq!(&or_minus_one(before.pgid), said_pgid, "{}", fixture.name);
    }
    assert_eq!(
        before.never_started,
        fixture.fact("svstat").contains("not started yet"),
        "{}",
        fixture.name
    );

    // death_tally: as many records as s6-svdt printed lines; while down, the
    // newest record is the exit the status reports.
    let deaths = death_tally::parse(&fixture.death_tally);
    let svdt_lines: usize = fixture.fact("svdt_lines").parse().unwrap();
    assert_eq!(deaths.len(), svdt_lines, "{}", fixture.name);
    assert_eq!(
        death_tally::count_for_len(fixture.death_tally.len() as u64),
        svdt_lines as u64
    );
    if let (Some(last), false) = (deaths.last(), raw.is_up()) {
        assert_eq!(Some(last.cause), raw.last_exit(), "{}", fixture.name);
    }
}

/// Every state captured from one s6 version (`status_len`: the size of the
/// status files it writes).
fn check_version(set: &str, status_len: usize, prints_pgid: bool) {
    let all = fixtures(set);
    let names: Vec<String> = all
        .iter()
        .map(|f| {
            Path::new(&f.name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "crashing",
            "down",
            "exited",
            "finishing",
            "killed",
            "paused",
            "ready",
            "up",
            "up-normally-down"
        ]
    );
    for fixture in &all {
        assert_eq!(fixture.status_bytes.len(), status_len, "{}", fixture.name);
        check_against_svstat(fixture, prints_pgid);
    }
}

#[test]
fn every_captured_state_reads_as_s6_2_11_svstat_reads_it() {
    check_version("s6-2.11", 35, false);
}

#[test]
fn every_captured_state_reads_as_s6_2_13_svstat_reads_it() {
    check_version("s6-2.13", 43, true);
    // 2.13.x records the process group, also while ./finish runs.
    let finishing = fixtures("s6-2.13")
        .into_iter()
        .find(|f| f.name.ends_with("/finishing"))
        .unwrap();
    let raw = SuperviseStatus::parse(&finishing.status_bytes).unwrap();
    assert!(raw.finishing && raw.pgid.is_some_and(|g| g > 0));
}

#[test]
fn every_captured_state_reads_as_s6_2_15_svstat_reads_it() {
    check_version("s6-2.15", 35, true);
}

/// s6 2.13.2+'s "not started yet" marker, as 2.15 writes it for a slot
/// registered down: down, never started, not paused, no last exit.
#[test]
fn a_slot_that_never_ran_reads_as_not_started_yet() {
    let down = fixtures("s6-2.15")
        .into_iter()
        .find(|f| f.name.ends_with("/down"))
        .unwrap();
    let raw = SuperviseStatus::parse(&down.status_bytes).unwrap();
    assert!(raw.pid == 0 && raw.paused && raw.ready_flag && !raw.want_up);
    let p = ProcessStatus::from_status(&raw, false, down.instant("now_before"));
    assert!(!p.up && p.never_started && !p.paused && !p.ready);
    assert_eq!((p.pid, p.pgid, p.last_exit), (None, None, None));
    assert_eq!(down.fact("svstat"), "down (not started yet) ");
    // The same slot on 2.11 and 2.13.1: a plain down with exit code 0.
    for set in ["s6-2.11", "s6-2.13"] {
        let old = fixtures(set)
            .into_iter()
            .find(|f| f.name.ends_with("/down"))
            .unwrap();
        let raw = SuperviseStatus::parse(&old.status_bytes).unwrap();
        let p = ProcessStatus::from_status(&raw, false, old.instant("now_before"));
        assert!(!p.never_started && !p.paused, "{set}");
        assert!(old.fact("svstat").starts_with("down (exitcode 0)"), "{set}");
    }
}

#[test]
fn specific_states() {
    let by_name = |name: &str| {
        let fixture = fixtures("s6-2.11")
            .into_iter()
            .find(|f| f.name.ends_with(&format!("/{name}")))
            .unwrap();
        SuperviseStatus::parse(&fixture.status_bytes).unwrap()
    };
    let finishing = by_name("finishing");
    assert!(finishing.finishing && finishing.pid != 0 && !finishing.is_up());
    let paused = by_name("paused");
    assert!(paused.paused && paused.is_up());
    let crashing = by_name("crashing");
    assert!(crashing.want_up && !crashing.is_up());
    let killed = by_name("killed");
    assert_eq!(
        killed.last_exit(),
        Some(hermes_s6::s6::ExitCause::Signaled(9))
    );
    let exited = by_name("exited");
    assert_eq!(
        exited.last_exit(),
        Some(hermes_s6::s6::ExitCause::Exited(3))
    );
    assert!(!exited.want_up);
    let ready = by_name("ready");
    assert!(ready.is_ready());
    let down = by_name("down");
    // Down and "ready to start": not ready as far as -o ready goes.
    assert!(down.ready_flag && !down.is_ready());
}

#[test]
fn truncated_and_oversized_files_are_refused() {
    let good = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s6-2.11/up/status"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("supervise")).unwrap();
    let status_path = dir.path().join("supervise/status");
    for len in [0, 12, 34, 36, 42, 44, 100] {
        let mut bytes = good.clone();
        bytes.resize(len, 0);
        assert!(SuperviseStatus::parse(&bytes).is_err(), "{len}");
        std::fs::write(&status_path, &bytes).unwrap();
        let err = hermes_s6::Error::from(supervise::read_status(dir.path()).unwrap_err());
        assert!(
            matches!(err, hermes_s6::Error::StatusFormat { len: l, .. } if l == len.min(44)),
            "{len}: {err}"
        );
        assert_eq!(err.exit_code(), 65);
    }
    std::fs::write(&status_path, &good).unwrap();
    assert!(supervise::read_status(dir.path()).is_ok());
}
