//! The shipped Kubernetes Pod specs, `docker/kubernetes-pod.yaml` and
//! `docker/kubernetes-pod-restricted.yaml`, each run as written by
//! `podman kube play` (the image's name alone replaced by the test
//! image's), then the gateway lifecycle as hermes through `podman exec`,
//! and what the spec promises checked: PID 1's ids, no_new_privs and
//! capability sets in the host's /proc, the read-only root, `hermes-s6
//! doctor` without a failing check, a running gateway back after the
//! container restarts in its Pod.
//!
//! podman 4.3 applies the specs' securityContext as Kubernetes does
//! (runAsUser, runAsGroup, allowPrivilegeEscalation, capabilities,
//! readOnlyRootFilesystem; its default seccomp profile stands for
//! `RuntimeDefault`, whose field it ignores, as it ignores `runAsNonRoot`),
//! but not their volumes: it ignores `fsGroup` and `emptyDir.medium`, and
//! makes an emptyDir a volume on disk named after it, fills it with the
//! image's files at the mount point and gives it their owner and mode (the
//! image's /run: root's, 0755, which s6-overlay refuses to a container
//! started as hermes: the restricted Pod does not boot). kubelet makes an
//! emptyDir empty and root's: a tmpfs of mode 1777 (`medium: Memory`, the
//! kernel's default mode for a tmpfs), a directory of mode 0777 on disk;
//! with fsGroup, of group fsGroup and g+rwxs (3777, 2777). So each volume
//! of the Pod is made ahead as kubelet makes it, under the name kube play
//! gives it (it takes an existing volume of that name as it is): the
//! emptyDirs so, and the claim as a fresh PersistentVolume is, an empty
//! root-owned 0755 directory (with fsGroup, root:fsGroup 2775).
//!
//! The spec's names (pod `hermes`, volumes `hermes-data`, `run`, `tmp`)
//! are kept, so the cases take a lock, and remove only what they made
//! (volumes carry [`LABEL`]); anything else of those names stops them.

use std::fs::{File, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use super::{Ctr, HERMES_ID, REPO, image, lifecycle_as_hermes, podman};

/// The label of the volumes these cases make.
const LABEL_KEY: &str = "io.hermes-s6.engine-test";
const LABEL: &str = "io.hermes-s6.engine-test=kube";

/// A volume of the Pod, as kubelet sets it up.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `emptyDir: {medium: Memory}`: a tmpfs, root's, mode 1777.
    MemoryEmptyDir,
    /// `emptyDir: {}`: a directory on the node's disk, root's, mode 0777.
    EmptyDir,
    /// A claim bound to a fresh PersistentVolume: an empty filesystem,
    /// root's, mode 0755.
    FreshClaim,
}

struct Volume {
    name: &'static str,
    path: &'static str,
    kind: Kind,
}

struct Spec {
    file: &'static str,
    /// `metadata.name` and the one container's: kube play names the
    /// container POD-CONTAINER.
    pod: &'static str,
    container: &'static str,
    volumes: &'static [Volume],
    fs_group: Option<u32>,
    /// The ids of the container's processes.
    uid: u32,
    gid: u32,
    /// `capabilities.add`, after `drop: ["ALL"]`.
    caps: &'static [&'static str],
    /// `seccompProfile: {type: RuntimeDefault}`.
    seccomp: bool,
    /// The transport `hermes-s6 info` must name.
    transport: &'static str,
    /// Who reads s6's state: root has no capability in the restricted Pod
    /// (and `kubectl exec` runs as the container's user there).
    admin: &'static str,
    /// What the file must say for the fields above to be its own.
    says: &'static [&'static str],
}

/// The volumes of both specs.
const VOLUMES: &[Volume] = &[
    Volume {
        name: "hermes-data",
        path: "/opt/data",
        kind: Kind::FreshClaim,
    },
    Volume {
        name: "run",
        path: "/run",
        kind: Kind::MemoryEmptyDir,
    },
    Volume {
        name: "tmp",
        path: "/tmp",
        kind: Kind::EmptyDir,
    },
];

/// What both specs say of their Pod, container and volumes.
const BOTH_SAY: &[&str] = &[
    "kind: Pod\nmetadata:\n  name: hermes\n",
    "    - name: hermes\n      image: hermes:latest\n",
    "allowPrivilegeEscalation: false\n",
    "readOnlyRootFilesystem: true\n",
    "- name: S6_READ_ONLY_ROOT\n          value: \"1\"\n",
    "        - name: data\n          mountPath: /opt/data\n",
    "        - name: run\n          mountPath: /run\n",
    "        - name: tmp\n          mountPath: /tmp\n",
    "    - name: data\n      persistentVolumeClaim:\n        claimName: hermes-data\n",
    "    - name: run\n      emptyDir:\n        medium: Memory\n",
    "    - name: tmp\n      emptyDir: {}\n",
];

static POD: Spec = Spec {
    file: "docker/kubernetes-pod.yaml",
    pod: "hermes",
    container: "hermes",
    volumes: VOLUMES,
    fs_group: None,
    uid: 0,
    gid: 0,
    caps: &["SETUID", "SETGID", "KILL", "CHOWN"],
    seccomp: false,
    transport: "socket",
    admin: "root",
    says: &[
        "runAsUser: 0\n",
        "drop: [\"ALL\"]\n          add: [\"SETUID\", \"SETGID\", \"KILL\", \"CHOWN\"]\n",
    ],
};

static RESTRICTED: Spec = Spec {
    file: "docker/kubernetes-pod-restricted.yaml",
    pod: "hermes",
    container: "hermes",
    volumes: VOLUMES,
    fs_group: Some(10000),
    uid: 10000,
    gid: 10000,
    caps: &[],
    seccomp: true,
    transport: "owner",
    admin: "hermes",
    says: &[
        "  securityContext:\n    runAsNonRoot: true\n    runAsUser: 10000\n    runAsGroup: 10000\n    fsGroup: 10000\n    seccompProfile:\n      type: RuntimeDefault\n",
        "capabilities:\n          drop: [\"ALL\"]\n      volumeMounts:",
        "- name: S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES\n          value: \"1\"\n",
    ],
};

impl Spec {
    /// The owner group and mode kubelet gives the volume.
    fn kubelet_mode(&self, kind: Kind) -> (u32, u32) {
        let mode = match kind {
            Kind::MemoryEmptyDir => 0o1777,
            Kind::EmptyDir => 0o777,
            Kind::FreshClaim => 0o755,
        };
        // SetVolumeOwnership: group fsGroup, rw and x for it, setgid.
        match self.fs_group {
            Some(group) => (group, mode | 0o660 | 0o110 | 0o2000),
            None => (0, mode),
        }
    }

    /// The capability mask of `caps`.
    fn cap_mask(&self) -> u64 {
        self.caps
            .iter()
            .map(|cap| match *cap {
                "CHOWN" => 1 << 0,
                "KILL" => 1 << 5,
                "SETGID" => 1 << 6,
                "SETUID" => 1 << 7,
                other => panic!("capability {other} not known here"),
            })
            .fold(0, |mask, bit| mask | bit)
    }
}

/// Whether volume `name` exists, and if so whether it is these cases'.
fn labelled(name: &str) -> Option<bool> {
    let format = format!("{{{{index .Labels \"{LABEL_KEY}\"}}}}");
    let out = podman(&["volume", "inspect", "--format", &format, name]);
    out.ok().then(|| out.stdout.trim() == "kube")
}

fn foreign(what: &str) -> ! {
    panic!(
        "{what} exists here: not these tests', so not touched; remove it to run the \
         Kubernetes cases"
    )
}

/// A Pod played from a spec: torn down (`podman kube down`, then `podman
/// pod rm -f`) and its volumes removed on drop, before the lock is let go.
struct Pod {
    spec: &'static Spec,
    yaml: PathBuf,
    ctr: Ctr,
    _lock: File,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let yaml = self.yaml.to_string_lossy().into_owned();
        let _ = podman(&["kube", "down", &yaml]);
        let _ = podman(&["pod", "rm", "-f", "-t", "0", self.spec.pod]);
        for v in self.spec.volumes {
            let _ = podman(&["volume", "rm", "-f", v.name]);
        }
        let _ = std::fs::remove_file(&self.yaml);
    }
}

/// `podman kube play` of `spec` as shipped, with the test image and the
/// Pod's volumes made ahead as kubelet makes them; `None` when the engine
/// tests are skipped.
fn play(case: &str, spec: &'static Spec) -> Option<Pod> {
    let image = image(case)?;
    let text = std::fs::read_to_string(format!("{REPO}/{}", spec.file)).expect(spec.file);
    for says in BOTH_SAY.iter().chain(spec.says) {
        assert!(
            text.contains(says),
            "{} no longer says {says:?}: this case's Spec is out of date",
            spec.file
        );
    }
    assert_eq!(
        text.matches("image: hermes:latest").count(),
        1,
        "{}",
        spec.file
    );
    let text = text.replace("image: hermes:latest", &format!("image: {image}"));

    let lock_path = std::env::temp_dir().join("hermes-s6-engine-kube.lock");
    let lock = File::create(&lock_path).expect("the lock file");
    lock.lock().expect("lock");
    let ctr_name = format!("{}-{}", spec.pod, spec.container);
    if podman(&["pod", "exists", spec.pod]).ok() {
        // Left by a case that was killed: its container mounts these
        // cases' volumes.
        let mounts = podman(&[
            "container",
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Name}} {{end}}",
            &ctr_name,
        ]);
        let names: Vec<&str> = mounts.stdout.split_whitespace().collect();
        if !mounts.ok() || names.is_empty() || names.iter().any(|v| labelled(v) != Some(true)) {
            foreign(&format!(
                "a pod named {} whose container mounts volumes without the label {LABEL}",
                spec.pod
            ));
        }
        podman(&["pod", "rm", "-f", "-t", "0", spec.pod]).expect_ok("podman pod rm (a leftover)");
    }
    for v in spec.volumes {
        match labelled(v.name) {
            None => {}
            Some(true) => {
                podman(&["volume", "rm", "-f", v.name]).expect_ok("podman volume rm (a leftover)");
            }
            Some(false) => foreign(&format!(
                "a volume named {} without the label {LABEL}",
                v.name
            )),
        }
    }

    let yaml = std::env::temp_dir().join(format!(
        "hermes-s6-engine-{case}-{}.yaml",
        std::process::id()
    ));
    let claim = spec
        .volumes
        .iter()
        .find(|v| v.kind == Kind::FreshClaim)
        .expect("a claim");
    let pod = Pod {
        spec,
        yaml,
        ctr: Ctr {
            name: ctr_name,
            volume: claim.name.to_owned(),
            admin: spec.admin,
        },
        _lock: lock,
    };

    // Each volume as kubelet makes it. `uid=` and `gid=` keep podman from
    // giving it the owner and mode of the image's directory, `nocopy` from
    // copying the image's files into it; a tmpfs takes its mode from its
    // mount options, a directory from chmod.
    for v in spec.volumes {
        let (gid, mode) = spec.kubelet_mode(v.kind);
        let mut args = vec!["volume", "create", "--label", LABEL, "--opt", "nocopy"];
        let o = if v.kind == Kind::MemoryEmptyDir {
            args.extend(["--opt", "type=tmpfs", "--opt", "device=tmpfs"]);
            format!("o=mode={mode:o},uid=0,gid={gid}")
        } else {
            format!("o=uid=0,gid={gid}")
        };
        args.extend(["--opt", &o, v.name]);
        podman(&args).expect_ok("podman volume create");
        if v.kind != Kind::MemoryEmptyDir {
            let dir = podman(&["volume", "inspect", "--format", "{{.Mountpoint}}", v.name])
                .expect_ok("podman volume inspect");
            std::fs::set_permissions(dir.stdout.trim(), Permissions::from_mode(mode))
                .expect("chmod the volume");
        }
    }
    std::fs::write(&pod.yaml, text).expect("the spec with the test image");
    podman(&["kube", "play", &pod.yaml.to_string_lossy()]).expect_ok("podman kube play");

    // kube play mounted the volumes made ahead.
    let mounts = podman(&[
        "container",
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Destination}}={{.Name}} {{end}}",
        &pod.ctr.name,
    ])
    .expect_ok("podman container inspect");
    for v in spec.volumes {
        let want = format!("{}={}", v.path, v.name);
        assert!(
            mounts.stdout.split_whitespace().any(|m| m == want),
            "{want} not in {}",
            mounts.stdout
        );
    }
    Some(pod)
}

/// `/proc/1/status` of the container, as the host sees it.
fn pid1_status(c: &Ctr) -> String {
    let pid = podman(&["inspect", "--format", "{{.State.Pid}}", &c.name])
        .expect_ok("the container's PID 1")
        .stdout;
    let pid = pid.trim();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "s6-svscan", "PID 1 (host pid {pid})");
    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status")
}

/// The fields of line `name:` of a /proc status.
fn fields<'a>(status: &'a str, name: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
        .split_whitespace()
        .collect()
}

/// The gateway lifecycle as hermes in the played Pod, and what the spec
/// promises.
fn runs_as_the_spec_says(pod: &Pod) {
    let (c, spec) = (&pod.ctr, pod.spec);
    lifecycle_as_hermes(c, spec.transport);

    // PID 1, from the host: its ids, no_new_privs, every capability set
    // the spec's (drop ALL, then add), the seccomp filter.
    let status = pid1_status(c);
    let ids = |name| {
        fields(&status, name)
            .iter()
            .map(|id| id.parse::<u32>().expect("an id"))
            .collect::<Vec<u32>>()
    };
    assert_eq!(ids("Uid"), [spec.uid; 4], "{status}");
    assert_eq!(ids("Gid"), [spec.gid; 4], "{status}");
    assert_eq!(fields(&status, "NoNewPrivs"), ["1"], "{status}");
    let mask = format!("{:016x}", spec.cap_mask());
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(fields(&status, set), [mask.as_str()], "{set}:\n{status}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(fields(&status, set), ["0000000000000000"], "{status}");
    }
    if spec.seccomp {
        assert_eq!(fields(&status, "Seccomp"), ["2"], "{status}");
    }

    // The root is read-only, to root as well.
    let out = c.sh("root", ": > /etc/hermes-probe");
    assert!(
        !out.ok() && out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );

    // The boot ran on the emptyDirs as kubelet makes them.
    for v in spec.volumes.iter().filter(|v| v.kind != Kind::FreshClaim) {
        let (gid, mode) = spec.kubelet_mode(v.kind);
        let out = c
            .sh(
                "hermes",
                &format!("stat -c '%u:%g %a' {0}; stat -f -c %T {0}", v.path),
            )
            .expect_ok("stat an emptyDir");
        let mut lines = out.stdout.lines();
        assert_eq!(
            lines.next(),
            Some(format!("0:{gid} {mode:o}").as_str()),
            "{}",
            v.path
        );
        if v.kind == Kind::MemoryEmptyDir {
            assert_eq!(lines.next(), Some("tmpfs"), "{}", v.path);
        }
    }

    // The claim: a fresh volume is root's. Root with CHOWN gives it to
    // hermes; hermes alone cannot, and works in it through fsGroup.
    let data = c
        .sh("hermes", "stat -c '%u:%g %a' /opt/data /opt/data/logs")
        .expect_ok("stat /opt/data");
    let boot = c.logs();
    match spec.fs_group {
        None => assert_eq!(
            data.stdout,
            format!("{HERMES_ID}:{HERMES_ID} 755\n{HERMES_ID}:{HERMES_ID} 750\n")
        ),
        Some(group) => {
            assert_eq!(
                data.stdout,
                format!("0:{group} 2775\n{HERMES_ID}:{HERMES_ID} 2750\n")
            );
            assert!(
                boot.contains("01-hermes-s6-setup: warning: /opt/data is not owned by hermes"),
                "{boot}"
            );
        }
    }
    assert!(
        boot.contains(&format!("{} transport", spec.transport)),
        "{boot}"
    );
    c.assert_doctor_passes(spec.transport);

    // The container ends and its Pod starts it again, on the same
    // emptyDirs: a running gateway comes back, as hermes.
    c.create_profile("work");
    c.hermes_s6("reconcile");
    c.hermes_s6("gateway start -p work");
    c.wait_recorded_running("work");
    main_program_ends(c);
    c.wait("gateway-work supervised", 30, || {
        c.sh(c.admin, "s6-svok /run/service/gateway-work").ok()
    });
    let pid = c.wait_gateway("work", true);
    c.assert_runs_as_hermes(pid, "the gateway after the restart");
    assert_eq!(ids_of_pid1(c), [spec.uid; 4]);
    c.assert_doctor_passes(spec.transport);
}

/// Ends the container's main program (the child of s6-overlay's rc.init),
/// as `admin`.
const END_MAIN_PROGRAM: &str = r#"for d in /proc/[0-9]*; do
    case $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) in
        */rc.init\ top\ *) rc=${d#/proc/} ;;
    esac
done
for d in /proc/[0-9]*; do
    read -r l <"$d/stat" 2>/dev/null || continue
    set -- ${l##*) }
    if [ "$2" = "${rc:?rc.init not found}" ]; then kill -TERM "${d#/proc/}"; exit; fi
done
echo "no child of rc.init ($rc)" >&2
exit 1"#;

/// The container's main program ends, and the Pod starts the container
/// again in it, as Kubernetes does with `restartPolicy: Always` (the
/// default, kube play's too): on the same emptyDirs. (`podman restart`
/// would not do: a container stopped by the user stops a played Pod, its
/// exit policy being `stop`.)
fn main_program_ends(c: &Ctr) {
    let policy = podman(&[
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}",
        &c.name,
    ]);
    assert_eq!(policy.stdout.trim(), "always", "{}", policy.stderr);
    let restarts = || {
        podman(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Running}}",
            &c.name,
        ])
        .stdout
        .trim()
        .to_owned()
    };
    let before = restarts();
    c.sh(c.admin, END_MAIN_PROGRAM)
        .expect_ok("end the main program");
    let count: u32 = before
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("RestartCount");
    c.wait("the container started again in its Pod", 60, || {
        restarts() == format!("{} true", count + 1)
    });
    c.wait_booted();
}

fn ids_of_pid1(c: &Ctr) -> Vec<u32> {
    fields(&pid1_status(c), "Uid")
        .iter()
        .map(|id| id.parse().expect("a uid"))
        .collect()
}

#[test]
fn kubernetes_pod_yaml() {
    let Some(pod) = play("kubernetes_pod_yaml", &POD) else {
        return;
    };
    runs_as_the_spec_says(&pod);
    // `kubectl exec` runs commands as root here: s6-setuidgid gets to
    // hermes (root has SETUID and SETGID), and hermes-s6 to the socket.
    let info = pod
        .ctr
        .sh("root", "s6-setuidgid hermes hermes-s6 info --json")
        .expect_ok("hermes-s6 info through s6-setuidgid");
    let info: Value = serde_json::from_str(&info.stdout).expect("info JSON");
    assert_eq!(info["control_mode"], "socket", "{info}");
}

#[test]
fn kubernetes_pod_restricted_yaml() {
    let Some(pod) = play("kubernetes_pod_restricted_yaml", &RESTRICTED) else {
        return;
    };
    runs_as_the_spec_says(&pod);
    // s6 and the slots are hermes's, with no drop in the slots' run.
    let slot = pod
        .ctr
        .sh(
            "hermes",
            "stat -c '%u:%g %a' /run/service/gateway-work; cat /run/service/gateway-work/run",
        )
        .expect_ok("the slot");
    assert!(
        slot.stdout
            .starts_with(&format!("{HERMES_ID}:{HERMES_ID} 755\n"))
            && !slot.stdout.contains("s6-setuidgid"),
        "{}",
        slot.stdout
    );
}
