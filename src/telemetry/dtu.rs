//! Metrics of the DTU listener (a source), registered with the gateway's other metrics (`docs/metrics.md`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a per-station metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StationLabel {
    /// Station name from the config.
    pub station: String,
}

/// Labels of a registration outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerResult {
    /// Listener name from the config.
    pub listener: String,
    /// `ok`, `unknown` (refused), `timeout` (never registered), `closed` (hung up first).
    pub result: &'static str,
}

/// Handles to the DTU metrics.
#[derive(Debug, Clone, Default)]
pub struct DtuMetrics {
    /// New connections by listener and registration outcome.
    pub registrations: Family<ListenerResult, Counter>,
    /// 1 while the station's DTU is connected and registered.
    pub connected: Family<StationLabel, Gauge>,
    /// Connections replaced by a newer one with the same id.
    pub replaced: Family<StationLabel, Counter>,
    /// Heartbeat packets received (and removed from the stream).
    pub heartbeats: Family<StationLabel, Counter>,
    /// Connections closed because nothing arrived within the heartbeat timeout.
    pub heartbeat_timeouts: Family<StationLabel, Counter>,
    /// Answers discarded because they answer an earlier request (late on the cellular link).
    pub late_replies: Family<StationLabel, Counter>,
    /// Bytes discarded because they belong to no frame or heartbeat.
    pub garbled_bytes: Family<StationLabel, Counter>,
    /// When the station last sent anything, seconds since the Unix epoch.
    pub last_traffic: Family<StationLabel, Gauge>,
}

impl DtuMetrics {
    /// Registers every DTU metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_dtu_registrations",
            "DTU connections by listener and registration outcome",
            self.registrations.clone(),
        );
        r.register(
            "hazard_dtu_station_connected",
            "1 while the station's DTU is connected and registered",
            self.connected.clone(),
        );
        r.register(
            "hazard_dtu_connections_replaced",
            "DTU connections replaced by a newer one with the same id",
            self.replaced.clone(),
        );
        r.register(
            "hazard_dtu_heartbeats",
            "DTU heartbeat packets received",
            self.heartbeats.clone(),
        );
        r.register(
            "hazard_dtu_heartbeat_timeouts",
            "DTU connections closed after the heartbeat timeout",
            self.heartbeat_timeouts.clone(),
        );
        r.register(
            "hazard_dtu_late_replies",
            "Answers to earlier requests discarded on a DTU link",
            self.late_replies.clone(),
        );
        r.register(
            "hazard_dtu_garbled_bytes",
            "Bytes from a DTU that belonged to no frame or heartbeat",
            self.garbled_bytes.clone(),
        );
        r.register(
            "hazard_dtu_last_traffic_timestamp_seconds",
            "Unix time a station last sent anything",
            self.last_traffic.clone(),
        );
    }
}
