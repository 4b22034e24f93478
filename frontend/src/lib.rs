//! hermes-s6: the unprivileged half of Hermes gateway supervision.
//!
//! Hermes runs in a container whose PID 1 is s6-svscan; each profile's
//! gateway is the s6 service `gateway-<profile>`. This crate reads
//! supervision state directly (status files are readable by the hermes
//! user) and asks the setuid helper `hermes-s6-helper` for every change. It
//! is the API the Hermes CLI uses; the `hermes-s6` binary is a thin layer
//! over it.
//!
//! At boot, [`reconcile::reconcile`] re-creates every profile's slot from
//! the persistent volume (the `hermes-s6 reconcile` command).
//!
//! [`doctor::examine`] checks everything gateways depend on (the
//! `hermes-s6 doctor` command). Where setuid cannot work, the helper is
//! reached over the socket the root service `hermes-s6-helperd` serves
//! ([`ControlMode::Socket`]); each process picks its transport itself.
//!
//! Modules, bottom to top (each imports only modules below it; the test
//! `tests/module_layers.rs` keeps it so):
//! 1. leaves: `time` (and `localtime` above it), `vocabulary` (the shared
//!    words, [`ControlMode`] among them), [`profile`], [`s6`]
//!    (s6's on-disk state), `nofollow` (no-follow descriptor walking);
//! 2. [`error`], [`config`];
//! 3. `extra_env`, `outcome`, `state`
//!    (the files shared with the gateway), `bootlog`, `gateway_config` (the
//!    one setting of the gateway's configuration the boot reads);
//! 4. `helper` (the helper's client, and its transports), [`status`];
//! 5. [`manager`] and its backends;
//! 6. [`reconcile`], then [`doctor`], and [`info`] (what this installation
//!    is, and the profiles with a slot);
//! 7. [`cli`].
//!
//! Start with [`Config::from_env`], pick a backend with
//! [`detect_service_manager`] and [`service_manager`] (or build
//! [`S6Manager`] directly), and drive it through [`ServiceManager`].

#[cfg(unix)]
pub(crate) mod bootlog;
#[cfg(unix)]
pub mod cli;
pub mod config;
#[cfg(unix)]
pub mod doctor;
pub mod error;
pub(crate) mod extra_env;
#[cfg(unix)]
pub(crate) mod gateway_config;
#[cfg(unix)]
pub(crate) mod helper;
#[cfg(unix)]
pub mod info;
pub(crate) mod localtime;
pub mod manager;
#[cfg(unix)]
pub(crate) mod nofollow;
pub(crate) mod outcome;
pub mod profile;
#[cfg(unix)]
pub mod reconcile;
pub mod s6;
#[cfg(unix)]
pub(crate) mod state;
pub mod status;
pub mod time;
pub(crate) mod vocabulary;

pub use config::Config;
pub use error::Error;
pub use extra_env::ExtraEnv;
#[cfg(unix)]
pub use manager::s6::S6Manager;
pub use manager::{ServiceManager, detect_service_manager, service_manager};
pub use outcome::{ControlReport, ControlResult, ProfileOutcome, ProfileOutcomes};
pub use profile::{InvalidProfileName, ProfileName};
pub use vocabulary::{ControlMode, HelperOp, Intent, ServiceManagerKind};
