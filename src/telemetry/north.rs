//! Metrics of northbound MQTT readings (the durable outbox of each `[[mqtt_north]]` target),
//! registered with the gateway's other metrics (`docs/metrics.md`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::WebhookLabel;

/// Labels of a per-target gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NorthLabel {
    /// Target name from the config.
    pub target: String,
}

/// Handles to the northbound readings metrics.
#[derive(Debug, Clone, Default)]
pub struct NorthMetrics {
    /// Readings by target and outcome: `buffered` (durable in the outbox), `delivered`
    /// (acknowledged by the broker), `resent` (published again after a reconnect: possible
    /// duplicates), and every loss as `dropped_<reason>` (`queue_full`, `closed`,
    /// `buffer_full`, `buffer_error`, `buffer_corrupt`, `expired`, `unencodable`).
    pub readings: Family<WebhookLabel, Counter>,
    /// MQTT messages of readings by target and outcome: `acked`, `resent`.
    pub messages: Family<WebhookLabel, Counter>,
    /// Payload bytes in the outbox not yet acknowledged by the broker.
    pub buffer_pending_bytes: Family<NorthLabel, Gauge>,
    /// Messages in the outbox not yet acknowledged.
    pub buffer_messages: Family<NorthLabel, Gauge>,
    /// Age of the oldest unacknowledged message, seconds.
    pub buffer_oldest_age: Family<NorthLabel, Gauge>,
    /// Messages published and not yet acknowledged (at most the target's `in_flight`).
    pub in_flight: Family<NorthLabel, Gauge>,
    /// 1 while the readings connection to the broker is up.
    pub connected: Family<NorthLabel, Gauge>,
}

impl NorthMetrics {
    /// Registers every northbound readings metric in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "hazard_mqtt_north_readings",
            "Northbound MQTT readings by target and outcome",
            self.readings.clone(),
        );
        r.register(
            "hazard_mqtt_north_reading_messages",
            "Northbound MQTT messages of readings by target and outcome",
            self.messages.clone(),
        );
        r.register(
            "hazard_mqtt_north_buffer_pending_bytes",
            "Payload bytes in a northbound outbox not yet acknowledged by the broker",
            self.buffer_pending_bytes.clone(),
        );
        r.register(
            "hazard_mqtt_north_buffer_messages",
            "Messages in a northbound outbox not yet acknowledged by the broker",
            self.buffer_messages.clone(),
        );
        r.register_with_unit(
            "hazard_mqtt_north_buffer_oldest_age",
            "Age of the oldest message in a northbound outbox not yet acknowledged",
            Unit::Seconds,
            self.buffer_oldest_age.clone(),
        );
        r.register(
            "hazard_mqtt_north_in_flight",
            "Northbound reading messages published and not yet acknowledged",
            self.in_flight.clone(),
        );
        r.register(
            "hazard_mqtt_north_readings_connected",
            "1 while a northbound target's readings connection is up",
            self.connected.clone(),
        );
    }
}
