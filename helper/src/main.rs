//! hermes-s6-helper, setuid root. In the order it runs:
//! sanitize -> authorize -> drop -> parse -> act -> log.

use hermes_s6_helper::audit::{self, Outcome};
use hermes_s6_helper::exit::{self, Failure};
use hermes_s6_helper::process::{self, Caller};
use hermes_s6_helper::request::{self, Op, Request};
use hermes_s6_helper::slot::{self, Delivery, Scan};
use hermes_s6_helper::{config, payload};
use std::ffi::OsString;

fn main() {
    // A panic must neither unwind through half-done work nor print a backtrace.
    std::panic::set_hook(Box::new(|_| {
        exit::say("internal error");
        std::process::exit(i32::from(exit::INTERNAL));
    }));
    let caller = process::sanitize();
    let argv: Vec<_> = std::env::args_os().collect();
    let (mut request, mut failed) = (None, 0);
    let code = run(&argv, &caller, &mut request, &mut failed).unwrap_or_else(|failure| {
        exit::say(&failure.reason);
        failure.code
    });
    audit::log(&caller, request.as_ref(), Outcome::Done { failed, code });
    std::process::exit(i32::from(code));
}

fn run(argv: &[OsString], caller: &Caller, parsed: &mut Option<Request>, failed: &mut usize) -> Result<u8, Failure> {
    let hermes = process::authorize(caller)?;
    process::lift_cpu_limit()?;
    process::drop_privileges(hermes)?;
    let request = parsed.insert(request::parse(argv)?);
    let op = request.op.name();
    let with_op = |f: Failure| Failure::new(f.code, format!("{op}: {}", f.reason));
    if request.op == Op::Version {
        return print_version().map(|()| exit::OK).map_err(with_op);
    }
    // The payload comes only with `register` of one profile, and is fully
    // validated before anything is touched.
    let env = match (request.op, request.profiles.len()) {
        (Op::Register, 1) => {
            payload::read_stdin().and_then(|b| b.map(|b| payload::parse(&b)).transpose()).map_err(with_op)?
        }
        _ => None,
    };
    let mut scan = Scan::open().map_err(with_op)?;
    // Recorded before the first change: whatever kills the helper from here
    // on, the trail shows what it was asked to do.
    audit::log(caller, Some(request), Outcome::Begun);
    if request.op == Op::Rescan {
        return scan.svscan(b"a").map(|()| exit::OK).map_err(with_op);
    }
    let _one_helper_at_a_time = scan.lock().map_err(with_op)?;
    if request.op == Op::Register {
        scan.check_room(&request.profiles).map_err(with_op)?;
    }
    let (mut first_failure, mut needs_scan) = (None, false);
    for profile in &request.profiles {
        let outcome = match request.op {
            Op::Register => slot::register(&scan, profile, env.as_deref(), hermes).map(|()| Delivery::Sent),
            Op::Unregister => slot::unregister(&scan, profile).map(|()| Delivery::Sent),
            Op::Start | Op::Stop | Op::Restart => slot::control(&scan, profile, request.op),
            Op::Rescan | Op::Version => Ok(Delivery::Sent), // handled above
        };
        match outcome {
            Ok(delivery) => needs_scan |= delivery == Delivery::NeedsScan,
            Err(failure) => {
                exit::say(&format!("{op} {}: {}", profile.as_str(), failure.reason));
                *failed += 1;
                first_failure.get_or_insert(failure.code);
            }
        }
    }
    // Intents are on disk; one rescan starts the supervisors of slots
    // s6-svscan has not seen yet (a dead one it restarts by itself; s6 2.13
    // and later can lose that restart, which the frontend reports).
    if needs_scan {
        scan.svscan(b"a").map_err(with_op)?;
    }
    Ok(first_failure.unwrap_or(exit::OK))
}

fn print_version() -> Result<(), Failure> {
    use config::*;
    let version = env!("CARGO_PKG_VERSION");
    // One buffer, one write (as `exit::say`).
    let text =
        format!("hermes-s6-helper {version}\nscan dir: {SCAN_DIR}\ns6 programs: {COMMAND_DIR}\nuser: {HERMES_USER}\n");
    let text = format!("{text}group: {HERMES_GROUP}\nHERMES_HOME: {HERMES_HOME}\ngateway command: {GATEWAY_COMMAND}\n");
    let text = format!("{text}service limit: {SERVICE_LIMIT} (unless s6-svscan runs with -C or -c)\n");
    match nix::unistd::write(std::io::stdout(), text.as_bytes()) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(_) => Err(exit::internal("writing to stdout", nix::errno::Errno::EIO)),
        Err(e) => Err(exit::internal("writing to stdout", e)),
    }
}
