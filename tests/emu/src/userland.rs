//! Which s6 the container runs: the host's (Debian 12, s6 2.11) or that of a
//! Debian root filesystem built by `tests/rootfs/make` (trixie's s6 2.13,
//! sid's s6 2.15), selected with `HERMES_EMU_S6`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Selects the s6 version: `2.11` (default, the host's), `2.13` or `2.15`.
pub const S6_VERSION_ENV: &str = "HERMES_EMU_S6";

/// The script that builds (and caches) the Debian root filesystems.
pub const ROOTFS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rootfs/make");

/// An s6 version Debian packages, each run with the libraries it was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum S6Version {
    /// Debian 12 (bookworm): the host's `/usr`.
    V2_11,
    /// Debian 13 (trixie).
    V2_13,
    /// Debian sid; s6-overlay 3.2.3.0 ships 2.15.0.0.
    V2_15,
}

impl S6Version {
    pub const ALL: [S6Version; 3] = [S6Version::V2_11, S6Version::V2_13, S6Version::V2_15];

    /// `2.11`, `2.13` or `2.15`.
    pub fn label(self) -> &'static str {
        match self {
            S6Version::V2_11 => "2.11",
            S6Version::V2_13 => "2.13",
            S6Version::V2_15 => "2.15",
        }
    }

    /// The version `HERMES_EMU_S6` selects (2.11 when unset or empty).
    ///
    /// # Panics
    /// On any other value.
    pub fn selected() -> S6Version {
        let value = std::env::var(S6_VERSION_ENV).unwrap_or_default();
        match value.as_str() {
            "" | "2.11" => S6Version::V2_11,
            "2.13" => S6Version::V2_13,
            "2.15" => S6Version::V2_15,
            other => {
                panic!("hermes-s6-emu: {S6_VERSION_ENV}={other:?}: expected 2.11, 2.13 or 2.15")
            }
        }
    }

    /// Whether `s6-svscan` takes a service count option (`-c`): 2.11 and
    /// 2.13 do, 2.15 rejects it.
    pub fn takes_service_cap(self) -> bool {
        self != S6Version::V2_15
    }

    /// Size of `supervise/status` this version writes (43 bytes, with the
    /// pgid, only in 2.13.x).
    pub fn status_len(self) -> usize {
        match self {
            S6Version::V2_13 => 43,
            S6Version::V2_11 | S6Version::V2_15 => 35,
        }
    }
}

/// The selected s6 and where its userland is.
#[derive(Debug)]
pub struct Userland {
    pub version: S6Version,
    /// Root of the Debian tree whose `/usr` (and `/etc`) the container gets:
    /// `/` for 2.11.
    pub root: PathBuf,
    /// The `s6` package's version there, as `dpkg-query` reads it.
    pub package_version: String,
}

impl Userland {
    /// The selected userland, built by `tests/rootfs/make` on first use
    /// (a cached one costs nothing). Says once per process, on stderr,
    /// which s6 the containers run.
    ///
    /// # Panics
    /// When the root filesystem cannot be built or has no `s6` package.
    pub fn get() -> &'static Userland {
        static USERLAND: OnceLock<Userland> = OnceLock::new();
        USERLAND.get_or_init(|| {
            let userland = Userland::prepare(S6Version::selected());
            // Straight to fd 2: the test harness does not capture it, so
            // every test binary's output names the s6 it ran on.
            let _ = writeln!(
                std::io::stderr(),
                "hermes-s6-emu: s6 {} ({S6_VERSION_ENV}={}; userland {})",
                userland.package_version,
                userland.version.label(),
                userland.root.display()
            );
            userland
        })
    }

    fn prepare(version: S6Version) -> Userland {
        let root = if version == S6Version::V2_11 {
            PathBuf::from("/")
        } else {
            let out = Command::new(ROOTFS_SCRIPT)
                .arg(version.label())
                .output()
                .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot run {ROOTFS_SCRIPT}: {e}"));
            if !out.status.success() {
                panic!(
                    "hermes-s6-emu: {ROOTFS_SCRIPT} {} failed ({}):\n{}",
                    version.label(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        };
        let package_version = s6_package_version(&root);
        if !package_version.starts_with(&format!("{}.", version.label())) {
            panic!(
                "hermes-s6-emu: {S6_VERSION_ENV}={} but {} has s6 {package_version}",
                version.label(),
                root.display()
            );
        }
        Userland {
            version,
            root,
            package_version,
        }
    }

    /// Host path of `path` (absolute, in the container) in this userland.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

fn s6_package_version(root: &Path) -> String {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Version}", "s6"])
        .output()
        .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot run dpkg-query: {e}"));
    if !out.status.success() {
        panic!(
            "hermes-s6-emu: no s6 package in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Returns true (and says so on stderr, past the test harness's capture)
/// when the selected s6 is not one of `versions`: `if skip_unless_s6(&[..],
/// "name", "why") { return; }`. For tests that cannot hold on some version
/// yet; `why` names the reason.
pub fn skip_unless_s6(versions: &[S6Version], test_name: &str, why: &str) -> bool {
    let selected = S6Version::selected();
    if versions.contains(&selected) {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED on s6 {}: {test_name}: {why}",
        selected.label()
    );
    true
}
