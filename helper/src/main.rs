//! hermes-s6-helper, setuid root. In the order it runs:
//! sanitize -> authorize -> drop -> parse -> act -> log.

use hermes_s6_helper::exit::{self, Failure};
use hermes_s6_helper::request::{self, Op, Request};
use hermes_s6_helper::slot::{self, Delivery, Scan};
use hermes_s6_helper::{audit, config, payload, process};
use std::ffi::OsString;
use std::io::Write;

fn main() {
    // A panic must not unwind through half-done work nor print a backtrace.
    std::panic::set_hook(Box::new(|_| {
        let _ = writeln!(std::io::stderr(), "hermes-s6-helper: internal error");
        std::process::exit(i32::from(exit::INTERNAL));
    }));
    process::sanitize();
    let mut record = audit::Record::new(nix::unistd::getuid().as_raw());
    let argv: Vec<OsString> = std::env::args_os().collect();
    let code = match run(&argv, &mut record) {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "hermes-s6-helper: {}", failure.reason);
            failure.code
        }
    };
    audit::log(&record, code);
    std::process::exit(i32::from(code));
}

fn run(argv: &[OsString], record: &mut audit::Record) -> Result<u8, Failure> {
    let hermes = process::authorize()?;
    process::check_limits()?;
    process::drop_privileges(hermes)?;
    let request = request::parse(argv)?;
    record.request(&request);
    let op = request.op.name();
    let with_op = |f: Failure| Failure::new(f.code, format!("{op}: {}", f.reason));
    if request.op == Op::Version {
        print_version();
        return Ok(exit::OK);
    }
    let env = read_payload(&request).map_err(with_op)?;
    let scan = Scan::open().map_err(with_op)?;
    if request.op == Op::Rescan {
        scan.svscan(b"a").map_err(with_op)?;
        return Ok(exit::OK);
    }
    let _one_helper_at_a_time = scan.lock().map_err(with_op)?;
    let mut first_failure = exit::OK;
    let mut needs_scan = false;
    for profile in &request.profiles {
        let outcome = match request.op {
            Op::Register => {
                slot::register(&scan, profile, env.as_deref(), hermes).map(|()| Delivery::Sent)
            }
            Op::Unregister => slot::unregister(&scan, profile).map(|()| Delivery::Sent),
            Op::Start => slot::start(&scan, profile),
            Op::Stop => slot::stop(&scan, profile),
            Op::Restart => slot::restart(&scan, profile),
            Op::Rescan | Op::Version => unreachable!("handled above"),
        };
        match outcome {
            Ok(Delivery::Sent) => {}
            // The intent is on disk; one rescan below starts its supervisor.
            Ok(Delivery::NeedsScan) => needs_scan = true,
            Err(failure) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "hermes-s6-helper: {op} {}: {}",
                    profile.as_str(),
                    failure.reason
                );
                record.profile_failed();
                if first_failure == exit::OK {
                    first_failure = failure.code;
                }
            }
        }
    }
    if needs_scan {
        scan.svscan(b"a").map_err(with_op)?;
    }
    Ok(first_failure)
}

/// The payload is read only for `register` of exactly one profile, and is
/// fully validated before anything is touched.
fn read_payload(request: &Request) -> Result<Option<Vec<payload::Var>>, Failure> {
    if request.op != Op::Register || request.profiles.len() != 1 {
        return Ok(None);
    }
    match payload::read_stdin()? {
        Some(bytes) => payload::parse(&bytes).map(Some),
        None => Ok(None),
    }
}

fn print_version() {
    println!("hermes-s6-helper {}", env!("CARGO_PKG_VERSION"));
    println!("scan dir: {}", config::SCAN_DIR);
    println!("s6 programs: {}", config::COMMAND_DIR);
    println!("group: {}", config::HERMES_GROUP);
    println!("user: {}", config::HERMES_USER);
    println!("HERMES_HOME: {}", config::HERMES_HOME);
    println!("gateway command: {}", config::GATEWAY_COMMAND);
}
