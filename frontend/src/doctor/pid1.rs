//! Whether s6-overlay runs this container at all: where the image's entry
//! point is not PID 1 (`docker run --init`, Fly Machines, some podman
//! setups), `/init` cannot run, the entry point boots without s6 and
//! records why in [`NOT_PID1_RECORD`] (root's, in a root-only directory).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Check;

/// Written by the image's entry point (`hermes-entrypoint`) when it is not
/// PID 1: one line saying what PID 1 is.
pub const NOT_PID1_RECORD: &str = "/run/hermes/not-pid1";

/// A `warn` when `record` exists as a root-owned regular file: the
/// container runs without s6-overlay, so no gateway or dashboard is
/// supervised. Nothing otherwise: a container booted by s6-overlay has no
/// record (its stage 2 hook clears `/run/hermes` on every boot).
pub(super) fn not_pid1_check(record: &Path) -> Option<Check> {
    let meta = fs::symlink_metadata(record).ok()?;
    if !meta.is_file() || meta.uid() != 0 {
        return None;
    }
    let said = fs::read_to_string(record).unwrap_or_default();
    let said = said.lines().next().unwrap_or("").trim();
    Some(Check::warn(
        "pid1",
        "PID 1",
        format!(
            "the image's entry point is not PID 1, so s6-overlay did not start: {}",
            if said.is_empty() {
                "no gateway or dashboard is supervised"
            } else {
                said
            }
        ),
        "start the container so that the image's entry point is PID 1 (drop `docker run --init`, or `init: true` in compose); where the platform always wraps it (Fly Machines), run the gateway as the container command: `hermes gateway run`",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_record_no_line() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(not_pid1_check(&dir.path().join("not-pid1")), None);
    }

    #[test]
    fn a_record_is_a_warning_naming_pid_1() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("not-pid1");
        fs::write(&record, "PID 1 is docker-init, not s6-overlay's /init\n").unwrap();
        let check = not_pid1_check(&record);
        // Only root's record counts; the tests run as root in CI and as a
        // user elsewhere.
        if fs::metadata(&record).unwrap().uid() != 0 {
            assert_eq!(check, None);
            return;
        }
        let check = check.unwrap();
        assert_eq!(check.id, "pid1");
        assert_eq!(check.verdict, super::super::Verdict::Warn);
        assert!(check.detail.contains("PID 1 is docker-init"), "{check:?}");
        assert!(check.fix.unwrap().contains("--init"));
    }
}
