//! Northbound MQTT: alarm transitions published at QoS 1 to a park or regulator broker.
//!
//! Design: like webhooks, each target follows the alarm journal with a durable cursor
//! ([`crate::sinks::follow`]); a transition counts as delivered only when the broker's PUBACK
//! for its packet id arrives, and only then does the cursor move. One task owns the rumqttc
//! event loop and polls it without pause (reconnecting with backoff), reporting sent packet ids
//! and PUBACKs to the delivery task ([`crate::sinks::mqtt_link`]). A publish whose PUBACK does
//! not come within the deadline is sent again: delivery is at least once, in journal order.

pub mod config;
mod readings;
pub mod tls;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, MqttOptions, QoS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::MqttNorthSpec;

use crate::model::AlarmEvent;
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
    /// The delivery cursor could not be opened.
    #[error("mqtt_north `{target}`: {source}")]
    Follow {
        /// Target.
        target: String,
        /// Cause.
        source: FollowError,
    },
}

/// The live state (its alarm feed, reading broadcast and point table) and the clock that
/// paces each point's reading interval.
#[derive(Debug, Clone)]
pub struct ReadingSource {
    /// Live state (its reading broadcast and point table).
    pub live: Arc<crate::state::LiveState>,
    /// Wall clock.
    pub clock: crate::clock::SharedClock,
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
    if let Some(r) = &spec.readings {
        let mut reading_opts = opts.clone();
        let id = format!("{}-readings", opts.client_id());
        reading_opts.set_client_id(id);
        readings::start(
            target.clone(),
            r.clone(),
            gateway.to_string(),
            reading_opts,
            readings_from,
            metrics.clone(),
            stop.clone(),
        );
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
    Ok(tokio::spawn(publisher.run(follower, stop)))
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
