//! Quiet hours of a target: site local hours in which alarms below critical are held back.
//!
//! Design: a held transition's journal sequence number is appended to
//! `<data_dir>/webhooks/<name>.held` (rewritten by rename) *before* the delivery cursor moves
//! past it, so a restart during quiet hours loses nothing; when the hours end the held
//! transitions are read back from the journal and delivered in order, then removed from the
//! file. Holding rather than dropping keeps the record complete for the morning; holding
//! out of line (not by stopping the cursor) lets a critical alarm behind a held one go at
//! once. Quiet hours never apply to critical (priority 1) alarms.

use std::path::{Path, PathBuf};

use crate::model::{Priority, Timestamp};

/// `[start, end)` in minutes of the local day; `start > end` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u16,
    end: u16,
}

fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
}

impl QuietHours {
    /// From `["HH:MM", "HH:MM"]`.
    pub fn parse(v: &[String]) -> Result<Self, String> {
        let [start, end] = v else {
            return Err("must be two local times, start and end, e.g. [\"22:00\", \"07:00\"]".into());
        };
        match (minutes(start), minutes(end)) {
            (Some(s), Some(e)) if s != e => Ok(Self { start: s, end: e }),
            (Some(_), Some(_)) => Err("start and end are the same time".into()),
            _ => Err(format!("`{start}`, `{end}`: times are written HH:MM (00:00 to 23:59)")),
        }
    }

    /// Whether `at` (with the site's offset from UTC) falls in the quiet hours.
    pub fn contains(&self, at: Timestamp, utc_offset_secs: i32) -> bool {
        let local = at.as_nanos() / 1_000_000_000 + i64::from(utc_offset_secs);
        let m = u16::try_from(local.rem_euclid(86_400) / 60).unwrap_or(0);
        if self.start < self.end {
            (self.start..self.end).contains(&m)
        } else {
            m >= self.start || m < self.end
        }
    }

    /// Whether an alarm of `p` is held at `at`.
    pub fn holds(&self, p: Priority, at: Timestamp, utc_offset_secs: i32) -> bool {
        p < Priority::Critical && self.contains(at, utc_offset_secs)
    }
}

/// The durable list of held sequence numbers of one target.
#[derive(Debug)]
pub struct Held {
    path: PathBuf,
    seqs: Vec<u64>,
}

impl Held {
    /// Opens `<dir>/<name>.held` (empty if absent).
    pub fn open(dir: &Path, name: &str) -> std::io::Result<Self> {
        let path = dir.join(format!("{name}.held"));
        let seqs = match std::fs::read_to_string(&path) {
            Ok(t) => t.lines().filter_map(|l| l.trim().parse().ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, seqs })
    }

    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("held.tmp");
        let text: String = self.seqs.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, &self.path)
    }

    /// Holds `seq` durably.
    pub fn push(&mut self, seq: u64) -> std::io::Result<()> {
        self.seqs.push(seq);
        self.save()
    }

    /// The oldest held sequence number.
    pub fn first(&self) -> Option<u64> {
        self.seqs.first().copied()
    }

    /// Removes the oldest (after it was delivered).
    pub fn pop(&mut self) -> std::io::Result<()> {
        if !self.seqs.is_empty() {
            self.seqs.remove(0);
        }
        self.save()
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn quiet_hours_span_midnight_in_local_time_and_never_hold_critical() {
        let q = QuietHours::parse(&["22:00".into(), "07:00".into()]).unwrap();
        let off = 8 * 3600;
        // 14:30 UTC is 22:30 at UTC+08:00; 22:59 UTC is 06:59; 23:00 UTC is 07:00.
        let at = |ms: i64| Timestamp::from_millis(ms);
        assert!(q.contains(at(14 * H + H / 2), off));
        assert!(q.contains(at(22 * H + 59 * 60_000), off));
        assert!(!q.contains(at(23 * H), off));
        assert!(!q.contains(at(13 * H + 59 * 60_000), off));
        assert!(q.holds(Priority::High, at(14 * H + H / 2), off));
        assert!(!q.holds(Priority::Critical, at(14 * H + H / 2), off));
    }

    #[test]
    fn quiet_hours_are_checked_when_read() {
        assert!(QuietHours::parse(&["22:00".into()]).is_err());
        let e = QuietHours::parse(&["24:00".into(), "7:00".into()]).unwrap_err();
        assert_eq!(e, "`24:00`, `7:00`: times are written HH:MM (00:00 to 23:59)");
        assert!(QuietHours::parse(&["07:00".into(), "07:00".into()]).is_err());
    }

    #[test]
    fn held_transitions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Held::open(dir.path(), "sms").unwrap();
        h.push(7).unwrap();
        h.push(9).unwrap();
        h.pop().unwrap();
        let h = Held::open(dir.path(), "sms").unwrap();
        assert_eq!((h.first(), h.len()), (Some(9), 1));
    }
}
