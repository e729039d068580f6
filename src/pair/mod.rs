//! Hot standby: this gateway as one node of a pair (`[redundancy]`, `docs/redundancy.md`).
//!
//! The role loop: a node starts as standby. It serves its role and redirects the console to
//! the active ([`standby`]), follows the active over the pair link and keeps a copy of its
//! journal, timers, delivery positions and durable queues ([`replicate`], `queues`). It
//! becomes active when it takes the lease at the witness ([`lease`]). Then it starts the
//! whole gateway from that copy, through the same restore path as any restart. An active
//! steps down (stops the gateway, standby again) when the lease goes to the peer or its fence
//! runs out. The fence is checked before every bus transaction and every regulator send, so a
//! node that was frozen or cut off never drives a bus the peer has taken.

pub mod field;
pub mod lease;
pub mod link;
pub mod link_tls;
mod queues;
pub mod replicate;
pub mod spec;
pub mod standby;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use spec::PairSpec;

use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::model::Timestamp;
use crate::model::pair::{Fence, PairRole, PairView};
use crate::pipeline::{Gateway, PairContext};
use crate::telemetry::pair::{PairMetrics, SwitchReason};

/// What the pair's tasks share.
pub struct Shared {
    /// The pair as the API shows it.
    pub view: Arc<PairView>,
    /// Whether this node may drive buses and regulator sends.
    pub fence: Fence,
    /// The pair's metrics.
    pub metrics: PairMetrics,
    /// The shared secret.
    secret: Vec<u8>,
    /// TLS of the pair link, when configured.
    tls: Option<link::LinkTls>,
    /// The peer's pair-link address.
    peer_addr: String,
    /// This node's API as consoles reach it.
    advertise_api: String,
    /// When the active peer was last heard on the pair link (on the standby), monotonic and
    /// wall clock.
    active_contact: Mutex<Option<(Instant, Timestamp)>>,
    /// Wall clock (names of set-aside journals).
    clock: SharedClock,
    /// On the active: it would hand the role back and wants the standby's field reach.
    asking_reach: AtomicBool,
    /// On the active: it is handing over and its sources have stopped (the standby is told).
    handing_over: AtomicBool,
    /// Wakes the link when the sources stopped during a hand-over.
    sources_ended: tokio::sync::Notify,
    /// On the standby: when the active said it stopped polling (wall clock); its warm
    /// readings count from there, whatever arrives after.
    active_stopped_at: Mutex<Option<Timestamp>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("view", &self.view)
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn heard_active(&self) {
        *self.active_contact.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), self.clock.now()));
    }

    /// Where the standby's readings start to count: when the active said it stopped
    /// polling, else when it was last heard (by the wall clock).
    fn warm_from(&self) -> Option<Timestamp> {
        let stopped = *self.active_stopped_at.lock().unwrap_or_else(|p| p.into_inner());
        stopped.or_else(|| {
            self.active_contact
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|(_, t)| t)
        })
    }

    /// On the standby: the active stopped polling now.
    fn active_stopped(&self) {
        *self.active_stopped_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clock.now());
    }

    /// On the active: whether beats ask the standby what it reaches of the plant network.
    fn wants_peer_field(&self) -> bool {
        self.asking_reach.load(Ordering::Acquire) || self.view.field().is_some_and(|f| f.lost())
    }

    /// Whether an active peer answered on the pair link within `d`.
    fn heard_active_within(&self, d: Duration) -> bool {
        self.active_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|(t, _)| t.elapsed() < d)
    }
}

/// Why the pair could not run.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The config has no `[redundancy]`.
    #[error("the config has no [redundancy] section")]
    NotAPair,
    /// The pair link's address could not be bound.
    #[error("cannot listen for the peer on {addr}: {source}")]
    Listen {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The pair link's TLS files could not be used.
    #[error("pair link TLS: {0}")]
    Tls(#[from] link::LinkTlsError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// How often the active checks its fence and lease.
const WATCH: Duration = Duration::from_millis(50);

/// With `failback = "auto"`, how long the preferred node must follow with nothing missing
/// before the other hands the role back: a node that just came back may go again.
const FAILBACK_AFTER: Duration = Duration::from_secs(30);

fn count(metrics: &PairMetrics, reason: &'static str) {
    metrics.switchovers.get_or_create(&SwitchReason { reason }).inc();
}

fn set_role(shared: &Shared, role: PairRole) {
    shared.view.set_role(role);
    shared.metrics.role.set(role as i64);
}

/// Runs this node of the pair until `stop`: standby and active in turn, as the lease decides.
pub async fn run(
    config: GatewayConfig,
    data_dir: &Path,
    clock: SharedClock,
    stop: CancellationToken,
) -> Result<(), PairError> {
    let spec = config.redundancy.clone().ok_or(PairError::NotAPair)?;
    std::fs::create_dir_all(data_dir).map_err(|source| PairError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let tls = match &spec.tls {
        Some(files) => Some(link::LinkTls::new(files, &spec.peer_host())?),
        None => {
            warn!(
                see = "docs/redundancy.md",
                "Pair link: not encrypted (no [redundancy] tls); the secret authenticates it, but its content crosses the network readable"
            );
            None
        }
    };
    let view = PairView::new(&spec.node, &spec.peer_node);
    view.set_link_tls(tls.is_some());
    let term_file = data_dir.join("pair.term");
    if let Some(t) = std::fs::read_to_string(&term_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        view.see_term(t);
    }
    let shared = Arc::new(Shared {
        view,
        fence: Fence::closed(),
        metrics: PairMetrics::default(),
        secret: spec.secret.clone(),
        tls,
        peer_addr: spec.peer.clone(),
        advertise_api: spec.advertise_api.clone(),
        active_contact: Mutex::new(None),
        clock: clock.clone(),
        asking_reach: AtomicBool::new(false),
        handing_over: AtomicBool::new(false),
        sources_ended: tokio::sync::Notify::new(),
        active_stopped_at: Mutex::new(None),
    });
    set_role(&shared, PairRole::Standby);
    let listener = TcpListener::bind(spec.listen)
        .await
        .map_err(|source| PairError::Listen {
            addr: spec.listen,
            source,
        })?;
    info!(node = %spec.node, peer = %spec.peer, listen = %spec.listen, witness = %format!("{}:{}", spec.witness_host, spec.witness_port), topic = %spec.topic, "Pair: starting as standby");
    let link_stop = stop.child_token();
    let server = tokio::spawn(replicate::serve(
        listener,
        shared.clone(),
        data_dir.to_path_buf(),
        link_stop.clone(),
    ));
    let mut lease = lease::Lease::start(&spec, shared.clone(), term_file);

    let config = Arc::new(config);
    let outcome = roles(&config, data_dir, &clock, &shared, &mut lease, &stop).await;
    link_stop.cancel();
    let _ = server.await;
    lease.stop().await;
    outcome
}

async fn roles(
    config: &Arc<GatewayConfig>,
    data_dir: &Path,
    clock: &SharedClock,
    shared: &Arc<Shared>,
    lease: &mut lease::Lease,
    stop: &CancellationToken,
) -> Result<(), PairError> {
    loop {
        // Standby: copy the active, answer for the role, wait for the lease.
        set_role(shared, PairRole::Standby);
        *shared.active_stopped_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let standby_stop = stop.child_token();
        let mut api = standby::serve(config.api_listen, shared.clone(), standby_stop.clone());
        let follower = tokio::spawn(replicate::follow(
            shared.clone(),
            data_dir.to_path_buf(),
            standby_stop.clone(),
        ));
        let prober = tokio::spawn(field::watch(
            config.clone(),
            shared.clone(),
            clock.clone(),
            config.redundancy.as_ref().is_some_and(|s| s.dual_poll),
            standby_stop.clone(),
        ));
        let won = loop {
            if let lease::Holding::Yes(term, why) = *lease.holding.borrow_and_update() {
                break Some((term, why));
            }
            tokio::select! {
                () = stop.cancelled() => break None,
                r = lease.holding.changed() => if r.is_err() { break None },
            }
        };
        standby_stop.cancel();
        let _ = follower.await;
        let warm = prober.await.unwrap_or_default();
        // Open connections (a browser's keep-alive) must not hold the address: the gateway
        // binds it next.
        if tokio::time::timeout(Duration::from_millis(300), &mut api)
            .await
            .is_err()
        {
            api.abort();
            let _ = api.await;
        }
        let Some((term, why)) = won else {
            return Ok(());
        };

        // Active: start the gateway from the copy.
        let took = Instant::now();
        set_role(shared, PairRole::Active);
        count(&shared.metrics, why.reason());
        let ctx = PairContext {
            fence: shared.fence.clone(),
            view: shared.view.clone(),
            metrics: shared.metrics.clone(),
            warm,
        };
        let gateway = match start_gateway(config, data_dir, clock, ctx).await {
            Some(g) => g,
            None => {
                // Cannot monitor here: let the peer take over rather than hold an empty lease.
                lease.release().await;
                count(&shared.metrics, "step_down");
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            }
        };
        info!(term, reason = why.reason(), started_in_ms = took.elapsed().as_millis() as u64, api = %gateway.api_addr, "Pair: active");
        let mut handover = false;
        let give_back = config
            .redundancy
            .as_ref()
            .is_some_and(|s| s.failback_auto && s.prefer != s.node);
        let mut settled_since: Option<Instant> = None;
        let mut field_lost = false;
        let mut field_warned = false;
        shared.asking_reach.store(give_back, Ordering::Release);
        let stopping = loop {
            tokio::select! {
                () = stop.cancelled() => break true,
                () = shared.view.handover_requested() => {
                    handover = true;
                    break false;
                }
                () = tokio::time::sleep(WATCH) => {}
            }
            if *lease.holding.borrow() == lease::Holding::No {
                warn!("Pair: the lease is the peer's; stepping down");
                break false;
            }
            if !shared.fence.may_drive() {
                warn!("Pair: neither the witness nor the standby confirmed this node in time; stepping down");
                lease.release().await;
                break false;
            }
            let own = gateway.network_reach();
            shared.view.set_field(Some(own));
            let peer_field = shared.view.peer_field().filter(|_| shared.view.peer_up());
            if field::hand_over_for_field(own, peer_field) {
                warn!(
                    devices = own.devices,
                    standby_reaches = peer_field.map_or(0, |p| p.online),
                    "Pair: no network device answers here and the standby reaches them; handing over"
                );
                handover = true;
                field_lost = true;
                break false;
            }
            if own.lost() && !field_warned {
                field_warned = true;
                warn!(
                    devices = own.devices,
                    "Pair: no network device answers here, and the standby does not reach them either (or has not said yet); staying active"
                );
            } else if !own.lost() {
                field_warned = false;
            }
            if give_back {
                // The preferred node follows with nothing missing and reaches the plant
                // network as well as this node: hand the role back to it.
                let reaches =
                    own.devices == 0 || peer_field.is_some_and(|p| p.known == p.devices && p.online >= own.online);
                let settled = shared.view.peer_up() && shared.view.lag().0 == 0 && reaches;
                let since = settled_since.get_or_insert_with(Instant::now);
                if !settled {
                    settled_since = None;
                } else if since.elapsed() >= FAILBACK_AFTER {
                    info!(to = %shared.view.peer, "Pair: the preferred node follows again; handing the role back (failback = auto)");
                    handover = true;
                    break false;
                }
            }
        };
        if handover {
            // The standby polls before this node stops, and its readings from the moment
            // this node stopped are evaluated there first: the record has no gap.
            shared.asking_reach.store(true, Ordering::Release);
            peer_polling(shared).await;
        }
        // Stop driving before anything else, then stop in order.
        shared.fence.close();
        gateway
            .shutdown_with(|| {
                if handover {
                    shared.handing_over.store(true, Ordering::Release);
                    shared.sources_ended.notify_waiters();
                }
            })
            .await;
        shared.view.set_field(None);
        if handover {
            // Everything journaled is at the standby before it may take over.
            drained(shared).await;
            lease.vacate().await;
            shared.asking_reach.store(false, Ordering::Release);
            shared.handing_over.store(false, Ordering::Release);
            count(&shared.metrics, if field_lost { "field_lost" } else { "handover" });
            info!(to = %shared.view.peer, "Pair: handed over; standby now");
            continue;
        }
        shared.asking_reach.store(false, Ordering::Release);
        if stopping {
            lease.vacate().await;
            count(&shared.metrics, "stop");
            return Ok(());
        }
        count(&shared.metrics, "step_down");
    }
}

/// Waits until the standby has polled every network device once (at most 3 s: a standby
/// that cannot reach them takes over all the same, as after a failure).
async fn peer_polling(shared: &Shared) {
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        match shared.view.peer_field() {
            Some(f) if f.known == f.devices => return,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    warn!("Pair: handing over before the standby polled every network device");
}

/// Waits until the standby has confirmed every journal row (at most 3 s: a standby that does
/// not confirm takes over with what it has, as after a failure).
async fn drained(shared: &Shared) {
    let until = Instant::now() + Duration::from_secs(3);
    // Long enough for the link to read the last commits (every 50 ms) and for a beat after
    // them (every 250 ms): the lag then counts them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while Instant::now() < until {
        if shared.view.lag().0 == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    warn!(
        behind = shared.view.lag().0,
        "Pair: hand-over with the standby still behind"
    );
}

async fn start_gateway(
    config: &GatewayConfig,
    data_dir: &Path,
    clock: &SharedClock,
    ctx: PairContext,
) -> Option<Gateway> {
    match Gateway::start_with(config.clone(), data_dir, clock.clone(), Some(ctx)).await {
        Ok(g) => Some(g),
        Err(e) => {
            error!(error = %e, "Pair: cannot start the gateway as active");
            None
        }
    }
}
