//! Escalation rosters: when an alarm stays unacknowledged, tell the next level.
//!
//! Design: the state of every alarm is already durable in the journal, so escalation keeps no
//! state of its own about alarms. Each evaluation (every second, and at once on a new
//! journal entry) reads the latest entry of every visible alarm and, on the gateway's clock,
//! finds the steps that are due: level *k* of a roster is due for an activation when it
//! matches the roster, is still unacknowledged and annunciated, and `raised_at + after_k` has
//! passed. What *is* kept is which steps were sent, in `<data_dir>/escalations/<roster>.sent`
//! (one JSON line per step: alarm id, activation start, level, target; rewritten by rename),
//! written only after the target took the message. So a restart re-derives the open
//! activations from the journal, sends every due step not yet recorded (at least once, a
//! step sent just before a crash may go twice) and never re-sends one already taken.
//!
//! What stops an escalation: an acknowledgement (or a reset, which acknowledges), shelving,
//! suppression by design and removal from service, i.e. anything that makes the alarm no
//! longer ask the duty officer for attention. An alarm that clears unacknowledged keeps
//! escalating: nobody has seen it yet. Quiet hours of a target hold steps below critical
//! until they end (counted `held` once per step); critical steps are never held.
//!
//! Steps go out one after another, one attempt per step per round; a failed step waits a
//! growing number of rounds (up to 60) before its next attempt, so a dead target is retried
//! about once a minute and logged at that rate. A target that hangs costs each round up to its
//! `timeout` per due step.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::message::EscalationNote;
use super::send::{SendContext, Sender};
use super::{WebhookError, WebhookSpec};
use crate::model::{AlarmEvent, Priority, Timestamp};
use crate::sinks::journal::AlarmJournal;
use crate::state::FeedEvent;
use crate::telemetry::EscalationLabel;

/// Time between evaluations when nothing is journaled.
const TICK: Duration = Duration::from_secs(1);

/// Most evaluation rounds a failing step waits before its next attempt.
const MAX_BACKOFF_ROUNDS: u64 = 60;

/// One level of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelSpec {
    /// Time from raise, unacknowledged, until this level is told.
    pub after: Duration,
    /// Webhook names told.
    pub notify: Vec<String>,
}

/// A validated `[[escalations]]` roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationSpec {
    /// Name.
    pub name: String,
    /// Lowest priority escalated.
    pub min_priority: Priority,
    /// Hazard sources escalated (empty: all).
    pub hazard_sources: Vec<String>,
    /// Levels, in order of `after`.
    pub levels: Vec<LevelSpec>,
}

impl EscalationSpec {
    /// Whether `e`'s alarm is one to escalate and still asks for attention.
    pub fn escalates(&self, e: &AlarmEvent) -> bool {
        e.priority >= self.min_priority
            && (self.hazard_sources.is_empty()
                || e.hazard_source
                    .as_ref()
                    .is_some_and(|h| self.hazard_sources.contains(h)))
            && e.raised_at.is_some()
            && !e.acknowledged
            && e.annunciated()
    }
}

/// One step: a level of a roster for one activation of an alarm, to one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct StepKey {
    /// Alarm.
    pub alarm_id: String,
    /// Start of the activation (nanoseconds).
    pub raised_at: i64,
    /// Level index, from 0.
    pub level: usize,
    /// Webhook name.
    pub target: String,
}

/// A step due now.
#[derive(Debug, Clone, PartialEq)]
pub struct DueStep {
    /// Which.
    pub key: StepKey,
    /// The alarm's latest journal entry.
    pub event: AlarmEvent,
    /// What the message says about the escalation.
    pub note: EscalationNote,
}

/// The steps of `roster` due at `now` and not in `sent`: the pure core of escalation.
pub fn due(roster: &EscalationSpec, alarms: &[AlarmEvent], now: Timestamp, sent: &BTreeSet<StepKey>) -> Vec<DueStep> {
    let mut out = Vec::new();
    for e in alarms.iter().filter(|e| roster.escalates(e)) {
        let Some(raised) = e.raised_at else { continue };
        let waited = now.since(raised);
        for (level, l) in roster.levels.iter().enumerate() {
            if waited < l.after {
                break;
            }
            for target in &l.notify {
                let key = StepKey {
                    alarm_id: e.alarm_id.clone(),
                    raised_at: raised.as_nanos(),
                    level,
                    target: target.clone(),
                };
                if !sent.contains(&key) {
                    out.push(DueStep {
                        key,
                        event: e.clone(),
                        note: EscalationNote {
                            roster: roster.name.clone(),
                            level: level + 1,
                            unacked_minutes: waited.as_secs() / 60,
                        },
                    });
                }
            }
        }
    }
    out
}

/// The record of sent steps of one roster.
#[derive(Debug)]
struct Sent {
    path: PathBuf,
    keys: BTreeSet<StepKey>,
}

impl Sent {
    fn open(dir: &Path, roster: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{roster}.sent"));
        let keys = match std::fs::read_to_string(&path) {
            Ok(t) => t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, keys })
    }

    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("sent.tmp");
        let mut text = String::new();
        for k in &self.keys {
            text.push_str(&serde_json::to_string(k).unwrap_or_default());
            text.push('\n');
        }
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, &self.path)
    }

    /// Forgets steps of activations no longer escalating, so the record stays small.
    fn prune(&mut self, open: &BTreeSet<(String, i64)>) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| open.contains(&(k.alarm_id.clone(), k.raised_at)));
        before != self.keys.len()
    }
}

/// A roster with its record.
#[derive(Debug)]
struct Roster {
    spec: EscalationSpec,
    sent: Sent,
}

/// The escalation task's state.
#[derive(Debug)]
struct Escalator {
    rosters: Vec<Roster>,
    senders: HashMap<String, Sender>,
    journal: Arc<AlarmJournal>,
    ctx: SendContext,
    round: u64,
    /// Failing steps: attempts so far and the round of the next one.
    retry: HashMap<StepKey, (u32, u64)>,
    /// Steps counted as held by quiet hours.
    held: BTreeSet<StepKey>,
}

/// Starts the rosters (no task when there are none).
pub fn start(
    specs: &[EscalationSpec],
    webhooks: &[WebhookSpec],
    ctx: SendContext,
    data_dir: &Path,
    journal: Arc<AlarmJournal>,
    feed: broadcast::Receiver<FeedEvent>,
    stop: CancellationToken,
) -> Result<Option<JoinHandle<()>>, WebhookError> {
    if specs.is_empty() {
        return Ok(None);
    }
    let dir = data_dir.join("escalations");
    let mut rosters = Vec::new();
    let mut senders = HashMap::new();
    for spec in specs {
        let sent = Sent::open(&dir, &spec.name).map_err(|source| WebhookError::Escalation {
            roster: spec.name.clone(),
            source,
        })?;
        for name in spec.levels.iter().flat_map(|l| &l.notify) {
            if senders.contains_key(name) {
                continue;
            }
            // Validation checked every name; a missing one is skipped rather than fatal.
            if let Some(w) = webhooks.iter().find(|w| &w.name == name) {
                senders.insert(name.clone(), Sender::new(w.clone(), ctx.clone())?);
            }
        }
        rosters.push(Roster {
            spec: spec.clone(),
            sent,
        });
    }
    let e = Escalator {
        rosters,
        senders,
        journal,
        ctx,
        round: 0,
        retry: HashMap::new(),
        held: BTreeSet::new(),
    };
    Ok(Some(tokio::spawn(e.run(feed, stop))))
}

impl Escalator {
    async fn run(mut self, mut feed: broadcast::Receiver<FeedEvent>, stop: CancellationToken) {
        let names: Vec<_> = self.rosters.iter().map(|r| r.spec.name.as_str()).collect();
        info!(rosters = ?names, "Alarm escalation started");
        loop {
            self.evaluate().await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = feed.recv() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn label(&self, roster: &str, result: &'static str) -> EscalationLabel {
        EscalationLabel {
            roster: roster.to_string(),
            result,
        }
    }

    /// One round: read the journal's open alarms and send what is due.
    async fn evaluate(&mut self) {
        self.round += 1;
        let journal = self.journal.clone();
        let alarms = match tokio::task::spawn_blocking(move || journal.latest_visible()).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                warn!(error = %e, "Escalation cannot read the alarm journal; retrying");
                return;
            }
            Err(_) => return,
        };
        let now = self.ctx.clock.now();
        let offset = self.ctx.settings.utc_offset_secs;
        for i in 0..self.rosters.len() {
            let roster = &self.rosters[i];
            let open: BTreeSet<(String, i64)> = alarms
                .iter()
                .filter(|e| roster.spec.escalates(e))
                .filter_map(|e| Some((e.alarm_id.clone(), e.raised_at?.as_nanos())))
                .collect();
            let steps = due(&roster.spec, &alarms, now, &roster.sent.keys);
            let name = roster.spec.name.clone();
            for step in steps {
                if self.retry.get(&step.key).is_some_and(|(_, next)| *next > self.round) {
                    continue;
                }
                let Some(sender) = self.senders.get(&step.key.target) else {
                    continue;
                };
                if sender
                    .spec
                    .quiet_hours
                    .is_some_and(|q| q.holds(step.event.priority, now, offset))
                {
                    if self.held.insert(step.key.clone()) {
                        sender.count("held");
                        self.ctx
                            .metrics
                            .escalation_steps
                            .get_or_create(&self.label(&name, "held"))
                            .inc();
                    }
                    continue;
                }
                match sender.attempt(&step.event, Some(&step.note)).await {
                    Ok(()) => {
                        self.retry.remove(&step.key);
                        self.held.remove(&step.key);
                        info!(roster = %name, alarm = %step.key.alarm_id, level = step.note.level, target = %step.key.target, "Escalation step sent");
                        self.ctx
                            .metrics
                            .escalation_steps
                            .get_or_create(&self.label(&name, "sent"))
                            .inc();
                        let sent = &mut self.rosters[i].sent;
                        sent.keys.insert(step.key);
                        if let Err(e) = sent.save() {
                            warn!(roster = %name, error = %e, "Cannot record a sent escalation step; it may be sent again after a restart");
                        }
                    }
                    Err(f) => {
                        let (attempts, _) = self.retry.get(&step.key).copied().unwrap_or((0, 0));
                        let wait = (1u64 << attempts.min(6)).min(MAX_BACKOFF_ROUNDS);
                        self.retry.insert(step.key.clone(), (attempts + 1, self.round + wait));
                        self.ctx
                            .metrics
                            .escalation_steps
                            .get_or_create(&self.label(&name, "failed"))
                            .inc();
                        sender.warn(&step.event, &f, attempts + 1);
                    }
                }
            }
            let sent = &mut self.rosters[i].sent;
            if sent.prune(&open) {
                if let Err(e) = sent.save() {
                    warn!(roster = %name, error = %e, "Cannot prune the record of escalation steps");
                }
            }
        }
        self.retry
            .retain(|k, _| alarms.iter().any(|e| e.alarm_id == k.alarm_id));
        self.held.retain(|k| alarms.iter().any(|e| e.alarm_id == k.alarm_id));
        self.ctx.metrics.escalation_evaluated.set(now.as_millis());
    }
}

#[cfg(test)]
mod tests;
