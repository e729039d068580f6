//! MQTT transport: QoS 1 publishes on a persistent session (`clean_session = false`), each
//! acknowledged by its PUBACK. The topic is a template (`plant/{gateway}/{kind}`).
//!
//! A payload is published only while the broker connection is up; when the connection drops
//! between publish and PUBACK, the payload stays in the outbox and is published again after
//! the reconnect (QoS 1: at least once, a receiver may see it twice).

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, MqttOptions, QoS};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::super::config::{Place, SecretRef};
use super::super::template::{self, Template};
use super::super::tls::TlsConfig;
use super::super::{BoxFuture, Payload, Transport, TransportError};
use crate::sinks::mqtt_link::{self, Acks, LinkLog};
use crate::spec::error::ConfigError;
use crate::spec::units;

fn default_port() -> u16 {
    1883
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `transport = { type = "mqtt", … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port (default 1883).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Client id (default `<gateway>-uplink-<name>`); the persistent session is keyed by it.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic template (`{uplink}`, `{gateway}`, `{kind}`, `{point_code}`, …).
    pub topic: String,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password from the environment or a file.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Keep-alive (default 30s, at least 5s).
    #[serde(default = "default_keep_alive", deserialize_with = "units::duration::deserialize")]
    pub keep_alive: Duration,
    /// How long to wait for a PUBACK (default 10s).
    #[serde(default = "default_ack_timeout", deserialize_with = "units::duration::deserialize")]
    pub ack_timeout: Duration,
    /// Publish retained.
    #[serde(default)]
    pub retain: bool,
    /// TLS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl MqttConfig {
    /// Checks the settings.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        if self.host.trim().is_empty() {
            errors.push(at.error("host", "must not be empty"));
        }
        match Template::parse(&self.topic).and_then(|t| t.check(template::TRANSPORT_VARS)) {
            Ok(()) if self.topic.contains(['+', '#']) => {
                errors.push(at.error("topic", "a publish topic must not contain `+` or `#`"))
            }
            Ok(()) => {}
            Err(e) => errors.push(at.error("topic", e)),
        }
        if self.keep_alive < Duration::from_secs(5) {
            errors.push(at.error("keep_alive", "must be at least 5s"));
        }
        if self.ack_timeout.is_zero() {
            errors.push(at.error("ack_timeout", "must be longer than zero"));
        }
        if self.client_id.as_ref().is_some_and(|c| c.is_empty()) {
            errors.push(at.error("client_id", "must not be empty"));
        }
        if self.password.is_some() && self.username.is_none() {
            errors.push(at.error("password", "a password needs a `username`"));
        }
        if let Some(p) = &mut self.password {
            p.check(at, "password", errors);
        }
        if let Some(tls) = &mut self.tls {
            tls.check(at, "tls", errors);
        }
    }
}

/// The log lines of an uplink's broker connection, named by the uplink (`uplink = …`).
struct UplinkLog(String);

impl LinkLog for UplinkLog {
    fn connected(&self) {
        info!(uplink = %self.0, "Connected to the uplink's MQTT broker");
    }

    /// Warns when a connection that was up fails; a broker not reachable from the start is
    /// reported by each delivery attempt (`broker not connected`).
    fn unreachable(&self, error: &ConnectionError, after_connection: bool) {
        if after_connection {
            warn!(uplink = %self.0, error = %error, "Uplink's MQTT broker unreachable; retrying");
        }
    }
}

/// The MQTT publisher of one uplink.
#[derive(Debug)]
pub struct MqttTransport {
    uplink: String,
    gateway: String,
    topic: Template,
    retain: bool,
    ack_timeout: Duration,
    client: AsyncClient,
    acks: Acks,
    up: watch::Receiver<bool>,
}

impl MqttTransport {
    /// Starts the broker connection for `cfg`; it runs until `stop` fires.
    pub fn start(cfg: &MqttConfig, uplink: &str, gateway: &str, stop: CancellationToken) -> Result<Self, String> {
        let client_id = cfg
            .client_id
            .clone()
            .unwrap_or_else(|| format!("{gateway}-uplink-{uplink}"));
        let mut opts = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
        opts.set_keep_alive(cfg.keep_alive);
        opts.set_clean_session(false);
        if let Some(user) = &cfg.username {
            let password = match &cfg.password {
                Some(p) => p.resolve().map_err(|e| format!("password: {e}"))?.text(),
                None => String::new(),
            };
            opts.set_credentials(user.clone(), password);
        }
        if let Some(tls) = &cfg.tls {
            let config = tls.client_config()?;
            opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                config,
            )));
        }
        let (client, eventloop) = AsyncClient::new(opts, 16);
        let (acks, up) = mqtt_link::start(eventloop, UplinkLog(uplink.to_string()), stop);
        Ok(Self {
            uplink: uplink.to_string(),
            gateway: gateway.to_string(),
            topic: Template::parse(&cfg.topic)?,
            retain: cfg.retain,
            ack_timeout: cfg.ack_timeout,
            client,
            acks,
            up,
        })
    }

    async fn publish(&mut self, payload: &Payload) -> Result<(), TransportError> {
        if !*self.up.borrow() {
            // Give a connection in progress a moment before reporting the broker down.
            let wait = self.up.wait_for(|up| *up);
            if tokio::time::timeout(self.ack_timeout, wait).await.is_err() {
                return Err(TransportError::Unreachable("broker not connected".into()));
            }
        }
        self.acks.forget_earlier();
        let topic = template::render_for(&self.topic, &self.uplink, &self.gateway, payload);
        self.client
            .publish(topic, QoS::AtLeastOnce, self.retain, payload.body.clone())
            .await
            .map_err(|e| TransportError::Unreachable(format!("publish: {e}")))?;
        let deadline = tokio::time::sleep(self.ack_timeout);
        tokio::pin!(deadline);
        let acked = self.acks.acked();
        tokio::pin!(acked);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err(TransportError::NotAcknowledged(format!("no PUBACK in {:?}", self.ack_timeout))),
                changed = self.up.changed() => {
                    if changed.is_err() || !*self.up.borrow() {
                        return Err(TransportError::Unreachable("connection lost before the PUBACK".into()));
                    }
                }
                acked = &mut acked => return match acked {
                    Some(_) => Ok(()),
                    None => Err(TransportError::Unreachable("MQTT client stopped".into())),
                },
            }
        }
    }
}

impl Transport for MqttTransport {
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.publish(payload))
    }
}
