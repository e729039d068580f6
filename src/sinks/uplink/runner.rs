//! Runs one uplink: a producer task (select → encode → seal → outbox) and a sender task
//! (outbox → transport), meeting at the durable outbox.
//!
//! The producer owns the encoder; it wakes on the real-time interval (a [`SharedInterval`]
//! a platform command may change), at the end of each statistics interval, on reading
//! batches (for statistics) and on alarm transitions from the journal. The journal cursor
//! moves only after the alarm's payload is in the outbox, so an alarm is never lost between
//! the two. The sender takes one payload at a time, urgent lane first, and removes it only on
//! the transport's `Ok`; on failure it backs off (doubling, with jitter, up to a minute) and
//! retries the same payload, so the platform sees payloads in queue order. A backlog (what
//! the outbox held at start, or what piled up while the platform failed) is replayed at
//! `replay_rate` payloads per second; live traffic is not paced.
//!
//! The sender keeps the uplink's late-delivery log ([`super::late`]): when the platform stopped
//! taking payloads, when it took them again, and when the backlog behind that had all gone
//! out, so the completeness ledger can show which spans the regulator got late and backfilled.
//!
//! Basic data is queued on start and whenever it differs from what was last queued; a hash of
//! it is kept in `<data_dir>/uplinks/<name>/basic.sha256`, so a restart with an unchanged
//! config sends nothing (`basic = "every_start"` sends it on each start instead).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::build::{BuildContext, BuildError, build_encoder, build_seal, build_transport};
use super::config::{BasicPolicy, UplinkSpec};
use super::late::LateLog;
use super::outbox::Outbox;
use super::select::{Selector, StatsWindow};
use super::sender::Sender;
use super::{Encoder, RecordKind, Seal, UplinkRecord};
use crate::clock::SharedClock;
use crate::model::Reading;
use crate::rules::RuleSpec;
use crate::sinks::buffer::BufferError;
use crate::sinks::follow::{FollowError, Follower};
use crate::sinks::history::HistoryReader;
use crate::sinks::journal::AlarmJournal;
use crate::state::LiveState;
use crate::telemetry::uplink::{UplinkKind, UplinkMetrics};

/// What every uplink of a gateway shares.
#[derive(Debug, Clone)]
pub struct UplinkEnv {
    /// Gateway id.
    pub gateway: String,
    /// The gateway's data directory (each uplink keeps `uplinks/<name>/` in it).
    pub data_dir: PathBuf,
    /// The alarm journal.
    pub journal: Arc<AlarmJournal>,
    /// Live values and the reading stream.
    pub state: Arc<LiveState>,
    /// The embedded history.
    pub history: Option<Arc<HistoryReader>>,
    /// The clock.
    pub clock: SharedClock,
    /// Uplink metrics.
    pub metrics: UplinkMetrics,
    /// Threshold rules (for basic data).
    pub rules: Arc<[RuleSpec]>,
    /// In a hot-standby pair, whether this node may still send to regulators.
    pub fence: crate::model::pair::Fence,
    /// Sends held back at a closed fence.
    pub fenced: prometheus_client::metrics::counter::Counter,
}

/// Why an uplink could not start.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// A stage could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The outbox could not be opened.
    #[error("uplink `{uplink}`: outbox: {source}")]
    Outbox {
        /// Uplink.
        uplink: String,
        /// Cause.
        source: BufferError,
    },
    /// The alarm cursor could not be opened.
    #[error("uplink `{uplink}`: alarm cursor: {source}")]
    Follow {
        /// Uplink.
        uplink: String,
        /// Cause.
        source: FollowError,
    },
    /// The late-delivery log could not be read.
    #[error("uplink `{uplink}`: late-delivery log: {source}")]
    Late {
        /// Uplink.
        uplink: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The uplink's directory could not be created.
    #[error("uplink `{uplink}`: cannot create {}: {source}", path.display())]
    Dir {
        /// Uplink.
        uplink: String,
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The directory of uplink `name` in `data_dir`.
pub fn uplink_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("uplinks").join(name)
}

/// Starts `spec`; its tasks end when `stop` fires.
pub fn start(spec: &UplinkSpec, env: &UplinkEnv, stop: CancellationToken) -> Result<Vec<JoinHandle<()>>, UplinkError> {
    let name = spec.name.clone();
    let dir = uplink_dir(&env.data_dir, &name);
    std::fs::create_dir_all(&dir).map_err(|source| UplinkError::Dir {
        uplink: name.clone(),
        path: dir.clone(),
        source,
    })?;
    let ctx = BuildContext::new(
        spec,
        &env.gateway,
        &env.state.points,
        env.history.clone(),
        env.clock.clone(),
        env.metrics.clone(),
        dir.clone(),
        stop.clone(),
    )?;
    let encoder = build_encoder(&spec.encoder, &ctx)?;
    let seal = build_seal(spec.cipher.as_ref(), spec.envelope.as_ref(), &ctx)?;
    let outbox = Outbox::open(&dir.join("outbox"), &name, &spec.outbox, env.metrics.clone()).map_err(|source| {
        UplinkError::Outbox {
            uplink: name.clone(),
            source,
        }
    })?;
    let follower = if spec.select.alarms {
        Some(
            Follower::open(&dir, "alarms", env.journal.clone(), env.state.subscribe()).map_err(|source| {
                UplinkError::Follow {
                    uplink: name.clone(),
                    source,
                }
            })?,
        )
    } else {
        None
    };
    let transport = build_transport(&spec.transport, &ctx)?;
    let late = LateLog::open(&dir).map_err(|source| UplinkError::Late {
        uplink: name.clone(),
        source,
    })?;
    // Payloads queued before this instant were left by an earlier run: a backlog.
    let started = env.clock.now();
    let outbox = Arc::new(Mutex::new(outbox));
    let notify = Arc::new(Notify::new());
    let producer = Producer {
        spec: spec.clone(),
        selector: Selector::new(&ctx, &env.rules),
        stats: StatsWindow::new(spec.statistics.clone(), spec.minute_interval, ctx.zone.clone()),
        encoder,
        seal,
        outbox: outbox.clone(),
        notify: notify.clone(),
        state: env.state.clone(),
        dir,
        ctx: ctx.clone(),
    };
    let sender = Sender {
        name: name.clone(),
        transport,
        outbox,
        notify,
        clock: env.clock.clone(),
        metrics: env.metrics.clone(),
        pace: Duration::from_secs_f64(1.0 / spec.replay_rate.max(1e-3)),
        retry_max: spec.retry_max,
        late,
        late_warned: None,
        fence: env.fence.clone(),
        fenced: env.fenced.clone(),
    };
    info!(uplink = %name, encoder = spec.encoder.kind(), transport = spec.transport.kind(), points = spec.select.points.len(), "Uplink started");
    let readings = env.state.subscribe_readings();
    let (pages_tx, pages_rx) = mpsc::channel(1);
    let mut tasks = vec![
        tokio::spawn(producer.run(pages_rx, readings, stop.clone())),
        tokio::spawn(sender.run(started, stop.clone())),
    ];
    match follower {
        Some(f) => tasks.push(tokio::spawn(follow(f, pages_tx, stop))),
        // Without alarms the channel stays open and silent.
        None => tasks.push(tokio::spawn(async move {
            stop.cancelled().await;
            drop(pages_tx);
        })),
    }
    Ok(tasks)
}

/// Records in, payloads into the outbox.
struct Producer {
    spec: UplinkSpec,
    selector: Selector,
    stats: StatsWindow,
    encoder: Box<dyn Encoder>,
    seal: Option<Box<dyn Seal>>,
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    state: Arc<LiveState>,
    dir: PathBuf,
    ctx: BuildContext,
}

/// A hash of basic-data records that ignores their send time.
pub fn basic_hash(records: &[UplinkRecord]) -> String {
    let mut h = Sha256::new();
    for r in records {
        let mut r = r.clone();
        r.time = crate::model::Timestamp::default();
        h.update(format!("{r:?}\n").as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Producer {
    fn uplink(&self) -> &str {
        &self.spec.name
    }

    /// Encodes, seals and queues `records` (any kinds, each kind encoded on its own).
    fn emit(&mut self, records: Vec<UplinkRecord>) -> bool {
        if records.is_empty() {
            return true;
        }
        let mut ok = true;
        let mut start = 0;
        while start < records.len() {
            let kind = records[start].kind;
            let end = records[start..]
                .iter()
                .position(|r| r.kind != kind)
                .map_or(records.len(), |n| start + n);
            ok &= self.emit_kind(kind, &records[start..end]);
            start = end;
        }
        self.notify.notify_one();
        ok
    }

    fn emit_kind(&mut self, kind: RecordKind, records: &[UplinkRecord]) -> bool {
        let uplink = self.spec.name.clone();
        let m = &self.ctx.metrics;
        m.records
            .get_or_create(&UplinkKind {
                uplink: uplink.clone(),
                kind: kind.as_str(),
            })
            .inc_by(records.len() as u64);
        let payloads = match self.encoder.encode(records) {
            Ok(p) => p,
            Err(e) => {
                warn!(uplink, error = %e, records = records.len(), "Cannot encode uplink records; dropped");
                m.drop(&uplink, "encode", records.len() as u64);
                return false;
            }
        };
        let now = self.ctx.clock.now();
        let mut ok = true;
        for mut p in payloads {
            if let Some(seal) = &self.seal
                && let Err(e) = seal.seal(&mut p)
            {
                warn!(uplink, error = %e, records = p.items, "Cannot seal an uplink payload; dropped");
                m.drop(&uplink, "seal", u64::from(p.items));
                ok = false;
                continue;
            }
            let pushed = self.outbox.lock().unwrap_or_else(|e| e.into_inner()).push(&p, now);
            ok &= pushed.is_ok();
        }
        ok
    }

    fn send_basic(&mut self) {
        if self.spec.basic == BasicPolicy::Never {
            return;
        }
        let records = self.selector.basic(self.ctx.clock.now());
        let hash = basic_hash(&records);
        let path = self.dir.join("basic.sha256");
        let previous = std::fs::read_to_string(&path).ok();
        if self.spec.basic == BasicPolicy::OnChange && previous.as_deref().map(str::trim) == Some(hash.as_str()) {
            debug!(uplink = self.uplink(), "Basic data unchanged since it was last queued");
            return;
        }
        let n = records.len();
        if self.emit(records) {
            let tmp = path.with_extension("tmp");
            if let Err(e) = std::fs::write(&tmp, format!("{hash}\n")).and_then(|()| std::fs::rename(&tmp, &path)) {
                warn!(uplink = self.uplink(), error = %e, "Cannot save the basic-data hash; it is sent again at the next start");
            }
            info!(uplink = self.uplink(), points = n, "Basic data queued");
        }
    }

    fn send_realtime(&mut self) {
        let now = self.ctx.clock.now();
        let records = self.selector.realtime(&self.state.readings(), now);
        self.emit(records);
    }

    fn add_readings(&mut self, batch: &[Reading]) {
        for r in batch {
            if self.selector.wants(r.point) {
                self.stats.add(r);
            }
        }
    }

    async fn run(
        mut self,
        mut alarms: mpsc::Receiver<AlarmPage>,
        mut readings: broadcast::Receiver<Arc<[Reading]>>,
        stop: CancellationToken,
    ) {
        self.send_basic();
        let mut rt_changes = self.ctx.realtime_interval.subscribe();
        let mut minute_changes = self.ctx.minute_interval.subscribe();
        let mut next_rt = tokio::time::Instant::now() + self.ctx.realtime_interval.get();
        let realtime = self.spec.select.realtime;
        let stats = self.stats.is_active();
        loop {
            // A little after the boundary, so readings stamped just before it are in; the
            // wait is recomputed from the clock each round, so other wake-ups do not delay it.
            let now = self.ctx.clock.now();
            let stats_wait = self.stats.next_due(now).map_or(Duration::from_secs(3600), |due| {
                due.plus(Duration::from_millis(200)).since(now)
            });
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(next_rt), if realtime => {
                    self.send_realtime();
                    let interval = self.ctx.realtime_interval.get();
                    next_rt += interval;
                    let now = tokio::time::Instant::now();
                    if next_rt <= now {
                        next_rt = now + interval;
                    }
                }
                changed = rt_changes.changed() => {
                    if changed.is_ok() {
                        let interval = *rt_changes.borrow_and_update();
                        info!(uplink = self.uplink(), ?interval, "Real-time interval changed");
                        next_rt = tokio::time::Instant::now() + interval;
                    } else {
                        std::future::pending::<()>().await;
                    }
                }
                changed = minute_changes.changed() => {
                    if changed.is_ok() {
                        let minute = *minute_changes.borrow_and_update();
                        info!(uplink = self.uplink(), ?minute, "Statistics interval changed");
                        self.stats.set_minute(minute);
                    } else {
                        std::future::pending::<()>().await;
                    }
                }
                _ = tokio::time::sleep(stats_wait), if stats => {
                    let records = self.stats.take_due(self.ctx.clock.now(), &self.selector);
                    self.emit(records);
                }
                batch = readings.recv(), if stats => match batch {
                    Ok(batch) => {
                        let late = self.stats.late;
                        self.add_readings(&batch);
                        if self.stats.late > late {
                            self.ctx.metrics.drop(&self.spec.name, "late", self.stats.late - late);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(uplink = self.uplink(), batches = n, "Statistics fell behind the reading stream; batches skipped");
                        self.ctx.metrics.drop(&self.spec.name, "lagged", n);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                page = alarms.recv() => {
                    let Some((page, done)) = page else { break };
                    let mut handled = None;
                    for event in page {
                        let seq = event.seq;
                        if self.spec.select.transitions.contains(&event.transition) {
                            let current = self
                                .state
                                .points
                                .id_of(&event.subject)
                                .and_then(|id| self.state.readings().get(id.index()).and_then(|(_, r)| *r));
                            if let Some(record) = self.selector.alarm(&event, current.as_ref())
                                && !self.emit(vec![record])
                            {
                                // Not in the outbox (disk trouble): the cursor stays before it and
                                // the follower offers it again.
                                tokio::select! {
                                    _ = stop.cancelled() => {}
                                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                }
                                break;
                            }
                        }
                        handled = Some(seq);
                    }
                    let _ = done.send(handled);
                }
            }
        }
        let now = self.ctx.clock.now();
        if let Err(e) = self.outbox.lock().unwrap_or_else(|e| e.into_inner()).sync(now) {
            warn!(uplink = self.uplink(), error = %e, "Cannot sync the uplink outbox at stop");
        }
    }
}

/// A page of alarm transitions, and where to say up to which sequence number they are queued.
type AlarmPage = (Vec<crate::model::AlarmEvent>, oneshot::Sender<Option<u64>>);

/// Follows the alarm journal in its own task (its waits and reads never hold up the producer)
/// and moves the cursor to what the producer reports queued.
async fn follow(mut follower: Follower, pages: mpsc::Sender<AlarmPage>, stop: CancellationToken) {
    while let Some(page) = follower.next_page(&stop).await {
        let (done, queued) = oneshot::channel();
        if pages.send((page, done)).await.is_err() {
            return;
        }
        match queued.await {
            Ok(Some(seq)) => follower.advance(seq),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// One running uplink.
#[derive(Debug)]
struct Running {
    spec: UplinkSpec,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// The uplinks a gateway runs; started with it, stopped at shutdown, and on reload
/// restarted one by one when their settings changed (their outboxes and alarm cursors
/// carry over, so nothing queued is lost).
#[derive(Debug, Default)]
pub struct Uplinks {
    running: Vec<Running>,
}

impl Uplinks {
    /// Starts every uplink of `specs`; the first that cannot start is the error (the others
    /// started before it are stopped).
    pub async fn start_all(specs: &[UplinkSpec], env: &UplinkEnv) -> Result<Self, UplinkError> {
        let mut out = Self::default();
        for spec in specs {
            let stop = CancellationToken::new();
            match start(spec, env, stop.clone()) {
                Ok(tasks) => out.running.push(Running {
                    spec: spec.clone(),
                    stop,
                    tasks,
                }),
                Err(e) => {
                    out.stop_all().await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Stops every uplink (what is queued stays in the outboxes).
    pub async fn stop_all(&mut self) {
        for r in &self.running {
            r.stop.cancel();
        }
        for r in self.running.drain(..) {
            for t in r.tasks {
                let _ = t.await;
            }
        }
    }

    /// Applies a reloaded config: stops removed and changed uplinks (all of them when
    /// `restart_all`, e.g. thresholds changed their basic data), starts changed and new ones.
    /// Returns the names restarted, added and removed, and the errors of those that failed.
    pub async fn apply(
        &mut self,
        specs: &[UplinkSpec],
        env: &UplinkEnv,
        restart_all: bool,
    ) -> (serde_json::Value, Vec<String>) {
        let (keep, go): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| !restart_all && specs.contains(&r.spec));
        self.running = keep;
        let stopped: Vec<String> = go.iter().map(|r| r.spec.name.clone()).collect();
        for r in &go {
            r.stop.cancel();
        }
        for r in go {
            for t in r.tasks {
                let _ = t.await;
            }
        }
        let mut problems = Vec::new();
        let mut started = Vec::new();
        for spec in specs {
            if self.running.iter().any(|r| r.spec.name == spec.name) {
                continue;
            }
            let stop = CancellationToken::new();
            match start(spec, env, stop.clone()) {
                Ok(tasks) => {
                    started.push(spec.name.clone());
                    self.running.push(Running {
                        spec: spec.clone(),
                        stop,
                        tasks,
                    });
                }
                Err(e) => {
                    warn!(uplink = %spec.name, error = %e, "Uplink could not start after reload");
                    problems.push(e.to_string());
                }
            }
        }
        let restarted: Vec<&String> = started.iter().filter(|n| stopped.contains(n)).collect();
        let added: Vec<&String> = started.iter().filter(|n| !stopped.contains(n)).collect();
        let removed: Vec<&String> = stopped
            .iter()
            .filter(|n| !specs.iter().any(|s| &s.name == *n))
            .collect();
        (
            serde_json::json!({ "restarted": restarted, "added": added, "removed": removed }),
            problems,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::uplink::UplinkLabel;

    fn config(interval: &str, port: u16) -> crate::config::GatewayConfig {
        let text = format!(
            r#"
[gateway]
id = "gw"
[[devices]]
name = "T1"
profile = "ai4-gas-lel"
transport = {{ tcp = "127.0.0.1:1" }}
points = {{ ch1 = "T1/gas" }}
[[uplinks]]
name = "a"
realtime_interval = "{interval}"
codes = {{ enterprise = "E1" }}
encoder = {{ type = "json" }}
transport = {{ type = "tcp", address = "127.0.0.1:{port}" }}
[[uplinks]]
name = "b"
realtime_interval = "30s"
codes = {{ enterprise = "E1" }}
encoder = {{ type = "json" }}
transport = {{ type = "tcp", address = "127.0.0.1:{port}" }}
"#
        );
        crate::config::GatewayConfig::parse(Path::new("t.toml"), &text).unwrap()
    }

    #[tokio::test]
    async fn a_reload_restarts_only_the_uplinks_that_changed_and_keeps_their_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = config("30s", port);
        let clock = crate::clock::system();
        let env = UplinkEnv {
            gateway: "gw".into(),
            data_dir: dir.path().to_path_buf(),
            journal: Arc::new(AlarmJournal::open(&dir.path().join("alarms.db")).unwrap()),
            state: Arc::new(LiveState::new("gw".into(), cfg.points.clone(), Vec::new(), clock.now())),
            history: None,
            clock,
            metrics: UplinkMetrics::default(),
            rules: cfg.rules.clone(),
            fence: crate::model::pair::Fence::open(),
            fenced: Default::default(),
        };
        let mut running = Uplinks::start_all(&cfg.uplinks, &env).await.unwrap();
        // Basic data of each uplink is queued at start (the platform is unreachable).
        let queued = |name: &str| {
            env.metrics
                .queued
                .get_or_create(&UplinkLabel { uplink: name.into() })
                .get()
        };
        for _ in 0..200 {
            if queued("a") == 1 && queued("b") == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((queued("a"), queued("b")), (1, 1));

        let (summary, problems) = running.apply(&config("10s", port).uplinks, &env, false).await;
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(summary["restarted"], serde_json::json!(["a"]));
        assert_eq!(summary["added"], serde_json::json!([]));
        // Same basic data after the restart: not queued again; the outbox still holds it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(queued("a"), 1);
        let pending = env
            .metrics
            .outbox_payloads
            .get_or_create(&UplinkLabel { uplink: "a".into() })
            .get();
        assert_eq!(pending, 1);

        let mut one = config("10s", port);
        one.uplinks.truncate(1);
        let (summary, _) = running.apply(&one.uplinks, &env, false).await;
        assert_eq!(summary["removed"], serde_json::json!(["b"]));
        running.stop_all().await;
    }
}
