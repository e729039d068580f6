//! The gateway's run log (`run.log` and `run.beat` in the data dir): when it started, when it
//! stopped, and when it was last seen alive, so the time it was not running is a counted gap
//! of every point (`gateway_down`) rather than an invisible one.
//!
//! Why a file of its own: history holds readings, not the gateway's own life; a quiet point and
//! a stopped gateway look alike there, and a crash leaves no row at all. `run.log` takes a line
//! at each start and clean stop (appended, synced: a few lines per restart, so it stays tiny);
//! `run.beat` holds one timestamp, replaced every [`BEAT`] (a bounded write rate). At a start
//! after a crash (no `stop` line after the last `start`) the last beat goes in as an `alive`
//! line: the downtime then runs from that beat to the new start, at most one beat longer than
//! the truth, never shorter.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::clock::SharedClock;
use crate::model::Timestamp;

/// How often `run.beat` is replaced.
pub const BEAT: Duration = Duration::from_secs(10);
/// Most lines read from `run.log` (a restart writes two or three).
const MAX_LINES: usize = 200_000;

/// A line of the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Start(i64),
    Stop(i64),
    Alive(i64),
}

/// The run log of one data dir.
#[derive(Debug)]
pub struct RunLog {
    log: PathBuf,
    beat: PathBuf,
}

impl RunLog {
    /// The run log in `data_dir` (nothing is read or written yet).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            log: data_dir.join("run.log"),
            beat: data_dir.join("run.beat"),
        }
    }

    fn append(&self, line: &str) -> io::Result<()> {
        let mut f = OpenOptions::new().create(true).append(true).open(&self.log)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }

    fn marks(&self) -> io::Result<Vec<Mark>> {
        let f = match File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in BufReader::new(f).lines().take(MAX_LINES) {
            let line = line?;
            let mut parts = line.split_whitespace();
            let (Some(word), Some(Ok(ms))) = (parts.next(), parts.next().map(str::parse::<i64>)) else {
                continue;
            };
            out.push(match word {
                "start" => Mark::Start(ms),
                "stop" => Mark::Stop(ms),
                "alive" => Mark::Alive(ms),
                _ => continue,
            });
        }
        Ok(out)
    }

    /// Records a start at `now`; after an unclean stop, first the last heartbeat.
    pub fn started(&self, now: Timestamp) -> io::Result<()> {
        if let Some(Mark::Start(_) | Mark::Alive(_)) = self.marks()?.last() {
            match std::fs::read_to_string(&self.beat).map(|t| t.trim().parse::<i64>()) {
                Ok(Ok(ms)) => self.append(&format!("alive {ms}\n"))?,
                _ => warn!(file = %self.beat.display(), "No heartbeat of the last run: its downtime is not known"),
            }
        }
        self.beat(now)?;
        self.append(&format!("start {}\n", now.as_millis()))
    }

    /// Records that the gateway was alive at `now`.
    pub fn beat(&self, now: Timestamp) -> io::Result<()> {
        let tmp = self.beat.with_extension("beat.tmp");
        std::fs::write(&tmp, format!("{}\n", now.as_millis()))?;
        std::fs::rename(&tmp, &self.beat)
    }

    /// Records a clean stop at `now`.
    pub fn stopped(&self, now: Timestamp) -> io::Result<()> {
        self.append(&format!("stop {}\n", now.as_millis()))
    }

    /// Spans the gateway was not running that overlap `[from, to)`: from the last time it was
    /// seen (a clean stop, else its last heartbeat) to the next start, oldest first.
    pub fn downtimes(&self, from: Timestamp, to: Timestamp) -> io::Result<Vec<(Timestamp, Timestamp)>> {
        let mut out = Vec::new();
        let mut seen: Option<i64> = None;
        for mark in self.marks()? {
            match mark {
                Mark::Stop(ms) | Mark::Alive(ms) => seen = Some(ms),
                Mark::Start(ms) => {
                    if let Some(last) = seen.take() {
                        let (a, b) = (Timestamp::from_millis(last), Timestamp::from_millis(ms));
                        if b > a && b > from && a < to {
                            out.push((a, b));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Replaces the heartbeat every [`BEAT`] until `stop`; a failed write is logged at most
    /// once a minute (the next beat tries again).
    pub async fn run(self: std::sync::Arc<Self>, clock: SharedClock, stop: CancellationToken) {
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_warn: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (log, now) = (self.clone(), clock.now());
            let res = tokio::task::spawn_blocking(move || log.beat(now)).await;
            if let Ok(Err(e)) = res
                && last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
            {
                last_warn = Some(tokio::time::Instant::now());
                warn!(file = %self.beat.display(), error = %e, "Cannot write the run heartbeat");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: i64) -> Timestamp {
        Timestamp::from_millis(t)
    }

    #[test]
    fn clean_stops_and_crashes_become_downtimes() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path());
        log.started(ms(1_000)).unwrap();
        log.stopped(ms(5_000)).unwrap();
        log.started(ms(9_000)).unwrap();
        log.beat(ms(20_000)).unwrap();
        // A crash: no stop; the next start brings in the last beat.
        log.started(ms(31_000)).unwrap();
        assert_eq!(
            log.downtimes(ms(0), ms(100_000)).unwrap(),
            [(ms(5_000), ms(9_000)), (ms(20_000), ms(31_000))]
        );
        assert_eq!(
            log.downtimes(ms(25_000), ms(26_000)).unwrap(),
            [(ms(20_000), ms(31_000))]
        );
        assert!(log.downtimes(ms(10_000), ms(19_000)).unwrap().is_empty());
    }
}
