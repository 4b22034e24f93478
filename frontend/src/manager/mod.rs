//! The [`ServiceManager`] abstraction, its backends, and the detection of
//! which one is in charge.

mod host;
pub mod launchd;
pub mod none;
#[cfg(unix)]
pub mod s6;
pub mod systemd;
pub mod windows;

use std::fmt;
use std::path::PathBuf;

pub use self::host::HostCommand;
use crate::config::Config;
use crate::error::Error;
use crate::extra_env::ExtraEnv;
pub use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;
pub(crate) use crate::profile::dedup;
use crate::status::GatewayStatus;
pub use crate::vocabulary::ServiceManagerKind;

/// Control of profile gateways, whatever supervises them.
///
/// Lifecycle operations take several profiles at once so a backend can batch
/// them (s6 does the whole list in one privileged call). `Err` means the
/// operation failed as a whole; otherwise every profile has its own result,
/// in the order given (duplicates removed).
pub trait ServiceManager: fmt::Debug {
    fn kind(&self) -> ServiceManagerKind;

    /// Brings the gateways up and records `desired_state = running`.
    fn start(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error>;

    /// Brings the gateways down and keeps them down; records
    /// `desired_state = stopped`.
    fn stop(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error>;

    /// Restarts running gateways and starts stopped ones; records
    /// `desired_state = running`.
    fn restart(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error>;

    /// Whether the gateway's process is up right now.
    fn is_running(&self, profile: &ProfileName) -> Result<bool, Error>;

    /// What `gateway status` reports for each of `profiles`, in order. A
    /// host service manager only tells whether a gateway runs (a failure to
    /// tell becomes the gateway's problem, not an error); `config` says
    /// where the gateway's log is.
    fn status(
        &self,
        config: &Config,
        profiles: &[ProfileName],
    ) -> Result<Vec<GatewayStatus>, Error> {
        Ok(profiles
            .iter()
            .map(|profile| {
                GatewayStatus::from_is_running(
                    profile.clone(),
                    config.log_file(profile),
                    self.is_running(profile),
                )
            })
            .collect())
    }

    /// [`ServiceManager::status`] of every gateway that has a service.
    fn status_all(&self, config: &Config) -> Result<Vec<GatewayStatus>, Error> {
        self.status(config, &self.list_profile_gateways()?)
    }

    /// Whether gateways can be registered while the system runs. Host
    /// service managers cannot: their units are installed with the host.
    fn supports_runtime_registration(&self) -> bool {
        false
    }

    /// Creates the gateway's service with `extra_env` in its environment,
    /// starting it when `start_now`. Unsupported unless overridden.
    fn register_profile_gateway(
        &self,
        _profile: &ProfileName,
        _extra_env: &ExtraEnv,
        _start_now: bool,
    ) -> Result<(), Error> {
        Err(Error::Unsupported {
            manager: self.kind(),
            operation: "register a gateway",
        })
    }

    /// Stops the gateway and removes its service. Unsupported unless
    /// overridden.
    fn unregister_profile_gateway(&self, _profile: &ProfileName) -> Result<(), Error> {
        Err(Error::Unsupported {
            manager: self.kind(),
            operation: "unregister a gateway",
        })
    }

    /// Profiles that have a gateway service, sorted by name.
    fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error>;
}

/// The operating system family, which decides the host backends available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    MacOs,
    OtherUnix,
}

impl Platform {
    pub fn current() -> Self {
        if cfg!(windows) {
            Self::Windows
        } else if cfg!(target_os = "macos") {
            Self::MacOs
        } else {
            Self::OtherUnix
        }
    }
}

/// The files detection looks at; tests point them at a scratch tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `/proc/1/comm`: the name of PID 1, readable by any uid (unlike
    /// `/proc/1/exe`).
    pub pid1_comm: PathBuf,
    /// `/run/s6/basedir`: present when s6-overlay booted the container.
    pub s6_basedir: PathBuf,
    /// `/run/systemd/system`: present when systemd is the init system.
    pub systemd_runtime_dir: PathBuf,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            pid1_comm: PathBuf::from("/proc/1/comm"),
            s6_basedir: PathBuf::from("/run/s6/basedir"),
            systemd_runtime_dir: PathBuf::from("/run/systemd/system"),
        }
    }
}

/// The service manager in charge here. Never fails: anything unreadable
/// counts as absent.
pub fn detect_service_manager() -> ServiceManagerKind {
    detect_service_manager_with(&Probe::default(), Platform::current())
}

/// [`detect_service_manager`] with injected paths and platform: s6 when
/// PID 1 is `s6-svscan` and `/run/s6/basedir` is a directory; then Windows,
/// launchd, systemd, none.
pub fn detect_service_manager_with(probe: &Probe, platform: Platform) -> ServiceManagerKind {
    let pid1_is_svscan = std::fs::read(&probe.pid1_comm)
        .map(|comm| comm.strip_suffix(b"\n").unwrap_or(&comm) == b"s6-svscan")
        .unwrap_or(false);
    if pid1_is_svscan && probe.s6_basedir.is_dir() {
        return ServiceManagerKind::S6;
    }
    match platform {
        Platform::Windows => ServiceManagerKind::Windows,
        Platform::MacOs => ServiceManagerKind::Launchd,
        Platform::OtherUnix if probe.systemd_runtime_dir.is_dir() => ServiceManagerKind::Systemd,
        Platform::OtherUnix => ServiceManagerKind::Unmanaged,
    }
}

/// The backend for `kind`. A kind whose backend is not compiled for this
/// platform yields the `none` backend.
pub fn service_manager(kind: ServiceManagerKind, config: &Config) -> Box<dyn ServiceManager> {
    match kind {
        #[cfg(unix)]
        ServiceManagerKind::S6 => Box::new(s6::S6Manager::new(config.clone())),
        ServiceManagerKind::Systemd => Box::new(systemd::SystemdManager::new()),
        #[cfg(target_os = "macos")]
        ServiceManagerKind::Launchd => Box::new(launchd::LaunchdManager::new()),
        #[cfg(windows)]
        ServiceManagerKind::Windows => Box::new(windows::WindowsManager::new()),
        _ => {
            let _ = config;
            Box::new(none::NoServiceManager)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch {
        _dir: tempfile::TempDir,
        probe: Probe,
    }

    fn scratch() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let probe = Probe {
            pid1_comm: dir.path().join("comm"),
            s6_basedir: dir.path().join("s6-basedir"),
            systemd_runtime_dir: dir.path().join("systemd"),
        };
        Scratch { _dir: dir, probe }
    }

    #[test]
    fn s6_needs_both_signs() {
        let s = scratch();
        std::fs::write(&s.probe.pid1_comm, "s6-svscan\n").unwrap();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
        std::fs::create_dir(&s.probe.s6_basedir).unwrap();
        for platform in [Platform::OtherUnix, Platform::MacOs, Platform::Windows] {
            assert_eq!(
                detect_service_manager_with(&s.probe, platform),
                ServiceManagerKind::S6
            );
        }
        std::fs::write(&s.probe.pid1_comm, "systemd\n").unwrap();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
    }

    #[test]
    fn a_basedir_that_is_a_file_is_not_s6() {
        let s = scratch();
        std::fs::write(&s.probe.pid1_comm, "s6-svscan").unwrap();
        std::fs::write(&s.probe.s6_basedir, "").unwrap();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
    }

    #[test]
    fn falls_back_by_platform_then_systemd_then_none() {
        let s = scratch();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::Windows),
            ServiceManagerKind::Windows
        );
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::MacOs),
            ServiceManagerKind::Launchd
        );
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
        std::fs::create_dir(&s.probe.systemd_runtime_dir).unwrap();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Systemd
        );
    }

    #[test]
    fn unreadable_probes_never_fail() {
        let probe = Probe {
            pid1_comm: PathBuf::from("/nonexistent/comm"),
            s6_basedir: PathBuf::from("/nonexistent/basedir"),
            systemd_runtime_dir: PathBuf::from("/nonexistent/systemd"),
        };
        assert_eq!(
            detect_service_manager_with(&probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
        // A directory where a file is expected reads as an error, too.
        let s = scratch();
        std::fs::create_dir(&s.probe.pid1_comm).unwrap();
        std::fs::create_dir(&s.probe.s6_basedir).unwrap();
        assert_eq!(
            detect_service_manager_with(&s.probe, Platform::OtherUnix),
            ServiceManagerKind::Unmanaged
        );
        // The real machine: whatever it is, detection answers.
        let _ = detect_service_manager();
    }
}
