//! s6-svscan's maximum number of services, read the way the helper reads it
//! before a registration: PID 1's command line (`-C n`: services, each
//! logger one of its own, s6 2.13 and later; `-c n`: s6 2.11's service
//! directories, a logger included), else s6's default, with which
//! s6-overlay runs s6-svscan (1000, loggers counted). Past the maximum,
//! s6 2.15 aborts whole scans, and the entries such a scan saw, of any
//! service, may stay unsupervised; the helper refuses a registration that
//! would get there (exit 75), and the reconciler plans within it.

use std::path::Path;

/// s6's default maximum (s6 2.13 and later; s6-overlay passes none).
pub const DEFAULT_MAX: u32 = 1000;

/// Where the limit was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// `s6-svscan -C n`.
    ServicesOption,
    /// `s6-svscan -c n`.
    DirectoriesOption,
    /// Neither: s6's default.
    Default,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicesOption => "s6-svscan -C",
            Self::DirectoriesOption => "s6-svscan -c",
            Self::Default => "s6's default",
        }
    }
}

/// How many services s6-svscan supervises at most, and how it counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimit {
    pub max: u32,
    /// Whether a logger (`<service>/log`) counts as a service of its own.
    pub counts_loggers: bool,
    pub source: LimitSource,
}

impl ServiceLimit {
    /// What one gateway slot (a service and its logger) takes of it.
    pub fn slot_cost(&self) -> u32 {
        if self.counts_loggers { 2 } else { 1 }
    }

    /// The limit PID 1 runs with, from `/proc/1/cmdline` (readable by any
    /// user); s6's default when PID 1 is not s6-svscan or names none.
    pub fn of_pid1() -> Self {
        Self::from_cmdline(&std::fs::read(Path::new("/proc/1/cmdline")).unwrap_or_default())
    }

    /// From a NUL-separated command line: options up to `--` or the first
    /// operand, `-C n`/`-Cn` or `-c n`/`-cn`.
    pub fn from_cmdline(cmdline: &[u8]) -> Self {
        let default = Self {
            max: DEFAULT_MAX,
            counts_loggers: true,
            source: LimitSource::Default,
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if !args
            .first()
            .is_some_and(|init| init.ends_with(b"s6-svscan"))
        {
            return default;
        }
        let options = args
            .iter()
            .enumerate()
            .skip(1)
            .take_while(|(_, a)| a.starts_with(b"-") && **a != b"--");
        for (i, arg) in options {
            let value = if arg.len() > 2 {
                Some(&arg[2..])
            } else {
                args.get(i + 1).copied()
            };
            let max = value.and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
            match (arg.get(..2), max) {
                (Some(b"-C"), Some(max)) => {
                    return Self {
                        max,
                        counts_loggers: true,
                        source: LimitSource::ServicesOption,
                    };
                }
                (Some(b"-c"), Some(max)) => {
                    return Self {
                        max,
                        counts_loggers: false,
                        source: LimitSource::DirectoriesOption,
                    };
                }
                _ => {}
            }
        }
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(cmdline: &str) -> ServiceLimit {
        ServiceLimit::from_cmdline(cmdline.replace(' ', "\0").as_bytes())
    }

    #[test]
    fn s6_overlays_pid_1_runs_with_s6s_default_loggers_counted() {
        let l = limit("/usr/bin/s6-svscan -d4 -- /run/service");
        assert_eq!(
            (l.max, l.counts_loggers, l.source),
            (1000, true, LimitSource::Default)
        );
        assert_eq!(l.slot_cost(), 2);
    }

    #[test]
    fn an_option_on_pid_1s_command_line_is_the_limit() {
        let l = limit("s6-svscan -c 5000 -d4 -- /run/service");
        assert_eq!((l.max, l.counts_loggers, l.slot_cost()), (5000, false, 1));
        assert_eq!(l.source.as_str(), "s6-svscan -c");
        let l = limit("/command/s6-svscan -d4 -C300 /run/service");
        assert_eq!(
            (l.max, l.counts_loggers, l.source),
            (300, true, LimitSource::ServicesOption)
        );
    }

    #[test]
    fn anything_else_is_s6s_default() {
        for cmdline in [
            "",
            "/sbin/docker-init -- /init",
            "s6-svscan -- -C 10",
            "s6-svscan /run/service -C 10",
            "s6-svscan -C many /run/service",
        ] {
            assert_eq!(limit(cmdline).source, LimitSource::Default, "{cmdline:?}");
        }
    }
}
