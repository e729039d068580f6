//! Live state shared between the rules task (the only writer) and the API (readers):
//! each point's latest reading, the active alarms, and the broadcast of alarm events.
//!
//! Locks are std `RwLock`s held for copies only, never across an await.

use std::collections::BTreeMap;
use std::sync::RwLock;

use tokio::sync::broadcast;

use crate::config::HazardSource;
use crate::model::{AlarmEvent, PointId, PointTable, Reading, Timestamp, Transition};

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
    active: RwLock<BTreeMap<String, AlarmEvent>>,
    events: broadcast::Sender<AlarmEvent>,
}

impl LiveState {
    /// Empty state for `points`.
    pub fn new(gateway_id: String, points: PointTable, hazard_sources: Vec<HazardSource>, started: Timestamp) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            values: RwLock::new(vec![None; points.len()]),
            active: RwLock::new(BTreeMap::new()),
            gateway_id,
            points,
            hazard_sources,
            started,
            events,
        }
    }

    /// Records the latest readings.
    pub fn update(&self, batch: &[Reading]) {
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        for r in batch {
            if let Some(slot) = values.get_mut(r.point.index()) {
                *slot = Some(*r);
            }
        }
    }

    /// The latest reading of every point, in point order.
    pub fn readings(&self) -> Vec<(PointId, Option<Reading>)> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        self.points.iter().map(|(id, _)| (id, values[id.index()])).collect()
    }

    /// Restores an alarm that was active when the gateway last stopped (no event is published).
    pub fn restore(&self, event: AlarmEvent) {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        active.insert(event.alarm_id.clone(), event);
    }

    /// Applies a journaled transition to the active set and publishes it; returns the number
    /// of active alarms afterwards.
    pub fn publish(&self, event: AlarmEvent) -> usize {
        let n = {
            let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
            match event.transition {
                Transition::Raised => {
                    active.insert(event.alarm_id.clone(), event.clone());
                }
                Transition::Cleared => {
                    active.remove(&event.alarm_id);
                }
            }
            active.len()
        };
        // No subscriber is not an error: the journal keeps the event for later readers.
        let _ = self.events.send(event);
        n
    }

    /// Active alarms, most urgent first, then oldest first.
    pub fn active_alarms(&self) -> Vec<AlarmEvent> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = active.values().cloned().collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.ts.cmp(&b.ts)));
        v
    }

    /// A live subscription to alarm events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AlarmEvent> {
        self.events.subscribe()
    }
}
