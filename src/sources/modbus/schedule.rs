//! Pure scheduling arithmetic for the line task: fixed-rate poll times and the backoff of a
//! device or link that stopped answering. No clock is read here: `now` comes in.

use std::time::Duration;

use tokio::time::Instant;

/// The next poll time after a cycle that was due at `due`, and how many ticks were skipped.
///
/// Fixed rate: ticks stay on the grid `due + k * interval`, so a slow cycle never shifts
/// later ones (no drift); ticks that passed while the cycle ran are skipped and counted as
/// overruns, never queued up and run back to back.
pub fn next_due(due: Instant, interval: Duration, now: Instant) -> (Instant, u32) {
    let next = due + interval;
    if next > now || interval.is_zero() {
        return (next, 0);
    }
    let behind = now.duration_since(next);
    let skipped = (behind.as_nanos() / interval.as_nanos()) as u32 + 1;
    (next + interval * skipped, skipped)
}

/// Exponential backoff with jitter, for reconnects and for polling a dead device less often.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    not_before: Option<Instant>,
}

impl Backoff {
    /// Starts at `min` after the first failure, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max: max.max(min),
            not_before: None,
        }
    }

    /// True if an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// Records a failure at `now`; `jitter` in 0.8..1.2 spreads devices that failed together.
    pub fn failed(&mut self, now: Instant, jitter: f64) {
        self.not_before = Some(now + self.next.mul_f64(jitter.clamp(0.5, 1.5)));
        self.next = (self.next * 2).min(self.max);
    }

    /// Records a success: the next failure starts from `min` again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
        self.not_before = None;
    }

    /// True while backing off.
    pub fn waiting(&self) -> bool {
        self.not_before.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_on_time_cycle_keeps_the_grid() {
        let t0 = Instant::now();
        assert_eq!(next_due(t0, S, t0 + Duration::from_millis(300)), (t0 + S, 0));
    }

    #[test]
    fn a_slow_cycle_skips_passed_ticks_and_stays_on_the_grid() {
        let t0 = Instant::now();
        // The cycle due at t0 ended at t0 + 2.5 s: ticks at 1 s and 2 s are gone.
        let (next, skipped) = next_due(t0, S, t0 + Duration::from_millis(2500));
        assert_eq!((next, skipped), (t0 + 3 * S, 2));
        // Ending exactly on a tick skips that tick too: it is already due, not in the future.
        assert_eq!(next_due(t0, S, t0 + S), (t0 + 2 * S, 1));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_on_success() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
        assert!(b.ready(t0));
        b.failed(t0, 1.0);
        assert!(!b.ready(t0 + Duration::from_millis(499)));
        assert!(b.ready(t0 + Duration::from_millis(500)));
        b.failed(t0, 1.0);
        assert!(b.ready(t0 + S) && !b.ready(t0 + Duration::from_millis(999)));
        b.failed(t0, 1.0);
        b.failed(t0, 1.0);
        assert!(b.ready(t0 + 2 * S), "capped at 2 s");
        b.succeeded();
        assert!(b.ready(t0) && !b.waiting());
    }
}
