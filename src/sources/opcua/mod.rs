//! OPC UA client source: tags of a chemical plant's DCS/SIS read through subscriptions, as
//! ordinary points beside Modbus and MQTT.
//!
//! - [`config`]: `[[opcua.endpoints]]` and `[[opcua.points]]` as written and validated.
//! - [`validate`]: checks them and enters the declared points into the point table.
//! - [`convert`]: a data change to a reading (status to quality, value to f64, timestamps),
//!   and the guard that never delivers a value twice; pure.
//! - [`client`]: the gateway's application certificate, trust list, user identity.
//! - [`task`]: one task per endpoint: connect, subscribe, batch, reconnect.
//! - [`health`]: per-endpoint health for `/api/v1/devices`.
//! - [`metrics`]: the `hazard_opcua_*` metrics.
//! - [`browse`]: the `hazard-gateway opcua browse` commissioning listing.
//!
//! Design: points are declared, as for MQTT (see [`crate::sources::mqtt`]): each
//! `[[opcua.points]]` entry names its point id, unit, kind, range and hazard source, and the
//! node (by id or browse path) that feeds it. The point table is fixed at validation, so rules
//! and `check-config` see every OPC UA point before the gateway starts.

pub mod browse;
pub mod client;
pub mod config;
pub mod convert;
pub mod health;
pub mod task;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use client::OpcuaError;
pub use config::OpcuaSpec;
pub use health::OpcuaHealth;

use crate::clock::SharedClock;
use crate::model::ReadingBatch;

/// Starts one task per endpoint that has points; they stop when `cancel` fires.
#[allow(clippy::too_many_arguments)]
pub fn start(
    spec: &OpcuaSpec,
    gateway_id: &str,
    data_dir: &Path,
    tx: &mpsc::Sender<ReadingBatch>,
    clock: &SharedClock,
    metrics: &crate::telemetry::opcua::OpcuaMetrics,
    health: &Arc<OpcuaHealth>,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let pki = client::pki_dir(data_dir);
    spec.endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, ep)| {
            let items: Vec<_> = spec.items.iter().filter(|it| it.endpoint == i).cloned().collect();
            if items.is_empty() {
                return None;
            }
            let t = task::EndpointTask {
                index: i,
                spec: ep.clone(),
                items,
                gateway_id: gateway_id.to_string(),
                pki: pki.clone(),
                tx: tx.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                health: health.clone(),
            };
            Some(tokio::spawn(t.run(cancel.child_token())))
        })
        .collect()
}
