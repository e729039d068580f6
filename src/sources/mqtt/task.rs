//! The broker tasks: a driver owns the rumqttc event loop and polls it without pause (never
//! cancelled midway, so no packet is half-sent), forwarding events through a bounded channel;
//! the routing task turns messages into readings, hands them to the pipeline in batches, and
//! only then acknowledges them.
//!
//! Design:
//! - Accepted means durable: a QoS 1 message is acknowledged only once the batch holding its
//!   readings is durable in history and in every store's buffer (or counted lost there): the
//!   batch carries a [`Receipt`] that settles when the last sink lets go of it. Acks leave in
//!   the order the messages came (MQTT requires it). A crash before that leaves the message
//!   unacknowledged in the broker's session, which delivers it again at the next connection.
//!   Meanwhile the task keeps reading, so consecutive batches commit as a group.
//! - Batching without delay: the routing task takes every event already waiting and sends
//!   the batch as soon as none is (or at 1024 readings or 64 pending acknowledgements), so a
//!   quiet link sends at once and a busy one sends larger batches.
//! - Backpressure: when the pipeline is slow, the channel fills, the driver stops reading the
//!   socket, and the broker queues (or, past its own limit, drops and logs) messages.
//! - Reconnect: after an error the driver waits (250 ms doubling to 30 s, with jitter) before
//!   the next poll, which reconnects; every CONNACK resubscribes every filter.
//! - Stale: a sweep at a quarter of the shortest `stale_after` sends `stale` readings.
//! - Broker lost: once the broker has been away (or never reached) for `comm_grace`, every
//!   point it feeds gets a `comm_fault` reading, which raises the broker's communication
//!   alarm; stale sweeps pause until it is back. A shorter absence (a broker restart) changes
//!   nothing downstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{AckToken, Client, Events, LinkEvent};
use super::health::MqttHealth;
use super::route::Router;
use crate::clock::SharedClock;
use crate::model::{Durable, DurableBatch, Reading, Receipt};
use crate::telemetry::{BrokerLabel, BrokerResult, MqttInMetrics};

const MAX_BATCH: usize = 1024;
const MAX_PENDING_ACKS: usize = 64;
/// Events buffered between the driver and the routing task.
const EVENT_QUEUE: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a stopping task waits for its last acknowledgements and DISCONNECT to leave.
const GOODBYE: Duration = Duration::from_secs(1);
/// Batches sent but not yet durable; past this the task stops reading until one settles.
const MAX_UNSETTLED: usize = 256;
/// How long a stopping task waits for its sent batches to become durable before it leaves
/// them unacknowledged (the broker then delivers them again).
const SETTLE_GRACE: Duration = Duration::from_secs(5);

/// One broker's subscriber.
#[derive(Debug)]
pub struct BrokerTask {
    /// Broker name.
    pub name: String,
    /// Its client handle.
    pub client: Client,
    /// Its event loop (moved into the driver).
    pub events: Events,
    /// Its subscriptions.
    pub router: Router,
    /// Into the pipeline.
    pub tx: mpsc::Sender<DurableBatch>,
    /// Stamps readings without a device time.
    pub clock: SharedClock,
    /// Broker metrics.
    pub metrics: MqttInMetrics,
    /// Broker health for the API.
    pub health: Arc<MqttHealth>,
    /// Absence before the broker counts as lost.
    pub grace: Duration,
}

/// The routing side of a broker task (everything but the event loop).
#[derive(Debug)]
struct Session {
    name: String,
    client: Client,
    router: Router,
    tx: mpsc::Sender<DurableBatch>,
    clock: SharedClock,
    metrics: MqttInMetrics,
    health: Arc<MqttHealth>,
    grace: Duration,
    /// Since when the broker has been away (from the start until the first connection).
    away_since: Option<Instant>,
    /// Whether its points were marked `comm_fault` for this absence.
    lost: bool,
}

#[derive(Debug, Default)]
struct Pending {
    batch: Vec<Reading>,
    acks: Vec<AckToken>,
    /// Sent batches, oldest first, with the acknowledgements that wait for them.
    unsettled: VecDeque<(Durable, Vec<AckToken>)>,
}

/// Resolves when the oldest sent batch is durable (never, if none is waiting).
async fn oldest_settled(unsettled: &mut VecDeque<(Durable, Vec<AckToken>)>) {
    match unsettled.front_mut() {
        // An error means the receipt's sender is gone, which is also its settling.
        Some((durable, _)) => {
            let _ = durable.await;
        }
        None => std::future::pending().await,
    }
}

/// Polls the event loop until it reports our DISCONNECT, the routing task is gone, or `stop`.
async fn drive(mut events: Events, keep: usize, tx: mpsc::Sender<Result<LinkEvent, String>>, stop: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.poll(keep) => e,
        };
        let failed = event.is_err();
        let last = matches!(event, Ok(LinkEvent::Disconnected));
        if matches!(event, Ok(LinkEvent::Connected { .. })) {
            backoff = FIRST_BACKOFF;
        }
        if tx.send(event).await.is_err() || last {
            return;
        }
        if failed {
            let wait = backoff.mul_f64(rand::random_range(0.8..1.2));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep(wait) => {}
            }
        }
    }
}

impl BrokerTask {
    /// Runs until `cancel` fires or the pipeline goes away.
    pub async fn run(self, cancel: CancellationToken) {
        let BrokerTask {
            name,
            client,
            events,
            router,
            tx,
            clock,
            metrics,
            health,
            grace,
        } = self;
        let session = Session {
            name,
            client,
            router,
            tx,
            clock,
            metrics,
            health,
            grace,
            away_since: Some(Instant::now()),
            lost: false,
        };
        session.run(events, cancel).await;
    }
}

impl Session {
    async fn run(mut self, events: Events, cancel: CancellationToken) {
        let label = BrokerLabel {
            broker: self.name.clone(),
        };
        let (ev_tx, mut ev_rx) = mpsc::channel(EVENT_QUEUE);
        let driver_stop = CancellationToken::new();
        let keep = self.router.keep_limit();
        let driver = tokio::spawn(drive(events, keep, ev_tx, driver_stop.clone()));
        let mut p = Pending::default();
        let mut connected: Option<bool> = None;
        let sweep_period = self.router.sweep_period();
        let mut sweep = tokio::time::interval(sweep_period.unwrap_or(Duration::from_secs(3600)));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.metrics.connected.get_or_create(&label).set(0);
        self.metrics.broker_lost.get_or_create(&label).set(0);
        'run: loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                () = oldest_settled(&mut p.unsettled) => {
                    if let Some((_, acks)) = p.unsettled.pop_front() {
                        self.ack(acks);
                    }
                }
                _ = second.tick() => {
                    self.health.sample(&self.name, self.clock.now());
                    self.check_lost(&mut p, &label);
                }
                _ = sweep.tick(), if sweep_period.is_some() => {
                    let n = self.router.sweep(Instant::now(), self.clock.now(), &mut p.batch);
                    self.health.count(&self.name, 0, n as u64);
                }
                event = ev_rx.recv(), if p.unsettled.len() < MAX_UNSETTLED => {
                    let Some(mut event) = event else { break };
                    // Take whatever is already waiting, then send: batches grow only under load.
                    loop {
                        self.handle(event, &mut p, &mut connected, &label);
                        if (p.batch.len() >= MAX_BATCH || p.acks.len() >= MAX_PENDING_ACKS)
                            && !self.flush(&mut p).await
                        {
                            break 'run;
                        }
                        match ev_rx.try_recv() {
                            Ok(next) => event = next,
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                }
            }
            if !self.flush(&mut p).await {
                break;
            }
        }
        // Stopping: what was decoded goes to the pipeline and is acknowledged once durable
        // (the sinks still run), then the acknowledgements and a DISCONNECT get a moment to
        // leave (the session stays).
        if self.flush(&mut p).await {
            let settle = async {
                while let Some((durable, acks)) = p.unsettled.pop_front() {
                    let _ = durable.await;
                    self.ack(acks);
                }
            };
            if tokio::time::timeout(SETTLE_GRACE, settle).await.is_err() {
                warn!(broker = %self.name, "Readings not durable in time at stop; left unacknowledged for the broker to deliver again");
            }
            self.client.disconnect();
            let _ = tokio::time::timeout(GOODBYE, async {
                // Messages still arriving are not acknowledged: the broker delivers them again.
                while let Some(ev) = ev_rx.recv().await {
                    if matches!(ev, Ok(LinkEvent::Disconnected) | Err(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        driver_stop.cancel();
        let _ = driver.await;
        self.metrics.connected.get_or_create(&label).set(0);
    }

    fn handle(
        &mut self,
        event: Result<LinkEvent, String>,
        p: &mut Pending,
        connected: &mut Option<bool>,
        label: &BrokerLabel,
    ) {
        match event {
            Ok(LinkEvent::Message {
                topic,
                payload,
                size,
                ack,
            }) => {
                let readings = if payload.len() < size {
                    self.router
                        .dropped(&topic, size, self.clock.now(), Instant::now(), &mut p.batch)
                } else {
                    self.router
                        .route(&topic, &payload, self.clock.now(), Instant::now(), &mut p.batch)
                };
                self.health.count(&self.name, 1, readings as u64);
                p.acks.extend(ack);
            }
            Ok(LinkEvent::Connected { session_present }) => {
                self.connects("ok");
                self.metrics.connected.get_or_create(label).set(1);
                self.metrics.broker_lost.get_or_create(label).set(0);
                self.health.connected(&self.name, self.clock.now());
                if self.away_since.take().is_some() {
                    self.router.link_back(Instant::now());
                }
                if std::mem::take(&mut self.lost) {
                    info!(broker = %self.name, "MQTT broker back; its points turn good with their next messages");
                }
                info!(broker = %self.name, session_present, "Connected to the MQTT broker; subscribing");
                *connected = Some(true);
                for (filter, qos) in self.router.filters() {
                    if !self.client.subscribe(filter, qos) {
                        warn!(broker = %self.name, filter, "Cannot queue a subscription");
                    }
                }
            }
            Ok(LinkEvent::SubscribeRefused) => {
                warn!(broker = %self.name, "The broker refused a subscription (check its ACL); those topics bring nothing");
            }
            Ok(LinkEvent::Disconnected | LinkEvent::Other) => {}
            Err(error) => {
                self.metrics.connected.get_or_create(label).set(0);
                self.health.failed(&self.name, self.clock.now(), &error);
                self.away_since.get_or_insert_with(Instant::now);
                self.connects("error");
                if *connected != Some(false) {
                    warn!(broker = %self.name, %error, "MQTT broker unreachable; reconnecting with backoff");
                }
                *connected = Some(false);
            }
        }
    }

    /// Marks the broker lost once it has been away for `grace`: `comm_fault` for its points.
    fn check_lost(&mut self, p: &mut Pending, label: &BrokerLabel) {
        let Some(since) = self.away_since else { return };
        if self.lost || since.elapsed() < self.grace {
            return;
        }
        self.lost = true;
        let points = self.router.link_lost(self.clock.now(), &mut p.batch);
        self.health.lost(&self.name);
        self.health.count(&self.name, 0, points as u64);
        self.metrics.broker_lost.get_or_create(label).set(1);
        warn!(
            broker = %self.name,
            away_s = since.elapsed().as_secs(),
            points,
            "MQTT broker lost; its points are comm_fault until it is back"
        );
    }

    /// Sends the batch with a receipt; its messages are acknowledged when the receipt settles
    /// (at once if the messages brought no readings, but still in order). `false` if the
    /// pipeline is gone.
    async fn flush(&mut self, p: &mut Pending) -> bool {
        if p.batch.is_empty() && p.acks.is_empty() {
            return true;
        }
        let (receipt, durable) = Receipt::new();
        if !p.batch.is_empty() {
            let batch = DurableBatch {
                readings: std::mem::take(&mut p.batch),
                receipt,
            };
            if self.tx.send(batch).await.is_err() {
                return false;
            }
        } else {
            drop(receipt);
        }
        if !p.acks.is_empty() {
            p.unsettled.push_back((durable, std::mem::take(&mut p.acks)));
        }
        true
    }

    /// Queues the acknowledgements of messages whose readings are durable.
    fn ack(&self, acks: Vec<AckToken>) {
        for ack in acks {
            if !self.client.ack(&ack) {
                self.metrics
                    .ack_failures
                    .get_or_create(&BrokerLabel {
                        broker: self.name.clone(),
                    })
                    .inc();
            }
        }
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
