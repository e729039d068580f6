//! The broker task: owns one [`Link`] and polls it without pause, routes messages to
//! readings, hands them to the pipeline in batches, and only then acknowledges them.
//!
//! Design:
//! - At least once: a QoS 1 message is acknowledged after the batch holding its readings was
//!   accepted by the pipeline's channel. A crash before that leaves it unacknowledged in the
//!   broker's session, which delivers it again at the next connection.
//! - Batching: readings are sent when 1024 have gathered, when 8 acknowledgements are waiting
//!   (brokers allow few unacknowledged messages in flight: mosquitto 20), or 5 ms after the
//!   first unsent one, whichever comes first.
//! - Reconnect: after an error the task waits (250 ms doubling to 30 s, with jitter) before the
//!   next poll, which reconnects; every CONNACK resubscribes every filter.
//! - Stale: a sweep at a quarter of the shortest `stale_after` sends `stale` readings.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{AckToken, Link, LinkEvent};
use super::route::Router;
use crate::clock::SharedClock;
use crate::model::Reading;
use crate::sources::ReadingBatch;
use crate::telemetry::{BrokerLabel, BrokerResult, MqttInMetrics};

const MAX_BATCH: usize = 1024;
const ACK_EVERY: usize = 8;
const LINGER: Duration = Duration::from_millis(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a stopping task waits for its last acknowledgements and DISCONNECT to leave.
const GOODBYE: Duration = Duration::from_secs(1);

/// One broker's subscriber.
#[derive(Debug)]
pub struct BrokerTask {
    /// Broker name.
    pub name: String,
    /// Its connection.
    pub link: Link,
    /// Its subscriptions.
    pub router: Router,
    /// Into the pipeline.
    pub tx: mpsc::Sender<ReadingBatch>,
    /// Stamps readings without a device time.
    pub clock: SharedClock,
    /// Broker metrics.
    pub metrics: MqttInMetrics,
}

#[derive(Debug, Default)]
struct Pending {
    batch: Vec<Reading>,
    acks: Vec<AckToken>,
    flush_at: Option<Instant>,
}

impl BrokerTask {
    /// Runs until `cancel` fires or the pipeline goes away.
    pub async fn run(mut self, cancel: CancellationToken) {
        let label = BrokerLabel {
            broker: self.name.clone(),
        };
        let mut p = Pending::default();
        let mut backoff = FIRST_BACKOFF;
        let mut connected: Option<bool> = None;
        let sweep_period = self.router.sweep_period();
        let mut sweep = tokio::time::interval(sweep_period.unwrap_or(Duration::from_secs(3600)));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.metrics.connected.get_or_create(&label).set(0);
        loop {
            let flush_at = p.flush_at;
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                    if !self.flush(&mut p).await { return; }
                }
                _ = sweep.tick(), if sweep_period.is_some() => {
                    if self.router.sweep(Instant::now(), self.clock.now(), &mut p.batch) > 0 {
                        p.flush_at.get_or_insert_with(|| Instant::now() + LINGER);
                    }
                }
                event = self.link.poll() => match event {
                    Ok(LinkEvent::Message { topic, payload, ack }) => {
                        self.router.route(&topic, &payload, self.clock.now(), Instant::now(), &mut p.batch);
                        p.acks.extend(ack);
                        p.flush_at.get_or_insert_with(|| Instant::now() + LINGER);
                    }
                    Ok(LinkEvent::Connected { session_present }) => {
                        backoff = FIRST_BACKOFF;
                        self.connects("ok");
                        self.metrics.connected.get_or_create(&label).set(1);
                        info!(broker = %self.name, session_present, "Connected to the MQTT broker; subscribing");
                        connected = Some(true);
                        for (filter, qos) in self.router.filters() {
                            if !self.link.subscribe(filter, qos) {
                                warn!(broker = %self.name, filter, "Cannot queue a subscription");
                            }
                        }
                    }
                    Ok(LinkEvent::SubscribeRefused) => {
                        warn!(broker = %self.name, "The broker refused a subscription (check its ACL); those topics bring nothing");
                    }
                    Ok(LinkEvent::Other) => {}
                    Err(error) => {
                        self.metrics.connected.get_or_create(&label).set(0);
                        if connected != Some(false) {
                            warn!(broker = %self.name, %error, "MQTT broker unreachable; reconnecting with backoff");
                        }
                        self.connects("error");
                        connected = Some(false);
                        if !self.flush(&mut p).await { return; }
                        let wait = backoff.mul_f64(rand::random_range(0.8..1.2));
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = sleep(wait) => {}
                        }
                    }
                }
            }
            if (p.batch.len() >= MAX_BATCH || p.acks.len() >= ACK_EVERY) && !self.flush(&mut p).await {
                return;
            }
        }
        // Stopping: what was decoded goes to the pipeline and is acknowledged, then the
        // acknowledgements and a DISCONNECT get a moment to leave (the session stays).
        if self.flush(&mut p).await {
            self.link.disconnect();
            let _ = tokio::time::timeout(GOODBYE, async {
                while let Ok(ev) = self.link.poll().await {
                    if matches!(ev, LinkEvent::Message { .. }) {
                        // Not acknowledged: the broker delivers it again next time.
                        continue;
                    }
                }
            })
            .await;
        }
        self.metrics.connected.get_or_create(&label).set(0);
    }

    /// Sends the batch, then acknowledges its messages; `false` if the pipeline is gone.
    async fn flush(&mut self, p: &mut Pending) -> bool {
        p.flush_at = None;
        if !p.batch.is_empty() && self.tx.send(std::mem::take(&mut p.batch)).await.is_err() {
            return false;
        }
        for ack in p.acks.drain(..) {
            if !self.link.ack(&ack) {
                self.metrics
                    .ack_failures
                    .get_or_create(&BrokerLabel {
                        broker: self.name.clone(),
                    })
                    .inc();
            }
        }
        true
    }

    fn connects(&self, result: &'static str) {
        self.metrics
            .connects
            .get_or_create(&BrokerResult {
                broker: self.name.clone(),
                result,
            })
            .inc();
    }
}
