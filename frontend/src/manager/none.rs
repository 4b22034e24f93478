//! No service manager: every operation says so, with what to do instead.

use crate::error::Error;
use crate::manager::{ServiceManager, ServiceManagerKind};
use crate::outcome::ProfileOutcomes;
use crate::profile::ProfileName;

#[derive(Debug, Clone, Copy, Default)]
pub struct NoServiceManager;

impl ServiceManager for NoServiceManager {
    fn kind(&self) -> ServiceManagerKind {
        ServiceManagerKind::Unmanaged
    }

    fn start(&self, _profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Err(Error::NoServiceManager {
            operation: "start gateways",
        })
    }

    fn stop(&self, _profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Err(Error::NoServiceManager {
            operation: "stop gateways",
        })
    }

    fn restart(&self, _profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        Err(Error::NoServiceManager {
            operation: "restart gateways",
        })
    }

    fn is_running(&self, _profile: &ProfileName) -> Result<bool, Error> {
        Err(Error::NoServiceManager {
            operation: "tell whether a gateway runs",
        })
    }

    fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extra_env::ExtraEnv;

    #[test]
    fn says_what_to_do() {
        let m = NoServiceManager;
        assert_eq!(m.kind(), ServiceManagerKind::Unmanaged);
        assert!(!m.supports_runtime_registration());
        let err = m.start(&[ProfileName::default_profile()]).unwrap_err();
        assert!(err.to_string().contains("hermes gateway run"), "{err}");
        assert_eq!(err.exit_code(), 69);
        let err = m
            .register_profile_gateway(&ProfileName::default_profile(), &ExtraEnv::empty(), true)
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
        assert!(m.list_profile_gateways().unwrap().is_empty());
    }
}
