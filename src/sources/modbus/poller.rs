//! The per-device polling task.
//!
//! Design: fixed-rate ticks (a slow cycle skips ticks and counts an overrun, it never queues
//! them); every request runs under the device timeout; a failed link drops the connection and
//! marks the device's unread points `comm_fault`; reconnects back off exponentially with
//! jitter, and while backing off each cycle reports `comm_fault` without touching the network.

use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_modbus::client::{Context, Reader};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::decoder::decode;
use super::planner::{ReadBlock, plan};
use super::register::RegisterFunction;
use super::transport;
use crate::clock::SharedClock;
use crate::config::DeviceSpec;
use crate::model::{Quality, Reading, Timestamp};
use crate::sources::ReadingBatch;
use crate::telemetry::{DeviceLabel, DeviceResult, Metrics};

/// Exponential reconnect backoff with jitter.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
            not_before: None,
        }
    }

    fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        let jitter = rand::rng().random_range(0.8..1.2);
        self.not_before = Some(now + self.next.mul_f64(jitter));
        self.next = (self.next * 2).min(self.max);
    }

    fn succeeded(&mut self) {
        self.next = self.min;
        self.not_before = None;
    }
}

/// The parts of a poller that requests only read; kept apart from the connection, which is
/// not `Sync`, so they can be borrowed across awaits.
#[derive(Debug)]
struct PollCore {
    device: DeviceSpec,
    blocks: Vec<ReadBlock>,
    metrics: Metrics,
}

/// Polls one device until cancelled.
#[derive(Debug)]
pub struct Poller {
    core: PollCore,
    tx: mpsc::Sender<ReadingBatch>,
    clock: SharedClock,
    conn: Option<Context>,
    backoff: Backoff,
    online: Option<bool>,
}

impl Poller {
    /// A poller for `device` sending its readings to `tx`.
    pub fn new(device: DeviceSpec, tx: mpsc::Sender<ReadingBatch>, clock: SharedClock, metrics: Metrics) -> Self {
        let specs: Vec<_> = device.points.iter().map(|(_, r)| *r).collect();
        let blocks = plan(&specs, device.limits);
        let max = Duration::from_secs(30).max(device.interval);
        Self {
            backoff: Backoff::new(Duration::from_millis(500).min(device.interval), max),
            core: PollCore {
                device,
                blocks,
                metrics,
            },
            tx,
            clock,
            conn: None,
            online: None,
        }
    }

    /// Read requests one cycle makes.
    pub fn request_count(&self) -> usize {
        self.core.blocks.len()
    }

    /// Runs the poll loop until `cancel` fires or the rules engine goes away.
    pub async fn run(mut self, cancel: CancellationToken) {
        let interval = self.core.device.interval;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let label = DeviceLabel {
            device: self.core.device.name.clone(),
        };
        let metrics = self.core.metrics.clone();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let started = Instant::now();
            let batch = self.poll_once().await;
            let took = started.elapsed();
            metrics
                .modbus_poll_duration
                .get_or_create(&label)
                .observe(took.as_secs_f64());
            if took > interval {
                metrics.modbus_overruns.get_or_create(&label).inc();
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                sent = self.tx.send(batch) => if sent.is_err() { break },
            }
        }
    }

    /// One poll cycle: every point of the device gets exactly one reading.
    pub async fn poll_once(&mut self) -> ReadingBatch {
        let ts = self.clock.now();
        let mut batch = Vec::with_capacity(self.core.device.points.len());
        if self.conn.is_none() && self.backoff.ready(Instant::now()) {
            self.connect().await;
        }
        let core = &self.core;
        let mut first_unread = 0;
        if let Some(mut ctx) = self.conn.take() {
            let mut healthy = true;
            for block in &core.blocks {
                match core.read_block(&mut ctx, block).await {
                    BlockOutcome::Words(words) => core.decode_block(block, &words, ts, &mut batch),
                    BlockOutcome::DeviceSaidNo => core.fill(block, Quality::DecodeError, ts, &mut batch),
                    BlockOutcome::LinkFailed => {
                        healthy = false;
                        break;
                    }
                }
                first_unread += 1;
            }
            self.record_cycle(healthy);
            if healthy {
                self.conn = Some(ctx);
            } else {
                self.backoff.failed(Instant::now());
            }
        } else {
            self.record_cycle(false);
        }
        for block in &self.core.blocks[first_unread..] {
            self.core.fill(block, Quality::CommFault, ts, &mut batch);
        }
        batch
    }

    async fn connect(&mut self) {
        let d = &self.core.device;
        match transport::connect(&d.transport, d.unit_id, d.timeout).await {
            Ok(ctx) => {
                self.core.count_connect("ok");
                self.backoff.succeeded();
                self.conn = Some(ctx);
            }
            Err(e) => {
                self.core.count_connect(e.kind());
                self.backoff.failed(Instant::now());
                if self.online != Some(false) {
                    warn!(device = %d.name, error = %e, "Device unreachable; its points are comm_fault");
                }
                self.online = Some(false);
            }
        }
    }

    fn record_cycle(&mut self, ok: bool) {
        let result = if ok { "ok" } else { "comm_fault" };
        let name = &self.core.device.name;
        let l = DeviceResult {
            device: name.clone(),
            result,
        };
        self.core.metrics.modbus_polls.get_or_create(&l).inc();
        match (self.online, ok) {
            (Some(false) | None, true) => info!(device = %name, "Device online"),
            (Some(true), false) => warn!(device = %name, "Device stopped answering; its points are comm_fault"),
            _ => {}
        }
        self.online = Some(ok);
    }
}

impl PollCore {
    fn count_connect(&self, result: &'static str) {
        let l = DeviceResult {
            device: self.device.name.clone(),
            result,
        };
        self.metrics.modbus_connects.get_or_create(&l).inc();
    }

    async fn read_block(&self, ctx: &mut Context, block: &ReadBlock) -> BlockOutcome {
        let read = async {
            match block.function {
                RegisterFunction::Holding => ctx.read_holding_registers(block.start, block.count).await,
                RegisterFunction::Input => ctx.read_input_registers(block.start, block.count).await,
            }
        };
        let (outcome, result) = match tokio::time::timeout(self.device.timeout, read).await {
            Ok(Ok(Ok(words))) if words.len() == usize::from(block.count) => (BlockOutcome::Words(words), "ok"),
            Ok(Ok(Ok(words))) => {
                warn!(device = %self.device.name, function = block.function.as_str(), start = block.start,
                      expected = block.count, got = words.len(), "Short Modbus response");
                (BlockOutcome::DeviceSaidNo, "short_response")
            }
            Ok(Ok(Err(exception))) => {
                warn!(device = %self.device.name, function = block.function.as_str(), start = block.start,
                      count = block.count, %exception, "Device answered with a Modbus exception");
                (BlockOutcome::DeviceSaidNo, "exception")
            }
            Ok(Err(e)) => {
                warn!(device = %self.device.name, error = %e, "Modbus link failed; reconnecting");
                (BlockOutcome::LinkFailed, "io_error")
            }
            Err(_) => (BlockOutcome::LinkFailed, "timeout"),
        };
        let l = DeviceResult {
            device: self.device.name.clone(),
            result,
        };
        self.metrics.modbus_requests.get_or_create(&l).inc();
        outcome
    }

    fn decode_block(&self, block: &ReadBlock, words: &[u16], ts: Timestamp, out: &mut ReadingBatch) {
        for &(slot, offset) in &block.items {
            let (point, spec) = &self.device.points[slot];
            let start = usize::from(offset);
            let end = start + usize::from(spec.data_type.word_count());
            let (value, quality) = match words.get(start..end) {
                Some(w) => decode(spec, w),
                None => (f64::NAN, Quality::DecodeError),
            };
            out.push(Reading {
                point: *point,
                ts,
                value,
                quality,
            });
        }
    }

    fn fill(&self, block: &ReadBlock, quality: Quality, ts: Timestamp, out: &mut ReadingBatch) {
        for &(slot, _) in &block.items {
            let point = self.device.points[slot].0;
            out.push(Reading {
                point,
                ts,
                value: f64::NAN,
                quality,
            });
        }
    }
}

enum BlockOutcome {
    Words(Vec<u16>),
    /// The device answered but not with the data (exception, short answer): the link is fine.
    DeviceSaidNo,
    /// Timeout or broken connection: drop it and reconnect.
    LinkFailed,
}
