//! Time parameters of the API (`from`, `to`): milliseconds since the epoch, or an RFC 3339
//! date-time with any offset (`2026-05-01T08:00:00+08:00`, `…Z`, fractions of a second).
//!
//! Design: our own parser because the date-times clients send carry offsets (China Standard
//! Time is +08:00) and may lie outside the range of nanosecond timestamps; such times are
//! clamped to the range (1677–2262), which loses nothing for a history query.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use super::ApiError;
use crate::model::Timestamp;

/// The OpenAPI schema of a time parameter.
pub(super) fn schema() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("Milliseconds since the Unix epoch")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("RFC 3339 date-time")),
        )
        .into()
}

/// Parses a time parameter named `name`.
pub(super) fn parse_time(name: &'static str, text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    parse_rfc3339(text).ok_or_else(|| ApiError::BadParam {
        name,
        reason: format!("`{text}` is neither RFC 3339 (2026-05-01T08:00:00+08:00) nor milliseconds since the epoch"),
    })
}

/// The range a query's `from` and `to` give: `to` defaults to `now`, `from` to `span` before
/// `to`.
pub(super) fn range(
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
    span: std::time::Duration,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let to = match to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    let from = match from {
        Some(t) => parse_time("from", t)?,
        None => to.minus(span),
    };
    Ok((from, to))
}

/// Nanoseconds since the epoch of an RFC 3339 date-time, clamped to the `i64` range.
fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        for (k, d) in b[start..end].iter().take(9).enumerate() {
            nanos += i64::from(d - b'0') * 10i64.pow(8 - k as u32);
        }
        i = end;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let s = oh * 3600 + om * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let clamped = total.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    Some(Timestamp::from_nanos(i64::try_from(clamped).unwrap_or(i64::MAX)))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Option<i64> {
        parse_rfc3339(text).map(|t| t.as_millis())
    }

    #[test]
    fn utc_and_offset_times_name_the_same_instant() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2026-05-01T08:00:00+08:00"), ms("2026-05-01T00:00:00Z"));
        assert_eq!(
            ms("2026-05-01t00:00:00.250z"),
            ms("2026-05-01T00:00:00Z").map(|v| v + 250)
        );
        assert_eq!(ms("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(ms("2024-02-29 12:00:00Z"), Some(1_709_208_000_000));
    }

    #[test]
    fn times_beyond_the_nanosecond_range_are_clamped() {
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some(Timestamp::from_nanos(i64::MIN))
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59Z"),
            Some(Timestamp::from_nanos(i64::MAX))
        );
    }

    #[test]
    fn malformed_or_impossible_times_are_refused() {
        for bad in [
            "",
            "2026-05-01",
            "2026-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-05-01T24:00:00Z",
            "2026-05-01T00:00:00",
            "2026-05-01T00:00:00+8:00",
            "2026-05-01T00:00:00.Z",
            "2026-05-01T00:00:00Zjunk",
            "２０２６-05-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(parse_time("from", "yesterday").is_err());
        assert_eq!(parse_time("from", "1500").unwrap().as_millis(), 1500);
    }
}
