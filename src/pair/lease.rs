//! The lease at the witness: who of the pair is active.
//!
//! Design: the witness is an MQTT broker the site already runs. The active publishes a
//! retained record `{node, term, beat}` on the lease topic every [`BEAT`]; both nodes
//! subscribe to it. Each renewal the broker echoes back extends the active's fence by
//! [`FENCE`] from when that renewal was *sent*. A standby takes the lease when no renewal has
//! come for [`TAKEOVER`] (longer than the fence) or the record says it is vacant (the active
//! stopped in order), and never while it hears from an active peer over the pair link.
//!
//! Taking it: publish `term + 1` and wait until the broker has echoed it and a short
//! settling time has passed with no later record. The broker delivers the two nodes'
//! publishes to both in one order, so two candidates agree on whose record came last: that
//! one wins, the other stays standby. A holder that sees another node's record with a term at
//! least its own has lost the lease and steps down at once.
//!
//! No last will: a will fires when the broker loses a connection, which does not prove that
//! the node behind it stopped driving its buses (a cut between the active and the broker). The
//! time-based lease proves it; the record names the holder for anyone watching.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Shared;
use super::spec::{BEAT, FENCE, PairSpec, TAKEOVER};

/// After its own claim came back, how long a candidate waits for a later competing one.
const SETTLE: Duration = Duration::from_millis(300);
/// A claim the broker did not echo within this is given up (and tried again).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(2);
/// With no record at all at the witness (a fresh broker), how long the preferred node waits
/// after subscribing before it claims; the other waits twice as long.
const EMPTY_WAIT: Duration = Duration::from_secs(1);
/// How often the lease is looked at.
const TICK: Duration = Duration::from_millis(50);

/// The retained lease record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The holder; `None` once it stepped down in order.
    pub node: Option<String>,
    /// Grows with every new holder.
    pub term: u64,
    /// The holder's renewal count within its term.
    pub beat: u64,
}

/// Why this node took the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Won {
    /// The witness held no record (both nodes starting).
    Empty,
    /// The holder vacated it in order.
    Vacant,
    /// The holder stopped renewing.
    Expired,
}

impl Won {
    /// The switch-over reason in metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Won::Empty => "start",
            Won::Vacant => "lease_vacant",
            Won::Expired => "lease_expired",
        }
    }
}

/// What the lease task tells the role loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Not held by this node.
    No,
    /// Held with this term, taken for this reason.
    Yes(u64, Won),
}

enum Ctl {
    /// Stop renewing; the record stays (the peer takes over when it expires).
    Release,
    /// Stop renewing and publish a vacant record so the peer takes over at once.
    Vacate(oneshot::Sender<()>),
}

/// The running lease task.
#[derive(Debug)]
pub struct Lease {
    /// Whether this node holds the lease.
    pub holding: watch::Receiver<Holding>,
    ctl: mpsc::Sender<Ctl>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Connects to the witness and starts watching (and, when allowed, taking) the lease.
    pub fn start(spec: &PairSpec, shared: Arc<Shared>, term_file: PathBuf) -> Self {
        let (holding_tx, holding) = watch::channel(Holding::No);
        let (ctl, ctl_rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let mut opts = MqttOptions::new(
            format!("hazard-pair-{}-{}", spec.topic.replace('/', "_"), spec.node),
            spec.witness_host.clone(),
            spec.witness_port,
        );
        opts.set_keep_alive(Duration::from_secs(2));
        if let Some((user, password)) = &spec.witness_login {
            opts.set_credentials(user.clone(), password.clone());
        }
        opts.set_clean_session(true);
        let (client, eventloop) = AsyncClient::new(opts, 64);
        let task = Task {
            node: spec.node.clone(),
            prefer: spec.prefer == spec.node,
            topic: spec.topic.clone(),
            client,
            shared,
            holding: holding_tx,
            term_file,
            record: None,
            heard: None,
            subscribed: None,
            connected: false,
            held: None,
            claim: None,
            beats: std::collections::VecDeque::new(),
            next_beat: Instant::now(),
            beat: 0,
            hold_off: None,
        };
        let task = tokio::spawn(task.run(eventloop, ctl_rx, stop.clone()));
        Self {
            holding,
            ctl,
            stop,
            task,
        }
    }

    /// Stops renewing without vacating: this node steps down because it must (the fence ran
    /// out, the gateway failed), and the peer takes over when the lease expires.
    pub async fn release(&self) {
        let _ = self.ctl.send(Ctl::Release).await;
    }

    /// Stops renewing and marks the lease vacant, so the standby takes over at once (an
    /// orderly stop or a hand-over); waits until the broker has it, for at most 2 s.
    pub async fn vacate(&self) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Ctl::Vacate(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
    }

    /// Stops the lease task and disconnects.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

struct Claim {
    term: u64,
    sent: Instant,
    echoed: Option<Instant>,
    why: Won,
}

struct Task {
    node: String,
    prefer: bool,
    topic: String,
    client: AsyncClient,
    shared: Arc<Shared>,
    holding: watch::Sender<Holding>,
    term_file: PathBuf,
    /// The latest record seen.
    record: Option<Record>,
    /// When a record last arrived (any renewal of the holder).
    heard: Option<Instant>,
    /// When the subscription (re)started.
    subscribed: Option<Instant>,
    connected: bool,
    /// The term this node holds.
    held: Option<u64>,
    claim: Option<Claim>,
    /// Renewals sent and not yet echoed: (beat, sent at).
    beats: std::collections::VecDeque<(u64, Instant)>,
    next_beat: Instant,
    beat: u64,
    /// After stepping down, no claim before this instant.
    hold_off: Option<Instant>,
}

enum Ev {
    Connected,
    Lost(String),
    Message(Vec<u8>),
}

impl Task {
    async fn run(mut self, eventloop: rumqttc::EventLoop, mut ctl: mpsc::Receiver<Ctl>, stop: CancellationToken) {
        let (ev_tx, mut ev) = mpsc::channel(256);
        let pump = tokio::spawn(pump(eventloop, self.topic.clone(), ev_tx, stop.clone()));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(e) = ev.recv() => self.on_event(e).await,
                Some(c) = ctl.recv() => self.on_ctl(c).await,
                _ = tick.tick() => self.on_tick().await,
            }
        }
        let _ = self.client.disconnect().await;
        pump.abort();
    }

    fn witness(&self, up: bool) {
        self.shared.view.set_witness_up(up);
        self.shared.metrics.witness_up.set(i64::from(up));
    }

    async fn on_event(&mut self, e: Ev) {
        match e {
            Ev::Connected => {
                self.connected = true;
                self.witness(true);
                // Counted from now: the retained record that arrives next may be old.
                self.subscribed = Some(Instant::now());
                self.heard = Some(Instant::now());
                if let Err(e) = self.client.subscribe(self.topic.clone(), QoS::AtLeastOnce).await {
                    warn!(error = %e, "Pair: cannot subscribe to the lease topic");
                }
                info!(topic = %self.topic, "Pair: witness reachable");
            }
            Ev::Lost(error) => {
                if self.connected {
                    warn!(%error, "Pair: witness lost; the active keeps its role while the standby confirms it over the pair link");
                }
                self.connected = false;
                self.witness(false);
                self.claim = None;
            }
            Ev::Message(payload) => {
                let Ok(rec) = serde_json::from_slice::<Record>(&payload) else {
                    warn!(topic = %self.topic, "Pair: the lease topic holds something that is not a lease record; ignored");
                    return;
                };
                self.see(rec);
            }
        }
    }

    fn see(&mut self, rec: Record) {
        let now = Instant::now();
        self.shared.view.see_term(rec.term);
        self.shared
            .metrics
            .term
            .set(i64::try_from(self.shared.view.term()).unwrap_or(i64::MAX));
        self.save_term();
        self.shared.view.see_lease(rec.node.clone(), rec.beat);
        let mine = rec.node.as_deref() == Some(self.node.as_str());
        if let Some(term) = self.held {
            if mine && rec.term == term {
                // Our renewal came back: the fence runs from when it was sent.
                while let Some(&(b, sent)) = self.beats.front() {
                    if b > rec.beat {
                        break;
                    }
                    self.beats.pop_front();
                    if b == rec.beat {
                        self.shared.fence.extend_to(sent + FENCE);
                    }
                }
            } else if rec.node.is_some() && !mine && rec.term >= term {
                warn!(holder = ?rec.node, term = rec.term, "Pair: the lease went to the peer; stepping down");
                self.shared.fence.close();
                self.held = None;
                self.beats.clear();
                let _ = self.holding.send(Holding::No);
            }
        }
        if let Some(c) = &mut self.claim
            && mine
            && rec.term == c.term
        {
            c.echoed.get_or_insert(now);
        }
        self.record = Some(rec);
        self.heard = Some(now);
    }

    fn save_term(&self) {
        let term = self.shared.view.term();
        let tmp = self.term_file.with_extension("tmp");
        if std::fs::write(&tmp, term.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.term_file))
            .is_err()
        {
            // Only a hint for a witness that lost its retained record; the lease still works.
            tracing::debug!(file = %self.term_file.display(), "Pair: cannot keep the lease term");
        }
    }

    async fn on_ctl(&mut self, c: Ctl) {
        let vacate = match c {
            Ctl::Release => None,
            Ctl::Vacate(done) => Some(done),
        };
        let term = self.held.take().unwrap_or_else(|| self.shared.view.term());
        self.shared.fence.close();
        self.beats.clear();
        self.claim = None;
        self.hold_off = Some(Instant::now() + TAKEOVER);
        let _ = self.holding.send(Holding::No);
        if let Some(done) = vacate {
            let rec = Record {
                node: None,
                term,
                beat: 0,
            };
            self.publish(&rec).await;
            let _ = done.send(());
        }
    }

    async fn publish(&self, rec: &Record) {
        let body = serde_json::to_vec(rec).unwrap_or_default();
        if let Err(e) = self
            .client
            .publish(self.topic.clone(), QoS::AtLeastOnce, true, body)
            .await
        {
            warn!(error = %e, "Pair: cannot publish the lease record");
        }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        if let Some(term) = self.held {
            if now >= self.next_beat && self.connected {
                self.beat += 1;
                self.beats.push_back((self.beat, now));
                while self.beats.len() > 64 {
                    self.beats.pop_front();
                }
                self.next_beat = now + BEAT;
                let rec = Record {
                    node: Some(self.node.clone()),
                    term,
                    beat: self.beat,
                };
                self.publish(&rec).await;
            }
            return;
        }
        if let Some(c) = &self.claim {
            let latest_mine = self
                .record
                .as_ref()
                .is_some_and(|r| r.node.as_deref() == Some(self.node.as_str()) && r.term == c.term);
            match c.echoed {
                Some(at) if now.duration_since(at) >= SETTLE => {
                    let (term, sent, why) = (c.term, c.sent, c.why);
                    self.claim = None;
                    if latest_mine {
                        info!(term, reason = why.reason(), "Pair: lease taken; becoming active");
                        self.held = Some(term);
                        self.beat = 0;
                        self.next_beat = now + BEAT;
                        self.shared.fence.extend_to(sent + FENCE);
                        let _ = self.holding.send(Holding::Yes(term, why));
                    } else {
                        info!(term, "Pair: the peer's claim came after ours; staying standby");
                    }
                }
                None if now.duration_since(c.sent) >= CLAIM_TIMEOUT => self.claim = None,
                _ => {}
            }
            return;
        }
        if let Some(why) = self.may_claim(now) {
            let term = self.shared.view.term() + 1;
            let rec = Record {
                node: Some(self.node.clone()),
                term,
                beat: 0,
            };
            info!(term, reason = why.reason(), "Pair: claiming the lease");
            self.claim = Some(Claim {
                term,
                sent: now,
                echoed: None,
                why,
            });
            self.publish(&rec).await;
        }
    }

    /// Whether this standby may take the lease now, and why.
    fn may_claim(&self, now: Instant) -> Option<Won> {
        if !self.connected || self.hold_off.is_some_and(|t| now < t) {
            return None;
        }
        let subscribed = self.subscribed?;
        // Vacated in order (a stop or a hand-over): the node that vacated holds off, so this
        // one takes it at once, even while the link still carries the last rows.
        if self.record.as_ref().is_some_and(|r| r.node.is_none()) {
            return Some(Won::Vacant);
        }
        // An active peer answering on the pair link keeps its role, whatever the witness shows.
        if self.shared.heard_active_within(TAKEOVER) {
            return None;
        }
        match &self.record {
            None => {
                let wait = if self.prefer { EMPTY_WAIT } else { EMPTY_WAIT * 2 };
                (now.duration_since(subscribed) >= wait).then_some(Won::Empty)
            }
            Some(r) if r.node.is_none() => Some(Won::Vacant),
            Some(_) => {
                let heard = self.heard.unwrap_or(subscribed);
                (now.duration_since(heard) >= TAKEOVER).then_some(Won::Expired)
            }
        }
    }
}

/// Polls the MQTT event loop and forwards what the lease task needs.
async fn pump(mut eventloop: rumqttc::EventLoop, topic: String, tx: mpsc::Sender<Ev>, stop: CancellationToken) {
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        let out = match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => Some(Ev::Connected),
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic => Some(Ev::Message(p.payload.to_vec())),
            Ok(_) => None,
            Err(e) => {
                let _ = tx.send(Ev::Lost(e.to_string())).await;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                None
            }
        };
        if let Some(out) = out
            && tx.send(out).await.is_err()
        {
            return;
        }
    }
}
