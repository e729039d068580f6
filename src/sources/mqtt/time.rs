//! Device timestamps in MQTT payloads: a number since the Unix epoch in s, ms, us or ns, or an
//! RFC 3339 text (`2026-11-25T08:30:00.250+08:00`). Pure; nothing here reads a clock.

use serde::Deserialize;
use serde_json::Value;

use crate::model::Timestamp;

/// What a numeric timestamp counts since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Seconds (fractions allowed: `1732523400.25`).
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl TimeUnit {
    fn nanos(self) -> i64 {
        match self {
            TimeUnit::S => 1_000_000_000,
            TimeUnit::Ms => 1_000_000,
            TimeUnit::Us => 1_000,
            TimeUnit::Ns => 1,
        }
    }
}

/// A JSON timestamp field: a number (or numeric text) in `unit`, or RFC 3339 text. `None` when
/// it is neither or lies outside what nanoseconds in an `i64` can hold (years 1677..2262).
pub fn from_json(v: &Value, unit: TimeUnit) -> Option<Timestamp> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return i.checked_mul(unit.nanos()).map(Timestamp::from_nanos);
            }
            from_f64(n.as_f64()?, unit)
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return i.checked_mul(unit.nanos()).map(Timestamp::from_nanos);
            }
            match t.parse::<f64>() {
                Ok(f) => from_f64(f, unit),
                Err(_) => parse_rfc3339(t),
            }
        }
        _ => None,
    }
}

fn from_f64(f: f64, unit: TimeUnit) -> Option<Timestamp> {
    // Whole and fractional parts apart, so `1732523400.25` s is exact to the nanosecond.
    let whole = f.trunc();
    // i64::MAX as f64 rounds up to 2^63, so the bound is exclusive.
    if !whole.is_finite() || whole.abs() >= i64::MAX as f64 {
        return None;
    }
    let frac = ((f - whole) * unit.nanos() as f64).round() as i64;
    (whole as i64)
        .checked_mul(unit.nanos())?
        .checked_add(frac)
        .map(Timestamp::from_nanos)
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t` or a space may separate date
/// and time, as RFC 3339 §5.6 allows). Leap seconds (`:60`) are folded into the next second.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_nanos = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                frac_nanos = frac_nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            frac_nanos *= 10;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    secs.checked_mul(1_000_000_000)?
        .checked_add(frac_nanos)
        .map(Timestamp::from_nanos)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: i64 = 1_732_523_400; // 2024-11-25T08:30:00Z

    #[test]
    fn numbers_count_in_their_unit() {
        let ns = T * 1_000_000_000;
        assert_eq!(from_json(&json!(T), TimeUnit::S).unwrap().as_nanos(), ns);
        assert_eq!(from_json(&json!(T * 1000), TimeUnit::Ms).unwrap().as_nanos(), ns);
        assert_eq!(from_json(&json!(T * 1_000_000), TimeUnit::Us).unwrap().as_nanos(), ns);
        assert_eq!(from_json(&json!(ns), TimeUnit::Ns).unwrap().as_nanos(), ns);
        assert_eq!(
            from_json(&json!(1_732_523_400.25), TimeUnit::S).unwrap().as_nanos(),
            ns + 250_000_000
        );
        assert_eq!(from_json(&json!(T.to_string()), TimeUnit::S).unwrap().as_nanos(), ns);
    }

    #[test]
    fn rfc3339_honours_offsets_and_fractions() {
        let ns = T * 1_000_000_000;
        assert_eq!(parse_rfc3339("2024-11-25T08:30:00Z").unwrap().as_nanos(), ns);
        assert_eq!(parse_rfc3339("2024-11-25T16:30:00+08:00").unwrap().as_nanos(), ns);
        assert_eq!(
            parse_rfc3339("2024-11-25 08:30:00.5z").unwrap().as_nanos(),
            ns + 500_000_000
        );
        assert_eq!(
            parse_rfc3339("2024-11-25T08:30:00.123456789123Z").unwrap().as_nanos(),
            ns + 123_456_789
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap().as_nanos(), 0);
    }

    #[test]
    fn malformed_and_out_of_range_times_are_refused() {
        for bad in [
            "2024-02-30T00:00:00Z",
            "2024-11-25T08:30:00",
            "2024-11-25T24:00:00Z",
            "2024-11-25T08:30:00.Z",
            "2024-11-25T08:30:00+0800",
            "２０２４-11-25T08:30:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(from_json(&json!(i64::MAX), TimeUnit::S), None);
        assert_eq!(from_json(&json!(1e300), TimeUnit::Ms), None);
        assert_eq!(from_json(&json!(true), TimeUnit::S), None);
        assert_eq!(from_json(&json!("9999-01-01T00:00:00Z"), TimeUnit::S), None);
    }
}
