//! The capabilities gateways depend on, as s6-svscan (PID 1) holds them:
//! every s6-supervise, every slot's `run` script and the setuid helper get
//! no more than the container's bounding set, which PID 1's effective set
//! shows (it runs as root). A container started with capabilities dropped
//! (`--cap-drop ALL`, a Pod's `capabilities: {drop: [ALL]}`) must add back
//! [`NEEDED`]; without one of them the commands that depend on it refuse
//! before they change anything, and `hermes-s6 doctor` says which is
//! missing.

use std::path::Path;

use crate::vocabulary::HelperOp;

/// A capability gateways depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// As `--cap-add` and a Pod spec name it (`CAP_` dropped).
    pub name: &'static str,
    /// Its number (`linux/capability.h`).
    pub bit: u32,
    /// What fails without it.
    pub needed_for: &'static str,
}

pub const KILL: Capability = Capability {
    name: "KILL",
    bit: 5,
    needed_for: "s6-supervise (root) signals gateways, which run as hermes: stop, restart and unregister",
};
pub const SETGID: Capability = Capability {
    name: "SETGID",
    bit: 6,
    needed_for: "gateways and their loggers are started as hermes (s6-setuidgid), and the helper sets its groups",
};
pub const SETUID: Capability = Capability {
    name: "SETUID",
    bit: 7,
    needed_for: "gateways and their loggers are started as hermes (s6-setuidgid)",
};

/// The smallest set the image works with, the volume already hermes's.
/// (`CHOWN` is needed too where the boot must give the volume, or the
/// helper after a `HERMES_GID` remap, to hermes.)
pub const NEEDED: [Capability; 3] = [SETUID, SETGID, KILL];

/// What a helper operation depends on: bringing a gateway up runs it as
/// hermes; taking one down signals it.
pub fn needed_by(op: HelperOp) -> &'static [Capability] {
    match op {
        HelperOp::Register | HelperOp::Start => &[SETUID, SETGID],
        HelperOp::Restart => &[SETUID, SETGID, KILL],
        HelperOp::Stop | HelperOp::Unregister => &[KILL],
        HelperOp::Rescan => &[],
    }
}

/// s6-svscan's effective capabilities, when PID 1 (under `proc_dir`) is
/// s6-svscan running as root and says; `None` otherwise (then nothing is
/// known). In a non-root container (`docker run --user`) s6 runs as the
/// gateways' own user: it starts and signals them without any capability,
/// and its empty effective set says nothing about the container's.
pub fn svscan_effective(proc_dir: &Path) -> Option<u64> {
    let pid1 = proc_dir.join("1");
    let comm = std::fs::read_to_string(pid1.join("comm")).ok()?;
    if comm.trim_end() != "s6-svscan" {
        return None;
    }
    let status = std::fs::read_to_string(pid1.join("status")).ok()?;
    if !runs_as_root(&status) {
        return None;
    }
    parse_cap_eff(&status)
}

/// Whether the real and effective uids of a `/proc/<pid>/status` are 0.
fn runs_as_root(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().take(2).all(|id| id == "0"))
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Which of `caps` an effective set lacks.
pub fn missing(effective: u64, caps: &[Capability]) -> Vec<Capability> {
    caps.iter()
        .copied()
        .filter(|cap| effective & (1 << cap.bit) == 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set_of_s6_svscan_only() {
        let dir = tempfile::tempdir().unwrap();
        let pid1 = dir.path().join("1");
        std::fs::create_dir(&pid1).unwrap();
        std::fs::write(
            pid1.join("status"),
            "Name:\ts6-svscan\nUid:\t0\t0\t0\t0\nCapPrm:\t00000000000000e0\nCapEff:\t00000000000000c0\n",
        )
        .unwrap();
        std::fs::write(pid1.join("comm"), "systemd\n").unwrap();
        assert_eq!(svscan_effective(dir.path()), None);
        std::fs::write(pid1.join("comm"), "s6-svscan\n").unwrap();
        let eff = svscan_effective(dir.path()).unwrap();
        assert_eq!(eff, 0xc0);
        assert_eq!(missing(eff, &NEEDED), vec![KILL]);
        assert_eq!(missing(eff, needed_by(HelperOp::Start)), vec![]);
        assert_eq!(missing(eff, needed_by(HelperOp::Stop)), vec![KILL]);
        assert_eq!(missing(0, needed_by(HelperOp::Rescan)), vec![]);
        // s6-svscan as an unprivileged user (a non-root container).
        std::fs::write(
            pid1.join("status"),
            "Name:\ts6-svscan\nUid:\t10000\t10000\t10000\t10000\nCapEff:\t0000000000000000\n",
        )
        .unwrap();
        assert_eq!(svscan_effective(dir.path()), None);
    }
}
