//! The intake half of a target's readings: takes reading batches from the rules task,
//! thins them per point if asked, groups them into messages (per poll, per time window or
//! per reading) and appends each message to the target's durable outbox before anything is
//! published. The publisher ([`super::outbox`]) sends from there.
//!
//! Design: the same acceptance contract as the time-series stores (`sinks::tsdb::intake`):
//! the rules task never waits (`try_send`, a full queue is counted), a reading counts as
//! accepted once its message is written to the outbox, and the receipt of a batch from a
//! source that acknowledges upstream (MQTT QoS 1) is held until then. Whatever is queued
//! when the target stops is written before the intake ends, and replayed by the next start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::config::{BatchMode, NorthReadings};
use super::payload::{self, Encoder};
use crate::clock::SharedClock;
use crate::model::{ReadingBatch, Receipt, Timestamp};
use crate::sinks::buffer::DiskQueue;
use crate::telemetry::north::NorthMetrics;
use crate::telemetry::{LogEvery, WebhookLabel};

/// What the rules task hands to a target's intake: a batch, with the receipt it settles
/// once its readings are in the outbox (or counted lost).
pub type NorthItem = (ReadingBatch, Option<Receipt>);

/// Messages gathered before they are written in one go while batches keep coming.
const WRITE_EVERY: usize = 512;

/// At most one log line per this interval for each kind of repeated outbox failure.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Everything the intake loop needs.
#[derive(Debug)]
pub(super) struct Intake {
    pub(super) target: String,
    pub(super) spec: NorthReadings,
    pub(super) encoder: Encoder,
    /// `encoding = "sparkplug_b"`: builds the records instead of `encoder`.
    pub(super) sparkplug: Option<super::sparkplug::Writer>,
    pub(super) queue: Arc<Mutex<DiskQueue>>,
    pub(super) notify: Arc<Notify>,
    pub(super) clock: SharedClock,
    pub(super) metrics: NorthMetrics,
    /// Removes this intake from the rules task's list (so nothing more is sent to it).
    pub(super) leave: Leave,
}

/// What takes an intake off the rules task's list.
pub(super) struct Leave(pub(super) Box<dyn FnOnce() + Send + Sync>);

impl std::fmt::Debug for Leave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leave")
    }
}

/// Readings waiting for their message.
#[derive(Debug, Default)]
struct Pending {
    /// Messages ready for the outbox: record bytes and readings in it.
    out: Vec<(Vec<u8>, u32)>,
    /// `batch = "window"`: per group, its `points` elements so far and how many.
    open: HashMap<usize, (String, usize)>,
    /// Groups in `open` in the order they first got a reading.
    order: Vec<usize>,
    /// When the open window began.
    since: Option<Instant>,
    /// Receipts settled by the next write (batches whose readings are all in `out`).
    receipts: Vec<Receipt>,
    /// Receipts of batches with readings still in the open window.
    window_receipts: Vec<Receipt>,
}

impl Intake {
    fn count(&self, result: &'static str, n: u64) {
        if n > 0 {
            self.metrics
                .readings
                .get_or_create(&WebhookLabel {
                    target: self.target.clone(),
                    result,
                })
                .inc_by(n);
        }
    }

    /// Runs until `stop` fires, then writes what is queued and returns.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<NorthItem>, stop: CancellationToken) {
        let mut p = Pending::default();
        let mut last: Vec<Option<Timestamp>> = Vec::new();
        let mut log = LogEvery::new(LOG_EVERY);
        loop {
            let deadline = p.since.map(|t| t + self.spec.window);
            tokio::select! {
                item = rx.recv() => match item {
                    Some((batch, receipt)) => {
                        self.add(&batch, &mut p, &mut last);
                        if let Some(r) = receipt {
                            if p.open.is_empty() { p.receipts.push(r) } else { p.window_receipts.push(r) }
                        }
                        if rx.is_empty() || p.out.len() >= WRITE_EVERY {
                            self.write(&mut p, &mut log).await;
                        }
                    }
                    None => break,
                },
                () = sleep_until(deadline) => {
                    self.close_window(&mut p);
                    self.write(&mut p, &mut log).await;
                }
                () = stop.cancelled() => break,
            }
        }
        // Nothing more comes once this intake has left the list; write what did.
        let leave = std::mem::replace(&mut self.leave, Leave(Box::new(|| {})));
        (leave.0)();
        while let Ok((batch, receipt)) = rx.try_recv() {
            self.add(&batch, &mut p, &mut last);
            p.receipts.extend(receipt);
        }
        self.close_window(&mut p);
        self.write(&mut p, &mut log).await;
    }

    /// Turns a batch into messages (or adds it to the open window).
    fn add(&mut self, batch: &ReadingBatch, p: &mut Pending, last: &mut Vec<Option<Timestamp>>) {
        let interval = self.spec.interval;
        let mut due = |r: &crate::model::Reading| -> bool {
            let Some(every) = interval else { return true };
            let i = r.point.index();
            if last.len() <= i {
                last.resize(i + 1, None);
            }
            let ok = last[i].is_none_or(|t| r.ts.since(t) >= every || r.ts < t);
            if ok {
                last[i] = Some(r.ts);
            }
            ok
        };
        if let Some(w) = self.sparkplug.as_mut() {
            let added = w.add(batch, self.spec.max_readings, due, &mut p.out);
            self.count("skipped_offline", added.offline);
            return;
        }
        match self.spec.batch {
            BatchMode::Reading => {
                for r in batch.iter().filter(|r| self.encoder.wants(r)) {
                    if !due(r) {
                        continue;
                    }
                    if let Some((topic, body)) = self.encoder.single(r) {
                        p.out.push((payload::record(topic, body.as_bytes()), 1));
                    }
                }
            }
            BatchMode::Poll => {
                // One message per group, in the order the groups appear in the batch.
                let mut groups: Vec<(usize, String, usize)> = Vec::new();
                for r in batch {
                    let Some(g) = self.encoder.group_of(r) else { continue };
                    if !due(r) {
                        continue;
                    }
                    let i = match groups.iter().position(|(x, _, _)| *x == g) {
                        Some(i) => i,
                        None => {
                            groups.push((g, String::new(), 0));
                            groups.len() - 1
                        }
                    };
                    let (_, text, n) = &mut groups[i];
                    if *n == self.spec.max_readings {
                        let full = std::mem::take(text);
                        self.push_message(p, g, &full, *n);
                        *n = 0;
                    }
                    if *n > 0 {
                        text.push(',');
                    }
                    self.encoder.point_json(r, text);
                    *n += 1;
                }
                for (g, text, n) in groups {
                    if n > 0 {
                        self.push_message(p, g, &text, n);
                    }
                }
            }
            BatchMode::Window => {
                for r in batch {
                    let Some(g) = self.encoder.group_of(r) else { continue };
                    if !due(r) {
                        continue;
                    }
                    if p.since.is_none() {
                        p.since = Some(Instant::now());
                    }
                    let (text, n) = p.open.entry(g).or_insert_with(|| {
                        p.order.push(g);
                        (String::new(), 0)
                    });
                    if *n == self.spec.max_readings {
                        let full = std::mem::take(text);
                        let count = std::mem::replace(n, 0);
                        if let Some((topic, body)) = self.encoder.message(g, &full) {
                            p.out.push((payload::record(&topic, &body), count as u32));
                        }
                    }
                    if *n > 0 {
                        text.push(',');
                    }
                    self.encoder.point_json(r, text);
                    *n += 1;
                }
            }
        }
    }

    fn push_message(&self, p: &mut Pending, g: usize, points: &str, n: usize) {
        if let Some((topic, body)) = self.encoder.message(g, points) {
            p.out.push((payload::record(&topic, &body), n as u32));
        }
    }

    /// Ends the open window: one message per group that has readings in it.
    fn close_window(&self, p: &mut Pending) {
        for g in std::mem::take(&mut p.order) {
            if let Some((text, n)) = p.open.remove(&g)
                && n > 0
            {
                self.push_message(p, g, &text, n);
            }
        }
        p.open.clear();
        p.since = None;
        p.receipts.append(&mut p.window_receipts);
    }

    /// Appends the ready messages to the outbox; settles the receipts of what they hold.
    async fn write(&self, p: &mut Pending, log: &mut LogEvery) {
        let out = std::mem::take(&mut p.out);
        let receipts = std::mem::take(&mut p.receipts);
        if out.is_empty() {
            return;
        }
        let total: u64 = out.iter().map(|(_, n)| u64::from(*n)).sum();
        let queue = self.queue.clone();
        let now = self.clock.now();
        let result = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            let mut done = Written::default();
            for (rec, items) in &out {
                match q.append(rec, *items, now) {
                    Ok(a) => {
                        if a.seq.is_some() {
                            done.buffered += u64::from(*items);
                        }
                        done.full_records += a.dropped_records;
                        done.full_items += a.dropped_items;
                    }
                    Err(e) => {
                        done.failed += u64::from(*items);
                        done.error.get_or_insert(e.to_string());
                    }
                }
            }
            done.stats = q.stats();
            done
        })
        .await;
        match result {
            Ok(done) => {
                self.count("buffered", done.buffered);
                self.count("dropped_buffer_full", done.full_items);
                self.count("dropped_buffer_error", done.failed);
                if done.full_items > 0 && log.hit().is_some() {
                    warn!(mqtt_north = %self.target, messages = done.full_records, readings = done.full_items,
                          "Northbound outbox full; buffered readings dropped");
                }
                if let Some(e) = done.error
                    && let Some(held) = log.hit()
                {
                    error!(mqtt_north = %self.target, error = %e, readings = done.failed, not_logged_since_last = held,
                           "Northbound outbox write failed; readings lost");
                }
                super::outbox::set_gauges(&self.metrics, &self.target, &done.stats, now);
                self.notify.notify_one();
            }
            Err(e) => {
                self.count("dropped_buffer_error", total);
                error!(mqtt_north = %self.target, error = %e, lost = total, "Northbound outbox task failed; readings lost");
            }
        }
        // Durable or counted lost: the sources may acknowledge.
        drop(receipts);
    }
}

#[derive(Debug, Default)]
struct Written {
    buffered: u64,
    full_records: u64,
    full_items: u64,
    failed: u64,
    error: Option<String>,
    stats: crate::sinks::buffer::BufferStats,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
