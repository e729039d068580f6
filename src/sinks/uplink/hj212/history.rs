//! History pulls answered from the embedded history store: real-time data from the raw
//! rows, minute data from the minute rollups over the minute-data interval, hour and day
//! data from the minute rollups over local hours and days.
//!
//! Every record keeps its original collection time (an interval's start in the uplink's
//! zone). An interval whose readings were all bad is sent with flag `B` and no value: the
//! rollup keeps how many readings were bad, not why.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use tracing::warn;

use super::centre::HistorySource;
use crate::model::{Quality, Timestamp};
use crate::sinks::history::{HistoryReader, MinuteRow};
use crate::sinks::uplink::{Codes, RecordKind, Stats, UplinkRecord, time};

/// One point an uplink reports, with its regulator codes.
#[derive(Debug, Clone)]
pub struct HistoryPoint {
    /// The gateway's point id.
    pub name: Arc<str>,
    /// The regulator's codes (`point` is the HJ 212 factor code).
    pub codes: Codes,
    /// Engineering unit.
    pub unit: Arc<str>,
}

/// Answers pulls from a [`HistoryReader`].
#[derive(Debug)]
pub struct StoreHistory {
    reader: Arc<HistoryReader>,
    points: Vec<HistoryPoint>,
    zone: TimeZone,
    /// Most rows read per point and pull, so one pull cannot exhaust memory.
    limit: usize,
}

const MS_PER_MINUTE: i64 = 60_000;

impl StoreHistory {
    /// A source over `reader` for `points`, with intervals aligned in `zone`; at most
    /// `limit` stored rows per point and pull.
    pub fn new(reader: Arc<HistoryReader>, points: Vec<HistoryPoint>, zone: TimeZone, limit: usize) -> Self {
        Self {
            reader,
            points,
            zone,
            limit,
        }
    }

    fn record(&self, p: &HistoryPoint, kind: RecordKind, time: Timestamp) -> UplinkRecord {
        UplinkRecord {
            kind,
            point: p.name.clone(),
            codes: p.codes.clone(),
            unit: p.unit.clone(),
            time,
            value: None,
            quality: Quality::Good,
            stats: None,
            alarm: None,
            meta: None,
        }
    }

    fn truncated(&self, p: &HistoryPoint, rows: usize) {
        if rows >= self.limit {
            warn!(point = %p.name, limit = self.limit, "History pull truncated at the row limit");
        }
    }
}

/// Start of the interval holding `ms`, in milliseconds: `minutes`-minute steps from local
/// midnight, a local hour or a local day.
pub fn interval_start(ms: i64, kind: RecordKind, minutes: u32, zone: &TimeZone) -> i64 {
    let local = time::local(Timestamp::from_millis(ms), zone);
    let dt = local.datetime();
    let (hour, minute) = match kind {
        RecordKind::Day => (0, 0),
        RecordKind::Hour => (dt.hour(), 0),
        _ => {
            let of_day = i32::from(dt.hour()) * 60 + i32::from(dt.minute());
            let step = i32::try_from(minutes.max(1)).unwrap_or(1);
            let start = of_day / step * step;
            ((start / 60) as i8, (start % 60) as i8)
        }
    };
    let start = jiff::civil::DateTime::new(dt.year(), dt.month(), dt.day(), hour, minute, 0, 0)
        .ok()
        .and_then(|c| c.to_zoned(zone.clone()).ok());
    match start {
        Some(z) => z.timestamp().as_millisecond(),
        None => ms - ms.rem_euclid(MS_PER_MINUTE),
    }
}

/// Merges minute rows into intervals: min of mins, max of maxes, mean weighted by count.
fn merge(rows: &[MinuteRow], kind: RecordKind, minutes: u32, zone: &TimeZone) -> BTreeMap<i64, (Option<Stats>, u64)> {
    let mut out: BTreeMap<i64, (Option<Stats>, u64)> = BTreeMap::new();
    for r in rows {
        let start = interval_start(r.ts_ms, kind, minutes, zone);
        let entry = out.entry(start).or_insert((None, 0));
        entry.1 += r.bad_count;
        let (Some(min), Some(avg), Some(max)) = (r.min, r.avg, r.max) else {
            continue;
        };
        if r.count == 0 {
            continue;
        }
        entry.0 = Some(match entry.0 {
            None => Stats {
                min,
                avg,
                max,
                count: r.count,
            },
            Some(s) => {
                let count = s.count + r.count;
                Stats {
                    min: s.min.min(min),
                    max: s.max.max(max),
                    avg: (s.avg * s.count as f64 + avg * r.count as f64) / count as f64,
                    count,
                }
            }
        });
    }
    out
}

fn interval_len_ms(kind: RecordKind, minutes: u32) -> i64 {
    match kind {
        RecordKind::Day => 25 * 60 * MS_PER_MINUTE,
        RecordKind::Hour => 60 * MS_PER_MINUTE,
        _ => i64::from(minutes.max(1)) * MS_PER_MINUTE,
    }
}

impl HistorySource for StoreHistory {
    fn records(
        &self,
        kind: RecordKind,
        begin: Timestamp,
        end: Timestamp,
        minutes: u32,
    ) -> Result<Vec<UplinkRecord>, String> {
        let mut out = Vec::new();
        match kind {
            RecordKind::Realtime => {
                for p in &self.points {
                    let rows = self
                        .reader
                        .query(&p.name, begin, end, self.limit)
                        .map_err(|e| e.to_string())?;
                    self.truncated(p, rows.len());
                    out.extend(rows.into_iter().map(|row| {
                        let mut r = self.record(p, kind, Timestamp::from_millis(row.ts_ms));
                        r.value = row.value;
                        r.quality = row.quality;
                        r
                    }));
                }
            }
            RecordKind::Minute | RecordKind::Hour | RecordKind::Day => {
                // An interval that starts inside the range may end after it: read its tail.
                let to = end.plus(std::time::Duration::from_millis(
                    u64::try_from(interval_len_ms(kind, minutes)).unwrap_or(0),
                ));
                let from = Timestamp::from_millis(interval_start(begin.as_millis(), kind, minutes, &self.zone));
                for p in &self.points {
                    let rows = self
                        .reader
                        .minutes(&p.name, from, to, self.limit)
                        .map_err(|e| e.to_string())?;
                    self.truncated(p, rows.len());
                    for (start, (stats, bad)) in merge(&rows, kind, minutes, &self.zone) {
                        let t = Timestamp::from_millis(start);
                        if t < begin || t > end {
                            continue;
                        }
                        let mut r = self.record(p, kind, t);
                        r.stats = stats;
                        if stats.is_none() && bad > 0 {
                            r.quality = Quality::CommFault;
                        }
                        out.push(r);
                    }
                }
            }
            RecordKind::Basic | RecordKind::Alarm => return Ok(Vec::new()),
        }
        // One message per collection time: order by time, points in their configured order.
        out.sort_by_key(|r| r.time.as_nanos());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> TimeZone {
        time::zone(time::DEFAULT_ZONE).unwrap()
    }

    /// 2016-08-01 08:58:57.223 in Shanghai.
    const T: i64 = 1_470_013_137_223;

    #[test]
    fn intervals_align_on_local_time() {
        let z = zone();
        let fmt = |ms| time::render(Timestamp::from_millis(ms), &z, "%Y-%m-%d %H:%M:%S");
        assert_eq!(fmt(interval_start(T, RecordKind::Minute, 1, &z)), "2016-08-01 08:58:00");
        assert_eq!(
            fmt(interval_start(T, RecordKind::Minute, 10, &z)),
            "2016-08-01 08:50:00"
        );
        assert_eq!(fmt(interval_start(T, RecordKind::Hour, 1, &z)), "2016-08-01 08:00:00");
        // Local midnight, not UTC midnight.
        assert_eq!(fmt(interval_start(T, RecordKind::Day, 1, &z)), "2016-08-01 00:00:00");
    }

    #[test]
    fn minutes_merge_into_weighted_intervals() {
        let z = zone();
        let m0 = interval_start(T, RecordKind::Hour, 1, &z);
        let row = |i: i64, min, avg, max, count, bad| MinuteRow {
            ts_ms: m0 + i * MS_PER_MINUTE,
            min: (count > 0).then_some(min),
            avg: (count > 0).then_some(avg),
            max: (count > 0).then_some(max),
            count,
            bad_count: bad,
        };
        let rows = [
            row(0, 1.0, 2.0, 3.0, 10, 0),
            row(1, 0.5, 5.0, 9.0, 30, 2),
            row(2, 0.0, 0.0, 0.0, 0, 60),
            row(61, 7.0, 7.0, 7.0, 1, 0),
        ];
        let got = merge(&rows, RecordKind::Hour, 1, &z);
        assert_eq!(got.len(), 2);
        let (first, bad) = got[&m0];
        let s = first.unwrap();
        assert_eq!((s.min, s.max, s.count, bad), (0.5, 9.0, 40, 62));
        assert!((s.avg - (2.0 * 10.0 + 5.0 * 30.0) / 40.0).abs() < 1e-12);
        assert_eq!(got[&(m0 + 60 * MS_PER_MINUTE)].0.unwrap().count, 1);
        // A minute with only bad readings adds no statistics.
        let dead = merge(&rows[2..3], RecordKind::Minute, 1, &z);
        assert_eq!(dead.values().next().unwrap(), &(None, 60));
    }
}
