//! Local time as C's `strftime("%Y-%m-%dT%H:%M:%S%z")` prints it, for the
//! boot log (upstream writes its lines with Python's `time.strftime`, which
//! is that call). The zone is found as the C library finds it: `TZ` (a
//! POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3`, or a zone file: `:name`,
//! a path, or a name under `/usr/share/zoneinfo`), else `/etc/localtime`,
//! else UTC. Zone files (TZif) are read here; no unsafe call into the C
//! library is needed.

use std::path::{Path, PathBuf};

use crate::time::civil_local;

const ZONEINFO: &str = "/usr/share/zoneinfo";
const LOCALTIME: &str = "/etc/localtime";

/// `2026-12-04T21:53:30+0100`: `unix` in the local zone that `tz` (the
/// value of `TZ`, if set) selects.
pub fn strftime_iso(unix: u64, tz: Option<&str>) -> String {
    let offset = utc_offset(unix, tz);
    let local = i64::try_from(unix)
        .unwrap_or(i64::MAX)
        .saturating_add(offset);
    let (date, clock) = civil_local(local);
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!("{date}T{clock}{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

/// Seconds east of UTC at `unix` in the zone `tz` selects; 0 when nothing
/// can be read.
pub fn utc_offset(unix: u64, tz: Option<&str>) -> i64 {
    let unix = i64::try_from(unix).unwrap_or(i64::MAX);
    let from_file = |path: &Path| {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| tzif_offset(&bytes, unix))
    };
    match tz {
        None => from_file(Path::new(LOCALTIME)),
        Some("") => Some(0),
        Some(tz) => {
            let name = tz.strip_prefix(':').unwrap_or(tz);
            let path = if name.starts_with('/') {
                PathBuf::from(name)
            } else {
                Path::new(ZONEINFO).join(name)
            };
            let safe = !name.split('/').any(|part| part == "..");
            let file = safe.then(|| from_file(&path)).flatten();
            file.or_else(|| posix_offset(tz, unix))
        }
    }
    .unwrap_or(0)
}

/// The offset at `unix` from a TZif file (RFC 8536): its 64-bit data when
/// it has them, the footer's rule past the last transition.
pub fn tzif_offset(bytes: &[u8], unix: i64) -> Option<i64> {
    let v1 = Header::parse(bytes)?;
    let v1_end = 44 + v1.data_len(4);
    let (header, data, time_size) = if v1.version >= b'2' {
        let second = bytes.get(v1_end..)?;
        (Header::parse(second)?, second.get(44..)?, 8)
    } else {
        (v1, bytes.get(44..)?, 4)
    };
    let times_len = header.timecnt * time_size;
    let times = data.get(..times_len)?;
    let indices = data.get(times_len..times_len + header.timecnt)?;
    let types_at = times_len + header.timecnt;
    let ttinfo = |i: usize| -> Option<(i64, bool)> {
        let t = data.get(types_at + i * 6..types_at + i * 6 + 6)?;
        Some((
            i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]])),
            t[4] != 0,
        ))
    };
    let transition = |i: usize| -> i64 {
        let t = &times[i * time_size..(i + 1) * time_size];
        if time_size == 8 {
            i64::from_be_bytes(t.try_into().expect("8 bytes"))
        } else {
            i64::from(i32::from_be_bytes(t.try_into().expect("4 bytes")))
        }
    };
    let last = (0..header.timecnt).rev().find(|&i| transition(i) <= unix);
    if time_size == 8 && (header.timecnt == 0 || last == Some(header.timecnt - 1)) {
        let footer_at = 44 + header.data_len(8);
        let footer = bytes
            .get(v1_end + footer_at..)
            .and_then(|f| std::str::from_utf8(f).ok())
            .map(|f| f.trim_matches('\n'))
            .filter(|f| !f.is_empty());
        if let Some(offset) = footer.and_then(|rule| posix_offset(rule, unix)) {
            return Some(offset);
        }
    }
    match last {
        Some(i) => ttinfo(usize::from(*indices.get(i)?)).map(|(off, _)| off),
        // Before the first transition: the first standard-time type.
        None => (0..header.typecnt)
            .filter_map(ttinfo)
            .find(|(_, dst)| !dst)
            .or_else(|| ttinfo(0))
            .map(|(off, _)| off),
    }
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.get(..4)? != b"TZif" {
            return None;
        }
        let count = |i: usize| -> Option<usize> {
            let b = bytes.get(20 + i * 4..24 + i * 4)?;
            usize::try_from(u32::from_be_bytes(b.try_into().ok()?)).ok()
        };
        Some(Self {
            version: *bytes.get(4)?,
            isutcnt: count(0)?,
            isstdcnt: count(1)?,
            leapcnt: count(2)?,
            timecnt: count(3)?,
            typecnt: count(4)?,
            charcnt: count(5)?,
        })
    }

    /// Bytes of the data block after this header, for `time_size`-byte
    /// times.
    fn data_len(&self, time_size: usize) -> usize {
        self.timecnt * time_size
            + self.timecnt
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * (time_size + 4)
            + self.isstdcnt
            + self.isutcnt
    }
}

/// The offset at `unix` under a POSIX TZ rule (`std offset [dst [offset]
/// [,start[/time],end[/time]]]`).
pub fn posix_offset(rule: &str, unix: i64) -> Option<i64> {
    let mut rest = rule;
    let _std_name = take_name(&mut rest)?;
    // POSIX offsets count west of UTC.
    let std = -take_offset(&mut rest)?;
    if rest.is_empty() {
        return Some(std);
    }
    let _dst_name = take_name(&mut rest)?;
    let dst = if rest.starts_with(',') || rest.is_empty() {
        std + 3600
    } else {
        -take_offset(&mut rest)?
    };
    let Some(rules) = rest.strip_prefix(',') else {
        // No rule: the C library's default differs between libraries; keep
        // standard time rather than guess.
        return Some(std);
    };
    let (start, end) = rules.split_once(',')?;
    let year = crate::time::year_of(unix.saturating_add(std));
    // The start is given in standard time, the end in daylight time.
    let starts = rule_instant(start, year)? - std;
    let ends = rule_instant(end, year)? - dst;
    let in_dst = if starts < ends {
        unix >= starts && unix < ends
    } else {
        // Southern hemisphere: daylight time spans the new year.
        !(unix >= ends && unix < starts)
    };
    Some(if in_dst { dst } else { std })
}

fn take_name<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (name, after) = if let Some(quoted) = rest.strip_prefix('<') {
        let end = quoted.find('>')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        let end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if name.len() < 3 {
        return None;
    }
    *rest = after;
    Some(name)
}

/// `[+-]hh[:mm[:ss]]` in seconds.
fn take_offset(rest: &mut &str) -> Option<i64> {
    let (sign, body) = match rest.as_bytes().first()? {
        b'-' => (-1, &rest[1..]),
        b'+' => (1, &rest[1..]),
        _ => (1, *rest),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(body.len());
    let seconds = hms(&body[..end])?;
    *rest = &body[end..];
    Some(sign * seconds)
}

fn hms(text: &str) -> Option<i64> {
    let mut seconds = 0;
    let mut parts = 0;
    for (i, part) in text.split(':').enumerate() {
        let n: i64 = part.parse().ok()?;
        seconds += n * [3600, 60, 1].get(i)?;
        parts += 1;
    }
    (parts > 0).then_some(seconds)
}

/// Seconds from the Unix epoch, in local wall-clock terms, of a rule's
/// date and time (`Mm.w.d`, `Jn`, `n`; time `/[+-]hh[:mm[:ss]]`, default
/// 02:00) in `year`.
fn rule_instant(rule: &str, year: i64) -> Option<i64> {
    let (date, time) = match rule.split_once('/') {
        Some((d, t)) => {
            let mut t = t;
            (d, take_offset(&mut t)?)
        }
        None => (rule, 7200),
    };
    let day = if let Some(mwd) = date.strip_prefix('M') {
        let mut it = mwd.split('.').map(|n| n.parse::<i64>().ok());
        let (m, w, d) = (it.next()??, it.next()??, it.next()??);
        if !(1..=12).contains(&m) || !(1..=5).contains(&w) || !(0..=6).contains(&d) {
            return None;
        }
        let first = crate::time::days_from_civil(year, m, 1);
        // 1970-01-01 was a Thursday (4).
        let weekday = (first + 4).rem_euclid(7);
        let mut day = first + (d - weekday).rem_euclid(7) + (w - 1) * 7;
        let next_month = if m == 12 {
            crate::time::days_from_civil(year + 1, 1, 1)
        } else {
            crate::time::days_from_civil(year, m + 1, 1)
        };
        while day >= next_month {
            day -= 7;
        }
        day
    } else if let Some(julian) = date.strip_prefix('J') {
        // 1..=365, February 29 never counted.
        let n: i64 = julian.parse().ok()?;
        let leap = crate::time::days_from_civil(year, 3, 1)
            - crate::time::days_from_civil(year, 2, 28)
            == 2;
        crate::time::days_from_civil(year, 1, 1) + n - 1 + i64::from(leap && n >= 60)
    } else {
        let n: i64 = date.parse().ok()?;
        crate::time::days_from_civil(year, 1, 1) + n
    };
    Some(day * 86_400 + time)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: &str = "CET-1CEST,M3.5.0,M10.5.0/3";
    // 2026-07-01T12:00:00Z and 2026-12-04T21:53:30Z.
    const SUMMER: u64 = 1_782_907_200;
    const WINTER: u64 = 1_796_421_210;

    #[test]
    fn posix_rules() {
        assert_eq!(posix_offset("UTC0", SUMMER as i64), Some(0));
        assert_eq!(posix_offset(BERLIN, SUMMER as i64), Some(7200));
        assert_eq!(posix_offset(BERLIN, WINTER as i64), Some(3600));
        assert_eq!(
            posix_offset("EST5EDT,M3.2.0,M11.1.0", SUMMER as i64),
            Some(-4 * 3600)
        );
        assert_eq!(posix_offset("<+0530>-5:30", WINTER as i64), Some(19_800));
        // Southern hemisphere: daylight time in December.
        assert_eq!(
            posix_offset("AEST-10AEDT,M10.1.0,M4.1.0/3", WINTER as i64),
            Some(11 * 3600)
        );
        assert_eq!(posix_offset("x", 0), None);
        // Berlin's 2026 switch: 2026-03-29 01:00 UTC.
        let switch = 1_774_746_000;
        assert_eq!(posix_offset(BERLIN, switch - 1), Some(3600));
        assert_eq!(posix_offset(BERLIN, switch), Some(7200));
    }

    #[test]
    fn formats_like_strftime() {
        assert_eq!(
            strftime_iso(WINTER, Some("UTC0")),
            "2026-12-04T21:53:30+0000"
        );
        assert_eq!(strftime_iso(WINTER, Some("")), "2026-12-04T21:53:30+0000");
        assert_eq!(
            strftime_iso(WINTER, Some(BERLIN)),
            "2026-12-04T22:53:30+0100"
        );
        assert_eq!(
            strftime_iso(WINTER, Some("<-0330>3:30")),
            "2026-12-04T18:23:30-0330"
        );
    }

    #[test]
    fn reads_zone_files() {
        // A v2 file with no transitions: the footer rules.
        let mut file = Vec::new();
        let header = |version: u8, typecnt: u32, charcnt: u32| {
            let mut h = b"TZif".to_vec();
            h.push(version);
            h.extend([0; 15]);
            for n in [0, 0, 0, 0, typecnt, charcnt] {
                h.extend(n.to_be_bytes());
            }
            h
        };
        let types = |file: &mut Vec<u8>| {
            file.extend(3600i32.to_be_bytes());
            file.extend([0, 0]);
            file.extend(b"CET\0");
        };
        file.extend(header(b'2', 1, 4));
        types(&mut file);
        file.extend(header(b'2', 1, 4));
        types(&mut file);
        file.extend(format!("\n{BERLIN}\n").as_bytes());
        assert_eq!(tzif_offset(&file, SUMMER as i64), Some(7200));
        assert_eq!(tzif_offset(&file, WINTER as i64), Some(3600));
        assert_eq!(tzif_offset(b"nope", 0), None);
        // The host's own zone files, when it has them.
        if let Ok(bytes) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") {
            assert_eq!(tzif_offset(&bytes, SUMMER as i64), Some(7200));
            assert_eq!(tzif_offset(&bytes, WINTER as i64), Some(3600));
            assert_eq!(utc_offset(SUMMER, Some("Europe/Berlin")), 7200);
            assert_eq!(utc_offset(SUMMER, Some(":Europe/Berlin")), 7200);
        }
        if let Ok(bytes) = std::fs::read("/usr/share/zoneinfo/UTC") {
            assert_eq!(tzif_offset(&bytes, SUMMER as i64), Some(0));
        }
        assert_eq!(utc_offset(SUMMER, Some("../../etc/passwd")), 0);
    }
}
