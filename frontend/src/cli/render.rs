//! Human output of `gateway status`: an aligned table on a terminal, stable
//! `key=value` lines otherwise (for scripts and logs).

use std::io::{self, Write};

use crate::status::{GatewayState, GatewayStatus};

/// How to print for whoever reads stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Aligned table with durations for people; `key=value` lines otherwise.
    pub table: bool,
    /// ANSI colors (only ever on a terminal, never with `NO_COLOR` set).
    pub color: bool,
}

impl Style {
    /// `NO_COLOR` set to anything but the empty string turns color off
    /// (<https://no-color.org>).
    pub fn for_output(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> Self {
        let color_refused = no_color.is_some_and(|v| !v.is_empty());
        Self {
            table: is_terminal,
            color: is_terminal && !color_refused,
        }
    }
}

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// `90s` → `1m30s`, `3d4h`; two units at most.
pub fn human_duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn last_exit(status: &GatewayStatus) -> String {
    let Some(exit) = status.process.as_ref().and_then(|p| p.last_exit.as_ref()) else {
        return "-".to_owned();
    };
    match (exit.exit_code, exit.signal_name, exit.signal) {
        (Some(code), _, _) => format!("exit {code}"),
        (None, Some(name), _) => name.to_owned(),
        (None, None, Some(signal)) => format!("signal {signal}"),
        _ => "-".to_owned(),
    }
}

/// Color of the state cell: green when up, red when it should run but does
/// not (or cannot be known), yellow for in-between states.
fn state_color(status: &GatewayStatus) -> &'static str {
    let want_up = status.process.as_ref().is_some_and(|p| p.want_up);
    match status.state {
        GatewayState::Up => GREEN,
        GatewayState::Down if want_up => RED,
        GatewayState::Down | GatewayState::Finishing => YELLOW,
        GatewayState::Unsupervised | GatewayState::Unregistered | GatewayState::Unknown => RED,
    }
}

pub fn write_status(
    out: &mut dyn Write,
    style: Style,
    gateways: &[GatewayStatus],
) -> io::Result<()> {
    if style.table {
        write_table(out, style, gateways)
    } else {
        write_lines(out, gateways)
    }
}

/// One line per gateway, fields in a fixed order, `-` for unknown values.
fn write_lines(out: &mut dyn Write, gateways: &[GatewayStatus]) -> io::Result<()> {
    for g in gateways {
        let process = g.process.as_ref();
        writeln!(
            out,
            "profile={} state={} pid={} for={} ready={} want={} normally={} restarts={} last_exit={} intent={} gateway={} log={}",
            g.profile,
            g.state.as_str(),
            or_dash(process.and_then(|p| p.pid)),
            or_dash(process.map(|p| p.seconds)),
            or_dash(process.map(|p| yes_no(p.ready))),
            or_dash(process.map(|p| if p.want_up { "up" } else { "down" })),
            or_dash(process.map(|p| if p.normally_up { "up" } else { "down" })),
            or_dash(g.restarts),
            last_exit(g).replace(' ', ":"),
            or_dash(g.desired_state.as_deref()),
            or_dash(g.gateway_state.as_deref()),
            g.log.display(),
        )?;
        if let Some(crash_loop) = &g.crash_loop {
            writeln!(
                out,
                "profile={} crash_loop: {}",
                g.profile, crash_loop.record
            )?;
        }
        for problem in &g.problems {
            writeln!(out, "profile={} problem: {problem}", g.profile)?;
        }
    }
    Ok(())
}

fn write_table(out: &mut dyn Write, style: Style, gateways: &[GatewayStatus]) -> io::Result<()> {
    const HEADER: [&str; 10] = [
        "PROFILE",
        "STATE",
        "PID",
        "FOR",
        "READY",
        "WANT",
        "RESTARTS",
        "LAST EXIT",
        "INTENT",
        "GATEWAY",
    ];
    let rows: Vec<[String; 10]> = gateways
        .iter()
        .map(|g| {
            let process = g.process.as_ref();
            [
                g.profile.to_string(),
                g.state.as_str().to_owned(),
                or_dash(process.and_then(|p| p.pid)),
                or_dash(process.map(|p| human_duration(p.seconds))),
                or_dash(process.map(|p| yes_no(p.ready))),
                or_dash(process.map(|p| if p.want_up { "up" } else { "down" })),
                or_dash(g.restarts),
                last_exit(g),
                or_dash(g.desired_state.as_deref()),
                or_dash(g.gateway_state.as_deref()),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], colors: &[Option<&str>]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            let pad = if last {
                0
            } else {
                widths[i] - cell.chars().count() + 2
            };
            match colors.get(i).copied().flatten() {
                Some(color) if style.color => {
                    text.push_str(color);
                    text.push_str(cell);
                    text.push_str(RESET);
                }
                _ => text.push_str(cell),
            }
            text.push_str(&" ".repeat(pad));
        }
        text
    };
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    writeln!(out, "{}", line(&header, &[]))?;
    for (g, row) in gateways.iter().zip(&rows) {
        writeln!(out, "{}", line(row, &[None, Some(state_color(g))]))?;
    }
    for g in gateways {
        if let Some(crash_loop) = &g.crash_loop {
            writeln!(out, "{}: {}", g.profile, crash_loop.record)?;
        }
        for problem in &g.problems {
            writeln!(out, "{}: {problem}", g.profile)?;
        }
    }
    if let [only] = gateways {
        writeln!(out, "log: {}", only.log.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileName;
    use crate::status::{LastExit, ProcessStatus};

    fn sample() -> Vec<GatewayStatus> {
        let mut up = GatewayStatus::new(
            ProfileName::default_profile(),
            "/opt/data/logs/gateways/default/current".into(),
        );
        up.state = GatewayState::Up;
        up.registered = true;
        up.supervised = true;
        up.restarts = Some(0);
        up.desired_state = Some("running".into());
        up.gateway_state = Some("running".into());
        up.process = Some(ProcessStatus {
            up: true,
            pid: Some(4242),
            want_up: true,
            normally_up: true,
            ready: false,
            paused: false,
            finishing: false,
            since: None,
            since_tai64n: "@400000006b0aad901e4a0c19".into(),
            seconds: 3725,
            ready_since_tai64n: "@400000006b0aad901e4a0c19".into(),
            ready_seconds: 3725,
            last_exit: None,
            pgid: None,
        });
        let mut down = GatewayStatus::new(
            ProfileName::new("work").unwrap(),
            "/opt/data/logs/gateways/work/current".into(),
        );
        down.state = GatewayState::Down;
        down.registered = true;
        down.supervised = true;
        down.restarts = Some(7);
        down.process = Some(ProcessStatus {
            up: false,
            pid: None,
            want_up: true,
            last_exit: Some(LastExit::from(crate::s6::ExitCause::Signaled(9))),
            seconds: 3,
            ..up.process.clone().unwrap()
        });
        down.problems
            .push("gateway_state.json is not a JSON object".into());
        vec![up, down]
    }

    fn render(style: Style, gateways: &[GatewayStatus]) -> String {
        let mut out = Vec::new();
        write_status(&mut out, style, gateways).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_lines_are_stable() {
        let text = render(Style::default(), &sample());
        assert_eq!(
            text,
            "profile=default state=up pid=4242 for=3725 ready=no want=up normally=up restarts=0 last_exit=- intent=running gateway=running log=/opt/data/logs/gateways/default/current\n\
             profile=work state=down pid=- for=3 ready=no want=up normally=up restarts=7 last_exit=SIGKILL intent=- gateway=- log=/opt/data/logs/gateways/work/current\n\
             profile=work problem: gateway_state.json is not a JSON object\n"
        );
    }

    #[test]
    fn table_is_aligned_and_colored_only_when_asked() {
        let plain = render(
            Style {
                table: true,
                color: false,
            },
            &sample(),
        );
        assert!(!plain.contains('\x1b'));
        let lines: Vec<&str> = plain.lines().collect();
        assert!(
            lines[0].starts_with("PROFILE  STATE  PID   FOR   READY  WANT"),
            "{plain}"
        );
        assert!(
            lines[1].starts_with("default  up     4242  1h2m  no     up"),
            "{plain}"
        );
        assert!(
            lines[2].starts_with("work     down   -     3s    no     up"),
            "{plain}"
        );
        let colored = render(
            Style {
                table: true,
                color: true,
            },
            &sample(),
        );
        assert!(colored.contains("\x1b[32mup\x1b[0m"));
        assert!(colored.contains("\x1b[31mdown\x1b[0m"));
    }

    #[test]
    fn style_follows_terminal_and_no_color() {
        use std::ffi::OsStr;
        assert_eq!(
            Style::for_output(false, None),
            Style {
                table: false,
                color: false
            }
        );
        assert_eq!(
            Style::for_output(true, None),
            Style {
                table: true,
                color: true
            }
        );
        assert_eq!(
            Style::for_output(true, Some(OsStr::new("1"))),
            Style {
                table: true,
                color: false
            }
        );
        assert_eq!(
            Style::for_output(true, Some(OsStr::new(""))),
            Style {
                table: true,
                color: true
            }
        );
        assert_eq!(
            Style::for_output(false, Some(OsStr::new(""))),
            Style {
                table: false,
                color: false
            }
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(90), "1m30s");
        assert_eq!(human_duration(3725), "1h2m");
        assert_eq!(human_duration(90_061), "1d1h");
    }
}
