//! The data model every component shares: points, readings, quality and alarm events.
//!
//! Design: a point's textual id (`MHS-001/GT-101`) is interned once into a [`PointId`], a
//! small integer, so the hot path moves `Reading`s of 32 bytes and never hashes strings.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod alarm;
pub mod pair;
mod receipt;
pub mod script;
mod setting;

pub use alarm::{
    AckCategory, AlarmClass, AlarmEvent, AlarmState, ConditionKind, Diagnosis, GATEWAY_SUBJECT, Level, Priority,
    SubjectKind, Transition,
};
pub use receipt::{Durable, Receipt};
pub use setting::ThresholdSetting;

/// Nanoseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch, truncated.
    pub const fn as_millis(self) -> i64 {
        self.0 / 1_000_000
    }

    /// This timestamp moved by `d` (saturating).
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// This timestamp moved back by `d` (saturating).
    pub fn minus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        let nanos = self.0.saturating_sub(earlier.0).max(0);
        std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }
}

/// Interned point id: an index into the gateway's [`PointTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointId(u32);

impl PointId {
    /// The id's position in its point table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How far a reading can be trusted. Only `Good`, `Uncertain` and `Suspect` values drive process alarms
/// (threshold, rate, deviation); the others hold them, and a silent or broken sensor is itself
/// worth an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read and decoded, inside the instrument's range.
    Good,
    /// The device did not answer (timeout, refused or broken connection).
    CommFault,
    /// The device answered with something that is not a value (NaN, bad length, bad type).
    DecodeError,
    /// The value lies outside the instrument's measuring range (often a sensor fault: < 4 mA).
    OutOfRange,
    /// Nothing arrived within the point's expected interval.
    Stale,
    /// The source itself doubts the value (OPC UA `Uncertain_*`: last usable value, sensor not
    /// accurate, engineering units exceeded, substituted). Rules treat it like `good` for
    /// thresholds, so a rising gas reading still alarms; it is kept apart so the console, API
    /// and history show that the value is doubtful.
    Uncertain,
    /// The gateway doubts the value: the sensor looks stuck, pinned at a range end, or it
    /// jumped faster than its quantity can move (`rules::suspect`). Like `Uncertain` it still
    /// drives process alarms (safety first), and its data-quality alarm says why.
    Suspect,
}

impl Quality {
    /// The name used in the API, metrics and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::CommFault => "comm_fault",
            Quality::DecodeError => "decode_error",
            Quality::OutOfRange => "out_of_range",
            Quality::Stale => "stale",
            Quality::Uncertain => "uncertain",
            Quality::Suspect => "suspect",
        }
    }

    /// Whether the value may drive process alarms. `Uncertain` and `Suspect` do: a gas reading the
    /// source doubts is still the best one there is, and missing a real alarm on it costs more
    /// than a doubtful one (DOMAIN.md: alarms on hazardous gas run with little or no delay).
    pub fn drives_process_alarms(self) -> bool {
        matches!(self, Quality::Good | Quality::Uncertain | Quality::Suspect)
    }

    /// Parses the name written by [`Quality::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "good" => Quality::Good,
            "comm_fault" => Quality::CommFault,
            "decode_error" => Quality::DecodeError,
            "out_of_range" => Quality::OutOfRange,
            "stale" => Quality::Stale,
            "uncertain" => Quality::Uncertain,
            "suspect" => Quality::Suspect,
            _ => return None,
        })
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measurement of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Which point.
    pub point: PointId,
    /// When it was measured (device time if the device sends one, else the gateway's clock).
    pub ts: Timestamp,
    /// Engineering value; booleans are 0/1. Meaningful only when `quality` is good or out of range.
    pub value: f64,
    /// Whether the value can be trusted.
    pub quality: Quality,
}

/// What every source sends towards the rules engine and the stores: one poll cycle's readings.
pub type ReadingBatch = Vec<Reading>;

/// A batch from a source that acknowledges upstream (MQTT QoS 1) only once the readings are
/// durable in every sink: the receipt travels with the readings (see `docs/durability.md`).
#[derive(Debug)]
pub struct DurableBatch {
    /// The readings.
    pub readings: ReadingBatch,
    /// Settled when every sink has them durable or counted lost.
    pub receipt: Receipt,
}

/// A hazard source (重大危险源) as registered with the authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HazardSource {
    /// Registration code, e.g. `MHS-001`.
    pub id: String,
    /// Name, e.g. `液氯储罐区`.
    pub name: String,
    /// GB 18218-2018 grade, 1 (most severe) to 4.
    pub level: u8,
}

/// What a point measures; decides which rules and defaults make sense for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// Combustible gas concentration (%LEL).
    Gas,
    /// Toxic gas concentration (ppm, mg/m3).
    ToxicGas,
    /// Oxygen concentration (%vol).
    Oxygen,
    /// Temperature.
    Temperature,
    /// Pressure.
    Pressure,
    /// Liquid level in a tank or vessel.
    Level,
    /// Flow rate.
    Flow,
    /// Surface or internal displacement (tailings dam, landslide).
    Displacement,
    /// Phreatic (seepage) line depth.
    Seepage,
    /// Rainfall.
    Rainfall,
    /// Reservoir or pond water level.
    WaterLevel,
    /// Dry beach length of a tailings pond.
    BeachLength,
    /// Methane concentration in mine air (%CH4).
    Methane,
    /// Air velocity in a mine roadway.
    AirVelocity,
    /// A discrete state (switch, run/stop, fault bit).
    State,
    /// Anything else.
    Other,
}

impl PointKind {
    /// The name used in config, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::Gas => "gas",
            PointKind::ToxicGas => "toxic_gas",
            PointKind::Oxygen => "oxygen",
            PointKind::Temperature => "temperature",
            PointKind::Pressure => "pressure",
            PointKind::Level => "level",
            PointKind::Flow => "flow",
            PointKind::Displacement => "displacement",
            PointKind::Seepage => "seepage",
            PointKind::Rainfall => "rainfall",
            PointKind::WaterLevel => "water_level",
            PointKind::BeachLength => "beach_length",
            PointKind::Methane => "methane",
            PointKind::AirVelocity => "air_velocity",
            PointKind::State => "state",
            PointKind::Other => "other",
        }
    }
}

/// Everything known about a point apart from its current value.
#[derive(Debug, Clone, PartialEq)]
pub struct PointMeta {
    /// Textual id, unique in the gateway.
    pub name: Arc<str>,
    /// Engineering unit (`%LEL`, `MPa`, `m`).
    pub unit: Arc<str>,
    /// What it measures.
    pub kind: PointKind,
    /// Device that produces it.
    pub device: Arc<str>,
    /// Hazard source (重大危险源) the point belongs to, if any.
    pub hazard_source: Option<Arc<str>>,
    /// Instrument's measuring range; values outside it are `out_of_range`.
    pub range: Option<(f64, f64)>,
    /// Human description from the profile (channel, instrument).
    pub description: Option<Arc<str>>,
}

#[cfg(test)]
impl PointMeta {
    /// The unit tests' plain point: a gas detector in %LEL on device `d`, nothing else set.
    pub(crate) fn test_gas(name: &str) -> PointMeta {
        PointMeta {
            name: name.into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        }
    }
}

/// The interned set of points of one gateway.
///
/// Design: the config, the rules engine, the live state and the uplinks each hold the table;
/// a clone shares it (copy on write while the config is built), so a large plant pays for its
/// points once. A point is kept as a 40-byte record: its name, and its unit, device, hazard
/// source, description and range as 4-byte indexes into lists of the distinct ones (a plant has
/// few units, devices and ranges, and a profile's description repeats on every device).
#[derive(Debug, Clone, Default)]
pub struct PointTable {
    inner: Arc<PointTableInner>,
}

/// No text or range (an absent hazard source, description or range).
const NONE: u32 = u32::MAX;

/// One point in the table; see [`PointTable`].
#[derive(Debug, Clone)]
struct PointRec {
    name: Arc<str>,
    unit: u32,
    device: u32,
    hazard_source: u32,
    description: u32,
    range: u32,
    kind: PointKind,
}

#[derive(Debug, Clone, Default)]
struct PointTableInner {
    recs: Vec<PointRec>,
    /// Units, devices, hazard sources and descriptions, each kept once however many points
    /// name it.
    texts: Vec<Arc<str>>,
    /// The distinct measuring ranges.
    ranges: Vec<(f64, f64)>,
    /// Name index while the table is built.
    by_name: HashMap<Arc<str>, PointId>,
    /// Name index of a complete table (see [`PointTable::shrink_to_fit`]): the ids in name
    /// order, 4 bytes a point against about 30 for the map; `by_name` is empty then.
    sorted: Box<[PointId]>,
    /// Index of `texts` and of `ranges` (by their bits); only while the table is built, like
    /// `by_name`.
    text_ids: HashMap<Arc<str>, u32>,
    range_ids: HashMap<(u64, u64), u32>,
}

impl PointTableInner {
    /// Back to the maps, to add points to a complete table.
    fn thaw(&mut self) {
        if self.sorted.is_empty() {
            return;
        }
        let sorted = std::mem::take(&mut self.sorted);
        self.by_name = sorted
            .iter()
            .map(|&id| (self.recs[id.index()].name.clone(), id))
            .collect();
        self.text_ids = self.texts.iter().cloned().zip(0..).collect();
        self.range_ids = self
            .ranges
            .iter()
            .map(|&(lo, hi)| (lo.to_bits(), hi.to_bits()))
            .zip(0..)
            .collect();
    }

    fn text(&mut self, text: Option<Arc<str>>) -> Option<u32> {
        match text {
            Some(t) => intern(&mut self.texts, &mut self.text_ids, t.clone(), t),
            None => Some(NONE),
        }
    }

    fn range(&mut self, range: Option<(f64, f64)>) -> Option<u32> {
        match range {
            Some((lo, hi)) => intern(
                &mut self.ranges,
                &mut self.range_ids,
                (lo.to_bits(), hi.to_bits()),
                (lo, hi),
            ),
            None => Some(NONE),
        }
    }
}

/// `value`'s index in `list`, added once under `key`; `None` when the list is full.
fn intern<K: std::hash::Hash + Eq, V>(list: &mut Vec<V>, ids: &mut HashMap<K, u32>, key: K, value: V) -> Option<u32> {
    if let Some(&i) = ids.get(&key) {
        return Some(i);
    }
    let i = u32::try_from(list.len()).ok().filter(|&i| i != NONE)?;
    list.push(value);
    ids.insert(key, i);
    Some(i)
}

/// A point of a [`PointTable`], as [`PointTable::meta`] hands it out.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    table: &'a PointTableInner,
    rec: &'a PointRec,
}

impl<'a> PointRef<'a> {
    fn text(&self, i: u32) -> Option<&'a Arc<str>> {
        self.table.texts.get(i as usize)
    }

    /// Textual id, unique in the gateway.
    pub fn name(&self) -> &'a Arc<str> {
        &self.rec.name
    }

    /// Engineering unit (`%LEL`, `MPa`, `m`).
    pub fn unit(&self) -> &'a Arc<str> {
        &self.table.texts[self.rec.unit as usize]
    }

    /// What it measures.
    pub fn kind(&self) -> PointKind {
        self.rec.kind
    }

    /// Device that produces it.
    pub fn device(&self) -> &'a Arc<str> {
        &self.table.texts[self.rec.device as usize]
    }

    /// Hazard source (重大危险源) the point belongs to, if any.
    pub fn hazard_source(&self) -> Option<&'a Arc<str>> {
        self.text(self.rec.hazard_source)
    }

    /// Instrument's measuring range; values outside it are `out_of_range`.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.table.ranges.get(self.rec.range as usize).copied()
    }

    /// Human description from the profile (channel, instrument).
    pub fn description(&self) -> Option<&'a Arc<str>> {
        self.text(self.rec.description)
    }

    /// The point as a [`PointMeta`] of its own.
    pub fn to_meta(&self) -> PointMeta {
        PointMeta {
            name: self.name().clone(),
            unit: self.unit().clone(),
            kind: self.kind(),
            device: self.device().clone(),
            hazard_source: self.hazard_source().cloned(),
            range: self.range(),
            description: self.description().cloned(),
        }
    }
}

impl PartialEq for PointRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
            && self.unit() == other.unit()
            && self.kind() == other.kind()
            && self.device() == other.device()
            && self.hazard_source() == other.hazard_source()
            && self.range() == other.range()
            && self.description() == other.description()
    }
}

impl PointTable {
    /// Adds a point; returns `None` if its name is already taken (or the table is full).
    pub fn insert(&mut self, meta: PointMeta) -> Option<PointId> {
        if self.id_of(&meta.name).is_some() {
            return None;
        }
        let id = PointId(u32::try_from(self.inner.recs.len()).ok()?);
        let inner = Arc::make_mut(&mut self.inner);
        inner.thaw();
        let rec = PointRec {
            unit: inner.text(Some(meta.unit))?,
            device: inner.text(Some(meta.device))?,
            hazard_source: inner.text(meta.hazard_source)?,
            // A profile's description of a channel is the same for each device that follows it.
            description: inner.text(meta.description)?,
            range: inner.range(meta.range)?,
            kind: meta.kind,
            name: meta.name,
        };
        inner.by_name.insert(rec.name.clone(), id);
        inner.recs.push(rec);
        Some(id)
    }

    /// Looks a point up by its textual id.
    pub fn id_of(&self, name: &str) -> Option<PointId> {
        let inner = &*self.inner;
        if inner.sorted.is_empty() {
            return inner.by_name.get(name).copied();
        }
        let at = inner
            .sorted
            .binary_search_by(|id| (*inner.recs[id.index()].name).cmp(name))
            .ok()?;
        Some(inner.sorted[at])
    }

    /// Metadata of a point.
    pub fn meta(&self, id: PointId) -> PointRef<'_> {
        PointRef {
            table: &self.inner,
            rec: &self.inner.recs[id.index()],
        }
    }

    /// Measuring range of a point (the hot path's question, without the rest of its metadata).
    pub fn range(&self, id: PointId) -> Option<(f64, f64)> {
        self.meta(id).range()
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.inner.recs.len()
    }

    /// Whether the table has no points.
    pub fn is_empty(&self) -> bool {
        self.inner.recs.is_empty()
    }

    /// All points in id order.
    pub fn iter(&self) -> impl Iterator<Item = (PointId, PointRef<'_>)> {
        let table = &*self.inner;
        table
            .recs
            .iter()
            .enumerate()
            .map(move |(i, rec)| (PointId(i as u32), PointRef { table, rec }))
    }

    /// Gives back the spare capacity the table grew with and swaps the name map for the
    /// compact sorted index; called once it is complete (a later insert still works).
    pub fn shrink_to_fit(&mut self) {
        let inner = Arc::make_mut(&mut self.inner);
        inner.recs.shrink_to_fit();
        inner.texts.shrink_to_fit();
        inner.ranges.shrink_to_fit();
        if inner.by_name.is_empty() {
            return;
        }
        inner.text_ids = HashMap::new();
        inner.range_ids = HashMap::new();
        let recs = &inner.recs;
        let mut sorted: Vec<PointId> = inner.by_name.values().copied().collect();
        sorted.sort_unstable_by(|a, b| recs[a.index()].name.cmp(&recs[b.index()].name));
        inner.sorted = sorted.into_boxed_slice();
        inner.by_name = HashMap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_share_one_copy_of_a_unit_and_a_device() {
        let mut t = PointTable::default();
        let described = |name: &str| PointMeta {
            description: Some("CH1 combustible gas".into()),
            ..PointMeta::test_gas(name)
        };
        let a = t.insert(described("a")).unwrap();
        let b = t.insert(described("b")).unwrap();
        let (da, db) = (t.meta(a).description(), t.meta(b).description());
        assert!(Arc::ptr_eq(da.unwrap(), db.unwrap()));
        assert!(Arc::ptr_eq(t.meta(a).unit(), t.meta(b).unit()));
        assert!(Arc::ptr_eq(t.meta(a).device(), t.meta(b).device()));
        assert_eq!(&**t.meta(b).unit(), "%LEL");
        assert_eq!(
            (t.inner.texts.len(), t.meta(a).range(), t.meta(a).hazard_source()),
            (3, None, None)
        );
    }

    #[test]
    fn a_point_reads_back_as_it_was_inserted() {
        let mut t = PointTable::default();
        let full = PointMeta {
            hazard_source: Some("HS-1".into()),
            range: Some((0.0, 100.0)),
            description: Some("CH2".into()),
            kind: PointKind::Pressure,
            ..PointMeta::test_gas("x")
        };
        let ranged = |name: &str, range| PointMeta {
            range,
            ..PointMeta::test_gas(name)
        };
        let x = t.insert(full.clone()).unwrap();
        let y = t.insert(ranged("y", Some((0.0, 100.0)))).unwrap();
        let z = t.insert(ranged("z", Some((-0.0, 100.0)))).unwrap();
        t.shrink_to_fit();
        let w = t.insert(ranged("w", Some((0.0, 100.0)))).unwrap();
        assert_eq!(t.meta(x).to_meta(), full);
        assert_eq!(t.meta(x).kind(), PointKind::Pressure);
        assert_eq!(
            (t.range(y), t.range(z), t.range(w)),
            (Some((0.0, 100.0)), Some((-0.0, 100.0)), Some((0.0, 100.0)))
        );
        assert!(t.range(z).unwrap().0.is_sign_negative());
        // Two distinct ranges (0 and -0 differ in bits), each kept once.
        assert_eq!(t.inner.ranges.len(), 2);
        let names: Vec<&str> = t.iter().map(|(_, m)| &**m.name()).collect();
        assert_eq!(names, ["x", "y", "z", "w"]);
    }

    #[test]
    fn point_table_refuses_a_duplicate_name() {
        let mut t = PointTable::default();
        let a = t.insert(PointMeta::test_gas("a")).unwrap();
        assert!(t.insert(PointMeta::test_gas("a")).is_none());
        assert_eq!(t.id_of("a"), Some(a));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_complete_table_finds_points_by_name_and_still_takes_more() {
        let mut t = PointTable::default();
        let names = ["m/2", "a", "z:1", "m/10", "B", "中文"];
        let ids: Vec<PointId> = names
            .iter()
            .map(|n| t.insert(PointMeta::test_gas(n)).unwrap())
            .collect();
        t.shrink_to_fit();
        assert!(t.inner.by_name.is_empty() && t.inner.sorted.len() == names.len());
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(t.id_of(n), Some(*id), "{n}");
        }
        for absent in ["", "m", "m/1", "zz", "A"] {
            assert_eq!(t.id_of(absent), None, "{absent}");
        }
        assert!(t.insert(PointMeta::test_gas("a")).is_none());
        let late = t.insert(PointMeta::test_gas("late")).unwrap();
        assert_eq!((t.id_of("late"), t.id_of("m/10")), (Some(late), Some(ids[3])));
        // Added after completion, a point still shares the texts of the earlier ones.
        assert!(Arc::ptr_eq(t.meta(late).unit(), t.meta(ids[0]).unit()));
        t.shrink_to_fit();
        assert_eq!((t.id_of("late"), t.id_of("B"), t.len()), (Some(late), Some(ids[4]), 7));
    }

    #[test]
    fn names_round_trip_through_parse() {
        for q in [
            Quality::Good,
            Quality::CommFault,
            Quality::DecodeError,
            Quality::OutOfRange,
            Quality::Stale,
            Quality::Uncertain,
            Quality::Suspect,
        ] {
            assert_eq!(Quality::parse(q.as_str()), Some(q));
        }
    }

    #[test]
    fn timestamp_since_never_goes_negative() {
        let a = Timestamp::from_millis(1000);
        let b = Timestamp::from_millis(2500);
        assert_eq!(b.since(a).as_millis(), 1500);
        assert_eq!(a.since(b).as_millis(), 0);
    }
}
