//! Late delivery to the regulator (`uplinks/<name>/late.log`): the spans of data a platform did
//! not get in real time, and when the backlog of each reached it (补传). The completeness
//! ledger shows them per gateway (`docs/completeness.md`).
//!
//! Design: one line per event, appended and synced (a few lines per outage, never per payload):
//!
//! - `outage <ms>`: the platform stopped taking payloads. `<ms>` is when the first payload it
//!   did not take was queued (its data is the first the regulator lacks), or the end of the
//!   previous span if that is later. At start, a backlog left in the outbox with no span open
//!   opens one at its oldest payload.
//! - `reachable <ms>`: the first acknowledgement after it. New data goes out live again; what
//!   piled up is the backlog, replayed behind it.
//! - `backfilled <ms>`: the last payload of the backlog was acknowledged then: every span that
//!   had become reachable is backfilled.
//!
//! A crash can leave a torn last line, which reading skips; a restart reads the log to know
//! whether a span is still open or its backlog still owed, so the events go on where they
//! stopped. Payloads dropped from the outbox (too old, outbox full) are counted in
//! `hazard_uplink_records_dropped_total`, not here: a backfilled span says the backlog left
//! the outbox, not that none of it was dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::model::Timestamp;

/// Lines read from one log at most (a few per outage; a log of years stays far below).
const MAX_LINES: usize = 1_000_000;
/// The log's file name in the uplink's directory.
pub const FILE: &str = "late.log";

/// One event of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The platform stopped taking payloads; data from this time on was not delivered live.
    Outage(Timestamp),
    /// The platform took a payload again.
    Reachable(Timestamp),
    /// The backlog was delivered.
    Backfilled(Timestamp),
}

/// A span of data the platform did not get in real time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateSpan {
    /// The uplink.
    pub uplink: String,
    /// First data not delivered live.
    pub start: Timestamp,
    /// When the platform took payloads again (`None` while it still does not).
    pub end: Option<Timestamp>,
    /// When the span's backlog had all been delivered (`None` while some is owed).
    pub backfilled_at: Option<Timestamp>,
}

/// The spans `events` describe, oldest first.
pub fn spans(uplink: &str, events: &[Event]) -> Vec<LateSpan> {
    let mut out: Vec<LateSpan> = Vec::new();
    for e in events {
        match *e {
            Event::Outage(t) => {
                if out.last().is_none_or(|s| s.end.is_some()) {
                    out.push(LateSpan {
                        uplink: uplink.to_string(),
                        start: t,
                        end: None,
                        backfilled_at: None,
                    });
                }
            }
            Event::Reachable(t) => {
                if let Some(s) = out.last_mut().filter(|s| s.end.is_none()) {
                    s.end = Some(t.max(s.start));
                }
            }
            Event::Backfilled(t) => {
                for s in out.iter_mut().rev() {
                    if s.backfilled_at.is_some() {
                        break;
                    }
                    if let Some(end) = s.end {
                        s.backfilled_at = Some(t.max(end));
                    }
                }
            }
        }
    }
    out
}

/// The events of the log at `path` (none when it does not exist).
pub fn read(path: &Path) -> io::Result<Vec<Event>> {
    let f = match File::open(path) {
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
        let t = Timestamp::from_millis(ms);
        out.push(match word {
            "outage" => Event::Outage(t),
            "reachable" => Event::Reachable(t),
            "backfilled" => Event::Backfilled(t),
            _ => continue,
        });
    }
    Ok(out)
}

/// The late spans of every uplink kept in `data_dir` that overlap `[from, to)`, by uplink,
/// then oldest first.
pub fn spans_in(data_dir: &Path, from: Timestamp, to: Timestamp) -> io::Result<Vec<LateSpan>> {
    let dir = data_dir.join("uplinks");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.path().join(FILE).is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let events = read(&dir.join(&name).join(FILE))?;
        out.extend(
            spans(&name, &events)
                .into_iter()
                .filter(|s| s.start < to && s.end.is_none_or(|e| e > from)),
        );
    }
    Ok(out)
}

/// The log of one uplink, kept by its sender.
#[derive(Debug)]
pub struct LateLog {
    path: PathBuf,
    /// An outage without its `reachable`.
    open: bool,
    /// Spans that became reachable and whose backlog is still owed.
    owed: bool,
    /// The end of the last span.
    last_end: Option<Timestamp>,
}

impl LateLog {
    /// The log in the uplink's directory `dir`, with what an earlier run left in it.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(FILE);
        let spans = spans("", &read(&path)?);
        let last = spans.last();
        Ok(Self {
            path,
            open: last.is_some_and(|s| s.end.is_none()),
            owed: last.is_some_and(|s| s.end.is_some() && s.backfilled_at.is_none()),
            last_end: last.and_then(|s| s.end),
        })
    }

    /// Appends one event and syncs it; after a torn last line (a crash mid-write) the event
    /// starts a line of its own, so only the torn one is lost.
    fn append(&self, word: &str, t: Timestamp) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        let len = f.metadata()?.len();
        let mut line = String::new();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.push('\n');
            }
        }
        line.push_str(&format!("{word} {}\n", t.as_millis()));
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }

    /// Whether a span is open or its backlog still owed.
    pub fn pending(&self) -> bool {
        self.open || self.owed
    }

    /// A delivery of a payload queued at `queued` failed: opens a span unless one is open.
    pub fn failed(&mut self, queued: Timestamp) -> io::Result<()> {
        if self.open {
            return Ok(());
        }
        let start = self.last_end.map_or(queued, |end| queued.max(end));
        self.append("outage", start)?;
        self.open = true;
        Ok(())
    }

    /// A backlog found at start (its oldest payload queued at `queued`) with no span open or
    /// owed: the platform did not get it live, so it opens one.
    pub fn backlog_found(&mut self, queued: Timestamp) -> io::Result<()> {
        if self.pending() {
            return Ok(());
        }
        self.failed(queued)
    }

    /// A payload was acknowledged at `now`: an open span ends.
    pub fn delivered(&mut self, now: Timestamp) -> io::Result<()> {
        if !self.open {
            return Ok(());
        }
        self.append("reachable", now)?;
        self.open = false;
        self.owed = true;
        self.last_end = Some(now);
        Ok(())
    }

    /// The backlog's last payload was acknowledged at `at`: the owed spans are backfilled.
    pub fn backlog_delivered(&mut self, at: Timestamp) -> io::Result<()> {
        if self.open || !self.owed {
            return Ok(());
        }
        self.append("backfilled", at)?;
        self.owed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: i64) -> Timestamp {
        Timestamp::from_millis(t)
    }

    #[test]
    fn an_outage_becomes_a_span_backfilled_when_its_backlog_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LateLog::open(dir.path()).unwrap();
        assert!(!log.pending());
        log.delivered(ms(5)).unwrap();
        log.backlog_delivered(ms(6)).unwrap();
        log.failed(ms(100)).unwrap();
        log.failed(ms(150)).unwrap();
        log.delivered(ms(300)).unwrap();
        // It fails again while the backlog is replayed: a second span, from the first's end.
        log.failed(ms(120)).unwrap();
        log.delivered(ms(400)).unwrap();
        assert!(log.pending());
        log.backlog_delivered(ms(450)).unwrap();
        assert!(!log.pending());
        let events = read(&dir.path().join(FILE)).unwrap();
        let got = spans("mem", &events);
        let span = |start, end, at| LateSpan {
            uplink: "mem".into(),
            start: ms(start),
            end: Some(ms(end)),
            backfilled_at: Some(ms(at)),
        };
        assert_eq!(got, [span(100, 300, 450), span(300, 400, 450)]);
    }

    #[test]
    fn a_restart_goes_on_with_an_open_span_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = LateLog::open(dir.path()).unwrap();
            log.failed(ms(100)).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(dir.path().join(FILE)).unwrap();
        f.write_all(b"reacha").unwrap();
        drop(f);
        let mut log = LateLog::open(dir.path()).unwrap();
        assert!(log.pending());
        // The backlog found at start belongs to the open span.
        log.backlog_found(ms(50)).unwrap();
        log.delivered(ms(900)).unwrap();
        let got = spans("u", &read(&dir.path().join(FILE)).unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].start, got[0].end, got[0].backfilled_at),
            (ms(100), Some(ms(900)), None)
        );
        // A clean start with a backlog and nothing pending opens a span at its oldest payload.
        let other = tempfile::tempdir().unwrap();
        let mut log = LateLog::open(other.path()).unwrap();
        log.backlog_found(ms(70)).unwrap();
        log.delivered(ms(80)).unwrap();
        log.backlog_delivered(ms(90)).unwrap();
        let got = spans("u", &read(&other.path().join(FILE)).unwrap());
        assert_eq!(
            (got[0].start, got[0].end, got[0].backfilled_at),
            (ms(70), Some(ms(80)), Some(ms(90)))
        );
    }

    #[test]
    fn spans_in_a_data_dir_are_found_per_uplink_and_cut_to_the_period() {
        let data = tempfile::tempdir().unwrap();
        for (name, start, end) in [("b", 100, 200), ("a", 300, 400)] {
            let dir = data.path().join("uplinks").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let mut log = LateLog::open(&dir).unwrap();
            log.failed(ms(start)).unwrap();
            log.delivered(ms(end)).unwrap();
        }
        std::fs::create_dir_all(data.path().join("uplinks/none")).unwrap();
        let all = spans_in(data.path(), ms(0), ms(1000)).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.uplink.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let some = spans_in(data.path(), ms(200), ms(300)).unwrap();
        assert!(some.is_empty(), "{some:?}");
        let some = spans_in(data.path(), ms(150), ms(301)).unwrap();
        assert_eq!(some.len(), 2);
    }
}
