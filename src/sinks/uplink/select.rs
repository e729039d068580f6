//! The select stage: turns live values, the reading stream, alarm transitions and the point
//! table into [`UplinkRecord`]s in regulator terms.
//!
//! - Real-time records come from a snapshot of the live state on the uplink's interval. A
//!   point whose last reading is not good (comm fault, decode error, stale) or that has never
//!   been read carries `value: None` and its quality; nothing is ever made up for it.
//! - Statistics are aggregated here from the reading stream, per point and per interval
//!   (minute interval, hour, local day in the uplink's zone): min/avg/max/count of good
//!   readings. An interval is sent once it has ended; one in which no good reading arrived is
//!   sent with no value and the quality of its last reading (or `stale` when nothing came).
//!   Statistics of an interval interrupted by a restart cover the part after the restart.
//! - Basic data (metadata) combines the point table, the code table and the threshold rules.
//! - Alarm records come from the alarm journal (the runner follows it with a cursor).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::build::BuildContext;
use super::config::{CodeTable, StatsPeriod};
use super::{BasicMeta, RecordKind, Stats, UplinkRecord};
use crate::model::{AlarmEvent, ConditionKind, Level, PointId, PointTable, Quality, Reading, SubjectKind, Timestamp};
use crate::rules::{RuleKind, RuleSpec};

/// Builds records for one uplink.
#[derive(Debug, Clone)]
pub struct Selector {
    points: PointTable,
    selected: Arc<[PointId]>,
    wanted: Vec<bool>,
    codes: Arc<CodeTable>,
    limits: BTreeMap<PointId, [Option<f64>; 4]>,
}

/// The value a reading may be reported with: good and out-of-range readings carry a measured
/// value; any other quality carries none.
pub fn reported_value(r: &Reading) -> Option<f64> {
    match r.quality {
        Quality::Good | Quality::Uncertain | Quality::Suspect | Quality::OutOfRange if r.value.is_finite() => {
            Some(r.value)
        }
        _ => None,
    }
}

impl Selector {
    /// A selector for the context's points, with thresholds from `rules`.
    pub fn new(ctx: &BuildContext, rules: &[RuleSpec]) -> Self {
        let mut wanted = vec![false; ctx.points.len()];
        for id in ctx.selected.iter() {
            wanted[id.index()] = true;
        }
        let mut limits: BTreeMap<PointId, [Option<f64>; 4]> = BTreeMap::new();
        for rule in rules {
            if let RuleKind::Threshold { point, limits: ls, .. } = &rule.kind {
                let slot = limits.entry(*point).or_default();
                for l in ls {
                    let i = match l.level {
                        Level::LowLow => 0,
                        Level::Low => 1,
                        Level::High => 2,
                        Level::HighHigh => 3,
                        _ => continue,
                    };
                    slot[i] = Some(l.value);
                }
            }
        }
        Self {
            points: ctx.points.clone(),
            selected: ctx.selected.clone(),
            wanted,
            codes: ctx.codes.clone(),
            limits,
        }
    }

    /// Whether `point` is sent by this uplink.
    pub fn wants(&self, point: PointId) -> bool {
        self.wanted.get(point.index()).copied().unwrap_or(false)
    }

    fn record(
        &self,
        id: PointId,
        kind: RecordKind,
        time: Timestamp,
        value: Option<f64>,
        quality: Quality,
    ) -> UplinkRecord {
        let meta = self.points.meta(id);
        UplinkRecord {
            kind,
            point: meta.name().clone(),
            codes: self.codes.codes(meta.name(), meta.hazard_source().map(|t| &**t)),
            unit: meta.unit().clone(),
            time,
            value,
            quality,
            stats: None,
            alarm: None,
            meta: None,
        }
    }

    /// Real-time records of the selected points from a live snapshot (`LiveState::readings`).
    pub fn realtime(&self, readings: &[(PointId, Option<Reading>)], now: Timestamp) -> Vec<UplinkRecord> {
        readings
            .iter()
            .filter(|(id, _)| self.wants(*id))
            .map(|(id, r)| match r {
                Some(r) => self.record(*id, RecordKind::Realtime, r.ts, reported_value(r), r.quality),
                None => self.record(*id, RecordKind::Realtime, now, None, Quality::Stale),
            })
            .collect()
    }

    /// Basic-data records of every selected point, stamped `now`.
    pub fn basic(&self, now: Timestamp) -> Vec<UplinkRecord> {
        self.selected
            .iter()
            .map(|id| {
                let meta = self.points.meta(*id);
                let (location, equipment) = self.codes.place(meta.name());
                let l = self.limits.get(id).copied().unwrap_or_default();
                let mut r = self.record(*id, RecordKind::Basic, now, None, Quality::Good);
                r.meta = Some(Box::new(BasicMeta {
                    range: meta.range(),
                    low_low: l[0],
                    low: l[1],
                    high: l[2],
                    high_high: l[3],
                    kind: Arc::from(meta.kind().as_str()),
                    location: location.or_else(|| meta.description().cloned()),
                    equipment: equipment.or_else(|| Some(meta.device().clone())),
                }));
                r
            })
            .collect()
    }

    /// The record of an alarm transition, if this uplink sends it: point alarms of selected
    /// points, and device and group alarms (not the gateway's self-diagnostics). Fault conditions carry no value.
    pub fn alarm(&self, e: &AlarmEvent, current: Option<&Reading>) -> Option<UplinkRecord> {
        // The gateway's own faults are for its operators (console, webhooks, northbound MQTT),
        // not a monitored condition of the plant a regulator's platform has a code for.
        if e.condition.is_self_diagnostic() {
            return None;
        }
        let point = match e.subject_kind {
            SubjectKind::Point => {
                let id = self.points.id_of(&e.subject)?;
                if !self.wants(id) {
                    return None;
                }
                Some(id)
            }
            SubjectKind::Device | SubjectKind::Group => None,
        };
        let fault = matches!(
            e.condition,
            ConditionKind::Stale | ConditionKind::SensorFault | ConditionKind::Communication
        );
        let value = (!fault && e.value.is_finite()).then_some(e.value);
        let quality = match (e.condition, current) {
            (ConditionKind::Communication, _) => Quality::CommFault,
            (ConditionKind::Stale, _) => Quality::Stale,
            (_, Some(r)) if fault => r.quality,
            (ConditionKind::SensorFault, None) => Quality::OutOfRange,
            _ => Quality::Good,
        };
        let mut r = match point {
            Some(id) => self.record(id, RecordKind::Alarm, e.ts, value, quality),
            None => UplinkRecord {
                kind: RecordKind::Alarm,
                point: Arc::from(e.subject.as_str()),
                codes: self.codes.codes(&e.subject, e.hazard_source.as_deref()),
                unit: Arc::from(e.unit.as_str()),
                time: e.ts,
                value,
                quality,
                stats: None,
                alarm: None,
                meta: None,
            },
        };
        r.alarm = Some(Box::new(e.clone()));
        Some(r)
    }
}

/// Running min/avg/max/count of one point in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last_bad: Option<Quality>,
}

impl Acc {
    fn add(&mut self, r: &Reading) {
        match reported_value(r) {
            Some(v) if r.quality == Quality::Good => {
                if self.count == 0 {
                    self.min = v;
                    self.max = v;
                } else {
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                }
                self.count += 1;
                self.sum += v;
                self.last_bad = None;
            }
            _ => self.last_bad = Some(r.quality),
        }
    }
}

/// Statistics of the selected points over the configured periods.
#[derive(Debug)]
pub struct StatsWindow {
    periods: Vec<StatsPeriod>,
    zone: TimeZone,
    minute: Duration,
    buckets: BTreeMap<(StatsPeriod, Timestamp), BTreeMap<PointId, Acc>>,
    /// Readings that arrived for an interval already sent (counted by the runner).
    pub late: u64,
    sent_until: BTreeMap<StatsPeriod, Timestamp>,
}

impl StatsWindow {
    /// Aggregates `periods` (`minute` being `minute` long) with day boundaries in `zone`.
    pub fn new(periods: Vec<StatsPeriod>, minute: Duration, zone: TimeZone) -> Self {
        Self {
            periods,
            zone,
            minute,
            buckets: BTreeMap::new(),
            late: 0,
            sent_until: BTreeMap::new(),
        }
    }

    /// Changes the minute interval (applies to intervals that start from now on).
    pub fn set_minute(&mut self, minute: Duration) {
        self.minute = minute.max(Duration::from_secs(60));
    }

    /// Whether any statistics are wanted.
    pub fn is_active(&self) -> bool {
        !self.periods.is_empty()
    }

    /// Start of the interval of `period` that holds `ts`.
    pub fn start_of(&self, period: StatsPeriod, ts: Timestamp) -> Timestamp {
        let local = super::time::local(ts, &self.zone);
        let day = local.start_of_day().map(|z| z.timestamp()).unwrap_or(local.timestamp());
        let day = Timestamp::from_nanos(i64::try_from(day.as_nanosecond()).unwrap_or(0));
        let step = match period {
            StatsPeriod::Day => return day,
            StatsPeriod::Hour => 3600 * 1_000_000_000i64,
            StatsPeriod::Minute => i64::try_from(self.minute.as_nanos()).unwrap_or(60_000_000_000),
        };
        let into = ts.as_nanos() - day.as_nanos();
        Timestamp::from_nanos(day.as_nanos() + into.div_euclid(step) * step)
    }

    /// Start of the interval after the one starting at `start`.
    pub fn end_of(&self, period: StatsPeriod, start: Timestamp) -> Timestamp {
        match period {
            StatsPeriod::Day => {
                let local = super::time::local(start, &self.zone);
                let next = local
                    .tomorrow()
                    .and_then(|t| t.start_of_day())
                    .map(|z| z.timestamp().as_nanosecond())
                    .unwrap_or(i128::from(start.as_nanos()) + 86_400_000_000_000);
                Timestamp::from_nanos(i64::try_from(next).unwrap_or(i64::MAX))
            }
            StatsPeriod::Hour => start.plus(Duration::from_secs(3600)),
            StatsPeriod::Minute => start.plus(self.minute),
        }
    }

    /// Adds a reading of a selected point.
    pub fn add(&mut self, r: &Reading) {
        for i in 0..self.periods.len() {
            let period = self.periods[i];
            let start = self.start_of(period, r.ts);
            if self.sent_until.get(&period).is_some_and(|s| start < *s) {
                self.late += 1;
                continue;
            }
            self.buckets
                .entry((period, start))
                .or_default()
                .entry(r.point)
                .or_default()
                .add(r);
        }
    }

    /// When the earliest interval still open ends (the runner wakes then): an interval that
    /// holds readings and is not yet sent counts even once `now` is past its end, so readings
    /// arriving just after a boundary cannot push its sending to the next boundary.
    pub fn next_due(&self, now: Timestamp) -> Option<Timestamp> {
        let pending = self.buckets.keys().map(|(p, start)| self.end_of(*p, *start));
        let upcoming = self.periods.iter().map(|p| self.end_of(*p, self.start_of(*p, now)));
        pending.chain(upcoming).min()
    }

    /// Records of every interval that ended by `now`, for the `selected` points, oldest first.
    pub fn take_due(&mut self, now: Timestamp, sel: &Selector) -> Vec<UplinkRecord> {
        let mut out = Vec::new();
        let due: Vec<(StatsPeriod, Timestamp)> = self
            .buckets
            .keys()
            .filter(|(p, start)| self.end_of(*p, *start) <= now)
            .copied()
            .collect();
        for key in due {
            let Some(accs) = self.buckets.remove(&key) else {
                continue;
            };
            let (period, start) = key;
            let until = self.end_of(period, start);
            let e = self.sent_until.entry(period).or_insert(until);
            *e = (*e).max(until);
            let kind = match period {
                StatsPeriod::Minute => RecordKind::Minute,
                StatsPeriod::Hour => RecordKind::Hour,
                StatsPeriod::Day => RecordKind::Day,
            };
            for id in sel.selected.iter() {
                let acc = accs.get(id).copied().unwrap_or_default();
                let (value, quality, stats) = if acc.count > 0 {
                    let avg = acc.sum / acc.count as f64;
                    (
                        Some(avg),
                        Quality::Good,
                        Some(Stats {
                            min: acc.min,
                            avg,
                            max: acc.max,
                            count: acc.count,
                        }),
                    )
                } else {
                    (None, acc.last_bad.unwrap_or(Quality::Stale), None)
                };
                let mut r = sel.record(*id, kind, start, value, quality);
                r.stats = stats;
                out.push(r);
            }
        }
        // Oldest interval first; within one, minute before hour before day (stable sort).
        out.sort_by_key(|r| r.time);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::{PointKind, PointMeta};
    use crate::sinks::uplink::build::SharedInterval;
    use crate::telemetry::uplink::UplinkMetrics;
    use tokio_util::sync::CancellationToken;

    fn ctx() -> BuildContext {
        let mut points = PointTable::default();
        let mut selected = Vec::new();
        for name in ["T1/gas", "T1/temp", "T2/gas"] {
            let id = points
                .insert(PointMeta {
                    name: Arc::from(name),
                    unit: Arc::from("%LEL"),
                    kind: PointKind::Gas,
                    device: Arc::from("T1"),
                    hazard_source: Some(Arc::from("MHS-1")),
                    range: Some((0.0, 100.0)),
                    description: None,
                })
                .unwrap();
            if name != "T2/gas" {
                selected.push(id);
            }
        }
        BuildContext {
            uplink: "u".into(),
            spec: Arc::new(spec()),
            gateway: "gw".into(),
            zone: super::super::time::zone("Asia/Shanghai").unwrap(),
            points,
            selected: selected.into(),
            codes: Arc::new(CodeTable {
                enterprise: Arc::from("E1"),
                hazard_sources: BTreeMap::new(),
                points: BTreeMap::new(),
            }),
            history: None,
            clock: crate::clock::system(),
            metrics: UplinkMetrics::default(),
            data_dir: PathBuf::from("."),
            config_dir: PathBuf::from("."),
            realtime_interval: SharedInterval::new(Duration::from_secs(30)),
            minute_interval: SharedInterval::new(Duration::from_secs(60)),
            stop: CancellationToken::new(),
        }
    }

    fn spec() -> crate::sinks::uplink::UplinkSpec {
        let text = r#"
[gateway]
id = "gw"
[[devices]]
name = "T1"
profile = "ai4-gas-lel"
transport = { tcp = "127.0.0.1:502" }
points = { ch1 = "T1/gas" }
[[uplinks]]
name = "u"
realtime_interval = "30s"
codes = { enterprise = "E1" }
encoder = { type = "json" }
transport = { type = "tcp", address = "127.0.0.1:9000" }
"#;
        let cfg = crate::config::GatewayConfig::parse(std::path::Path::new("t.toml"), text).unwrap();
        cfg.uplinks[0].clone()
    }

    fn reading(point: u32, ms: i64, value: f64, quality: Quality, ctx: &BuildContext) -> Reading {
        let name = ["T1/gas", "T1/temp", "T2/gas"][point as usize];
        Reading {
            point: ctx.points.id_of(name).unwrap(),
            ts: Timestamp::from_millis(ms),
            value,
            quality,
        }
    }

    #[test]
    fn realtime_reports_faults_without_values_and_skips_unselected_points() {
        let c = ctx();
        let sel = Selector::new(&c, &[]);
        let snapshot: Vec<(PointId, Option<Reading>)> = vec![
            (
                c.points.id_of("T1/gas").unwrap(),
                Some(reading(0, 1000, 12.0, Quality::Good, &c)),
            ),
            (
                c.points.id_of("T1/temp").unwrap(),
                Some(reading(1, 1000, 0.0, Quality::CommFault, &c)),
            ),
            (
                c.points.id_of("T2/gas").unwrap(),
                Some(reading(2, 1000, 5.0, Quality::Good, &c)),
            ),
        ];
        let recs = sel.realtime(&snapshot, Timestamp::from_millis(5000));
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].value, recs[0].quality), (Some(12.0), Quality::Good));
        assert_eq!((recs[1].value, recs[1].quality), (None, Quality::CommFault));
        assert_eq!(recs[1].time, Timestamp::from_millis(1000));
        let never: Vec<(PointId, Option<Reading>)> = vec![(c.points.id_of("T1/gas").unwrap(), None)];
        let recs = sel.realtime(&never, Timestamp::from_millis(5000));
        assert_eq!((recs[0].value, recs[0].quality), (None, Quality::Stale));
    }

    #[test]
    fn minute_statistics_count_good_readings_only_and_report_dead_points() {
        let c = ctx();
        let sel = Selector::new(&c, &[]);
        let mut w = StatsWindow::new(vec![StatsPeriod::Minute], Duration::from_secs(60), c.zone.clone());
        let m0 = 1_700_000_040_000i64; // a whole minute
        assert_eq!(
            w.start_of(StatsPeriod::Minute, Timestamp::from_millis(m0 + 59_000))
                .as_millis(),
            m0
        );
        for (i, v) in [3.0, 9.0, 6.0].iter().enumerate() {
            w.add(&reading(0, m0 + i as i64 * 1000, *v, Quality::Good, &c));
        }
        w.add(&reading(0, m0 + 5000, 99.0, Quality::DecodeError, &c));
        w.add(&reading(1, m0 + 5000, 0.0, Quality::CommFault, &c));
        assert!(w.take_due(Timestamp::from_millis(m0 + 59_999), &sel).is_empty());
        // Past the boundary the ended minute is still due, not the next one.
        assert_eq!(
            w.next_due(Timestamp::from_millis(m0 + 60_500)).map(|t| t.as_millis()),
            Some(m0 + 60_000)
        );
        let recs = w.take_due(Timestamp::from_millis(m0 + 60_000), &sel);
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0].stats,
            Some(Stats {
                min: 3.0,
                avg: 6.0,
                max: 9.0,
                count: 3
            })
        );
        assert_eq!(recs[0].time.as_millis(), m0);
        assert_eq!(
            (recs[1].value, recs[1].quality, recs[1].stats),
            (None, Quality::CommFault, None)
        );
        w.add(&reading(0, m0 + 1000, 1.0, Quality::Good, &c));
        assert_eq!(w.late, 1);
    }

    #[test]
    fn an_interval_with_readings_stays_due_after_its_boundary() {
        let c = ctx();
        let mut w = StatsWindow::new(vec![StatsPeriod::Minute], Duration::from_secs(60), c.zone.clone());
        let m0 = 1_700_000_040_000i64;
        w.add(&reading(0, m0 + 59_900, 1.0, Quality::Good, &c));
        // 100 ms past the boundary (a reading woke the runner): the first minute is still due.
        let past = Timestamp::from_millis(m0 + 60_100);
        assert_eq!(w.next_due(past).map(|t| t.as_millis()), Some(m0 + 60_000));
    }

    #[test]
    fn days_begin_at_local_midnight_in_the_uplink_zone() {
        let c = ctx();
        let w = StatsWindow::new(vec![StatsPeriod::Day], Duration::from_secs(60), c.zone.clone());
        // 2016-08-01 00:58:57 UTC is 08:58:57 in Shanghai; its day began 2016-07-31 16:00 UTC.
        let start = w.start_of(StatsPeriod::Day, Timestamp::from_millis(1_470_013_137_223));
        assert_eq!(start.as_millis(), 1_469_980_800_000);
        assert_eq!(
            w.end_of(StatsPeriod::Day, start).as_millis(),
            1_469_980_800_000 + 86_400_000
        );
    }
}
