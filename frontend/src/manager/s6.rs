//! The s6 backend: the Hermes container, where each profile's gateway is the
//! slot `<scan dir>/gateway-<profile>`.
//!
//! State is read directly (the hermes user may read every slot's
//! `supervise/status`); every change goes through the helper, with all
//! profiles of an operation in one helper call, over whichever transport
//! reaches it from this process (setuid, or the socket of
//! `hermes-s6-helperd`: [`ControlMode`](crate::ControlMode)). Every command behaves the same
//! over both.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::Error;
use crate::extra_env::ExtraEnv;
use crate::helper::Helper;
use crate::manager::ServiceManager;
use crate::outcome::{ProfileOutcomes, in_order, merge};
use crate::profile::{ProfileName, dedup};
use crate::s6::{capabilities, supervise};
use crate::state::{PlannedStop, ProfileDir};
use crate::status::{self, GatewayStatus, SlotState};
use crate::time::{Tai64N, unix_now};
use crate::vocabulary::ControlMode;
use crate::vocabulary::{HelperOp, Intent, ServiceManagerKind};

/// How long start and restart wait for an s6-supervise to take a slot that
/// has none. s6-svscan starts one for a new slot on the rescan; it restarts
/// a dead one by itself, a second after the death (s6 2.11) or at most a
/// second after the previous start (2.13 and later).
const SUPERVISOR_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct S6Manager {
    config: Config,
    helper: Helper,
}

/// Profiles of one lifecycle call, sorted by what has to happen to them.
#[derive(Debug, Default)]
struct Triage {
    /// Have a slot.
    registered: Vec<ProfileName>,
    /// Real profiles without a slot: start registers them; stop and
    /// restart refuse them, as upstream does (#112300).
    without_slot: Vec<ProfileName>,
    /// Settled already (typos, refusals), in no particular order.
    settled: Vec<(ProfileName, Result<(), Error>)>,
}

impl Triage {
    /// Profiles without a slot fail: no such gateway.
    fn refuse_missing(&mut self) {
        for profile in std::mem::take(&mut self.without_slot) {
            let error = Error::GatewayNotRegistered {
                profile: profile.clone(),
            };
            self.settled.push((profile, Err(error)));
        }
    }
}

impl S6Manager {
    pub fn new(config: Config) -> Self {
        let helper = Helper::for_config(&config);
        Self { config, helper }
    }

    /// How lifecycle commands reach the helper from this process.
    pub fn control_mode(&self) -> ControlMode {
        self.helper.choice().mode
    }

    /// Why that transport (or why none).
    pub fn control_reason(&self) -> &str {
        &self.helper.choice().why
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the profile has a slot (a real directory, not a symlink).
    pub fn slot_exists(&self, profile: &ProfileName) -> bool {
        status::slot::slot_exists(&self.config, profile)
    }

    /// Sorts profiles: slot present, real profile to register, or a typo.
    fn triage(&self, profiles: &[ProfileName]) -> Triage {
        let mut plan = Triage::default();
        for profile in dedup(profiles) {
            if self.slot_exists(&profile) {
                plan.registered.push(profile);
            } else if self.config.profile_exists(&profile) {
                plan.without_slot.push(profile);
            } else {
                let error = Error::GatewayNotRegistered {
                    profile: profile.clone(),
                };
                plan.settled.push((profile, Err(error)));
            }
        }
        plan
    }

    /// Registers real profiles that have no slot yet (down, as the helper
    /// registers them). Returns the ones that have a slot now.
    fn register_missing(&self, plan: &mut Triage) -> Result<Vec<ProfileName>, Error> {
        if plan.without_slot.is_empty() {
            return Ok(Vec::new());
        }
        let mut ready = Vec::new();
        for (profile, result) in self.helper.run(HelperOp::Register, &plan.without_slot)? {
            match result {
                // Registered meanwhile by someone else: it has a slot, fine.
                Ok(()) | Err(Error::AlreadyRegistered { .. }) => ready.push(profile),
                Err(e) => plan.settled.push((profile, Err(e))),
            }
        }
        Ok(ready)
    }

    /// Records the intent for each profile; failures are kept per profile.
    fn record_intent(&self, profiles: &[ProfileName], desired: Intent) -> ProfileOutcomes {
        let now = unix_now();
        profiles
            .iter()
            .map(|profile| {
                let result = match ProfileDir::open(&self.config, profile) {
                    Ok(dir) => dir.record_desired_state(desired, now),
                    // A slot whose profile directory is gone has no intent
                    // to keep.
                    Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                (profile.clone(), result)
            })
            .collect()
    }

    /// Best effort: tells the gateway that the coming SIGTERM is planned.
    fn write_planned_stop_marker(&self, profile: &ProfileName) {
        let Some(pid) = supervise::up_pid(&self.config.slot_dir(profile)) else {
            return;
        };
        let marker = PlannedStop::for_pid(&self.config.proc_dir, pid, SystemTime::now());
        if let Ok(dir) = ProfileDir::open(&self.config, profile) {
            let _ = dir.write_planned_stop(&marker);
        }
    }

    fn is_up(&self, profile: &ProfileName) -> bool {
        supervise::is_up(&self.config.slot_dir(profile)).unwrap_or(false)
    }

    /// Start, or restart when `restart`: start registers real profiles that
    /// lack a slot (they come up down), records `running`, then one helper
    /// call per operation, then one rescan when anything was registered.
    fn bring_up(&self, profiles: &[ProfileName], restart: bool) -> Result<ProfileOutcomes, Error> {
        self.require_capabilities(if restart {
            HelperOp::Restart
        } else {
            HelperOp::Start
        })?;
        let mut plan = self.triage(profiles);
        if restart {
            plan.refuse_missing();
        }
        let newly_registered = self.register_missing(&mut plan)?;
        let targets: Vec<ProfileName> = plan
            .registered
            .iter()
            .chain(&newly_registered)
            .cloned()
            .collect();

        let intent = self.record_intent(&targets, Intent::Running);
        let (to_restart, to_start): (Vec<ProfileName>, Vec<ProfileName>) = if restart {
            // SIGTERM brings a running gateway back through s6; a stopped one
            // just needs to be wanted up.
            targets.iter().cloned().partition(|p| self.is_up(p))
        } else {
            (Vec::new(), targets.clone())
        };
        let mut control = Vec::new();
        if !to_restart.is_empty() {
            control.extend(self.helper.run(HelperOp::Restart, &to_restart)?);
        }
        if !to_start.is_empty() {
            control.extend(self.helper.run(HelperOp::Start, &to_start)?);
        }
        if !newly_registered.is_empty() {
            self.helper.rescan()?;
        }
        let control = self.await_supervisors(control);
        plan.settled.extend(merge(control, intent));
        Ok(in_order(profiles, plan.settled))
    }

    /// Refuses `op`, before anything changes, where s6-svscan lacks a
    /// capability it depends on ([`capabilities::needed_by`]); unknown
    /// capabilities (PID 1 is not s6-svscan) are no reason to refuse.
    fn require_capabilities(&self, op: HelperOp) -> Result<(), Error> {
        let Some(effective) = capabilities::svscan_effective(&self.config.proc_dir) else {
            return Ok(());
        };
        match capabilities::missing(effective, capabilities::needed_by(op)).first() {
            Some(cap) => Err(Error::MissingCapability {
                op,
                cap: cap.name,
                needed_for: cap.needed_for,
            }),
            None => Ok(()),
        }
    }

    /// A start is only as good as the supervisor that acts on it: each slot
    /// the helper handled must have an s6-supervise within
    /// [`SUPERVISOR_WAIT`], or its outcome becomes [`Error::Unsupervised`].
    /// s6 2.13 and later can lose a supervisor for good (one that died
    /// within a second of its start is not restarted when several died, and
    /// no rescan restarts it), so this is checked, not assumed.
    fn await_supervisors(&self, control: ProfileOutcomes) -> ProfileOutcomes {
        let deadline = Instant::now() + SUPERVISOR_WAIT;
        let supervised = |profile: &ProfileName| {
            // A lock that cannot be read is no evidence of a missing supervisor.
            let slot = self.config.slot_dir(profile);
            loop {
                if supervise::supervisor_running(&slot).unwrap_or(true) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        control
            .into_iter()
            .map(|(profile, result)| {
                let result = result.and_then(|()| {
                    if supervised(&profile) {
                        Ok(())
                    } else {
                        Err(Error::Unsupervised {
                            profile: profile.clone(),
                            seconds: SUPERVISOR_WAIT.as_secs(),
                        })
                    }
                });
                (profile, result)
            })
            .collect()
    }
}

impl ServiceManager for S6Manager {
    fn kind(&self) -> ServiceManagerKind {
        ServiceManagerKind::S6
    }

    fn start(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        self.bring_up(profiles, false)
    }

    /// Writes the planned-stop marker, records `stopped`, then wants the
    /// slots down (s6 keeps them down: the helper sets the `down` marker).
    /// A profile without a slot is an error, as upstream has it (#112300).
    fn stop(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        self.require_capabilities(HelperOp::Stop)?;
        let mut plan = self.triage(profiles);
        plan.refuse_missing();
        let mut settled = plan.settled;
        for profile in &plan.registered {
            self.write_planned_stop_marker(profile);
        }
        let intent = self.record_intent(&plan.registered, Intent::Stopped);
        let control = if plan.registered.is_empty() {
            Vec::new()
        } else {
            self.helper.run(HelperOp::Stop, &plan.registered)?
        };
        settled.extend(merge(control, intent));
        Ok(in_order(profiles, settled))
    }

    fn restart(&self, profiles: &[ProfileName]) -> Result<ProfileOutcomes, Error> {
        self.bring_up(profiles, true)
    }

    fn is_running(&self, profile: &ProfileName) -> Result<bool, Error> {
        if !self.slot_exists(profile) {
            return Ok(false);
        }
        Ok(supervise::is_up(&self.config.slot_dir(profile))?)
    }

    /// The whole slot of each profile (this manager's configuration; the
    /// `config` argument only matters to host managers). A name that is
    /// neither registered nor a profile is a typo.
    fn status(
        &self,
        _config: &Config,
        profiles: &[ProfileName],
    ) -> Result<Vec<GatewayStatus>, Error> {
        let now = Tai64N::now();
        profiles
            .iter()
            .map(|profile| {
                let status = status::slot::read(&self.config, profile, now);
                if status.state == SlotState::Unregistered && !self.config.profile_exists(profile) {
                    Err(Error::GatewayNotRegistered {
                        profile: profile.clone(),
                    })
                } else {
                    Ok(status)
                }
            })
            .collect()
    }

    fn status_all(&self, _config: &Config) -> Result<Vec<GatewayStatus>, Error> {
        let now = Tai64N::now();
        let profiles = self.list_profile_gateways()?;
        Ok(status::slot::read_all(&self.config, &profiles, now))
    }

    fn supports_runtime_registration(&self) -> bool {
        self.control_mode().reaches_helper()
    }

    /// `register` (with the environment payload), then `start` unless
    /// `start_now` is false, then `rescan` so s6-svscan supervises the slot
    /// either way.
    fn register_profile_gateway(
        &self,
        profile: &ProfileName,
        extra_env: &ExtraEnv,
        start_now: bool,
    ) -> Result<(), Error> {
        self.require_capabilities(HelperOp::Register)?;
        self.helper.register(profile, extra_env)?;
        let mut outcome = Ok(());
        if start_now {
            let intent = self.record_intent(std::slice::from_ref(profile), Intent::Running);
            let control = self
                .helper
                .run(HelperOp::Start, std::slice::from_ref(profile))?;
            if let Some((_, result)) = merge(control, intent).pop() {
                outcome = result;
            }
        }
        self.helper.rescan()?;
        outcome
    }

    fn unregister_profile_gateway(&self, profile: &ProfileName) -> Result<(), Error> {
        self.require_capabilities(HelperOp::Unregister)?;
        self.helper
            .run(HelperOp::Unregister, std::slice::from_ref(profile))?
            .pop()
            .map_or(Ok(()), |(_, result)| result)
    }

    /// Slot directories named `gateway-<valid profile>`; staging entries
    /// (dot-prefixed), symlinks and foreign services are left out.
    fn list_profile_gateways(&self) -> Result<Vec<ProfileName>, Error> {
        let scan_dir = &self.config.scan_dir;
        let entries = std::fs::read_dir(scan_dir).map_err(|e| Error::io("read", scan_dir, e))?;
        let mut profiles = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read", scan_dir, e))?;
            let Some(profile) = entry
                .file_name()
                .to_str()
                .and_then(ProfileName::from_service_name)
            else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                profiles.push(profile);
            }
        }
        profiles.sort();
        Ok(profiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> ProfileName {
        ProfileName::new(name).unwrap()
    }

    fn manager(root: &std::path::Path) -> S6Manager {
        let mut config = Config::from_lookup(|_| None);
        config.hermes_home = root.join("data");
        config.scan_dir = root.join("service");
        config.helper = root.join("helper");
        std::fs::create_dir_all(&config.hermes_home).unwrap();
        std::fs::create_dir_all(&config.scan_dir).unwrap();
        S6Manager::new(config)
    }

    #[test]
    fn lists_only_gateway_slots() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let scan = &m.config.scan_dir;
        for name in [
            "gateway-b",
            "gateway-a",
            "gateway-default",
            "main-hermes",
            ".gateway-c.tmp",
            "gateway-Bad",
        ] {
            std::fs::create_dir(scan.join(name)).unwrap();
        }
        std::fs::write(scan.join("gateway-file"), "").unwrap();
        std::os::unix::fs::symlink(scan.join("gateway-a"), scan.join("gateway-link")).unwrap();
        assert_eq!(
            m.list_profile_gateways().unwrap(),
            [p("a"), p("b"), p("default")]
        );
    }

    #[test]
    fn a_typo_is_not_registered_and_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        // The helper path does not exist: any attempt to run it would fail
        // with HelperMissing instead of the per-profile error.
        let outcomes = m.start(&[p("typo")]).unwrap();
        assert_eq!(outcomes.len(), 1);
        let err = outcomes[0].1.as_ref().unwrap_err();
        assert!(matches!(err, Error::GatewayNotRegistered { .. }), "{err}");
        assert!(!m.config.state_file(&p("typo")).exists());
        let outcomes = m.stop(&[p("typo")]).unwrap();
        assert!(matches!(
            outcomes[0].1,
            Err(Error::GatewayNotRegistered { .. })
        ));
        let outcomes = m.restart(&[p("typo")]).unwrap();
        assert!(matches!(
            outcomes[0].1,
            Err(Error::GatewayNotRegistered { .. })
        ));
    }

    #[test]
    fn stop_and_restart_of_a_real_profile_without_slot_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let home = m.config.profile_home(&p("work"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("SOUL.md"), "").unwrap();
        // The helper does not exist: running it would fail otherwise.
        for outcomes in [m.stop(&[p("work")]), m.restart(&[p("work")])] {
            let outcomes = outcomes.unwrap();
            assert!(matches!(
                outcomes[0].1,
                Err(Error::GatewayNotRegistered { .. })
            ));
        }
        assert!(
            !m.config.state_file(&p("work")).exists(),
            "no intent recorded"
        );
    }

    #[test]
    fn status_of_an_unregistered_profile() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        assert!(matches!(
            m.status(&m.config, &[p("work")]),
            Err(Error::GatewayNotRegistered { .. })
        ));
        let status = status::slot::read(&m.config, &p("work"), Tai64N::now());
        assert_eq!(status.state, SlotState::Unregistered);
        assert!(!status.registered);
        assert!(!status.supervised);
        assert_eq!(status.service, "gateway-work");
        assert!(status.log.ends_with("logs/gateways/work/current"));
    }

    #[test]
    fn status_of_an_unsupervised_slot() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let slot = m.config.slot_dir(&p("work"));
        std::fs::create_dir_all(slot.join("supervise")).unwrap();
        std::fs::write(slot.join("supervise/lock"), "").unwrap();
        std::fs::write(slot.join("supervise/death_tally"), [0u8; 28]).unwrap();
        let status = m.status(&m.config, &[p("work")]).unwrap().remove(0);
        assert_eq!(status.state, SlotState::Unsupervised);
        assert!(status.registered);
        assert!(!status.supervised);
        assert_eq!(status.restarts, Some(2));
        assert_eq!(status.crash_loop, None);
        std::fs::write(
            slot.join("crash-loop"),
            "crash-looping: stopped after 5 failures in 60 s (last exit 1, at 17)\n",
        )
        .unwrap();
        let status = m.status(&m.config, &[p("work")]).unwrap().remove(0);
        assert_eq!(
            status.crash_loop.as_ref().and_then(|c| c.last_exit),
            Some(1)
        );
        assert!(status.process.is_none());
        assert!(!m.is_running(&p("work")).unwrap());
    }
}
