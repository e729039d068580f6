//! Metrics of a hot-standby pair (`[redundancy]`), kept for the life of the process: both
//! roles render them, and each start of the gateway as active registers the same handles.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of a switch-over.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwitchReason {
    /// `start` (first lease at start-up), `lease_vacant` (the active handed over or stopped),
    /// `lease_expired` (the active stopped renewing: dead, frozen or cut off), `step_down`
    /// (this node lost its lease or its fence ran out), `stop`.
    pub reason: &'static str,
}

/// Handles to the pair metrics.
#[derive(Debug, Clone, Default)]
pub struct PairMetrics {
    /// 1 active, 2 standby.
    pub role: Gauge,
    /// The highest lease term seen.
    pub term: Gauge,
    /// 1 while the pair link to the peer is up.
    pub peer_up: Gauge,
    /// 1 while the witness broker is reachable.
    pub witness_up: Gauge,
    /// Journal entries the standby has not confirmed.
    pub lag_entries: Gauge,
    /// Milliseconds since the standby last confirmed everything.
    pub lag_ms: Gauge,
    /// Role changes of this node by reason.
    pub switchovers: Family<SwitchReason, Counter>,
    /// Poll cycles skipped because this node's fence was closed (it may no longer be active).
    pub fenced_polls: Counter,
    /// Regulator sends held back because this node's fence was closed.
    pub fenced_sends: Counter,
    /// Journal entries received from the active and stored (on the standby).
    pub replicated_entries: Counter,
    /// Journals set aside because they diverged from the active's.
    pub diverged_journals: Counter,
    /// Durable-queue bytes received from the active and stored (on the standby).
    pub replicated_queue_bytes: Counter,
    /// Durable-queue bytes appended on the active and not yet sent to the standby.
    pub queue_lag_bytes: Gauge,
    /// Bytes of the standby's queue files that the active's replaced at a resume (the
    /// standby had written them on its own).
    pub queue_bytes_dropped: Counter,
    /// Readings the standby polled after it last heard the active, handed to the rules engine
    /// when it took over (`dual_poll`).
    pub warm_readings: Counter,
}

impl PairMetrics {
    /// Registers every pair metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_pair_role",
            "This node's role: 1 active, 2 standby",
            self.role.clone(),
        );
        r.register(
            "hazard_pair_term",
            "The highest lease term this node has seen",
            self.term.clone(),
        );
        r.register(
            "hazard_pair_peer_up",
            "1 while the pair link to the peer is up",
            self.peer_up.clone(),
        );
        r.register(
            "hazard_pair_witness_up",
            "1 while the witness broker is reachable",
            self.witness_up.clone(),
        );
        r.register(
            "hazard_pair_replication_lag_entries",
            "Journal entries the standby has not confirmed",
            self.lag_entries.clone(),
        );
        r.register(
            "hazard_pair_replication_lag_milliseconds",
            "Milliseconds since the standby last confirmed everything it was sent",
            self.lag_ms.clone(),
        );
        r.register(
            "hazard_pair_switchovers",
            "Role changes of this node by reason",
            self.switchovers.clone(),
        );
        r.register(
            "hazard_pair_fenced_polls",
            "Poll cycles skipped because this node may no longer be active",
            self.fenced_polls.clone(),
        );
        r.register(
            "hazard_pair_fenced_sends",
            "Regulator sends held back because this node may no longer be active",
            self.fenced_sends.clone(),
        );
        r.register(
            "hazard_pair_replicated_entries",
            "Journal entries received from the active and stored",
            self.replicated_entries.clone(),
        );
        r.register(
            "hazard_pair_warm_readings",
            "Readings the standby polled after it last heard the active, evaluated when it took over",
            self.warm_readings.clone(),
        );
        r.register(
            "hazard_pair_replicated_queue_bytes",
            "Durable-queue bytes received from the active and stored",
            self.replicated_queue_bytes.clone(),
        );
        r.register(
            "hazard_pair_queue_lag_bytes",
            "Durable-queue bytes appended on the active and not yet sent to the standby",
            self.queue_lag_bytes.clone(),
        );
        r.register(
            "hazard_pair_queue_bytes_dropped",
            "Bytes of the standby's queue files replaced by the active's when it resumed",
            self.queue_bytes_dropped.clone(),
        );
        r.register(
            "hazard_pair_diverged_journals",
            "Journals set aside because they diverged from the active's",
            self.diverged_journals.clone(),
        );
    }

    /// The Prometheus text of the pair metrics alone (what a standby serves).
    pub fn render(&self) -> String {
        let mut r = Registry::default();
        self.register(&mut r);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}
