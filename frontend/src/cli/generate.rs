//! `hermes-s6 generate completions <shell>` and `hermes-s6 generate man`:
//! shell completions and the man page, made from the command-line
//! definition itself. The image build runs them and installs the output.
//!
//! Deliberately outside [`Cli`], so that neither the completions nor the
//! man page nor `--help` offer it.

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, exit};

/// The word that selects this command.
pub const COMMAND: &str = "generate";

#[derive(Debug, Parser)]
#[command(
    name = "hermes-s6 generate",
    about = "Print shell completions or the man page of hermes-s6"
)]
struct Generate {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Completions for bash, zsh, fish, elvish or powershell
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// The man page hermes-s6(1), in roff, on standard output; with
    /// --out-dir, that page and one per command (hermes-s6-gateway-start.1,
    /// ...) written into the directory
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

/// `args` starts at `generate`.
pub(super) fn main(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let parsed = match Generate::try_parse_from(args) {
        Ok(parsed) => parsed,
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
    match run(parsed.what, out) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "hermes-s6: {e}");
            e.exit_code()
        }
    }
}

fn run(what: What, out: &mut dyn Write) -> Result<u8, Error> {
    let mut command = Cli::command();
    match what {
        What::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "hermes-s6", out);
        }
        What::Man { out_dir: None } => clap_mangen::Man::new(command.disable_help_subcommand(true))
            .render(out)
            .map_err(|e| Error::io("write", "standard output", e))?,
        What::Man { out_dir: Some(dir) } => {
            clap_mangen::generate_to(command, &dir).map_err(|e| Error::io("write into", dir, e))?
        }
    }
    Ok(exit::OK)
}
