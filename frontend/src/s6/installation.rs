//! What can be known about the s6 installation without asking s6 (its
//! programs have no `--version`): its version, when something in the
//! container states it, and how many services the scan directory holds as
//! s6-svscan counts them.
//!
//! The version is taken from where the running s6 programs live, never
//! guessed: s6-overlay installs s6 in `/package/admin/s6-<version>/` and
//! links `/command/s6-svscan` there; a distribution package installs
//! `/usr/bin/s6-svscan` and records its version in dpkg's database.
//! Anything else yields no version.

use std::path::{Component, Path, PathBuf};

/// Where to look; tests point these at a scratch tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProbe {
    /// The s6-svscan the container runs (s6-overlay's `/command`).
    pub svscan: PathBuf,
    /// dpkg's package database.
    pub dpkg_status: PathBuf,
}

impl Default for VersionProbe {
    fn default() -> Self {
        Self {
            svscan: PathBuf::from("/command/s6-svscan"),
            dpkg_status: PathBuf::from("/var/lib/dpkg/status"),
        }
    }
}

/// An s6 version, `2.15.0.0` say: four numbers as skarnet numbers them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct S6Version(Vec<u32>);

impl S6Version {
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Option<Vec<u32>> = text.split('.').map(|p| p.parse().ok()).collect();
        let parts = parts?;
        (2..=4).contains(&parts.len()).then_some(Self(parts))
    }

    /// Whether s6-svscan counts a logger (`<service>/log`) as a service of
    /// its own toward its maximum (s6 2.13 and later; 2.11 counts a service
    /// and its logger as one).
    pub fn counts_loggers(&self) -> bool {
        *self >= Self(vec![2, 13])
    }
}

impl std::fmt::Display for S6Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// The version of the s6 the container runs, when the installation says
/// it; `None` otherwise.
pub fn detect_version(probe: &VersionProbe) -> Option<S6Version> {
    let program = std::fs::canonicalize(&probe.svscan).ok()?;
    if let Some(version) = overlay_version(&program) {
        return Some(version);
    }
    if program.starts_with("/usr/bin") || program.starts_with("/bin") {
        let status = std::fs::read_to_string(&probe.dpkg_status).ok()?;
        return dpkg_version(&status, "s6");
    }
    None
}

/// `…/s6-<version>/…` in the path of the program (s6-overlay's layout).
fn overlay_version(program: &Path) -> Option<S6Version> {
    program.components().find_map(|c| match c {
        Component::Normal(name) => name
            .to_str()
            .and_then(|n| n.strip_prefix("s6-"))
            .and_then(S6Version::parse),
        _ => None,
    })
}

/// The upstream version of an installed package in dpkg's `status` file:
/// `Version:` of the stanza `Package: <package>` whose `Status:` says
/// installed, without epoch and Debian revision.
pub fn dpkg_version(status: &str, package: &str) -> Option<S6Version> {
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        if field("Package") != Some(package) {
            continue;
        }
        if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let version = field("Version")?;
        let version = version.split_once(':').map_or(version, |(_, v)| v);
        let upstream = version.rsplit_once('-').map_or(version, |(u, _)| u);
        return S6Version::parse(upstream);
    }
    None
}

/// Services in a scan directory as s6-svscan counts them toward its
/// maximum: every entry not starting with a dot that is a directory (or a
/// link to one), plus, when `count_loggers`, every such entry's `log`
/// directory. `None` when the directory cannot be read.
pub fn count_services(scan_dir: &Path, count_loggers: bool) -> Option<u32> {
    let mut count = 0u32;
    for entry in std::fs::read_dir(scan_dir).ok()? {
        let Ok(entry) = entry else { continue };
        if entry.file_name().as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        count += 1;
        if count_loggers && path.join("log").is_dir() {
            count += 1;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_from_where_s6_lives() {
        assert_eq!(
            overlay_version(Path::new("/package/admin/s6-2.15.0.0/command/s6-svscan")),
            S6Version::parse("2.15.0.0")
        );
        assert_eq!(overlay_version(Path::new("/usr/bin/s6-svscan")), None);
        let status = "Package: s6-doc\nStatus: install ok installed\nVersion: 9.9\n\n\
                      Package: s6\nStatus: deinstall ok config-files\nVersion: 2.10.0.0-1\n\n\
                      Package: s6\nStatus: install ok installed\nVersion: 1:2.13.1.0-1+b1\n";
        assert_eq!(
            dpkg_version(status, "s6").map(|v| v.to_string()),
            Some("2.13.1.0".to_owned())
        );
        assert_eq!(dpkg_version("Package: x\n", "s6"), None);
    }

    #[test]
    fn orders_versions() {
        let v = |s: &str| S6Version::parse(s).unwrap();
        assert!(!v("2.11.3.2").counts_loggers());
        assert!(v("2.13.1.0").counts_loggers());
        assert!(v("2.15.0.0").counts_loggers());
        assert!(S6Version::parse("2").is_none() && S6Version::parse("a.b").is_none());
    }

    #[test]
    fn detects_through_the_program_link() {
        let dir = tempfile::tempdir().unwrap();
        let admin = dir.path().join("package/admin/s6-2.15.0.0/command");
        std::fs::create_dir_all(&admin).unwrap();
        std::fs::write(admin.join("s6-svscan"), "").unwrap();
        let probe = VersionProbe {
            svscan: dir.path().join("s6-svscan"),
            dpkg_status: dir.path().join("status"),
        };
        assert_eq!(detect_version(&probe), None, "no program");
        std::os::unix::fs::symlink(admin.join("s6-svscan"), &probe.svscan).unwrap();
        assert_eq!(detect_version(&probe), S6Version::parse("2.15.0.0"));
    }

    #[test]
    fn counts_services_as_s6_svscan_does() {
        let dir = tempfile::tempdir().unwrap();
        let scan = dir.path();
        for d in ["a", "a/log", "b", ".s6-svscan", ".gateway-c.tmp", ".x/log"] {
            std::fs::create_dir_all(scan.join(d)).unwrap();
        }
        std::fs::write(scan.join("file"), "").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir(elsewhere.path().join("log")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), scan.join("linked")).unwrap();
        assert_eq!(count_services(scan, false), Some(3));
        assert_eq!(count_services(scan, true), Some(5));
        assert_eq!(count_services(&scan.join("absent"), true), None);
    }
}
