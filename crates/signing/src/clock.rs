//! Civil-time helpers: the signing formats need only UTC dates, so no time crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, err};

/// Seconds since the Unix epoch; times before it are refused.
pub(crate) fn unix_seconds(t: SystemTime) -> Result<u64, Error> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| err(ErrorKind::InvalidRequest, "time before the Unix epoch"))
}

pub(crate) fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

// Howard Hinnant's days_from_civil / civil_from_days, on i64.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyymmddThhmmssZ` (ISO 8601 basic, as `X-Amz-Date` and `X-Palisade-Date`).
pub(crate) fn format_basic(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Parses `yyyymmddThhmmssZ` strictly into Unix seconds.
pub(crate) fn parse_basic(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let y = digits(b.get(0..4)?)?;
    let mo = u32::try_from(digits(b.get(4..6)?)?).ok()?;
    let d = u32::try_from(digits(b.get(6..8)?)?).ok()?;
    let h = digits(b.get(9..11)?)?;
    let mi = digits(b.get(11..13)?)?;
    let se = digits(b.get(13..15)?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(i64::try_from(y).ok()?, mo, d);
    // Reject impossible dates such as February 30 by round-tripping.
    if civil_from_days(days) != (i64::try_from(y).ok()?, mo, d) {
        return None;
    }
    let days = u64::try_from(days).ok()?;
    days.checked_mul(86_400)?
        .checked_add(h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_basic("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_basic("20150230T123600Z"), None);
        assert_eq!(parse_basic("2015083OT123600Z"), None);
        assert_eq!(parse_basic("20150830T123600"), None);
        for s in [0u64, 951_782_400, 4_102_444_800, 1_709_210_096] {
            assert_eq!(parse_basic(&format_basic(s)), Some(s));
        }
    }
}
