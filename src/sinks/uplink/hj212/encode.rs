//! Records into HJ 212 data frames: real-time data (CN 2011) and minute, hour and day
//! statistics (2051, 2061, 2031), one message per collection time, split into `PNUM`/`PNO`
//! packets when the `CP` field would push a data segment over the limit.
//!
//! Quality becomes the data flag (HJ 212-2017 table 6 / appendix B): good `N`, over range `T`,
//! a sensor fault or an undecodable answer `D`, no answer or nothing arrived (comm fault,
//! stale) `B`. A value is sent only with `N` or `T`; a failed sensor is sent with its flag and
//! no value at all, never a made-up one.

use std::fmt::Write as _;
use std::sync::Arc;

use jiff::tz::TimeZone;

use super::frame::{self, MAX_SEGMENT};
use super::segment::{Flag, Segment, Version};
use crate::clock::SharedClock;
use crate::model::{Quality, Timestamp};
use crate::sinks::uplink::time;
use crate::sinks::uplink::{EncodeError, Encoder, Payload, RecordKind, UplinkRecord};

/// Payload attribute: the message's `QN`, which the centre's 9014 acknowledgement repeats.
pub const ATTR_QN: &str = "qn";
/// Payload attribute: `1` when the frames ask for a 9014 acknowledgement, else `0`.
pub const ATTR_ACK: &str = "ack";
/// Payload attribute: the command code of the frames (`2011`, `2051`, …).
pub const ATTR_CN: &str = "cn";
/// Payload attribute: how many frames the body holds (more than one for a split message).
pub const ATTR_FRAMES: &str = "frames";

/// `QN` and `DataTime` formats (HJ 212-2017 6.3.3 and table 5).
const QN_FORMAT: &str = "%Y%m%d%H%M%S%3f";
/// `DataTime`, `SystemTime`, `BeginTime` and `EndTime`.
pub const TIME_FORMAT: &str = "%Y%m%d%H%M%S";

/// What the `-Cou` field of a statistics record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cou {
    /// The number of good readings in the interval.
    #[default]
    Count,
    /// No `-Cou` field. For centres that read `Cou` as a cumulative amount (an emission
    /// total), which a hazard reading does not have.
    Omit,
}

/// What an HJ 212 uplink writes into every frame.
#[derive(Clone)]
pub struct Hj212Settings {
    /// Edition: decides the `Flag` version bits.
    pub version: Version,
    /// System code (`ST`) of data frames, e.g. `22` air quality, `32` surface water.
    pub st: String,
    /// The field unit's unique identifier (`MN`), issued by the platform.
    pub mn: String,
    /// Access password (`PW`), issued by the platform; never logged.
    pub pw: String,
    /// Ask the centre for a 9014 acknowledgement of every data message.
    pub ack: bool,
    /// Longest data segment to send; longer messages are split into packets.
    pub max_segment: usize,
    /// Zone of `QN` and `DataTime`.
    pub zone: TimeZone,
    /// What `-Cou` carries.
    pub cou: Cou,
    /// Digits after the decimal point; `None` sends the shortest exact form.
    pub decimals: Option<u8>,
}

impl std::fmt::Debug for Hj212Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hj212Settings")
            .field("version", &self.version)
            .field("st", &self.st)
            .field("mn", &self.mn)
            .field("pw", &"<redacted>")
            .field("ack", &self.ack)
            .field("max_segment", &self.max_segment)
            .field("zone", &self.zone.iana_name())
            .field("cou", &self.cou)
            .field("decimals", &self.decimals)
            .finish()
    }
}

impl Hj212Settings {
    /// The `Flag` of a frame of ours.
    pub fn flag(&self, split: bool, ack: bool) -> Flag {
        Flag::new(self.version, split, ack)
    }

    /// `ts` as HJ 212 time text (`YYYYMMDDhhmmss`) in the uplink's zone.
    pub fn time_text(&self, ts: Timestamp) -> String {
        time::render(ts, &self.zone, TIME_FORMAT)
    }
}

/// The data flag for a reading's quality. HJ 212 has no flag for an OPC UA `uncertain` value:
/// it is sent as measured, as the gateway's own alarms take it.
pub fn data_flag(quality: Quality) -> char {
    match quality {
        Quality::Good | Quality::Uncertain => 'N',
        Quality::OutOfRange => 'T',
        // A suspect value (stuck, pinned, impossible jump) is sent with the instrument-fault
        // flag, so the platform does not take it as a normal measurement.
        Quality::DecodeError | Quality::Suspect => 'D',
        Quality::CommFault | Quality::Stale => 'B',
    }
}

/// The command code that carries records of `kind`, if HJ 212 has one.
pub fn command_for(kind: RecordKind) -> Option<&'static str> {
    match kind {
        RecordKind::Realtime => Some("2011"),
        RecordKind::Minute => Some("2051"),
        RecordKind::Hour => Some("2061"),
        RecordKind::Day => Some("2031"),
        RecordKind::Basic | RecordKind::Alarm => None,
    }
}

/// Hands out `QN`s: the current millisecond in the uplink's zone, strictly increasing so two
/// messages never share one.
#[derive(Debug, Default)]
pub struct QnSource {
    last_ms: i64,
}

impl QnSource {
    /// The next `QN` at `now`.
    pub fn next(&mut self, now: Timestamp, zone: &TimeZone) -> String {
        let ms = now.as_millis().max(self.last_ms.saturating_add(1));
        self.last_ms = ms;
        time::render(Timestamp::from_millis(ms), zone, QN_FORMAT)
    }
}

/// Encodes records as HJ 212 data messages.
pub struct Hj212Encoder {
    uplink: String,
    settings: Arc<Hj212Settings>,
    clock: SharedClock,
    qn: QnSource,
}

impl std::fmt::Debug for Hj212Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hj212Encoder")
            .field("uplink", &self.uplink)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Hj212Encoder {
    /// An encoder for uplink `uplink`; `clock` stamps the `QN`s.
    pub fn new(uplink: &str, settings: Arc<Hj212Settings>, clock: SharedClock) -> Self {
        Self {
            uplink: uplink.to_string(),
            settings,
            clock,
            qn: QnSource::default(),
        }
    }

    /// The settings the frames are written with.
    pub fn settings(&self) -> &Arc<Hj212Settings> {
        &self.settings
    }

    /// Encodes records under a given `QN` and acknowledgement bit: the answer to a centre's
    /// history pull carries the pull's `QN`.
    pub fn encode_as(&self, records: &[UplinkRecord], qn: &str, ack: bool) -> Result<Vec<Payload>, EncodeError> {
        let mut out = Vec::new();
        for group in messages(records) {
            out.push(self.message(group, qn, ack)?);
        }
        Ok(out)
    }

    fn error(&self, what: impl Into<String>, reason: impl Into<String>) -> EncodeError {
        EncodeError {
            uplink: self.uplink.clone(),
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// One message: the records of one kind and collection time.
    fn message(&self, group: &[UplinkRecord], qn: &str, ack: bool) -> Result<Payload, EncodeError> {
        let first = &group[0];
        let cn = command_for(first.kind).ok_or_else(|| {
            self.error(
                format!("{:?} record of `{}`", first.kind, first.point),
                "HJ 212 has no command for this kind of record",
            )
        })?;
        let data_time = format!("DataTime={}", self.settings.time_text(first.time));
        let fields: Vec<String> = group.iter().map(|r| self.fields(r)).collect();
        let mut segment = Segment {
            qn: Some(qn.to_string()),
            st: self.settings.st.clone(),
            cn: cn.to_string(),
            pw: self.settings.pw.clone(),
            mn: self.settings.mn.clone(),
            flag: Some(self.settings.flag(false, ack)),
            packet: None,
            cp: cp_body(&data_time, &fields),
        };
        let whole = segment.render();
        let limit = self.settings.max_segment.min(MAX_SEGMENT);
        let bodies = if whole.len() <= limit {
            vec![whole]
        } else {
            self.split(&mut segment, &data_time, &fields, ack, limit)?
        };
        let mut body = Vec::with_capacity(bodies.iter().map(|b| b.len() + 12).sum());
        for text in &bodies {
            let bytes = frame::build(text).map_err(|e| self.error(format!("{cn} message {qn}"), e.to_string()))?;
            body.extend_from_slice(&bytes);
        }
        Ok(Payload {
            body,
            attrs: vec![
                (ATTR_QN.to_string(), qn.to_string()),
                (ATTR_ACK.to_string(), if ack { "1" } else { "0" }.to_string()),
                (ATTR_CN.to_string(), cn.to_string()),
                (ATTR_FRAMES.to_string(), bodies.len().to_string()),
            ],
            items: u32::try_from(group.len()).unwrap_or(u32::MAX),
            urgent: false,
        })
    }

    /// Splits the point fields over packets that each fit `limit` bytes and repeat `DataTime`.
    fn split(
        &self,
        segment: &mut Segment,
        data_time: &str,
        fields: &[String],
        ack: bool,
        limit: usize,
    ) -> Result<Vec<String>, EncodeError> {
        segment.flag = Some(self.settings.flag(true, ack));
        // Header with the widest packet numbers the limit allows (a packet holds >= 1 field).
        segment.packet = Some((9999, 9999));
        segment.cp = String::new();
        let overhead = segment.render().len() + data_time.len() + 1;
        let budget = limit.saturating_sub(overhead);
        let mut packets: Vec<Vec<&str>> = Vec::new();
        let mut used = 0usize;
        for field in fields {
            if field.len() > budget {
                return Err(self.error(
                    format!("field `{field}`"),
                    format!("does not fit a data segment of {limit} bytes even alone"),
                ));
            }
            match packets.last_mut() {
                Some(p) if used + 1 + field.len() <= budget => {
                    p.push(field);
                    used += 1 + field.len();
                }
                _ => {
                    packets.push(vec![field]);
                    used = field.len();
                }
            }
        }
        let count = u32::try_from(packets.len()).unwrap_or(u32::MAX);
        Ok(packets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                segment.packet = Some((count, i as u32 + 1));
                segment.cp = cp_body(data_time, p);
                segment.render()
            })
            .collect())
    }

    /// The `CP` fields of one record: `code-Rtd=v,code-Flag=N` or the statistics.
    fn fields(&self, r: &UplinkRecord) -> String {
        let code = &r.codes.point;
        let flag = data_flag(r.quality);
        let mut out = String::with_capacity(48);
        let trusted = matches!(
            r.quality,
            Quality::Good | Quality::Uncertain | Quality::Suspect | Quality::OutOfRange
        );
        match r.kind {
            RecordKind::Realtime => {
                if let Some(v) = r.value.filter(|v| trusted && v.is_finite()) {
                    let _ = write!(out, "{code}-Rtd=");
                    self.number(&mut out, v);
                    out.push(',');
                }
            }
            _ => {
                if let Some(s) = r
                    .stats
                    .filter(|s| s.count > 0 && s.min.is_finite() && s.max.is_finite())
                {
                    if self.settings.cou == Cou::Count {
                        let _ = write!(out, "{code}-Cou={},", s.count);
                    }
                    for (name, v) in [("Min", s.min), ("Avg", s.avg), ("Max", s.max)] {
                        let _ = write!(out, "{code}-{name}=");
                        self.number(&mut out, v);
                        out.push(',');
                    }
                }
            }
        }
        let _ = write!(out, "{code}-Flag={flag}");
        out
    }

    fn number(&self, out: &mut String, v: f64) {
        match self.settings.decimals {
            Some(d) => {
                let _ = write!(out, "{:.*}", usize::from(d), v);
            }
            None => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

/// Records share a message when they are of one kind and one `DataTime` (whole second).
fn same_message(a: &UplinkRecord, b: &UplinkRecord) -> bool {
    const NANOS_PER_SECOND: i64 = 1_000_000_000;
    a.kind == b.kind && a.time.as_nanos().div_euclid(NANOS_PER_SECOND) == b.time.as_nanos().div_euclid(NANOS_PER_SECOND)
}

/// Splits time-ordered records into messages: one per kind and `DataTime`, and a new one
/// where a point repeats within a second (a `CP` names each factor once).
fn messages(records: &[UplinkRecord]) -> Vec<&[UplinkRecord]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut codes: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (i, r) in records.iter().enumerate() {
        if i > start && (!same_message(&records[start], r) || codes.contains(&*r.codes.point)) {
            out.push(&records[start..i]);
            start = i;
            codes.clear();
        }
        codes.insert(&r.codes.point);
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

fn cp_body<S: AsRef<str>>(data_time: &str, fields: &[S]) -> String {
    let mut cp = String::with_capacity(data_time.len() + fields.iter().map(|f| f.as_ref().len() + 1).sum::<usize>());
    cp.push_str(data_time);
    for f in fields {
        cp.push(';');
        cp.push_str(f.as_ref());
    }
    cp
}

impl Encoder for Hj212Encoder {
    fn encode(&mut self, records: &[UplinkRecord]) -> Result<Vec<Payload>, EncodeError> {
        // Current values carry each reading's own time: order them so one message holds
        // every point of one second (a stable sort keeps the configured point order).
        let sorted;
        let records = if records.is_sorted_by_key(|r| r.time) {
            records
        } else {
            let mut v = records.to_vec();
            v.sort_by_key(|r| r.time);
            sorted = v;
            &sorted
        };
        let mut out = Vec::new();
        for group in messages(records) {
            let qn = self.qn.next(self.clock.now(), &self.settings.zone);
            out.push(self.message(group, &qn, self.settings.ack)?);
        }
        Ok(out)
    }
}
