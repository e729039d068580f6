//! Device health as the sources see it: online/offline, last success, consecutive failures,
//! response-time quantiles and error counters. The Modbus line tasks write it, the API reads it.
//! It lives with the shared state, not in a source, so the API reads it without importing
//! sources: DTU stations and OPC UA endpoints plug in through [`StationBoard`] and
//! [`EndpointBoard`].
//!
//! Each device has its own std mutex, held only to copy or bump a few fields (never across an
//! await), so the API never waits on a poll in progress. A reload that changes the devices
//! rebuilds the board between stopping the old line tasks and starting the new ones; a device
//! whose name, transport and unit stay the same keeps its history of health.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::model::Timestamp;
use crate::model::pair::FieldReach;

/// Response times kept per device for the p50/p99 figures.
const RTT_WINDOW: usize = 512;

/// Health of one device, as kept by its line task.
#[derive(Debug, Clone, Default)]
struct Health {
    online: Option<bool>,
    last_success: Option<Timestamp>,
    consecutive_failures: u64,
    requests: u64,
    timeouts: u64,
    exceptions: u64,
    bad_frames: u64,
    link_errors: u64,
    rtts: VecDeque<Duration>,
}

/// What `GET /api/v1/devices` shows for one device.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceHealthView {
    /// Device name.
    pub name: String,
    /// Profile it follows.
    pub profile: String,
    /// Transport and endpoint, e.g. `tcp 10.0.0.5:502`.
    pub transport: String,
    /// Modbus unit id.
    pub unit_id: u8,
    /// `online`, `offline`, or `unknown` before the first poll.
    pub status: &'static str,
    /// When it last answered a whole cycle (ms since the Unix epoch).
    pub last_success_ms: Option<i64>,
    /// Failed cycles since the last good one.
    pub consecutive_failures: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that got no answer in time.
    pub timeouts: u64,
    /// Requests answered with a Modbus exception.
    pub exceptions: u64,
    /// Requests answered with a garbled frame.
    pub bad_frames: u64,
    /// Requests lost to a broken link or refused connection.
    pub link_errors: u64,
    /// Median response time over the last requests, in milliseconds.
    pub response_ms_p50: Option<f64>,
    /// 99th percentile response time over the last requests, in milliseconds.
    pub response_ms_p99: Option<f64>,
    /// The dialled-in DTU station the device sits behind, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<StationHealthView>,
    /// The OPC UA session, for an OPC UA endpoint (`profile` is `opcua`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcua: Option<OpcuaHealthView>,
    /// The broker connection, for an MQTT broker (`profile` is `mqtt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttBrokerHealthView>,
}

/// What `/api/v1/devices` shows of the station a device sits behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StationHealthView {
    /// Station name.
    pub name: String,
    /// True while its DTU is connected and registered.
    pub connected: bool,
    /// The DTU's current address.
    pub peer: Option<String>,
    /// When the current connection registered (ms since the Unix epoch).
    pub connected_since_ms: Option<i64>,
    /// When it last sent anything, heartbeat or answer (ms since the Unix epoch).
    pub last_traffic_ms: Option<i64>,
    /// Registrations accepted.
    pub registrations: u64,
    /// Connections replaced by a newer one with the same id.
    pub replaced: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Connections closed after the heartbeat timeout.
    pub heartbeat_timeouts: u64,
    /// Late answers to earlier requests discarded.
    pub late_replies: u64,
}

/// What `/api/v1/devices` shows of an OPC UA endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpcuaHealthView {
    /// Endpoint URL.
    pub url: String,
    /// Security policy and mode, e.g. `basic256sha256/sign_and_encrypt`.
    pub security: String,
    /// True while the session is open.
    pub connected: bool,
    /// When the current session opened (ms since the Unix epoch).
    pub connected_since_ms: Option<i64>,
    /// Sessions opened, the first and every reconnect.
    pub sessions: u64,
    /// Connections lost.
    pub connection_losses: u64,
    /// Monitored items configured.
    pub items: usize,
    /// Monitored items the server accepted at the last (re)subscription.
    pub items_ok: usize,
    /// Readings delivered.
    pub readings: u64,
    /// Values dropped as already delivered.
    pub duplicates: u64,
    /// The last failure, as logged (never holds a password).
    pub last_error: Option<String>,
}

/// What `/api/v1/devices` shows of a broker connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MqttBrokerHealthView {
    /// `host:port`.
    pub address: String,
    /// `3.1.1` or `5`.
    pub protocol: String,
    /// True while connected.
    pub online: bool,
    /// When the current state (online or offline) began (ms since the Unix epoch); absent
    /// before the first connection attempt ended.
    pub since_ms: Option<i64>,
    /// Connections made after the first one.
    pub reconnects: u64,
    /// True once the broker has been lost for longer than `comm_grace`: its points are
    /// `comm_fault` and its communication alarm is raised.
    pub lost: bool,
    /// The last connection error, as logged.
    pub last_error: Option<String>,
    /// Messages received in total.
    pub messages: u64,
    /// Readings handed to the pipeline in total.
    pub readings: u64,
    /// Messages per second over the last 10 s.
    pub messages_per_s: f64,
    /// Readings per second over the last 10 s.
    pub readings_per_s: f64,
}

/// Who a polled device is, as the board lists it; built from the device's spec by the
/// source that polls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Device name, unique in the gateway.
    pub name: String,
    /// Profile it follows.
    pub profile: String,
    /// Transport and endpoint, e.g. `tcp 10.0.0.5:502`.
    pub transport: String,
    /// Station name of a device behind a dialled-in DTU.
    pub station: Option<String>,
    /// Modbus unit id.
    pub unit_id: u8,
    /// Reached over the plant network (Modbus TCP, RTU over TCP), which either node of a
    /// hot-standby pair may reach; not a serial line or a DTU that dials one node.
    pub network: bool,
}

/// The dialled-in DTU stations, as the board asks for them.
pub trait StationBoard: std::fmt::Debug + Send + Sync {
    /// Health of the station named `name`, if there is one.
    fn station_health(&self, name: &str) -> Option<StationHealthView>;
}

/// Endpoints listed after the polled devices (OPC UA sessions), each already as a device view.
pub trait EndpointBoard: std::fmt::Debug + Send + Sync {
    /// Every endpoint's view, in config order.
    fn device_views(&self) -> Vec<DeviceHealthView>;
}

#[derive(Debug)]
struct Entry {
    name: String,
    profile: String,
    transport: String,
    /// Station name of a device behind a dialled-in DTU.
    station: Option<String>,
    unit_id: u8,
    network: bool,
    health: Mutex<Health>,
}

impl Entry {
    fn of(d: DeviceIdentity) -> Self {
        Entry {
            name: d.name,
            profile: d.profile,
            transport: d.transport,
            station: d.station,
            unit_id: d.unit_id,
            network: d.network,
            health: Mutex::new(Health::default()),
        }
    }

    /// Whether `other` polls the same device the same way (so its health carries over).
    fn same_device(&self, other: &Entry) -> bool {
        self.name == other.name && self.transport == other.transport && self.unit_id == other.unit_id
    }
}

/// Health of every polled device, in config order.
#[derive(Debug, Default)]
pub struct HealthBoard {
    /// Line tasks address devices by index into this; replaced whole by [`HealthBoard::reset`].
    entries: RwLock<Arc<[Entry]>>,
    /// Dialled-in DTU stations, for devices behind one.
    stations: std::sync::OnceLock<Arc<dyn StationBoard>>,
    /// OPC UA endpoints, listed after the polled devices; replaced on reload.
    opcua: std::sync::RwLock<Option<Arc<dyn EndpointBoard>>>,
    /// MQTT broker connections, listed last; replaced on reload.
    mqtt: std::sync::RwLock<Option<Arc<dyn EndpointBoard>>>,
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Data came back after this long.
    Answered(Duration),
    /// A Modbus exception came back after this long.
    Exception(Duration),
    /// Nothing came back in time.
    Timeout,
    /// A garbled frame came back.
    BadFrame,
    /// The link broke or could not be opened.
    LinkError,
}

impl HealthBoard {
    /// A board for `devices`; the line tasks address them by index.
    pub fn new<'a, D: 'a>(devices: &'a [D]) -> Arc<Self>
    where
        &'a D: Into<DeviceIdentity>,
    {
        Arc::new(Self {
            entries: RwLock::new(devices.iter().map(|d| Entry::of(d.into())).collect()),
            stations: std::sync::OnceLock::new(),
            opcua: std::sync::RwLock::new(None),
            mqtt: std::sync::RwLock::new(None),
        })
    }

    /// Rebuilds the board for a reloaded device list. Call it only while no line task runs:
    /// indexes of the old list mean nothing in the new one.
    pub fn reset<'a, D: 'a>(&self, devices: &'a [D])
    where
        &'a D: Into<DeviceIdentity>,
    {
        let old = self.entries();
        let fresh: Arc<[Entry]> = devices
            .iter()
            .map(|d| {
                let entry = Entry::of(d.into());
                if let Some(prev) = old.iter().find(|o| o.same_device(&entry)) {
                    let kept = prev.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    *entry.health.lock().unwrap_or_else(|p| p.into_inner()) = kept;
                }
                entry
            })
            .collect();
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    fn entries(&self) -> Arc<[Entry]> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Shows the health of dialled-in DTU stations with the devices behind them.
    pub fn attach_stations(&self, hub: Arc<dyn StationBoard>) {
        let _ = self.stations.set(hub);
    }

    /// Shows the health of OPC UA endpoints after the devices.
    pub fn set_opcua(&self, health: Arc<dyn EndpointBoard>) {
        *self.opcua.write().unwrap_or_else(|p| p.into_inner()) = Some(health);
    }

    /// Shows the health of MQTT broker connections after the OPC UA endpoints.
    pub fn set_mqtt(&self, health: Arc<dyn EndpointBoard>) {
        *self.mqtt.write().unwrap_or_else(|p| p.into_inner()) = Some(health);
    }

    /// Index of a device by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries().iter().position(|e| e.name == name)
    }

    fn with(&self, device: usize, f: impl FnOnce(&mut Health)) {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get(device) {
            f(&mut e.health.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Records one request.
    pub fn request(&self, device: usize, outcome: RequestOutcome) {
        self.with(device, |h| {
            h.requests += 1;
            let rtt = match outcome {
                RequestOutcome::Answered(t) => Some(t),
                RequestOutcome::Exception(t) => {
                    h.exceptions += 1;
                    Some(t)
                }
                RequestOutcome::Timeout => {
                    h.timeouts += 1;
                    None
                }
                RequestOutcome::BadFrame => {
                    h.bad_frames += 1;
                    None
                }
                RequestOutcome::LinkError => {
                    h.link_errors += 1;
                    None
                }
            };
            if let Some(t) = rtt {
                if h.rtts.len() == RTT_WINDOW {
                    h.rtts.pop_front();
                }
                h.rtts.push_back(t);
            }
        });
    }

    /// Records the end of a cycle; returns the consecutive failures after it.
    pub fn cycle(&self, device: usize, ok: bool, now: Timestamp) -> u64 {
        let mut failures = 0;
        self.with(device, |h| {
            h.online = Some(ok);
            if ok {
                h.last_success = Some(now);
                h.consecutive_failures = 0;
            } else {
                h.consecutive_failures += 1;
            }
            failures = h.consecutive_failures;
        });
        failures
    }

    /// How many network devices there are, how many have had a cycle, and how many answered
    /// their last one: whether this node still reaches the plant network.
    pub fn network_reach(&self) -> FieldReach {
        let mut reach = FieldReach::default();
        for e in self.entries().iter().filter(|e| e.network) {
            reach.devices += 1;
            match e.health.lock().unwrap_or_else(|p| p.into_inner()).online {
                Some(true) => {
                    reach.known += 1;
                    reach.online += 1;
                }
                Some(false) => reach.known += 1,
                None => {}
            }
        }
        reach
    }

    /// Every device's health.
    pub fn snapshot(&self) -> Vec<DeviceHealthView> {
        self.entries()
            .iter()
            .map(|e| {
                let h = e.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut rtts: Vec<Duration> = h.rtts.iter().copied().collect();
                rtts.sort_unstable();
                DeviceHealthView {
                    name: e.name.clone(),
                    profile: e.profile.clone(),
                    transport: e.transport.clone(),
                    unit_id: e.unit_id,
                    status: match h.online {
                        None => "unknown",
                        Some(true) => "online",
                        Some(false) => "offline",
                    },
                    last_success_ms: h.last_success.map(Timestamp::as_millis),
                    consecutive_failures: h.consecutive_failures,
                    requests: h.requests,
                    timeouts: h.timeouts,
                    exceptions: h.exceptions,
                    bad_frames: h.bad_frames,
                    link_errors: h.link_errors,
                    response_ms_p50: quantile(&rtts, 0.50),
                    response_ms_p99: quantile(&rtts, 0.99),
                    station: e
                        .station
                        .as_deref()
                        .and_then(|s| self.stations.get().and_then(|hub| hub.station_health(s))),
                    opcua: None,
                    mqtt: None,
                }
            })
            .chain(self.opcua_views())
            .chain(self.mqtt_views())
            .collect()
    }

    fn opcua_views(&self) -> Vec<DeviceHealthView> {
        let board = self.opcua.read().unwrap_or_else(|p| p.into_inner()).clone();
        board.map_or_else(Vec::new, |b| b.device_views())
    }

    /// MQTT broker connections as devices.
    fn mqtt_views(&self) -> Vec<DeviceHealthView> {
        let board = self.mqtt.read().unwrap_or_else(|p| p.into_inner()).clone();
        board.map_or_else(Vec::new, |b| b.device_views())
    }
}

/// Nearest-rank quantile of sorted durations, in milliseconds.
fn quantile(sorted: &[Duration], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1].as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&ms, 0.5), Some(50.0));
        assert_eq!(quantile(&ms, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
