//! Container emulation for integration tests.
//!
//! The product runs in a Docker image whose PID 1 is s6-svscan (s6-overlay).
//! No Docker engine is available to the tests, so [`Container`] builds the
//! same picture from Linux namespaces, as root: a fresh mount + PID
//! namespace whose PID 1 is s6-overlay's `s6-svscan -d4 -- /run/service`,
//! a tmpfs root with a Debian `/usr` read-only (the host's Debian 12 with
//! s6 2.11, or Debian 13's s6 2.13 or sid's s6 2.15: see
//! [`S6Version`]), generated `hermes` and `intruder`
//! identities, s6-overlay's `/command` layout, the helper installed setuid at
//! its real path, the frontend and a stand-in gateway in `/usr/local/bin`,
//! and a persistent volume at `/opt/data` that survives [`Container::restart`].
//! The host's files are never modified.
//!
//! Tests then act as the `hermes` user, exactly as in production:
//!
//! ```no_run
//! use hermes_s6_emu::{Container, User, skip_unless_root};
//!
//! if skip_unless_root("register_then_start") {
//!     return;
//! }
//! let container = Container::boot();
//! let out = container.run_as(User::Hermes, &["hermes-s6", "gateway", "status"], &[], None);
//! out.assert_success();
//! ```
//!
//! The binaries come from the cargo target directory of the running test
//! (see [`Paths`]); build them first with `cargo build --workspace --bins`.
//!
//! # Differences from a Docker container
//!
//! - Only the mount and PID namespaces are new: the network, hostname, IPC
//!   and cgroups are the host's, and `/sys` is not mounted.
//! - Root in the container holds every capability (Docker's default set is
//!   smaller); [`Options::bounding_set`] narrows the bounding set of PID 1
//!   (so of every service) and of every command run in the container, as
//!   `--cap-drop`/`--cap-add` do, and [`Exec::setpriv_arg`] that of one
//!   command.
//! - [`Options::read_only_root`] emulates `readOnlyRootFilesystem`: once
//!   the image's files are in place, `/` (with `/usr/local` and
//!   `/usr/libexec`) is remounted read-only; `/run`, `/tmp`, `/dev` and
//!   `/opt/data` stay writable.
//! - [`Options::no_setuid`] emulates a container where setuid cannot work
//!   (`allowPrivilegeEscalation: false`): `no_new_privs` on s6-svscan and on
//!   every command run in the container, and the helper without its setuid
//!   bit.
//! - [`Options::non_root`] emulates `docker run --user <hermes uid>`:
//!   s6-svscan runs as hermes and `/run` is hermes's. s6-overlay's own
//!   non-root start (its setuid `s6-overlay-suexec` running `preinit` as
//!   root to make `/run` usable, then stage 0 and s6-linux-init as the
//!   user) is not run: the boot script re-owns `/run` and drops to hermes
//!   right before it execs s6-svscan, which is meant to leave the same
//!   ownership.
//! - The root filesystem is a tmpfs rebuilt on every boot, so changes
//!   outside `/opt/data` (to `/etc`, say) do not survive
//!   [`Container::restart`], whereas `docker restart` keeps the container's
//!   writable layer. Boot-time edits (a uid remap) must be redone per boot,
//!   as the image's cont-init scripts do anyway.
//! - `/usr` (and the initial `/etc`) is the host's Debian 12 with its s6
//!   2.11, or, with `HERMES_EMU_S6=2.13` or `2.15`, that of a Debian root
//!   filesystem `tests/rootfs/make` builds and caches under
//!   `target-rootfs/` (trixie with its s6 2.13.1; trixie with sid's s6
//!   2.15.1, execline and skalibs), so s6 runs with the libraries it was
//!   built for. s6-overlay 3.2.3.0 ships s6 2.15.0.0, statically linked,
//!   in `/package`; here `/command` links to Debian's dynamically linked
//!   binaries. `/usr` is read-only, with a tmpfs on `/usr/local` and on
//!   `/usr/libexec` holding only the installed binaries (built on the
//!   host, they run on every userland: trixie's glibc is newer).
//! - PID 1 is `s6-svscan -d4 -- /run/service` as in s6-overlay (fd 4 is a
//!   file nobody reads), with `-c` only when [`Options::service_cap`] asks
//!   for it (scale tests on 2.11 and 2.13; 2.15 has no `-c`). It runs
//!   without s6-linux-init: the `.s6-svscan` signal, `crash` and `finish`
//!   scripts are s6-overlay's names and modes with stand-ins that do
//!   nothing, and a container stops by having its PID namespace killed.
//! - The scan dir holds what s6-overlay puts there: `.s6-svscan/`,
//!   `s6-linux-init-shutdownd` (a directory whose stand-in only sleeps), and
//!   symbolic links into `/run/s6-rc/servicedirs/` for `s6rc-oneshot-runner`
//!   and `s6rc-fdholder` (stand-ins, up) and `main-hermes` and `dashboard`
//!   (stand-ins, down, as s6-rc-init leaves every longrun before `s6-rc
//!   change`). They count toward s6's service maximum as the real ones do.
//!   [`Container::add_service`] on `main-hermes` or `dashboard` puts the
//!   test's scripts in place and brings the service up, as s6-rc would.
//! - `/run/s6/container_environment` holds `PATH`, `HOME=/root`,
//!   `HOSTNAME` (the host's), `PWD=/` and [`Options::container_env`];
//!   [`Options::keep_env`] is `S6_KEEP_ENV=1` (no such directory; PID 1,
//!   every service and the cont-init scripts inherit it all). Commands run
//!   with [`Container::exec`] get a clean environment instead of `docker
//!   exec`'s.
//! - s6-overlay's stage 2 runs only when asked for
//!   ([`Options::cont_init`]): the image's files from the repository's
//!   `docker/rootfs/` are installed and its cont-init scripts run, on every
//!   boot. s6-rc is not emulated: the stage 2 hook, the static services
//!   (`main-hermes`, `dashboard`) and the container command are not started
//!   by the emulation; tests run them (the scripts are installed in the
//!   container, and [`Container::add_service`] makes a plain s6 service).
//!   The image's other longruns of the `user` bundle (`hermes-s6-helperd`)
//!   are started after the cont-init scripts, as `s6-rc change` would:
//!   their service directories from `/etc/s6-overlay/s6-rc.d`, waited for
//!   until up (and ready, when they notify).
//!
//! Environment variables read here: `HERMES_EMU_S6` (the s6 version:
//! `2.11`, the default, `2.13` or `2.15`; the first boot of a test process
//! says on stderr which one runs), `HERMES_EMU_ROOTFS_DIR` (where
//! `tests/rootfs/make` keeps the root filesystems), `HERMES_S6_BIN_DIR`
//! (where the binaries are), `HERMES_EMU_KEEP=1` (keep each container's temp dir after teardown
//! and print where it is), `HERMES_EMU_REQUIRE_ROOT=1` (fail instead of
//! skipping when not root, for CI).

mod container;
mod diagnostics;
mod exec;
mod host;
mod nonroot;
mod options;
mod paths;
pub mod procfs;
mod rootfs;
mod services;
mod snapshot;
mod spawner;
mod stage2;
pub mod standin;
mod syslog;
mod userland;

pub use container::Container;
pub use diagnostics::wait_until;
pub use exec::{Exec, Output, Spawned};
pub use host::skip_unless_root;
pub use nix::sys::signal::Signal;
pub use options::{Options, User};
pub use paths::{BIN_DIR_ENV, FRONTEND_BIN, HELPER_BIN, Paths, STANDIN_BIN};
pub use rootfs::{S6RC_SERVICES, SHUTDOWND, SVSCAN_SCRIPTS, overlay_entries};
pub use snapshot::scan_tree;
pub use stage2::{CONT_INIT_DIR, ContInitRun, DOCKER_DIR};
pub use userland::{ROOTFS_SCRIPT, S6_VERSION_ENV, S6Version, Userland, skip_unless_s6};

// Tests may share a container between threads or move it to another one.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Container>();
};

/// `PATH` of the container's services and of every command run in it (the
/// file `/run/s6/container_environment/PATH` holds it too): `/command` first,
/// as in s6-overlay images.
pub const CONTAINER_PATH: &str =
    "/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The scan dir s6-svscan watches.
pub const SCAN_DIR: &str = "/run/service";
/// `HERMES_HOME` and the hermes user's home: the persistent volume.
pub const HERMES_HOME: &str = "/opt/data";
/// Where the helper is installed (setuid, `root:hermes`).
pub const HELPER_PATH: &str = "/usr/libexec/hermes-s6-helper";
/// Where the frontend is installed.
pub const FRONTEND_PATH: &str = "/usr/local/bin/hermes-s6";
/// Where the stand-in gateway is installed, under the real gateway's name.
pub const GATEWAY_PATH: &str = "/usr/local/bin/hermes";
/// s6-overlay's directory of s6 and execline programs.
pub const COMMAND_DIR: &str = "/command";
/// One file per variable; read by `/command/with-contenv`.
pub const CONTAINER_ENV_DIR: &str = "/run/s6/container_environment";
/// The container variable that makes the image use the helper's socket
/// transport even where setuid works.
pub const NO_SETUID_ENV: &str = "HERMES_S6_NO_SETUID";
/// The image's own s6-rc longruns that the emulation starts after the
/// cont-init steps ([`Options::cont_init`]), each linked into the scan dir
/// from `/run/s6-rc/servicedirs` as s6-rc links it.
pub const IMAGE_LONGRUNS: &[&str] = &["hermes-s6-helperd"];
/// The helper's socket, served by the image's `hermes-s6-helperd`.
pub const HELPER_SOCKET: &str = "/run/hermes-s6/helper.sock";

/// Default uid and gid of the `hermes` user and group (as in the image).
pub const DEFAULT_HERMES_UID: u32 = 10000;
pub const DEFAULT_HERMES_GID: u32 = 10000;
/// The `intruder` user: an unprivileged account that is not in group `hermes`.
pub const INTRUDER_UID: u32 = 10001;
pub const INTRUDER_GID: u32 = 10001;
/// The `s6-svscan -c` the scale tests ask for ([`Options::service_cap`]):
/// room for 1000 slots with their loggers, above s6 2.11's default of 500.
pub const DEFAULT_SERVICE_CAP: u32 = 5000;
