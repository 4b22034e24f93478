//! TAI64N stamps as s6 writes them, and the UTC formatting the state files use.
//!
//! s6 (through skalibs) stamps events with the system clock converted to TAI:
//! label = 2^62 + 10 + Unix seconds + leap seconds inserted so far. Durations
//! such as "up for N seconds" are computed the way `s6-svstat` does: now,
//! converted the same way, minus the stamp, truncated to whole seconds.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2^62: TAI64 label of the TAI epoch (1970-01-01 00:00:00 TAI).
const TAI64_BASE: u64 = 1 << 62;
/// TAI - UTC before the first leap second (1972).
const TAI_UTC_BASE_OFFSET: u64 = 10;

/// Unix times at which a leap second had just been inserted (the offset grew
/// by one from that instant on). The list ends with 2017-01-01; IERS has
/// announced none since.
const LEAP_SECONDS: [u64; 27] = [
    78_796_800,
    94_694_400,
    126_230_400,
    157_766_400,
    189_302_400,
    220_924_800,
    252_460_800,
    283_996_800,
    315_532_800,
    362_793_600,
    394_329_600,
    425_865_600,
    489_024_000,
    567_993_600,
    631_152_000,
    662_688_000,
    709_948_800,
    741_484_800,
    773_020_800,
    820_454_400,
    867_715_200,
    915_148_800,
    1_136_073_600,
    1_230_768_000,
    1_341_100_800,
    1_435_708_800,
    1_483_228_800,
];

/// A TAI64N timestamp: the 8-byte TAI64 label and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64N {
    pub label: u64,
    pub nanos: u32,
}

impl Tai64N {
    /// Big-endian 12-byte TAI64N, as in `supervise/status` and `death_tally`.
    pub fn from_be_bytes(bytes: [u8; 12]) -> Self {
        let [a, b, c, d, e, f, g, h, i, j, k, l] = bytes;
        Self {
            label: u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            nanos: u32::from_be_bytes([i, j, k, l]),
        }
    }

    pub fn to_be_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..8].copy_from_slice(&self.label.to_be_bytes());
        out[8..].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }

    /// The external form `@` + 24 hex digits, as `s6-svstat -o updownsince`
    /// prints it.
    pub fn to_label_string(self) -> String {
        let mut out = String::with_capacity(25);
        out.push('@');
        for byte in self.to_be_bytes() {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// Parses the `@…` external form.
    pub fn from_label_str(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('@')?;
        if hex.len() != 24 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            label: u64::from_str_radix(&hex[..16], 16).ok()?,
            nanos: u32::from_str_radix(&hex[16..], 16).ok()?,
        })
    }

    /// The system clock converted to TAI the way skalibs converts it.
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let unix = since_epoch.as_secs();
        let leaps = LEAP_SECONDS.iter().filter(|&&leap| leap <= unix).count() as u64;
        Self {
            label: TAI64_BASE + TAI_UTC_BASE_OFFSET + unix + leaps,
            nanos: since_epoch.subsec_nanos(),
        }
    }

    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Seconds since the Unix epoch (UTC), or `None` for a stamp before it.
    pub fn to_unix_seconds(self) -> Option<u64> {
        let tai = self.label.checked_sub(TAI64_BASE + TAI_UTC_BASE_OFFSET)?;
        // The i-th leap second (0-based) raised the offset to 11 + i at the
        // TAI instant leap_i + 11 + i.
        let leaps = LEAP_SECONDS
            .iter()
            .enumerate()
            .filter(|&(i, &leap)| tai >= leap + 1 + i as u64)
            .count() as u64;
        Some(tai - leaps)
    }

    /// Whole seconds from `self` to `later`, truncated; 0 when `later` is
    /// not after `self`.
    pub fn whole_seconds_until(self, later: Tai64N) -> u64 {
        if later <= self {
            return 0;
        }
        let secs = later.label - self.label;
        if later.nanos >= self.nanos {
            secs
        } else {
            secs - 1
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
pub fn iso8601_utc(unix: u64) -> String {
    let (date, time) = civil(unix);
    format!("{date}T{time}Z")
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`: the shape Python's
/// `datetime.now(timezone.utc).isoformat()` produces, which the gateway
/// reads back from its markers.
pub fn iso8601_utc_micros(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let (date, clock) = civil(since_epoch.as_secs());
    format!("{date}T{clock}.{:06}+00:00", since_epoch.subsec_micros())
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Splits Unix seconds into `YYYY-MM-DD` and `HH:MM:SS` (proleptic Gregorian,
/// days-from-civil inverted).
fn civil(unix: u64) -> (String, String) {
    civil_local(i64::try_from(unix).unwrap_or(i64::MAX))
}

/// Date and wall-clock time of `seconds` since 1970-01-01 00:00:00 (UTC,
/// or any zone's local time once its offset is added).
pub(crate) fn civil_local(seconds: i64) -> (String, String) {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Year, month and day of a day number (days since 1970-01-01).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number (days since 1970-01-01) of a date.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year `seconds` since the epoch falls in.
pub(crate) fn year_of(seconds: i64) -> i64 {
    civil_from_days(seconds.div_euclid(86_400)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_round_trips() {
        let label = "@400000006b0aad901e4a0c19";
        let stamp = Tai64N::from_label_str(label).unwrap();
        assert_eq!(stamp.label, 0x4000_0000_6b0a_ad90);
        assert_eq!(stamp.nanos, 0x1e4a_0c19);
        assert_eq!(stamp.to_label_string(), label);
        assert_eq!(Tai64N::from_be_bytes(stamp.to_be_bytes()), stamp);
        for bad in [
            "400000006b0aad901e4a0c19",
            "@4000",
            "@40000000 b0aad901e4a0c19",
        ] {
            assert_eq!(Tai64N::from_label_str(bad), None, "{bad}");
        }
    }

    #[test]
    fn converts_like_skalibs() {
        // Observed with s6 2.11: `date +%s` printed 1795861896 while
        // `s6-tai64n` printed @400000006b0aadad…: TAI - UTC = 37 s.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_861_896);
        let stamp = Tai64N::from_system_time(t);
        assert_eq!(stamp.label, 0x4000_0000_6b0a_adad);
        assert_eq!(stamp.to_unix_seconds(), Some(1_795_861_896));
        // Before the first leap second the offset is 10.
        let early = Tai64N::from_system_time(UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(early.label, TAI64_BASE + 1010);
        assert_eq!(early.to_unix_seconds(), Some(1000));
        // Round trip across every leap second boundary.
        for &leap in &LEAP_SECONDS {
            for unix in [leap - 1, leap, leap + 1] {
                let stamp = Tai64N::from_system_time(UNIX_EPOCH + Duration::from_secs(unix));
                assert_eq!(stamp.to_unix_seconds(), Some(unix), "{unix}");
            }
        }
        assert_eq!(Tai64N { label: 5, nanos: 0 }.to_unix_seconds(), None);
    }

    #[test]
    fn whole_seconds_truncate() {
        let a = Tai64N {
            label: 100,
            nanos: 900_000_000,
        };
        let b = Tai64N {
            label: 102,
            nanos: 100_000_000,
        };
        assert_eq!(a.whole_seconds_until(b), 1);
        assert_eq!(b.whole_seconds_until(a), 0);
        let c = Tai64N {
            label: 102,
            nanos: 950_000_000,
        };
        assert_eq!(a.whole_seconds_until(c), 2);
    }

    #[test]
    fn formats_utc() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_795_861_933), "2026-11-28T10:32:13Z");
        assert_eq!(
            iso8601_utc_micros(UNIX_EPOCH + Duration::from_micros(1_500_000)),
            "1970-01-01T00:00:01.500000+00:00"
        );
    }
}
