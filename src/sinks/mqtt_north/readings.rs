//! Northbound readings: each new reading of the chosen points published to
//! `hazard/{gateway}/readings/{point}` (by default), on a connection of its own so a stream of
//! readings never queues in front of an alarm.
//!
//! Design: readings come from the live state's broadcast (not from the journal: they are not
//! replayed after an outage; the platform gets the next value). The publisher never waits: it
//! hands each reading to the MQTT client's bounded queue with `try_publish`, and a full queue
//! (broker down or slow) drops the reading with a count. A per-point interval thins fast
//! points.

use std::sync::Arc;
use std::time::Duration;

use globset::Glob;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::config::{NorthReadings, ReadingQos};
use crate::clock::SharedClock;
use crate::model::{PointTable, Reading, Timestamp};
use crate::state::LiveState;
use crate::telemetry::{Metrics, WebhookLabel};

/// Readings the client may hold while the broker is slow or away.
const CLIENT_QUEUE: usize = 1024;

/// Starts the readings connection and publisher for target `target`.
pub(super) fn start(
    target: String,
    readings: NorthReadings,
    gateway: String,
    opts: MqttOptions,
    from: super::ReadingSource,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let super::ReadingSource { live, clock } = from;
    let Ok(glob) = Glob::new(&readings.points) else {
        // Validation checked the glob; nothing to publish if it were bad.
        warn!(mqtt_north = %target, "Readings pattern is not a glob; publishing no readings");
        return;
    };
    let glob = glob.compile_matcher();
    let wanted: Vec<bool> = live.points.iter().map(|(_, m)| glob.is_match(&*m.name)).collect();
    let (client, eventloop) = AsyncClient::new(opts, CLIENT_QUEUE);
    let log = super::NorthLog(format!("{target} readings"));
    let (acks, _up) = crate::sinks::mqtt_link::start(eventloop, log, stop.clone());
    // Packet reports of this connection matter to nobody.
    acks.discard();
    let feed = live.subscribe_readings();
    let publisher = ReadingPublisher {
        last_sent: vec![None; wanted.len()],
        wanted,
        target,
        readings,
        gateway,
        client,
        clock,
        metrics,
    };
    tokio::spawn(publisher.run(feed, live, stop));
}

#[derive(Debug)]
struct ReadingPublisher {
    target: String,
    readings: NorthReadings,
    gateway: String,
    client: AsyncClient,
    wanted: Vec<bool>,
    last_sent: Vec<Option<Timestamp>>,
    clock: SharedClock,
    metrics: Metrics,
}

impl ReadingPublisher {
    async fn run(
        mut self,
        mut feed: broadcast::Receiver<Arc<[Reading]>>,
        live: Arc<LiveState>,
        stop: CancellationToken,
    ) {
        loop {
            let batch = tokio::select! {
                _ = stop.cancelled() => return,
                b = feed.recv() => b,
            };
            match batch {
                Ok(batch) => self.publish(&batch, &live.points),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.metrics
                        .mqtt_north_reading_batches_lagged
                        .get_or_create(&self.label("lagged"))
                        .inc_by(n);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn label(&self, result: &'static str) -> WebhookLabel {
        WebhookLabel {
            target: self.target.clone(),
            result,
        }
    }

    fn due(&mut self, r: &Reading, now: Timestamp) -> bool {
        let i = r.point.index();
        if !self.wanted.get(i).copied().unwrap_or(false) {
            return false;
        }
        let interval = self.readings.interval.unwrap_or(Duration::ZERO);
        let due = self.last_sent[i].is_none_or(|last| now.since(last) >= interval);
        if due {
            self.last_sent[i] = Some(now);
        }
        due
    }

    fn publish(&mut self, batch: &[Reading], points: &PointTable) {
        let now = self.clock.now();
        let qos = match self.readings.qos {
            ReadingQos::AtMostOnce => QoS::AtMostOnce,
            ReadingQos::AtLeastOnce => QoS::AtLeastOnce,
        };
        let (mut queued, mut dropped) = (0u64, 0u64);
        for r in batch {
            if !self.due(r, now) {
                continue;
            }
            let point = &points.meta(r.point).name;
            let payload = serde_json::json!({
                "gateway": self.gateway,
                "point": &**point,
                "value": r.value.is_finite().then_some(r.value),
                "quality": r.quality.as_str(),
                "ts_ms": r.ts.as_millis(),
            })
            .to_string();
            let topic = self.readings.topic_for(&self.gateway, point);
            match self.client.try_publish(topic, qos, false, payload) {
                Ok(()) => queued += 1,
                Err(_) => dropped += 1,
            }
        }
        if queued > 0 {
            self.metrics
                .mqtt_north_readings
                .get_or_create(&self.label("queued"))
                .inc_by(queued);
        }
        if dropped > 0 {
            self.metrics
                .mqtt_north_readings
                .get_or_create(&self.label("dropped_queue_full"))
                .inc_by(dropped);
            warn!(mqtt_north = %self.target, dropped, "Northbound client queue full; readings dropped");
        }
    }
}
