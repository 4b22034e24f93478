//! The emulation's side of the host: what it needs there (root, util-linux
//! tools, a userland with s6, no `no_new_privs`) and the temp dir each
//! container lives in, swept when a dead test process left it behind.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::procfs;
use crate::userland::Userland;

/// Temp dir names start with this, then `<pid of the test process>-<n>`.
const TEMP_PREFIX: &str = "hermes-emu-";
/// Marks a temp dir kept on purpose, so later runs do not sweep it.
pub(crate) const KEEP_MARKER: &str = "KEPT";
/// `HERMES_EMU_KEEP=1`: teardown keeps the container's temp dir (marked
/// with [`KEEP_MARKER`]) and says where it is.
pub(crate) const KEEP_ENV: &str = "HERMES_EMU_KEEP";
const REQUIRE_ROOT_ENV: &str = "HERMES_EMU_REQUIRE_ROOT";

/// Host programs the emulation needs.
pub(crate) const SETPRIV: &str = "/usr/bin/setpriv";
pub(crate) const UNSHARE: &str = "/usr/bin/unshare";
pub(crate) const NSENTER: &str = "/usr/bin/nsenter";
const HOST_TOOLS: &[&str] = &[SETPRIV, UNSHARE, NSENTER, "/usr/sbin/pivot_root"];
/// Programs the container's userland (the host's, or a Debian root
/// filesystem: see [`Userland`]) must have.
const USERLAND_TOOLS: &[&str] = &[
    "/usr/bin/s6-svscan",
    "/usr/lib/execline/bin/execlineb",
    "/usr/bin/setpriv",
    "/usr/bin/env",
];

/// Returns true (and says so loudly on stderr) when the test cannot run
/// because the process is not root: `if skip_unless_root("name") { return; }`.
///
/// With `HERMES_EMU_REQUIRE_ROOT=1` it panics instead, so CI cannot pass by
/// skipping.
pub fn skip_unless_root(test_name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    if std::env::var_os(REQUIRE_ROOT_ENV).is_some_and(|v| v == "1") {
        panic!("hermes-s6-emu: {test_name} needs root and {REQUIRE_ROOT_ENV}=1 is set");
    }
    eprintln!(
        "\n{bar}\nSKIPPED (needs root): {test_name}\n  the container emulation needs root for mount and PID namespaces\n{bar}",
        bar = "!".repeat(72)
    );
    true
}

/// Panics, naming the program, when the userland lacks one the boot script
/// runs in the container.
pub(crate) fn check_userland(userland: &Userland) {
    for tool in USERLAND_TOOLS {
        if !userland.path(tool).exists() {
            panic!(
                "hermes-s6-emu: {tool} is missing in the userland of s6 {} ({}); the \
                 emulation needs util-linux, s6 and execline there",
                userland.version.label(),
                userland.root.display()
            );
        }
    }
}

/// Panics, saying what to do, when this process cannot boot a container:
/// not root, a host tool missing, or `no_new_privs` inherited.
pub(crate) fn check_host() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "hermes-s6-emu: booting a container needs root (mount and PID namespaces); \
             guard the test with `if skip_unless_root(..) {{ return; }}`"
        );
    }
    for tool in HOST_TOOLS {
        if !Path::new(tool).exists() {
            panic!(
                "hermes-s6-emu: {tool} is missing; the emulation needs util-linux, s6 and \
                 execline (apt-get install util-linux s6 execline)"
            );
        }
    }
    // Inherited by every process the emulation starts; the kernel then
    // ignores setuid bits, and the helper could never become root.
    if procfs::status_field(std::process::id(), "NoNewPrivs:").as_deref() == Some("1") {
        panic!(
            "hermes-s6-emu: the test process runs with no_new_privs set, so the setuid helper \
             cannot work in the emulation; run the tests outside that sandbox"
        );
    }
}

/// A new temp dir in `base`, root's only (0700), named after this test
/// process so that a later run can tell when it was left behind.
pub(crate) fn create_temp_dir(base: &Path) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!(
                "hermes-s6-emu: cannot create a temp dir in {}: {e}",
                base.display()
            ),
        }
    }
}

/// Removes temp dirs left by test processes that died before their
/// containers' teardown could run (their namespaces died with them).
pub(crate) fn sweep_stale_temp_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let owner_gone = !Path::new(&format!("/proc/{owner}")).exists();
        if owner_gone
            && !dir.join(KEEP_MARKER).exists()
            && procfs::host_mounts_referencing(&dir).is_empty()
        {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
