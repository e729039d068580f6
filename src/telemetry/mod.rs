//! Every metric the gateway exports, created in one place when the pipeline is built.
//!
//! Names follow `hazard_<area>_<name>_<unit>`; counters get `_total` from the encoder.
//! Label values are bounded: device names and rule names come from the config, everything
//! else is a fixed vocabulary. Each gateway owns its registry, so tests can run several
//! gateways in one process and assert each one's counters.
//!
//! The metric groups of the DTU listener ([`dtu`]), the OPC UA source ([`opcua`]) and the
//! regulator uplinks ([`uplink`]) live here too, so telemetry imports no source or sink.

pub mod dtu;
pub mod north;
pub mod opcua;
pub mod pair;
pub mod uplink;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels of per-device metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabel {
    /// Device name from the config.
    pub device: String,
}

/// Labels of a per-device outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceResult {
    /// Device name from the config.
    pub device: String,
    /// Outcome: `ok`, `timeout`, `io_error`, `exception`, `refused`, `serial_error`, or a
    /// garbled-frame kind (`bad_crc`, `short_frame`, `wrong_unit`, `wrong_byte_count`, …).
    pub result: &'static str,
}

/// Label of a reading's quality.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QualityLabel {
    /// Quality name.
    pub quality: &'static str,
}

/// Labels of an alarm transition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabel {
    /// `raised` or `cleared`.
    pub transition: &'static str,
    /// Alarm priority.
    pub priority: &'static str,
}

/// Label of a data-loss reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why data was lost: `queue_full`, `write_error`.
    pub reason: &'static str,
}

/// Label of per-store metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabel {
    /// Store name from the config.
    pub store: String,
}

/// Labels of a per-store outcome or loss.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreReason {
    /// Store name from the config.
    pub store: String,
    /// Bounded reason: `queue_full`, `buffer_full`, `buffer_error`, `buffer_corrupt`, `network`, `server_error`,
    /// `throttled`, `timeout`, or a line-protocol refusal kind.
    pub reason: &'static str,
}

/// Handles of the time-series store metrics (families labelled by store).
#[derive(Debug, Clone, Default)]
pub struct TsdbMetrics {
    /// Bytes held by each store's durable buffer.
    pub buffer_bytes: Family<StoreLabel, Gauge>,
    /// Batches (records) not yet acknowledged.
    pub buffer_batches: Family<StoreLabel, Gauge>,
    /// Payload bytes of the batches not yet acknowledged (the backlog `/readyz` limits).
    pub buffer_pending_bytes: Family<StoreLabel, Gauge>,
    /// Age of the oldest unacknowledged batch, seconds.
    pub buffer_oldest_age: Family<StoreLabel, Gauge>,
    /// Readings and alarm lines persisted in the buffer (accepted for delivery).
    pub buffered: Family<StoreLabel, Counter>,
    /// Readings and alarm lines the store acknowledged.
    pub sent: Family<StoreLabel, Counter>,
    /// Requests the store acknowledged.
    pub batches_sent: Family<StoreLabel, Counter>,
    /// Request attempts that failed and will be retried, by reason.
    pub retried: Family<StoreReason, Counter>,
    /// Readings and alarm lines lost, by reason.
    pub dropped: Family<StoreReason, Counter>,
    /// Batches the store refused (4xx) and written to the dead-letter file.
    pub dead_lettered: Family<StoreLabel, Counter>,
    /// Readings written without their value (NaN or infinite), quality only.
    pub values_omitted: Family<StoreLabel, Counter>,
    /// Damaged or torn buffer records skipped: stretches found when the buffer was opened,
    /// and records that did not read back as written when taken for sending.
    pub buffer_damaged: Family<StoreLabel, Counter>,
    /// Times the dead-letter file reached its cap and was moved to `.1`.
    pub dead_letter_rotations: Family<StoreLabel, Counter>,
    /// Bytes of refused batches deleted when a rotation replaced the previous `.1`.
    pub dead_letter_discarded: Family<StoreLabel, Counter>,
    /// 1 while a store cannot send at all (its client could not be built: a missing secret,
    /// an unreadable CA file); its readings are buffered meanwhile.
    pub unusable: Family<StoreLabel, Gauge>,
    /// Why each unusable store cannot send, for `/readyz` (by store name).
    pub unusable_reasons: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
}

impl TsdbMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_tsdb_store_unusable",
            "1 while the store cannot send at all (missing secret, unreadable CA file); readings are buffered",
            self.unusable.clone(),
        );
        r.register(
            "hazard_tsdb_buffer_bytes",
            "Bytes held by the store's durable buffer",
            self.buffer_bytes.clone(),
        );
        r.register(
            "hazard_tsdb_buffer_batches",
            "Batches in the durable buffer not yet acknowledged",
            self.buffer_batches.clone(),
        );
        r.register(
            "hazard_tsdb_buffer_pending_bytes",
            "Payload bytes of the batches in the durable buffer not yet acknowledged",
            self.buffer_pending_bytes.clone(),
        );
        r.register_with_unit(
            "hazard_tsdb_buffer_oldest_age",
            "Age of the oldest unacknowledged batch",
            Unit::Seconds,
            self.buffer_oldest_age.clone(),
        );
        r.register(
            "hazard_tsdb_lines_buffered",
            "Readings and alarm lines persisted in the durable buffer",
            self.buffered.clone(),
        );
        r.register(
            "hazard_tsdb_lines_sent",
            "Readings and alarm lines the store acknowledged",
            self.sent.clone(),
        );
        r.register(
            "hazard_tsdb_batches_sent",
            "Requests the store acknowledged",
            self.batches_sent.clone(),
        );
        r.register(
            "hazard_tsdb_batches_retried",
            "Failed requests that will be retried, by reason",
            self.retried.clone(),
        );
        r.register(
            "hazard_tsdb_lines_dropped",
            "Readings and alarm lines lost, by reason",
            self.dropped.clone(),
        );
        r.register(
            "hazard_tsdb_batches_dead_lettered",
            "Batches the store refused, kept in the dead-letter file",
            self.dead_lettered.clone(),
        );
        r.register(
            "hazard_tsdb_values_omitted",
            "Readings written without a value (NaN or infinite)",
            self.values_omitted.clone(),
        );
        r.register(
            "hazard_tsdb_buffer_damaged_records",
            "Damaged or torn buffer records skipped (on open, or when read back for sending)",
            self.buffer_damaged.clone(),
        );
        r.register(
            "hazard_tsdb_dead_letter_rotations",
            "Times the dead-letter file reached its cap and was moved aside",
            self.dead_letter_rotations.clone(),
        );
        r.register_with_unit(
            "hazard_tsdb_dead_letter_discarded",
            "Refused batches deleted by a dead-letter rotation",
            Unit::Bytes,
            self.dead_letter_discarded.clone(),
        );
    }
}

/// Labels of a webhook target's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    /// Target name from the config.
    pub target: String,
    /// `ok`, `rejected` (non-2xx), `refused` (a chat robot's non-zero error code in a 2xx
    /// answer), `error` (network), `held` / `released` (quiet hours), `held_lost` (a held
    /// transition pruned from the journal before its hours ended), or `cursor` / `failing`
    /// for the gauges.
    pub result: &'static str,
}

/// Labels of an escalation roster's steps.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EscalationLabel {
    /// Roster name from the config.
    pub roster: String,
    /// `sent`, `failed` (an attempt; retried) or `held` (by a target's quiet hours).
    pub result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Handles to every metric; cheap to clone, the hot path only increments.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Poll cycles per device and outcome.
    pub modbus_polls: Family<DeviceResult, Counter>,
    /// Read requests per device and outcome.
    pub modbus_requests: Family<DeviceResult, Counter>,
    /// Duration of one device's whole poll cycle.
    pub modbus_poll_duration: HistogramFamily<DeviceLabel>,
    /// Poll cycles that took longer than the device's interval (the next tick was skipped).
    pub modbus_overruns: Family<DeviceLabel, Counter>,
    /// Connection attempts per device and outcome.
    pub modbus_connects: Family<DeviceResult, Counter>,
    /// Time from request to answer (data or exception), per device.
    pub modbus_response_time: HistogramFamily<DeviceLabel>,
    /// 1 while a device answers its polls, 0 after a failed cycle.
    pub modbus_device_online: Family<DeviceLabel, Gauge>,
    /// Failed poll cycles of a device since its last good one.
    pub modbus_consecutive_failures: Family<DeviceLabel, Gauge>,
    /// When a device last answered a whole cycle, seconds since the Unix epoch.
    pub modbus_last_success: Family<DeviceLabel, Gauge>,
    /// Readings entering the rules engine, by quality.
    pub readings: Family<QualityLabel, Counter>,
    /// Alarm transitions journaled and published.
    pub alarm_transitions: Family<TransitionLabel, Counter>,
    /// Alarms currently active.
    pub alarms_active: Gauge,
    /// Alarms chattering now (raised several times within a minute).
    pub alarm_chattering: Gauge,
    /// Alarm transitions that could not be journaled (published anyway, logged as errors).
    pub journal_errors: Counter,
    /// Transitions published but not yet journaled: held in memory and retried every second.
    pub journal_held: Gauge,
    /// Rounds of the gateway's self-checks (disk, storage, stores, clock) completed.
    pub self_checks: Counter,
    /// Data-disk free bytes as the self-check last read them.
    pub data_disk_free: Gauge,
    /// Transitions deleted from the journal by its retention.
    pub journal_pruned: Counter,
    /// Readings written to the embedded history store.
    pub history_written: Counter,
    /// Raw rows kept by the deadband/heartbeat policy.
    pub history_raw_rows: Counter,
    /// Minute rollup rows written or merged.
    pub history_minute_rows: Counter,
    /// Readings lost before reaching the history store, by reason.
    pub history_dropped: Family<ReasonLabel, Counter>,
    /// Time-series store output.
    pub tsdb: TsdbMetrics,
    /// Dialled-in DTUs: registrations, heartbeats, late answers.
    pub dtu: dtu::DtuMetrics,
    /// Regulator uplink metrics.
    pub uplink: uplink::UplinkMetrics,
    /// OPC UA endpoints: sessions, losses, readings, duplicates dropped.
    pub opcua: opcua::OpcuaMetrics,
    /// Webhook delivery attempts by target and outcome.
    pub webhook_deliveries: Family<WebhookLabel, Counter>,
    /// Journal sequence number each webhook target has dealt with.
    pub webhook_cursor: Family<WebhookLabel, Gauge>,
    /// Failed attempts in a row of a webhook target (0 after a success); `/readyz` reports a
    /// target stuck from `health::NOTIFY_STUCK_ATTEMPTS` on.
    pub webhook_failing: Family<WebhookLabel, Gauge>,
    /// Escalation steps by roster and outcome.
    pub escalation_steps: Family<EscalationLabel, Counter>,
    /// The gateway clock's time (ms since the epoch) at the last escalation round.
    pub escalation_evaluated: Gauge,
    /// Northbound MQTT publishes by target and outcome (`acked`, `retried`).
    pub mqtt_north_publishes: Family<WebhookLabel, Counter>,
    /// MQTT subscriptions (sources).
    pub mqtt_in: MqttInMetrics,
    /// Live-feed subscribers connected.
    pub sse_clients: Gauge,
    /// Alarm events a slow live-feed subscriber missed (it is told to reconnect and replay).
    pub sse_lagged: Counter,
    /// Northbound MQTT readings: the durable outbox of each target.
    pub north: north::NorthMetrics,
    /// Reading events sent on the live feed (to subscribers that asked for readings).
    pub sse_readings_sent: Counter,
    /// Reading batches a slow live-feed subscriber skipped (readings are not replayed).
    pub sse_readings_lagged: Counter,
    /// The hot-standby pair's metrics (registered only in a pair, see [`Metrics::in_pair`]).
    pub pair: pair::PairMetrics,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Creates and registers every metric and the pair's, whose handles outlive this gateway
    /// (the same counters go on across switch-overs).
    pub fn in_pair(pair: &pair::PairMetrics) -> Self {
        Self::build(Some(pair))
    }

    fn build(pair: Option<&pair::PairMetrics>) -> Self {
        let mut r = Registry::default();
        if let Some(p) = pair {
            p.register(&mut r);
        }
        let modbus_polls = Family::default();
        r.register(
            "hazard_modbus_polls",
            "Modbus poll cycles by device and outcome",
            modbus_polls.clone(),
        );
        let modbus_requests = Family::default();
        r.register(
            "hazard_modbus_requests",
            "Modbus read requests by device and outcome",
            modbus_requests.clone(),
        );
        let modbus_poll_duration: HistogramFamily<DeviceLabel> = Family::new_with_constructor(latency_histogram);
        r.register_with_unit(
            "hazard_modbus_poll_duration",
            "Duration of one device poll cycle",
            Unit::Seconds,
            modbus_poll_duration.clone(),
        );
        let modbus_overruns = Family::default();
        r.register(
            "hazard_modbus_overruns",
            "Poll cycles longer than the device interval",
            modbus_overruns.clone(),
        );
        let modbus_connects = Family::default();
        r.register(
            "hazard_modbus_connects",
            "Modbus connection attempts by device and outcome",
            modbus_connects.clone(),
        );
        let modbus_response_time: HistogramFamily<DeviceLabel> = Family::new_with_constructor(latency_histogram);
        r.register_with_unit(
            "hazard_modbus_response_time",
            "Time from a Modbus request to its answer",
            Unit::Seconds,
            modbus_response_time.clone(),
        );
        let modbus_device_online = Family::default();
        r.register(
            "hazard_modbus_device_online",
            "1 while a Modbus device answers its polls, 0 after a failed cycle",
            modbus_device_online.clone(),
        );
        let modbus_consecutive_failures = Family::default();
        r.register(
            "hazard_modbus_consecutive_failures",
            "Failed poll cycles of a Modbus device since its last good one",
            modbus_consecutive_failures.clone(),
        );
        let modbus_last_success = Family::default();
        r.register_with_unit(
            "hazard_modbus_last_success_timestamp",
            "When a Modbus device last answered a whole poll cycle, Unix time",
            Unit::Seconds,
            modbus_last_success.clone(),
        );
        let readings = Family::default();
        r.register(
            "hazard_readings",
            "Readings received by the rules engine, by quality",
            readings.clone(),
        );
        let alarm_transitions = Family::default();
        r.register(
            "hazard_alarm_transitions",
            "Alarm transitions journaled and published",
            alarm_transitions.clone(),
        );
        let alarms_active = Gauge::default();
        r.register(
            "hazard_alarms_active",
            "Alarms annunciated now (not normal, not shelved, suppressed or out of service)",
            alarms_active.clone(),
        );
        let alarm_chattering = Gauge::default();
        r.register(
            "hazard_alarms_chattering",
            "Alarms raised at least the chatter threshold times in the last minute",
            alarm_chattering.clone(),
        );
        let journal_errors = Counter::default();
        r.register(
            "hazard_alarm_journal_errors",
            "Alarm transitions the journal failed to store",
            journal_errors.clone(),
        );
        let journal_pruned = Counter::default();
        r.register(
            "hazard_alarm_journal_pruned_transitions",
            "Alarm transitions deleted from the journal by its retention",
            journal_pruned.clone(),
        );
        let journal_held = Gauge::default();
        r.register(
            "hazard_alarm_journal_held_transitions",
            "Alarm transitions shown but not yet journaled, held and retried",
            journal_held.clone(),
        );
        let self_checks = Counter::default();
        r.register(
            "hazard_self_checks",
            "Rounds of the gateway's self-checks (disk, storage, stores, clock) completed",
            self_checks.clone(),
        );
        let data_disk_free = Gauge::default();
        r.register(
            "hazard_data_disk_free_bytes",
            "Free bytes on the data directory's filesystem, as the self-check last read them",
            data_disk_free.clone(),
        );
        let history_written = Counter::default();
        r.register(
            "hazard_history_readings_written",
            "Readings written to the embedded history store",
            history_written.clone(),
        );
        let history_raw_rows = Counter::default();
        r.register(
            "hazard_history_raw_rows_written",
            "Raw history rows kept by the deadband/heartbeat policy",
            history_raw_rows.clone(),
        );
        let history_minute_rows = Counter::default();
        r.register(
            "hazard_history_rollup_rows_written",
            "Per-minute rollup rows written or merged",
            history_minute_rows.clone(),
        );
        let history_dropped = Family::default();
        r.register(
            "hazard_history_readings_dropped",
            "Readings lost before reaching the history store, by reason",
            history_dropped.clone(),
        );
        let tsdb = TsdbMetrics::default();
        tsdb.register(&mut r);
        let dtu = dtu::DtuMetrics::default();
        dtu.register(&mut r);
        let uplink = uplink::UplinkMetrics::default();
        uplink.register(&mut r);
        let opcua = opcua::OpcuaMetrics::default();
        opcua.register(&mut r);
        let webhook_deliveries = Family::default();
        r.register(
            "hazard_webhook_deliveries",
            "Webhook delivery attempts by target and outcome",
            webhook_deliveries.clone(),
        );
        let webhook_cursor = Family::default();
        r.register(
            "hazard_webhook_cursor_seq",
            "Alarm journal sequence number each webhook target has dealt with",
            webhook_cursor.clone(),
        );
        let webhook_failing = Family::default();
        r.register(
            "hazard_webhook_failing",
            "Failed attempts in a row of a webhook target (0 after a success)",
            webhook_failing.clone(),
        );
        let escalation_steps = Family::default();
        r.register(
            "hazard_escalation_steps",
            "Escalation steps by roster and outcome",
            escalation_steps.clone(),
        );
        let escalation_evaluated = Gauge::default();
        r.register(
            "hazard_escalation_evaluated_at_ms",
            "Gateway clock time (ms since the epoch) of the last escalation round",
            escalation_evaluated.clone(),
        );
        let mqtt_north_publishes = Family::default();
        r.register(
            "hazard_mqtt_north_publishes",
            "Northbound MQTT publishes of alarm transitions by target and outcome",
            mqtt_north_publishes.clone(),
        );
        let mqtt_in = MqttInMetrics::default();
        mqtt_in.register(&mut r);
        let sse_clients = Gauge::default();
        r.register(
            "hazard_api_sse_clients",
            "Live-feed subscribers connected",
            sse_clients.clone(),
        );
        let sse_lagged = Counter::default();
        r.register(
            "hazard_api_sse_lagged_events",
            "Alarm events a slow live-feed subscriber missed",
            sse_lagged.clone(),
        );
        let north = north::NorthMetrics::default();
        north.register(&mut r);
        let sse_readings_sent = Counter::default();
        r.register(
            "hazard_api_sse_readings_sent",
            "Reading events sent on the live feed",
            sse_readings_sent.clone(),
        );
        let sse_readings_lagged = Counter::default();
        r.register(
            "hazard_api_sse_reading_batches_lagged",
            "Reading batches a slow live-feed subscriber skipped",
            sse_readings_lagged.clone(),
        );
        Self {
            pair: pair.cloned().unwrap_or_default(),
            north,
            sse_readings_sent,
            sse_readings_lagged,
            registry: Arc::new(r),
            modbus_polls,
            modbus_requests,
            modbus_poll_duration,
            modbus_overruns,
            modbus_connects,
            modbus_response_time,
            modbus_device_online,
            modbus_consecutive_failures,
            modbus_last_success,
            readings,
            alarm_transitions,
            alarms_active,
            alarm_chattering,
            journal_errors,
            journal_held,
            self_checks,
            data_disk_free,
            journal_pruned,
            history_written,
            history_raw_rows,
            history_minute_rows,
            history_dropped,
            tsdb,
            dtu,
            uplink,
            opcua,
            webhook_deliveries,
            webhook_cursor,
            webhook_failing,
            escalation_steps,
            escalation_evaluated,
            mqtt_north_publishes,
            mqtt_in,
            sse_clients,
            sse_lagged,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Label of per-subscription MQTT metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabel {
    /// Subscription name from the config.
    pub subscription: String,
}

/// Labels of a per-subscription MQTT problem.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionKind {
    /// Subscription name from the config.
    pub subscription: String,
    /// `oversize`, `invalid_json`, `invalid_text`, `not_an_array`, `missing_field`,
    /// `wrong_type`, `bad_timestamp`, `bad_quality`, `bad_point_field`, `unknown_point`.
    pub kind: &'static str,
}

/// Label of per-broker MQTT metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabel {
    /// Broker name from the config.
    pub broker: String,
}

/// Labels of a per-broker MQTT outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerResult {
    /// Broker name from the config.
    pub broker: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Handles of the MQTT source metrics.
#[derive(Debug, Clone, Default)]
pub struct MqttInMetrics {
    /// Messages received per subscription.
    pub messages: Family<SubscriptionLabel, Counter>,
    /// Readings handed to the pipeline per subscription (stale markers included).
    pub readings: Family<SubscriptionLabel, Counter>,
    /// Bad input per subscription and kind.
    pub errors: Family<SubscriptionKind, Counter>,
    /// Points that turned stale, per subscription.
    pub stale: Family<SubscriptionLabel, Counter>,
    /// Messages that matched no subscription of their broker.
    pub unmatched: Family<BrokerLabel, Counter>,
    /// 1 while connected to the broker.
    pub connected: Family<BrokerLabel, Gauge>,
    /// Connection attempts by outcome.
    pub connects: Family<BrokerResult, Counter>,
    /// Acknowledgements that could not be queued (the broker redelivers: a duplicate).
    pub ack_failures: Family<BrokerLabel, Counter>,
    /// 1 while the broker has been away past its `comm_grace` (its points are `comm_fault`).
    pub broker_lost: Family<BrokerLabel, Gauge>,
    /// Messages dropped whole before decoding, per subscription and reason (`oversize`).
    pub dropped: Family<SubscriptionReason, Counter>,
}

/// Labels of messages an MQTT subscription dropped whole.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionReason {
    /// Subscription name from the config.
    pub subscription: String,
    /// Why: `oversize` (payload over `max_payload`).
    pub reason: &'static str,
}

impl MqttInMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_mqtt_in_messages",
            "MQTT messages received per subscription",
            self.messages.clone(),
        );
        r.register(
            "hazard_mqtt_in_readings",
            "Readings from MQTT handed to the pipeline per subscription",
            self.readings.clone(),
        );
        r.register(
            "hazard_mqtt_in_errors",
            "Bad MQTT input per subscription and kind",
            self.errors.clone(),
        );
        r.register(
            "hazard_mqtt_in_stale_points",
            "MQTT-fed points that turned stale, per subscription",
            self.stale.clone(),
        );
        r.register(
            "hazard_mqtt_in_unmatched_messages",
            "MQTT messages that matched no subscription of their broker",
            self.unmatched.clone(),
        );
        r.register(
            "hazard_mqtt_in_connected",
            "1 while connected to the MQTT broker",
            self.connected.clone(),
        );
        r.register(
            "hazard_mqtt_in_connects",
            "MQTT broker connection attempts by outcome",
            self.connects.clone(),
        );
        r.register(
            "hazard_mqtt_in_ack_failures",
            "MQTT acknowledgements that could not be queued (the message is redelivered)",
            self.ack_failures.clone(),
        );
        r.register(
            "hazard_mqtt_in_broker_lost",
            "1 while the MQTT broker has been away longer than its comm_grace",
            self.broker_lost.clone(),
        );
        r.register(
            "hazard_mqtt_in_messages_dropped",
            "MQTT messages dropped whole before decoding, per subscription and reason",
            self.dropped.clone(),
        );
    }
}

/// Lets a repeated error through to the log at most once per interval and says how many
/// were held back meanwhile, so an outage of hours costs a few lines rather than millions,
/// and the count still tells how often it happened. The metrics count every occurrence.
#[derive(Debug)]
pub struct LogEvery {
    interval: std::time::Duration,
    last: Option<tokio::time::Instant>,
    held: u64,
}

impl LogEvery {
    /// At most one line per `interval`.
    pub const fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            last: None,
            held: 0,
        }
    }

    /// Records one occurrence now; see [`LogEvery::hit_at`].
    pub fn hit(&mut self) -> Option<u64> {
        self.hit_at(tokio::time::Instant::now())
    }

    /// Records one occurrence at `now`: `Some(held)` when this one is to be logged, `held`
    /// being how many were not logged since the previous line; `None` to stay quiet.
    pub fn hit_at(&mut self, now: tokio::time::Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_every_lets_one_line_through_per_interval_with_the_count_held_back() {
        let t0 = tokio::time::Instant::now();
        let s = std::time::Duration::from_secs(1);
        let mut l = LogEvery::new(10 * s);
        assert_eq!(l.hit_at(t0), Some(0));
        assert_eq!(l.hit_at(t0 + s), None);
        assert_eq!(l.hit_at(t0 + 9 * s), None);
        assert_eq!(l.hit_at(t0 + 10 * s), Some(2));
        assert_eq!(l.hit_at(t0 + 25 * s), Some(0));
    }

    #[test]
    fn every_metric_is_documented() {
        let docs = include_str!("../../docs/metrics.md");
        let text = Metrics::new().render();
        let mut missing = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let exposed = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if !docs.contains(&format!("`{exposed}`")) {
                missing.push(exposed);
            }
        }
        assert!(missing.is_empty(), "add these to docs/metrics.md: {missing:?}");
    }
}
