//! Live state shared between the rules task (the only writer) and the API (readers):
//! each point's latest reading, the active alarms, and the broadcast of alarm events.
//!
//! Locks are std `RwLock`s held for copies only, never across an await.
//!
//! [`devices`] holds the health of every device the sources talk to, which the API shows.

pub mod devices;

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::model::{AlarmEvent, HazardSource, PointId, PointTable, Reading, ThresholdSetting, Timestamp};
use crate::rules::{AlarmStats, Command, CommandError};

/// What the live feed carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// An alarm transition (journaled; its `seq` is the feed's event id).
    Alarm(Box<AlarmEvent>),
    /// The alarm system entered or left a flood.
    Flood {
        /// Whether in flood now.
        active: bool,
        /// Annunciated raises in the last 10 minutes.
        rate_10min: usize,
        /// When it changed.
        ts: Timestamp,
    },
}

/// An operator's command on its way to the rules task, with where to send the answer.
#[derive(Debug)]
pub struct CommandRequest {
    /// The alarm.
    pub alarm_id: String,
    /// What to do.
    pub command: Command,
    /// Who asks.
    pub user: String,
    /// Why.
    pub comment: String,
    /// What the operator found the alarm to be; set on the acknowledgement it produces.
    pub category: Option<crate::model::AckCategory>,
    /// The resulting transition, or why it was refused.
    pub reply: oneshot::Sender<Result<AlarmEvent, CommandError>>,
}

/// Sender half for operator commands (held by the API).
pub type CommandSender = mpsc::Sender<CommandRequest>;

/// Alarm events buffered for live subscribers; a subscriber further behind is cut off and
/// replays from the journal when it reconnects.
const EVENT_BUFFER: usize = 1024;

/// Current values and alarms of one gateway.
#[derive(Debug)]
pub struct LiveState {
    /// Gateway id.
    pub gateway_id: String,
    /// Every point.
    pub points: PointTable,
    /// Hazard sources, for grouping in the API and console.
    pub hazard_sources: Vec<HazardSource>,
    /// When the gateway started.
    pub started: Timestamp,
    values: RwLock<Vec<Option<Reading>>>,
    /// When the rules task last finished a round (ns since the epoch); readiness watches it.
    rules_heartbeat: std::sync::atomic::AtomicI64,
    /// What the self-checks found wrong, as `/readyz` reasons (replaced each round).
    diagnostics: RwLock<Vec<String>>,
    active: RwLock<BTreeMap<String, AlarmEvent>>,
    stats: RwLock<AlarmStats>,
    /// The threshold alarms' settings in force, for tuning suggestions (replaced on reload).
    thresholds: RwLock<std::sync::Arc<[ThresholdSetting]>>,
    events: broadcast::Sender<FeedEvent>,
    /// Reading batches for live-feed subscribers that asked for readings; sent only while
    /// someone listens.
    reading_batches: broadcast::Sender<std::sync::Arc<[Reading]>>,
}

/// Reading batches buffered for live subscribers; a subscriber further behind skips the
/// oldest (readings are not replayed, the next one brings the point up to date).
const READING_BUFFER: usize = 256;

impl LiveState {
    /// Empty state for `points`.
    pub fn new(gateway_id: String, points: PointTable, hazard_sources: Vec<HazardSource>, started: Timestamp) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (reading_batches, _) = broadcast::channel(READING_BUFFER);
        Self {
            reading_batches,
            values: RwLock::new(vec![None; points.len()]),
            rules_heartbeat: std::sync::atomic::AtomicI64::new(started.as_nanos()),
            diagnostics: RwLock::new(Vec::new()),
            active: RwLock::new(BTreeMap::new()),
            stats: RwLock::new(AlarmStats::default()),
            thresholds: RwLock::new(Vec::new().into()),
            gateway_id,
            points,
            hazard_sources,
            started,
            events,
        }
    }

    /// Records the latest readings and publishes them to the live feed (the console, the
    /// northbound readings, the uplinks' statistics). A reading that repeats the point's latest
    /// one exactly (same time, value and quality: an MQTT redelivery, a cache sent again) is not
    /// a new reading and is not published again.
    pub fn update(&self, batch: &[Reading]) {
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        let mut fresh: Option<Vec<Reading>> = None;
        for (i, r) in batch.iter().enumerate() {
            let Some(slot) = values.get_mut(r.point.index()) else {
                continue;
            };
            let repeat =
                slot.is_some_and(|l| l.ts == r.ts && l.quality == r.quality && l.value.to_bits() == r.value.to_bits());
            if repeat {
                fresh.get_or_insert_with(|| batch[..i].to_vec());
            } else {
                *slot = Some(*r);
                if let Some(f) = fresh.as_mut() {
                    f.push(*r);
                }
            }
        }
        drop(values);
        let out: &[Reading] = fresh.as_deref().unwrap_or(batch);
        if self.reading_batches.receiver_count() > 0 && !out.is_empty() {
            let _ = self.reading_batches.send(out.into());
        }
    }

    /// A live subscription to reading batches recorded from now on.
    pub fn subscribe_readings(&self) -> broadcast::Receiver<std::sync::Arc<[Reading]>> {
        self.reading_batches.subscribe()
    }

    /// The latest reading of every point, in point order.
    pub fn readings(&self) -> Vec<(PointId, Option<Reading>)> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        self.points.iter().map(|(id, _)| (id, values[id.index()])).collect()
    }

    /// Restores an alarm that was visible when the gateway last stopped (no event is published).
    pub fn restore(&self, event: AlarmEvent) {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        active.insert(event.alarm_id.clone(), event);
    }

    /// Applies a journaled transition to the visible set and publishes it; returns the number
    /// of alarms the operator is being asked to look at.
    pub fn publish(&self, event: AlarmEvent) -> usize {
        let n = {
            let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
            if event.visible() {
                active.insert(event.alarm_id.clone(), event.clone());
            } else {
                active.remove(&event.alarm_id);
            }
            active.values().filter(|e| e.annunciated()).count()
        };
        // No subscriber is not an error: the journal keeps the event for later readers.
        let _ = self.events.send(FeedEvent::Alarm(Box::new(event)));
        n
    }

    /// Publishes a flood change.
    pub fn publish_flood(&self, active: bool, rate_10min: usize, ts: Timestamp) {
        let _ = self.events.send(FeedEvent::Flood { active, rate_10min, ts });
    }

    /// The rules task is alive at `now`.
    pub fn rules_alive(&self, now: Timestamp) {
        self.rules_heartbeat
            .store(now.as_nanos(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Replaces the self-checks' current findings.
    pub fn set_diagnostics(&self, reasons: Vec<String>) {
        *self.diagnostics.write().unwrap_or_else(|p| p.into_inner()) = reasons;
    }

    /// The self-checks' current findings, as `/readyz` reasons.
    pub fn diagnostics(&self) -> Vec<String> {
        self.diagnostics.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// When the rules task last reported itself alive.
    pub fn rules_heartbeat(&self) -> Timestamp {
        Timestamp::from_nanos(self.rules_heartbeat.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Records the latest flood and chattering figures.
    pub fn set_stats(&self, stats: AlarmStats) {
        *self.stats.write().unwrap_or_else(|p| p.into_inner()) = stats;
    }

    /// Publishes the threshold alarms' settings (at start and after a reload).
    pub fn set_thresholds(&self, settings: Vec<ThresholdSetting>) {
        *self.thresholds.write().unwrap_or_else(|p| p.into_inner()) = settings.into();
    }

    /// The threshold alarms' settings in force.
    pub fn thresholds(&self) -> std::sync::Arc<[ThresholdSetting]> {
        self.thresholds.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest flood and chattering figures.
    pub fn stats(&self) -> AlarmStats {
        self.stats.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every alarm with something to show: unacknowledged first, then most urgent, then oldest.
    pub fn active_alarms(&self) -> Vec<AlarmEvent> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = active.values().cloned().collect();
        v.sort_by(|a, b| {
            b.annunciated()
                .cmp(&a.annunciated())
                .then(a.acknowledged.cmp(&b.acknowledged))
                .then(b.priority.cmp(&a.priority))
                .then(a.raised_at.unwrap_or(a.ts).cmp(&b.raised_at.unwrap_or(b.ts)))
        });
        v
    }

    /// Takes an alarm off the visible set without a transition (its rule was removed by a
    /// config reload); whether it was there.
    pub fn forget(&self, alarm_id: &str) -> bool {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        active.remove(alarm_id).is_some()
    }

    /// A live subscription to alarm events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKind, PointMeta, Quality};

    #[test]
    fn a_repeated_reading_is_not_published_again() {
        let mut t = PointTable::default();
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            ids.push(
                t.insert(PointMeta {
                    name: name.into(),
                    unit: "m".into(),
                    kind: PointKind::Level,
                    device: "d".into(),
                    hazard_source: None,
                    range: None,
                    description: None,
                })
                .unwrap(),
            );
        }
        let live = LiveState::new("gw".into(), t, Vec::new(), Timestamp::default());
        let mut feed = live.subscribe_readings();
        let r = |p: usize, ms: i64, v: f64| Reading {
            point: ids[p],
            ts: Timestamp::from_millis(ms),
            value: v,
            quality: Quality::Good,
        };
        live.update(&[r(0, 1000, 1.0), r(1, 1000, 2.0)]);
        assert_eq!(feed.try_recv().unwrap().len(), 2);
        // `a` again as it was (a redelivery), `b` with a new value at the same time, `a` later.
        live.update(&[r(0, 1000, 1.0), r(1, 1000, 2.5), r(0, 2000, 1.0)]);
        assert_eq!(&*feed.try_recv().unwrap(), &[r(1, 1000, 2.5), r(0, 2000, 1.0)]);
        // Nothing new at all: nothing published; an older reading is still news.
        live.update(&[r(0, 2000, 1.0)]);
        live.update(&[r(0, 500, 0.5)]);
        assert_eq!(&*feed.try_recv().unwrap(), &[r(0, 500, 0.5)]);
        assert!(feed.try_recv().is_err());
    }
}
