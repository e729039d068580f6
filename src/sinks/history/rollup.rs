//! Per-minute rollups: min/avg/max/count over every good reading of a minute, and a count of
//! the readings that were not good. Pure accumulation; the store merges what it is handed.

pub use super::codec::MinuteSample;
use crate::model::{PointId, Reading, Timestamp};

/// Nanoseconds in a minute.
pub const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// The minute (since the epoch) a timestamp falls in.
pub fn minute_of(ts: Timestamp) -> i64 {
    ts.as_nanos().div_euclid(NANOS_PER_MINUTE)
}

/// Aggregate of one point over one minute.
///
/// Design: two aggregates of the same point and minute merge exactly (min of mins, max of
/// maxes, sums and counts added), so a minute may be written in several parts (late
/// readings, a restart in mid-minute) and the stored row is still the minute's aggregate.
/// The statistics are the same [`MinuteSample`] the block codec packs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteAgg {
    /// Which point.
    pub point: PointId,
    /// The minute and its statistics.
    pub stats: MinuteSample,
}

impl MinuteAgg {
    fn empty(point: PointId, minute: i64) -> Self {
        Self {
            point,
            stats: MinuteSample::empty(minute),
        }
    }

    /// Adds one reading of the same point and minute.
    pub fn add(&mut self, r: &Reading) {
        self.stats.add(r.value, r.quality);
    }

    /// Merges another part of the same point and minute.
    pub fn merge(&mut self, other: &MinuteAgg) {
        self.stats.merge(&other.stats);
    }
}

/// Counted reading times remembered per point to drop repeats.
const RECENT: usize = 16;

/// The open minute of every point.
#[derive(Debug, Clone, Default)]
pub struct Rollups {
    /// By point index.
    open: Vec<Open>,
    /// Times of each point's last [`RECENT`] counted readings: a reading delivered again with
    /// one of them (an MQTT redelivery after a reconnect, a device answering with an
    /// unchanged timestamp) is the same reading and counts once, as raw history keeps it once.
    recent: Recent,
}

/// A point's open minute in 48 bytes, where an `Option<MinuteAgg>` takes 72: no `Option`s
/// (`count` and `bad` both 0: no open minute, and the other fields mean nothing; `count` 0:
/// no min or max), and the count of bad readings in 32 bits (a minute with more is handed on
/// in parts, which merge exactly).
#[derive(Debug, Clone, Copy)]
struct Open {
    minute: i64,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
    bad: u32,
    point: PointId,
}

impl Open {
    /// No open minute (`point` is any: it means nothing until a minute opens).
    fn none(point: PointId) -> Self {
        Self::from_agg(&MinuteAgg::empty(point, 0))
    }

    /// A minute opened by `r`.
    fn start(r: &Reading, minute: i64) -> Self {
        let mut a = MinuteAgg::empty(r.point, minute);
        a.add(r);
        Self::from_agg(&a)
    }

    fn is_open(&self) -> bool {
        self.count > 0 || self.bad > 0
    }

    fn agg(&self) -> MinuteAgg {
        let good = self.count > 0;
        MinuteAgg {
            point: self.point,
            stats: MinuteSample {
                minute: self.minute,
                min: good.then_some(self.min),
                max: good.then_some(self.max),
                sum: self.sum,
                count: self.count,
                bad: u64::from(self.bad),
            },
        }
    }

    /// `a` as an open minute; `a.stats.bad` fits (see [`Open::add`]).
    fn from_agg(a: &MinuteAgg) -> Self {
        let s = &a.stats;
        Self {
            minute: s.minute,
            min: s.min.unwrap_or(0.0),
            max: s.max.unwrap_or(0.0),
            sum: s.sum,
            count: s.count,
            bad: u32::try_from(s.bad).unwrap_or(u32::MAX),
            point: a.point,
        }
    }

    /// Counts `r` in the open minute, which is `r`'s; a part whose bad count is full is
    /// pushed onto `closed` first.
    fn add(&mut self, r: &Reading, closed: &mut Vec<MinuteAgg>) {
        let mut a = self.agg();
        if self.bad == u32::MAX {
            closed.push(a);
            a = MinuteAgg::empty(r.point, a.stats.minute);
        }
        a.add(r);
        *self = Self::from_agg(&a);
    }
}

/// The last [`RECENT`] counted reading times of every point, in flat arrays by point index
/// rather than one allocation per point.
///
/// Design: a point keeps its newest counted time in full and the `RECENT - 1` steps between
/// consecutive counted times in [`STEP_BYTES`] bytes each (100 bytes a point where the times
/// in full take 128); the older times are the newest less the steps, exactly. A point with a
/// step too long for that (two counted readings more than about 39 hours apart, or a clock
/// that jumped as far) keeps its times in full from then on, so the answer is always the
/// one the full times give.
#[derive(Debug, Clone, Default)]
struct Recent {
    /// Per point: the newest counted time (meaningless while `len` is 0).
    newest: Vec<Timestamp>,
    /// `RECENT - 1` slots per point: a point's steps are `len - 1` slots from `head`, oldest
    /// first, wrapping; a step is a later time less the one counted before it.
    steps: Vec<[u8; STEP_BYTES]>,
    /// Per point: the oldest step's slot and how many times are remembered.
    rings: Vec<Ring>,
    /// The times of points whose steps did not fit, in full.
    wide: std::collections::HashMap<usize, WideRing>,
}

/// Bytes of a step: a signed count of nanoseconds, up to about ±39 hours.
const STEP_BYTES: usize = 6;

/// Step slots per point.
const STEPS: usize = RECENT - 1;

#[derive(Debug, Clone, Copy, Default)]
struct Ring {
    head: u8,
    len: u8,
}

/// A point's last [`RECENT`] counted times in full: `len` slots from `head`, wrapping.
#[derive(Debug, Clone, Copy)]
struct WideRing {
    times: [Timestamp; RECENT],
    head: usize,
    len: usize,
}

impl WideRing {
    fn contains(&self, ts: Timestamp) -> bool {
        (0..self.len).any(|k| self.times[(self.head + k) % RECENT] == ts)
    }

    /// Remembers `ts`, forgetting the oldest time once full.
    fn push(&mut self, ts: Timestamp) {
        if self.len == RECENT {
            self.times[self.head] = ts;
            self.head = (self.head + 1) % RECENT;
        } else {
            self.times[(self.head + self.len) % RECENT] = ts;
            self.len += 1;
        }
    }
}

/// `d` in [`STEP_BYTES`] bytes, if it fits.
fn encode_step(d: i64) -> Option<[u8; STEP_BYTES]> {
    let bits = 8 * STEP_BYTES as u32;
    let (lo, hi) = (-(1i64 << (bits - 1)), 1i64 << (bits - 1));
    if d < lo || d >= hi {
        return None;
    }
    let mut out = [0u8; STEP_BYTES];
    out.copy_from_slice(&d.to_le_bytes()[..STEP_BYTES]);
    Some(out)
}

fn decode_step(step: [u8; STEP_BYTES]) -> i64 {
    let mut full = [0u8; 8];
    full[..STEP_BYTES].copy_from_slice(&step);
    let shift = 64 - 8 * STEP_BYTES as u32;
    (i64::from_le_bytes(full) << shift) >> shift
}

impl Recent {
    fn with_points(points: usize) -> Self {
        Self {
            newest: vec![Timestamp::from_nanos(0); points],
            steps: vec![[0; STEP_BYTES]; points * STEPS],
            rings: vec![Ring::default(); points],
            wide: std::collections::HashMap::new(),
        }
    }

    /// Point `i`'s remembered times, newest first.
    fn times(&self, i: usize) -> impl Iterator<Item = Timestamp> + '_ {
        let ring = self.rings[i];
        let steps = &self.steps[i * STEPS..(i + 1) * STEPS];
        let (head, len) = (usize::from(ring.head), usize::from(ring.len));
        let mut at = self.newest[i].as_nanos();
        let older = (0..len.saturating_sub(1)).rev().map(move |k| {
            at = at.wrapping_sub(decode_step(steps[(head + k) % STEPS]));
            Timestamp::from_nanos(at)
        });
        (len > 0).then_some(self.newest[i]).into_iter().chain(older)
    }

    /// Remembers `ts` for point `i`, forgetting its oldest time once full; false if `ts` is
    /// already remembered.
    fn insert(&mut self, i: usize, ts: Timestamp) -> bool {
        if self.rings.len() <= i {
            self.rings.resize(i + 1, Ring::default());
            self.newest.resize(i + 1, Timestamp::from_nanos(0));
            self.steps.resize((i + 1) * STEPS, [0; STEP_BYTES]);
        }
        if let Some(w) = self.wide.get_mut(&i) {
            if w.contains(ts) {
                return false;
            }
            w.push(ts);
            return true;
        }
        if self.times(i).any(|t| t == ts) {
            return false;
        }
        let ring = self.rings[i];
        let (head, len) = (usize::from(ring.head), usize::from(ring.len));
        if len == 0 {
            self.newest[i] = ts;
            self.rings[i].len = 1;
            return true;
        }
        let Some(step) = ts
            .as_nanos()
            .checked_sub(self.newest[i].as_nanos())
            .and_then(encode_step)
        else {
            // Too far from the newest time for a step: this point's times in full from now on.
            let mut w = WideRing {
                times: [Timestamp::from_nanos(0); RECENT],
                head: 0,
                len: 0,
            };
            let mut times: Vec<Timestamp> = self.times(i).collect();
            times.reverse();
            for t in times {
                w.push(t);
            }
            w.push(ts);
            self.wide.insert(i, w);
            self.rings[i] = Ring::default();
            return true;
        };
        let steps = &mut self.steps[i * STEPS..(i + 1) * STEPS];
        if len == RECENT {
            // The oldest time goes, and with it the step after it.
            steps[head] = step;
            self.rings[i].head = ((head + 1) % STEPS) as u8;
        } else {
            steps[(head + len - 1) % STEPS] = step;
            self.rings[i].len += 1;
        }
        self.newest[i] = ts;
        true
    }
}

impl Rollups {
    /// Open minutes for `points` points (more grow it).
    pub fn with_points(points: usize) -> Self {
        Self {
            open: Vec::with_capacity(points),
            recent: Recent::with_points(points),
        }
    }

    /// Counts `r` into its point's open minute, unless it repeats the point's last counted
    /// reading; a reading of another minute closes the open one, which is pushed onto
    /// `closed`.
    pub fn add(&mut self, r: &Reading, closed: &mut Vec<MinuteAgg>) {
        let i = r.point.index();
        if self.open.len() <= i {
            self.open.resize(i + 1, Open::none(r.point));
        }
        if !self.recent.insert(i, r.ts) {
            return;
        }
        let minute = minute_of(r.ts);
        let slot = &mut self.open[i];
        if slot.is_open() && slot.minute == minute {
            slot.add(r, closed);
        } else {
            if slot.is_open() {
                closed.push(slot.agg());
            }
            *slot = Open::start(r, minute);
        }
    }

    /// Closes every open minute that started before `minute`.
    pub fn close_before(&mut self, minute: i64, closed: &mut Vec<MinuteAgg>) {
        for slot in &mut self.open {
            if slot.is_open() && slot.minute < minute {
                closed.push(slot.agg());
                *slot = Open::none(slot.point);
            }
        }
    }

    /// Readings counted in minutes not yet closed.
    pub fn pending(&self) -> u64 {
        self.open
            .iter()
            .filter(|o| o.is_open())
            .map(|o| o.count + u64::from(o.bad))
            .sum()
    }

    /// Closes every open minute (at shutdown).
    pub fn close_all(&mut self, closed: &mut Vec<MinuteAgg>) {
        for slot in &mut self.open {
            if slot.is_open() {
                closed.push(slot.agg());
                *slot = Open::none(slot.point);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointTable;
    use crate::model::Quality;

    fn point() -> PointId {
        let mut t = PointTable::default();
        t.insert(crate::model::PointMeta {
            name: "p".into(),
            unit: "m".into(),
            kind: crate::model::PointKind::Level,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        })
        .unwrap()
    }

    fn reading(point: PointId, secs: i64, value: f64, quality: Quality) -> Reading {
        Reading {
            point,
            ts: Timestamp::from_millis(secs * 1000),
            value,
            quality,
        }
    }

    #[test]
    fn a_reading_delivered_again_with_the_same_time_counts_once() {
        let p = point();
        let mut r = Rollups::default();
        let mut closed = Vec::new();
        for s in [60, 61, 61, 62, 61, 59] {
            r.add(&reading(p, s, 1.0, Quality::Good), &mut closed);
        }
        r.close_all(&mut closed);
        // Both repeats of 61 are dropped, even after 62; 59 is a late reading, counted.
        assert_eq!((closed[0].stats.minute, closed[0].stats.count), (1, 3));
        assert_eq!((closed[1].stats.minute, closed[1].stats.count), (0, 1));
    }

    /// Which of `times` count, remembering the last [`RECENT`] in full: the reference.
    fn counted_in_full(times: &[i64]) -> Vec<bool> {
        let mut kept = std::collections::VecDeque::new();
        let count = |t: &i64| {
            if kept.contains(t) {
                return false;
            }
            if kept.len() == RECENT {
                kept.pop_front();
            }
            kept.push_back(*t);
            true
        };
        times.iter().map(count).collect()
    }

    fn counted(times: &[i64]) -> Vec<bool> {
        let mut recent = Recent::with_points(1);
        // Point 1 is not in the table yet: it grows.
        times
            .iter()
            .map(|&t| recent.insert(1, Timestamp::from_nanos(t)))
            .collect()
    }

    #[test]
    fn times_far_apart_are_remembered_in_full() {
        let hour = 3_600_000_000_000i64;
        let times = [0, 1, 50 * hour, 1, 0, 50 * hour, -100 * hour, 2, 1, 50 * hour + 1];
        assert_eq!(counted(&times), counted_in_full(&times));
        assert_eq!(
            counted(&times),
            [true, true, true, false, false, false, true, true, false, true]
        );
    }

    proptest::proptest! {
        #[test]
        fn repeats_are_found_as_with_every_time_in_full(
            moves in proptest::collection::vec((0u8..6, -3i64..20), 1..150)
        ) {
            // Steps of seconds and nanoseconds (late readings when negative), a time sent
            // again from up to twenty readings back, and sometimes a jump about as long as a
            // step can hold, or longer.
            let mut times: Vec<i64> = Vec::new();
            let mut t = 1_765_000_000_000_000_000i64;
            for &(kind, n) in &moves {
                match kind {
                    0 | 1 => t += n * 1_000_000_000,
                    2 => t += n,
                    3 if !times.is_empty() => {
                        let back = (n.unsigned_abs() as usize) % times.len();
                        t = times[times.len() - 1 - back];
                    }
                    3 => {}
                    4 => t += n.signum() * ((1i64 << 47) - 1),
                    _ => t += n.signum() * (1i64 << 47),
                }
                times.push(t);
            }
            proptest::prop_assert_eq!(counted(&times), counted_in_full(&times));
        }
    }

    #[test]
    fn an_open_minute_stays_small() {
        // One per point, a plant has tens of thousands.
        assert_eq!(std::mem::size_of::<Open>(), 48);
    }

    #[test]
    fn a_minute_with_more_bad_readings_than_fit_is_handed_on_in_parts_that_merge_exactly() {
        let p = point();
        let mut r = Rollups::with_points(1);
        let mut closed = Vec::new();
        r.add(&reading(p, 60, 3.0, Quality::Good), &mut closed);
        r.open[0].bad = u32::MAX - 1;
        for (s, v, q) in [
            (61, 0.0, Quality::CommFault),
            (62, 0.0, Quality::Stale),
            (63, 5.0, Quality::Good),
        ] {
            r.add(&reading(p, s, v, q), &mut closed);
        }
        r.close_all(&mut closed);
        assert_eq!(closed.len(), 2);
        let mut whole = closed[0];
        whole.merge(&closed[1]);
        assert_eq!(
            (
                whole.stats.minute,
                whole.stats.count,
                whole.stats.bad,
                whole.stats.min,
                whole.stats.max
            ),
            (1, 2, u64::from(u32::MAX) + 1, Some(3.0), Some(5.0))
        );
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn only_the_last_sixteen_counted_times_are_remembered() {
        let p = point();
        let mut r = Rollups::with_points(1);
        let mut closed = Vec::new();
        // 0..=16 fill the 16 remembered times and push 0 out; 0 then counts again and pushes
        // 1 out, 5 is a repeat, 1 counts again.
        for s in (0..=16).chain([0, 5, 1, 16, 0]) {
            r.add(&reading(p, s, 1.0, Quality::Good), &mut closed);
        }
        r.close_all(&mut closed);
        assert_eq!((closed.len(), closed[0].stats.count), (1, 19));
    }

    #[test]
    fn a_minute_aggregates_good_readings_and_counts_bad_ones_apart() {
        let p = point();
        let mut r = Rollups::default();
        let mut closed = Vec::new();
        for (s, v, q) in [
            (60, 4.0, Quality::Good),
            (70, 1.0, Quality::Good),
            (80, 99.0, Quality::OutOfRange),
            (90, f64::NAN, Quality::CommFault),
            (100, 7.0, Quality::Good),
            (119, f64::NAN, Quality::Good),
        ] {
            r.add(&reading(p, s, v, q), &mut closed);
        }
        assert!(closed.is_empty(), "the minute is still open");
        r.add(&reading(p, 120, 5.0, Quality::Good), &mut closed);
        let m = closed[0].stats;
        assert_eq!(
            (m.minute, m.min, m.max, m.count, m.bad),
            (1, Some(1.0), Some(7.0), 3, 3)
        );
        assert_eq!(m.avg(), Some(4.0));
    }

    #[test]
    fn a_minute_of_only_bad_readings_has_no_value_but_a_count() {
        let p = point();
        let mut agg = MinuteAgg::empty(p, 0);
        agg.add(&reading(p, 1, f64::NAN, Quality::CommFault));
        let m = agg.stats;
        assert_eq!((m.min, m.max, m.avg(), m.count, m.bad), (None, None, None, 0, 1));
    }

    #[test]
    fn parts_of_a_minute_merge_into_the_whole_minute() {
        let p = point();
        let values = [3.0, -2.0, 8.5, 0.25, 1.0];
        let mut whole = MinuteAgg::empty(p, 0);
        let mut first = MinuteAgg::empty(p, 0);
        let mut second = MinuteAgg::empty(p, 0);
        for (i, v) in values.iter().enumerate() {
            let r = reading(p, i as i64, *v, Quality::Good);
            whole.add(&r);
            if i < 2 { first.add(&r) } else { second.add(&r) }
        }
        second.add(&reading(p, 9, f64::NAN, Quality::Stale));
        whole.add(&reading(p, 9, f64::NAN, Quality::Stale));
        first.merge(&second);
        assert_eq!(first, whole);
        let mut empty = MinuteAgg::empty(p, 0);
        empty.merge(&whole);
        assert_eq!(empty, whole);
    }

    #[test]
    fn idle_minutes_close_on_the_clock_and_all_close_at_shutdown() {
        let p = point();
        let mut r = Rollups::default();
        let mut closed = Vec::new();
        r.add(&reading(p, 61, 1.0, Quality::Good), &mut closed);
        r.close_before(1, &mut closed);
        assert!(closed.is_empty(), "minute 1 is not before minute 1");
        r.close_before(2, &mut closed);
        assert_eq!(closed.len(), 1);
        r.add(&reading(p, 130, 1.0, Quality::Good), &mut closed);
        r.close_all(&mut closed);
        assert_eq!(closed.iter().map(|m| m.stats.minute).collect::<Vec<_>>(), [1, 2]);
    }
}
