//! MQTT subscriptions: detectors, tailings-dam stations and mine substations that publish
//! over MQTT (often through a 4G DTU), ingested as points beside Modbus.
//!
//! - [`config`]: `[[mqtt.brokers]]` and `[[mqtt.subscriptions]]` as written and validated.
//! - [`validate`]: checks them and enters the declared points into the point table.
//! - [`template`]: topic filters with named levels, point-id templates, `{01..40}` expansion.
//! - [`decode`]: payload decoders (plain text, JSON value / fields / array), pure.
//! - [`time`]: device timestamps (s/ms/us/ns since the epoch, RFC 3339), pure.
//! - [`route`]: one message to readings, with per-subscription counters and stale tracking.
//! - [`stale`]: which points have been silent past their `stale_after`, pure.
//! - [`client`]: the only module that knows rumqttc (MQTT 3.1.1 and 5, TLS).
//! - [`health`]: each broker connection's health, for `/api/v1/devices`.
//! - [`task`]: one task per broker: poll, batch, hand to the pipeline, then acknowledge.
//!
//! Design: points are declared, not discovered. The point table is fixed when the config is
//! validated, and everything downstream sizes per-point state from it (rules engine slots,
//! live values, history ids, TSDB tag prefixes) and checks rule selectors against it. So a
//! subscription lists the point ids it may feed (`points = ["dam-1/P{01..40}/disp"]`, with
//! brace expansion so hundreds of sensors take one line) together with their unit, kind,
//! range and hazard source; its template maps each message to one of them at run time. A
//! message for an undeclared id is counted (`unknown_point`) and logged with its topic, never
//! silently entered. We chose this over a table that grows at run time because a growable
//! table would have to reach every per-point structure and re-bind rule globs while readings
//! flow, whereas declared points keep rules, `check-config` and the API exact: an alarm rule
//! on `dam-1/P*/disp` is checked against real ids before the gateway starts, and a new sensor
//! is added by editing the config (and reloading), like a new Modbus device.

pub mod client;
pub mod config;
pub mod decode;
pub mod health;
pub mod route;
pub mod stale;
pub mod task;
pub mod template;
pub mod time;
pub mod validate;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use client::ClientError;
pub use config::MqttInSpec;

use crate::clock::SharedClock;
use crate::model::DurableBatch;
use crate::model::PointTable;
use crate::telemetry::MqttInMetrics;

/// Starts one task per configured broker (with at least one subscription); they stop when
/// `cancel` fires. Fails before spawning anything if a password or TLS file is missing.
pub fn start(
    spec: &MqttInSpec,
    points: &PointTable,
    tx: &mpsc::Sender<DurableBatch>,
    clock: &SharedClock,
    metrics: &MqttInMetrics,
    health: &std::sync::Arc<health::MqttHealth>,
    cancel: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ClientError> {
    let mut tasks = Vec::new();
    for (i, broker) in spec.brokers.iter().enumerate() {
        let subs: Vec<_> = spec.subscriptions.iter().filter(|s| s.broker == i).cloned().collect();
        if subs.is_empty() {
            continue;
        }
        let (client, events) = client::link(broker)?;
        let router = route::Router::new(&broker.name, subs, points, metrics.clone(), tokio::time::Instant::now());
        tasks.push(task::BrokerTask {
            name: broker.name.clone(),
            client,
            events,
            router,
            tx: tx.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            grace: broker.comm_grace,
        });
    }
    Ok(tasks
        .into_iter()
        .map(|t| tokio::spawn(t.run(cancel.child_token())))
        .collect())
}
