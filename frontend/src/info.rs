//! What this installation is, for programs that drive it: the service
//! manager, how gateways are controlled, whether they can be registered now,
//! the versions of the parts, and the scan directory's use
//! (`hermes-s6 info`, `hermes-s6.info/1`); and the profiles that have a
//! gateway slot (`hermes-s6 profile list`, `hermes-s6.profiles/1`).

use serde::Serialize;

use crate::config::Config;
use crate::helper::Helper;
use crate::manager::service_manager;
use crate::profile::ProfileName;
use crate::s6::installation::{self, VersionProbe};
use crate::s6::limit::ServiceLimit;
use crate::vocabulary::{ControlMode, ServiceManagerKind};

pub const INFO_SCHEMA: &str = "hermes-s6.info/1";
pub const PROFILES_SCHEMA: &str = "hermes-s6.profiles/1";

/// `hermes-s6.info/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    pub schema: &'static str,
    pub service_manager: ServiceManagerKind,
    /// How lifecycle commands reach the helper from this process; `None`
    /// outside the container.
    pub control_mode: Option<ControlMode>,
    /// Why that transport (or why none); `None` outside the container.
    pub control_reason: Option<String>,
    /// Whether a gateway can be registered (and unregistered) right now.
    pub runtime_registration: bool,
    pub versions: Versions,
    /// `None` outside the container.
    pub scan_dir: Option<ScanDir>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Versions {
    /// This library and command.
    pub cli: &'static str,
    /// The first line of `hermes-s6-helper --version`, without the
    /// program's name; `None` when it cannot run for this user.
    pub helper: Option<String>,
    /// s6's, when the installation states it.
    pub s6: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanDir {
    pub path: String,
    /// Services it holds as s6-svscan counts them toward its maximum;
    /// `None` when it cannot be read.
    pub services: Option<u32>,
    /// s6-svscan's maximum, when known.
    pub limit: Option<u32>,
}

/// The info for this process: `kind` is the service manager in charge.
pub fn gather(config: &Config, kind: ServiceManagerKind) -> Info {
    gather_with(config, kind, &VersionProbe::default())
}

/// [`gather`] with the s6 installation looked for through `probe`.
pub fn gather_with(config: &Config, kind: ServiceManagerKind, probe: &VersionProbe) -> Info {
    let in_container = kind == ServiceManagerKind::S6;
    let route = Helper::for_config(config);
    let helper = route.version();
    let s6 = in_container
        .then(|| installation::detect_version(probe))
        .flatten();
    let control_mode = in_container.then(|| route.choice().mode);
    let control_reason = in_container.then(|| route.choice().why.clone());
    let runtime_registration = helper.is_some()
        && control_mode.is_some_and(ControlMode::reaches_helper)
        && service_manager(kind, config).supports_runtime_registration();
    let scan_dir = in_container.then(|| {
        // Counted the way the limit counts (PID 1's option says how; with
        // none, as s6-overlay's s6 2.15 counts).
        let limit = ServiceLimit::of_pid1();
        ScanDir {
            path: config.scan_dir.display().to_string(),
            services: installation::count_services(&config.scan_dir, limit.counts_loggers),
            limit: Some(limit.max),
        }
    });
    Info {
        schema: INFO_SCHEMA,
        service_manager: kind,
        control_mode,
        control_reason,
        runtime_registration,
        versions: Versions {
            cli: env!("CARGO_PKG_VERSION"),
            helper,
            s6: s6.map(|v| v.to_string()),
        },
        scan_dir,
    }
}

/// `hermes-s6.profiles/1`: the profiles with a registered gateway slot,
/// sorted (`default` among them when it has one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileList {
    pub schema: &'static str,
    pub service_manager: ServiceManagerKind,
    pub profiles: Vec<ProfileName>,
}

impl ProfileList {
    pub fn new(service_manager: ServiceManagerKind, mut profiles: Vec<ProfileName>) -> Self {
        profiles.sort();
        profiles.dedup();
        Self {
            schema: PROFILES_SCHEMA,
            service_manager,
            profiles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn config(root: &Path) -> Config {
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = root.join("data");
        config.scan_dir = root.join("service");
        config.helper = root.join("helper");
        config.control_mode = Some(ControlMode::Setuid);
        config
    }

    #[test]
    fn outside_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let info = gather(&config(dir.path()), ServiceManagerKind::Unmanaged);
        let doc = serde_json::to_value(&info).unwrap();
        assert_eq!(doc["schema"], "hermes-s6.info/1");
        assert_eq!(doc["service_manager"], "none");
        assert_eq!(doc["control_mode"], serde_json::Value::Null);
        assert_eq!(doc["runtime_registration"], false);
        assert_eq!(doc["versions"]["cli"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["versions"]["helper"], serde_json::Value::Null);
        assert_eq!(doc["scan_dir"], serde_json::Value::Null);
    }

    #[test]
    fn in_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        for d in ["gateway-a/log", "gateway-b", ".s6-svscan"] {
            std::fs::create_dir_all(config.scan_dir.join(d)).unwrap();
        }
        std::fs::write(
            &config.helper,
            "#!/bin/sh\necho 'hermes-s6-helper 9.8.7'\necho 'scan dir: x'\n",
        )
        .unwrap();
        std::fs::set_permissions(&config.helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let probe = VersionProbe {
            svscan: dir.path().join("absent"),
            dpkg_status: dir.path().join("absent"),
        };
        let info = gather_with(&config, ServiceManagerKind::S6, &probe);
        assert_eq!(info.control_mode, Some(ControlMode::Setuid));
        assert!(info.runtime_registration);
        assert_eq!(info.versions.helper.as_deref(), Some("9.8.7"));
        assert_eq!(info.versions.s6, None);
        let scan = info.scan_dir.unwrap();
        assert_eq!(scan.services, Some(3));
        // PID 1 of this test process is not s6-svscan: s6's default (the
        // command-line cases are limit.rs's).
        assert_eq!(scan.limit, Some(ServiceLimit::of_pid1().max));

        // A helper that refuses to run: no version, no registration.
        std::fs::write(&config.helper, "#!/bin/sh\nexit 77\n").unwrap();
        let info = gather_with(&config, ServiceManagerKind::S6, &probe);
        assert_eq!(info.versions.helper, None);
        assert!(!info.runtime_registration);
    }

    #[test]
    fn profile_lists_are_sorted() {
        let p = |n: &str| ProfileName::new(n).unwrap();
        let list = ProfileList::new(
            ServiceManagerKind::S6,
            vec![p("work"), p("default"), p("a")],
        );
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            serde_json::json!({"schema": "hermes-s6.profiles/1", "service_manager": "s6", "profiles": ["a", "default", "work"]})
        );
    }
}
