//! Wall-clock time for readings and alarms, behind a trait so tests can drive it by hand.
//!
//! Scheduling (poll intervals, timeouts) uses tokio's timer, which tests can pause; this clock
//! only stamps data. It is the one module allowed to call `SystemTime::now`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::Timestamp;

/// A source of timestamps for readings and alarm transitions.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the Unix epoch.
    fn now(&self) -> Timestamp;

    /// Whether it follows real time, so that a step against the monotonic clock is a fault
    /// worth reporting; a clock a test moves by hand steps on purpose.
    fn is_wall(&self) -> bool {
        false
    }
}

/// Shared handle to whichever clock the gateway runs on.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of wall time
    fn now(&self) -> Timestamp {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp::from_nanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
    }

    fn is_wall(&self) -> bool {
        true
    }
}

/// The system clock plus an offset that can be stepped: a wall clock set by hand while the
/// gateway runs, for tests of clock-jump detection.
#[derive(Debug, Default)]
pub struct SteppedClock {
    offset_nanos: AtomicI64,
}

impl SteppedClock {
    /// Steps the clock by `by` (forward if positive).
    pub fn step(&self, by_nanos: i64) {
        self.offset_nanos.fetch_add(by_nanos, Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().as_nanos();
        Timestamp::from_nanos(now.saturating_add(self.offset_nanos.load(Ordering::SeqCst)))
    }

    fn is_wall(&self) -> bool {
        true
    }
}

/// A clock that moves only when told to; for tests of delays and retention.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicI64,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            nanos: AtomicI64::new(start.as_nanos()),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.nanos.store(to.as_nanos(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// The system clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}
