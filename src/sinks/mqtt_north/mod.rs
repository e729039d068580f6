//! Northbound MQTT: alarm transitions published at QoS 1 to a park or regulator broker.
//!
//! Design: like webhooks, each target follows the alarm journal with a durable cursor
//! ([`crate::sinks::follow`]); a transition counts as delivered only when the broker's PUBACK
//! for its packet id arrives, and only then does the cursor move. One task owns the rumqttc
//! event loop and polls it without pause (reconnecting with backoff), reporting sent packet ids
//! and PUBACKs to the delivery task ([`crate::sinks::mqtt_link`]). A publish whose PUBACK does
//! not come within the deadline is sent again: delivery is at least once, in journal order.
//!
//! Readings (`readings = { … }`) take the time-series stores' acceptance path instead: the
//! rules task offers each batch to the target's intake ([`NorthIntakes`]), which writes the
//! messages to a durable outbox; a publisher on a connection of its own sends them at QoS 1
//! with a window in flight (`readings.rs`, `outbox.rs`, `payload.rs`; `docs/mqtt-north.md`).
//! With `encoding = "sparkplug_b"` the same outbox carries Sparkplug B: the intake writes
//! session-free records and the publisher encodes them for the current MQTT session, after its
//! births (`sparkplug.rs`, `sparkplug_proto.rs`; `docs/sparkplug.md`).

pub mod config;
mod outbox;
mod payload;
mod readings;
mod sparkplug;
mod sparkplug_proto;
#[cfg(test)]
mod test_points;
pub mod tls;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::MqttNorthSpec;

use crate::model::AlarmEvent;
use crate::sinks::buffer::DiskQueue;
use crate::sinks::follow::{FollowError, Follower};
use crate::sinks::journal::AlarmJournal;
use crate::sinks::mqtt_link::{self, Acks, LinkLog};
use crate::telemetry::{Metrics, WebhookLabel};

/// How long to wait for a PUBACK before publishing again.
const ACK_DEADLINE: Duration = Duration::from_secs(15);

/// Why a target could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttNorthError {
    /// The password's environment variable is not set.
    #[error("mqtt_north `{target}`: environment variable `{var}` (password_env) is not set")]
    MissingPassword {
        /// Target.
        target: String,
        /// Variable.
        var: String,
    },
    /// The TLS files could not be used (they changed since the config was checked).
    #[error("mqtt_north `{target}`: TLS: {source}")]
    Tls {
        /// Target.
        target: String,
        /// Cause.
        source: tls::NorthTlsError,
    },
    /// The readings outbox could not be opened.
    #[error("mqtt_north `{target}`: readings outbox: {source}")]
    Outbox {
        /// Target.
        target: String,
        /// Cause.
        source: crate::sinks::buffer::BufferError,
    },
    /// The readings pattern is not a glob (validation checks it; the file changed since).
    #[error("mqtt_north `{target}`: readings points: {detail}")]
    Points {
        /// Target.
        target: String,
        /// Cause.
        detail: String,
    },
    /// The delivery cursor could not be opened.
    #[error("mqtt_north `{target}`: {source}")]
    Follow {
        /// Target.
        target: String,
        /// Cause.
        source: FollowError,
    },
}

/// The live state (its alarm feed and point table), the clock, and the list where a target
/// with readings puts its intake for the rules task.
#[derive(Debug, Clone)]
pub struct ReadingSource {
    /// Live state (its alarm feed and point table).
    pub live: Arc<crate::state::LiveState>,
    /// Wall clock.
    pub clock: crate::clock::SharedClock,
    /// Where the rules task finds the readings intakes.
    pub intakes: NorthIntakes,
}

pub use readings::NorthItem;

#[derive(Debug)]
struct Intake {
    target: String,
    id: u64,
    tx: mpsc::Sender<NorthItem>,
}

/// The intakes of the targets that publish readings, where the rules task hands every batch
/// (`try_send`: it never waits for a broker). A target joins when it starts and leaves when
/// it stops, so a reload that restarts targets needs no rewiring.
#[derive(Debug, Clone, Default)]
pub struct NorthIntakes(Arc<Mutex<IntakeList>>);

/// A target that left (stopped by a reload): the batches offered meanwhile wait for it to
/// join again, so a restart in a reload loses nothing.
#[derive(Debug)]
struct Away {
    target: String,
    since: tokio::time::Instant,
    items: Vec<NorthItem>,
}

/// Batches kept for a target that left, at most; more are dropped (`dropped_reload`).
const AWAY_LIMIT: usize = 4096;
/// How long a target that left is waited for; then its batches are dropped
/// (`dropped_removed`): the reload removed it.
const AWAY_FOR: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct IntakeList {
    next_id: u64,
    intakes: Vec<Intake>,
    away: Vec<Away>,
    /// Readings dropped since the last log line, and its pacing.
    unlogged: u64,
    log: crate::telemetry::LogEvery,
}

impl Default for IntakeList {
    fn default() -> Self {
        Self {
            next_id: 0,
            intakes: Vec::new(),
            away: Vec::new(),
            unlogged: 0,
            log: crate::telemetry::LogEvery::new(readings::LOG_EVERY),
        }
    }
}

impl NorthIntakes {
    fn join(&self, target: &str, tx: mpsc::Sender<NorthItem>) -> u64 {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.next_id += 1;
        let id = g.next_id;
        g.intakes.retain(|i| i.target != target);
        // What was offered while the target was away goes first, in order.
        if let Some(k) = g.away.iter().position(|a| a.target == target) {
            for item in g.away.swap_remove(k).items {
                // The new intake's queue is empty and far larger than `AWAY_LIMIT`.
                let _ = tx.try_send(item);
            }
        }
        g.intakes.push(Intake {
            target: target.to_string(),
            id,
            tx,
        });
        id
    }

    fn leave(&self, id: u64) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = g.intakes.iter().position(|i| i.id == id) {
            let gone = g.intakes.remove(k);
            g.away.push(Away {
                target: gone.target,
                since: tokio::time::Instant::now(),
                items: Vec::new(),
            });
        }
    }

    /// Hands `batch` to every intake; a full or closed one loses it for that target only,
    /// counted (`dropped_queue_full`, `dropped_closed`) and logged at most every 10 s.
    pub fn offer(
        &self,
        batch: &crate::model::ReadingBatch,
        receipt: Option<&crate::model::Receipt>,
        metrics: &crate::telemetry::north::NorthMetrics,
    ) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut lost = 0;
        let count = |target: &str, result: &'static str, n: u64| {
            metrics
                .readings
                .get_or_create(&WebhookLabel {
                    target: target.to_string(),
                    result,
                })
                .inc_by(n);
        };
        // Targets away too long were removed by the reload: what waited for them is lost.
        // Nothing to do on the usual path, where no target is away.
        if !g.away.is_empty() {
            let now = tokio::time::Instant::now();
            let (gone, away): (Vec<Away>, Vec<Away>) = std::mem::take(&mut g.away)
                .into_iter()
                .partition(|a| now.duration_since(a.since) >= AWAY_FOR);
            g.away = away;
            for a in gone {
                let n: usize = a.items.iter().map(|(b, _)| b.len()).sum();
                count(&a.target, "dropped_removed", n as u64);
            }
        }
        for a in &mut g.away {
            if a.items.len() < AWAY_LIMIT {
                a.items.push((batch.clone(), receipt.cloned()));
            } else {
                count(&a.target, "dropped_reload", batch.len() as u64);
                lost += batch.len() as u64;
            }
        }
        for i in &g.intakes {
            if let Err(e) = i.tx.try_send((batch.clone(), receipt.cloned())) {
                let result = match e {
                    mpsc::error::TrySendError::Full(_) => "dropped_queue_full",
                    mpsc::error::TrySendError::Closed(_) => "dropped_closed",
                };
                metrics
                    .readings
                    .get_or_create(&WebhookLabel {
                        target: i.target.clone(),
                        result,
                    })
                    .inc_by(batch.len() as u64);
                lost += batch.len() as u64;
            }
        }
        if lost > 0 {
            g.unlogged += lost;
            if g.log.hit().is_some() {
                warn!(
                    readings = g.unlogged,
                    "Northbound readings queue full; readings dropped"
                );
                g.unlogged = 0;
            }
        }
    }
}

/// The log lines of a target's broker connection, named by the target (`mqtt_north = …`).
struct NorthLog(String);

impl LinkLog for NorthLog {
    fn connected(&self) {
        info!(mqtt_north = %self.0, "Connected to the northbound broker");
    }

    fn unreachable(&self, error: &ConnectionError, _after_connection: bool) {
        warn!(mqtt_north = %self.0, error = %error, "Northbound broker unreachable; retrying");
    }
}

impl NorthLog {
    fn connected_readings(&self) {
        info!(mqtt_north = %self.0, "Readings connected to the northbound broker");
    }

    fn unreachable_readings(&self, error: &ConnectionError) {
        warn!(mqtt_north = %self.0, error = %error,
              "Northbound broker unreachable for readings; they wait in the outbox; retrying");
    }
}

/// Starts publishing to `spec`'s broker; the tasks stop when `stop` fires.
pub fn start(
    spec: MqttNorthSpec,
    gateway: &str,
    data_dir: &Path,
    journal: Arc<AlarmJournal>,
    readings_from: ReadingSource,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, MqttNorthError> {
    let target = spec.name.clone();
    let password = match &spec.password_env {
        Some(var) => Some(std::env::var(var).map_err(|_| MqttNorthError::MissingPassword {
            target: target.clone(),
            var: var.clone(),
        })?),
        None => None,
    };
    let feed = readings_from.live.subscribe();
    let follower = Follower::open(&data_dir.join("mqtt_north"), &target, journal, feed).map_err(|source| {
        MqttNorthError::Follow {
            target: target.clone(),
            source,
        }
    })?;
    let client_id = spec.client_id.clone().unwrap_or_else(|| format!("{gateway}-{target}"));
    // Validation guarantees a keep-alive of at least 5 s (rumqttc panics below 1 s) and a
    // non-empty client id.
    let mut opts = MqttOptions::new(client_id, spec.host.clone(), spec.port);
    opts.set_keep_alive(spec.keep_alive);
    opts.set_clean_session(true);
    if let Some(user) = &spec.username {
        opts.set_credentials(user.clone(), password.unwrap_or_default());
    }
    if let Some(tls) = &spec.tls {
        let config = tls.client_config().map_err(|source| MqttNorthError::Tls {
            target: target.clone(),
            source,
        })?;
        opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            config,
        )));
    }
    let mut readings_tasks: Vec<JoinHandle<()>> = Vec::new();
    if let Some(r) = &spec.readings {
        let mut reading_opts = opts.clone();
        let id = format!("{}-readings", opts.client_id());
        reading_opts.set_client_id(id);
        readings_tasks = start_readings(
            &target,
            r,
            gateway,
            data_dir,
            reading_opts,
            readings_from,
            &metrics,
            &stop,
        )?;
    }
    let (client, eventloop) = AsyncClient::new(opts, 16);
    let (acks, _up) = mqtt_link::start(eventloop, NorthLog(spec.name.clone()), stop.clone());
    let publisher = Publisher {
        spec,
        gateway: gateway.to_string(),
        client,
        acks,
        metrics,
    };
    let alarms = tokio::spawn(publisher.run(follower, stop));
    // One handle for the whole target: a reload or a stop waits until the readings intake
    // has written what it held and nothing else uses the outbox's files.
    Ok(tokio::spawn(async move {
        let _ = alarms.await;
        for t in readings_tasks {
            let _ = t.await;
        }
    }))
}

/// Directory of a target's readings outbox under the gateway's data dir.
pub fn outbox_dir(data_dir: &Path, target: &str) -> std::path::PathBuf {
    data_dir.join("mqtt_north").join(format!("{target}.outbox"))
}

/// Opens the target's outbox (replaying what a previous run left), joins the rules task's
/// list and starts the intake, the connection and the publisher.
#[allow(clippy::too_many_arguments)]
fn start_readings(
    target: &str,
    spec: &config::NorthReadings,
    gateway: &str,
    data_dir: &Path,
    opts: MqttOptions,
    from: ReadingSource,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, MqttNorthError> {
    let dir = outbox_dir(data_dir, target);
    let (queue, rec) = DiskQueue::open(&dir, spec.buffer.clone()).map_err(|source| MqttNorthError::Outbox {
        target: target.to_string(),
        source,
    })?;
    if rec.damaged > 0 {
        for (path, offset, bytes) in rec.damage.iter().take(10) {
            warn!(mqtt_north = %target, segment = %path.display(), offset, bytes, "Northbound outbox: damaged stretch skipped");
        }
        warn!(mqtt_north = %target, damaged = rec.damaged, "Northbound outbox had damaged records; skipped");
    }
    let m = metrics.north.clone();
    outbox::set_gauges(&m, target, &queue.stats(), from.clock.now());
    info!(mqtt_north = %target, replay_messages = rec.records, batch = ?spec.batch, in_flight = spec.in_flight,
          "Northbound readings outbox open");
    let glob = globset::Glob::new(&spec.points)
        .map(|g| g.compile_matcher())
        .map_err(|e| MqttNorthError::Points {
            target: target.to_string(),
            detail: e.to_string(),
        })?;
    let encoder = payload::Encoder::new(gateway, spec, &from.live.points, |p| glob.is_match(p));
    let (writer, framing, dial) = match &spec.sparkplug {
        None => {
            let dial = outbox::Dial {
                connect: Box::new(move || (opts.clone(), 0)),
                commands: None,
                linger: None,
            };
            (None, outbox::Framing::Json, dial)
        }
        Some(ids) => {
            let writer = sparkplug::Writer::new(&from.live.points, |p| glob.is_match(p));
            let session = sparkplug::Session::new(ids.clone(), from.live.clone(), |p| glob.is_match(p));
            let mut store = sparkplug::BdSeqStore::new(data_dir.join("mqtt_north").join(format!("{target}.bdseq")));
            let commands = sparkplug::Session::command_topic(ids);
            let (ids, name, clock) = (ids.clone(), target.to_string(), from.clock.clone());
            let mut log = crate::telemetry::LogEvery::new(readings::LOG_EVERY);
            let connect = move || {
                let (bd_seq, error) = store.take();
                if let Some(e) = error
                    && let Some(held) = log.hit()
                {
                    warn!(mqtt_north = %name, error = %e, not_logged_since_last = held,
                          "Cannot record the Sparkplug bdSeq; a restart may repeat it");
                }
                let (topic, body) = sparkplug::Session::death(&ids, bd_seq, clock.now());
                let mut o = opts.clone();
                o.set_last_will(rumqttc::LastWill::new(topic, body, QoS::AtLeastOnce, false));
                (o, bd_seq)
            };
            let dial = outbox::Dial {
                connect: Box::new(connect),
                commands: Some(commands),
                linger: Some(Duration::from_secs(3)),
            };
            (Some(writer), outbox::Framing::Sparkplug(Box::new(session)), dial)
        }
    };
    let queue = Arc::new(Mutex::new(queue));
    let notify = Arc::new(tokio::sync::Notify::new());
    let (tx, rx) = mpsc::channel(spec.queue_batches);
    let id = from.intakes.join(target, tx);
    let intakes = from.intakes.clone();
    let intake = readings::Intake {
        target: target.to_string(),
        spec: spec.clone(),
        encoder,
        sparkplug: writer,
        queue: queue.clone(),
        notify: notify.clone(),
        clock: from.clock.clone(),
        metrics: m.clone(),
        leave: readings::Leave(Box::new(move || intakes.leave(id))),
    };
    let intake = tokio::spawn(intake.run(rx, stop.clone()));
    let publisher = outbox::Publisher {
        target: target.to_string(),
        queue,
        notify,
        clock: from.clock,
        metrics: m,
        in_flight: spec.in_flight,
        max_age: spec.max_age,
        framing,
    };
    let [link, publish] = outbox::start(publisher, dial, NorthLog(format!("{target} readings")), stop.clone());
    Ok(vec![intake, link, publish])
}

#[derive(Debug)]
struct Publisher {
    spec: MqttNorthSpec,
    gateway: String,
    client: AsyncClient,
    acks: Acks,
    metrics: Metrics,
}

impl Publisher {
    async fn run(mut self, mut follower: Follower, stop: CancellationToken) {
        while let Some(page) = follower.next_page(&stop).await {
            for event in page {
                if self.spec.wants(&event) && !self.publish(&event, &stop).await {
                    return;
                }
                follower.advance(event.seq);
            }
        }
    }

    /// Publishes until the broker acknowledges; `false` if stopped first.
    async fn publish(&mut self, event: &AlarmEvent, stop: &CancellationToken) -> bool {
        let topic = self.spec.topic_for(&self.gateway, event);
        let payload = serde_json::json!({ "gateway": self.gateway, "event": event }).to_string();
        let name = self.spec.name.clone();
        let label = |result| WebhookLabel {
            target: name.clone(),
            result,
        };
        loop {
            self.acks.forget_earlier();
            if self
                .client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .await
                .is_err()
            {
                return false; // the event loop is gone: shutting down
            }
            match self.await_ack(stop).await {
                Some(true) => {
                    self.metrics.mqtt_north_publishes.get_or_create(&label("acked")).inc();
                    return true;
                }
                Some(false) => {
                    self.metrics.mqtt_north_publishes.get_or_create(&label("retried")).inc();
                    warn!(mqtt_north = %self.spec.name, seq = event.seq, "No PUBACK in time; publishing again");
                }
                None => return false,
            }
        }
    }

    /// `Some(true)` on our PUBACK, `Some(false)` past the deadline, `None` when stopped.
    async fn await_ack(&mut self, stop: &CancellationToken) -> Option<bool> {
        tokio::select! {
            _ = stop.cancelled() => None,
            _ = tokio::time::sleep(ACK_DEADLINE) => Some(false),
            acked = self.acks.acked() => acked.map(|_| true),
        }
    }
}
