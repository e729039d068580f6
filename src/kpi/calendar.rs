//! Site-local calendar arithmetic for the KPI groups: days, ISO weeks and shifts at a fixed UTC
//! offset (China has no daylight saving time; a fixed offset is what the site's clocks show).
//!
//! Design: plain integer arithmetic on nanoseconds and days since 1970-01-01, with Howard
//! Hinnant's civil-date algorithms, so the engine needs no time-zone database.

use crate::model::Timestamp;

const NANOS_PER_MIN: i64 = 60_000_000_000;
const NANOS_PER_DAY: i64 = 1440 * NANOS_PER_MIN;

/// A fixed offset of site-local time from UTC, in minutes (east positive; +08:00 is 480).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UtcOffset(pub i32);

impl UtcOffset {
    /// China Standard Time.
    pub const CHINA: UtcOffset = UtcOffset(480);

    fn nanos(self) -> i64 {
        i64::from(self.0) * NANOS_PER_MIN
    }

    /// `"+08:00"`.
    pub fn text(self) -> String {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let m = self.0.unsigned_abs();
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    }

    /// Parses `"+08:00"` / `"-05:30"` (at most 14 hours either way).
    pub fn parse(text: &str) -> Option<UtcOffset> {
        let b = text.as_bytes();
        if b.len() != 6 || b[3] != b':' || !matches!(b[0], b'+' | b'-') {
            return None;
        }
        let digits = |s: &[u8]| -> Option<i32> {
            s.iter()
                .all(u8::is_ascii_digit)
                .then(|| s.iter().fold(0, |a, d| a * 10 + i32::from(d - b'0')))
        };
        let (h, m) = (digits(&b[1..3])?, digits(&b[4..6])?);
        if m > 59 || h * 60 + m > 14 * 60 {
            return None;
        }
        let total = h * 60 + m;
        Some(UtcOffset(if b[0] == b'-' { -total } else { total }))
    }

    /// The local day (days since 1970-01-01, local) that `ts` falls in.
    pub fn day_of(self, ts: Timestamp) -> i64 {
        ts.as_nanos().saturating_add(self.nanos()).div_euclid(NANOS_PER_DAY)
    }

    /// The instant local `day` begins, plus `minutes` after local midnight (saturating at the
    /// ends of the nanosecond range).
    pub fn at(self, day: i64, minutes: i64) -> Timestamp {
        Timestamp::from_nanos(
            day.saturating_mul(NANOS_PER_DAY)
                .saturating_add(minutes.saturating_mul(NANOS_PER_MIN))
                .saturating_sub(self.nanos()),
        )
    }

    /// The start of the local `period_nanos`-long interval holding `ts` (intervals aligned to
    /// local midnight), as an interval index.
    pub fn interval_of(self, ts: Timestamp, period_nanos: i64) -> i64 {
        ts.as_nanos().saturating_add(self.nanos()).div_euclid(period_nanos)
    }

    /// `"2026-12-07 08:00:00"` in site-local time.
    pub fn format(self, ts: Timestamp) -> String {
        let local = ts.as_nanos().saturating_add(self.nanos());
        let day = local.div_euclid(NANOS_PER_DAY);
        let secs = local.rem_euclid(NANOS_PER_DAY) / 1_000_000_000;
        let (y, m, d) = civil_from_days(day);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// `"2026-12-07"` of a local day.
pub fn day_label(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Monday (local day) of the ISO week holding `day`.
pub(super) fn week_start(day: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday is 0 after shifting by 3.
    day - (day + 3).rem_euclid(7)
}

/// `"2026-W50"`: the ISO 8601 week of the week starting on Monday `monday`.
pub fn week_label(monday: i64) -> String {
    let thursday = monday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// The Monday of ISO week `"YYYY-Www"`, if it exists.
pub fn parse_week(text: &str) -> Option<i64> {
    let (y, w) = text.split_once("-W")?;
    if y.len() != 4 || w.len() != 2 || !y.bytes().chain(w.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, week): (i64, i64) = (y.parse().ok()?, w.parse().ok()?);
    // Week 1 holds 4 January.
    let monday = week_start(days_from_civil(year, 1, 4)) + (week - 1) * 7;
    (week >= 1 && week_label(monday) == text).then_some(monday)
}

/// `(year, month, day)` of days since 1970-01-01 (Hinnant's `civil_from_days`).
pub(super) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
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

    #[test]
    fn civil_dates_round_trip_and_iso_weeks_follow_the_standard() {
        for day in [-800_000, -1, 0, 1, 19_000, 20_429, 2_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        // 2026-12-07 is a Monday in ISO week 50; 2021-01-03 (a Sunday) is in 2020-W53.
        let dec7 = days_from_civil(2026, 12, 7);
        assert_eq!(week_start(dec7), dec7);
        assert_eq!(week_label(dec7), "2026-W50");
        assert_eq!(week_label(week_start(days_from_civil(2021, 1, 3))), "2020-W53");
        assert_eq!(parse_week("2026-W50"), Some(dec7));
        assert_eq!(parse_week("2020-W53"), Some(days_from_civil(2020, 12, 28)));
        assert_eq!(parse_week("2026-W53"), Some(days_from_civil(2026, 12, 28)));
        assert_eq!(parse_week("2025-W53"), None, "2025 has 52 weeks");
        assert_eq!(parse_week("2026-W00"), None);
        assert_eq!(parse_week("2026W50"), None);
    }

    #[test]
    fn local_time_is_shifted_by_the_offset() {
        let off = UtcOffset::parse("+08:00").unwrap();
        assert_eq!(off, UtcOffset::CHINA);
        assert_eq!(off.text(), "+08:00");
        assert_eq!(UtcOffset::parse("-05:30"), Some(UtcOffset(-330)));
        for bad in ["+8:00", "+15:00", "08:00", "+08:60", "+08-00"] {
            assert_eq!(UtcOffset::parse(bad), None, "{bad}");
        }
        // 2026-12-06T16:00:00Z is local midnight of 7 December.
        let t = Timestamp::from_millis(1_796_572_800_000);
        assert_eq!(off.format(t), "2026-12-07 00:00:00");
        assert_eq!(off.day_of(t), days_from_civil(2026, 12, 7));
        assert_eq!(off.at(days_from_civil(2026, 12, 7), 0), t);
        // A week of year 79 lies before the nanosecond range: it saturates, never overflows.
        let monday = parse_week("0079-W42").unwrap();
        assert_eq!(off.at(monday, 0), Timestamp::from_nanos(i64::MIN));
    }
}
