//! The `hermes-s6` command line: argument parsing and output around the
//! library. Every decision is made by the library; this module only picks
//! the operation, prints results and maps errors to exit codes.
//!
//! ```text
//! hermes-s6 gateway start|stop|restart [-p <profile> | --all] [--json]
//! hermes-s6 gateway status [-p <profile> | --all] [--json | --watch]
//! hermes-s6 profile register <profile> [--down] [--json]
//! hermes-s6 profile unregister <profile> [--json]
//! hermes-s6 profile list [--json]
//! hermes-s6 reconcile [--dry-run] [--json] [--container-command <words>]
//! hermes-s6 doctor [--json]
//! hermes-s6 info [--json]
//! ```
//!
//! `--json` prints one document whose schema `SCHEMA.md` describes; a
//! control command's document carries its exit status too.
//!
//! Without `-p` or `--all`, commands act on the profile `HERMES_HOME`
//! selects: `default`, or `<name>` when it points at `…/profiles/<name>`.

mod doctor;
mod generate;
mod info;
mod reconcile;
mod render;

use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::error::{Error, exit};
use crate::extra_env::{ExtraEnv, MAX_PAYLOAD};
use crate::manager::{ServiceManager, detect_service_manager, service_manager};
use crate::outcome::{ControlReport, ControlResult};
use crate::profile::ProfileName;
use crate::status::{GatewayStatus, StatusReport};
use crate::vocabulary::ServiceManagerKind;

pub use self::render::Style;

/// How long `profile register` waits for an environment payload on a
/// non-terminal stdin, like the helper does.
const PAYLOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// `--long-help` and the man page: what the commands are for.
const LONG_ABOUT: &str = "Control and inspect Hermes profile gateways supervised by s6.

In the Hermes container every profile's messaging gateway is the s6 service /run/service/gateway-<profile>. hermes-s6 reads their state directly and asks the helper hermes-s6-helper for every change: executed where setuid works, else through the socket the root service hermes-s6-helperd serves (/run/hermes-s6/helper.sock; HERMES_S6_NO_SETUID=1 picks it even where setuid works). `hermes-s6 info` and `doctor` say which, and why.

  hermes-s6 gateway start|stop|restart [-p <profile> | --all] [--json]
  hermes-s6 gateway status [-p <profile> | --all] [--json | --watch]
  hermes-s6 profile register <profile> [--down] [--json]
  hermes-s6 profile unregister <profile> [--json]
  hermes-s6 profile list [--json]
  hermes-s6 reconcile [--dry-run] [--json]
  hermes-s6 doctor [--json]
  hermes-s6 info [--json]

Without -p or --all, commands act on the profile HERMES_HOME selects: default, or <name> when it points at .../profiles/<name>.";

const AFTER_LONG_HELP: &str = "Environment: HERMES_HOME (the data volume, default /opt/data), HERMES_S6_HELPER (the helper's path, default /usr/libexec/hermes-s6-helper), HERMES_S6_SCANDIR (the scan directory read for status, default /run/service), NO_COLOR (no colors on a terminal).

Exit status: 0 on success; 64 usage; 65 invalid profile name or environment; 66 no such gateway; 69 s6 not running; 72 helper missing; 75 a restart did not finish; 77 not permitted; 78 unsafe state found; doctor exits 1 when a check failed.

Files: /run/hermes-s6/helper.sock (the helper's socket), $HERMES_HOME/logs/container-boot.log (one line per profile and boot), $HERMES_HOME/logs/gateways/<profile>/current (a gateway's log).";

#[derive(Debug, Parser)]
#[command(
    name = "hermes-s6",
    version,
    about = "Control and inspect Hermes profile gateways supervised by s6",
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop, restart or inspect profile gateways
    Gateway {
        #[command(subcommand)]
        action: GatewayCommand,
    },
    /// Register or unregister a profile's gateway
    Profile {
        #[command(subcommand)]
        action: ProfileCommand,
    },
    /// Re-create gateway slots from the persistent volume (boot time)
    #[command(
        after_help = "Environment: HERMES_HOME (the volume), HERMES_CONTAINER_CMD (the container's command, when --container-command is not given), HERMES_GATEWAY_NO_SUPERVISE (truthy: a `gateway run` container is not seeded), GATEWAY_MULTIPLEX_PROFILES (truthy: named profiles are registered, never started; read only when $HERMES_HOME/config.yaml, which decides with its multiplex_profiles, does not set that key or cannot be loaded).\n\nExit 0 when the boot can proceed; per-profile problems are reported on stderr. Non-zero when the helper cannot be used (72 missing, 77 not privileged) or s6-svscan is not running (69)."
    )]
    Reconcile {
        /// Print what would be done without changing anything
        #[arg(long)]
        dry_run: bool,
        /// Print a JSON document (schema hermes-s6.reconcile/1)
        #[arg(long)]
        json: bool,
        /// The container's command, as words separated by spaces (default:
        /// $HERMES_CONTAINER_CMD). `gateway run` seeds a running root
        /// gateway when it has no state file; `dashboard` reconciles nothing.
        #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
        container_command: Option<String>,
    },
    /// Check that gateways can be supervised and controlled from here; every
    /// problem comes with what to do (exit 1 when a check failed)
    Doctor {
        /// Print a JSON document (schema hermes-s6.doctor/1)
        #[arg(long)]
        json: bool,
    },
    /// Show the service manager, the control mode, whether gateways can be
    /// registered now, versions and the scan directory's use
    Info {
        /// Print a JSON document (schema hermes-s6.info/1)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Start gateways (and keep them running across container restarts); a
    /// real profile without a slot gets one
    Start(ControlArgs),
    /// Stop gateways (and keep them stopped across container restarts)
    Stop(ControlArgs),
    /// Restart running gateways; start stopped ones
    Restart(ControlArgs),
    /// Show gateway status: a table on a terminal, key=value lines otherwise
    Status {
        #[command(flatten)]
        target: Target,
        /// Print a JSON document (schema hermes-s6.status/1)
        #[arg(long)]
        json: bool,
        /// Redraw the table every second until interrupted (needs a terminal)
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Register a profile's gateway, start it unless --down, then rescan.
    /// A JSON object of extra environment variables may be piped on stdin.
    Register {
        profile: String,
        /// Register it stopped
        #[arg(long)]
        down: bool,
        /// Print a JSON document (schema hermes-s6.control/1)
        #[arg(long)]
        json: bool,
    },
    /// Stop a profile's gateway and remove its registration
    Unregister {
        profile: String,
        /// Print a JSON document (schema hermes-s6.control/1)
        #[arg(long)]
        json: bool,
    },
    /// List the profiles that have a gateway slot, one per line
    List {
        /// Print a JSON document (schema hermes-s6.profiles/1)
        #[arg(long)]
        json: bool,
    },
}

/// The targets of `gateway start|stop|restart`, and the output wanted.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print a JSON document (schema hermes-s6.control/1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
#[group(id = "target", multiple = false)]
pub struct Target {
    /// Profile to act on (default: the profile HERMES_HOME selects)
    #[arg(short = 'p', long = "profile", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Act on every registered gateway
    #[arg(long)]
    pub all: bool,
}

/// Everything a run depends on besides its arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub config: Config,
    pub service_manager: ServiceManagerKind,
    pub style: Style,
    /// Reads `profile register`'s environment payload.
    pub read_env_payload: fn() -> Result<ExtraEnv, Error>,
    /// Reads the environment variables `reconcile` honours.
    pub env: fn(&str) -> Option<OsString>,
}

impl Context {
    /// The real environment, terminal and stdin of this process.
    pub fn from_process() -> Self {
        Self {
            config: Config::from_env(),
            service_manager: detect_service_manager(),
            style: Style::for_output(
                io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ),
            read_env_payload: env_payload_from_stdin,
            env: |name| std::env::var_os(name),
        }
    }

    fn manager(&self) -> Box<dyn ServiceManager> {
        service_manager(self.service_manager, &self.config)
    }
}

/// Entry point of the binary.
pub fn main() -> u8 {
    let context = Context::from_process();
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let code = run(std::env::args_os(), &context, &mut out, &mut err);
    let _ = out.flush();
    code
}

/// Parses `args` (program name first) and runs the command.
pub fn run<I, T>(args: I, context: &Context, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Not part of `Cli`, so that completions and the man page do not offer it.
    if args.get(1).is_some_and(|a| a == generate::COMMAND) {
        return generate::main(&args[1..], out, err);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                exit::USAGE
            } else {
                let _ = write!(out, "{text}");
                exit::OK
            };
        }
    };
    match dispatch(cli.command, context, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "hermes-s6: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(
    command: Command,
    context: &Context,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    match command {
        Command::Gateway { action } => match action {
            GatewayCommand::Start(args) => lifecycle(Lifecycle::Start, &args, context, out, err),
            GatewayCommand::Stop(args) => lifecycle(Lifecycle::Stop, &args, context, out, err),
            GatewayCommand::Restart(args) => {
                lifecycle(Lifecycle::Restart, &args, context, out, err)
            }
            GatewayCommand::Status {
                target,
                json,
                watch: false,
            } => status(&target, json, context, out),
            GatewayCommand::Status {
                target,
                watch: true,
                ..
            } => watch(&target, context, out, err),
        },
        Command::Profile { action } => match action {
            ProfileCommand::Register {
                profile,
                down,
                json,
            } => register(&profile, down, json, context, out, err),
            ProfileCommand::Unregister { profile, json } => {
                unregister(&profile, json, context, out, err)
            }
            ProfileCommand::List { json } => info::list(context, json, out),
        },
        Command::Reconcile {
            dry_run,
            json,
            container_command,
        } => reconcile::run(
            context,
            dry_run,
            json,
            container_command.as_deref(),
            out,
            err,
        ),
        Command::Doctor { json } => doctor::run(context, json, out),
        Command::Info { json } => info::run(context, json, out),
    }
}

#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Start,
    Stop,
    Restart,
}

impl Lifecycle {
    fn action(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Start => "started",
            Self::Stop => "stopped",
            Self::Restart => "restarted",
        }
    }
}

/// The profiles a command acts on: one named, every registered one, or the
/// one `HERMES_HOME` selects.
fn targets(
    target: &Target,
    context: &Context,
    manager: &dyn ServiceManager,
) -> Result<Vec<ProfileName>, Error> {
    match (&target.profile, target.all) {
        (Some(name), _) => Ok(vec![ProfileName::new(name)?]),
        (None, true) => manager.list_profile_gateways(),
        (None, false) => Ok(vec![context.config.active_profile.clone()]),
    }
}

/// Prints a control document and the failures' messages on stderr; the
/// document's exit code is the command's.
fn write_control(report: &ControlReport, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = serde_json::to_writer_pretty(&mut *out, report);
    let _ = writeln!(out);
    for result in report.results.iter().filter(|r| r.exit_code != exit::OK) {
        let _ = writeln!(err, "hermes-s6: {}: {}", result.profile, result.message);
    }
    report.exit_code
}

fn lifecycle(
    op: Lifecycle,
    args: &ControlArgs,
    context: &Context,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let manager = context.manager();
    let profiles = match targets(&args.target, context, manager.as_ref()) {
        Ok(profiles) => profiles,
        Err(e) if args.json => return Ok(whole_failure(op.action(), &[], &e, out, err)),
        Err(e) => return Err(e),
    };
    if profiles.is_empty() && !args.json {
        let _ = writeln!(out, "no gateways are registered");
        return Ok(exit::OK);
    }
    let outcomes = match op {
        Lifecycle::Start => manager.start(&profiles),
        Lifecycle::Stop => manager.stop(&profiles),
        Lifecycle::Restart => manager.restart(&profiles),
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(e) if args.json => {
            return Ok(whole_failure(op.action(), &profiles, &e, out, err));
        }
        Err(e) => return Err(e),
    };
    if args.json {
        let report = ControlReport::of_outcomes(op.action(), &outcomes, op.done());
        return Ok(write_control(&report, out, err));
    }
    if !args.target.all {
        // One profile: its error is the command's error.
        if let Some((profile, result)) = outcomes.into_iter().next() {
            result?;
            let _ = writeln!(out, "{profile}: {}", op.done());
        }
        return Ok(exit::OK);
    }
    let mut code = exit::OK;
    for (profile, result) in outcomes {
        match result {
            Ok(()) => {
                let _ = writeln!(out, "{profile}: {}", op.done());
            }
            Err(e) => {
                let _ = writeln!(err, "hermes-s6: {profile}: {e}");
                if code == exit::OK {
                    code = e.exit_code();
                }
            }
        }
    }
    Ok(code)
}

/// A control command that failed as a whole, as a document: every profile
/// it named failed with `error`.
fn whole_failure(
    action: &'static str,
    profiles: &[ProfileName],
    error: &Error,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let report = ControlReport::failed(action, profiles, error);
    if report.results.is_empty() {
        let _ = writeln!(err, "hermes-s6: {error}");
    }
    write_control(&report, out, err)
}

/// `profile register`: the environment payload is read, then the library
/// registers (and starts, unless `down`) and rescans.
fn register(
    profile: &str,
    down: bool,
    json: bool,
    context: &Context,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let how = if down {
        "registered (down)"
    } else {
        "registered and started"
    };
    let result = ProfileName::new(profile)
        .map_err(Error::from)
        .and_then(|profile| {
            let env = (context.read_env_payload)()?;
            context
                .manager()
                .register_profile_gateway(&profile, &env, !down)?;
            Ok(profile)
        });
    one_profile_result("register", profile, result, how, json, out, err)
}

fn unregister(
    profile: &str,
    json: bool,
    context: &Context,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    let result = ProfileName::new(profile)
        .map_err(Error::from)
        .and_then(|profile| {
            context
                .manager()
                .unregister_profile_gateway(&profile)
                .map(|()| profile)
        });
    one_profile_result(
        "unregister",
        profile,
        result,
        "unregistered",
        json,
        out,
        err,
    )
}

/// The output of a one-profile control command: `<profile>: <done>`, or
/// its document with `--json`.
fn one_profile_result(
    action: &'static str,
    asked: &str,
    result: Result<ProfileName, Error>,
    done: &str,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    match (result, json) {
        (Ok(profile), false) => {
            let _ = writeln!(out, "{profile}: {done}");
            Ok(exit::OK)
        }
        (Err(e), false) => Err(e),
        (Ok(profile), true) => {
            let report = ControlReport::new(action, vec![ControlResult::done(&profile, done)]);
            Ok(write_control(&report, out, err))
        }
        (Err(e), true) => {
            let profiles: Vec<ProfileName> = ProfileName::new(asked).into_iter().collect();
            Ok(whole_failure(action, &profiles, &e, out, err))
        }
    }
}

/// What `gateway status` shows: the library's answer for the targets.
fn gather_status(target: &Target, context: &Context) -> Result<Vec<GatewayStatus>, Error> {
    let manager = context.manager();
    if target.all {
        manager.status_all(&context.config)
    } else {
        let profiles = targets(target, context, manager.as_ref())?;
        manager.status(&context.config, &profiles)
    }
}

/// `status --watch`: the table redrawn in place every second, until
/// interrupted. Without a terminal on stdout it is refused: a stream of
/// screen-clearing frames is no use to a pipe or a log.
fn watch(
    target: &Target,
    context: &Context,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error> {
    if !context.style.table {
        let _ = writeln!(
            err,
            "hermes-s6: --watch redraws the table in place and needs a terminal on standard output; \
             for scripts and logs run `hermes-s6 gateway status --all` (or `--json`) from a loop instead"
        );
        return Ok(exit::USAGE);
    }
    let title = match (&target.profile, target.all) {
        (Some(profile), _) => format!("hermes-s6 gateway status -p {profile}"),
        (None, true) => "hermes-s6 gateway status --all".to_owned(),
        (None, false) => format!(
            "hermes-s6 gateway status -p {}",
            context.config.active_profile
        ),
    };
    let _ = render::watch(out, render::WATCH_INTERVAL, None, |frame| {
        let gateways = gather_status(target, context);
        render::write_watch_frame(frame, context.style, &title, gateways.as_deref());
    });
    Ok(exit::OK)
}

fn status(
    target: &Target,
    json: bool,
    context: &Context,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    let gateways = gather_status(target, context)?;
    if json {
        let report = StatusReport::new(context.service_manager, gateways);
        let _ = serde_json::to_writer_pretty(&mut *out, &report);
        let _ = writeln!(out);
    } else if gateways.is_empty() {
        let _ = writeln!(out, "no gateways are registered");
    } else {
        let _ = render::write_status(out, context.style, &gateways);
    }
    Ok(exit::OK)
}

/// The environment payload piped to `profile register`, read like the
/// helper reads it: nothing from a terminal, `/dev/null` or any other
/// character device, otherwise a JSON object, bounded in size and time.
pub fn env_payload_from_stdin() -> Result<ExtraEnv, Error> {
    if stdin_is_char_device_or_closed() {
        return Ok(ExtraEnv::empty());
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    // A writer that never closes must not hang the command; the reading
    // thread is simply abandoned then.
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let result = io::stdin()
            .lock()
            .take(MAX_PAYLOAD as u64 + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes);
        let _ = sender.send(result);
    });
    match receiver.recv_timeout(PAYLOAD_TIMEOUT) {
        Ok(Ok(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(ExtraEnv::empty()),
        Ok(Ok(bytes)) if bytes.len() > MAX_PAYLOAD => Err(Error::InvalidEnvPayload {
            reason: format!("more than {MAX_PAYLOAD} bytes on standard input"),
        }),
        Ok(Ok(bytes)) => ExtraEnv::from_json(&bytes),
        Ok(Err(e)) => Err(Error::io("read", "standard input", e)),
        Err(_) => Err(Error::InvalidEnvPayload {
            reason: format!(
                "standard input stayed open for {} s without a complete payload; pipe a JSON object and close it, or redirect stdin from /dev/null",
                PAYLOAD_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// A character device (a terminal, `/dev/null`, …) never carries a
/// payload, and neither does a closed stdin: the helper's rule too.
fn stdin_is_char_device_or_closed() -> bool {
    match nix::sys::stat::fstat(io::stdin()) {
        Ok(stat) => stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests;
