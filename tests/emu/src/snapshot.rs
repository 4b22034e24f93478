//! A root-side view of the scan directory, for "nothing changed" assertions.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every entry under `/run/service` of a container: path -> "type uid:gid
/// mode", plus the size of regular files when `sizes` is set (s6's
/// `death_tally`, which grows by itself, is never sized).
///
/// s6-svscan spawns a slot's supervisor and its logger's supervisor one after
/// the other, and each creates its files when it starts; a snapshot taken in
/// between would differ from the next one with nobody having changed
/// anything. So the tree is read once every slot is settled: its supervisor
/// has started exactly when its logger's has, as told by `supervise/status`,
/// the last file s6-supervise creates (bounded wait; an unsettled tree is
/// still returned, and the comparison will show it). s6's own transient
/// `status.new` (written, then renamed over `status`) is never listed.
pub fn scan_tree(c: &crate::Container, sizes: bool) -> BTreeMap<String, String> {
    let scan = c.host_path(crate::SCAN_DIR);
    crate::wait_until(SETTLE_TIMEOUT, || supervisor_pairs_settled(&scan));
    let mut entries = BTreeMap::new();
    walk(&scan, "", sizes, &mut entries);
    entries
}

const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn supervisor_pairs_settled(scan: &Path) -> bool {
    let Ok(read) = std::fs::read_dir(scan) else {
        return true;
    };
    read.flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .filter(|slot| slot.join("log").is_dir())
        .all(|slot| {
            let supervised = |dir: &Path| dir.join("supervise/status").exists();
            supervised(&slot) == supervised(&slot.join("log"))
        })
}

fn walk(dir: &Path, prefix: &str, sizes: bool, out: &mut BTreeMap<String, String>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        if entry.file_name() == "status.new" {
            continue;
        }
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let ft = meta.file_type();
        let kind = match () {
            _ if ft.is_symlink() => "link",
            _ if ft.is_dir() => "dir",
            _ if ft.is_file() => "file",
            _ => "other",
        };
        let mut description = format!(
            "{kind} {}:{} {:o}",
            meta.uid(),
            meta.gid(),
            meta.permissions().mode() & 0o7777
        );
        if sizes {
            let sized = ft.is_file() && !name.ends_with("/death_tally");
            description.push_str(&if sized {
                format!(" {}", meta.len())
            } else {
                " -".to_owned()
            });
        }
        out.insert(name.clone(), description);
        if ft.is_dir() {
            walk(&entry.path(), &name, sizes, out);
        }
    }
}
