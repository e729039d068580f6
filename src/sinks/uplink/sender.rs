//! The sender of one uplink: outbox to platform, one payload at a time, urgent lane first.
//! A payload leaves the outbox only on the transport's `Ok`; on failure the sender backs off
//! (doubling, with jitter, up to `retry_max`) and retries the same payload, so the platform
//! sees payloads in queue order. A backlog is replayed at `replay_rate`. The sender keeps the
//! uplink's late-delivery log ([`super::late`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::late::LateLog;
use super::outbox::{Lane, Outbox};
use super::{Transport, TransportError};
use crate::clock::SharedClock;
use crate::telemetry::uplink::{UplinkLabel, UplinkMetrics, UplinkReason};

/// Shortest wait between delivery attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Outbox to platform.
pub(super) struct Sender {
    pub(super) name: String,
    pub(super) transport: Box<dyn Transport>,
    pub(super) outbox: Arc<Mutex<Outbox>>,
    pub(super) notify: Arc<Notify>,
    pub(super) clock: SharedClock,
    pub(super) metrics: UplinkMetrics,
    pub(super) pace: Duration,
    pub(super) retry_max: Duration,
    pub(super) late: LateLog,
    /// When a failed write of the late-delivery log was last logged.
    pub(super) late_warned: Option<tokio::time::Instant>,
    /// In a hot-standby pair, whether this node may still send to the regulator.
    pub(super) fence: crate::model::pair::Fence,
    /// Sends held back at a closed fence.
    pub(super) fenced: prometheus_client::metrics::counter::Counter,
}

/// Delay before retry `attempt` (0-based): doubling from [`BACKOFF_MIN`] to `max`, half
/// fixed and half random.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = BACKOFF_MIN.saturating_mul(1u32 << attempt.min(16)).min(max);
    base / 2 + base.mul_f64(rand::rng().random_range(0.0..0.5))
}

impl Sender {
    fn label(&self) -> UplinkLabel {
        UplinkLabel {
            uplink: self.name.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `event` to the late-delivery log; a failed write is logged at most once a
    /// minute (the next event of the same kind tries again, as the log's state did not move).
    fn late_event(&mut self, event: impl FnOnce(&mut LateLog) -> std::io::Result<()>) {
        if let Err(e) = event(&mut self.late)
            && self.late_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.late_warned = Some(tokio::time::Instant::now());
            warn!(uplink = %self.name, error = %e, "Cannot write the uplink's late-delivery log");
        }
    }

    /// Delivers until `stop`; payloads queued before `started` are a backlog.
    pub(super) async fn run(mut self, started: crate::model::Timestamp, stop: CancellationToken) {
        let mut attempt = 0u32;
        let mut last_normal: Option<tokio::time::Instant> = None;
        // Payloads queued before this instant are a backlog, replayed at `replay_rate`: what
        // was left from before the start, and after an outage what piled up during it.
        let mut replay_until = started;
        // When the platform last acknowledged a payload (the backlog's last one, once the
        // next payload is live data or there is none).
        let mut last_ack: Option<crate::model::Timestamp> = None;
        loop {
            if stop.is_cancelled() {
                return;
            }
            let next = self.lock().next(self.clock.now());
            let q = match next {
                Ok(Some(q)) => q,
                Ok(None) => {
                    // Nothing left: a backlog still owed went out with the last acknowledgement
                    // (or, owed by an earlier run with nothing left in the outbox, before now).
                    let at = last_ack.unwrap_or_else(|| self.clock.now());
                    self.late_event(|l| l.backlog_delivered(at));
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                Err(e) => {
                    warn!(uplink = %self.name, error = %e, "Cannot read the uplink outbox; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            };
            if q.created < replay_until {
                // Left by an earlier run with no span open: the regulator is getting it late.
                self.late_event(|l| l.backlog_found(q.created));
            } else if q.lane == Lane::Normal
                && let Some(at) = last_ack
            {
                // Live data is next in the queue: the backlog before it is delivered.
                self.late_event(|l| l.backlog_delivered(at));
            }
            if q.lane == Lane::Normal
                && q.created < replay_until
                && let Some(t) = last_normal
            {
                let due = t + self.pace;
                if tokio::time::Instant::now() < due {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            if !self.fence.may_drive() {
                // Two nodes of a pair must never both send to a regulator: the payload stays
                // queued for whichever node is active.
                self.fenced.inc();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                continue;
            }
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.transport.deliver(&q.payload) => r,
            };
            let items = u64::from(q.payload.items);
            match outcome {
                Ok(()) => {
                    if let Err(e) = self.lock().ack(q.lane, q.seq) {
                        warn!(uplink = %self.name, error = %e, "Cannot mark a payload delivered; it may be sent again");
                    }
                    let l = self.label();
                    self.metrics.delivered.get_or_create(&l).inc();
                    self.metrics.delivered_records.get_or_create(&l).inc_by(items);
                    self.metrics.connected.get_or_create(&l).set(1);
                    self.metrics
                        .last_ack
                        .get_or_create(&l)
                        .set(self.clock.now().as_nanos() / 1_000_000_000);
                    let now = self.clock.now();
                    self.late_event(|l| l.delivered(now));
                    last_ack = Some(now);
                    if attempt > 0 {
                        info!(uplink = %self.name, "Uplink platform reachable again; replaying");
                        replay_until = now;
                    }
                    attempt = 0;
                    if q.lane == Lane::Normal {
                        last_normal = Some(tokio::time::Instant::now());
                    }
                }
                Err(TransportError::Rejected(why)) => {
                    warn!(uplink = %self.name, records = items, reason = %why, "Uplink platform refused a payload for good; dropped");
                    if let Err(e) = self.lock().ack(q.lane, q.seq) {
                        warn!(uplink = %self.name, error = %e, "Cannot remove a refused payload");
                    }
                    self.metrics.drop(&self.name, "rejected", items);
                    self.metrics.connected.get_or_create(&self.label()).set(1);
                }
                Err(e) => {
                    self.lock().rewind(q.lane);
                    self.late_event(|l| l.failed(q.created));
                    let (reason, up) = match &e {
                        TransportError::Unreachable(_) => ("unreachable", 0),
                        _ => ("not_acknowledged", 1),
                    };
                    self.metrics
                        .retried
                        .get_or_create(&UplinkReason {
                            uplink: self.name.clone(),
                            reason,
                        })
                        .inc();
                    self.metrics.connected.get_or_create(&self.label()).set(up);
                    let wait = backoff(attempt, self.retry_max);
                    if attempt == 0 {
                        warn!(uplink = %self.name, error = %e, "Uplink delivery failed; retrying with backoff");
                    } else {
                        debug!(uplink = %self.name, error = %e, attempt, ?wait, "Uplink delivery failed again");
                    }
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let max = Duration::from_secs(60);
        for attempt in 0..30 {
            let w = backoff(attempt, max);
            let base = BACKOFF_MIN.saturating_mul(1u32 << attempt.min(16)).min(max);
            assert!(w >= base / 2 && w <= base, "{attempt}: {w:?}");
        }
        assert!(backoff(40, max) <= max);
    }
}
