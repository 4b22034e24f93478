//! Services in the container and the emulation's own s6 control: a test's
//! service added to the scan dir (or one of s6-overlay's s6-rc stand-ins
//! brought up), s6-svscan made to pick it up, and who that control runs
//! as ([`Container::init_user`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::nonroot;
use crate::{Container, SCAN_DIR, User};

impl Container {
    /// Creates a root-owned service `/run/service/<name>` (hermes's with
    /// [`crate::Options::non_root`]) with `run` (and `finish` if given)
    /// scripts, has s6-svscan pick it up, and waits until its s6-supervise
    /// is running.
    ///
    /// For one of s6-overlay's s6-rc services ([`crate::S6RC_SERVICES`]:
    /// `main-hermes`, `dashboard`), which every container has, down, this
    /// does what `s6-rc change` does instead: the scripts replace the
    /// stand-in's in its `/run/s6-rc/servicedirs/<name>`, its `down` file
    /// goes, and the service is brought up (`s6-svc -u`).
    pub fn add_service(&self, name: &str, run: &str, finish: Option<&str>) {
        let dir = format!("{SCAN_DIR}/{name}");
        if crate::S6RC_SERVICES.iter().any(|(s6rc, _)| *s6rc == name) {
            let servicedir = format!("/run/s6-rc/servicedirs/{name}");
            self.write_file(&format!("{servicedir}/run"), run, 0o755);
            if let Some(finish) = finish {
                self.write_file(&format!("{servicedir}/finish"), finish, 0o755);
            }
            let _ = fs::remove_file(self.host_path(&format!("{servicedir}/down")));
            self.give_to_init_user(&servicedir);
            self.run_as(self.init_user(), &["s6-svc", "-u", &dir], &[], None)
                .assert_success();
            return;
        }
        let staging = format!("{SCAN_DIR}/.{name}.hermes-emu-new");
        let host_staging = self.host_path(&staging);
        fs::create_dir(&host_staging)
            .and_then(|()| fs::set_permissions(&host_staging, fs::Permissions::from_mode(0o755)))
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot create {staging}: {e}"));
        self.write_file(&format!("{staging}/run"), run, 0o755);
        if let Some(finish) = finish {
            self.write_file(&format!("{staging}/finish"), finish, 0o755);
        }
        self.give_to_init_user(&staging);
        fs::rename(&host_staging, self.host_path(&dir))
            .unwrap_or_else(|e| panic!("hermes-s6-emu: cannot publish {dir}: {e}"));
        self.rescan_until_supervised(&dir);
    }

    /// Has s6-svscan scan now, and waits until `dir` has its s6-supervise.
    pub(crate) fn rescan_until_supervised(&self, dir: &str) {
        self.run_as(
            self.init_user(),
            &["s6-svscanctl", "-a", SCAN_DIR],
            &[],
            None,
        )
        .assert_success();
        self.wait_for(
            Duration::from_secs(10),
            &format!("s6-supervise on {dir}"),
            || {
                self.run_as(self.init_user(), &["s6-svok", dir], &[], None)
                    .success()
            },
        );
    }

    /// Who PID 1 runs as, and so s6-svscan, every s6-supervise, every
    /// service and (with [`crate::Options::cont_init`]) the cont-init scripts:
    /// [`User::Hermes`] in a non-root container ([`crate::Options::non_root`]),
    /// else [`User::Root`]. The emulation's own `s6-svscanctl`, `s6-svc`,
    /// `s6-svok` and `s6-svwait` run as this user too.
    pub fn init_user(&self) -> User {
        if self.options().non_root {
            User::Hermes
        } else {
            User::Root
        }
    }

    /// In a non-root container, gives what the emulation made under
    /// `path_in_container` (root's so far) to hermes, as s6-overlay and
    /// s6-rc, running as hermes there, would have made it.
    pub(crate) fn give_to_init_user(&self, path_in_container: &str) {
        if !self.options().non_root {
            return;
        }
        let (uid, gid) = (self.options().hermes_uid, self.options().hermes_gid);
        nonroot::give_tree(&self.host_path(path_in_container), uid, gid).unwrap_or_else(|e| {
            panic!("hermes-s6-emu: cannot give {path_in_container} to uid {uid}: {e}")
        });
    }

    /// Whether s6-supervise is running the `finish` script of the service at
    /// `/run/service/<service>`: bit 1 of its status file's flags byte, the
    /// last. `s6-svstat -o` shows such a service as plainly down.
    pub fn finishing(&self, service: &str) -> bool {
        std::fs::read(self.host_path(&format!("{SCAN_DIR}/{service}/supervise/status")))
            .ok()
            .and_then(|status| status.last().copied())
            .is_some_and(|flags| flags & 0b10 != 0)
    }
}
