//! The logic of `hermes-standin`, the stand-in gateway installed in the
//! container as `/usr/local/bin/hermes`, kept here so it can be unit tested
//! (and its file names reused by tests).
//!
//! It behaves like the real gateway as far as a supervisor can see: the
//! state file, the planned-stop marker, exit codes and signal handling. Its
//! behavior is steered by `standin.conf` in the profile's home.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The gateway's state file in a profile's home.
pub const STATE_FILE: &str = "gateway_state.json";
/// Written by a lifecycle command before a planned stop.
pub const PLANNED_STOP_MARKER: &str = ".gateway-planned-stop.json";
/// One JSON line per start of the stand-in: who, where, with what.
pub const RUNS_FILE: &str = "standin-runs.jsonl";
/// `key=value` lines steering the stand-in; see [`Behavior`].
pub const CONF_FILE: &str = "standin.conf";
/// How long a planned-stop marker stays valid.
pub const MARKER_MAX_AGE_SECS: f64 = 60.0;
/// EX_CONFIG: fatal configuration error, never restarted.
pub const EX_CONFIG: i32 = 78;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `hermes --version`
    Version,
    /// `hermes [-p <profile>] gateway run [--replace]`; `None` is the root
    /// profile (also for `-p default`).
    Gateway {
        profile: Option<String>,
        replace: bool,
    },
    /// Anything else (e.g. `hermes` as the container's main program): idle
    /// until SIGTERM.
    Idle,
}

/// Parses the stand-in's arguments (without `argv[0]`).
pub fn parse_args(args: &[String]) -> Invocation {
    if args.iter().any(|a| a == "--version") {
        return Invocation::Version;
    }
    let mut profile = None;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-p" | "--profile" => match iter.next() {
                Some(p) => profile = Some(p.clone()),
                None => return Invocation::Idle,
            },
            other => {
                if let Some(p) = other.strip_prefix("--profile=") {
                    profile = Some(p.to_owned());
                } else {
                    rest.push(other);
                }
            }
        }
    }
    match rest.as_slice() {
        ["gateway", "run", flags @ ..] if flags.iter().all(|f| *f == "--replace") => {
            Invocation::Gateway {
                profile: profile.filter(|p| p != "default"),
                replace: !flags.is_empty(),
            }
        }
        _ => Invocation::Idle,
    }
}

/// `$HERMES_HOME` for the root profile, `$HERMES_HOME/profiles/<p>` otherwise.
pub fn profile_home(hermes_home: &Path, profile: Option<&str>) -> PathBuf {
    match profile {
        None | Some("default") => hermes_home.to_owned(),
        Some(p) => hermes_home.join("profiles").join(p),
    }
}

/// Behavior knobs read from [`CONF_FILE`] at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behavior {
    /// `startup_ms=N`: stay in `starting` for N ms.
    pub startup_ms: u64,
    /// `crash_after_ms=N`: after N ms in `running`, exit 1.
    pub crash_after_ms: Option<u64>,
    /// `exit_at_start=CODE`: record `startup_failed` and exit CODE at once.
    pub exit_at_start: Option<i32>,
    /// `sigterm_in_startup_exit=CODE`: a SIGTERM during start-up exits CODE
    /// (0 reproduces the gateway whose restart turned into a permanent stop).
    pub sigterm_in_startup_exit: Option<i32>,
    /// `ignore_sigterm=1`: SIGTERM is ignored; only SIGKILL stops it.
    pub ignore_sigterm: bool,
    /// `orphan_ms=N`: at start, leave a process that outlives its parent and
    /// exits N ms later (a gateway's child that daemonized): PID 1 adopts it
    /// and must reap it.
    pub orphan_ms: Option<u64>,
}

impl Behavior {
    /// Parses `key=value` lines; blank lines and `#` comments are skipped.
    /// Returns the behavior and one warning per line it could not use.
    pub fn parse(text: &str) -> (Behavior, Vec<String>) {
        let mut behavior = Behavior::default();
        let mut warnings = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                warnings.push(format!("not key=value: {line:?}"));
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let ok = match key {
                "startup_ms" => value.parse().map(|v| behavior.startup_ms = v).is_ok(),
                "crash_after_ms" => value
                    .parse()
                    .map(|v| behavior.crash_after_ms = Some(v))
                    .is_ok(),
                "exit_at_start" => value
                    .parse()
                    .map(|v| behavior.exit_at_start = Some(v))
                    .is_ok(),
                "orphan_ms" => value.parse().map(|v| behavior.orphan_ms = Some(v)).is_ok(),
                "sigterm_in_startup_exit" => value
                    .parse()
                    .map(|v| behavior.sigterm_in_startup_exit = Some(v))
                    .is_ok(),
                "ignore_sigterm" => match value {
                    "1" | "true" | "yes" => {
                        behavior.ignore_sigterm = true;
                        true
                    }
                    "0" | "false" | "no" => {
                        behavior.ignore_sigterm = false;
                        true
                    }
                    _ => false,
                },
                _ => {
                    warnings.push(format!("unknown key {key:?}"));
                    continue;
                }
            };
            if !ok {
                warnings.push(format!("bad value for {key}: {value:?}"));
            }
        }
        (behavior, warnings)
    }
}

/// Field 22 of a `/proc/<pid>/stat` line: the process's start time in clock
/// ticks after boot.
///
/// Field 2 is the command name in parentheses and may itself contain spaces
/// and parentheses, so fields are counted from the *last* `)`.
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // after_comm starts at field 3 (state); field 22 is 19 further.
    after_comm.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Why a planned-stop marker does not authorize an exit 0.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkerProblem {
    NotAnObject,
    /// A field is missing or not a number of the expected kind.
    BadField(&'static str),
    /// The marker names another process (pid or start time differ).
    OtherProcess,
    /// Older than [`MARKER_MAX_AGE_SECS`], or dated in the future.
    Stale {
        age_secs: f64,
    },
}

/// Checks a parsed planned-stop marker against this process: `target_pid`
/// is `pid`, `target_start_time` is `start_time` (field 22 of its stat), and
/// `written_at` (Unix seconds, or an ISO-8601 UTC time as the Hermes CLI
/// writes it) lies within the last 60 s at `now`.
pub fn check_planned_stop(
    marker: &Value,
    pid: u32,
    start_time: u64,
    now: f64,
) -> Result<(), MarkerProblem> {
    let object = marker.as_object().ok_or(MarkerProblem::NotAnObject)?;
    let target_pid = object
        .get("target_pid")
        .and_then(Value::as_u64)
        .ok_or(MarkerProblem::BadField("target_pid"))?;
    let target_start = object
        .get("target_start_time")
        .and_then(Value::as_u64)
        .ok_or(MarkerProblem::BadField("target_start_time"))?;
    let written_at = object
        .get("written_at")
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(parse_utc_iso8601))
        })
        .ok_or(MarkerProblem::BadField("written_at"))?;
    if target_pid != u64::from(pid) || target_start != start_time {
        return Err(MarkerProblem::OtherProcess);
    }
    let age_secs = now - written_at;
    // A little room for clocks read at different instants.
    if !(-2.0..=MARKER_MAX_AGE_SECS).contains(&age_secs) {
        return Err(MarkerProblem::Stale { age_secs });
    }
    Ok(())
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)`; other offsets are
/// not something the Hermes CLI writes, so they are refused.
pub fn parse_utc_iso8601(text: &str) -> Option<f64> {
    let (body, offset_ok) = match text.strip_suffix('Z') {
        Some(body) => (body, true),
        None => match text.strip_suffix("+00:00") {
            Some(body) => (body, true),
            None => (text, false),
        },
    };
    if !offset_ok || body.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| body.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let fraction = match body.get(19..) {
        Some("") => 0.0,
        Some(frac) if frac.starts_with('.') => format!("0{frac}").parse::<f64>().ok()?,
        _ => return None,
    };
    // Days since the epoch for a proleptic Gregorian date (civil-from-days
    // inverted).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second) as f64 + fraction)
}

/// The state file's contents with `gateway_state`, `pid` and `updated_at`
/// set and every other key kept. Unreadable, non-JSON or non-object contents
/// count as empty; a UTF-8 BOM is tolerated.
pub fn merged_state(existing: Option<&[u8]>, state: &str, pid: u32, now_secs: u64) -> Value {
    let mut object = existing
        .map(|bytes| bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    object.insert("gateway_state".into(), Value::from(state));
    object.insert("pid".into(), Value::from(pid));
    object.insert("updated_at".into(), Value::from(now_secs));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn invocations() {
        assert_eq!(parse_args(&args(&["--version"])), Invocation::Version);
        assert_eq!(parse_args(&args(&[])), Invocation::Idle);
        assert_eq!(parse_args(&args(&["chat"])), Invocation::Idle);
        assert_eq!(
            parse_args(&args(&["gateway", "run"])),
            Invocation::Gateway {
                profile: None,
                replace: false
            }
        );
        assert_eq!(
            parse_args(&args(&["-p", "work", "gateway", "run", "--replace"])),
            Invocation::Gateway {
                profile: Some("work".into()),
                replace: true
            }
        );
        assert_eq!(
            parse_args(&args(&["-p", "default", "gateway", "run"])),
            Invocation::Gateway {
                profile: None,
                replace: false
            }
        );
        assert_eq!(
            parse_args(&args(&["--profile=x", "gateway", "run"])),
            Invocation::Gateway {
                profile: Some("x".into()),
                replace: false
            }
        );
        assert_eq!(
            parse_args(&args(&["gateway", "run", "--bogus"])),
            Invocation::Idle
        );
        assert_eq!(parse_args(&args(&["-p"])), Invocation::Idle);
    }

    #[test]
    fn homes() {
        let home = Path::new("/opt/data");
        assert_eq!(profile_home(home, None), PathBuf::from("/opt/data"));
        assert_eq!(
            profile_home(home, Some("default")),
            PathBuf::from("/opt/data")
        );
        assert_eq!(
            profile_home(home, Some("a")),
            PathBuf::from("/opt/data/profiles/a")
        );
    }

    #[test]
    fn behavior_file() {
        let (b, warnings) = Behavior::parse(
            "# comment\n\nstartup_ms=250\n crash_after_ms = 40 \nexit_at_start=78\n\
             sigterm_in_startup_exit=0\nignore_sigterm=1\norphan_ms=500\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            b,
            Behavior {
                startup_ms: 250,
                crash_after_ms: Some(40),
                exit_at_start: Some(78),
                sigterm_in_startup_exit: Some(0),
                ignore_sigterm: true,
                orphan_ms: Some(500),
            }
        );
        let (b, warnings) = Behavior::parse("startup_ms=soon\nwhat=1\nnoequals\n");
        assert_eq!(b, Behavior::default());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    // A real line from /proc/self/stat, with its comm replaced.
    fn stat_line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 112 0 0 0 0 0 0 0 20 0 1 0 \
             987654 2273280 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn start_time_is_field_22() {
        assert_eq!(stat_start_time(&stat_line("hermes")), Some(987654));
    }

    #[test]
    fn start_time_survives_hostile_comm() {
        for comm in [
            "a b",
            "x) S 1 2 3",
            ")(",
            "((",
            "a) 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23",
        ] {
            assert_eq!(
                stat_start_time(&stat_line(comm)),
                Some(987654),
                "comm {comm:?}"
            );
        }
    }

    #[test]
    fn start_time_of_garbage_is_none() {
        assert_eq!(stat_start_time(""), None);
        assert_eq!(stat_start_time("1 (x) S 1"), None);
        assert_eq!(stat_start_time("no parens at all 1 2 3"), None);
    }

    #[test]
    fn start_time_of_this_process() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_start_time(&stat).is_some());
    }

    fn marker(pid: u64, start: u64, written_at: f64) -> Value {
        json!({"target_pid": pid, "target_start_time": start, "stopper_pid": 1, "written_at": written_at})
    }

    #[test]
    fn iso8601_written_at_is_understood() {
        assert_eq!(
            parse_utc_iso8601("1970-01-01T00:00:00.000000+00:00"),
            Some(0.0)
        );
        assert_eq!(
            parse_utc_iso8601("2026-11-28T10:00:00Z"),
            Some(1_795_860_000.0)
        );
        assert_eq!(
            parse_utc_iso8601("2000-03-01T00:00:01.5+00:00"),
            Some(951_868_801.5)
        );
        assert_eq!(parse_utc_iso8601("2026-11-28T10:00:00+02:00"), None);
        assert_eq!(parse_utc_iso8601("yesterday"), None);
        let iso = json!({"target_pid": 7, "target_start_time": 99, "written_at": "1970-01-01T00:16:40+00:00"});
        assert_eq!(check_planned_stop(&iso, 7, 99, 1010.0), Ok(()));
    }

    #[test]
    fn valid_marker() {
        assert_eq!(
            check_planned_stop(&marker(7, 99, 1000.0), 7, 99, 1010.0),
            Ok(())
        );
        assert_eq!(
            check_planned_stop(&marker(7, 99, 1000.5), 7, 99, 1000.0),
            Ok(())
        );
        let integral = json!({"target_pid": 7, "target_start_time": 99, "written_at": 1000});
        assert_eq!(check_planned_stop(&integral, 7, 99, 1059.0), Ok(()));
    }

    #[test]
    fn marker_for_someone_else() {
        assert_eq!(
            check_planned_stop(&marker(8, 99, 1000.0), 7, 99, 1000.0),
            Err(MarkerProblem::OtherProcess)
        );
        // Same pid, earlier process (pid reused): start times differ.
        assert_eq!(
            check_planned_stop(&marker(7, 98, 1000.0), 7, 99, 1000.0),
            Err(MarkerProblem::OtherProcess)
        );
    }

    #[test]
    fn stale_or_future_marker() {
        assert!(matches!(
            check_planned_stop(&marker(7, 99, 1000.0), 7, 99, 1061.0),
            Err(MarkerProblem::Stale { .. })
        ));
        assert!(matches!(
            check_planned_stop(&marker(7, 99, 1100.0), 7, 99, 1000.0),
            Err(MarkerProblem::Stale { .. })
        ));
    }

    #[test]
    fn malformed_marker() {
        assert_eq!(
            check_planned_stop(&json!([1, 2]), 7, 99, 1000.0),
            Err(MarkerProblem::NotAnObject)
        );
        assert_eq!(
            check_planned_stop(
                &json!({"target_pid": "7", "target_start_time": 99, "written_at": 1}),
                7,
                99,
                1.0
            ),
            Err(MarkerProblem::BadField("target_pid"))
        );
        assert_eq!(
            check_planned_stop(&json!({"target_pid": 7, "written_at": 1}), 7, 99, 1.0),
            Err(MarkerProblem::BadField("target_start_time"))
        );
        assert_eq!(
            check_planned_stop(
                &json!({"target_pid": 7, "target_start_time": 99}),
                7,
                99,
                1.0
            ),
            Err(MarkerProblem::BadField("written_at"))
        );
        assert_eq!(
            check_planned_stop(
                &json!({"target_pid": -7, "target_start_time": 99, "written_at": 1}),
                7,
                99,
                1.0
            ),
            Err(MarkerProblem::BadField("target_pid"))
        );
    }

    #[test]
    fn state_merge_keeps_other_keys() {
        let existing = br#"{"desired_state":"running","updated_at":1,"extra":{"a":1}}"#;
        let merged = merged_state(Some(existing), "starting", 42, 500);
        assert_eq!(
            merged,
            json!({"desired_state":"running","updated_at":500,"extra":{"a":1},
                   "gateway_state":"starting","pid":42})
        );
    }

    #[test]
    fn state_merge_tolerates_bom_and_garbage() {
        let with_bom = b"\xEF\xBB\xBF{\"desired_state\":\"stopped\"}";
        assert_eq!(
            merged_state(Some(with_bom), "running", 1, 2)["desired_state"],
            "stopped"
        );
        for junk in [&b"not json"[..], b"[1,2]", b"\"text\"", b"", b"{"] {
            assert_eq!(
                merged_state(Some(junk), "running", 1, 2),
                json!({"gateway_state":"running","pid":1,"updated_at":2})
            );
        }
        assert_eq!(
            merged_state(None, "stopped", 3, 4)["gateway_state"],
            "stopped"
        );
    }
}
