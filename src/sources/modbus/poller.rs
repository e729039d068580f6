//! The line task: one per serial bus, per TCP device, or per TCP gateway address shared by
//! several unit ids. It owns the one [`Link`] of its line, so requests never overlap, and
//! polls each of its devices on that device's own fixed-rate grid.
//!
//! Design:
//! - Fixed rate: a device due at `t` is next due at `t + interval`; ticks missed by a slow
//!   cycle are skipped and counted as overruns, never queued ([`schedule::next_due`]).
//! - Spread: every device is polled at once at start, then shifted by its own share of its
//!   interval ([`spread`]), so a plant's devices do not all answer in the same instant of every
//!   cycle and the rules task and history get an even stream instead of one burst per cycle.
//! - Failures: the first timeout of a cycle ends that device's cycle (its unread points are
//!   `comm_fault`), and retries apply only while the device is online, so a dead device costs
//!   its bus at most one timeout per cycle. A device that failed is then polled on a
//!   backoff (0.5 s doubling to 30 s, or its interval if longer) until it answers; in the
//!   cycles it skips, its points are reported `comm_fault` without touching the line.
//! - Links: TCP is dropped after a timeout or a garbled answer and reopened with backoff;
//!   RTU (serial or over TCP) waits for line silence instead and keeps the port.
//! - Device said no: an illegal-data-address answer to a multi-point read splits the read
//!   (remembered for the life of the task) and the pieces are read at once; other exceptions
//!   make the block's points `decode_error`, except 0x0A/0x0B (a serial gateway found no
//!   path / no answer downstream), which mean `comm_fault`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::decoder::{decode_block, fill_block};
use super::frame::{Answer, ILLEGAL_DATA_ADDRESS, ReadRequest};
pub use super::line::{LineSpec, group_lines};
use super::planner::{ReadBlock, Splits, plan, split_after_rejection};
use super::register::RegisterSpec;
use super::schedule::{Backoff, next_due};
use super::spec::{DeviceSpec, TransportSpec};
use super::transport::{self, Link, LinkError};
use crate::clock::SharedClock;
use crate::model::ReadingBatch;
use crate::model::{Quality, Timestamp};
use crate::state::devices::{HealthBoard, RequestOutcome};
use crate::telemetry::{DeviceLabel, DeviceResult, Metrics};

/// One device on a line.
#[derive(Debug)]
struct Device {
    index: usize,
    spec: DeviceSpec,
    blocks: Vec<ReadBlock>,
    splits: Splits,
    due: Instant,
    /// Shift applied to the grid after the first poll.
    phase: Option<Duration>,
    backoff: Backoff,
    online: Option<bool>,
    label: DeviceLabel,
}

/// How one block's read ended.
enum Outcome {
    Data(Vec<u16>),
    /// The device answered, not with data: the block's points get this quality.
    Refused(Quality),
    /// The read was split and its pieces queued.
    Split,
    /// No usable answer; the device's cycle ends.
    Failed(Quality),
}

/// The Modbus families of [`Metrics`], all a line task records: the whole set is over a
/// kilobyte, and a plant runs a line task per TCP device.
#[derive(Debug)]
struct LineMetrics {
    modbus_polls: Family<DeviceResult, Counter>,
    modbus_requests: Family<DeviceResult, Counter>,
    modbus_poll_duration: Family<DeviceLabel, Histogram, fn() -> Histogram>,
    modbus_overruns: Family<DeviceLabel, Counter>,
    modbus_connects: Family<DeviceResult, Counter>,
    modbus_response_time: Family<DeviceLabel, Histogram, fn() -> Histogram>,
    modbus_device_online: Family<DeviceLabel, Gauge>,
    modbus_consecutive_failures: Family<DeviceLabel, Gauge>,
    modbus_last_success: Family<DeviceLabel, Gauge>,
}

impl LineMetrics {
    fn of(m: &Metrics) -> Self {
        Self {
            modbus_polls: m.modbus_polls.clone(),
            modbus_requests: m.modbus_requests.clone(),
            modbus_poll_duration: m.modbus_poll_duration.clone(),
            modbus_overruns: m.modbus_overruns.clone(),
            modbus_connects: m.modbus_connects.clone(),
            modbus_response_time: m.modbus_response_time.clone(),
            modbus_device_online: m.modbus_device_online.clone(),
            modbus_consecutive_failures: m.modbus_consecutive_failures.clone(),
            modbus_last_success: m.modbus_last_success.clone(),
        }
    }
}

/// The share of its interval device `index` (its place among all devices) is shifted by:
/// the fractional parts of multiples of the golden ratio, which stay evenly spread for any
/// number of devices, and the same on every start.
pub fn spread(index: usize, interval: Duration) -> Duration {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    interval.mul_f64((index as f64 * GOLDEN).fract())
}

/// Polls the devices of one line until cancelled.
#[derive(Debug)]
pub struct Poller {
    transport: TransportSpec,
    devices: Vec<Device>,
    link: Option<Link>,
    link_backoff: Backoff,
    tx: mpsc::Sender<ReadingBatch>,
    clock: SharedClock,
    metrics: LineMetrics,
    health: Arc<HealthBoard>,
    /// Dialled-in DTUs, for a line behind one.
    dtu: Option<Arc<crate::sources::dtu::DtuHub>>,
    /// In a hot-standby pair, whether this node may still drive the bus (always, alone).
    fence: crate::model::pair::Fence,
    /// Poll cycles skipped at a closed fence.
    fenced: Counter,
}

impl Poller {
    /// A poller for `line`, whose devices index `all`.
    pub fn new(
        line: &LineSpec,
        all: &[DeviceSpec],
        tx: mpsc::Sender<ReadingBatch>,
        clock: SharedClock,
        metrics: Metrics,
        health: Arc<HealthBoard>,
    ) -> Self {
        let now = Instant::now();
        let devices: Vec<Device> = line
            .devices
            .iter()
            .filter_map(|&i| all.get(i).map(|d| (i, d.clone())))
            .map(|(index, spec)| {
                let splits = Splits::new();
                let blocks = plan(&spec.registers, spec.limits, &splits);
                let max = Duration::from_secs(30).max(spec.interval);
                Device {
                    index,
                    label: DeviceLabel {
                        device: spec.name.clone(),
                    },
                    blocks,
                    splits,
                    due: now,
                    phase: Some(spread(index, spec.interval)),
                    backoff: Backoff::new(Duration::from_millis(500), max),
                    online: None,
                    spec,
                }
            })
            .collect();
        let min_interval = devices
            .iter()
            .map(|d| d.spec.interval)
            .min()
            .unwrap_or(Duration::from_secs(1));
        Self {
            transport: line.transport.clone(),
            link_backoff: Backoff::new(Duration::from_millis(500).min(min_interval), Duration::from_secs(30)),
            devices,
            link: None,
            tx,
            clock,
            metrics: LineMetrics::of(&metrics),
            health,
            dtu: None,
            fence: crate::model::pair::Fence::open(),
            fenced: Counter::default(),
        }
    }

    /// Polls only while `fence` allows (a node of a hot-standby pair); skipped cycles are
    /// counted in `fenced`.
    pub fn with_fence(mut self, fence: crate::model::pair::Fence, fenced: Counter) -> Self {
        self.fence = fence;
        self.fenced = fenced;
        self
    }

    /// Lets the line reach dialled-in DTUs (`transport = { dtu = "..." }`).
    pub fn with_dtu(mut self, hub: Option<Arc<crate::sources::dtu::DtuHub>>) -> Self {
        self.dtu = hub;
        self
    }

    /// Runs the poll loop until `cancel` fires or the rules engine goes away.
    ///
    /// An `async move` block rather than an `async fn`: the latter holds the poller twice
    /// (the argument and its moved copy) for the life of the task.
    #[allow(clippy::manual_async_fn)]
    pub fn run(mut self, cancel: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        async move { self.poll_loop(cancel).await }
    }

    async fn poll_loop(&mut self, cancel: CancellationToken) {
        loop {
            let Some(i) = (0..self.devices.len()).min_by_key(|&i| self.devices[i].due) else {
                return;
            };
            let due = self.devices[i].due;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = sleep_until(due) => {}
            }
            if !self.fence.may_drive() {
                // This node may no longer be the pair's active: the bus belongs to the peer
                // now, or will shortly. Not one transaction; the cycle is counted as fenced.
                self.fenced.inc();
                let d = &mut self.devices[i];
                d.due = next_due(due, d.spec.interval, Instant::now()).0;
                continue;
            }
            let started = Instant::now();
            let batch = self.poll_device(i).await;
            let now = Instant::now();
            let d = &mut self.devices[i];
            self.metrics
                .modbus_poll_duration
                .get_or_create(&d.label)
                .observe(now.duration_since(started).as_secs_f64());
            let (next, skipped) = next_due(due, d.spec.interval, now);
            d.due = next + d.phase.take().unwrap_or_default();
            if skipped > 0 {
                self.metrics
                    .modbus_overruns
                    .get_or_create(&d.label)
                    .inc_by(u64::from(skipped));
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                sent = self.tx.send(batch) => if sent.is_err() { break },
            }
        }
    }

    /// One poll cycle of device `i`: every one of its points gets exactly one reading.
    async fn poll_device(&mut self, i: usize) -> ReadingBatch {
        let ts = self.clock.now();
        let mut batch = Vec::with_capacity(self.devices[i].spec.points.len());
        let now = Instant::now();
        if !self.devices[i].backoff.ready(now) {
            // Backing off a dead device: report its points without spending bus time on it.
            let d = &self.devices[i];
            for b in &d.blocks {
                fill_block(&d.spec.points, b, Quality::CommFault, ts, &mut batch);
            }
            return batch;
        }
        if self.link.is_none() && self.link_backoff.ready(now) {
            // Boxed, as is recovering a link: rare, and large futures that every line task
            // would otherwise hold space for while it waits.
            Box::pin(self.connect(i)).await;
        }
        let mut queue: VecDeque<ReadBlock> = self.devices[i].blocks.iter().cloned().collect();
        let mut ok = self.link.is_some();
        let mut split = false;
        while let Some(block) = queue.pop_front() {
            if !ok {
                fill_block(&self.devices[i].spec.points, &block, Quality::CommFault, ts, &mut batch);
                continue;
            }
            match self.read_block(i, &block).await {
                Outcome::Data(words) => decode_block(
                    &self.devices[i].spec.points,
                    &self.devices[i].spec.registers,
                    &block,
                    &words,
                    ts,
                    &mut batch,
                ),
                Outcome::Refused(q) => fill_block(&self.devices[i].spec.points, &block, q, ts, &mut batch),
                Outcome::Split => {
                    let d = &self.devices[i];
                    let sub: Vec<RegisterSpec> =
                        block.items.iter().map(|&(s, _)| d.spec.registers[s as usize]).collect();
                    for mut piece in plan(&sub, d.spec.limits, &d.splits).into_iter().rev() {
                        for item in &mut piece.items {
                            item.0 = block.items[item.0 as usize].0;
                        }
                        queue.push_front(piece);
                    }
                    split = true;
                }
                Outcome::Failed(q) => {
                    fill_block(&self.devices[i].spec.points, &block, q, ts, &mut batch);
                    ok = false;
                }
            }
        }
        if split {
            let d = &mut self.devices[i];
            d.blocks = plan(&d.spec.registers, d.spec.limits, &d.splits);
        }
        self.end_cycle(i, ok, ts);
        batch
    }

    async fn connect(&mut self, i: usize) {
        let limit = self.devices[i].spec.timeout;
        match transport::connect(&self.transport, limit, self.dtu.as_ref()).await {
            Ok(link) => {
                self.count_connect(i, "ok");
                self.link_backoff.succeeded();
                self.link = Some(link);
            }
            Err(e) => {
                self.count_connect(i, e.kind());
                self.link_backoff.failed(Instant::now(), jitter());
                if self.devices[i].online != Some(false) {
                    warn!(device = %self.devices[i].spec.name, transport = %self.transport, error = %e,
                          "Cannot open link; the device's points are comm_fault");
                }
                self.health.request(self.devices[i].index, RequestOutcome::LinkError);
            }
        }
    }

    async fn read_block(&mut self, i: usize, block: &ReadBlock) -> Outcome {
        let (attempts, unit, limit, delay) = {
            let d = &self.devices[i];
            let retries = if d.online == Some(true) { d.spec.retries } else { 0 };
            (
                1 + u32::from(retries),
                d.spec.unit_id,
                d.spec.timeout,
                d.spec.inter_request_delay,
            )
        };
        let req = ReadRequest {
            function: block.function,
            start: block.start,
            count: block.count,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(link) = self.link.as_mut() else {
                return Outcome::Failed(Quality::CommFault);
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let started = Instant::now();
            let result = link.exchange(unit, &req, limit).await;
            let took = started.elapsed();
            let name = self.devices[i].spec.name.clone();
            let (outcome, health, result_label) = match result {
                Ok(Answer::Data(words)) => (Outcome::Data(words), RequestOutcome::Answered(took), "ok"),
                Ok(Answer::Exception(code)) => {
                    warn!(device = %name, function = block.function.as_str(), start = block.start, count = block.count,
                          exception = code, "Device answered with a Modbus exception");
                    let o = if code == ILLEGAL_DATA_ADDRESS && block.items.len() > 1 {
                        let new = split_after_rejection(&self.devices[i].spec.registers, block);
                        info!(device = %name, function = block.function.as_str(), splits = ?new.iter().map(|s| s.1).collect::<Vec<_>>(),
                              "Splitting a read the device rejects; remembered");
                        self.devices[i].splits.extend(new);
                        Outcome::Split
                    } else if matches!(code, 0x0A | 0x0B) {
                        Outcome::Failed(Quality::CommFault)
                    } else {
                        Outcome::Refused(Quality::DecodeError)
                    };
                    (o, RequestOutcome::Exception(took), "exception")
                }
                Err(e) => {
                    let label = e.kind();
                    let (health, quality) = match &e {
                        LinkError::Timeout(_) => (RequestOutcome::Timeout, Quality::CommFault),
                        LinkError::Frame(_) => (RequestOutcome::BadFrame, Quality::DecodeError),
                        LinkError::Io(_) => (RequestOutcome::LinkError, Quality::CommFault),
                    };
                    warn!(device = %name, transport = %self.transport, attempt, error = %e, "Modbus request failed");
                    Box::pin(self.recover_link(limit, &e)).await;
                    (Outcome::Failed(quality), health, label)
                }
            };
            let index = self.devices[i].index;
            self.health.request(index, health);
            self.metrics
                .modbus_requests
                .get_or_create(&DeviceResult {
                    device: self.devices[i].spec.name.clone(),
                    result: result_label,
                })
                .inc();
            if let RequestOutcome::Answered(t) | RequestOutcome::Exception(t) = health {
                self.metrics
                    .modbus_response_time
                    .get_or_create(&self.devices[i].label)
                    .observe(t.as_secs_f64());
            }
            match outcome {
                Outcome::Failed(_) if attempt < attempts && self.link.is_some() => continue,
                other => return other,
            }
        }
    }

    /// After a failed request: RTU waits for silence and keeps the port; TCP reconnects.
    async fn recover_link(&mut self, limit: Duration, e: &LinkError) {
        let keep = match self.link.as_mut() {
            // A DTU's link follows the station's connections; it is never reopened here.
            Some(link) if link.is_dtu() => true,
            Some(link) if link.is_rtu() && !matches!(e, LinkError::Io(_)) => link.resync(limit).await,
            _ => false,
        };
        if !keep {
            self.link = None;
            // A broken link backs off; a timeout or garbled answer only costs a reconnect, so
            // other units behind the same TCP gateway are not held back by a silent one.
            if matches!(e, LinkError::Io(_)) {
                self.link_backoff.failed(Instant::now(), jitter());
            }
        }
    }

    fn end_cycle(&mut self, i: usize, ok: bool, ts: Timestamp) {
        let d = &mut self.devices[i];
        let failures = self.health.cycle(d.index, ok, ts);
        if ok {
            d.backoff.succeeded();
        } else {
            d.backoff.failed(Instant::now(), jitter());
        }
        let result = if ok { "ok" } else { "comm_fault" };
        self.metrics
            .modbus_polls
            .get_or_create(&DeviceResult {
                device: d.spec.name.clone(),
                result,
            })
            .inc();
        self.metrics
            .modbus_device_online
            .get_or_create(&d.label)
            .set(i64::from(ok));
        self.metrics
            .modbus_consecutive_failures
            .get_or_create(&d.label)
            .set(i64::try_from(failures).unwrap_or(i64::MAX));
        if ok {
            self.metrics
                .modbus_last_success
                .get_or_create(&d.label)
                .set(ts.as_millis() / 1000);
        }
        match (d.online, ok) {
            (Some(false) | None, true) => info!(device = %d.spec.name, "Device online"),
            (Some(true) | None, false) => {
                warn!(device = %d.spec.name, failures, "Device stopped answering; its points are comm_fault")
            }
            _ => {}
        }
        d.online = Some(ok);
    }

    fn count_connect(&self, i: usize, result: &'static str) {
        let l = DeviceResult {
            device: self.devices[i].spec.name.clone(),
            result,
        };
        self.metrics.modbus_connects.get_or_create(&l).inc();
    }
}

fn jitter() -> f64 {
    rand::random_range(0.8..1.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_task_stays_small() {
        // One task per line runs for the life of the gateway, thousands on a large plant.
        let dev = DeviceSpec {
            name: "d".into(),
            profile: "p".into(),
            transport: super::super::spec::TransportSpec::Tcp("127.0.0.1:502".into()),
            unit_id: 1,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 0,
            inter_request_delay: Duration::ZERO,
            limits: super::super::planner::ReadLimits::default(),
            points: Vec::new().into(),
            registers: Vec::new().into(),
        };
        let devices = [dev];
        let line = &group_lines(&devices)[0];
        let (tx, _rx) = mpsc::channel(1);
        let health = HealthBoard::new(&devices);
        let poller = Poller::new(line, &devices, tx, crate::clock::system(), Metrics::new(), health);
        let task = poller.run(CancellationToken::new());
        let size = std::mem::size_of_val(&task);
        eprintln!("line task future: {size} bytes");
        assert!(size <= 2048, "line task future: {size} bytes");
    }

    #[test]
    fn devices_are_spread_evenly_over_their_interval() {
        let interval = Duration::from_millis(100);
        for n in [7usize, 100, 3000] {
            let bins = 10.min(n);
            let mut count = vec![0usize; bins];
            for i in 0..n {
                let p = spread(i, interval);
                assert!(p < interval);
                count[(p.as_secs_f64() / interval.as_secs_f64() * bins as f64) as usize] += 1;
            }
            let most = *count.iter().max().unwrap();
            // Within one device of even, or 10 % for many devices.
            assert!(most <= n / bins + 1 + n / bins / 10, "{n}: {count:?}");
        }
        assert_eq!(spread(0, interval), Duration::ZERO);
    }
}
