//! Locating the workspace's built binaries that get installed in the container.

use std::env;
use std::path::{Path, PathBuf};

/// Environment variable naming the directory that holds the built binaries,
/// overriding the cargo target directory of the running test executable.
pub const BIN_DIR_ENV: &str = "HERMES_S6_BIN_DIR";

/// File names of the binaries in the cargo target directory.
pub const HELPER_BIN: &str = "hermes-s6-helper";
pub const FRONTEND_BIN: &str = "hermes-s6";
pub const STANDIN_BIN: &str = "hermes-standin";

/// Host paths of the binaries a container installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Installed setuid at `/usr/libexec/hermes-s6-helper`.
    pub helper: PathBuf,
    /// Installed at `/usr/local/bin/hermes-s6`.
    pub frontend: PathBuf,
    /// Installed as the gateway, `/usr/local/bin/hermes`.
    pub standin: PathBuf,
}

impl Paths {
    /// Finds the binaries in [`Paths::bin_dir`].
    ///
    /// # Panics
    /// When one is missing, with the command that builds them.
    pub fn locate() -> Paths {
        Paths::locate_in(&Paths::bin_dir())
    }

    /// Finds the binaries in `dir`.
    ///
    /// # Panics
    /// When one is missing, with the command that builds them.
    pub fn locate_in(dir: &Path) -> Paths {
        let find = |name: &str| {
            let path = dir.join(name);
            if !path.is_file() {
                panic!(
                    "hermes-s6-emu: {name} not built; run 'cargo build --workspace --bins' first \
                     (looked for {})",
                    path.display()
                );
            }
            path
        };
        Paths {
            helper: find(HELPER_BIN),
            frontend: find(FRONTEND_BIN),
            standin: find(STANDIN_BIN),
        }
    }

    /// `$HERMES_S6_BIN_DIR` if set, else the cargo profile directory of the
    /// running executable: tests live in `target/<profile>/deps/` (examples in
    /// `.../examples/`), binaries in `target/<profile>/`.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let exe = env::current_exe()
            .expect("hermes-s6-emu: cannot resolve the running executable's path");
        let dir = exe.parent().unwrap_or(Path::new("/"));
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("deps" | "examples") => dir.parent().unwrap_or(dir).to_path_buf(),
            _ => dir.to_path_buf(),
        }
    }
}
