//! DTU server mode: 4G DTUs at remote stations dial in to the gateway, register with an id
//! packet, then carry Modbus frames between heartbeats. The gateway polls the devices behind
//! each station over the station's connection with the ordinary line task
//! ([`crate::sources::modbus::poller`]); this module supplies the connection.
//!
//! - [`server`]: accepts connections, recognises the registration, hands the connection to
//!   its station (replacing an older one), refuses unknown ids.
//! - [`framer`]: removes heartbeats wherever they land (between frames, split across reads,
//!   or inside an answer the DTU sent in two packets) and cuts answer frames out of the
//!   byte stream.
//! - [`link`]: one request/answer exchange over the station's current connection, discarding
//!   late answers to earlier requests.
//!
//! Design: each connection has one reader task that owns the socket's read half, so
//! heartbeats are consumed (and the heartbeat timeout watched) even while nobody polls. It
//! sends complete frames to the line task over a small channel. A station holds at most one
//! connection; a new registration with its id closes the old one.

pub mod framer;
pub mod link;
pub mod server;
pub mod spec;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::model::Timestamp;
use crate::sources::dtu::spec::{DtuFraming, DtuSpec, StationSpec};
use crate::state::devices::StationBoard;
pub use crate::state::devices::StationHealthView;
use crate::telemetry::Metrics;
use crate::telemetry::dtu::StationLabel;

/// One registered connection of a station.
#[derive(Debug)]
pub struct Session {
    /// Increasing per gateway; tells connections of one station apart in logs.
    pub serial: u64,
    /// The DTU's address.
    pub peer: SocketAddr,
    framing: DtuFraming,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    frames: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    closed: CancellationToken,
}

impl Session {
    /// Closes the connection (its reader task ends and drops the socket).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// True once closed, by either side.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

/// One configured station: its spec, its current connection and its health.
#[derive(Debug)]
pub struct Station {
    spec: StationSpec,
    label: StationLabel,
    current: Mutex<Option<Arc<Session>>>,
    /// Woken when a connection registers.
    attached: tokio::sync::Notify,
    health: Mutex<StationHealthView>,
}

impl Station {
    /// The station's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The open connection, if any.
    pub fn session(&self) -> Option<Arc<Session>> {
        let s = self.current.lock().unwrap_or_else(|p| p.into_inner());
        s.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    fn health(&self, f: impl FnOnce(&mut StationHealthView)) {
        f(&mut self.health.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Every station, shared by the listeners (which connect them) and line tasks (which poll).
#[derive(Debug)]
pub struct DtuHub {
    spec: DtuSpec,
    stations: Vec<Arc<Station>>,
    by_name: HashMap<String, usize>,
    metrics: Metrics,
    clock: SharedClock,
    serial: std::sync::atomic::AtomicU64,
    /// Per listener: when an unknown id was last logged, and how many since.
    unknown_log: Vec<Mutex<(Option<tokio::time::Instant>, u64)>>,
}

impl StationBoard for DtuHub {
    fn station_health(&self, name: &str) -> Option<StationHealthView> {
        DtuHub::station_health(self, name)
    }
}

impl DtuHub {
    /// A hub for the configured stations.
    pub fn new(spec: &DtuSpec, metrics: Metrics, clock: SharedClock) -> Arc<Self> {
        let stations: Vec<Arc<Station>> = spec
            .stations
            .iter()
            .map(|s| {
                Arc::new(Station {
                    label: StationLabel {
                        station: s.name.clone(),
                    },
                    health: Mutex::new(StationHealthView {
                        name: s.name.clone(),
                        ..Default::default()
                    }),
                    current: Mutex::new(None),
                    attached: tokio::sync::Notify::new(),
                    spec: s.clone(),
                })
            })
            .collect();
        for s in &stations {
            metrics.dtu.connected.get_or_create(&s.label).set(0);
        }
        Arc::new(Self {
            by_name: stations
                .iter()
                .enumerate()
                .map(|(i, s)| (s.spec.name.clone(), i))
                .collect(),
            stations,
            spec: spec.clone(),
            metrics,
            clock,
            serial: Default::default(),
            unknown_log: spec.listeners.iter().map(|_| Mutex::new((None, 0))).collect(),
        })
    }

    /// The station named `name`.
    pub fn station(&self, name: &str) -> Option<Arc<Station>> {
        self.by_name.get(name).map(|&i| self.stations[i].clone())
    }

    /// Health of the station named `name`.
    pub fn station_health(&self, name: &str) -> Option<StationHealthView> {
        let s = self.station(name)?;
        let h = s.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(h)
    }

    /// Installs a registered connection for `station`, closing the one it replaces.
    fn attach(&self, station: &Station, session: Arc<Session>) {
        let old = station
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(session.clone());
        let now = self.clock.now().as_millis();
        let replaced = old.as_ref().is_some_and(|o| !o.is_closed());
        if let Some(old) = old {
            old.close();
        }
        if replaced {
            self.metrics.dtu.replaced.get_or_create(&station.label).inc();
            tracing::info!(station = %station.spec.name, peer = %session.peer, "DTU reconnected; the old connection is closed");
        } else {
            tracing::info!(station = %station.spec.name, peer = %session.peer, "DTU registered");
        }
        self.metrics.dtu.connected.get_or_create(&station.label).set(1);
        station.attached.notify_waiters();
        station.health(|h| {
            h.connected = true;
            h.peer = Some(session.peer.to_string());
            h.connected_since_ms = Some(now);
            h.last_traffic_ms = Some(now);
            h.registrations += 1;
            h.replaced += u64::from(replaced);
        });
    }

    /// Forgets `session` if it is still the station's current one.
    fn detach(&self, station: &Station, session: &Arc<Session>) {
        session.close();
        let mut cur = station.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, session)) {
            *cur = None;
            drop(cur);
            self.metrics.dtu.connected.get_or_create(&station.label).set(0);
            station.health(|h| h.connected = false);
        }
    }

    fn traffic(&self, station: &Station, heartbeat: bool) {
        let now: Timestamp = self.clock.now();
        self.metrics
            .dtu
            .last_traffic
            .get_or_create(&station.label)
            .set(now.as_millis() / 1000);
        if heartbeat {
            self.metrics.dtu.heartbeats.get_or_create(&station.label).inc();
        }
        station.health(|h| {
            h.last_traffic_ms = Some(now.as_millis());
            h.heartbeats += u64::from(heartbeat);
        });
    }

    fn late_reply(&self, station: &Station) {
        self.metrics.dtu.late_replies.get_or_create(&station.label).inc();
        station.health(|h| h.late_replies += 1);
    }
}
