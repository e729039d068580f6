//! Regulator uplink metrics, registered with the gateway's other metrics (`docs/metrics.md`).

pub mod hj212;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// Label of a per-uplink metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkLabel {
    /// Uplink name from the config.
    pub uplink: String,
}

/// Label of a per-uplink metric with a reason or kind from a fixed vocabulary.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkReason {
    /// Uplink name from the config.
    pub uplink: String,
    /// Reason or record kind.
    pub reason: &'static str,
}

/// Label of a per-uplink, per-record-kind metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkKind {
    /// Uplink name from the config.
    pub uplink: String,
    /// Record kind (`basic`, `realtime`, `minute`, `hour`, `day`, `alarm`).
    pub kind: &'static str,
}

/// Handles to the uplink metrics.
#[derive(Debug, Clone, Default)]
pub struct UplinkMetrics {
    /// Records selected, by kind (`basic`, `realtime`, `minute`, `hour`, `day`, `alarm`).
    pub records: Family<UplinkKind, Counter>,
    /// Payloads persisted in the outbox.
    pub queued: Family<UplinkLabel, Counter>,
    /// Payloads the platform acknowledged.
    pub delivered: Family<UplinkLabel, Counter>,
    /// Records carried by acknowledged payloads.
    pub delivered_records: Family<UplinkLabel, Counter>,
    /// Records lost, by reason.
    pub dropped: Family<UplinkReason, Counter>,
    /// Failed delivery attempts that will be retried, by reason.
    pub retried: Family<UplinkReason, Counter>,
    /// Bytes of the outbox files.
    pub outbox_bytes: Family<UplinkLabel, Gauge>,
    /// Payloads in the outbox not yet acknowledged.
    pub outbox_payloads: Family<UplinkLabel, Gauge>,
    /// 1 while the last delivery attempt reached the platform.
    pub connected: Family<UplinkLabel, Gauge>,
    /// Unix time of the last acknowledgement.
    pub last_ack: Family<UplinkLabel, Gauge>,
    /// HJ 212 links: connection, resends, centre requests, history answers.
    pub hj212: hj212::Hj212Metrics,
}

impl UplinkMetrics {
    /// Registers every uplink metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_uplink_records",
            "Records selected for an uplink, by kind",
            self.records.clone(),
        );
        r.register(
            "hazard_uplink_payloads_queued",
            "Payloads persisted in an uplink's outbox",
            self.queued.clone(),
        );
        r.register(
            "hazard_uplink_payloads_delivered",
            "Payloads the platform acknowledged",
            self.delivered.clone(),
        );
        r.register(
            "hazard_uplink_records_delivered",
            "Records carried by acknowledged payloads",
            self.delivered_records.clone(),
        );
        r.register(
            "hazard_uplink_records_dropped",
            "Records an uplink lost, by reason",
            self.dropped.clone(),
        );
        r.register(
            "hazard_uplink_delivery_retries",
            "Failed delivery attempts that will be retried, by reason",
            self.retried.clone(),
        );
        r.register_with_unit(
            "hazard_uplink_outbox",
            "Bytes of an uplink's outbox files",
            Unit::Bytes,
            self.outbox_bytes.clone(),
        );
        r.register(
            "hazard_uplink_outbox_payloads",
            "Payloads in an uplink's outbox not yet acknowledged",
            self.outbox_payloads.clone(),
        );
        r.register(
            "hazard_uplink_connected",
            "1 while an uplink's last delivery attempt reached the platform",
            self.connected.clone(),
        );
        r.register_with_unit(
            "hazard_uplink_last_ack_timestamp",
            "Unix time of an uplink's last acknowledgement",
            Unit::Seconds,
            self.last_ack.clone(),
        );
        self.hj212.register(r);
    }

    /// Counts `n` records of `uplink` lost for `reason`.
    pub fn drop(&self, uplink: &str, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&UplinkReason {
                uplink: uplink.to_string(),
                reason,
            })
            .inc_by(n);
    }
}
