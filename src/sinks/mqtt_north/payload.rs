//! The JSON of northbound reading messages, and how a message is kept in the outbox.
//!
//! Batched (`batch = "poll"` or `"window"`), one message per device and hazard source:
//! `{"gateway":…,"device":…,"hazard_source":…|null,"points":[{"id":…,"value":…|null,
//! "unit":…,"quality":…,"ts":<ms since the epoch>},…]}`, points in the order they were
//! read. Per reading (`batch = "reading"`), the shape before batching:
//! `{"gateway":…,"point":…,"value":…|null,"quality":…,"ts_ms":…}`.
//!
//! Design: everything that does not change per reading (escaped ids, units, the message
//! head, the topic) is built once from the point table, so a reading costs a few appends.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::config::{BatchMode, NorthReadings};
use crate::model::{PointTable, Reading};

/// A message as the outbox keeps it: the topic, a NUL (never part of a topic), the payload.
pub(super) fn record(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(topic.len() + 1 + payload.len());
    out.extend_from_slice(topic.as_bytes());
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// The topic and payload of an outbox record; `None` if it has no topic.
pub(super) fn split(record: &[u8]) -> Option<(&str, &[u8])> {
    let nul = record.iter().position(|b| *b == 0)?;
    let topic = std::str::from_utf8(&record[..nul]).ok()?;
    Some((topic, &record[nul + 1..]))
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One device's group of points (same device, same hazard source).
#[derive(Debug)]
pub(super) struct Group {
    /// Where its messages go.
    pub(super) topic: String,
    /// `{"gateway":…,"device":…,"hazard_source":…,"points":[`.
    head: String,
}

#[derive(Debug)]
struct PointOut {
    /// Its group (batched) .
    group: usize,
    /// `{"id":…,"unit":…,` (batched) or `{"gateway":…,"point":…,` (per reading).
    frag: String,
    /// Its own topic (per reading only).
    topic: String,
}

/// Builds message bodies for the wanted points of one target.
#[derive(Debug)]
pub(super) struct Encoder {
    points: Vec<Option<PointOut>>,
    pub(super) groups: Vec<Group>,
    mode: BatchMode,
}

impl Encoder {
    /// Prepares the fixed parts for every point of `points` that `wanted` accepts.
    pub(super) fn new(
        gateway: &str,
        spec: &NorthReadings,
        points: &PointTable,
        wanted: impl Fn(&str) -> bool,
    ) -> Encoder {
        let mut groups = Vec::new();
        let mut by_key: HashMap<(String, Option<String>), usize> = HashMap::new();
        let gw = json_str(gateway);
        let outs = points
            .iter()
            .map(|(_, m)| {
                if !wanted(m.name()) {
                    return None;
                }
                if spec.batch == BatchMode::Reading {
                    return Some(PointOut {
                        group: 0,
                        frag: format!("{{\"gateway\":{gw},\"point\":{},", json_str(m.name())),
                        topic: spec.topic_for(gateway, m.name()),
                    });
                }
                let key = (
                    m.device().to_string(),
                    m.hazard_source().map(|t| &**t).map(str::to_string),
                );
                let group = *by_key.entry(key).or_insert_with(|| {
                    let hs = m.hazard_source().map(|t| &**t);
                    groups.push(Group {
                        topic: spec.device_topic(gateway, m.device(), hs),
                        head: format!(
                            "{{\"gateway\":{gw},\"device\":{},\"hazard_source\":{},\"points\":[",
                            json_str(m.device()),
                            hs.map_or_else(|| "null".to_string(), json_str)
                        ),
                    });
                    groups.len() - 1
                });
                Some(PointOut {
                    group,
                    frag: format!("{{\"id\":{},\"unit\":{},", json_str(m.name()), json_str(m.unit())),
                    topic: String::new(),
                })
            })
            .collect();
        Encoder {
            points: outs,
            groups,
            mode: spec.batch,
        }
    }

    /// Whether `r`'s point is published at all.
    pub(super) fn wants(&self, r: &Reading) -> bool {
        self.points.get(r.point.index()).is_some_and(Option::is_some)
    }

    /// The group of a wanted reading (batched modes).
    pub(super) fn group_of(&self, r: &Reading) -> Option<usize> {
        self.points.get(r.point.index())?.as_ref().map(|p| p.group)
    }

    /// Appends `r` as one element of a batched message's `points`.
    pub(super) fn point_json(&self, r: &Reading, out: &mut String) {
        let Some(Some(p)) = self.points.get(r.point.index()) else {
            return;
        };
        out.push_str(&p.frag);
        value_quality_ts(r, "ts", out);
    }

    /// The topic and payload of `r` alone (`batch = "reading"`).
    pub(super) fn single(&self, r: &Reading) -> Option<(&str, String)> {
        let p = self.points.get(r.point.index())?.as_ref()?;
        debug_assert_eq!(self.mode, BatchMode::Reading);
        let mut out = String::with_capacity(p.frag.len() + 64);
        out.push_str(&p.frag);
        value_quality_ts(r, "ts_ms", &mut out);
        Some((&p.topic, out))
    }

    /// A whole message of group `g` from its `points` elements, joined.
    pub(super) fn message(&self, g: usize, points: &str) -> Option<(String, Vec<u8>)> {
        let group = self.groups.get(g)?;
        let mut body = String::with_capacity(group.head.len() + points.len() + 2);
        body.push_str(&group.head);
        body.push_str(points);
        body.push_str("]}");
        Some((group.topic.clone(), body.into_bytes()))
    }
}

fn value_quality_ts(r: &Reading, ts_key: &str, out: &mut String) {
    out.push_str("\"value\":");
    // serde_json's number text (shortest round trip, `2.0` for a whole value).
    match serde_json::Number::from_f64(r.value) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"quality\":\"{}\",\"{ts_key}\":{}}}",
        r.quality.as_str(),
        r.ts.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quality, Timestamp};

    fn table() -> PointTable {
        super::super::test_points::gas_table(
            &[
                ("A/1", "plc", Some("MHS-001")),
                ("A/2", "plc", Some("MHS-001")),
                ("B/\"q\"", "plc", None),
            ],
            None,
        )
    }

    fn spec(batch: BatchMode, topic: &str) -> NorthReadings {
        NorthReadings {
            points: "*".into(),
            batch,
            topic: topic.into(),
            interval: None,
            window: std::time::Duration::from_secs(1),
            max_readings: 10,
            in_flight: 8,
            queue_batches: 8,
            buffer: crate::sinks::buffer::BufferConfig::new(
                1 << 20,
                crate::sinks::buffer::WhenFull::DropOldest,
                crate::sinks::buffer::FsyncPolicy::Never,
            ),
            max_age: std::time::Duration::from_secs(60),
            sparkplug: None,
        }
    }

    #[test]
    fn batched_messages_are_json_of_the_documented_shape_grouped_by_device_and_hazard_source() {
        let t = table();
        let e = Encoder::new(
            "gw",
            &spec(BatchMode::Poll, "h/{gateway}/{device}/{hazard_source}"),
            &t,
            |_| true,
        );
        assert_eq!(e.groups.len(), 2);
        let r = |p: &str, v: f64, q| Reading {
            point: t.id_of(p).unwrap(),
            ts: Timestamp::from_millis(1_700_000_000_123),
            value: v,
            quality: q,
        };
        let (a, b, c) = (
            r("A/1", 1.5, Quality::Good),
            r("A/2", f64::NAN, Quality::CommFault),
            r("B/\"q\"", 3.0, Quality::Good),
        );
        assert_eq!(e.group_of(&a), e.group_of(&b));
        let mut pts = String::new();
        e.point_json(&a, &mut pts);
        pts.push(',');
        e.point_json(&b, &mut pts);
        let (topic, body) = e.message(e.group_of(&a).unwrap(), &pts).unwrap();
        assert_eq!(topic, "h/gw/plc/MHS-001");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"gateway": "gw", "device": "plc", "hazard_source": "MHS-001", "points": [
                {"id": "A/1", "unit": "%LEL", "value": 1.5, "quality": "good", "ts": 1_700_000_000_123i64},
                {"id": "A/2", "unit": "%LEL", "value": null, "quality": "comm_fault", "ts": 1_700_000_000_123i64},
            ]})
        );
        let mut one = String::new();
        e.point_json(&c, &mut one);
        let (topic, body) = e.message(e.group_of(&c).unwrap(), &one).unwrap();
        assert_eq!(topic, "h/gw/plc/none");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["hazard_source"], serde_json::Value::Null);
        assert_eq!(v["points"][0]["id"], "B/\"q\"");
    }

    #[test]
    fn per_reading_messages_keep_the_shape_before_batching() {
        let t = table();
        let e = Encoder::new("gw", &spec(BatchMode::Reading, "r/{gateway}/{point}"), &t, |p| {
            p.starts_with("A/")
        });
        let a = Reading {
            point: t.id_of("A/1").unwrap(),
            ts: Timestamp::from_millis(5),
            value: 2.0,
            quality: Quality::Good,
        };
        let (topic, body) = e.single(&a).unwrap();
        assert_eq!(topic, "r/gw/A/1");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"gateway": "gw", "point": "A/1", "value": 2.0, "quality": "good", "ts_ms": 5})
        );
        let b = Reading {
            point: t.id_of("B/\"q\"").unwrap(),
            ..a
        };
        assert!(!e.wants(&b));
    }

    #[test]
    fn a_record_splits_back_into_topic_and_payload() {
        let rec = record("a/b", b"{\"x\":0}");
        assert_eq!(split(&rec), Some(("a/b", &b"{\"x\":0}"[..])));
        assert_eq!(split(b"no-nul"), None);
    }
}
