//! `hermes-s6`: command-line access to Hermes gateways. All logic lives in
//! the library; see `hermes_s6::cli`.

use std::process::ExitCode;

#[cfg(unix)]
fn main() -> ExitCode {
    ExitCode::from(hermes_s6::cli::main())
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!(
        "hermes-s6: the command-line tool runs on Unix only; use the library's ServiceManager"
    );
    ExitCode::from(hermes_s6::error::exit::UNAVAILABLE)
}
