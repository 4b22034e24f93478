//! [`crate::Options::non_root`]: the container as `docker run --user <hermes
//! uid>` starts it with s6-overlay. s6-svscan, PID 1, runs as hermes (the
//! boot script drops to it right before the exec), so every s6-supervise
//! and every service does; `/run` and all s6-overlay puts there are
//! hermes's (the boot script re-owns them before s6-svscan starts). What the
//! emulation itself adds to `/run` once the container is up (the image's
//! s6-rc service directories, a test's services) is handed to hermes here,
//! as s6-rc, running as that user, would have made it.

use std::fs;
use std::io;
use std::os::unix::fs::lchown;
use std::path::Path;

/// Gives `path` and everything below it to `uid:gid`, never following a
/// symbolic link (links themselves are re-owned).
pub(crate) fn give_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            give_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
