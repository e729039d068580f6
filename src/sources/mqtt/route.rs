//! From one message to readings: which subscriptions it belongs to, decoding, point-id
//! templates, declared points, range checks and stale tracking. No I/O: the broker task owns
//! a [`Router`] and feeds it messages and sweep times; it only counts and logs.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;
use tracing::warn;

use super::config::SubscriptionSpec;
use super::stale::StaleTracker;
use crate::model::{PointId, PointTable, Quality, Reading, Timestamp};
use crate::telemetry::{BrokerLabel, MqttInMetrics, SubscriptionKind, SubscriptionLabel, SubscriptionReason};

/// At most one warning per subscription in this interval; the rest are counted in it.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Target {
    point: PointId,
    range: Option<(f64, f64)>,
}

/// One warning line per interval, with how many were held back.
#[derive(Debug, Default)]
struct RateLog {
    last: Option<Instant>,
    held: u64,
}

impl RateLog {
    fn warn(&mut self, now: Instant, sub: &str, topic: &str, kind: &str, detail: &str) {
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.held += 1;
            return;
        }
        warn!(
            subscription = sub,
            topic,
            kind,
            detail,
            held_back = self.held,
            "Bad MQTT input; counted"
        );
        self.last = Some(now);
        self.held = 0;
    }
}

#[derive(Debug)]
struct Sub {
    spec: SubscriptionSpec,
    targets: HashMap<Box<str>, Target>,
    messages: Counter,
    readings: Counter,
    /// Messages dropped whole for a payload over `max_payload`.
    oversize: Counter,
    log: RateLog,
}

/// Problems found in one message, reported after decoding.
#[derive(Debug, Default)]
struct Tally {
    counts: Vec<(&'static str, u64)>,
    first: Option<(&'static str, String)>,
}

impl Tally {
    fn add(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        match self.counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((kind, 1)),
        }
        if self.first.is_none() {
            self.first = Some((kind, detail()));
        }
    }
}

/// Routes one broker's messages to readings.
#[derive(Debug)]
pub struct Router {
    broker: BrokerLabel,
    subs: Vec<Sub>,
    metrics: MqttInMetrics,
    scratch: Scratch,
    /// Subscription of each watched point, for the stale counter.
    stale_owner: HashMap<PointId, usize>,
}

/// What decoding a message updates besides the readings: the stale clocks, and a buffer
/// reused for each point id rendered from the template.
#[derive(Debug)]
struct Scratch {
    stale: StaleTracker,
    point_buf: String,
}

impl Router {
    /// A router for `subs` (all of one broker); stale clocks start at `now`.
    pub fn new(
        broker: &str,
        subs: Vec<SubscriptionSpec>,
        points: &PointTable,
        metrics: MqttInMetrics,
        now: Instant,
    ) -> Self {
        let mut stale = StaleTracker::default();
        let mut stale_owner = HashMap::new();
        let subs = subs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let label = SubscriptionLabel {
                    subscription: spec.name.clone(),
                };
                let targets = spec
                    .points
                    .iter()
                    .map(|(name, id)| {
                        let after = spec
                            .point_stale_after
                            .iter()
                            .find(|(n, _)| n == name)
                            .map_or(spec.stale_after, |(_, d)| *d);
                        stale.watch(*id, after, now);
                        stale_owner.entry(*id).or_insert(i);
                        let range = (id.index() < points.len()).then(|| points.meta(*id).range()).flatten();
                        (Box::from(name.as_str()), Target { point: *id, range })
                    })
                    .collect();
                Sub {
                    messages: metrics.messages.get_or_create(&label).clone(),
                    readings: metrics.readings.get_or_create(&label).clone(),
                    oversize: metrics
                        .dropped
                        .get_or_create(&SubscriptionReason {
                            subscription: label.subscription.clone(),
                            reason: "oversize",
                        })
                        .clone(),
                    spec,
                    targets,
                    log: RateLog::default(),
                }
            })
            .collect();
        Self {
            broker: BrokerLabel {
                broker: broker.to_string(),
            },
            subs,
            metrics,
            scratch: Scratch {
                stale,
                point_buf: String::with_capacity(64),
            },
            stale_owner,
        }
    }

    /// Every (filter, qos) to subscribe to.
    pub fn filters(&self) -> impl Iterator<Item = (&str, u8)> {
        self.subs.iter().map(|s| (s.spec.filter.filter.as_str(), s.spec.qos))
    }

    /// How often [`Router::sweep`] should run, if any point has a `stale_after`.
    pub fn sweep_period(&self) -> Option<Duration> {
        self.scratch.stale.period()
    }

    /// Decodes one message into `out`; `arrival` stamps readings without a device time and
    /// `now` feeds the stale clocks and log limits. Returns the readings added.
    pub fn route(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        arrival: Timestamp,
        now: Instant,
        out: &mut Vec<Reading>,
    ) -> usize {
        self.each_match(topic, now, out, |sub, levels, scratch, tally, out| {
            if payload.len() > sub.spec.max_payload {
                oversize(sub, payload.len(), tally);
                fallback(sub, levels, arrival, &mut scratch.point_buf, out);
                return;
            }
            let Scratch { point_buf: buf, stale } = scratch;
            let (template, targets) = (&sub.spec.template, &sub.targets);
            let result = sub.spec.layout.decode(payload, arrival, &mut |item| {
                if let Some(p) = item.problem {
                    tally.add(p.kind(), || format!("{p:?}"));
                }
                if let Err(e) = template.render(levels, item.field, item.element, buf) {
                    tally.add("bad_point_field", || e.to_string());
                    return;
                }
                let Some(t) = targets.get(buf.as_str()) else {
                    tally.add("unknown_point", || format!("point `{buf}` is not declared"));
                    return;
                };
                let quality = match (item.quality, t.range) {
                    (Quality::Good, Some((lo, hi))) if item.value < lo || item.value > hi => Quality::OutOfRange,
                    (q, _) => q,
                };
                stale.seen(t.point, now);
                out.push(Reading {
                    point: t.point,
                    ts: item.ts,
                    value: item.value,
                    quality,
                });
            });
            if let Err(e) = result {
                tally.add(e.kind(), || e.to_string());
                fallback(sub, levels, arrival, buf, out);
            }
        })
    }

    /// The largest `max_payload` of this broker's subscriptions: a larger payload is oversize
    /// for every one of them, so the link may drop it as soon as it is decoded.
    pub fn keep_limit(&self) -> usize {
        self.subs.iter().map(|s| s.spec.max_payload).max().unwrap_or(0)
    }

    /// Counts a message whose payload (`size` bytes, over [`Router::keep_limit`]) the link
    /// already dropped: `oversize` for each subscription it matches, logged with its topic,
    /// and, like any message that cannot be decoded, a `decode_error` reading for the points
    /// its topic names. Returns the readings added.
    pub fn dropped(
        &mut self,
        topic: &[u8],
        size: usize,
        arrival: Timestamp,
        now: Instant,
        out: &mut Vec<Reading>,
    ) -> usize {
        self.each_match(topic, now, out, |sub, levels, scratch, tally, out| {
            oversize(sub, size, tally);
            fallback(sub, levels, arrival, &mut scratch.point_buf, out);
        })
    }

    /// The steps every message takes, whatever becomes of its payload: a topic that is not
    /// UTF-8 or matches no subscription is counted `unmatched`; for each subscription it
    /// matches, the message is counted, `each` adds readings and notes problems, and the
    /// readings and problems are counted (the first problem logged). Returns the readings
    /// added.
    fn each_match(
        &mut self,
        topic: &[u8],
        now: Instant,
        out: &mut Vec<Reading>,
        mut each: impl FnMut(&mut Sub, &[&str], &mut Scratch, &mut Tally, &mut Vec<Reading>),
    ) -> usize {
        let before = out.len();
        let Ok(topic) = std::str::from_utf8(topic) else {
            self.metrics.unmatched.get_or_create(&self.broker).inc();
            return 0;
        };
        let levels: Vec<&str> = topic.split('/').collect();
        let mut matched = false;
        for sub in &mut self.subs {
            if !sub.spec.filter.matches(&levels) {
                continue;
            }
            matched = true;
            sub.messages.inc();
            let mut tally = Tally::default();
            let start = out.len();
            each(sub, &levels, &mut self.scratch, &mut tally, out);
            sub.readings.inc_by((out.len() - start) as u64);
            report(sub, &tally, &self.metrics, topic, now);
        }
        if !matched {
            self.metrics.unmatched.get_or_create(&self.broker).inc();
        }
        out.len() - before
    }

    /// The broker is lost: appends a `comm_fault` reading, stamped `ts`, for every point this
    /// broker feeds, and stops the stale clocks (a stale marker would replace `comm_fault`
    /// while the cause is the link, not the sensor).
    /// Returns the readings added.
    pub fn link_lost(&mut self, ts: Timestamp, out: &mut Vec<Reading>) -> usize {
        let mut points: Vec<PointId> = self
            .subs
            .iter()
            .flat_map(|s| s.targets.values().map(|t| t.point))
            .collect();
        points.sort_unstable();
        points.dedup();
        for &point in &points {
            out.push(Reading {
                point,
                ts,
                value: f64::NAN,
                quality: Quality::CommFault,
            });
        }
        self.scratch.stale.pause();
        points.len()
    }

    /// The broker is back at `now`: the stale clocks restart from now.
    pub fn link_back(&mut self, now: Instant) {
        self.scratch.stale.resume(now);
    }

    /// Appends a `stale` reading, stamped `ts`, for each point silent past its `stale_after`.
    pub fn sweep(&mut self, now: Instant, ts: Timestamp, out: &mut Vec<Reading>) -> usize {
        let mut gone = Vec::new();
        self.scratch.stale.sweep(now, &mut gone);
        for p in &gone {
            if let Some(sub) = self.stale_owner.get(p).and_then(|&i| self.subs.get(i)) {
                let label = SubscriptionLabel {
                    subscription: sub.spec.name.clone(),
                };
                self.metrics.stale.get_or_create(&label).inc();
                sub.readings.inc();
            }
            out.push(Reading {
                point: *p,
                ts,
                value: f64::NAN,
                quality: Quality::Stale,
            });
        }
        gone.len()
    }
}

/// Counts one message's problems and logs the first (at most once per [`LOG_EVERY`]).
fn report(sub: &mut Sub, tally: &Tally, metrics: &MqttInMetrics, topic: &str, now: Instant) {
    for (kind, n) in &tally.counts {
        let label = SubscriptionKind {
            subscription: sub.spec.name.clone(),
            kind,
        };
        metrics.errors.get_or_create(&label).inc_by(*n);
    }
    if let Some((kind, detail)) = &tally.first {
        sub.log.warn(now, &sub.spec.name, topic, kind, detail);
    }
}

/// Notes an oversize payload: it is not decoded (the message is still acknowledged, so it
/// never blocks the session behind it).
fn oversize(sub: &Sub, size: usize, tally: &mut Tally) {
    sub.oversize.inc();
    tally.add("oversize", || {
        format!("{size} B > max_payload {} B", sub.spec.max_payload)
    });
}

/// A message that decoded to nothing still tells which point(s) it was for when the template
/// needs only the topic: those points get a `decode_error` reading (a broken sensor shows).
fn fallback(sub: &mut Sub, levels: &[&str], arrival: Timestamp, buf: &mut String, out: &mut Vec<Reading>) {
    if sub.spec.template.uses_payload() {
        return;
    }
    let fields: Vec<Option<&str>> = match &sub.spec.layout {
        super::decode::Layout::Json(super::decode::JsonLayout {
            values: super::decode::Values::Fields(f),
            ..
        }) => f.iter().map(|(n, _)| Some(n.as_str())).collect(),
        _ => vec![None],
    };
    for field in fields {
        if sub.spec.template.render(levels, field, None, buf).is_ok()
            && let Some(t) = sub.targets.get(buf.as_str())
        {
            out.push(Reading {
                point: t.point,
                ts: arrival,
                value: f64::NAN,
                quality: Quality::DecodeError,
            });
        }
    }
}

#[cfg(test)]
mod tests;
