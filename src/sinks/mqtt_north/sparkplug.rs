//! Sparkplug B (Eclipse Sparkplug 3.0) encoding of a target's readings: the gateway is one
//! edge node (`spBv1.0/<group_id>/…/<edge_node_id>`), each field device one Sparkplug device,
//! each point one metric named by its point id.
//!
//! Design: the outbox keeps what does not depend on the session: a device's poll as a DDATA
//! payload whose metrics carry names, values, timestamps and the `Quality` property, or the
//! mark that a device went offline. Everything that belongs to one MQTT session (aliases,
//! `seq`, births, `is_historical`) is decided when a message is handed to the connection
//! ([`Session::encode`]), so a message replayed on a later connection or after a restart is
//! always consistent with the births of the session that carries it.
//!
//! A device is offline when a whole poll of it comes back `comm_fault` (the line task found no
//! answer; the same cycles that turn the device `offline` in device health), and online again
//! at its first poll with any other quality. Judging it from the readings keeps its DDEATH and
//! DBIRTH in order with its data through the outbox.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use prost::Message as _;

use super::config::SparkplugIds;
use super::payload;
use super::sparkplug_proto::{Metric, MetricValue, Payload, PropertyScalar, PropertySet, datatype};
use crate::model::{PointId, PointTable, Quality, Reading, ReadingBatch, Timestamp};
use crate::state::LiveState;

/// The Sparkplug B topic namespace.
const NAMESPACE: &str = "spBv1.0";
/// The NBIRTH metric a host sets to `true` in an NCMD to ask for every birth again.
pub(super) const REBIRTH: &str = "Node Control/Rebirth";
/// The NBIRTH and NDEATH metric pairing a death with its birth.
pub(super) const BDSEQ: &str = "bdSeq";
/// Outbox record kinds (the part before the NUL of [`payload::record`]).
const RECORD_DATA: &str = "DDATA";
const RECORD_OFFLINE: &str = "DDEATH";

/// The `Quality` property of a metric, in the OPC quality codes Sparkplug hosts read:
/// 192 good; 64 uncertain (a value outside the instrument's range, a value the source or the
/// gateway doubts); 0 bad (no value: no answer, undecodable, stale).
pub(super) fn quality_code(q: Quality) -> u32 {
    match q {
        Quality::Good => 192,
        Quality::OutOfRange | Quality::Uncertain | Quality::Suspect => 64,
        Quality::CommFault | Quality::DecodeError | Quality::Stale => 0,
    }
}

/// A device name as a Sparkplug device id: the MQTT separators `/`, `+`, `#` become `_`.
pub(super) fn device_id(device: &str) -> String {
    device
        .chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect()
}

fn ms(t: Timestamp) -> u64 {
    u64::try_from(t.as_millis()).unwrap_or(0)
}

/// A point's metric with its value, timestamp and quality (no name or alias yet).
fn value_metric(r: &Reading) -> Metric {
    let mut props = PropertySet::default();
    props.push("Quality", datatype::INT32, PropertyScalar::Int(quality_code(r.quality)));
    let finite = r.value.is_finite();
    Metric {
        timestamp: Some(ms(r.ts)),
        // Decoders that read the value by its datatype (Eclipse Tahu's) need it in data too.
        datatype: Some(datatype::DOUBLE),
        is_null: (!finite).then_some(true),
        value: finite.then_some(MetricValue::Double(r.value)),
        properties: Some(props),
        ..Default::default()
    }
}

/// The intake's half: turns poll batches into outbox records.
#[derive(Debug)]
pub(super) struct Writer {
    /// Per point index: its device's slot and its name, if the point is published.
    points: Vec<Option<(usize, Arc<str>)>>,
    /// Per device: its Sparkplug id and whether it is offline.
    devices: Vec<(String, bool)>,
}

/// What [`Writer::add`] made of a batch.
#[derive(Debug, Default)]
pub(super) struct Added {
    /// Readings not sent because their device is offline (all `comm_fault`, no value).
    pub(super) offline: u64,
}

impl Writer {
    /// Prepares the devices of every point of `points` that `wanted` accepts.
    pub(super) fn new(points: &PointTable, wanted: impl Fn(&str) -> bool) -> Writer {
        let mut devices: Vec<(String, bool)> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let points = points
            .iter()
            .map(|(_, m)| {
                if !wanted(m.name()) {
                    return None;
                }
                let id = device_id(m.device());
                let slot = *slot_of.entry(id.clone()).or_insert_with(|| {
                    devices.push((id, false));
                    devices.len() - 1
                });
                Some((slot, m.name().clone()))
            })
            .collect();
        Writer { points, devices }
    }

    /// Appends the records of one batch to `out` (record bytes, readings in it): per device a
    /// DDATA record of at most `max` readings, and an offline mark after a poll that came
    /// back all `comm_fault`. `due` thins readings per point.
    pub(super) fn add(
        &mut self,
        batch: &ReadingBatch,
        max: usize,
        mut due: impl FnMut(&Reading) -> bool,
        out: &mut Vec<(Vec<u8>, u32)>,
    ) -> Added {
        let mut added = Added::default();
        // Per device in order of appearance: its readings in this batch.
        let mut groups: Vec<(usize, Vec<&Reading>)> = Vec::new();
        for r in batch {
            let Some(Some((d, _))) = self.points.get(r.point.index()) else {
                continue;
            };
            match groups.iter_mut().find(|(g, _)| g == d) {
                Some((_, rs)) => rs.push(r),
                None => groups.push((*d, vec![r])),
            }
        }
        for (d, rs) in groups {
            let down = rs.iter().all(|r| r.quality == Quality::CommFault);
            let (id, offline) = &mut self.devices[d];
            if down && *offline {
                added.offline += rs.len() as u64;
                continue;
            }
            *offline = down;
            let rs: Vec<&Reading> = rs.into_iter().filter(|r| due(r)).collect();
            for chunk in rs.chunks(max.max(1)) {
                let metrics = chunk
                    .iter()
                    .map(|r| Metric {
                        name: self.points[r.point.index()].as_ref().map(|(_, n)| n.to_string()),
                        ..value_metric(r)
                    })
                    .collect();
                let body = Payload {
                    timestamp: None,
                    metrics,
                    seq: None,
                }
                .encode_to_vec();
                let topic = format!("{RECORD_DATA}/{id}");
                out.push((payload::record(&topic, &body), chunk.len() as u32));
            }
            if down {
                out.push((payload::record(&format!("{RECORD_OFFLINE}/{id}"), &[]), 0));
            }
        }
        added
    }
}

/// The publisher's half: one MQTT session of the edge node at a time.
#[derive(Debug)]
pub(super) struct Session {
    ids: SparkplugIds,
    live: Arc<LiveState>,
    /// Per device: its id and its published points in table order.
    devices: Vec<(String, Vec<PointId>)>,
    /// Device slot by id.
    device_slot: HashMap<String, usize>,
    /// Alias of each published point, by name: its index in the point table plus one.
    alias: HashMap<Arc<str>, u64>,
    /// The connection's bdSeq.
    bd_seq: u64,
    /// The next message's seq.
    seq: u8,
    /// Devices born in this session.
    born: Vec<bool>,
    /// When this session's connection came up: records written before it are historical.
    since: Timestamp,
}

/// A message ready for the connection: topic and payload.
pub(super) type Message = (String, Vec<u8>);

/// What [`Session::encode`] made of a record.
#[derive(Debug, Default)]
pub(super) struct Encoded {
    /// Births the data needs first, then the data (the last message carries the readings).
    pub(super) messages: Vec<Message>,
    /// Readings of points this configuration no longer has (no alias to send them under).
    pub(super) unknown: u64,
    /// The record could not be read back.
    pub(super) corrupt: bool,
}

impl Session {
    /// A session for the published points of `live`'s table that `wanted` accepts.
    pub(super) fn new(ids: SparkplugIds, live: Arc<LiveState>, wanted: impl Fn(&str) -> bool) -> Session {
        let mut devices: Vec<(String, Vec<PointId>)> = Vec::new();
        let mut device_slot = HashMap::new();
        let mut alias = HashMap::new();
        for (id, m) in live.points.iter() {
            if !wanted(m.name()) {
                continue;
            }
            let dev = device_id(m.device());
            let slot = *device_slot.entry(dev.clone()).or_insert_with(|| {
                devices.push((dev, Vec::new()));
                devices.len() - 1
            });
            devices[slot].1.push(id);
            alias.insert(m.name().clone(), id.index() as u64 + 1);
        }
        let born = vec![false; devices.len()];
        Session {
            ids,
            live,
            devices,
            device_slot,
            alias,
            bd_seq: 0,
            seq: 0,
            born,
            since: Timestamp::from_millis(0),
        }
    }

    /// Devices published (for sizing the connection's queue).
    pub(super) fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// The topic of a message of `kind` (`NBIRTH`, `DDATA`, ...), for `device` if any.
    pub(super) fn topic(ids: &SparkplugIds, kind: &str, device: Option<&str>) -> String {
        match device {
            Some(d) => format!("{NAMESPACE}/{}/{kind}/{}/{d}", ids.group_id, ids.edge_node_id),
            None => format!("{NAMESPACE}/{}/{kind}/{}", ids.group_id, ids.edge_node_id),
        }
    }

    /// The NCMD topic the edge node subscribes to.
    pub(super) fn command_topic(ids: &SparkplugIds) -> String {
        Self::topic(ids, "NCMD", None)
    }

    /// The NDEATH of connection `bd_seq`: the MQTT will, and what a clean stop publishes.
    pub(super) fn death(ids: &SparkplugIds, bd_seq: u64, now: Timestamp) -> Message {
        let body = Payload {
            timestamp: Some(ms(now)),
            metrics: vec![bd_seq_metric(bd_seq)],
            seq: None,
        };
        (Self::topic(ids, "NDEATH", None), body.encode_to_vec())
    }

    /// This session's NDEATH (published before a clean disconnect).
    pub(super) fn farewell(&self, now: Timestamp) -> Message {
        Self::death(&self.ids, self.bd_seq, now)
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        u64::from(s)
    }

    /// A new connection with `bd_seq` came up at `now`: every birth, NBIRTH first.
    pub(super) fn begin(&mut self, bd_seq: u64, now: Timestamp) -> Vec<Message> {
        self.bd_seq = bd_seq;
        self.since = now;
        self.births(now)
    }

    /// NBIRTH (seq 0) and a DBIRTH for every device not offline by its current readings.
    pub(super) fn births(&mut self, now: Timestamp) -> Vec<Message> {
        self.seq = 0;
        self.born.iter_mut().for_each(|b| *b = false);
        let rebirth = Metric {
            name: Some(REBIRTH.into()),
            timestamp: Some(ms(now)),
            datatype: Some(datatype::BOOLEAN),
            value: Some(MetricValue::Boolean(false)),
            ..Default::default()
        };
        let node = Payload {
            timestamp: Some(ms(now)),
            metrics: vec![bd_seq_metric(self.bd_seq), rebirth],
            seq: Some(self.next_seq()),
        };
        let mut out = vec![(Self::topic(&self.ids, "NBIRTH", None), node.encode_to_vec())];
        let current = self.live.readings();
        for d in 0..self.devices.len() {
            let down = self.devices[d].1.iter().all(|p| {
                current
                    .get(p.index())
                    .and_then(|(_, r)| *r)
                    .is_some_and(|r| r.quality == Quality::CommFault)
            });
            if !down {
                out.push(self.device_birth(d, &current, &[], now));
            }
        }
        out
    }

    /// The DBIRTH of device `d`: every metric with name, alias, datatype, properties and its
    /// current value, or its value in `data` (the poll that brings the device back), which
    /// the live state may not show yet.
    fn device_birth(
        &mut self,
        d: usize,
        current: &[(PointId, Option<Reading>)],
        data: &[Metric],
        now: Timestamp,
    ) -> Message {
        let metrics = self.devices[d]
            .1
            .iter()
            .map(|p| {
                let meta = self.live.points.meta(*p);
                let alias = p.index() as u64 + 1;
                let fresh = data.iter().find(|m| m.alias == Some(alias)).map(|m| Metric {
                    is_historical: None,
                    ..m.clone()
                });
                let mut m = match (fresh, current.get(p.index()).and_then(|(_, r)| *r)) {
                    (Some(m), _) => m,
                    (None, Some(r)) => value_metric(&r),
                    (None, None) => Metric {
                        timestamp: Some(ms(now)),
                        is_null: Some(true),
                        properties: Some(PropertySet::default()),
                        ..Default::default()
                    },
                };
                m.name = Some(meta.name().to_string());
                m.alias = Some(alias);
                m.datatype = Some(datatype::DOUBLE);
                let props = m.properties.get_or_insert_with(PropertySet::default);
                if !meta.unit().is_empty() {
                    props.push(
                        "engUnit",
                        datatype::STRING,
                        PropertyScalar::String(meta.unit().to_string()),
                    );
                }
                if let Some((lo, hi)) = meta.range() {
                    props.push("engLow", datatype::DOUBLE, PropertyScalar::Double(lo));
                    props.push("engHigh", datatype::DOUBLE, PropertyScalar::Double(hi));
                }
                if let Some(hs) = &meta.hazard_source() {
                    props.push(
                        "hazard_source",
                        datatype::STRING,
                        PropertyScalar::String(hs.to_string()),
                    );
                }
                m
            })
            .collect();
        self.born[d] = true;
        let body = Payload {
            timestamp: Some(ms(now)),
            metrics,
            seq: Some(self.next_seq()),
        };
        let id = self.devices[d].0.clone();
        (Self::topic(&self.ids, "DBIRTH", Some(&id)), body.encode_to_vec())
    }

    /// The messages of an outbox record written at `created`, on this session at `now`.
    pub(super) fn encode(&mut self, record: &[u8], created: Timestamp, now: Timestamp) -> Encoded {
        let mut e = Encoded::default();
        let Some((kind_device, body)) = payload::split(record) else {
            e.corrupt = true;
            return e;
        };
        let Some((kind, device)) = kind_device.split_once('/') else {
            e.corrupt = true;
            return e;
        };
        let slot = self.device_slot.get(device).copied();
        match kind {
            RECORD_OFFLINE => {
                if let Some(d) = slot
                    && self.born[d]
                {
                    self.born[d] = false;
                    let death = Payload {
                        timestamp: Some(ms(now)),
                        metrics: Vec::new(),
                        seq: Some(self.next_seq()),
                    };
                    e.messages
                        .push((Self::topic(&self.ids, "DDEATH", Some(device)), death.encode_to_vec()));
                }
            }
            RECORD_DATA => {
                let Ok(mut p) = Payload::decode(body) else {
                    e.corrupt = true;
                    return e;
                };
                let historical = created < self.since;
                let before = p.metrics.len();
                p.metrics.retain_mut(|m| {
                    let Some(alias) = m.name.as_deref().and_then(|n| self.alias.get(n)) else {
                        return false;
                    };
                    m.alias = Some(*alias);
                    m.name = None;
                    if historical {
                        m.is_historical = Some(true);
                    }
                    true
                });
                e.unknown = (before - p.metrics.len()) as u64;
                let Some(d) = slot.filter(|_| !p.metrics.is_empty()) else {
                    e.unknown = before as u64;
                    return e;
                };
                if !self.born[d] {
                    let current = self.live.readings();
                    let birth = self.device_birth(d, &current, &p.metrics, now);
                    e.messages.push(birth);
                }
                p.timestamp = Some(ms(now));
                p.seq = Some(self.next_seq());
                e.messages
                    .push((Self::topic(&self.ids, "DDATA", Some(device)), p.encode_to_vec()));
            }
            _ => e.corrupt = true,
        }
        e
    }
}

/// Whether an NCMD payload asks for a rebirth (`Node Control/Rebirth` = true).
pub(super) fn asks_rebirth(body: &[u8]) -> bool {
    Payload::decode(body).is_ok_and(|p| {
        p.metrics
            .iter()
            .any(|m| m.name.as_deref() == Some(REBIRTH) && m.value == Some(MetricValue::Boolean(true)))
    })
}

fn bd_seq_metric(bd_seq: u64) -> Metric {
    Metric {
        name: Some(BDSEQ.into()),
        datatype: Some(datatype::UINT64),
        value: Some(MetricValue::Long(bd_seq)),
        ..Default::default()
    }
}

/// The bdSeq of each connection: 0..=255, one more per MQTT CONNECT, wrapping, kept in the
/// data dir so a host pairs a will with the birth of the connection it belongs to across
/// restarts.
#[derive(Debug)]
pub(super) struct BdSeqStore {
    path: PathBuf,
    next: Option<u8>,
}

impl BdSeqStore {
    /// The store in `path` (read at the first connect).
    pub(super) fn new(path: PathBuf) -> BdSeqStore {
        BdSeqStore { path, next: None }
    }

    /// The bdSeq for the connection about to be opened; the one after it is written first
    /// (an unreadable file starts again at 0). An error leaves the value usable: only a restart
    /// could then repeat it.
    pub(super) fn take(&mut self) -> (u64, Option<std::io::Error>) {
        let this = *self.next.get_or_insert_with(|| {
            std::fs::read_to_string(&self.path)
                .ok()
                .and_then(|s| s.trim().parse::<u8>().ok())
                .unwrap_or(0)
        });
        let next = this.wrapping_add(1);
        self.next = Some(next);
        let tmp = self.path.with_extension("bdseq.tmp");
        let written = std::fs::write(&tmp, format!("{next}\n")).and_then(|()| std::fs::rename(&tmp, &self.path));
        (u64::from(this), written.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Arc<LiveState> {
        let t = super::super::test_points::gas_table(
            &[
                ("T1/GT-101", "plc/1", Some("MHS-001")),
                ("T1/PT-101", "plc/1", Some("MHS-001")),
                ("T2/LT-201", "plc2", None),
            ],
            Some((0.0, 100.0)),
        );
        Arc::new(LiveState::new("gw".into(), t, Vec::new(), Timestamp::from_millis(0)))
    }

    fn ids() -> SparkplugIds {
        SparkplugIds {
            group_id: "park".into(),
            edge_node_id: "gw".into(),
        }
    }

    fn reading(live: &LiveState, p: &str, v: f64, q: Quality, ts: i64) -> Reading {
        Reading {
            point: live.points.id_of(p).unwrap(),
            ts: Timestamp::from_millis(ts),
            value: v,
            quality: q,
        }
    }

    fn decode(m: &Message) -> Payload {
        Payload::decode(&m.1[..]).unwrap()
    }

    #[test]
    fn quality_codes_follow_the_opc_convention() {
        assert_eq!(quality_code(Quality::Good), 192);
        assert_eq!(quality_code(Quality::Suspect), 64);
        assert_eq!(quality_code(Quality::Uncertain), 64);
        assert_eq!(quality_code(Quality::OutOfRange), 64);
        assert_eq!(quality_code(Quality::CommFault), 0);
        assert_eq!(quality_code(Quality::Stale), 0);
    }

    #[test]
    fn births_then_data_by_alias_with_seq_counting_from_the_node_birth() {
        let live = live();
        live.update(&[reading(&live, "T1/GT-101", 3.5, Quality::Good, 10)]);
        let mut s = Session::new(ids(), live.clone(), |_| true);
        let births = s.begin(7, Timestamp::from_millis(100));
        assert_eq!(births.len(), 3);
        assert_eq!(births[0].0, "spBv1.0/park/NBIRTH/gw");
        let nb = decode(&births[0]);
        assert_eq!(nb.seq, Some(0));
        assert_eq!(nb.metrics[0].value, Some(MetricValue::Long(7)));
        assert_eq!(nb.metrics[1].name.as_deref(), Some(REBIRTH));
        assert_eq!(births[1].0, "spBv1.0/park/DBIRTH/gw/plc_1");
        let db = decode(&births[1]);
        assert_eq!(db.seq, Some(1));
        assert_eq!(db.metrics.len(), 2);
        assert_eq!(db.metrics[0].alias, Some(1));
        assert_eq!(db.metrics[0].datatype, Some(datatype::DOUBLE));
        assert_eq!(db.metrics[0].value, Some(MetricValue::Double(3.5)));
        let props = db.metrics[0].properties.as_ref().unwrap();
        assert_eq!(props.get("Quality"), Some(&PropertyScalar::Int(192)));
        assert_eq!(props.get("engUnit"), Some(&PropertyScalar::String("%LEL".into())));
        assert_eq!(
            props.get("hazard_source"),
            Some(&PropertyScalar::String("MHS-001".into()))
        );
        assert_eq!(db.metrics[1].is_null, Some(true), "no reading yet");

        let mut w = Writer::new(&live.points, |_| true);
        let mut out = Vec::new();
        let batch = vec![
            reading(&live, "T1/GT-101", 4.0, Quality::Good, 200),
            reading(&live, "T1/PT-101", 0.5, Quality::Suspect, 200),
        ];
        w.add(&batch, 1000, |_| true, &mut out);
        assert_eq!(out.len(), 1);
        let e = s.encode(&out[0].0, Timestamp::from_millis(150), Timestamp::from_millis(300));
        assert_eq!(e.messages.len(), 1);
        assert_eq!(e.messages[0].0, "spBv1.0/park/DDATA/gw/plc_1");
        let dd = decode(&e.messages[0]);
        assert_eq!(dd.seq, Some(3));
        assert!(dd.metrics.iter().all(|m| m.name.is_none() && m.is_historical.is_none()));
        assert_eq!(dd.metrics[1].alias, Some(2));
        assert_eq!(dd.metrics[1].value, Some(MetricValue::Double(0.5)));
        assert_eq!(dd.metrics[1].timestamp, Some(200));
        let q = dd.metrics[1].properties.as_ref().unwrap().get("Quality");
        assert_eq!(q, Some(&PropertyScalar::Int(64)));

        // Written before the next connection came up: historical there.
        s.begin(8, Timestamp::from_millis(400));
        let e = s.encode(&out[0].0, Timestamp::from_millis(150), Timestamp::from_millis(500));
        assert!(
            decode(&e.messages[0])
                .metrics
                .iter()
                .all(|m| m.is_historical == Some(true))
        );
    }

    #[test]
    fn seq_wraps_after_255() {
        let live = live();
        let mut s = Session::new(ids(), live.clone(), |_| true);
        s.begin(0, Timestamp::from_millis(1));
        let mut w = Writer::new(&live.points, |_| true);
        let mut seqs = Vec::new();
        for i in 0..300 {
            let mut out = Vec::new();
            w.add(
                &vec![reading(
                    &live,
                    "T2/LT-201",
                    f64::from(i),
                    Quality::Good,
                    10 + i64::from(i),
                )],
                1000,
                |_| true,
                &mut out,
            );
            for m in s
                .encode(&out[0].0, Timestamp::from_millis(5), Timestamp::from_millis(6))
                .messages
            {
                seqs.push(decode(&m).seq.unwrap());
            }
        }
        // NBIRTH 0, DBIRTH of both devices 1 and 2, then data from 3.
        assert_eq!(seqs[0], 3);
        assert!(seqs.windows(2).all(|w| w[1] == (w[0] + 1) % 256), "{seqs:?}");
        assert!(seqs.contains(&255) && seqs.contains(&0));
    }

    #[test]
    fn a_device_that_stops_answering_dies_once_and_is_born_again_with_its_first_answer() {
        let live = live();
        let mut s = Session::new(ids(), live.clone(), |_| true);
        s.begin(0, Timestamp::from_millis(1));
        let mut w = Writer::new(&live.points, |_| true);
        let dead = vec![reading(&live, "T2/LT-201", f64::NAN, Quality::CommFault, 10)];
        let mut out = Vec::new();
        w.add(&dead, 1000, |_| true, &mut out);
        let again = w.add(&dead, 1000, |_| true, &mut out);
        assert_eq!(again.offline, 1);
        assert_eq!(out.len(), 2, "the bad-quality poll, then the offline mark");
        let mut topics = Vec::new();
        for (rec, _) in &out {
            for m in s
                .encode(rec, Timestamp::from_millis(5), Timestamp::from_millis(6))
                .messages
            {
                topics.push(m.0);
            }
        }
        assert_eq!(topics, ["spBv1.0/park/DDATA/gw/plc2", "spBv1.0/park/DDEATH/gw/plc2"]);
        let mut out = Vec::new();
        w.add(
            &vec![reading(&live, "T2/LT-201", 1.0, Quality::Good, 20)],
            1000,
            |_| true,
            &mut out,
        );
        let e = s.encode(&out[0].0, Timestamp::from_millis(5), Timestamp::from_millis(6));
        let topics: Vec<&str> = e.messages.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(topics, ["spBv1.0/park/DBIRTH/gw/plc2", "spBv1.0/park/DDATA/gw/plc2"]);
    }

    #[test]
    fn the_will_carries_the_bdseq_and_no_seq_and_rebirth_requests_are_recognised() {
        let (topic, body) = Session::death(&ids(), 12, Timestamp::from_millis(1));
        assert_eq!(topic, "spBv1.0/park/NDEATH/gw");
        let p = Payload::decode(&body[..]).unwrap();
        assert_eq!(p.seq, None);
        assert_eq!(p.metrics[0].name.as_deref(), Some(BDSEQ));
        assert_eq!(p.metrics[0].value, Some(MetricValue::Long(12)));
        let cmd = |v| {
            Payload {
                timestamp: Some(1),
                metrics: vec![Metric {
                    name: Some(REBIRTH.into()),
                    datatype: Some(datatype::BOOLEAN),
                    value: Some(MetricValue::Boolean(v)),
                    ..Default::default()
                }],
                seq: None,
            }
            .encode_to_vec()
        };
        assert!(asks_rebirth(&cmd(true)));
        assert!(!asks_rebirth(&cmd(false)));
        assert!(!asks_rebirth(b"\xff\xff"));
    }

    #[test]
    fn bdseq_goes_up_per_connect_survives_a_restart_and_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("park.bdseq");
        let mut a = BdSeqStore::new(path.clone());
        assert_eq!(a.take().0, 0);
        assert_eq!(a.take().0, 1);
        let mut b = BdSeqStore::new(path.clone());
        assert_eq!(b.take().0, 2);
        std::fs::write(&path, "255\n").unwrap();
        let mut c = BdSeqStore::new(path);
        assert_eq!(c.take().0, 255);
        assert_eq!(c.take().0, 0);
    }
}
