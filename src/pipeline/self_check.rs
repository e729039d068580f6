//! The gateway watching itself (GB 51108 asks an online monitoring system to detect its own
//! faults): every few seconds it samples the data disk, the journal and history writers, the
//! stores and the wall clock, feeds each finding to its `gateway:<check>` alarm and publishes
//! the ones that make it unfit as `/readyz` reasons.
//!
//! The judging is [`Checker`], pure and driven by [`Sample`]s; the task only gathers them.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::SharedClock;
use crate::health::Readiness;
use crate::model::{ConditionKind, Diagnosis, Timestamp};
use crate::state::LiveState;
use crate::telemetry::{LogEvery, Metrics, ReasonLabel, StoreLabel};

/// How often the checks run.
pub(super) const EVERY: Duration = Duration::from_secs(2);

/// A storage write failure keeps its alarm this long after the last one, so a failure on
/// every other write does not chatter.
const STORAGE_HOLD: Duration = Duration::from_secs(60);

/// A storage failure stays a `/readyz` reason this long after the last one: readiness is
/// about now, the alarm about what the duty officer should know.
const STORAGE_REASON_HOLD: Duration = Duration::from_secs(10);

/// A clock step keeps its alarm (and `/readyz` reason) this long: it is an event, and the
/// duty officer must see it even if it happened between two glances.
const CLOCK_HOLD: Duration = Duration::from_secs(300);

/// A pair member that stays unable to hand over this long raises `gateway:pair_degraded`:
/// longer than a peer's restart or a switch-over, after which the peer reconnects.
const PAIR_GRACE: Duration = Duration::from_secs(10);

/// Replication this far behind counts as degraded: a switch-over now would lose that much.
const PAIR_LAG_MS: u64 = 5_000;

/// The pair as one round sees it (on the active node of a pair).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PairSample {
    pub(super) peer_up: bool,
    pub(super) witness_up: bool,
    pub(super) lag_ms: u64,
}

/// What one round of checks sees.
#[derive(Debug, Clone, Default)]
pub(super) struct Sample {
    /// The gateway's clock.
    pub(super) wall: Timestamp,
    /// Monotonic time since the checks started.
    pub(super) mono: Duration,
    /// Whether the clock is the real wall clock (a hand-driven test clock steps on purpose).
    pub(super) wall_clock: bool,
    /// Free bytes on the data directory's filesystem, if it could be read.
    pub(super) free_disk: Option<u64>,
    /// Alarm transitions waiting for the journal.
    pub(super) journal_held: i64,
    /// Journal write errors since start.
    pub(super) journal_errors: u64,
    /// Readings lost to history write errors since start.
    pub(super) history_lost: u64,
    /// Undelivered bytes in each store's buffer.
    pub(super) backlog: Vec<(String, u64)>,
    /// Stores that cannot send at all, with why.
    pub(super) unusable: Vec<(String, String)>,
    /// The hot-standby pair, when this gateway is its active node.
    pub(super) pair: Option<PairSample>,
}

/// The limits the checks judge against (`[ops]`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    pub(super) min_free_disk: u64,
    pub(super) clock_jump_over: Duration,
    pub(super) buffer_limit: Option<u64>,
}

impl From<&Readiness> for Limits {
    fn from(r: &Readiness) -> Self {
        Self {
            min_free_disk: r.min_free_disk,
            clock_jump_over: r.clock_jump_over,
            buffer_limit: r.buffer_limit,
        }
    }
}

/// One round's outcome: a finding per check, and the `/readyz` reasons among them (backlog,
/// outputs and held journal transitions already have their own reasons there), each with the
/// check it comes from.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Findings {
    pub(super) diagnoses: Vec<Diagnosis>,
    pub(super) reasons: Vec<(ConditionKind, String)>,
}

/// Judges samples; keeps what must outlive one round (counter baselines, holds).
#[derive(Debug, Default)]
pub(super) struct Checker {
    last: Option<(Timestamp, Duration)>,
    journal_errors: u64,
    history_lost: u64,
    /// When storage last failed, and readings lost to history since the hold began.
    storage_failed: Option<(Duration, u64)>,
    /// When the clock last stepped, and by how many seconds.
    clock_step: Option<(Duration, f64)>,
    /// Since when the pair has been unable to hand over.
    pair_degraded: Option<Duration>,
}

const MIB: f64 = 1024.0 * 1024.0;

impl Checker {
    /// Judges one sample.
    pub(super) fn round(&mut self, s: &Sample, limits: Limits) -> Findings {
        let mut f = Findings::default();

        // Disk.
        let free = s.free_disk;
        let low = limits.min_free_disk > 0 && free.is_some_and(|b| b < limits.min_free_disk);
        if low && let Some(b) = free {
            f.reasons.push((ConditionKind::DiskSpace, format!(
                "data disk has {} free, below ops.min_free_disk = {}: history, the alarm journal and store buffers fail when it is full",
                ByteSize(b),
                ByteSize(limits.min_free_disk)
            )));
        }
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::DiskSpace,
            active: low,
            value: free.map_or(f64::NAN, |b| (b as f64 / MIB).floor()),
        });

        // Journal and history writes.
        let new_journal = s.journal_errors.saturating_sub(self.journal_errors);
        let new_history = s.history_lost.saturating_sub(self.history_lost);
        self.journal_errors = s.journal_errors;
        self.history_lost = s.history_lost;
        if new_journal > 0 || new_history > 0 || s.journal_held > 0 {
            let lost = self.storage_failed.map_or(0, |(_, n)| n) + new_history;
            self.storage_failed = Some((s.mono, lost));
        }
        if let Some((at, _)) = self.storage_failed
            && s.mono.saturating_sub(at) >= STORAGE_HOLD
        {
            self.storage_failed = None;
        }
        if let Some((at, lost)) = self.storage_failed
            && lost > 0
            && s.mono.saturating_sub(at) < STORAGE_REASON_HOLD
        {
            f.reasons.push((
                ConditionKind::StorageWrite,
                format!("history writes are failing: {lost} readings lost since the first failure (see the log)"),
            ));
        }
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::StorageWrite,
            active: self.storage_failed.is_some(),
            value: self.storage_failed.map_or(f64::NAN, |(_, n)| n as f64),
        });

        // Store backlog.
        let worst = s.backlog.iter().map(|(_, b)| *b).max().unwrap_or(0);
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::StoreBacklog,
            active: limits.buffer_limit.is_some_and(|l| worst > l),
            value: (worst as f64 / MIB).floor(),
        });

        // Outputs that cannot send at all.
        // No figure: the `/readyz` reason and the console's banner name the store and why.
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::OutputFault,
            active: !s.unusable.is_empty(),
            value: f64::NAN,
        });

        // Wall clock against monotonic time.
        if let Some((wall, mono)) = self.last
            && s.wall_clock
        {
            let wall_d = (s.wall.as_nanos() - wall.as_nanos()) as f64 / 1e9;
            let mono_d = s.mono.saturating_sub(mono).as_secs_f64();
            let step = wall_d - mono_d;
            if step.abs() >= limits.clock_jump_over.as_secs_f64() {
                self.clock_step = Some((s.mono, step.round()));
            }
        }
        self.last = Some((s.wall, s.mono));
        if let Some((at, _)) = self.clock_step
            && s.mono.saturating_sub(at) >= CLOCK_HOLD
        {
            self.clock_step = None;
        }
        if let Some((at, step)) = self.clock_step {
            f.reasons.push((
                ConditionKind::ClockJump,
                format!(
                    "the wall clock stepped by {step:+} s {} s ago: readings either side of the step do not compare in time",
                    s.mono.saturating_sub(at).as_secs()
                ),
            ));
        }
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::ClockJump,
            active: self.clock_step.is_some(),
            value: self.clock_step.map_or(f64::NAN, |(_, step)| step),
        });

        // The standby pair: could the peer take over if this node failed now?
        let degraded = s
            .pair
            .is_some_and(|p| !p.peer_up || !p.witness_up || p.lag_ms > PAIR_LAG_MS);
        if degraded {
            self.pair_degraded.get_or_insert(s.mono);
        } else {
            self.pair_degraded = None;
        }
        let for_long = self
            .pair_degraded
            .map(|since| s.mono.saturating_sub(since))
            .filter(|d| *d >= PAIR_GRACE);
        f.diagnoses.push(Diagnosis {
            kind: ConditionKind::PairDegraded,
            active: for_long.is_some(),
            value: for_long.map_or(f64::NAN, |d| d.as_secs() as f64),
        });
        f
    }
}

/// What the self-check task needs.
pub(super) struct SelfCheck {
    pub(super) data_dir: PathBuf,
    pub(super) readiness: Arc<RwLock<Readiness>>,
    pub(super) metrics: Metrics,
    pub(super) clock: SharedClock,
    pub(super) state: Arc<LiveState>,
    pub(super) rules: mpsc::Sender<Diagnosis>,
    /// The hot-standby pair, when this gateway is its active node.
    pub(super) pair: Option<Arc<crate::model::pair::PairView>>,
}

impl SelfCheck {
    /// Runs the checks every [`EVERY`] until `stop` fires.
    pub(super) async fn run(self, stop: CancellationToken) {
        let start = tokio::time::Instant::now();
        let mut checker = Checker::default();
        // An unreadable free space is retried every round but logged at most every 10 min.
        let mut disk_log = LogEvery::new(Duration::from_secs(600));
        let mut was: Vec<ConditionKind> = Vec::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (limits, stores) = {
                let r = self.readiness.read().unwrap_or_else(|p| p.into_inner());
                (Limits::from(&*r), r.stores.clone())
            };
            let sample = self.sample(start.elapsed(), &stores, &mut disk_log).await;
            if let Some(free) = sample.free_disk {
                self.metrics.data_disk_free.set(i64::try_from(free).unwrap_or(i64::MAX));
            }
            let found = checker.round(&sample, limits);
            // Logged when a finding starts or ends, not every round (its figures change).
            for (kind, text) in &found.reasons {
                if !was.contains(kind) {
                    warn!(check = %kind, finding = %text, "Gateway self-check found a fault");
                }
            }
            for kind in &was {
                if !found.reasons.iter().any(|(k, _)| k == kind) {
                    info!(check = %kind, "Gateway self-check: fault gone");
                }
            }
            was = found.reasons.iter().map(|(k, _)| *k).collect();
            self.state
                .set_diagnostics(found.reasons.into_iter().map(|(_, text)| text).collect());
            for d in found.diagnoses {
                // Bounded and rare (five per round); a full queue means the rules task is
                // stalled, which `/readyz` already reports, and the next round resends.
                let _ = self.rules.try_send(d);
            }
            self.metrics.self_checks.inc();
        }
    }

    async fn sample(&self, mono: Duration, stores: &[String], disk_log: &mut LogEvery) -> Sample {
        let dir = self.data_dir.clone();
        // statvfs is quick on a local disk, but a blocked filesystem must not block the runtime.
        let free = match tokio::task::spawn_blocking(move || free_bytes(&dir)).await {
            Ok(Ok(free)) => Some(free),
            Ok(Err(e)) => {
                if let Some(held) = disk_log.hit() {
                    warn!(dir = %self.data_dir.display(), error = %e, failures_not_logged = held,
                          "Cannot read the data disk's free space");
                }
                None
            }
            Err(_) => None,
        };
        let m = &self.metrics;
        let unusable = m
            .tsdb
            .unusable_reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(store, _)| stores.contains(store))
            .map(|(s, r)| (s.clone(), r.clone()))
            .collect();
        Sample {
            wall: self.clock.now(),
            mono,
            wall_clock: self.clock.is_wall(),
            free_disk: free,
            journal_held: m.journal_held.get(),
            journal_errors: m.journal_errors.get(),
            history_lost: m
                .history_dropped
                .get_or_create(&ReasonLabel { reason: "write_error" })
                .get(),
            backlog: stores
                .iter()
                .map(|s| {
                    let b = m
                        .tsdb
                        .buffer_pending_bytes
                        .get_or_create(&StoreLabel { store: s.clone() })
                        .get();
                    (s.clone(), u64::try_from(b).unwrap_or(0))
                })
                .collect(),
            unusable,
            pair: self.pair.as_ref().map(|v| PairSample {
                peer_up: v.peer_up(),
                witness_up: v.witness_up(),
                lag_ms: v.lag().1,
            }),
        }
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
fn free_bytes(dir: &std::path::Path) -> Result<u64, rustix::io::Errno> {
    rustix::fs::statvfs(dir).map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn limits() -> Limits {
        Limits {
            min_free_disk: GIB,
            clock_jump_over: Duration::from_secs(30),
            buffer_limit: Some(100 * 1024 * 1024),
        }
    }

    fn sample(secs: u64) -> Sample {
        Sample {
            wall: Timestamp::from_millis(1_700_000_000_000 + secs as i64 * 1000),
            mono: Duration::from_secs(secs),
            wall_clock: true,
            free_disk: Some(10 * GIB),
            ..Sample::default()
        }
    }

    fn active(f: &Findings, kind: ConditionKind) -> bool {
        f.diagnoses.iter().find(|d| d.kind == kind).is_some_and(|d| d.active)
    }

    #[test]
    fn a_pair_that_cannot_hand_over_for_ten_seconds_raises_its_alarm_and_recovery_clears_it() {
        let mut c = Checker::default();
        let good = PairSample {
            peer_up: true,
            witness_up: true,
            lag_ms: 0,
        };
        let at = |secs: u64, pair: PairSample| Sample {
            pair: Some(pair),
            ..sample(secs)
        };
        assert!(!active(&c.round(&at(0, good), limits()), ConditionKind::PairDegraded));
        let no_peer = PairSample { peer_up: false, ..good };
        // A peer restarting reconnects within the grace: no alarm.
        assert!(!active(
            &c.round(&at(2, no_peer), limits()),
            ConditionKind::PairDegraded
        ));
        assert!(!active(
            &c.round(&at(10, no_peer), limits()),
            ConditionKind::PairDegraded
        ));
        let f = c.round(&at(12, no_peer), limits());
        assert!(active(&f, ConditionKind::PairDegraded));
        let d = f
            .diagnoses
            .iter()
            .find(|d| d.kind == ConditionKind::PairDegraded)
            .unwrap();
        assert_eq!(d.value, 10.0, "seconds degraded");
        assert!(f.reasons.is_empty(), "the active still monitors: not a /readyz reason");
        assert!(!active(&c.round(&at(14, good), limits()), ConditionKind::PairDegraded));
        // The witness lost, and replication behind, count the same way.
        let no_witness = PairSample {
            witness_up: false,
            ..good
        };
        c.round(&at(20, no_witness), limits());
        assert!(active(
            &c.round(&at(30, no_witness), limits()),
            ConditionKind::PairDegraded
        ));
        c.round(&at(31, good), limits());
        let behind = PairSample { lag_ms: 6_000, ..good };
        c.round(&at(40, behind), limits());
        assert!(active(&c.round(&at(50, behind), limits()), ConditionKind::PairDegraded));
        // A gateway outside a pair never raises it.
        let mut alone = Checker::default();
        alone.round(&sample(0), limits());
        assert!(!active(
            &alone.round(&sample(100), limits()),
            ConditionKind::PairDegraded
        ));
    }

    #[test]
    fn a_healthy_gateway_finds_nothing_and_reports_every_check() {
        let mut c = Checker::default();
        let f = c.round(&sample(0), limits());
        assert!(f.reasons.is_empty(), "{f:?}");
        assert_eq!(f.diagnoses.len(), ConditionKind::SELF_DIAGNOSTIC.len());
        assert!(f.diagnoses.iter().all(|d| !d.active));
    }

    #[test]
    fn low_disk_is_found_with_its_free_mebibytes_and_zero_turns_it_off() {
        let mut c = Checker::default();
        let mut s = sample(0);
        s.free_disk = Some(GIB / 2);
        let f = c.round(&s, limits());
        assert!(active(&f, ConditionKind::DiskSpace));
        assert_eq!(f.diagnoses[0].value, 512.0);
        assert!(
            f.reasons[0].1.starts_with("data disk has 512.0 MiB free"),
            "{:?}",
            f.reasons
        );
        let off = Limits {
            min_free_disk: 0,
            ..limits()
        };
        assert!(!active(&c.round(&s, off), ConditionKind::DiskSpace));
        // An unreadable free space is not taken as low.
        s.free_disk = None;
        assert!(!active(&c.round(&s, limits()), ConditionKind::DiskSpace));
    }

    #[test]
    fn history_failures_hold_for_a_minute_after_the_last_one() {
        let mut c = Checker::default();
        let mut s = sample(0);
        c.round(&s, limits());
        s = sample(2);
        s.history_lost = 40;
        let f = c.round(&s, limits());
        assert!(active(&f, ConditionKind::StorageWrite));
        assert_eq!(
            f.reasons,
            [(
                ConditionKind::StorageWrite,
                "history writes are failing: 40 readings lost since the first failure (see the log)".to_string()
            )]
        );
        s = sample(30);
        s.history_lost = 50;
        let f = c.round(&s, limits());
        assert!(f.reasons[0].1.contains("50 readings"), "{:?}", f.reasons);
        s = sample(39);
        assert_eq!(
            c.round(&s, limits()).reasons.len(),
            1,
            "a reason for 10 s after the last failure"
        );
        s = sample(40);
        assert!(c.round(&s, limits()).reasons.is_empty());
        s = sample(89);
        assert!(
            active(&c.round(&s, limits()), ConditionKind::StorageWrite),
            "59 s after the last failure"
        );
        s = sample(90);
        let f = c.round(&s, limits());
        assert!(!active(&f, ConditionKind::StorageWrite));
        assert!(f.reasons.is_empty());
    }

    #[test]
    fn held_journal_transitions_are_a_storage_fault_without_a_second_reason() {
        let mut c = Checker::default();
        let mut s = sample(0);
        s.journal_held = 3;
        s.journal_errors = 5;
        let f = c.round(&s, limits());
        assert!(active(&f, ConditionKind::StorageWrite));
        assert!(f.reasons.is_empty(), "held transitions have their own /readyz reason");
    }

    #[test]
    fn backlog_and_unusable_outputs_follow_their_inputs() {
        let mut c = Checker::default();
        let mut s = sample(0);
        s.backlog = vec![("a".into(), 50 << 20), ("b".into(), 150 << 20)];
        s.unusable = vec![("b".into(), "token_env `X` is not set".into())];
        let f = c.round(&s, limits());
        assert!(active(&f, ConditionKind::StoreBacklog));
        assert_eq!(f.diagnoses[2].value, 150.0);
        assert!(active(&f, ConditionKind::OutputFault));
        let none = Limits {
            buffer_limit: None,
            ..limits()
        };
        assert!(!active(&c.round(&s, none), ConditionKind::StoreBacklog));
    }

    #[test]
    fn a_clock_step_is_found_either_way_and_held_for_five_minutes() {
        let mut c = Checker::default();
        c.round(&sample(0), limits());
        // Ten seconds pass on both clocks: no step.
        assert!(!active(&c.round(&sample(10), limits()), ConditionKind::ClockJump));
        // The wall clock is set back 20 minutes.
        let mut s = sample(12);
        s.wall = Timestamp::from_millis(s.wall.as_millis() - 1_200_000);
        let f = c.round(&s, limits());
        assert!(active(&f, ConditionKind::ClockJump));
        assert_eq!(f.diagnoses[4].value, -1200.0);
        assert!(
            f.reasons[0].1.starts_with("the wall clock stepped by -1200 s 0 s ago"),
            "{:?}",
            f.reasons
        );
        // Time runs on normally from the new setting: still held, then gone.
        let later = |secs: u64| {
            let mut s = sample(secs);
            s.wall = Timestamp::from_millis(s.wall.as_millis() - 1_200_000);
            s
        };
        assert!(active(&c.round(&later(300), limits()), ConditionKind::ClockJump));
        assert!(!active(&c.round(&later(312), limits()), ConditionKind::ClockJump));
        // A step below the limit, or a hand-driven clock, is not one.
        let mut s = later(314);
        s.wall = Timestamp::from_millis(s.wall.as_millis() + 20_000);
        assert!(!active(&c.round(&s, limits()), ConditionKind::ClockJump));
        let mut s = later(316);
        s.wall_clock = false;
        s.wall = Timestamp::from_millis(0);
        assert!(!active(&c.round(&s, limits()), ConditionKind::ClockJump));
    }
}
