//! Hot reload: SIGHUP or `POST /api/v1/admin/reload` re-reads the config file, validates it
//! and applies rule, device and sink changes to the running gateway.
//!
//! Design: one reload at a time (the parts it may replace sit behind one async mutex, which
//! shutdown takes too). Nothing changes until the new file has validated and passed the
//! restart check; a refused reload leaves the running config untouched. Then, in order:
//! - **rules**: a fresh engine is built from the new rules and takes over the old one's state
//!   alarm by alarm inside the rules task (`RulesEngine::carry_over`): active alarms, their
//!   acknowledgement, shelving and running delay timers survive; new set-points apply from
//!   the next reading. An alarm whose rule is gone leaves the live view (logged).
//! - **stores**: a store whose settings changed, or that was removed, is stopped the orderly
//!   way (its intake persists everything to its durable buffer), and a changed or new one is
//!   started on the same buffer directory, replaying the backlog. While a store restarts the
//!   rules task parks its reading batches and hands them over afterwards, so no reading is
//!   lost; alarm transitions reach the new alarm tap through a subscription taken before the
//!   old tap stops (at least once: a transition may be written twice across the switch).
//! - **webhooks and northbound MQTT**: restarted when their settings changed; their journal
//!   cursors resume each where it was.
//! - **devices**: when a device's settings changed the line tasks are restarted (a missed poll
//!   at most); readings already queued are evaluated.
//! - **readiness**: `[ops]` limits and the store list of `/readyz`.
//! - **console policy**: `[console]`, `[alarms.shelving]` and the set-points the trends draw.
//! - **API tokens**: `[[api.tokens]]` and `[api] open`, from the next request on (a live feed
//!   opened with a removed token keeps running until it reconnects).
//!
//! What only a restart can change (the reload is refused, naming each): gateway id, data
//! directory, API listen address and body limit, history settings, hazard sources, and
//! the point list (ids and metadata: points index every live table).

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::rules_task::RulesTask;
use crate::api::admin::{ReloadFailure, ReloadRequest};
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::health::Readiness;
use crate::model::ReadingBatch;
use crate::rules::RulesEngine;
use crate::rules::engine::CarryReport;
use crate::sinks::journal::AlarmJournal;
use crate::sinks::tsdb::{self, SinkItem, Store};
use crate::sources::modbus::poller::{Poller, group_lines};
use crate::state::LiveState;
use crate::state::devices::HealthBoard;
use crate::telemetry::{Metrics, StoreReason};

mod check;

/// Reading batches parked per restarting store; beyond, dropped and counted (`reload`).
const PARK_LIMIT: usize = 4096;

/// Requests from the reloader to the rules task, which owns the engine and the store intakes.
#[derive(Debug)]
pub(super) enum RulesControl {
    /// Take over the running engine's state into this one and run it from now on.
    Swap {
        engine: Box<RulesEngine>,
        reply: oneshot::Sender<CarryReport>,
    },
    /// Stop handing batches to these stores; keep them parked until `SetStores`.
    Park {
        stores: Vec<String>,
        reply: oneshot::Sender<()>,
    },
    /// The intakes of every store from now on; parked batches go to their store.
    SetStores {
        stores: Vec<(String, mpsc::Sender<SinkItem>)>,
        reply: oneshot::Sender<()>,
    },
}

/// Batches held for stores being restarted, with the receipts of durable sources: those
/// are settled only once the restarted store has buffered the batch.
#[derive(Debug, Default)]
pub(super) struct Parked {
    held: Vec<(String, Vec<crate::sinks::history::HistoryItem>)>,
}

impl Parked {
    /// Keeps a copy of `batch` for every parked store.
    pub(super) fn hold(&mut self, batch: &ReadingBatch, receipt: Option<&crate::model::Receipt>, metrics: &Metrics) {
        for (store, held) in &mut self.held {
            if held.len() < PARK_LIMIT {
                held.push((batch.clone(), receipt.cloned()));
            } else {
                let label = StoreReason {
                    store: store.clone(),
                    reason: "reload",
                };
                metrics.tsdb.dropped.get_or_create(&label).inc_by(batch.len() as u64);
            }
        }
    }
}

impl RulesTask {
    /// Applies a reload step; runs in the rules task between two readings.
    pub(super) fn control(&mut self, ctl: RulesControl) {
        match ctl {
            RulesControl::Swap { engine, reply } => {
                let mut engine = *engine;
                let report = engine.carry_over(&self.engine);
                self.engine = engine;
                for id in &report.removed_visible {
                    self.state.forget(id);
                    warn!(alarm = %id, "Alarm no longer configured after reload; taken off the live view");
                }
                let annunciated = self.state.active_alarms().iter().filter(|e| e.annunciated()).count();
                self.metrics
                    .alarms_active
                    .set(i64::try_from(annunciated).unwrap_or(i64::MAX));
                self.state.set_stats(self.engine.stats());
                self.state.set_thresholds(self.engine.threshold_settings());
                let _ = reply.send(report);
            }
            RulesControl::Park { stores, reply } => {
                self.stores.retain(|(name, _)| !stores.contains(name));
                self.parked.held.extend(stores.into_iter().map(|s| (s, Vec::new())));
                let _ = reply.send(());
            }
            RulesControl::SetStores { stores, reply } => {
                self.stores = stores;
                for (name, batches) in std::mem::take(&mut self.parked.held) {
                    // A store the reload removed gets nothing more, by the operator's choice.
                    let Some((_, tx)) = self.stores.iter().find(|(n, _)| *n == name) else {
                        continue;
                    };
                    for (batch, receipt) in batches {
                        let item = match receipt {
                            Some(r) => SinkItem::Durable(batch, r),
                            None => SinkItem::Readings(batch),
                        };
                        if let Err(e) = tx.try_send(item) {
                            let lost = match e {
                                mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item) => {
                                    item.len()
                                }
                            };
                            let label = StoreReason {
                                store: name.clone(),
                                reason: "queue_full",
                            };
                            self.metrics.tsdb.dropped.get_or_create(&label).inc_by(lost as u64);
                        }
                    }
                }
                let _ = reply.send(());
            }
        }
    }
}

/// What a reload may replace, and what shutdown stops.
#[derive(Debug)]
pub(super) struct Parts {
    pub(super) config: GatewayConfig,
    pub(super) pollers: Vec<JoinHandle<()>>,
    pub(super) pollers_cancel: CancellationToken,
    pub(super) stores: Vec<Store>,
    pub(super) alarm_tap: JoinHandle<()>,
    pub(super) alarm_tap_stop: CancellationToken,
    pub(super) deliveries: Vec<JoinHandle<()>>,
    pub(super) deliveries_stop: CancellationToken,
    /// Regulator uplinks.
    pub(super) uplinks: crate::sinks::uplink::runner::Uplinks,
}

/// The running context a reload works in.
#[derive(Debug)]
pub(super) struct Context {
    /// The API's tokens, replaced on reload.
    pub(super) auth: Arc<crate::api::auth::Tokens>,
    pub(super) data_dir: std::path::PathBuf,
    pub(super) journal: Arc<AlarmJournal>,
    pub(super) state: Arc<LiveState>,
    pub(super) metrics: Metrics,
    pub(super) clock: SharedClock,
    pub(super) control: mpsc::Sender<RulesControl>,
    pub(super) readings: mpsc::Sender<ReadingBatch>,
    /// Into the rules task, for sources that acknowledge upstream once readings are durable.
    pub(super) durable_readings: mpsc::Sender<crate::model::DurableBatch>,
    pub(super) device_health: Arc<HealthBoard>,
    pub(super) readiness: Arc<RwLock<Readiness>>,
    /// What the console and the shelving commands read (`[console]`, `[alarms.shelving]`).
    pub(super) policy: Arc<RwLock<crate::api::policy::ConsolePolicy>>,
    pub(super) sources_cancel: CancellationToken,
    /// The DTU listeners, started once (a change to `[dtu]` listeners needs a restart).
    pub(super) dtu: Option<Arc<crate::sources::dtu::DtuHub>>,
    /// The embedded history (uplinks answer platforms' history pulls from it).
    pub(super) history: Arc<crate::sinks::history::HistoryReader>,
    /// Where northbound targets put their readings intakes for the rules task.
    pub(super) north: crate::sinks::mqtt_north::NorthIntakes,
    /// In a hot-standby pair, whether this node may drive buses and regulator sends.
    pub(super) fence: crate::model::pair::Fence,
}

/// Applies config reloads; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Reloader {
    pub(super) parts: Arc<tokio::sync::Mutex<Option<Parts>>>,
    pub(super) ctx: Arc<Context>,
}

impl Context {
    /// Line tasks for `config`'s devices and one task per MQTT broker it subscribes to.
    pub(super) fn start_pollers(
        &self,
        config: &GatewayConfig,
        cancel: &CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, crate::sources::mqtt::ClientError> {
        // The old line tasks have ended (or none ran yet): nobody writes by the old indexes.
        self.device_health.reset(&config.devices);
        let mut tasks: Vec<JoinHandle<()>> = group_lines(&config.devices)
            .iter()
            .map(|line| {
                let poller = Poller::new(
                    line,
                    &config.devices,
                    self.readings.clone(),
                    self.clock.clone(),
                    self.metrics.clone(),
                    self.device_health.clone(),
                )
                .with_dtu(self.dtu.clone())
                .with_fence(self.fence.clone(), self.metrics.pair.fenced_polls.clone());
                tokio::spawn(poller.run(cancel.child_token()))
            })
            .collect();
        let mqtt_health = Arc::new(crate::sources::mqtt::health::MqttHealth::new(&config.mqtt));
        self.device_health.set_mqtt(mqtt_health.clone());
        tasks.extend(crate::sources::mqtt::start(
            &config.mqtt,
            &config.points,
            &self.durable_readings,
            &self.clock,
            &self.metrics.mqtt_in,
            &mqtt_health,
            cancel,
        )?);
        let opcua_health = Arc::new(crate::sources::opcua::OpcuaHealth::new(&config.opcua));
        self.device_health.set_opcua(opcua_health.clone());
        tasks.extend(crate::sources::opcua::start(
            &config.opcua,
            &config.gateway_id,
            &self.data_dir,
            &self.readings,
            &self.clock,
            &self.metrics.opcua,
            &opcua_health,
            cancel,
        ));
        Ok(tasks)
    }

    /// Webhook and northbound MQTT deliveries for `config`.
    pub(super) fn start_deliveries(
        &self,
        config: &GatewayConfig,
        stop: &CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, super::StartError> {
        let mut out = Vec::new();
        let ctx = crate::sinks::webhook::SendContext {
            gateway: config.gateway_id.clone(),
            directory: Arc::new(config.notify_directory()),
            settings: config.notify.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
        };
        for spec in &config.webhooks {
            out.extend(crate::sinks::webhook::start(
                spec.clone(),
                ctx.clone(),
                &self.data_dir,
                self.journal.clone(),
                self.state.subscribe(),
                stop.clone(),
            )?);
        }
        out.extend(crate::sinks::webhook::escalate::start(
            &config.escalations,
            &config.webhooks,
            ctx,
            &self.data_dir,
            self.journal.clone(),
            self.state.subscribe(),
            stop.clone(),
        )?);
        for spec in &config.mqtt_north {
            out.push(crate::sinks::mqtt_north::start(
                spec.clone(),
                &config.gateway_id,
                &self.data_dir,
                self.journal.clone(),
                crate::sinks::mqtt_north::ReadingSource {
                    live: self.state.clone(),
                    clock: self.clock.clone(),
                    intakes: self.north.clone(),
                },
                self.metrics.clone(),
                stop.clone(),
            )?);
        }
        Ok(out)
    }

    /// What the uplinks of `config` share.
    pub(super) fn uplink_env(&self, config: &GatewayConfig) -> crate::sinks::uplink::UplinkEnv {
        crate::sinks::uplink::UplinkEnv {
            gateway: config.gateway_id.clone(),
            data_dir: self.data_dir.clone(),
            journal: self.journal.clone(),
            state: self.state.clone(),
            history: Some(self.history.clone()),
            clock: self.clock.clone(),
            metrics: self.metrics.uplink.clone(),
            rules: config.rules.clone(),
            fence: self.fence.clone(),
            fenced: self.metrics.pair.fenced_sends.clone(),
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> RulesControl) -> Result<T, ReloadFailure> {
        let (tx, rx) = oneshot::channel();
        self.control.send(make(tx)).await.map_err(|_| ReloadFailure::Stopping)?;
        rx.await.map_err(|_| ReloadFailure::Stopping)
    }
}

impl Reloader {
    /// Re-reads the config file and applies it; a summary of what changed, or why not.
    pub(super) async fn reload(&self) -> Result<Value, ReloadFailure> {
        let mut guard = self.parts.lock().await;
        let parts = guard.as_mut().ok_or(ReloadFailure::Stopping)?;
        let ctx = &self.ctx;
        let path = parts.config.file.clone();
        let new = GatewayConfig::load(&path)
            .map_err(|e| ReloadFailure::Invalid(e.0.iter().map(ToString::to_string).collect()))?;
        let fixed = check::needs_restart(&parts.config, &new);
        if !fixed.is_empty() {
            return Err(ReloadFailure::NeedsRestart(fixed));
        }
        let engine = RulesEngine::new(new.points.clone(), &new.rules, new.alarms.clone(), ctx.clock.now())
            .map_err(|e| ReloadFailure::Invalid(vec![format!("rules: {e}")]))?;
        let carry = ctx
            .ask(|reply| RulesControl::Swap {
                engine: Box::new(engine),
                reply,
            })
            .await?;
        let mut problems = Vec::new();
        let stores = self.reload_stores(parts, &new, &mut problems).await?;
        let deliveries = parts.config.webhooks != new.webhooks
            || parts.config.notify != new.notify
            || parts.config.escalations != new.escalations
            || parts.config.console.labels != new.console.labels
            || parts.config.mqtt_north != new.mqtt_north;
        if deliveries {
            parts.deliveries_stop.cancel();
            for d in parts.deliveries.drain(..) {
                let _ = d.await;
            }
            parts.deliveries_stop = CancellationToken::new();
            match ctx.start_deliveries(&new, &parts.deliveries_stop) {
                Ok(d) => parts.deliveries = d,
                Err(e) => problems.push(e.to_string()),
            }
        }
        let uplinks = if parts.config.uplinks != new.uplinks || parts.config.rules != new.rules {
            let (summary, mut failed) = parts
                .uplinks
                .apply(&new.uplinks, &ctx.uplink_env(&new), parts.config.rules != new.rules)
                .await;
            problems.append(&mut failed);
            summary
        } else {
            json!({ "restarted": [], "added": [], "removed": [] })
        };
        let devices =
            parts.config.devices != new.devices || parts.config.mqtt != new.mqtt || parts.config.opcua != new.opcua;
        if devices {
            parts.pollers_cancel.cancel();
            for p in parts.pollers.drain(..) {
                let _ = p.await;
            }
            parts.pollers_cancel = ctx.sources_cancel.child_token();
            match ctx.start_pollers(&new, &parts.pollers_cancel) {
                Ok(p) => parts.pollers = p,
                Err(e) => problems.push(format!("MQTT sources: {e}")),
            }
        }
        *ctx.readiness.write().unwrap_or_else(|p| p.into_inner()) = new.readiness();
        *ctx.policy.write().unwrap_or_else(|p| p.into_inner()) = new.console.clone();
        let tokens = crate::api::auth::Auth::with_open_actions(new.api_tokens.clone(), new.api_open_actions);
        let tokens_changed = ctx.auth.replace(tokens);
        if tokens_changed && new.api_tokens.is_empty() && !new.api_open_actions {
            warn!(api_addr = %new.api_listen, "API tokens removed: the API listens beyond loopback without [[api.tokens]], \
                  so it is read-only from now on; configure tokens, or set [api] open = true to allow anyone who can reach it to act");
        } else if tokens_changed {
            info!(
                tokens = new.api_tokens.len(),
                open = new.api_open_actions,
                "API tokens replaced"
            );
        }
        let summary = json!({
            "alarms_kept": carry.kept,
            "alarms_added": carry.added,
            "alarms_removed": carry.removed_visible,
            "rules": new.rule_bindings().count(),
            "devices_restarted": devices,
            "stores": stores,
            "deliveries_restarted": deliveries,
            "uplinks": uplinks,
            "tokens_changed": tokens_changed,
        });
        parts.config = new;
        if !problems.is_empty() {
            return Err(ReloadFailure::Partial(problems));
        }
        Ok(summary)
    }

    /// Restarts changed and removed stores and starts new ones; returns what it did.
    async fn reload_stores(
        &self,
        parts: &mut Parts,
        new: &GatewayConfig,
        problems: &mut Vec<String>,
    ) -> Result<Value, ReloadFailure> {
        let ctx = &self.ctx;
        let old = &parts.config.tsdb;
        let stopping: Vec<String> = old
            .iter()
            .filter(|o| !new.tsdb.contains(o))
            .map(|o| o.name.clone())
            .collect();
        let starting: Vec<_> = new.tsdb.iter().filter(|n| !old.contains(n)).cloned().collect();
        if stopping.is_empty() && starting.is_empty() {
            return Ok(json!({ "restarted": [], "added": [], "removed": [] }));
        }
        // Subscribed before the old tap stops, so no transition falls between the two taps.
        let tap_feed = ctx.state.subscribe();
        ctx.ask(|reply| RulesControl::Park {
            stores: stopping.clone(),
            reply,
        })
        .await?;
        parts.alarm_tap_stop.cancel();
        let _ = (&mut parts.alarm_tap).await;
        let (going, staying): (Vec<Store>, Vec<Store>) = std::mem::take(&mut parts.stores)
            .into_iter()
            .partition(|s| stopping.contains(&s.name));
        parts.stores = staying;
        for store in going {
            store.shutdown().await;
        }
        for spec in &starting {
            match Store::start(
                spec,
                &new.gateway_id,
                &new.points,
                &ctx.data_dir,
                ctx.clock.clone(),
                ctx.metrics.tsdb.clone(),
            ) {
                Ok(s) => parts.stores.push(s),
                Err(e) => {
                    error!(store = %spec.name, error = %e, "Store could not start after reload");
                    problems.push(format!("store `{}`: {e}", spec.name));
                }
            }
        }
        let txs: Vec<(String, mpsc::Sender<SinkItem>)> =
            parts.stores.iter().map(|s| (s.name.clone(), s.tx.clone())).collect();
        ctx.ask(|reply| RulesControl::SetStores {
            stores: txs.clone(),
            reply,
        })
        .await?;
        parts.alarm_tap_stop = CancellationToken::new();
        parts.alarm_tap = tsdb::spawn_alarm_tap(tap_feed, txs, ctx.metrics.tsdb.clone(), parts.alarm_tap_stop.clone());
        let names = |v: &[String]| v.to_vec();
        let started: Vec<String> = starting.iter().map(|s| s.name.clone()).collect();
        let restarted: Vec<String> = started.iter().filter(|n| stopping.contains(n)).cloned().collect();
        let added: Vec<String> = started.iter().filter(|n| !stopping.contains(n)).cloned().collect();
        let removed: Vec<String> = stopping.iter().filter(|n| !started.contains(n)).cloned().collect();
        info!(restarted = ?restarted, added = ?added, removed = ?removed, "Stores reconfigured");
        Ok(json!({ "restarted": names(&restarted), "added": added, "removed": removed }))
    }

    /// Serves reload requests from the API until `stop` fires.
    pub(super) async fn serve(self, mut requests: mpsc::Receiver<ReloadRequest>, stop: CancellationToken) {
        loop {
            let req = tokio::select! {
                () = stop.cancelled() => return,
                r = requests.recv() => match r { Some(r) => r, None => return },
            };
            let outcome = self.reload().await;
            log_outcome("api", req.user.as_deref(), &outcome);
            let _ = req.reply.send(outcome);
        }
    }
}

/// Logs a reload's outcome: what changed, or every error.
pub fn log_outcome(via: &str, user: Option<&str>, outcome: &Result<Value, ReloadFailure>) {
    match outcome {
        Ok(summary) => info!(via, user, changes = %summary, "Config reloaded"),
        Err(e) => {
            for detail in e.errors() {
                error!(via, user, code = e.code(), error = %detail, "Config reload error");
            }
            error!(via, user, code = e.code(), "{e}");
        }
    }
}
