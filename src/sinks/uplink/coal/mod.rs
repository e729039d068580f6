//! Coal-mine safety monitoring files (MT/T 1201.1-2023 family): the gateway's points and alarms
//! as the text files a provincial or national coal-mine platform collects.
//!
//! # Files
//! Name `{mineCode}_{TYPE}_{yyyyMMddHHmmss}.txt` (in [`Payload::attr`] `file_name`; the file-drop
//! transport writes it). Every file is a header record `mineCode;mineName;fileTime~`, data
//! records, and `||`; fields are separated by `;`, every record ends with `~`, there are no line
//! breaks; times are `yyyy-MM-dd HH:mm:ss` in the uplink's zone; UTF-8 or GBK.
//!
//! | type | when | record |
//! |---|---|---|
//! | CDDY | first basic data, then whenever a definition changes (the whole list each time) | `code;system;substation;typeName;MN\|KG;unit;rangeHigh;rangeLow;highAlarm;highClear;lowAlarm;lowClear;powerCut;powerRestore;lowPowerCut;lowPowerRestore;onOff;location;x;y;z;relation;time~` |
//! | CDSS | every real-time interval | `code;typeName;location;value;unit;state;time~` |
//! | YCBJ | an abnormal condition begins or ends (urgent) | `code;typeName;location;type;beginTime;endTime;value;limit;unit~` |
//! | TJSJ | every statistics interval | `code;typeName;location;unit;max;min;avg;count;state;beginTime;endTime~` |
//!
//! # Decisions
//! - The file time (name and header) is the newest collection time in the file, never the
//!   send time; a second file of one type within the same second is named one second later,
//!   so names of one type are unique and sort in time order.
//! - A reading that is not `good` has an **empty value field** and its fault in the state: the
//!   platform is never given a made-up value. See [`state::quality_bits`] for the mapping.
//! - State = quality bits OR the bits of the conditions open on the point (from alarm
//!   transitions): threshold → 1, power-cut level → 1 + 2, sensor fault / stale → 128,
//!   communication → 16, out of service → 4 (a mine sensor is taken out for calibration).
//! - Set-points: the gateway's `high` is the alarm set-point and, for power-cut kinds
//!   (`methane`), `high_high` is the power-cut set-point and power is restored below the alarm
//!   set-point (Coal Mine Safety Regulations; where only `high_high` exists, alarm, cut and
//!   restore share it). Clear values default to the alarm value and can be set per point.
//! - YCBJ: an alarm raised writes a record with an empty end time; its clearing writes the
//!   record again with both times. Acknowledging, shelving and suppression write nothing.
//! - Text from outside (locations, names) has `;`, `~`, `|` and line breaks replaced by
//!   full-width forms; a character GBK cannot hold becomes `?` (logged).

pub mod config;
mod files;
pub mod state;
pub mod text;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

pub use config::{CoalPoint, CoalProblem, CoalSettings, TextEncoding, ValueType};

use super::{BasicMeta, EncodeError, Encoder, Payload, RecordKind, UplinkRecord};
use crate::model::Timestamp;
use state::Tracker;
use text::{FileText, TimeText};

/// The four file types the encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// Point definitions.
    Cddy,
    /// Real-time values.
    Cdss,
    /// Abnormal begin/end records.
    Ycbj,
    /// Statistics.
    Tjsj,
}

impl FileType {
    /// The type as it appears in the file name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Cddy => "CDDY",
            FileType::Cdss => "CDSS",
            FileType::Ycbj => "YCBJ",
            FileType::Tjsj => "TJSJ",
        }
    }
}

/// What the encoder knows of one point, from its settings and its last basic data.
#[derive(Debug, Clone)]
struct PointInfo {
    code: Arc<str>,
    type_name: Arc<str>,
    location: Arc<str>,
    value_type: ValueType,
    decimals: u8,
    power_cut: bool,
}

/// One CDDY line without its time, and the time the definition last changed.
#[derive(Debug, Clone, PartialEq)]
struct Definition {
    line: String,
    time: Timestamp,
}

/// Encodes selected records as coal-mine files. Keeps the state the formats need across calls:
/// point definitions (CDDY on change, names for CDSS), open conditions (state bits, YCBJ).
#[derive(Debug)]
pub struct CoalEncoder {
    uplink: String,
    settings: CoalSettings,
    times: TimeText,
    stats_interval: Duration,
    tracker: Tracker,
    info: HashMap<Arc<str>, PointInfo>,
    definitions: BTreeMap<Arc<str>, Definition>,
    last_file_secs: HashMap<FileType, i64>,
}

impl CoalEncoder {
    /// An encoder for uplink `uplink`, rendering times in `zone`; `stats_interval` is the
    /// length of a `Minute` statistics record's interval (hour and day records are fixed).
    pub fn new(uplink: &str, settings: CoalSettings, zone: TimeZone, stats_interval: Duration) -> Self {
        Self {
            uplink: uplink.to_string(),
            settings,
            times: TimeText::new(zone),
            stats_interval,
            tracker: Tracker::default(),
            info: HashMap::new(),
            definitions: BTreeMap::new(),
            last_file_secs: HashMap::new(),
        }
    }

    /// The file name and header time for a file of `kind` whose newest record is at `newest`.
    fn file_time(&mut self, kind: FileType, newest: Timestamp) -> (String, String) {
        let mut secs = newest.as_nanos().div_euclid(1_000_000_000);
        let last = self.last_file_secs.entry(kind).or_insert(i64::MIN);
        if secs <= *last {
            secs = *last + 1;
        }
        *last = secs;
        let ts = Timestamp::from_nanos(secs.saturating_mul(1_000_000_000));
        let name = format!(
            "{}_{}_{}.txt",
            self.settings.mine_code,
            kind.as_str(),
            self.times.name(ts)
        );
        (name, self.times.record(ts).to_string())
    }

    /// Starts a file of `kind`: its name and the text with the header written.
    fn start(&mut self, kind: FileType, newest: Timestamp, capacity: usize) -> (String, FileText) {
        let (name, header_time) = self.file_time(kind, newest);
        let text = FileText::with_header(
            &self.settings.mine_code,
            &self.settings.mine_name,
            &header_time,
            capacity,
        );
        (name, text)
    }

    /// Finishes a file into a payload.
    fn payload(&self, name: String, text: FileText, items: usize, urgent: bool) -> Payload {
        let (body, replaced) = text::to_bytes(text.finish(), self.settings.encoding);
        if replaced > 0 {
            tracing::warn!(uplink = %self.uplink, file = %name, replaced, "Characters GBK cannot hold written as ?");
        }
        let mut attrs = vec![("file_name".to_string(), name)];
        if self.settings.encoding == TextEncoding::Gbk {
            // Lets `uplink preview` show the text, not only its bytes.
            attrs.push(("charset".to_string(), "gbk".to_string()));
        }
        Payload {
            body,
            attrs,
            items: u32::try_from(items).unwrap_or(u32::MAX),
            urgent,
        }
    }

    /// The point's details, from its settings and (when given) its basic data.
    fn point_info(&self, record: &UplinkRecord, meta: Option<&BasicMeta>) -> PointInfo {
        let spec = self.settings.point(&record.point);
        let kind = meta.map(|m| &*m.kind);
        let type_name = spec
            .and_then(|s| s.type_name.clone())
            .or_else(|| kind.map(|k| default_type_name(k).to_string()))
            .unwrap_or_default();
        let location = spec
            .and_then(|s| s.location.clone())
            .or_else(|| meta.and_then(|m| m.location.as_deref().map(str::to_string)))
            .unwrap_or_default();
        let value_type = spec.and_then(|s| s.value_type).unwrap_or(match kind {
            Some("state") => ValueType::Switch,
            _ => ValueType::Analog,
        });
        PointInfo {
            code: record.codes.point.clone(),
            type_name: type_name.into(),
            location: location.into(),
            value_type,
            decimals: spec.and_then(|s| s.decimals).unwrap_or(self.settings.decimals),
            power_cut: kind.is_some_and(|k| self.settings.power_cut_kinds.iter().any(|p| p == k)),
        }
    }

    /// The cached details of the record's point, made from its settings when not yet known.
    fn info_for(&mut self, record: &UplinkRecord) -> &PointInfo {
        let stale = self
            .info
            .get(&*record.point)
            .is_none_or(|i| i.code != record.codes.point);
        if stale {
            let info = self.point_info(record, None);
            self.info.insert(record.point.clone(), info);
        }
        &self.info[&*record.point]
    }
}

/// The sensor type name for a gateway point kind, when the settings give none.
fn default_type_name(kind: &str) -> &str {
    match kind {
        "methane" => "甲烷",
        "air_velocity" => "风速",
        "temperature" => "温度",
        "pressure" => "压力",
        "water_level" => "水位",
        "level" => "液位",
        "state" => "开关量",
        other => other,
    }
}

impl Encoder for CoalEncoder {
    fn encode(&mut self, records: &[UplinkRecord]) -> Result<Vec<Payload>, EncodeError> {
        let Some(first) = records.first() else {
            return Ok(Vec::new());
        };
        let payload = match first.kind {
            RecordKind::Basic => self.cddy(records),
            RecordKind::Realtime => self.cdss(records),
            RecordKind::Alarm => self.ycbj(records),
            RecordKind::Minute => self.tjsj(records, self.stats_interval),
            RecordKind::Hour => self.tjsj(records, Duration::from_secs(3600)),
            RecordKind::Day => self.tjsj(records, Duration::from_secs(86_400)),
        };
        Ok(payload.into_iter().collect())
    }
}
