//! Host-side views of `/proc` used to find, verify and account for an
//! emulated container's processes and mounts.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A PID namespace, held open.
///
/// A namespace's identity is an inode number that the kernel hands out
/// again as soon as the namespace is freed, so a bare number recorded
/// before a teardown may name a *newer* namespace afterwards (another
/// container's, booted meanwhile). While this handle exists the namespace
/// object stays allocated (its processes still die normally) and its
/// number cannot be reused, so [`PidNamespace::processes`] stays exact.
#[derive(Debug)]
pub struct PidNamespace {
    id: u64,
    _handle: File,
}

impl PidNamespace {
    /// The PID namespace of `pid`, or `None` when it is gone or a zombie.
    pub fn of(pid: u32) -> Option<PidNamespace> {
        let handle = File::open(format!("/proc/{pid}/ns/pid")).ok()?;
        let id = handle.metadata().ok()?.ino();
        Some(PidNamespace {
            id,
            _handle: handle,
        })
    }

    /// The namespace's inode number, as in `/proc/<pid>/ns/pid` → `pid:[id]`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Host pids of the live processes in this namespace.
    pub fn processes(&self) -> Vec<u32> {
        processes_in_pid_namespace(self.id)
    }
}

/// Identity of a process's PID namespace (the inode in `pid:[inode]`), or
/// `None` when the process is gone or a zombie. See [`PidNamespace`] for
/// why a bare number is only meaningful while the namespace is alive.
pub fn pid_namespace_of(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    parse_ns_link(link.to_str()?)
}

fn parse_ns_link(link: &str) -> Option<u64> {
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Host pids of every live process whose PID namespace is `ns` (an id from
/// [`pid_namespace_of`] or [`PidNamespace::id`]).
pub fn processes_in_pid_namespace(ns: u64) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid_namespace_of(pid) == Some(ns))
        .collect()
}

/// Lines of the calling process's mount table that mention `path`.
///
/// Used to prove that a container's mounts never leaked into the host's mount
/// namespace.
pub fn host_mounts_referencing(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Direct children of `pid`, from its main thread's `children` file.
///
/// The emulation's spawners (`unshare --fork`, `nsenter --pid`) are
/// single-threaded, so the main thread's list is complete for them.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub(crate) fn comm_of(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The pid of `pid` as seen from its innermost PID namespace (`NSpid:` last field).
pub(crate) fn innermost_pid_of(pid: u32) -> Option<u32> {
    status_field(pid, "NSpid:")?
        .split_ascii_whitespace()
        .last()?
        .parse()
        .ok()
}

pub(crate) fn status_field(pid: u32, key: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

/// Mount options (per-mount and per-superblock) of the mount at `mount_point`
/// in the mount namespace of `pid`, as listed in its `mountinfo`.
pub(crate) fn mount_options(pid: u32, mount_point: &str) -> Option<String> {
    let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    // Later lines win: a mount stacked on the same point hides earlier ones.
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&mount_point)).then(|| {
            let sep = fields
                .iter()
                .position(|f| *f == "-")
                .unwrap_or(fields.len());
            let super_opts = fields.get(sep + 3).copied().unwrap_or("");
            format!("{},{}", fields.get(5).copied().unwrap_or(""), super_opts)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_link_parses() {
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_ns_link("mnt:[4026531836]"), None);
        assert_eq!(parse_ns_link("pid:[x]"), None);
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        let ns = pid_namespace_of(me).expect("own pid namespace");
        assert!(processes_in_pid_namespace(ns).contains(&me));
        let held = PidNamespace::of(me).expect("own pid namespace");
        assert_eq!(held.id(), ns);
        assert!(innermost_pid_of(me).is_some());
    }
}
