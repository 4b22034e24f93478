//! The image laid onto the Hermes image's boot: docker/layer on a stand-in
//! Hermes root built from docker/upstream-steps.txt (every step's file, the
//! insecure ones with a line of their kind), as docker/Dockerfile runs it:
//! `layer apply`, the image's own files (docker/rootfs), `layer verify`.
//! verify must pass on that, and fail, naming the cause, on a base that
//! still hands hermes control of s6 somewhere, and on a layering that
//! removed or changed anything else of the Hermes image's boot. Needs bash
//! only, not root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hermes_s6_emu::DOCKER_DIR;

/// What the stand-in's `replace`/`remove` steps carry: the kind of line that
/// makes them insecure (upstream's hands hermes s6-svscan's control FIFO);
/// docker/check uses the same fixture.
const INSECURE_SAMPLE: &str =
    include_str!("../../fixtures/insecure-upstream-step").trim_ascii_end();

struct Layered {
    dir: PathBuf,
}

impl Layered {
    /// A stand-in Hermes root, with `edit` applied to it before the layering.
    fn base(name: &str, edit: impl FnOnce(&Path)) -> Layered {
        let dir = std::env::temp_dir().join(format!("hermes-layer-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        let layered = Layered { dir };
        layered.layer(&["stand-in", &layered.root_str(), &steps(), INSECURE_SAMPLE]);
        edit(&layered.root());
        layered
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn root_str(&self) -> String {
        self.root().to_string_lossy().into_owned()
    }

    fn record(&self) -> String {
        self.dir.join("record").to_string_lossy().into_owned()
    }

    fn layer(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("bash")
            .arg(Path::new(DOCKER_DIR).join("layer"))
            .args(args)
            .output()
            .expect("cannot run docker/layer");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn apply(&self) -> String {
        let (ok, out) = self.layer(&["apply", &self.root_str(), &steps(), &self.record()]);
        assert!(ok, "{out}");
        out
    }

    /// The image's own files, as `COPY docker/rootfs/ /`.
    fn copy_rootfs(&self) {
        let status = Command::new("cp")
            .arg("-a")
            .arg(Path::new(DOCKER_DIR).join("rootfs/."))
            .arg(self.root())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn verify(&self) -> (bool, String) {
        self.layer(&["verify", &self.root_str(), &steps(), &self.record()])
    }

    /// apply, the image's files, verify.
    fn build(&self) -> (bool, String) {
        self.apply();
        self.copy_rootfs();
        self.verify()
    }
}

impl Drop for Layered {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn steps() -> String {
    Path::new(DOCKER_DIR)
        .join("upstream-steps.txt")
        .to_string_lossy()
        .into_owned()
}

fn write_script(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn append(path: &Path, line: &str) {
    let mut text = fs::read_to_string(path).unwrap();
    text.push_str(line);
    text.push('\n');
    fs::write(path, text).unwrap();
}

#[test]
fn the_hermes_boot_keeps_every_step_but_those_that_hand_hermes_s6() {
    let l = Layered::base("clean", |_| {});
    let root = l.root();
    let stage2 = fs::read(root.join("opt/hermes/docker/stage2-hook.sh")).unwrap();
    let applied = l.apply();
    for gone in [
        "remove /etc/cont-init.d/015-supervise-perms",
        "replace /etc/cont-init.d/02-reconcile-profiles",
        "replace /etc/s6-overlay/s6-rc.d/main-hermes",
        "replace /etc/s6-overlay/s6-rc.d/dashboard",
    ] {
        assert!(applied.contains(gone), "{gone}: {applied}");
    }
    l.copy_rootfs();
    let (ok, out) = l.verify();
    assert!(ok, "{out}");
    assert!(!root.join("etc/cont-init.d/015-supervise-perms").exists());
    // The replacement is this image's, without the stand-in's chown.
    let reconcile = fs::read_to_string(root.join("etc/cont-init.d/02-reconcile-profiles")).unwrap();
    assert!(reconcile.contains("hermes-s6 reconcile"));
    assert!(!reconcile.contains("chown -R hermes"));
    // Kept as they were, and run in this order.
    assert_eq!(
        fs::read(root.join("opt/hermes/docker/stage2-hook.sh")).unwrap(),
        stage2
    );
    let mut steps: Vec<String> = fs::read_dir(root.join("etc/cont-init.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [
            "00-hermes-path",
            "01-hermes-s6-setup",
            "01-hermes-setup",
            "02-reconcile-profiles",
            "03-provision-git-credentials"
        ]
    );
    for kept in [
        "usr/bin/tini",
        "opt/hermes/bin/hermes",
        "opt/hermes/docker/main-wrapper.sh",
    ] {
        assert!(root.join(kept).is_file(), "{kept}");
    }
}

#[test]
fn a_plain_debian_base_has_nothing_to_keep() {
    let l = Layered::base("plain", |root| {
        fs::remove_dir_all(root).unwrap();
        fs::create_dir(root).unwrap();
    });
    let (ok, out) = l.build();
    assert!(ok, "{out}");
    assert!(out.contains("0 recorded file(s)"), "{out}");
}

#[test]
fn a_base_that_still_hands_hermes_s6_is_refused() {
    // The Hermes setup itself re-owning the scan directory.
    let l = Layered::base("stage2", |root| {
        append(
            &root.join("opt/hermes/docker/stage2-hook.sh"),
            "chown -R hermes:hermes /run/service",
        );
    });
    let (ok, out) = l.build();
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "/opt/hermes/docker/stage2-hook.sh:3: still hands hermes control of s6: chown -R hermes:hermes /run/service"
        ),
        "{out}"
    );

    // A step the description does not know, opening a service's control.
    let l = Layered::base("unknown", |root| {
        write_script(
            &root.join("etc/cont-init.d/016-more-perms"),
            "#!/bin/sh\n# chmod in a comment is fine\n\
             chmod 0660 /run/s6-rc/servicedirs/main-hermes/supervise/control\n",
        );
    });
    let (ok, out) = l.build();
    assert!(!ok, "{out}");
    assert!(
        out.contains("/etc/cont-init.d/016-more-perms:3: still hands hermes control of s6")
            && !out.contains("016-more-perms:2"),
        "{out}"
    );

    // A service of a derived image running the Python reconciler, which
    // builds hermes-owned supervise/ skeletons.
    let l = Layered::base("python", |root| {
        write_script(
            &root.join("etc/s6-overlay/s6-rc.d/extra/run"),
            "#!/command/with-contenv sh\nexec /opt/hermes/.venv/bin/python -m hermes_cli.container_boot\n",
        );
    });
    let (ok, out) = l.build();
    assert!(!ok, "{out}");
    assert!(
        out.contains("/etc/s6-overlay/s6-rc.d/extra/run:2: still hands hermes control of s6"),
        "{out}"
    );
}

#[test]
fn a_layering_that_removes_or_changes_anything_else_is_refused() {
    // Something kept, removed after apply (a Dockerfile `rm`), and a kept
    // script changed (a COPY over it).
    let l = Layered::base("removed", |_| {});
    l.apply();
    let root = l.root();
    fs::remove_file(root.join("etc/cont-init.d/03-provision-git-credentials")).unwrap();
    append(&root.join("etc/cont-init.d/01-hermes-setup"), ": changed");
    l.copy_rootfs();
    let (ok, out) = l.verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains("/etc/cont-init.d/03-provision-git-credentials is gone: it is the Hermes image's, and this image keeps it"),
        "{out}"
    );
    assert!(
        out.contains("/etc/cont-init.d/01-hermes-setup was changed"),
        "{out}"
    );

    // The removal itself forgotten: the insecure steps are still there.
    let l = Layered::base("forgotten", |_| {});
    let (ok, out) = l.layer(&["apply", &l.root_str(), &steps(), &l.record()]);
    assert!(ok, "{out}");
    // Put the base back as it was, as if apply had not removed anything.
    let again = Layered::base("forgotten-base", |_| {});
    let status = Command::new("cp")
        .arg("-a")
        .arg(again.root().join("."))
        .arg(l.root())
        .status()
        .unwrap();
    assert!(status.success());
    l.copy_rootfs();
    let (ok, out) = l.verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains("/etc/cont-init.d/015-supervise-perms is back")
            && out.contains(
                "/etc/cont-init.d/015-supervise-perms:2: still hands hermes control of s6"
            ),
        "{out}"
    );

    // A step that would run before root's PATH is checked.
    let l = Layered::base("early", |root| {
        write_script(&root.join("etc/cont-init.d/00-early"), "#!/bin/sh\n:\n");
    });
    let (ok, out) = l.build();
    assert!(!ok, "{out}");
    assert!(
        out.contains("the first cont-init step is '00-early', not 00-hermes-path"),
        "{out}"
    );
}
