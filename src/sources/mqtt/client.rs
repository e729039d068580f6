//! The one place that knows rumqttc: builds MQTT 3.1.1 or 5 options (persistent session,
//! manual acks, TLS with the ring provider) and turns either protocol's events into one
//! [`LinkEvent`], so the broker task has a single body for both.
//!
//! Oversize messages: the transport accepts any packet MQTT allows ([`MQTT_MAX_REMAINING`])
//! and the routing task drops payloads over the subscription's `max_payload`, after which the
//! message is acknowledged like any other. A lower transport limit cannot work on MQTT 3.1.1:
//! the client has no way to tell the broker its limit, so refusing a packet breaks the
//! connection and the broker sends the same message again at every reconnect, and nothing
//! behind it in the session ever arrives. On MQTT 5 the broker would drop larger messages
//! itself, unseen and uncounted by the gateway, so the limit announced is the largest MQTT 5
//! can express.
//! Memory: payloads over `keep` are released as soon as their packet is decoded (only their
//! size travels on), and the payloads kept are copied out of the read buffer, so a small
//! message queued behind a big one does not pin the big one's buffer.

use std::sync::Arc;

use bytes::Bytes;
use rumqttc::{TlsConfiguration, Transport};

use super::config::{BrokerSpec, Protocol, TlsSpec};

/// Requests (acks, subscribes) queued for the event loop. Acks are queued with `try_ack`; the
/// loop reads at most 10 packets between draining requests, so this never fills in practice.
const REQUEST_CAPACITY: usize = 4096;

/// The largest "remaining length" of an MQTT packet (256 MiB - 1), the transport limit on both
/// protocols; see the module doc for why it is not lower.
pub const MQTT_MAX_REMAINING: usize = 268_435_455;

/// Why a broker connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The password's environment variable is not set.
    #[error("mqtt broker `{broker}`: environment variable `{var}` (password_env) is not set")]
    MissingPassword {
        /// Broker.
        broker: String,
        /// Variable.
        var: String,
    },
    /// A TLS file is missing or unusable.
    #[error("mqtt broker `{broker}`: TLS: {reason}")]
    Tls {
        /// Broker.
        broker: String,
        /// What is wrong.
        reason: String,
    },
}

/// What happened on the link.
#[derive(Debug)]
pub enum LinkEvent {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker still had our session (queued messages follow).
        session_present: bool,
    },
    /// A message.
    Message {
        /// Topic (checked UTF-8 by the protocol layer, re-checked by the caller).
        topic: Bytes,
        /// Payload; empty when it was larger than the `keep` limit of [`Events::poll`].
        payload: Bytes,
        /// Size of the payload as received.
        size: usize,
        /// What acknowledges it (QoS 1), once the pipeline has taken its readings.
        ack: Option<AckToken>,
    },
    /// The broker refused a subscription.
    SubscribeRefused,
    /// Our DISCONNECT went out (we are stopping).
    Disconnected,
    /// Anything else (pings, acks of our requests).
    Other,
}

/// Acknowledges one QoS 1 message.
#[derive(Debug)]
pub enum AckToken {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::Publish>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::mqttbytes::v5::Publish>),
}

/// The handle side: queues acknowledgements, subscriptions and the disconnect.
#[derive(Debug, Clone)]
pub enum Client {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// The event loop of either protocol. Its `poll` must not be cancelled midway (a packet
/// being written could be lost), so one task owns it and polls it without `select!`.
pub enum Events {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::EventLoop>),
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Events::V4(..) => "Events(MQTT 3.1.1)",
            Events::V5(..) => "Events(MQTT 5)",
        })
    }
}

/// Builds the client and its event loop for `spec`; nothing connects until the first poll.
pub fn link(spec: &BrokerSpec) -> Result<(Client, Events), ClientError> {
    let password = match (&spec.password, &spec.password_env) {
        (Some(p), _) => Some(p.0.clone()),
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| ClientError::MissingPassword {
            broker: spec.name.clone(),
            var: var.clone(),
        })?),
        (None, None) => None,
    };
    let transport = match &spec.tls {
        Some(tls) => Some(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(
            tls_config(tls).map_err(|reason| ClientError::Tls {
                broker: spec.name.clone(),
                reason,
            })?,
        )))),
        None => None,
    };
    // Validation guarantees what rumqttc's setters assert: keep-alive >= 1 s, non-empty
    // client id with a persistent session.
    Ok(match spec.protocol {
        Protocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(spec.client_id.clone(), spec.host.clone(), spec.port);
            o.set_keep_alive(spec.keep_alive)
                .set_clean_session(false)
                .set_manual_acks(true)
                .set_max_packet_size(MQTT_MAX_REMAINING, 64 * 1024);
            if let Some(user) = &spec.username {
                o.set_credentials(user.clone(), password.unwrap_or_default());
            }
            if let Some(t) = transport {
                o.set_transport(t);
            }
            let (c, e) = rumqttc::AsyncClient::new(o, REQUEST_CAPACITY);
            (Client::V4(c), Events::V4(Box::new(e)))
        }
        Protocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(spec.client_id.clone(), spec.host.clone(), spec.port);
            o.set_keep_alive(spec.keep_alive)
                .set_clean_start(false)
                .set_session_expiry_interval(Some(u32::try_from(spec.session_expiry.as_secs()).unwrap_or(u32::MAX)))
                .set_manual_acks(true)
                // Announced, or rumqttc would apply its own 10 KiB default. u32::MAX is the
                // largest value MQTT 5 can carry: the broker drops nothing for size.
                .set_max_packet_size(Some(u32::MAX));
            if let Some(user) = &spec.username {
                o.set_credentials(user.clone(), password.unwrap_or_default());
            }
            if let Some(t) = transport {
                o.set_transport(t);
            }
            let (c, e) = rumqttc::v5::AsyncClient::new(o, REQUEST_CAPACITY);
            (Client::V5(c), Events::V5(Box::new(e)))
        }
    })
}

impl Events {
    /// Next event; an error means the connection is down (the next call reconnects). A
    /// payload over `keep` bytes is dropped here (the event keeps its size); a kept one is
    /// copied out of the read buffer.
    pub async fn poll(&mut self, keep: usize) -> Result<LinkEvent, String> {
        match self {
            Events::V4(e) => {
                use rumqttc::{Event, Packet};
                match e.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(c)) => Ok(LinkEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Packet::Publish(mut p)) => {
                        let (payload, size) = detach(std::mem::take(&mut p.payload), keep);
                        Ok(LinkEvent::Message {
                            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
                            payload,
                            size,
                            ack: (p.qos != rumqttc::QoS::AtMostOnce).then(|| AckToken::V4(Box::new(p))),
                        })
                    }
                    Event::Incoming(Packet::SubAck(s))
                        if s.return_codes
                            .iter()
                            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
                    {
                        Ok(LinkEvent::SubscribeRefused)
                    }
                    Event::Outgoing(rumqttc::Outgoing::Disconnect) => Ok(LinkEvent::Disconnected),
                    _ => Ok(LinkEvent::Other),
                }
            }
            Events::V5(e) => {
                use rumqttc::v5::Event;
                use rumqttc::v5::mqttbytes::v5::Packet;
                match e.poll().await.map_err(|e| e.to_string())? {
                    Event::Incoming(Packet::ConnAck(c)) => Ok(LinkEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Event::Incoming(Packet::Publish(mut p)) => {
                        let (payload, size) = detach(std::mem::take(&mut p.payload), keep);
                        // The token keeps only what the ack needs; the topic is a slice of
                        // the read buffer too.
                        let topic = Bytes::copy_from_slice(&std::mem::take(&mut p.topic));
                        Ok(LinkEvent::Message {
                            topic,
                            payload,
                            size,
                            ack: (p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce).then(|| AckToken::V5(Box::new(p))),
                        })
                    }
                    Event::Incoming(Packet::SubAck(s)) if s.return_codes.iter().any(|c| !sub_ok_v5(c)) => {
                        Ok(LinkEvent::SubscribeRefused)
                    }
                    Event::Outgoing(rumqttc::Outgoing::Disconnect) => Ok(LinkEvent::Disconnected),
                    _ => Ok(LinkEvent::Other),
                }
            }
        }
    }
}

impl Client {
    /// Queues a subscription; `false` if the request queue is closed or full.
    pub fn subscribe(&self, filter: &str, qos: u8) -> bool {
        match self {
            Client::V4(c) => {
                let q = if qos == 0 {
                    rumqttc::QoS::AtMostOnce
                } else {
                    rumqttc::QoS::AtLeastOnce
                };
                c.try_subscribe(filter, q).is_ok()
            }
            Client::V5(c) => {
                use rumqttc::v5::mqttbytes::QoS;
                let q = if qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                c.try_subscribe(filter, q).is_ok()
            }
        }
    }

    /// Queues the acknowledgement of one message; `false` if it could not be queued (the
    /// broker then delivers the message again: a duplicate, never a loss).
    pub fn ack(&self, token: &AckToken) -> bool {
        match (self, token) {
            (Client::V4(c), AckToken::V4(p)) => c.try_ack(p).is_ok(),
            (Client::V5(c), AckToken::V5(p)) => c.try_ack(p).is_ok(),
            _ => false,
        }
    }

    /// Queues a DISCONNECT (the session stays on the broker).
    pub fn disconnect(&self) {
        let _ = match self {
            Client::V4(c) => c.try_disconnect().is_ok(),
            Client::V5(c) => c.try_disconnect().is_ok(),
        };
    }
}

/// The payload to pass on (a copy, or nothing when over `keep`) and its size. The packet's
/// own buffer is released when the caller drops `payload`.
fn detach(payload: Bytes, keep: usize) -> (Bytes, usize) {
    let size = payload.len();
    if size > keep {
        (Bytes::new(), size)
    } else {
        (Bytes::copy_from_slice(&payload), size)
    }
}

fn sub_ok_v5(c: &rumqttc::v5::mqttbytes::v5::SubscribeReasonCode) -> bool {
    use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as C;
    matches!(c, C::Success(_))
}

/// A rustls client config trusting `tls.ca_file`, with the optional client certificate.
fn tls_config(tls: &TlsSpec) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&tls.ca_file)
        .map_err(|e| format!("cannot read ca_file {}: {e}", tls.ca_file.display()))?;
    for ca in cas {
        let ca = ca.map_err(|e| format!("ca_file {}: {e}", tls.ca_file.display()))?;
        roots
            .add(ca)
            .map_err(|e| format!("ca_file {}: {e}", tls.ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {} holds no certificate", tls.ca_file.display()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("client_cert {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("client_key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mqtt::config::Secret;

    fn spec() -> BrokerSpec {
        BrokerSpec {
            name: "plant".into(),
            host: "127.0.0.1".into(),
            port: 1883,
            protocol: Protocol::V5,
            client_id: "gw-in-plant".into(),
            keep_alive: std::time::Duration::from_secs(30),
            username: Some("gw".into()),
            password: None,
            password_env: Some("HAZARD_TEST_UNSET_MQTT_PASSWORD".into()),
            tls: None,
            session_expiry: std::time::Duration::from_secs(3600),
            comm_grace: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn a_missing_password_variable_or_ca_file_stops_the_start_with_its_name() {
        let e = link(&spec()).unwrap_err().to_string();
        assert_eq!(
            e,
            "mqtt broker `plant`: environment variable `HAZARD_TEST_UNSET_MQTT_PASSWORD` (password_env) is not set"
        );
        let mut s = spec();
        s.password_env = None;
        s.password = Some(Secret("x".into()));
        s.tls = Some(TlsSpec {
            ca_file: "/nonexistent/ca.pem".into(),
            client: None,
        });
        let e = link(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("mqtt broker `plant`: TLS: cannot read ca_file /nonexistent/ca.pem"),
            "{e}"
        );
        assert_eq!(format!("{:?}", s.password), "Some(Secret(***))");
    }
}
