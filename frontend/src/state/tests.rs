//! The state files: model, intent writer, planned-stop marker.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::SystemTime;

use nix::unistd::geteuid;

use super::planned_stop::{parse_start_time, process_start_time};
use super::*;
use crate::config::Config;
use crate::error::Error;
use crate::profile::ProfileName;

fn home() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_lookup(|_| None);
    config.hermes_home = dir.path().to_path_buf();
    std::fs::create_dir_all(dir.path().join("profiles/work")).unwrap();
    (dir, config)
}

fn work() -> ProfileName {
    ProfileName::new("work").unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The names in a directory (no temporary file may be left behind).
fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

#[test]
fn parses_objects_with_or_without_bom() {
    let map = parse_state_object(b"\xEF\xBB\xBF{\"gateway_state\":\"running\"}").unwrap();
    assert_eq!(map["gateway_state"], "running");
    assert!(parse_state_object(b"{\"a\":1}").is_some());
    for bad in [&b"[1,2]"[..], b"\"x\"", b"null", b"{", b"", b"\xEF\xBB\xBF"] {
        assert_eq!(parse_state_object(bad), None, "{bad:?}");
    }
}

#[test]
fn merge_keeps_unknown_keys_in_place() {
    let existing = parse_state_object(
        br#"{"gateway_state":"running","pid":42,"desired_state":"stopped","extra":{"x":1}}"#,
    )
    .unwrap();
    let merged = merge_desired_state(existing, Intent::Running, 1700000000);
    let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "gateway_state",
            "pid",
            "desired_state",
            "extra",
            "updated_at"
        ]
    );
    assert_eq!(merged["desired_state"], "running");
    assert_eq!(merged["updated_at"], 1700000000);
    assert_eq!(merged["extra"]["x"], 1);
}

#[test]
fn records_intent_in_a_new_file() {
    let (dir, config) = home();
    let profile_dir = ProfileDir::open(&config, &work()).unwrap();
    profile_dir
        .record_desired_state(Intent::Stopped, 1234)
        .unwrap();
    let written = read_json(&dir.path().join("profiles/work/gateway_state.json"));
    assert_eq!(
        written,
        serde_json::json!({"desired_state": "stopped", "updated_at": 1234})
    );
    // No temporary file is left behind.
    assert_eq!(
        names_in(&dir.path().join("profiles/work")),
        ["gateway_state.json"]
    );
}

#[test]
fn default_profile_writes_in_the_root_home() {
    let (dir, config) = home();
    ProfileDir::open(&config, &ProfileName::default_profile())
        .unwrap()
        .record_desired_state(Intent::Running, 1)
        .unwrap();
    assert_eq!(
        read_json(&dir.path().join("gateway_state.json"))["desired_state"],
        "running"
    );
}

#[test]
fn keeps_unknown_keys_and_tolerates_a_bom() {
    let (dir, config) = home();
    let path = dir.path().join("profiles/work/gateway_state.json");
    std::fs::write(
        &path,
        b"\xEF\xBB\xBF{\"gateway_state\": \"draining\", \"platforms\": [\"tg\"]}",
    )
    .unwrap();
    ProfileDir::open(&config, &work())
        .unwrap()
        .record_desired_state(Intent::Running, 99)
        .unwrap();
    let written = read_json(&path);
    assert_eq!(written["gateway_state"], "draining");
    assert_eq!(written["platforms"][0], "tg");
    assert_eq!(written["desired_state"], "running");
    assert_eq!(written["updated_at"], 99);
}

#[test]
fn replaces_a_corrupt_or_non_object_file() {
    let (dir, config) = home();
    let path = dir.path().join("profiles/work/gateway_state.json");
    for content in [&b"{not json"[..], b"[1,2,3]", b"42", b"", &[0xff; 10]] {
        std::fs::write(&path, content).unwrap();
        ProfileDir::open(&config, &work())
            .unwrap()
            .record_desired_state(Intent::Stopped, 5)
            .unwrap();
        assert_eq!(
            read_json(&path),
            serde_json::json!({"desired_state": "stopped", "updated_at": 5})
        );
    }
}

#[test]
fn refuses_a_symlinked_state_file_and_leaves_its_target_alone() {
    let (dir, config) = home();
    let victim = dir.path().join("victim.json");
    std::fs::write(&victim, br#"{"secret":"s3cr3t"}"#).unwrap();
    let path = dir.path().join("profiles/work/gateway_state.json");
    symlink(&victim, &path).unwrap();
    let err = ProfileDir::open(&config, &work())
        .unwrap()
        .record_desired_state(Intent::Running, 1)
        .unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), br#"{"secret":"s3cr3t"}"#);
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(read_state_summary(&path).is_err());
}

#[test]
fn refuses_a_symlinked_profile_dir_or_profiles_dir() {
    let (dir, config) = home();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, dir.path().join("profiles/linked")).unwrap();
    let err = ProfileDir::open(&config, &ProfileName::new("linked").unwrap()).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");

    std::fs::rename(
        dir.path().join("profiles"),
        dir.path().join("real-profiles"),
    )
    .unwrap();
    symlink(
        dir.path().join("real-profiles"),
        dir.path().join("profiles"),
    )
    .unwrap();
    let err = ProfileDir::open(&config, &work()).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
}

#[test]
fn files_root_writes_belong_to_the_profile_owner() {
    if !geteuid().is_root() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let (dir, config) = home();
    let profile = dir.path().join("profiles/work");
    std::os::unix::fs::chown(&profile, Some(10000), Some(10000)).unwrap();
    let profile_dir = ProfileDir::open(&config, &work()).unwrap();
    profile_dir
        .record_desired_state(Intent::Stopped, 1)
        .unwrap();
    profile_dir
        .write_planned_stop(&PlannedStop::for_pid(
            Path::new("/proc"),
            1,
            SystemTime::UNIX_EPOCH,
        ))
        .unwrap();
    for name in ["gateway_state.json", ".gateway-planned-stop.json"] {
        let meta = std::fs::metadata(profile.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (10000, 10000), "{name}");
    }
}

#[test]
fn root_refuses_a_hard_linked_state_file() {
    let (dir, config) = home();
    let elsewhere = dir.path().join("elsewhere.json");
    std::fs::write(&elsewhere, br#"{"secret":"s3cr3t"}"#).unwrap();
    let path = dir.path().join("profiles/work/gateway_state.json");
    std::fs::hard_link(&elsewhere, &path).unwrap();
    let result = ProfileDir::open(&config, &work())
        .unwrap()
        .record_desired_state(Intent::Running, 1);
    if geteuid().is_root() {
        assert!(
            matches!(result, Err(Error::UnsafePath { .. })),
            "{result:?}"
        );
        assert_eq!(
            std::fs::read(&elsewhere).unwrap(),
            br#"{"secret":"s3cr3t"}"#
        );
    } else {
        // Unprivileged, the file holds nothing the caller could not read.
        assert!(result.is_ok());
    }
}

#[test]
fn refuses_a_state_file_that_is_not_a_regular_file() {
    let (dir, config) = home();
    std::fs::create_dir(dir.path().join("profiles/work/gateway_state.json")).unwrap();
    let err = ProfileDir::open(&config, &work())
        .unwrap()
        .record_desired_state(Intent::Running, 1)
        .unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
}

#[test]
fn a_planted_temporary_symlink_is_not_followed() {
    let (dir, config) = home();
    let profile_dir = ProfileDir::open(&config, &work()).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    // Whatever name the writer picks, a pre-existing entry is removed,
    // not written through; simulate by planting the writer's own name.
    let tmp = profile_dir.create_exclusive(".probe.tmp").unwrap();
    drop(tmp);
    std::fs::remove_file(dir.path().join("profiles/work/.probe.tmp")).unwrap();
    symlink(&victim, dir.path().join("profiles/work/.probe.tmp")).unwrap();
    let mut file = profile_dir.create_exclusive(".probe.tmp").unwrap();
    file.write_all(b"new").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}

#[test]
fn creates_a_state_file_only_when_there_is_none() {
    let (dir, config) = home();
    let profile_dir = ProfileDir::open(&config, &work()).unwrap();
    let mut state = Map::new();
    state.insert("gateway_state".into(), "running".into());
    assert!(profile_dir.create_state(&state).unwrap());
    let path = dir.path().join("profiles/work/gateway_state.json");
    assert_eq!(
        read_json(&path),
        serde_json::json!({"gateway_state": "running"})
    );
    state.insert("gateway_state".into(), "stopped".into());
    assert!(!profile_dir.create_state(&state).unwrap());
    assert_eq!(read_json(&path)["gateway_state"], "running");
    // A dangling symlink by that name is kept too, its target not created.
    std::fs::remove_file(&path).unwrap();
    symlink(dir.path().join("target.json"), &path).unwrap();
    assert!(!profile_dir.create_state(&state).unwrap());
    assert!(!dir.path().join("target.json").exists());
    assert_eq!(
        names_in(&dir.path().join("profiles/work")),
        ["gateway_state.json"]
    );
}

#[test]
fn summarizes_state_for_status() {
    let (dir, _config) = home();
    let path = dir.path().join("gateway_state.json");
    assert_eq!(read_state_summary(&path), Ok(None));
    std::fs::write(
        &path,
        br#"{"gateway_state":"running","desired_state":"running","updated_at":17.5}"#,
    )
    .unwrap();
    let summary = read_state_summary(&path).unwrap().unwrap();
    assert_eq!(summary.gateway_state.as_deref(), Some("running"));
    assert_eq!(summary.desired_state.as_deref(), Some("running"));
    assert_eq!(summary.updated_at.and_then(|n| n.as_f64()), Some(17.5));
    std::fs::write(&path, b"[]").unwrap();
    assert!(
        read_state_summary(&path)
            .unwrap_err()
            .contains("not a JSON object")
    );
}

#[test]
fn writes_the_planned_stop_marker() {
    let (dir, config) = home();
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir_all(proc_dir.join("4242")).unwrap();
    let mut fields = vec!["4242", "(hermes gw) x)"];
    fields.extend(["S"; 19]);
    fields.push("987654");
    fields.extend(["0"; 30]);
    std::fs::write(proc_dir.join("4242/stat"), fields.join(" ")).unwrap();

    let marker = PlannedStop::for_pid(&proc_dir, 4242, SystemTime::UNIX_EPOCH);
    assert_eq!(marker.target_start_time, Some(987654));
    ProfileDir::open(&config, &work())
        .unwrap()
        .write_planned_stop(&marker)
        .unwrap();
    let written = read_json(&dir.path().join("profiles/work/.gateway-planned-stop.json"));
    assert_eq!(written["target_pid"], 4242);
    assert_eq!(written["target_start_time"], 987654);
    assert_eq!(written["stopper_pid"], std::process::id());
    assert_eq!(written["written_at"], "1970-01-01T00:00:00.000000+00:00");

    let gone = PlannedStop::for_pid(&proc_dir, 1, SystemTime::UNIX_EPOCH);
    assert_eq!(gone.target_start_time, None);
}

#[test]
fn reads_this_process_start_time() {
    let own = process_start_time(Path::new("/proc"), u64::from(std::process::id()));
    assert!(own.is_some());
    assert_eq!(parse_start_time("1 (a) b"), None);
}
