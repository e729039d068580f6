//! OPC UA source metrics, registered with the gateway's other metrics (`docs/metrics.md`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a per-endpoint metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// Endpoint name from the config.
    pub endpoint: String,
}

/// Labels of a per-endpoint metric with a bounded kind or reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointKind {
    /// Endpoint name from the config.
    pub endpoint: String,
    /// Bounded kind or reason.
    pub kind: &'static str,
}

/// Handles to the OPC UA metrics.
#[derive(Debug, Clone, Default)]
pub struct OpcuaMetrics {
    /// 1 while the session is open.
    pub connected: Family<EndpointLabel, Gauge>,
    /// Sessions opened (the first and every reconnect).
    pub sessions: Family<EndpointLabel, Counter>,
    /// Connections lost.
    pub connection_losses: Family<EndpointLabel, Counter>,
    /// Failures by kind (`connect`, `certificate`, `auth`, `endpoint`, `password`,
    /// `monitored_item`, `browse_path`, `subscription`).
    pub errors: Family<EndpointKind, Counter>,
    /// Monitored items the server accepted.
    pub monitored_items: Family<EndpointLabel, Gauge>,
    /// Readings handed to the pipeline (any quality).
    pub readings: Family<EndpointLabel, Counter>,
    /// Values dropped because their time is not after the last delivered one of their point.
    pub duplicates: Family<EndpointLabel, Counter>,
    /// Values lost, by reason (`queue_full`).
    pub dropped: Family<EndpointKind, Counter>,
}

impl OpcuaMetrics {
    /// Registers every OPC UA metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_opcua_connected",
            "1 while the OPC UA session is open",
            self.connected.clone(),
        );
        r.register(
            "hazard_opcua_sessions",
            "OPC UA sessions opened, the first and every reconnect",
            self.sessions.clone(),
        );
        r.register(
            "hazard_opcua_connection_losses",
            "OPC UA connections lost",
            self.connection_losses.clone(),
        );
        r.register("hazard_opcua_errors", "OPC UA failures by kind", self.errors.clone());
        r.register(
            "hazard_opcua_monitored_items",
            "OPC UA monitored items the server accepted",
            self.monitored_items.clone(),
        );
        r.register(
            "hazard_opcua_readings",
            "Readings from OPC UA handed to the pipeline",
            self.readings.clone(),
        );
        r.register(
            "hazard_opcua_duplicates",
            "OPC UA values not newer than the last delivered of their point, dropped",
            self.duplicates.clone(),
        );
        r.register(
            "hazard_opcua_dropped",
            "OPC UA values lost, by reason",
            self.dropped.clone(),
        );
    }

    /// The label of `endpoint`.
    pub fn label(endpoint: &str) -> EndpointLabel {
        EndpointLabel {
            endpoint: endpoint.to_string(),
        }
    }

    /// The label of `endpoint` and `kind`.
    pub fn kind(endpoint: &str, kind: &'static str) -> EndpointKind {
        EndpointKind {
            endpoint: endpoint.to_string(),
            kind,
        }
    }
}
