//! The durable outbox of one uplink: two store-and-forward queues ([`DiskQueue`]) between
//! the seal stage and the transport. Alarms go in the urgent lane, which is always emptied
//! first; everything else in the normal lane, replayed in the order it was queued (which is
//! collection-time order). A payload leaves its lane only when the transport reported the
//! platform's acknowledgement, or when it is dropped: the outbox is full (by `when_full`), it
//! is older than `max_age`, the platform refused it for good, or it was damaged on disk.
//! Every drop is counted in `hazard_uplink_records_dropped_total` and logged.
//!
//! Each queued record is a payload with its transport hints: a version byte, a flags byte
//! (bit 0: urgent), the hint count (u16 LE), each hint as key (u16 LE length + UTF-8) and
//! value (u32 LE length + UTF-8), then the body.

use std::path::Path;
use std::time::Duration;

use tracing::warn;

use super::Payload;
use super::config::OutboxSpec;
use crate::model::Timestamp;
use crate::sinks::buffer::{BufferConfig, BufferError, DiskQueue, FsyncPolicy};
use crate::telemetry::uplink::{UplinkLabel, UplinkMetrics};

const VERSION: u8 = 1;

/// Which queue a payload is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Alarms: sent before anything else.
    Urgent,
    /// Everything else, in queue order.
    Normal,
}

/// A payload handed out for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// Its lane.
    pub lane: Lane,
    /// Its sequence number in the lane.
    pub seq: u64,
    /// When it was queued.
    pub created: Timestamp,
    /// The payload.
    pub payload: Payload,
}

/// Serialises a payload for the queue.
pub fn encode_payload(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.body.len() + 64);
    out.push(VERSION);
    out.push(u8::from(p.urgent));
    out.extend_from_slice(&u16::try_from(p.attrs.len()).unwrap_or(u16::MAX).to_le_bytes());
    for (k, v) in p.attrs.iter().take(usize::from(u16::MAX)) {
        let k = &k.as_bytes()[..k.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&u16::try_from(k.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&p.body);
    out
}

/// Reads back a payload written by [`encode_payload`].
pub fn decode_payload(bytes: &[u8], items: u32) -> Option<Payload> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(1)?[0] != VERSION {
        return None;
    }
    let urgent = take(1)?[0] & 1 == 1;
    let n = u16::from_le_bytes(take(2)?.try_into().ok()?);
    let mut attrs = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let kl = u16::from_le_bytes(take(2)?.try_into().ok()?);
        let k = String::from_utf8(take(usize::from(kl))?.to_vec()).ok()?;
        let vl = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let v = String::from_utf8(take(usize::try_from(vl).ok()?)?.to_vec()).ok()?;
        attrs.push((k, v));
    }
    let body = bytes.get(at..)?.to_vec();
    Some(Payload {
        body,
        attrs,
        items,
        urgent,
    })
}

/// The outbox of one uplink.
#[derive(Debug)]
pub struct Outbox {
    uplink: String,
    urgent: DiskQueue,
    normal: DiskQueue,
    max_age: Option<Duration>,
    metrics: UplinkMetrics,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`; what an earlier run left is queued again.
    pub fn open(dir: &Path, uplink: &str, spec: &OutboxSpec, metrics: UplinkMetrics) -> Result<Self, BufferError> {
        let fsync = FsyncPolicy::Interval(spec.fsync_interval);
        // Alarms are few and small: a quarter of the bytes is theirs.
        let urgent_cfg = BufferConfig::new(spec.max_bytes / 4, spec.when_full, fsync);
        let normal_cfg = BufferConfig::new(spec.max_bytes - spec.max_bytes / 4, spec.when_full, fsync);
        let (urgent, ru) = DiskQueue::open(&dir.join("urgent"), urgent_cfg)?;
        let (normal, rn) = DiskQueue::open(&dir.join("normal"), normal_cfg)?;
        let damaged = ru.damaged + rn.damaged;
        if damaged > 0 {
            warn!(uplink, damaged, "Damaged outbox records skipped");
            metrics.drop(uplink, "damaged", damaged);
        }
        if ru.records + rn.records > 0 {
            tracing::info!(
                uplink,
                urgent = ru.records,
                normal = rn.records,
                "Outbox holds payloads from before; replaying"
            );
        }
        let o = Self {
            uplink: uplink.to_string(),
            urgent,
            normal,
            max_age: spec.max_age,
            metrics,
        };
        o.update_gauges();
        Ok(o)
    }

    fn lane(&mut self, lane: Lane) -> &mut DiskQueue {
        match lane {
            Lane::Urgent => &mut self.urgent,
            Lane::Normal => &mut self.normal,
        }
    }

    /// Persists `payload` (urgent ones in the urgent lane); returns once it is written.
    pub fn push(&mut self, payload: &Payload, now: Timestamp) -> Result<(), BufferError> {
        let lane = if payload.urgent { Lane::Urgent } else { Lane::Normal };
        let bytes = encode_payload(payload);
        let uplink = self.uplink.clone();
        let r = self.lane(lane).append(&bytes, payload.items, now);
        match r {
            Ok(a) => {
                if a.dropped_items > 0 || a.dropped_records > 0 {
                    let what = if a.seq.is_none() { "newest" } else { "oldest" };
                    warn!(
                        uplink,
                        lost_records = a.dropped_items,
                        lost_payloads = a.dropped_records,
                        what,
                        "Uplink outbox full; payloads dropped"
                    );
                    self.metrics.drop(&uplink, "full", a.dropped_items);
                }
                if a.seq.is_some() {
                    self.metrics
                        .queued
                        .get_or_create(&UplinkLabel { uplink: uplink.clone() })
                        .inc();
                }
                self.update_gauges();
                Ok(())
            }
            Err(e) => {
                warn!(uplink, error = %e, records = payload.items, "Cannot queue a payload in the uplink outbox; dropped");
                self.metrics.drop(
                    &uplink,
                    if matches!(e, BufferError::TooLarge { .. }) {
                        "too_large"
                    } else {
                        "outbox_io"
                    },
                    u64::from(payload.items),
                );
                Err(e)
            }
        }
    }

    /// The next payload to send: urgent first. Payloads past `max_age` and damaged ones are
    /// dropped (counted) on the way.
    pub fn next(&mut self, now: Timestamp) -> Result<Option<Queued>, BufferError> {
        for lane in [Lane::Urgent, Lane::Normal] {
            loop {
                let rec = match self.lane(lane).next_unsent() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(BufferError::Corrupt {
                        path,
                        offset,
                        seq,
                        items,
                        fault,
                    }) => {
                        warn!(uplink = %self.uplink, segment = %path.display(), offset, seq, records = items,
                              fault = fault.kind(), "Outbox payload does not read back as written; dropped");
                        self.metrics.drop(&self.uplink.clone(), "damaged", u64::from(items));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let uplink = self.uplink.clone();
                if let Some(max) = self.max_age
                    && now.since(rec.created) > max
                {
                    warn!(uplink, records = rec.items, age = ?now.since(rec.created), "Uplink payload older than max_age; dropped");
                    self.metrics.drop(&uplink, "expired", u64::from(rec.items));
                    self.lane(lane).ack(rec.seq)?;
                    continue;
                }
                let Some(payload) = decode_payload(&rec.payload, rec.items) else {
                    warn!(
                        uplink,
                        seq = rec.seq,
                        "Unreadable payload in the uplink outbox; dropped"
                    );
                    self.metrics.drop(&uplink, "damaged", u64::from(rec.items));
                    self.lane(lane).ack(rec.seq)?;
                    continue;
                };
                self.update_gauges();
                return Ok(Some(Queued {
                    lane,
                    seq: rec.seq,
                    created: rec.created,
                    payload,
                }));
            }
        }
        self.update_gauges();
        Ok(None)
    }

    /// Removes a delivered (or refused) payload.
    pub fn ack(&mut self, lane: Lane, seq: u64) -> Result<(), BufferError> {
        let r = self.lane(lane).ack(seq);
        self.update_gauges();
        r
    }

    /// Hands the lane's unacknowledged payloads out again from the oldest (after a failure).
    pub fn rewind(&mut self, lane: Lane) {
        self.lane(lane).rewind();
    }

    /// Forces what was queued to disk.
    pub fn sync(&mut self, now: Timestamp) -> Result<(), BufferError> {
        self.urgent.sync(now)?;
        self.normal.sync(now)
    }

    /// Payloads not yet acknowledged, in both lanes.
    pub fn pending(&self) -> u64 {
        self.urgent.stats().records + self.normal.stats().records
    }

    fn update_gauges(&self) {
        let (u, n) = (self.urgent.stats(), self.normal.stats());
        let l = UplinkLabel {
            uplink: self.uplink.clone(),
        };
        self.metrics
            .outbox_bytes
            .get_or_create(&l)
            .set(i64::try_from(u.bytes + n.bytes).unwrap_or(i64::MAX));
        self.metrics
            .outbox_payloads
            .get_or_create(&l)
            .set(i64::try_from(u.records + n.records).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::buffer::WhenFull;

    fn spec() -> OutboxSpec {
        OutboxSpec {
            max_bytes: 4 * 1024 * 1024,
            max_age: Some(Duration::from_secs(3600)),
            when_full: WhenFull::DropOldest,
            fsync_interval: Duration::from_secs(1),
        }
    }

    fn p(body: &str, urgent: bool) -> Payload {
        Payload {
            body: body.as_bytes().to_vec(),
            attrs: vec![
                ("kind".into(), "realtime".into()),
                ("point_code".into(), "测点-1".into()),
            ],
            items: 3,
            urgent,
        }
    }

    #[test]
    fn payloads_round_trip_with_their_hints() {
        let x = p("{\"a\":1}", true);
        assert_eq!(decode_payload(&encode_payload(&x), 3), Some(x));
        assert_eq!(decode_payload(&[9, 0, 0, 0], 1), None);
        assert_eq!(decode_payload(&[1, 0, 5, 0], 1), None);
    }

    #[test]
    fn alarms_go_first_others_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = UplinkMetrics::default();
        let t0 = Timestamp::from_millis(1_000_000);
        {
            let mut o = Outbox::open(dir.path(), "u", &spec(), m.clone()).unwrap();
            o.push(&p("r1", false), t0).unwrap();
            o.push(&p("r2", false), t0).unwrap();
            o.push(&p("a1", true), t0).unwrap();
            let first = o.next(t0).unwrap().unwrap();
            assert_eq!(first.payload.body, b"a1");
            o.ack(first.lane, first.seq).unwrap();
            let second = o.next(t0).unwrap().unwrap();
            assert_eq!(second.payload.body, b"r1");
            // Not acknowledged: the process dies here.
        }
        let mut o = Outbox::open(dir.path(), "u", &spec(), m).unwrap();
        let bodies: Vec<Vec<u8>> = std::iter::from_fn(|| o.next(t0).unwrap().map(|q| q.payload.body)).collect();
        assert_eq!(bodies, vec![b"r1".to_vec(), b"r2".to_vec()]);
    }

    #[test]
    fn expired_payloads_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let m = UplinkMetrics::default();
        let mut o = Outbox::open(dir.path(), "u", &spec(), m.clone()).unwrap();
        let t0 = Timestamp::from_millis(1_000_000);
        o.push(&p("old", false), t0).unwrap();
        o.push(&p("new", false), t0.plus(Duration::from_secs(3000))).unwrap();
        let q = o.next(t0.plus(Duration::from_secs(3700))).unwrap().unwrap();
        assert_eq!(q.payload.body, b"new");
        let dropped = m
            .dropped
            .get_or_create(&crate::telemetry::uplink::UplinkReason {
                uplink: "u".into(),
                reason: "expired",
            })
            .get();
        assert_eq!(dropped, 3);
    }
}
