//! What the container was started for, and the environment switches the
//! reconciler honours.
//!
//! The cont-init script that runs `hermes-s6 reconcile` knows the container's
//! command (the image's CMD, or the arguments of `docker run`); it passes it
//! with `--container-command "<words>"` or in `HERMES_CONTAINER_CMD`. The
//! command is split on whitespace (arguments containing spaces are not
//! distinguished; none of the forms recognised here has any).

use std::ffi::OsString;
use std::path::Path;

use crate::gateway_config::{self, MultiplexSource};

/// Names the container's command when `--container-command` is not given.
pub const ENV_CONTAINER_CMD: &str = "HERMES_CONTAINER_CMD";
/// Truthy: a legacy `gateway run` container is not seeded with a running
/// root gateway.
pub const ENV_NO_SUPERVISE: &str = "HERMES_GATEWAY_NO_SUPERVISE";
/// Overrides the gateway configuration's `multiplex_profiles` (one gateway
/// serves every profile, so named profiles' slots are registered but never
/// started at boot); decides alone when the configuration cannot be loaded.
pub const ENV_MULTIPLEX: &str = "GATEWAY_MULTIPLEX_PROFILES";
/// The local time zone of the boot log's stamps.
pub const ENV_TZ: &str = "TZ";

/// The option of `gateway run` that turns supervision off.
const NO_SUPERVISE_FLAG: &str = "--no-supervise";

/// What the container's command makes of the container, as far as the
/// reconciler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRole {
    /// `gateway run [options]` (optionally after the program name
    /// `hermes`): a legacy container whose main program is the root
    /// profile's gateway.
    GatewayRun {
        /// `--no-supervise` is among the options.
        no_supervise: bool,
    },
    /// `dashboard [options]`: a dashboard-only container; gateways are not
    /// reconciled.
    Dashboard,
    /// Anything else, or no command known.
    Other,
}

impl ContainerRole {
    /// Classifies a command given as words. A leading program word
    /// `hermes` (or any path ending in `/hermes`) is skipped, as the image's
    /// entrypoint wrapper runs `hermes <args>` for arguments that are not a
    /// program.
    pub fn of_command<S: AsRef<str>>(words: &[S]) -> Self {
        let mut words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        if words
            .first()
            .is_some_and(|w| *w == "hermes" || w.ends_with("/hermes"))
        {
            words.remove(0);
        }
        match words.as_slice() {
            ["gateway", "run", options @ ..] => Self::GatewayRun {
                no_supervise: options.contains(&NO_SUPERVISE_FLAG),
            },
            ["dashboard", ..] => Self::Dashboard,
            _ => Self::Other,
        }
    }
}

/// Everything besides the volume that decides the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The container's command, split into words; `None` when unknown.
    pub container_command: Option<Vec<String>>,
    /// `HERMES_GATEWAY_NO_SUPERVISE` is truthy.
    pub no_supervise: bool,
    /// Named profiles are never started: the root gateway multiplexes
    /// (`GATEWAY_MULTIPLEX_PROFILES` is truthy until
    /// [`Settings::with_gateway_config`] decides from the configuration).
    pub multiplex: bool,
    /// What decided `multiplex`, once the configuration was read.
    pub multiplex_source: Option<MultiplexSource>,
    /// `GATEWAY_MULTIPLEX_PROFILES` as given.
    pub multiplex_env: Option<String>,
    /// `TZ` as given.
    pub tz: Option<String>,
}

impl Settings {
    /// Builds the settings from an explicit command (the CLI's
    /// `--container-command`) and environment variables read through
    /// `lookup`; the command falls back to `HERMES_CONTAINER_CMD`.
    pub fn from_lookup(
        container_command: Option<&str>,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Self {
        let text = |name: &str| lookup(name).map(|v| v.to_string_lossy().into_owned());
        let command = container_command
            .map(str::to_owned)
            .or_else(|| text(ENV_CONTAINER_CMD));
        Self {
            container_command: command.map(|c| split_words(&c)),
            no_supervise: text(ENV_NO_SUPERVISE).is_some_and(|v| is_truthy(&v)),
            multiplex: text(ENV_MULTIPLEX).is_some_and(|v| is_truthy(&v)),
            multiplex_source: None,
            multiplex_env: text(ENV_MULTIPLEX),
            tz: text(ENV_TZ),
        }
    }

    /// Decides multiplexing as the gateway does: from the configuration in
    /// the root profile's `home` (`config.yaml`), overridden by a
    /// recognized `GATEWAY_MULTIPLEX_PROFILES`, which alone decides when
    /// the configuration cannot be loaded.
    pub fn with_gateway_config(mut self, home: &Path) -> Self {
        let decided = gateway_config::multiplex_profiles(home, self.multiplex_env.as_deref());
        self.multiplex = decided.enabled;
        self.multiplex_source = Some(decided.source);
        self
    }

    pub fn role(&self) -> ContainerRole {
        self.container_command
            .as_deref()
            .map_or(ContainerRole::Other, ContainerRole::of_command)
    }
}

/// `1`, `true`, `yes` or `on`, in any case, surrounding blanks ignored.
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn split_words(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn role(command: &str) -> ContainerRole {
        ContainerRole::of_command(&split_words(command))
    }

    #[test]
    fn recognises_the_container_roles() {
        let run = ContainerRole::GatewayRun {
            no_supervise: false,
        };
        assert_eq!(role("gateway run"), run);
        assert_eq!(role("hermes gateway run"), run);
        assert_eq!(role("/usr/local/bin/hermes gateway run --replace"), run);
        assert_eq!(role("  gateway   run  "), run);
        assert_eq!(
            role("gateway run --no-supervise"),
            ContainerRole::GatewayRun { no_supervise: true }
        );
        assert_eq!(role("dashboard"), ContainerRole::Dashboard);
        assert_eq!(
            role("hermes dashboard --port 9119"),
            ContainerRole::Dashboard
        );
        for other in [
            "",
            "hermes",
            "gateway",
            "gateway start",
            "chat",
            "-p work gateway run",
            "bash -c gateway run",
            "hermesx gateway run",
        ] {
            assert_eq!(role(other), ContainerRole::Other, "{other:?}");
        }
    }

    #[test]
    fn truthy_values() {
        for yes in ["1", "true", "TRUE", "Yes", "on", " 1 "] {
            assert!(is_truthy(yes), "{yes:?}");
        }
        for no in ["", "0", "false", "no", "off", "2", "y"] {
            assert!(!is_truthy(no), "{no:?}");
        }
    }

    #[test]
    fn reads_the_environment_and_prefers_the_option() {
        let vars: HashMap<&str, &str> = [
            (ENV_CONTAINER_CMD, "dashboard"),
            (ENV_NO_SUPERVISE, "yes"),
            (ENV_MULTIPLEX, "0"),
        ]
        .into();
        let lookup = |name: &str| vars.get(name).map(OsString::from);
        let from_env = Settings::from_lookup(None, lookup);
        assert_eq!(from_env.role(), ContainerRole::Dashboard);
        assert!(from_env.no_supervise);
        assert!(!from_env.multiplex);
        let from_option = Settings::from_lookup(Some("gateway run"), lookup);
        assert_eq!(
            from_option.role(),
            ContainerRole::GatewayRun {
                no_supervise: false
            }
        );
        let nothing = Settings::from_lookup(None, |_| None);
        assert_eq!(nothing, Settings::default());
        assert_eq!(nothing.role(), ContainerRole::Other);
    }
}
