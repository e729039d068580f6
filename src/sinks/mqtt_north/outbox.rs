//! The publishing half of a target's readings: sends the outbox's messages in order at
//! QoS 1 with a window of up to `in_flight` messages unacknowledged, and acknowledges them
//! in the outbox only over the prefix the broker has acknowledged.
//!
//! Design: one task owns the broker connection ([`drive`]); it builds a fresh rumqttc client
//! and event loop for every connection and hands the client to the publisher when the broker
//! accepts it, then reports each outgoing packet id and each PUBACK. rumqttc sends requests in
//! the order they were queued, so the n-th publish that goes out is the n-th one queued: the
//! publisher pairs packet ids with messages that way. A connection that fails takes its
//! client, event loop and everything queued in them along; the publisher then sends every
//! message not yet acknowledged again on the next connection, in order, and counts those
//! that had gone out as `resent` (the broker may already have them: delivery is at least
//! once). Messages older than `max_age` when their turn comes are not sent, counted
//! `expired`. After a restart the outbox hands out again everything not acknowledged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::payload;
use crate::clock::SharedClock;
use crate::model::Timestamp;
use crate::sinks::buffer::{BufferError, BufferStats, DiskQueue, Record};
use crate::telemetry::north::{NorthLabel, NorthMetrics};
use crate::telemetry::{LogEvery, WebhookLabel};

/// Wait before the first reconnect, and after a connection that worked.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the gauges are refreshed while nothing else happens.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

/// Sets the outbox gauges of `target`.
pub(super) fn set_gauges(m: &NorthMetrics, target: &str, s: &BufferStats, now: Timestamp) {
    let label = NorthLabel {
        target: target.to_string(),
    };
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.buffer_pending_bytes
        .get_or_create(&label)
        .set(as_i64(s.pending_bytes));
    m.buffer_messages.get_or_create(&label).set(as_i64(s.records));
    let age = s.oldest.map_or(0, |t| now.since(t).as_secs());
    m.buffer_oldest_age.get_or_create(&label).set(as_i64(age));
}

/// What the connection task reports, in the order it happened.
#[derive(Debug)]
enum Link {
    /// The broker accepted a new connection (with this Sparkplug bdSeq); publish through
    /// this client.
    Up(AsyncClient, u64),
    /// A Sparkplug node command arrived (its payload).
    Command(Vec<u8>),
    /// The connection failed; what was queued in it is gone.
    Down,
    /// A publish went out with this packet id.
    Sent(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
}

/// Where one message stands on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not handed to the current connection.
    Waiting,
    /// Handed to the client, not yet out.
    Queued,
    /// Out with this packet id, not yet acknowledged.
    Out(u16),
    /// Acknowledged by the broker.
    Acked,
}

#[derive(Debug)]
struct Flight {
    /// The outbox record it settles (on the last message of a record; a Sparkplug birth
    /// settles none).
    seq: Option<u64>,
    /// The record as the outbox keeps it, to encode again on the next connection (Sparkplug:
    /// the new session's births, aliases and seq).
    source: Option<(Vec<u8>, Timestamp)>,
    items: u32,
    topic: String,
    payload: Vec<u8>,
    state: State,
    /// It went out on some connection: sending it again may duplicate it.
    went_out: bool,
}

/// Everything the publisher needs.
#[derive(Debug)]
pub(super) struct Publisher {
    pub(super) target: String,
    pub(super) queue: Arc<Mutex<DiskQueue>>,
    pub(super) notify: Arc<Notify>,
    pub(super) clock: SharedClock,
    pub(super) metrics: NorthMetrics,
    pub(super) in_flight: usize,
    pub(super) max_age: Duration,
    pub(super) framing: Framing,
}

/// How outbox records become MQTT messages.
#[derive(Debug)]
pub(super) enum Framing {
    /// A record is a topic and a JSON payload, sent as it is.
    Json,
    /// A record is a device's poll or offline mark, encoded for the current Sparkplug session.
    Sparkplug(Box<super::sparkplug::Session>),
}

/// How each connection is opened: the options (Sparkplug: with this connection's NDEATH as
/// the will) and the bdSeq they carry.
pub(super) type Connect = Box<dyn FnMut() -> (MqttOptions, u64) + Send>;

/// How the connection task connects, and what it does besides publishing.
pub(super) struct Dial {
    /// Opens each connection.
    pub(super) connect: Connect,
    /// Topic subscribed at each connection before anything is published (Sparkplug NCMD).
    pub(super) commands: Option<String>,
    /// On a stop, keep the connection up to this long so a last message and the disconnect
    /// go out (Sparkplug's NDEATH).
    pub(super) linger: Option<Duration>,
}

/// Starts the connection task and the publisher; both stop when `stop` fires.
pub(super) fn start(
    publisher: Publisher,
    dial: Dial,
    log: super::NorthLog,
    stop: CancellationToken,
) -> [tokio::task::JoinHandle<()>; 2] {
    let window = publisher.in_flight;
    // Sparkplug births go beside the window: a node birth and one per device, twice over
    // when a rebirth is asked for while the first ones are still queued.
    let births = match &publisher.framing {
        Framing::Json => 0,
        Framing::Sparkplug(s) => 2 * (s.device_count() + 1),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    [
        tokio::spawn(drive(dial, window, window + births + 16, tx, log, stop.clone())),
        tokio::spawn(publisher.run(rx, stop)),
    ]
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial")
            .field("commands", &self.commands)
            .field("linger", &self.linger)
            .finish_non_exhaustive()
    }
}

/// Connects, reports, and reconnects with backoff until `stop` fires or nobody listens.
async fn drive(
    mut dial: Dial,
    window: usize,
    capacity: usize,
    tx: mpsc::UnboundedSender<Link>,
    log: super::NorthLog,
    stop: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    // None until the first CONNACK or failure.
    let mut was_up: Option<bool> = None;
    loop {
        let (mut opts, bd_seq) = (dial.connect)();
        opts.set_inflight(u16::try_from(window).unwrap_or(u16::MAX));
        opts.set_max_packet_size(1 << 20, 64 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, capacity);
        let mut up = false;
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => {
                    if let Some(limit) = dial.linger.filter(|_| up) {
                        linger(&mut eventloop, limit).await;
                    }
                    return;
                }
                e = eventloop.poll() => e,
            };
            let report = match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    backoff = FIRST_BACKOFF;
                    if was_up != Some(true) {
                        log.connected_readings();
                    }
                    was_up = Some(true);
                    // Queued before anything the publisher sends on this connection.
                    if let Some(topic) = &dial.commands {
                        let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                    }
                    Some(Link::Up(client.clone(), bd_seq))
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Link::Sent(pkid)),
                Ok(Event::Incoming(Packet::PubAck(ack))) => Some(Link::Acked(ack.pkid)),
                Ok(Event::Incoming(Packet::Publish(p))) if dial.commands.as_deref() == Some(p.topic.as_str()) => {
                    Some(Link::Command(p.payload.to_vec()))
                }
                Ok(_) => None,
                Err(e) => {
                    if was_up != Some(false) {
                        log.unreachable_readings(&e);
                    }
                    was_up = Some(false);
                    if up && tx.send(Link::Down).is_err() {
                        return;
                    }
                    break;
                }
            };
            if let Some(r) = report
                && tx.send(r).is_err()
            {
                return;
            }
        }
        drop((client, eventloop));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Keeps polling a connection after a stop until the publisher's disconnect has gone out
/// (after its last message), the connection fails, or `limit` passes.
async fn linger(eventloop: &mut rumqttc::EventLoop, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

impl Publisher {
    fn count(&self, family: &Family<WebhookLabel, Counter>, result: &'static str, n: u64) {
        if n > 0 {
            family
                .get_or_create(&WebhookLabel {
                    target: self.target.clone(),
                    result,
                })
                .inc_by(n);
        }
    }

    fn label(&self) -> NorthLabel {
        NorthLabel {
            target: self.target.clone(),
        }
    }

    async fn run(mut self, mut links: mpsc::UnboundedReceiver<Link>, stop: CancellationToken) {
        let mut w = Window::default();
        let mut read_log = LogEvery::new(super::readings::LOG_EVERY);
        let mut tick = tokio::time::interval(GAUGE_EVERY);
        let connected = self.metrics.connected.get_or_create(&self.label()).clone();
        let in_flight = self.metrics.in_flight.get_or_create(&self.label()).clone();
        // Refill once a quarter of the window is free: one outbox read per many messages.
        let refill_at = (self.in_flight / 4).max(1);
        loop {
            let free = self.in_flight.saturating_sub(w.flights.len());
            if w.client.is_some() && (free >= refill_at || w.flights.is_empty()) && free > 0 {
                for rec in self.take(free, &mut read_log).await {
                    self.push_record(&mut w, rec.seq, rec.items, rec.payload, rec.created);
                }
            }
            w.pump();
            // Records that needed no message (a device already offline) settle in their turn.
            let mut settled = Done::default();
            w.settle_front(&mut settled);
            if !settled.seqs.is_empty() {
                self.count(&self.metrics.messages, "acked", settled.seqs.len() as u64);
                self.ack_seqs(settled.seqs).await;
            }
            in_flight.set(w.flights.len() as i64);
            tokio::select! {
                link = links.recv() => {
                    let Some(link) = link else { return };
                    // Everything reported so far in one go, then one outbox acknowledgement.
                    let mut done = Done::default();
                    self.on_link(link, &mut w, &mut done, &connected);
                    while let Ok(link) = links.try_recv() {
                        self.on_link(link, &mut w, &mut done, &connected);
                    }
                    self.count(&self.metrics.messages, "acked", done.seqs.len() as u64);
                    self.count(&self.metrics.readings, "delivered", done.readings);
                    if !done.seqs.is_empty() {
                        self.ack_seqs(done.seqs).await;
                    }
                }
                () = self.notify.notified() => {}
                _ = tick.tick() => self.refresh_gauges().await,
                () = stop.cancelled() => {
                    // A clean stop of a Sparkplug edge node says so: NDEATH, then a disconnect
                    // (which tells the broker not to publish the will as well).
                    if let (Framing::Sparkplug(session), Some(c)) = (&self.framing, &w.client) {
                        let (topic, body) = session.farewell(self.clock.now());
                        let _ = c.try_publish(topic, QoS::AtLeastOnce, false, body);
                        let _ = c.try_disconnect();
                    }
                    connected.set(0);
                    return;
                }
            }
        }
    }

    /// Puts the messages of an outbox record at the end of the window (not yet handed to the
    /// connection: [`Window::pump`] does that, in order).
    fn push_record(&mut self, w: &mut Window, seq: u64, items: u32, record: Vec<u8>, created: Timestamp) {
        let settled = |w: &mut Window| {
            // Nothing to send: it settles in its turn.
            w.flights.push_back(Flight {
                seq: Some(seq),
                source: None,
                items: 0,
                topic: String::new(),
                payload: Vec::new(),
                state: State::Acked,
                went_out: false,
            });
        };
        let session = match &mut self.framing {
            Framing::Json => {
                let Some((topic, body)) = payload::split(&record) else {
                    // Only this module writes records; one without a topic cannot be sent.
                    self.count(&self.metrics.readings, "dropped_buffer_corrupt", u64::from(items));
                    settled(w);
                    return;
                };
                let f = Flight {
                    seq: Some(seq),
                    source: None,
                    items,
                    topic: topic.to_string(),
                    payload: body.to_vec(),
                    state: State::Waiting,
                    went_out: false,
                };
                w.flights.push_back(f);
                return;
            }
            Framing::Sparkplug(session) => session,
        };
        let e = session.encode(&record, created, self.clock.now());
        if e.corrupt {
            self.count(&self.metrics.readings, "dropped_buffer_corrupt", u64::from(items));
            settled(w);
            return;
        }
        self.count(&self.metrics.readings, "dropped_unknown_point", e.unknown);
        let n = e.messages.len();
        if n == 0 {
            settled(w);
            return;
        }
        let sent = u32::try_from(e.unknown).map_or(0, |u| items.saturating_sub(u));
        let mut source = Some((record, created));
        for (i, (topic, body)) in e.messages.into_iter().enumerate() {
            let last = i + 1 == n;
            w.flights.push_back(Flight {
                seq: last.then_some(seq),
                source: if last { source.take() } else { None },
                items: if last { sent } else { 0 },
                topic,
                payload: body,
                state: State::Waiting,
                went_out: false,
            });
        }
    }

    /// Puts `messages` (births) at the end of the window.
    fn push_births(w: &mut Window, messages: Vec<super::sparkplug::Message>) {
        for (topic, payload) in messages {
            w.flights.push_back(Flight {
                seq: None,
                source: None,
                items: 0,
                topic,
                payload,
                state: State::Waiting,
                went_out: false,
            });
        }
    }

    /// Applies one report of the connection task to the window; the acknowledged prefix
    /// leaves the window into `done`.
    fn on_link(&mut self, link: Link, w: &mut Window, done: &mut Done, connected: &Gauge) {
        match link {
            Link::Up(c, bd_seq) => {
                connected.set(1);
                let (mut again, mut readings) = (0, 0);
                for f in w
                    .flights
                    .iter()
                    .filter(|f| f.state != State::Acked && f.went_out && f.seq.is_some())
                {
                    again += 1;
                    readings += u64::from(f.items);
                }
                let now = self.clock.now();
                if let Framing::Sparkplug(session) = &mut self.framing {
                    // A new session: its births first, then every record not yet
                    // acknowledged, encoded for this session (births and data of the old one
                    // mean nothing here). Acknowledged ones keep their place, settled.
                    let old = std::mem::take(&mut w.flights);
                    Self::push_births(w, session.begin(bd_seq, now));
                    for f in old {
                        match (f.state, f.seq, f.source) {
                            (State::Acked, Some(_), _) => w.flights.push_back(Flight {
                                source: None,
                                payload: Vec::new(),
                                ..f
                            }),
                            (_, Some(seq), Some((record, created))) => {
                                self.push_record(w, seq, f.items, record, created);
                            }
                            _ => {}
                        }
                    }
                    info!(mqtt_north = %self.target, bd_seq, "Sparkplug edge node born on the northbound broker");
                } else {
                    for f in w.flights.iter_mut().filter(|f| f.state != State::Acked) {
                        f.state = State::Waiting;
                    }
                }
                w.hint = 0;
                w.pumped = 0;
                if again > 0 {
                    self.count(&self.metrics.messages, "resent", again);
                    self.count(&self.metrics.readings, "resent", readings);
                    info!(mqtt_north = %self.target, messages = again, readings,
                          "Northbound readings not acknowledged before the connection failed are sent again");
                }
                w.client = Some(c);
                w.pump();
            }
            Link::Command(body) => {
                if let Framing::Sparkplug(session) = &mut self.framing
                    && w.client.is_some()
                    && super::sparkplug::asks_rebirth(&body)
                {
                    info!(mqtt_north = %self.target, "Sparkplug rebirth asked for by a host; publishing every birth again");
                    Self::push_births(w, session.births(self.clock.now()));
                    w.pump();
                }
            }
            Link::Down => {
                connected.set(0);
                w.client = None;
                w.hint = 0;
                w.pumped = 0;
                for f in w.flights.iter_mut().filter(|f| f.state != State::Acked) {
                    f.state = State::Waiting;
                }
            }
            Link::Sent(pkid) => {
                // The first message handed to this connection and not yet out is this one.
                let from = w.hint.min(w.flights.len());
                if let Some(i) = w.flights.range(from..).position(|f| f.state == State::Queued) {
                    let i = from + i;
                    w.flights[i].state = State::Out(pkid);
                    w.flights[i].went_out = true;
                    w.hint = i + 1;
                }
            }
            Link::Acked(pkid) => {
                if let Some(f) = w.flights.iter_mut().find(|f| f.state == State::Out(pkid)) {
                    f.state = State::Acked;
                }
                w.settle_front(done);
            }
        }
    }

    /// Up to `n` messages from the outbox, oldest first, skipping the expired (acknowledged
    /// unsent, counted) and the damaged (counted, logged at a bounded rate).
    async fn take(&self, n: usize, log: &mut LogEvery) -> Vec<Record> {
        let queue = self.queue.clone();
        let now = self.clock.now();
        let max_age = self.max_age;
        let taken = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            let mut t = Taken::default();
            while t.records.len() < n {
                match q.next_unsent() {
                    Ok(Some(r)) if now.since(r.created) > max_age => {
                        t.expired += u64::from(r.items);
                        if let Err(e) = q.ack(r.seq) {
                            t.error.get_or_insert(e.to_string());
                        }
                    }
                    Ok(Some(r)) => t.records.push(r),
                    Ok(None) => break,
                    Err(BufferError::Corrupt { items, .. }) => t.corrupt += u64::from(items),
                    Err(e) => {
                        t.error = Some(e.to_string());
                        break;
                    }
                }
            }
            t
        })
        .await;
        let t = match taken {
            Ok(t) => t,
            Err(e) => {
                error!(mqtt_north = %self.target, error = %e, "Northbound outbox task failed");
                return Vec::new();
            }
        };
        self.count(&self.metrics.readings, "dropped_expired", t.expired);
        self.count(&self.metrics.readings, "dropped_buffer_corrupt", t.corrupt);
        if (t.expired > 0 || t.corrupt > 0 || t.error.is_some())
            && let Some(held) = log.hit()
        {
            if t.expired > 0 {
                warn!(mqtt_north = %self.target, readings = t.expired, max_age_s = max_age.as_secs(),
                      not_logged_since_last = held, "Northbound readings older than the outbox's max_age dropped unsent");
            }
            if t.corrupt > 0 {
                error!(mqtt_north = %self.target, readings = t.corrupt, not_logged_since_last = held,
                       "Northbound outbox messages do not read back as written; skipped, readings lost");
            }
            if let Some(e) = &t.error {
                error!(mqtt_north = %self.target, error = %e, not_logged_since_last = held, "Cannot read the northbound outbox");
            }
        }
        t.records
    }

    /// Marks acknowledged messages delivered in the outbox (the durable cursor moves over
    /// them).
    async fn ack_seqs(&self, seqs: Vec<u64>) {
        let queue = self.queue.clone();
        let acked = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            let mut err = None;
            for s in seqs {
                if let Err(e) = q.ack(s) {
                    err.get_or_insert(e);
                }
            }
            (err, q.stats())
        })
        .await;
        match acked {
            Ok((None, stats)) => set_gauges(&self.metrics, &self.target, &stats, self.clock.now()),
            Ok((Some(e), stats)) => {
                set_gauges(&self.metrics, &self.target, &stats, self.clock.now());
                error!(mqtt_north = %self.target, error = %e, "Cannot record a northbound acknowledgement; the messages will be sent again after a restart");
            }
            Err(e) => error!(mqtt_north = %self.target, error = %e, "Northbound outbox task failed"),
        }
    }

    async fn refresh_gauges(&self) {
        let queue = self.queue.clone();
        if let Ok(stats) =
            tokio::task::spawn_blocking(move || queue.lock().unwrap_or_else(|e| e.into_inner()).stats()).await
        {
            set_gauges(&self.metrics, &self.target, &stats, self.clock.now());
        }
    }
}

/// The messages in flight on the current connection, oldest first.
#[derive(Debug, Default)]
struct Window {
    flights: VecDeque<Flight>,
    /// The current connection's client, while it is up.
    client: Option<AsyncClient>,
    /// No message before this index waits for its packet id (a search shortcut).
    hint: usize,
    /// No message before this index waits to be handed to the connection (so handing them
    /// over looks only at what is new).
    pumped: usize,
}

/// Messages the broker acknowledged in one round, oldest first.
#[derive(Debug, Default)]
struct Done {
    seqs: Vec<u64>,
    readings: u64,
}

#[derive(Debug, Default)]
struct Taken {
    records: Vec<Record>,
    expired: u64,
    corrupt: u64,
    error: Option<String>,
}

impl Window {
    /// Takes the acknowledged prefix out of the window into `done`.
    fn settle_front(&mut self, done: &mut Done) {
        while self.flights.front().is_some_and(|f| f.state == State::Acked) {
            if let Some(f) = self.flights.pop_front() {
                if let Some(seq) = f.seq {
                    done.seqs.push(seq);
                }
                done.readings += u64::from(f.items);
                self.hint = self.hint.saturating_sub(1);
                self.pumped = self.pumped.saturating_sub(1);
            }
        }
    }

    /// Hands the waiting messages to the connection's client in window order, up to the first
    /// one it refuses (a full queue, or a connection that is gone): that one and those after
    /// it wait, so messages always go out in window order.
    fn pump(&mut self) {
        let Some(client) = &self.client else { return };
        let mut i = self.pumped;
        while let Some(f) = self.flights.get_mut(i) {
            if f.state == State::Waiting {
                if client
                    .try_publish(f.topic.clone(), QoS::AtLeastOnce, false, f.payload.clone())
                    .is_err()
                {
                    break;
                }
                f.state = State::Queued;
            }
            i += 1;
        }
        self.pumped = i;
    }
}
