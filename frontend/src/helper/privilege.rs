//! Why a setuid helper that exited 77 could not act as root, from the
//! helper file, this process's `status` and its `mountinfo`.

use std::path::{Component, Path, PathBuf};

use crate::error::PrivilegeBlock;

/// What is known about the helper file and this process when the helper
/// could not act as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeFacts {
    pub helper: PathBuf,
    /// Owner and mode of the helper file, if it could be examined.
    pub owner_and_mode: Option<(u32, u32)>,
    /// `NoNewPrivs: 1` in `/proc/self/status`.
    pub no_new_privs: bool,
    /// The helper's mount point when that mount is `nosuid`.
    pub nosuid_mount: Option<PathBuf>,
}

/// Picks the most likely reason, most specific first.
pub fn explain_privilege_failure(facts: &PrivilegeFacts) -> Option<PrivilegeBlock> {
    const SETUID: u32 = 0o4000;
    match facts.owner_and_mode {
        Some((uid, mode)) if uid != 0 || mode & SETUID == 0 => {
            return Some(PrivilegeBlock::NotSetuid {
                path: facts.helper.clone(),
            });
        }
        _ => {}
    }
    if let Some(mount_point) = &facts.nosuid_mount {
        return Some(PrivilegeBlock::NosuidMount {
            path: facts.helper.clone(),
            mount_point: mount_point.clone(),
        });
    }
    if facts.no_new_privs {
        return Some(PrivilegeBlock::NoNewPrivs);
    }
    None
}

/// Gathers [`PrivilegeFacts`] for `helper` from the file system and procfs.
pub fn diagnose_privilege(helper: &Path) -> Option<PrivilegeBlock> {
    explain_privilege_failure(&privilege_facts(helper, Path::new("/proc/self")))
}

pub fn privilege_facts(helper: &Path, proc_self: &Path) -> PrivilegeFacts {
    let resolved = std::fs::canonicalize(helper).unwrap_or_else(|_| helper.to_path_buf());
    let owner_and_mode = owner_and_mode(&resolved);
    let no_new_privs = std::fs::read_to_string(proc_self.join("status"))
        .map(|status| no_new_privs_in(&status))
        .unwrap_or(false);
    let nosuid_mount = std::fs::read_to_string(proc_self.join("mountinfo"))
        .ok()
        .and_then(|mountinfo| nosuid_mount_of(&resolved, &mountinfo));
    PrivilegeFacts {
        helper: helper.to_path_buf(),
        owner_and_mode,
        no_new_privs,
        nosuid_mount,
    }
}

#[cfg(unix)]
fn owner_and_mode(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.mode()))
}

#[cfg(not(unix))]
fn owner_and_mode(_path: &Path) -> Option<(u32, u32)> {
    None
}

/// Whether a `/proc/<pid>/status` text says `NoNewPrivs: 1`.
pub fn no_new_privs_in(status: &str) -> bool {
    status.lines().any(|line| {
        line.strip_prefix("NoNewPrivs:")
            .is_some_and(|value| value.trim() == "1")
    })
}

/// The mount point holding `path` according to a `/proc/self/mountinfo`
/// text, if that mount has the `nosuid` flag. The deepest mount point that
/// contains the path wins; among equal ones, the last listed (the one on top).
pub fn nosuid_mount_of(path: &Path, mountinfo: &str) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount_point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        if best.as_ref().is_none_or(|(d, _, _)| depth >= *d) {
            let nosuid = options.split(',').any(|o| o == "nosuid");
            best = Some((depth, mount_point, nosuid));
        }
    }
    best.and_then(|(_, mount_point, nosuid)| nosuid.then_some(mount_point))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_privilege_failures() {
        let base = PrivilegeFacts {
            helper: "/usr/libexec/hermes-s6-helper".into(),
            owner_and_mode: Some((0, 0o104750)),
            no_new_privs: false,
            nosuid_mount: None,
        };
        assert_eq!(explain_privilege_failure(&base), None);
        let not_setuid = PrivilegeFacts {
            owner_and_mode: Some((0, 0o100755)),
            ..base.clone()
        };
        assert!(matches!(
            explain_privilege_failure(&not_setuid),
            Some(PrivilegeBlock::NotSetuid { .. })
        ));
        let wrong_owner = PrivilegeFacts {
            owner_and_mode: Some((10000, 0o104750)),
            ..base.clone()
        };
        assert!(matches!(
            explain_privilege_failure(&wrong_owner),
            Some(PrivilegeBlock::NotSetuid { .. })
        ));
        let nnp = PrivilegeFacts {
            no_new_privs: true,
            ..base.clone()
        };
        assert_eq!(
            explain_privilege_failure(&nnp),
            Some(PrivilegeBlock::NoNewPrivs)
        );
        let nosuid = PrivilegeFacts {
            nosuid_mount: Some("/usr".into()),
            ..base
        };
        let cause = explain_privilege_failure(&nosuid).unwrap();
        assert!(cause.to_string().contains("nosuid"), "{cause}");
    }

    #[test]
    fn reads_no_new_privs() {
        assert!(no_new_privs_in("Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t0\n"));
        assert!(!no_new_privs_in("Name:\tx\nNoNewPrivs:\t0\n"));
        assert!(!no_new_privs_in(""));
    }

    #[test]
    fn finds_the_nosuid_mount_holding_a_path() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /usr rw,nosuid,relatime shared:2 - ext4 /dev/sda2 rw
31 30 0:26 / /usr/lib rw,relatime shared:3 - ext4 /dev/sda3 rw
40 22 0:27 / /opt/my\\040dir rw,nosuid - tmpfs tmpfs rw
";
        let helper = Path::new("/usr/libexec/hermes-s6-helper");
        assert_eq!(
            nosuid_mount_of(helper, mountinfo),
            Some(PathBuf::from("/usr"))
        );
        assert_eq!(nosuid_mount_of(Path::new("/usr/lib/x"), mountinfo), None);
        assert_eq!(nosuid_mount_of(Path::new("/bin/x"), mountinfo), None);
        assert_eq!(nosuid_mount_of(Path::new("/usrx/y"), mountinfo), None);
        assert_eq!(
            nosuid_mount_of(Path::new("/opt/my dir/h"), mountinfo),
            Some(PathBuf::from("/opt/my dir"))
        );
        // A later mount on the same point covers the earlier one.
        let stacked = format!("{mountinfo}50 22 0:28 / /usr rw,relatime - ext4 /dev/sda4 rw\n");
        assert_eq!(nosuid_mount_of(helper, &stacked), None);
    }
}
