//! Health of each broker connection as its task sees it; `/api/v1/devices` lists every broker
//! as a device (`mqtt-broker:<name>`) beside the polled devices. Each broker has its own std
//! mutex, held only to copy or bump a few fields (never across an await).

use std::collections::VecDeque;
use std::sync::Mutex;

use super::config::{MqttInSpec, Protocol};
use crate::model::Timestamp;
pub use crate::state::devices::MqttBrokerHealthView;
use crate::state::devices::{DeviceHealthView, EndpointBoard};

/// Samples kept for the per-second rates: one a second, so the rates cover the last 10 s.
const RATE_SAMPLES: usize = 11;

#[derive(Debug, Default)]
struct State {
    view: MqttBrokerHealthView,
    connects: u64,
    /// (time, messages, readings), oldest first.
    samples: VecDeque<(Timestamp, u64, u64)>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    state: Mutex<State>,
}

/// Health of every broker with subscriptions, in config order.
#[derive(Debug, Default)]
pub struct MqttHealth {
    entries: Vec<Entry>,
}

impl MqttHealth {
    /// A board for the brokers of `spec` that have at least one subscription.
    pub fn new(spec: &MqttInSpec) -> Self {
        Self {
            entries: spec
                .brokers
                .iter()
                .enumerate()
                .filter(|(i, _)| spec.subscriptions.iter().any(|s| s.broker == *i))
                .map(|(_, b)| Entry {
                    name: b.name.clone(),
                    state: Mutex::new(State {
                        view: MqttBrokerHealthView {
                            address: format!("{}:{}", b.host, b.port),
                            protocol: match b.protocol {
                                Protocol::V311 => "3.1.1".into(),
                                Protocol::V5 => "5".into(),
                            },
                            ..Default::default()
                        },
                        ..Default::default()
                    }),
                })
                .collect(),
        }
    }

    fn with(&self, broker: &str, f: impl FnOnce(&mut State)) {
        if let Some(e) = self.entries.iter().find(|e| e.name == broker) {
            f(&mut e.state.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The broker accepted a connection at `now`.
    pub fn connected(&self, broker: &str, now: Timestamp) {
        self.with(broker, |s| {
            s.connects += 1;
            s.view.reconnects = s.connects.saturating_sub(1);
            s.view.online = true;
            s.view.lost = false;
            s.view.since_ms = Some(now.as_millis());
        });
    }

    /// The connection failed or broke at `now` with `error`.
    pub fn failed(&self, broker: &str, now: Timestamp, error: &str) {
        self.with(broker, |s| {
            if s.view.online || s.view.since_ms.is_none() {
                s.view.since_ms = Some(now.as_millis());
            }
            s.view.online = false;
            s.view.last_error = Some(error.to_string());
        });
    }

    /// The broker has been away past its grace: its points were marked `comm_fault`.
    pub fn lost(&self, broker: &str) {
        self.with(broker, |s| s.view.lost = true);
    }

    /// Adds to the totals.
    pub fn count(&self, broker: &str, messages: u64, readings: u64) {
        self.with(broker, |s| {
            s.view.messages += messages;
            s.view.readings += readings;
        });
    }

    /// Takes a rate sample at `now` (the broker task calls it once a second).
    pub fn sample(&self, broker: &str, now: Timestamp) {
        self.with(broker, |s| {
            if s.samples.len() == RATE_SAMPLES {
                s.samples.pop_front();
            }
            s.samples.push_back((now, s.view.messages, s.view.readings));
            if let (Some(first), Some(last)) = (s.samples.front(), s.samples.back()) {
                let secs = last.0.since(first.0).as_secs_f64();
                if secs > 0.0 {
                    s.view.messages_per_s = (last.1 - first.1) as f64 / secs;
                    s.view.readings_per_s = (last.2 - first.2) as f64 / secs;
                }
            }
        });
    }

    /// `(name, view)` of every broker.
    pub fn snapshot(&self) -> Vec<(String, MqttBrokerHealthView)> {
        self.entries
            .iter()
            .map(|e| {
                let view = e.state.lock().unwrap_or_else(|p| p.into_inner()).view.clone();
                (e.name.clone(), view)
            })
            .collect()
    }
}

impl EndpointBoard for MqttHealth {
    /// MQTT broker connections as devices: online while connected.
    fn device_views(&self) -> Vec<DeviceHealthView> {
        self.snapshot()
            .into_iter()
            .map(|(name, view)| DeviceHealthView {
                name: super::validate::broker_device_of(&name),
                profile: "mqtt".into(),
                transport: format!("mqtt {}", view.address),
                unit_id: 0,
                status: match (view.online, view.since_ms) {
                    (true, _) => "online",
                    (false, None) => "unknown",
                    (false, Some(_)) => "offline",
                },
                last_success_ms: None,
                consecutive_failures: 0,
                requests: view.messages,
                timeouts: 0,
                exceptions: 0,
                bad_frames: 0,
                link_errors: view.reconnects,
                response_ms_p50: None,
                response_ms_p99: None,
                station: None,
                opcua: None,
                mqtt: Some(view),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;

    #[test]
    fn a_broker_shows_its_state_since_reconnects_and_rates() {
        let cfg = GatewayConfig::parse(
            std::path::Path::new("t.toml"),
            "[gateway]\nid = \"gw\"\n[[mqtt.brokers]]\nname = \"plant\"\naddress = \"127.0.0.1:1883\"\n\
             [[mqtt.subscriptions]]\nbroker = \"plant\"\ntopic = \"a/{t}\"\npoint = \"{t}\"\npoints = [\"x\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let h = MqttHealth::new(&cfg.mqtt);
        let t = |s: i64| Timestamp::from_millis(s * 1000);
        h.connected("plant", t(1));
        h.sample("plant", t(1));
        h.count("plant", 20, 40);
        h.sample("plant", t(11));
        h.failed("plant", t(12), "connection refused");
        h.failed("plant", t(13), "connection refused");
        h.lost("plant");
        let (name, v) = &h.snapshot()[0];
        assert_eq!(name, "plant");
        assert_eq!((v.online, v.lost, v.since_ms), (false, true, Some(12_000)));
        assert_eq!((v.messages_per_s, v.readings_per_s), (2.0, 4.0));
        assert_eq!(v.last_error.as_deref(), Some("connection refused"));
        h.connected("plant", t(20));
        let (_, v) = &h.snapshot()[0];
        assert_eq!(
            (v.online, v.lost, v.since_ms, v.reconnects),
            (true, false, Some(20_000), 1)
        );
        assert_eq!((v.address.as_str(), v.protocol.as_str()), ("127.0.0.1:1883", "3.1.1"));
    }
}
