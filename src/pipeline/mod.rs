//! Wires the components of a validated config into a running gateway, and stops them in
//! order: sources first, then the rules engine drains, then the history writer flushes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod journal_writer;
mod reload;
mod rules_task;
mod self_check;

pub use reload::log_outcome as log_reload;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, AppState};
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::model::ReadingBatch;
use crate::rules::RulesEngine;
use crate::rules::engine::BuildError;
use crate::sinks::history::{self, HistoryPolicy, HistoryReader, HistoryStore, HistoryWriter, Retention, StoreError};
use crate::sinks::journal::AlarmJournal;
use crate::sinks::tsdb::{self, SinkItem, Store, TsdbError};
use crate::state::LiveState;
use crate::state::devices::HealthBoard;
use crate::telemetry::Metrics;

/// Reading batches in flight from sources to the rules engine.
const SOURCE_QUEUE: usize = 256;
/// Bursts of alarm transitions queued for the journal writer; when full, rule evaluation waits
/// (an alarm is never dropped).
const JOURNAL_QUEUE: usize = 4096;
/// Operator commands queued for the rules task.
const COMMAND_QUEUE: usize = 64;
/// Self-check findings queued for the rules task: a few rounds' worth.
const DIAGNOSIS_QUEUE: usize = 32;
/// How long the API may take to finish open requests at shutdown.
const API_DRAIN: Duration = Duration::from_secs(5);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The run log could not be written.
    #[error("cannot write the run log {path}: {source}")]
    RunLog {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A northbound MQTT target could not start.
    #[error(transparent)]
    MqttNorth(#[from] crate::sinks::mqtt_north::MqttNorthError),
    /// A webhook target could not start.
    #[error(transparent)]
    Webhook(#[from] crate::sinks::webhook::WebhookError),
    /// A time-series store output could not start.
    #[error(transparent)]
    Tsdb(#[from] TsdbError),
    /// The API's TLS files could not be used (they changed since the config was checked).
    #[error("API TLS: {0}")]
    ApiTls(#[from] crate::api::server::TlsError),
    /// An MQTT broker connection could not be set up (password or TLS files).
    #[error(transparent)]
    MqttIn(#[from] crate::sources::mqtt::ClientError),
    /// A regulator uplink could not start.
    #[error(transparent)]
    Uplink(#[from] crate::sinks::uplink::UplinkError),
    /// A thread could not be started.
    #[error("cannot start a writer thread: {0}")]
    Thread(std::io::Error),
    /// The rules cannot run (validation normally catches this first).
    #[error("rules: {0}")]
    Rules(#[from] BuildError),
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Where the API listens (useful when configured with port 0).
    pub api_addr: SocketAddr,
    /// Live values and alarms.
    pub state: Arc<LiveState>,
    /// Its metrics.
    pub metrics: Metrics,
    /// Where its stores live.
    pub data_dir: PathBuf,
    sources_cancel: CancellationToken,
    rules_stop: CancellationToken,
    api_cancel: CancellationToken,
    readings: mpsc::Sender<ReadingBatch>,
    rules: JoinHandle<()>,
    journal_thread: std::thread::JoinHandle<()>,
    api: JoinHandle<()>,
    history: std::thread::JoinHandle<()>,
    /// Pollers, stores, the alarm tap and deliveries: what a config reload may replace.
    reloader: reload::Reloader,
    reload_server: JoinHandle<()>,
    reload_stop: CancellationToken,
    self_check: JoinHandle<()>,
    self_check_stop: CancellationToken,
    /// Start and stop times, for the completeness ledger's `gateway_down` gaps.
    run_log: Arc<crate::sinks::runlog::RunLog>,
    clock: SharedClock,
}

/// What a gateway started as the active node of a hot-standby pair shares with the pair.
#[derive(Debug, Clone)]
pub struct PairContext {
    /// Whether this node may still drive buses and regulator sends.
    pub fence: crate::model::pair::Fence,
    /// The pair as the API shows it.
    pub view: Arc<crate::model::pair::PairView>,
    /// The pair's metrics, registered with the gateway's.
    pub metrics: crate::telemetry::pair::PairMetrics,
    /// Readings the standby took after it last heard the active (`dual_poll`), in poll
    /// order: evaluated before the first poll of this node.
    pub warm: Vec<ReadingBatch>,
}

impl Gateway {
    /// What this gateway reaches of the plant network: its network devices and how many
    /// answered their last poll cycle (a hot-standby pair hands over when it reaches none).
    pub fn network_reach(&self) -> crate::model::pair::FieldReach {
        self.reloader.ctx.device_health.network_reach()
    }

    /// Starts every component of `config`, keeping stores in `data_dir`.
    pub async fn start(config: GatewayConfig, data_dir: &Path, clock: SharedClock) -> Result<Gateway, StartError> {
        Self::start_with(config, data_dir, clock, None).await
    }

    /// Starts every component of `config`, as the active node of a pair when `pair` is given.
    pub async fn start_with(
        config: GatewayConfig,
        data_dir: &Path,
        clock: SharedClock,
        mut pair: Option<PairContext>,
    ) -> Result<Gateway, StartError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        // Before anything starts: the files were checked with the config but may have changed.
        let api_tls = config.api_server.tls.as_ref().map(|f| f.acceptor()).transpose()?;
        let metrics = match &pair {
            Some(p) => Metrics::in_pair(&p.metrics),
            None => Metrics::new(),
        };
        let fence = pair
            .as_ref()
            .map_or_else(crate::model::pair::Fence::open, |p| p.fence.clone());
        let run_log = Arc::new(crate::sinks::runlog::RunLog::new(data_dir));
        run_log.started(clock.now()).map_err(|source| StartError::RunLog {
            path: data_dir.join("run.log"),
            source,
        })?;
        let journal = Arc::new(AlarmJournal::open(&data_dir.join("alarms.db"))?);
        let history_path = data_dir.join("history.db");
        let store = HistoryStore::open(&history_path, &config.points)?;
        let reader = Arc::new(HistoryReader::open(&history_path, config.history.retention)?);
        let state = Arc::new(LiveState::new(
            config.gateway_id.clone(),
            config.points.clone(),
            config.hazard_sources.clone(),
            clock.now(),
        ));
        let mut engine = RulesEngine::new(config.points.clone(), &config.rules, config.alarms.clone(), clock.now())?;
        state.set_thresholds(engine.threshold_settings());
        restore_alarms(&journal, &mut engine, &state, &metrics)?;
        restore_windows(&journal, &mut engine, &state, clock.now())?;
        seed_cycles(&reader, &mut engine, clock.now());

        let (history_tx, history_rx) = mpsc::channel(config.history.queue_batches);
        let history = history::spawn_writer(
            HistoryWriter::new(store, HistoryPolicy::new(&config.history, &config.points)),
            history_rx,
            clock.clone(),
            Retention {
                raw: config.history.retention,
                rollup: config.history.rollup_retention,
            },
            metrics.clone(),
        )
        .map_err(StartError::Thread)?;

        let mut stores = Vec::new();
        for spec in &config.tsdb {
            stores.push(Store::start(
                spec,
                &config.gateway_id,
                &config.points,
                data_dir,
                clock.clone(),
                metrics.tsdb.clone(),
            )?);
        }
        let store_txs: Vec<(String, mpsc::Sender<SinkItem>)> =
            stores.iter().map(|s| (s.name.clone(), s.tx.clone())).collect();
        let alarm_tap_stop = CancellationToken::new();
        let alarm_tap = tsdb::spawn_alarm_tap(
            state.subscribe(),
            store_txs.clone(),
            metrics.tsdb.clone(),
            alarm_tap_stop.clone(),
        );

        let (src_tx, src_rx) = mpsc::channel(SOURCE_QUEUE);
        let (durable_tx, durable_rx) = mpsc::channel(SOURCE_QUEUE);
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (control_tx, control_rx) = mpsc::channel(4);
        let (journal_tx, journal_rx) = mpsc::channel(JOURNAL_QUEUE);
        let (diag_tx, diag_rx) = mpsc::channel(DIAGNOSIS_QUEUE);
        let journal_thread = journal_writer::spawn(journal.clone(), journal_rx, state.clone(), metrics.clone())
            .map_err(StartError::Thread)?;
        let north_intakes = crate::sinks::mqtt_north::NorthIntakes::default();
        let task = rules_task::RulesTask {
            engine,
            journal: journal_tx,
            state: state.clone(),
            history_tx,
            stores: store_txs,
            metrics: metrics.clone(),
            clock: clock.clone(),
            parked: reload::Parked::default(),
            gathered: Vec::new(),
            north: north_intakes.clone(),
        };
        let rules_stop = CancellationToken::new();
        let rules = tokio::spawn(task.run(
            rules_task::Inputs {
                readings: src_rx,
                durable: durable_rx,
                commands: cmd_rx,
                control: control_rx,
                diagnoses: diag_rx,
            },
            rules_stop.clone(),
        ));
        if let Some(p) = pair.as_mut() {
            // Before any source starts, so the rules engine sees every point's readings in
            // time order.
            for batch in std::mem::take(&mut p.warm) {
                p.metrics.warm_readings.inc_by(batch.len() as u64);
                if src_tx.send(batch).await.is_err() {
                    break;
                }
            }
        }
        let sources_cancel = CancellationToken::new();
        let device_health = HealthBoard::new(&config.devices);
        let dtu = if config.dtu.listeners.is_empty() {
            None
        } else {
            let hub = crate::sources::dtu::DtuHub::new(&config.dtu, metrics.clone(), clock.clone());
            hub.start(sources_cancel.child_token())
                .await
                .map_err(|(addr, source)| StartError::Listen { addr, source })?;
            device_health.attach_stations(hub.clone());
            Some(hub)
        };
        let readiness = Arc::new(std::sync::RwLock::new(config.readiness()));
        let self_check_stop = CancellationToken::new();
        let self_check = tokio::spawn(
            self_check::SelfCheck {
                data_dir: data_dir.to_path_buf(),
                readiness: readiness.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
                state: state.clone(),
                rules: diag_tx,
                pair: pair.as_ref().map(|p| p.view.clone()),
            }
            .run(self_check_stop.clone()),
        );
        tokio::spawn(run_log.clone().run(clock.clone(), self_check_stop.clone()));
        let policy = Arc::new(std::sync::RwLock::new(config.console.clone()));
        let auth = Arc::new(api::auth::Tokens::new(api::auth::Auth::with_open_actions(
            config.api_tokens.clone(),
            config.api_open_actions,
        )));
        let ctx = Arc::new(reload::Context {
            auth: auth.clone(),
            data_dir: data_dir.to_path_buf(),
            journal: journal.clone(),
            state: state.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
            control: control_tx,
            readings: src_tx.clone(),
            durable_readings: durable_tx,
            device_health: device_health.clone(),
            readiness: readiness.clone(),
            policy: policy.clone(),
            sources_cancel: sources_cancel.clone(),
            dtu,
            history: reader.clone(),
            north: north_intakes,
            fence,
        });
        let uplinks =
            crate::sinks::uplink::runner::Uplinks::start_all(&config.uplinks, &ctx.uplink_env(&config)).await?;
        let deliveries_stop = CancellationToken::new();
        let deliveries = ctx.start_deliveries(&config, &deliveries_stop)?;
        let pollers_cancel = sources_cancel.child_token();
        let pollers = ctx.start_pollers(&config, &pollers_cancel)?;
        // Journal retention, once the deliveries hold their positions; stops with the rules task.
        tokio::spawn(crate::sinks::journal::retention::run(
            journal.clone(),
            config.journal,
            clock.clone(),
            metrics.journal_pruned.clone(),
            rules_stop.child_token(),
        ));

        let listener = TcpListener::bind(config.api_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.api_listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.api_listen,
            source,
        })?;
        let api_cancel = CancellationToken::new();
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let app = AppState {
            live: state.clone(),
            history: reader.clone(),
            journal,
            metrics: metrics.clone(),
            clock: clock.clone(),
            run_log: run_log.clone(),
            data_dir: data_dir.to_path_buf(),
            shutdown: api_cancel.clone(),
            max_body: config.api_max_body,
            request_timeout: config.api_server.request_timeout,
            commands: cmd_tx,
            auth: auth.clone(),
            devices: device_health,
            readiness,
            reload: reload_tx,
            policy,
            pair: pair.map(|p| p.view),
        };
        let api = tokio::spawn(api::serve(
            listener,
            app,
            api_tls,
            config.api_server.limits,
            api_cancel.clone(),
        ));
        info!(gateway = %config.gateway_id, %api_addr, devices = config.devices.len(), points = config.points.len(),
              data_dir = %data_dir.display(), "Gateway started");
        if config.api_tokens.is_empty() && !config.api_open_actions {
            warn!(%api_addr, "The API listens beyond loopback without [[api.tokens]]: it is read-only, operator actions \
                   (acknowledge, shelve, reset) are refused; configure tokens, or set [api] open = true to allow anyone \
                   who can reach it to act");
        } else if config.api_tokens.is_empty() && !config.api_listen.ip().is_loopback() {
            warn!(%api_addr, "The API listens beyond loopback without tokens and [api] open = true: anyone who can reach \
                   it may acknowledge and shelve alarms");
        }
        let reloader = reload::Reloader {
            parts: Arc::new(tokio::sync::Mutex::new(Some(reload::Parts {
                config,
                pollers,
                pollers_cancel,
                stores,
                alarm_tap,
                alarm_tap_stop,
                deliveries,
                deliveries_stop,
                uplinks,
            }))),
            ctx,
        };
        let reload_stop = CancellationToken::new();
        let reload_server = tokio::spawn(reloader.clone().serve(reload_rx, reload_stop.clone()));
        Ok(Gateway {
            api_addr,
            state,
            metrics,
            data_dir: data_dir.to_path_buf(),
            sources_cancel,
            rules_stop,
            api_cancel,
            readings: src_tx,
            rules,
            journal_thread,
            api,
            history,
            reloader,
            reload_server,
            reload_stop,
            self_check,
            self_check_stop,
            run_log,
            clock,
        })
    }

    /// A sender into the rules engine, for sources that run beside the configured ones (load
    /// harnesses, embedded drivers). Readings sent after shutdown began are refused.
    pub fn reading_sender(&self) -> mpsc::Sender<ReadingBatch> {
        self.readings.clone()
    }

    /// Re-reads the config file and applies it (see [`reload`]): a summary of what changed,
    /// or why nothing (or only part) was applied. A refused reload changes nothing.
    pub async fn reload(&self) -> Result<serde_json::Value, crate::api::admin::ReloadFailure> {
        self.reloader.reload().await
    }

    /// Stops sources, lets the rules engine drain, flushes history, then closes the API.
    pub async fn shutdown(self) {
        self.shutdown_with(|| {}).await;
    }

    /// [`Gateway::shutdown`], calling `sources_ended` once every source has stopped: every
    /// reading this gateway will evaluate was taken before then (a hot-standby pair's
    /// hand-over tells the standby at that moment).
    pub async fn shutdown_with(self, sources_ended: impl FnOnce()) {
        self.self_check_stop.cancel();
        let _ = self.self_check.await;
        self.reload_stop.cancel();
        let _ = self.reload_server.await;
        // Waits for a reload in progress, then takes what it manages.
        let Some(mut parts) = self.reloader.parts.lock().await.take() else {
            error!("Gateway parts already taken; cannot stop cleanly");
            return;
        };
        self.sources_cancel.cancel();
        for p in parts.pollers {
            let _ = p.await;
        }
        sources_ended();
        drop(self.readings);
        self.rules_stop.cancel();
        if let Err(e) = self.rules.await {
            error!(error = %e, "Rules task ended abnormally");
        }
        if !matches!(
            tokio::task::spawn_blocking(move || self.journal_thread.join()).await,
            Ok(Ok(()))
        ) {
            error!("Alarm journal writer ended abnormally");
        }
        parts.alarm_tap_stop.cancel();
        let _ = parts.alarm_tap.await;
        // Deliveries stop where they are; their cursors resume them at the next start.
        parts.deliveries_stop.cancel();
        for w in parts.deliveries {
            let _ = w.await;
        }
        // Uplinks stop where they are; outboxes and alarm cursors resume them at the next start.
        parts.uplinks.stop_all().await;
        for store in parts.stores {
            store.shutdown().await;
        }
        if !matches!(
            tokio::task::spawn_blocking(move || self.history.join()).await,
            Ok(Ok(()))
        ) {
            error!("History writer ended abnormally");
        }
        self.api_cancel.cancel();
        if tokio::time::timeout(API_DRAIN, self.api).await.is_err() {
            warn!("API did not drain in time");
        }
        // Last, so the downtime starts when nothing of the gateway runs any more.
        if let Err(e) = self.run_log.stopped(self.clock.now()) {
            error!(error = %e, "Cannot record the stop in the run log; the next start counts the downtime from the last heartbeat");
        }
        info!("Gateway stopped; history flushed");
    }
}

/// Raises journaled within the last flood window carry the flood and chattering counts over
/// a restart (EEMUA 191 rates are per 10 minutes, whatever the gateway did meanwhile).
/// Gives each early-warning point the last day of its minute means from history, so a point
/// run in cycles is recognised at once after a restart instead of after a day of learning. A
/// history that cannot be read costs only that: the cycle is learned again.
fn seed_cycles(reader: &HistoryReader, engine: &mut RulesEngine, now: crate::model::Timestamp) {
    let from = now.minus(std::time::Duration::from_secs(86_400));
    for p in engine.early_warning_points() {
        let name = engine.points().meta(p).name().clone();
        match reader.minutes(&name, from, now, 1440) {
            Ok(rows) => {
                let minutes: Vec<(i64, f64)> = rows
                    .iter()
                    .filter_map(|r| r.avg.map(|v| (r.ts_ms.div_euclid(60_000), v)))
                    .collect();
                engine.seed_cycles(p, &minutes);
            }
            Err(e) => {
                warn!(point = %name, error = %e, "Cannot read history to learn the point's cycle; learning it again")
            }
        }
    }
}

fn restore_windows(
    journal: &AlarmJournal,
    engine: &mut RulesEngine,
    state: &LiveState,
    now: crate::model::Timestamp,
) -> Result<(), StoreError> {
    /// More raises than this in ten minutes is a flood whatever the exact count.
    const MOST: usize = 10_000;
    let window = i64::try_from(crate::rules::flood::FLOOD_WINDOW.as_nanos()).unwrap_or(i64::MAX);
    let recent = journal.history(&crate::sinks::journal::HistoryFilter {
        from: Some(crate::model::Timestamp::from_nanos(
            now.as_nanos().saturating_sub(window),
        )),
        limit: MOST,
        ..Default::default()
    })?;
    // Newest first from the journal; the windows want time order.
    for e in recent.iter().rev() {
        engine.restore_raise(e);
    }
    engine.finish_restore_windows(now);
    state.set_stats(engine.stats());
    Ok(())
}

fn restore_alarms(
    journal: &AlarmJournal,
    engine: &mut RulesEngine,
    state: &LiveState,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let mut restored = 0;
    for event in journal.latest_visible()? {
        if engine.restore(&event) {
            state.restore(event);
            restored += 1;
        } else {
            warn!(alarm = %event.alarm_id, "Alarm visible at last stop is no longer configured; not restored");
        }
    }
    for (alarm, since) in journal.pending_timers()? {
        engine.restore_timer(&alarm, since);
    }
    engine.finish_restore();
    let annunciated = state.active_alarms().iter().filter(|e| e.annunciated()).count();
    metrics
        .alarms_active
        .set(i64::try_from(annunciated).unwrap_or(i64::MAX));
    if restored > 0 {
        info!(alarms = restored, "Restored alarms from the journal");
    }
    Ok(())
}
