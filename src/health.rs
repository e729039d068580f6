//! Whether the gateway is fit to watch the plant: the checks behind `/readyz` and behind the
//! service manager's watchdog, kept in one place so both answer the same.

use std::time::Duration;

use crate::model::Timestamp;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::telemetry::north::NorthLabel;
use crate::telemetry::{BrokerLabel, MqttInMetrics, StoreLabel, TsdbMetrics, WebhookLabel};

/// Failed attempts in a row after which a notification target is reported stuck: with the
/// backoff from 0.5 s doubling, about 15 s of refusals or silence, longer than a blip.
pub const NOTIFY_STUCK_ATTEMPTS: i64 = 5;

/// How long the rules task may be silent before the gateway is not ready: it ticks every
/// second, so this is several missed ticks, not a slow one.
pub const RULES_STALL: Duration = Duration::from_secs(5);

/// The problem, if any, with a rules task last heard from at `heartbeat`, seen at `now`.
pub fn rules_problem(now: Timestamp, heartbeat: Timestamp) -> Option<String> {
    let silent = now.since(heartbeat);
    (silent > RULES_STALL).then(|| format!("rules engine silent for {} s", silent.as_secs()))
}

/// What `/readyz` checks beyond the rules engine; replaced as a whole when the config is reloaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Buffer backlog in bytes above which a store makes the gateway unready (`[ops]`).
    pub buffer_limit: Option<u64>,
    /// Free data-disk bytes below which the gateway raises its disk alarm (0: never).
    pub min_free_disk: u64,
    /// Wall-clock step that raises the clock alarm.
    pub clock_jump_over: Duration,
    /// The configured stores, by name.
    pub stores: Vec<String>,
    /// The MQTT brokers with subscriptions, by name.
    pub brokers: Vec<String>,
    /// The webhook (notification) targets, by name.
    pub webhooks: Vec<String>,
    /// The northbound MQTT targets that publish readings (each with an outbox), by name.
    pub north: Vec<String>,
}

impl Readiness {
    /// Every reason the gateway is not ready at `now`.
    pub fn problems(
        &self,
        now: Timestamp,
        rules_heartbeat: Timestamp,
        tsdb: &TsdbMetrics,
        journal_held: i64,
        mqtt: &MqttInMetrics,
        diagnostics: Vec<String>,
    ) -> Vec<String> {
        let mut out: Vec<String> = rules_problem(now, rules_heartbeat).into_iter().collect();
        // The self-checks' findings: disk, history writes, clock.
        out.extend(diagnostics);
        if journal_held > 0 {
            out.push(format!(
                "alarm journal cannot be written: {journal_held} transitions held in memory, retried every second"
            ));
        }
        // A lost broker: the points it feeds are blind (their communication alarm is raised).
        for broker in &self.brokers {
            let label = BrokerLabel { broker: broker.clone() };
            if mqtt.broker_lost.get_or_create(&label).get() != 0 {
                out.push(format!(
                    "mqtt broker `{broker}` lost: the points it feeds are comm_fault"
                ));
            }
        }
        // A store that cannot send at all: the gateway still alarms, but its data piles up.
        let unusable = tsdb.unusable_reasons.lock().unwrap_or_else(|e| e.into_inner());
        for store in &self.stores {
            if let Some(reason) = unusable.get(store) {
                out.push(format!(
                    "store `{store}` cannot send: {reason}; its readings are buffered and it retries"
                ));
            }
        }
        drop(unusable);
        if let Some(limit) = self.buffer_limit {
            let held = self.stores.iter().map(|store| {
                let bytes = tsdb
                    .buffer_pending_bytes
                    .get_or_create(&StoreLabel { store: store.clone() })
                    .get();
                (store.as_str(), u64::try_from(bytes).unwrap_or(0))
            });
            out.extend(buffer_problems(limit, held));
        }
        out
    }
}

impl Readiness {
    /// A problem for each northbound readings outbox holding more than the buffer limit
    /// (`[ops] unready_when_buffer_over`, as for stores): the park platform is falling
    /// behind and, left so, the oldest readings will be dropped.
    pub fn north_problems(&self, pending: &Family<NorthLabel, Gauge>) -> Vec<String> {
        let Some(limit) = self.buffer_limit else {
            return Vec::new();
        };
        self.north
            .iter()
            .filter_map(|target| {
                let bytes = pending.get_or_create(&NorthLabel { target: target.clone() }).get();
                let bytes = u64::try_from(bytes).unwrap_or(0);
                (bytes > limit).then(|| {
                    format!(
                        "mqtt_north `{target}` readings outbox holds {} not yet acknowledged, over the {} limit",
                        bytesize::ByteSize(bytes),
                        bytesize::ByteSize(limit)
                    )
                })
            })
            .collect()
    }

    /// A problem for each notification target stuck retrying (`failing` counts its failed
    /// attempts in a row): people are not being told, though the journal keeps every
    /// transition for it.
    pub fn notify_problems(&self, failing: &Family<WebhookLabel, Gauge>) -> Vec<String> {
        self.webhooks
            .iter()
            .filter_map(|target| {
                let label = WebhookLabel {
                    target: target.clone(),
                    result: "failing",
                };
                let n = failing.get_or_create(&label).get();
                (n >= NOTIFY_STUCK_ATTEMPTS).then(|| {
                    format!("webhook `{target}` stuck: {n} attempts in a row failed; its messages wait and are retried")
                })
            })
            .collect()
    }
}

/// A problem for each store whose buffer holds more than `limit` bytes not yet delivered.
pub fn buffer_problems<'a>(limit: u64, held: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<String> {
    held.into_iter()
        .filter(|(_, bytes)| *bytes > limit)
        .map(|(store, bytes)| {
            format!(
                "store `{store}` buffer holds {} not yet delivered, over the {} limit",
                bytesize::ByteSize(bytes),
                bytesize::ByteSize(limit)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_buffer_over_its_limit_is_a_problem() {
        let limit = 1 << 20;
        assert!(buffer_problems(limit, [("central", limit), ("backup", 0)]).is_empty());
        assert_eq!(
            buffer_problems(limit, [("central", limit + 1), ("backup", 0)]),
            vec!["store `central` buffer holds 1.0 MiB not yet delivered, over the 1.0 MiB limit".to_string()]
        );
    }

    #[test]
    fn readiness_reads_the_buffer_gauges_of_the_configured_stores() {
        let tsdb = TsdbMetrics::default();
        tsdb.buffer_pending_bytes
            .get_or_create(&StoreLabel {
                store: "central".into(),
            })
            .set(5000);
        let r = Readiness {
            buffer_limit: Some(4096),
            stores: vec!["central".into()],
            brokers: vec![],
            ..Readiness::default()
        };
        let now = Timestamp::from_millis(1000);
        let mqtt = MqttInMetrics::default();
        assert_eq!(
            r.problems(now, now, &tsdb, 0, &mqtt, Vec::new()),
            vec!["store `central` buffer holds 4.9 KiB not yet delivered, over the 4.0 KiB limit".to_string()]
        );
        let off = Readiness {
            buffer_limit: None,
            ..r
        };
        assert!(off.problems(now, now, &tsdb, 0, &mqtt, Vec::new()).is_empty());
        assert_eq!(
            off.problems(now, now, &tsdb, 2, &mqtt, Vec::new()).len(),
            1,
            "held transitions"
        );
    }

    #[test]
    fn a_notification_target_failing_five_times_in_a_row_is_stuck() {
        let r = Readiness {
            webhooks: vec!["duty".into()],
            ..Readiness::default()
        };
        let failing = Family::<WebhookLabel, Gauge>::default();
        let g = failing.get_or_create(&WebhookLabel {
            target: "duty".into(),
            result: "failing",
        });
        g.set(4);
        assert!(r.notify_problems(&failing).is_empty());
        g.set(5);
        assert_eq!(
            r.notify_problems(&failing),
            vec!["webhook `duty` stuck: 5 attempts in a row failed; its messages wait and are retried".to_string()]
        );
    }

    #[test]
    fn a_northbound_outbox_over_the_buffer_limit_is_a_problem() {
        let r = Readiness {
            buffer_limit: Some(4096),
            north: vec!["park".into()],
            ..Readiness::default()
        };
        let pending = Family::<NorthLabel, Gauge>::default();
        let g = pending.get_or_create(&NorthLabel { target: "park".into() });
        g.set(4096);
        assert!(r.north_problems(&pending).is_empty());
        g.set(5000);
        assert_eq!(
            r.north_problems(&pending),
            vec![
                "mqtt_north `park` readings outbox holds 4.9 KiB not yet acknowledged, over the 4.0 KiB limit"
                    .to_string()
            ]
        );
        let off = Readiness {
            buffer_limit: None,
            ..r
        };
        assert!(off.north_problems(&pending).is_empty());
    }

    #[test]
    fn a_lost_broker_is_a_problem_until_it_is_back() {
        let r = Readiness {
            brokers: vec!["plant".into()],
            ..Readiness::default()
        };
        let (tsdb, mqtt) = (TsdbMetrics::default(), MqttInMetrics::default());
        let now = Timestamp::from_millis(1000);
        assert!(r.problems(now, now, &tsdb, 0, &mqtt, Vec::new()).is_empty());
        let lost = mqtt.broker_lost.get_or_create(&BrokerLabel { broker: "plant".into() });
        lost.set(1);
        assert_eq!(
            r.problems(now, now, &tsdb, 0, &mqtt, Vec::new()),
            vec!["mqtt broker `plant` lost: the points it feeds are comm_fault".to_string()]
        );
        lost.set(0);
        assert!(r.problems(now, now, &tsdb, 0, &mqtt, Vec::new()).is_empty());
    }

    #[test]
    fn a_silent_rules_engine_is_a_problem() {
        let beat = Timestamp::from_millis(10_000);
        assert_eq!(rules_problem(Timestamp::from_millis(15_000), beat), None);
        assert_eq!(
            rules_problem(Timestamp::from_millis(15_001), beat).as_deref(),
            Some("rules engine silent for 5 s")
        );
    }
}
