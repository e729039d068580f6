//! Wires the components of a validated config into a running gateway, and stops them in
//! order: sources first, then the rules engine drains, then the history writer flushes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, AppState};
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::model::AlarmEvent;
use crate::rules::RulesEngine;
use crate::sinks::history::{self, HistoryReader, HistoryStore, StoreError};
use crate::sinks::journal::AlarmJournal;
use crate::sources::ReadingBatch;
use crate::sources::modbus::health::HealthBoard;
use crate::sources::modbus::poller::{Poller, group_lines};
use crate::state::LiveState;
use crate::telemetry::{Metrics, QualityLabel, ReasonLabel, TransitionLabel};

/// Reading batches in flight from sources to the rules engine.
const SOURCE_QUEUE: usize = 256;
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
    /// A thread could not be started.
    #[error("cannot start the history writer thread: {0}")]
    Thread(std::io::Error),
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
    api_cancel: CancellationToken,
    pollers: Vec<JoinHandle<()>>,
    rules: JoinHandle<()>,
    api: JoinHandle<()>,
    history: std::thread::JoinHandle<()>,
}

impl Gateway {
    /// Starts every component of `config`, keeping stores in `data_dir`.
    pub async fn start(config: GatewayConfig, data_dir: &Path, clock: SharedClock) -> Result<Gateway, StartError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let metrics = Metrics::new();
        let journal = Arc::new(AlarmJournal::open(&data_dir.join("alarms.db"))?);
        let history_path = data_dir.join("history.db");
        let store = HistoryStore::open(&history_path)?;
        let reader = Arc::new(HistoryReader::open(&history_path)?);
        let state = Arc::new(LiveState::new(
            config.gateway_id.clone(),
            config.points.clone(),
            config.hazard_sources.clone(),
            clock.now(),
        ));
        let mut engine = RulesEngine::new(config.points.clone(), config.rules.clone());
        restore_alarms(&journal, &mut engine, &state, &metrics)?;

        let (history_tx, history_rx) = mpsc::channel(config.history.queue_batches);
        let history = history::spawn_writer(
            store,
            config.points.clone(),
            history_rx,
            clock.clone(),
            config.history.retention,
            metrics.clone(),
        )
        .map_err(StartError::Thread)?;

        let (src_tx, src_rx) = mpsc::channel(SOURCE_QUEUE);
        let rules = tokio::spawn(run_rules(
            engine,
            src_rx,
            journal.clone(),
            state.clone(),
            history_tx,
            metrics.clone(),
        ));
        let sources_cancel = CancellationToken::new();
        let device_health = HealthBoard::new(&config.devices);
        let pollers = group_lines(&config.devices)
            .iter()
            .map(|line| {
                let poller = Poller::new(
                    line,
                    &config.devices,
                    src_tx.clone(),
                    clock.clone(),
                    metrics.clone(),
                    device_health.clone(),
                );
                tokio::spawn(poller.run(sources_cancel.child_token()))
            })
            .collect();
        drop(src_tx);

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
        let app = AppState {
            live: state.clone(),
            history: reader,
            journal,
            metrics: metrics.clone(),
            clock,
            shutdown: api_cancel.clone(),
            max_body: config.api_max_body,
            devices: device_health,
        };
        let api = tokio::spawn(api::serve(listener, app, api_cancel.clone()));
        info!(gateway = %config.gateway_id, %api_addr, devices = config.devices.len(), points = config.points.len(),
              data_dir = %data_dir.display(), "Gateway started");
        Ok(Gateway {
            api_addr,
            state,
            metrics,
            data_dir: data_dir.to_path_buf(),
            sources_cancel,
            api_cancel,
            pollers,
            rules,
            api,
            history,
        })
    }

    /// Stops sources, lets the rules engine drain, flushes history, then closes the API.
    pub async fn shutdown(self) {
        self.sources_cancel.cancel();
        for p in self.pollers {
            let _ = p.await;
        }
        if let Err(e) = self.rules.await {
            error!(error = %e, "Rules task ended abnormally");
        }
        if tokio::task::spawn_blocking(move || self.history.join()).await.is_err() {
            error!("History writer ended abnormally");
        }
        self.api_cancel.cancel();
        if tokio::time::timeout(API_DRAIN, self.api).await.is_err() {
            warn!("API did not drain in time");
        }
        info!("Gateway stopped; history flushed");
    }
}

fn restore_alarms(
    journal: &AlarmJournal,
    engine: &mut RulesEngine,
    state: &LiveState,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let mut restored = 0;
    for event in journal.active()? {
        let known = state
            .points
            .id_of(&event.point)
            .is_some_and(|p| engine.restore_active(p, event.level));
        if known {
            state.restore(event);
            restored += 1;
        } else {
            warn!(alarm = %event.alarm_id, "Alarm active at last stop has no rule any more; not restored");
        }
    }
    metrics.alarms_active.set(restored);
    if restored > 0 {
        info!(alarms = restored, "Restored active alarms from the journal");
    }
    Ok(())
}

/// The rules task: evaluates every reading, journals then publishes transitions, and hands
/// batches to history without ever waiting for it.
async fn run_rules(
    mut engine: RulesEngine,
    mut rx: mpsc::Receiver<ReadingBatch>,
    journal: Arc<AlarmJournal>,
    state: Arc<LiveState>,
    history_tx: mpsc::Sender<ReadingBatch>,
    metrics: Metrics,
) {
    let mut events = Vec::new();
    let mut drops = DropLog::default();
    while let Some(batch) = rx.recv().await {
        for r in &batch {
            metrics
                .readings
                .get_or_create(&QualityLabel {
                    quality: r.quality.as_str(),
                })
                .inc();
            engine.evaluate(r, &mut events);
        }
        state.update(&batch);
        for event in events.drain(..) {
            let event = journal_event(&journal, event, &metrics).await;
            metrics
                .alarm_transitions
                .get_or_create(&TransitionLabel {
                    transition: event.transition.as_str(),
                    priority: event.priority.as_str(),
                })
                .inc();
            info!(alarm = %event.alarm_id, seq = event.seq, transition = event.transition.as_str(),
                  priority = event.priority.as_str(), value = event.value, limit = event.limit, "Alarm {}", event.transition.as_str());
            let active = state.publish(event);
            metrics.alarms_active.set(i64::try_from(active).unwrap_or(i64::MAX));
        }
        if let Err(e) = history_tx.try_send(batch) {
            let (reason, lost) = match e {
                mpsc::error::TrySendError::Full(b) => ("queue_full", b.len()),
                mpsc::error::TrySendError::Closed(b) => ("write_error", b.len()),
            };
            metrics
                .history_dropped
                .get_or_create(&ReasonLabel { reason })
                .inc_by(lost as u64);
            drops.record(reason, lost);
        }
    }
}

async fn journal_event(journal: &Arc<AlarmJournal>, mut event: AlarmEvent, metrics: &Metrics) -> AlarmEvent {
    let j = journal.clone();
    let copy = event.clone();
    match tokio::task::spawn_blocking(move || {
        let mut e = copy;
        j.append(&mut e).map(|_| e)
    })
    .await
    {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => {
            metrics.journal_errors.inc();
            error!(error = %e, alarm = %event.alarm_id, "Alarm journal write failed; publishing unjournaled");
            event.seq = 0;
            event
        }
        Err(e) => {
            metrics.journal_errors.inc();
            error!(error = %e, alarm = %event.alarm_id, "Alarm journal task failed; publishing unjournaled");
            event
        }
    }
}

/// Logs history drops at most once per interval, with the count since the last line.
#[derive(Debug, Default)]
struct DropLog {
    last: Option<tokio::time::Instant>,
    pending: usize,
}

impl DropLog {
    fn record(&mut self, reason: &'static str, lost: usize) {
        self.pending += lost;
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            warn!(
                reason,
                readings = self.pending,
                "History queue cannot keep up; readings dropped"
            );
            self.pending = 0;
            self.last = Some(now);
        }
    }
}
