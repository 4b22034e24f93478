//! Human output of `gateway status`: an aligned table on a terminal, stable
//! `key=value` lines otherwise (for scripts and logs), and the frames of
//! `--watch`.
//!
//! Table columns: PROFILE; STATE (`up`, `down`, `finishing`,
//! `unsupervised`, ...; green when up, red when it should run and does not);
//! PID; FOR (time in the current state: the uptime while up); WANT (what s6
//! wants: `up` means s6 restarts it whenever it goes down); RESTARTS (deaths
//! s6 recorded); LAST EXIT (how the last run ended); INTENT (`desired_state`
//! on the volume, what the next boot applies); GATEWAY (the state the gateway
//! itself reports); CRASH LOOP (`yes` when s6 gave up on it; the record
//! follows the table).

use std::io::{self, Write};
use std::time::Duration;

use crate::error::Error;
use crate::status::{GatewayStatus, SlotState};
use crate::time::{iso8601_utc, unix_now};

/// How often `--watch` redraws.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Cursor home, then clear the screen: the start of every `--watch` frame.
pub const CLEAR_SCREEN: &[u8] = b"\x1b[H\x1b[2J";

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
        SlotState::Up => GREEN,
        SlotState::Down if want_up => RED,
        SlotState::Down | SlotState::Finishing => YELLOW,
        SlotState::Unsupervised | SlotState::Unregistered | SlotState::Unknown => RED,
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
            "profile={} state={} pid={} for={} ready={} want={} normally={} restarts={} last_exit={} intent={} gateway={} crash_loop={} log={}",
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
            yes_no(g.crash_loop.is_some()),
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
        "WANT",
        "RESTARTS",
        "LAST EXIT",
        "INTENT",
        "GATEWAY",
        "CRASH LOOP",
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
                or_dash(process.map(|p| if p.want_up { "up" } else { "down" })),
                or_dash(g.restarts),
                last_exit(g),
                or_dash(g.desired_state.as_deref()),
                or_dash(g.gateway_state.as_deref()),
                if g.crash_loop.is_some() { "yes" } else { "-" }.to_owned(),
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
        text.truncate(text.trim_end().len());
        text
    };
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    writeln!(out, "{}", line(&header, &[]))?;
    for (g, row) in gateways.iter().zip(&rows) {
        let loop_color = g.crash_loop.as_ref().map(|_| RED);
        let mut colors = vec![None, Some(state_color(g))];
        colors.resize(9, None);
        colors.push(loop_color);
        writeln!(out, "{}", line(row, &colors))?;
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
    } else {
        writeln!(out, "{}", summary(gateways))?;
    }
    Ok(())
}

/// `3 gateways: 2 up, 1 down (1 crash-looping)`.
pub fn summary(gateways: &[GatewayStatus]) -> String {
    let count = |state: SlotState| gateways.iter().filter(|g| g.state == state).count();
    let mut parts = vec![
        format!("{} up", count(SlotState::Up)),
        format!(
            "{} down",
            count(SlotState::Down) + count(SlotState::Finishing)
        ),
    ];
    let unsupervised = count(SlotState::Unsupervised);
    if unsupervised > 0 {
        parts.push(format!("{unsupervised} unsupervised"));
    }
    let unknown = count(SlotState::Unknown) + count(SlotState::Unregistered);
    if unknown > 0 {
        parts.push(format!("{unknown} other"));
    }
    let looping = gateways.iter().filter(|g| g.crash_loop.is_some()).count();
    let looping = if looping > 0 {
        format!(" ({looping} crash-looping)")
    } else {
        String::new()
    };
    let noun = if gateways.len() == 1 {
        "gateway"
    } else {
        "gateways"
    };
    format!("{} {noun}: {}{looping}", gateways.len(), parts.join(", "))
}

/// Redraws a frame every `interval`: each write starts with
/// [`CLEAR_SCREEN`] and holds the whole frame, so the terminal never shows
/// half a table. Runs until interrupted, or for `frames` frames; stops
/// quietly when stdout goes away.
pub fn watch(
    out: &mut dyn Write,
    interval: Duration,
    frames: Option<u64>,
    mut draw: impl FnMut(&mut Vec<u8>),
) -> io::Result<()> {
    let mut drawn = 0;
    loop {
        let mut frame = CLEAR_SCREEN.to_vec();
        draw(&mut frame);
        out.write_all(&frame)?;
        out.flush()?;
        drawn += 1;
        if frames.is_some_and(|frames| drawn >= frames) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// One `--watch` frame: a title line with the time, then the table (or
/// why there is none).
pub fn write_watch_frame(
    frame: &mut Vec<u8>,
    style: Style,
    title: &str,
    gateways: Result<&[GatewayStatus], &Error>,
) {
    let _ = writeln!(
        frame,
        "Every {}s: {title}    {}    (Ctrl-C to stop)\n",
        WATCH_INTERVAL.as_secs(),
        iso8601_utc(unix_now())
    );
    let _ = match gateways {
        Ok([]) => writeln!(frame, "no gateways are registered"),
        Ok(gateways) => write_status(frame, style, gateways),
        Err(e) => writeln!(frame, "hermes-s6: {e}"),
    };
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
        up.state = SlotState::Up;
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
            never_started: false,
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
        down.state = SlotState::Down;
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
            "profile=default state=up pid=4242 for=3725 ready=no want=up normally=up restarts=0 last_exit=- intent=running gateway=running crash_loop=no log=/opt/data/logs/gateways/default/current\n\
             profile=work state=down pid=- for=3 ready=no want=up normally=up restarts=7 last_exit=SIGKILL intent=- gateway=- crash_loop=no log=/opt/data/logs/gateways/work/current\n\
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
        assert_eq!(
            lines[0],
            "PROFILE  STATE  PID   FOR   WANT  RESTARTS  LAST EXIT  INTENT   GATEWAY  CRASH LOOP",
            "{plain}"
        );
        assert_eq!(
            lines[1], "default  up     4242  1h2m  up    0         -          running  running  -",
            "{plain}"
        );
        assert_eq!(
            lines[2], "work     down   -     3s    up    7         SIGKILL    -        -        -",
            "{plain}"
        );
        assert_eq!(lines[3], "work: gateway_state.json is not a JSON object");
        assert_eq!(lines[4], "2 gateways: 1 up, 1 down");
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
    fn the_table_flags_crash_loops_and_sums_up() {
        let mut gateways = sample();
        gateways[1].crash_loop = Some(crate::status::CrashLoop::parse(
            "crash-looping: stopped after 5 failures in 60 s (last exit 1, at 17)",
        ));
        gateways[1].problems.clear();
        let style = Style {
            table: true,
            color: false,
        };
        let text = render(style, &gateways);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].ends_with("-        -        yes"), "{text}");
        assert_eq!(
            lines[3],
            "work: crash-looping: stopped after 5 failures in 60 s (last exit 1, at 17)"
        );
        assert_eq!(lines[4], "2 gateways: 1 up, 1 down (1 crash-looping)");
        let colored = render(
            Style {
                table: true,
                color: true,
            },
            &gateways,
        );
        assert!(colored.contains("\x1b[31myes\x1b[0m"), "{colored}");
        let plain = render(Style::default(), &gateways);
        assert!(plain.contains(" crash_loop=yes log="), "{plain}");
        // One gateway: its log instead of the summary.
        let one = render(style, &gateways[..1]);
        assert!(
            one.ends_with("log: /opt/data/logs/gateways/default/current\n"),
            "{one}"
        );
    }

    #[test]
    fn watch_redraws_whole_frames() {
        let mut out = Vec::new();
        let mut n = 0;
        watch(&mut out, Duration::from_millis(1), Some(3), |frame| {
            n += 1;
            let gateways = sample();
            write_watch_frame(
                frame,
                Style {
                    table: true,
                    color: false,
                },
                "hermes-s6 gateway status --all",
                Ok(&gateways),
            );
        })
        .unwrap();
        assert_eq!(n, 3);
        let text = String::from_utf8(out).unwrap();
        let frames: Vec<&str> = text.split("\x1b[H\x1b[2J").skip(1).collect();
        assert_eq!(frames.len(), 3, "{text}");
        for frame in frames {
            assert!(
                frame.starts_with("Every 1s: hermes-s6 gateway status --all    "),
                "{frame}"
            );
            assert!(frame.contains("\n\nPROFILE  STATE"), "{frame}");
            assert!(frame.ends_with("2 gateways: 1 up, 1 down\n"), "{frame}");
        }
        let mut frame = Vec::new();
        write_watch_frame(&mut frame, Style::default(), "t", Ok(&[]));
        assert!(
            String::from_utf8(frame)
                .unwrap()
                .ends_with("no gateways are registered\n")
        );
        let mut frame = Vec::new();
        let error = Error::NotImplemented { what: "x" };
        write_watch_frame(&mut frame, Style::default(), "t", Err(&error));
        assert!(
            String::from_utf8(frame)
                .unwrap()
                .ends_with("hermes-s6: x is not implemented yet\n")
        );
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
