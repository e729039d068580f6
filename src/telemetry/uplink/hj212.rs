//! HJ 212 link metrics, registered with the gateway's other metrics (`docs/metrics.md`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a per-uplink metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkLabel {
    /// Uplink name from the config.
    pub uplink: String,
}

/// Labels of a per-uplink outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UplinkResult {
    /// Uplink name from the config.
    pub uplink: String,
    /// Bounded outcome or reason.
    pub result: &'static str,
}

/// Labels of a centre request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// Uplink name from the config.
    pub uplink: String,
    /// Command code (`1012`, `2051`, …; `other` for codes we do not know).
    pub command: &'static str,
    /// `accepted` or the refusal (`refused`, `bad_password`, `bad_mn`, `bad_qn`, `bad_flag`,
    /// `bad_cn`).
    pub result: &'static str,
}

/// Handles to the HJ 212 metrics.
#[derive(Debug, Clone, Default)]
pub struct Hj212Metrics {
    /// Connection attempts to the centre by outcome (`ok`, `error`, `timeout`).
    pub connects: Family<UplinkResult, Counter>,
    /// 1 while connected to the centre.
    pub connected: Family<UplinkLabel, Gauge>,
    /// Data messages sent again because no 9014 came within the timeout.
    pub resent: Family<UplinkLabel, Counter>,
    /// Frames from the centre that failed their checks, by kind.
    pub bad_frames: Family<UplinkResult, Counter>,
    /// Centre requests by command and outcome.
    pub requests: Family<RequestLabel, Counter>,
    /// Records sent in answer to the centre's history pulls.
    pub history_records: Family<UplinkLabel, Counter>,
    /// The centre's time minus ours at its last set-time request, seconds.
    pub centre_clock_offset: Family<UplinkLabel, Gauge>,
}

impl Hj212Metrics {
    /// Registers every HJ 212 metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_uplink_hj212_connects",
            "HJ 212 connection attempts to the centre by outcome",
            self.connects.clone(),
        );
        r.register(
            "hazard_uplink_hj212_connected",
            "1 while connected to the HJ 212 centre",
            self.connected.clone(),
        );
        r.register(
            "hazard_uplink_hj212_resent",
            "HJ 212 data messages sent again after no 9014 acknowledgement came in time",
            self.resent.clone(),
        );
        r.register(
            "hazard_uplink_hj212_bad_frames",
            "Frames from the HJ 212 centre that failed their checks, by kind",
            self.bad_frames.clone(),
        );
        r.register(
            "hazard_uplink_hj212_requests",
            "HJ 212 centre requests by command and outcome",
            self.requests.clone(),
        );
        r.register(
            "hazard_uplink_hj212_history_records",
            "Records sent in answer to HJ 212 history pulls",
            self.history_records.clone(),
        );
        r.register(
            "hazard_uplink_hj212_centre_clock_offset_seconds",
            "The HJ 212 centre's time minus the gateway's at its last set-time request",
            self.centre_clock_offset.clone(),
        );
    }
}
