//! Commands the host backends run (`systemctl`, `launchctl`, `sc.exe`),
//! built as plain values so their construction is testable on any platform.

use std::fmt;
use std::process::{Command, Output, Stdio};

use crate::error::Error;

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    pub program: String,
    pub args: Vec<String>,
}

impl HostCommand {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            program: program.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    pub fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the command and returns its output, whatever its exit code.
    pub fn output(&self) -> Result<Output, Error> {
        self.to_command().output().map_err(|e| Error::HostCommand {
            command: self.to_string(),
            code: None,
            message: e.to_string(),
        })
    }

    /// Runs the command; a non-zero exit is an error carrying its code and
    /// the first line it printed on stderr.
    pub fn run(&self) -> Result<Output, Error> {
        let output = self.output()?;
        if output.status.success() {
            Ok(output)
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let message = stderr
                .lines()
                .chain(stdout.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output")
                .to_owned();
            Err(Error::HostCommand {
                command: self.to_string(),
                code: output.status.code(),
                message,
            })
        }
    }
}

impl fmt::Display for HostCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_runs() {
        let ok = HostCommand::new("true", Vec::<String>::new());
        assert_eq!(ok.to_string(), "true");
        assert!(ok.run().is_ok());
        let failing = HostCommand::new("sh", ["-c", "echo 'unit not found' >&2; exit 5"]);
        let err = failing.run().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c echo 'unit not found' >&2; exit 5` failed (exit 5): unit not found"
        );
        let missing = HostCommand::new("/nonexistent/program", ["x"]);
        assert!(matches!(
            missing.run(),
            Err(Error::HostCommand { code: None, .. })
        ));
    }
}
