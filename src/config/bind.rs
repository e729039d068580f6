//! Binding `[[rules]]` to points: selectors, rule kinds, profile defaults, and a trial build of
//! the engine so that every inconsistency is a config error with its place in the file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use globset::Glob;
use toml::Spanned;

use super::bind_groups::{bind_deviation, bind_vote};
use super::rules::{AlarmsConfig, CheckRate, CheckWindow, RuleConfig, SuspectConfig, ThresholdConfig};
use crate::model::{PointId, PointKind, PointTable, Priority, Timestamp};
use crate::rules::engine::BuildError;
use crate::rules::suspect::SuspectChecks;
use crate::rules::{AlarmSettings, Delays, RuleKind, RuleSpec, RulesEngine};
use crate::spec::error::{ConfigError, SourceText};

/// A profile's default set-points for one bound point.
#[derive(Debug)]
pub(super) struct ProfileDefault {
    pub(super) point: PointId,
    pub(super) profile: String,
    pub(super) setpoints: ThresholdConfig,
}

pub(super) fn settings(alarms: &AlarmsConfig) -> AlarmSettings {
    AlarmSettings {
        communication_priority: alarms.communication_priority,
        diagnostic_priority: alarms.diagnostic_priority,
        flood_threshold: alarms.flood_threshold,
        chatter_threshold: alarms.chatter_threshold.max(1),
        max_shelve: alarms.max_shelve,
        stations: Vec::new(),
    }
}

pub(super) struct Ctx<'a, 'b> {
    pub(super) src: &'a SourceText<'b>,
    pub(super) points: &'a PointTable,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Ctx<'_, '_> {
    pub(super) fn err(&mut self, span: Range<usize>, key: String, msg: impl Into<String>) {
        self.errors.push(self.src.error(span, key, msg));
    }
}

/// Binds every rule; profile defaults fill in where no threshold rule matched a point, and
/// one rule each stands for the automatic sensor-fault and suspect-data alarms of every point
/// no rule of the same kind matched (expanded by [`crate::rules::bindings`]).
pub(super) fn bind_rules(
    src: &SourceText<'_>,
    raw: &[Spanned<RuleConfig>],
    alarms: &AlarmsConfig,
    points: &PointTable,
    defaults: Vec<ProfileDefault>,
    errors: &mut Vec<ConfigError>,
) -> Vec<RuleSpec> {
    let mut cx = Ctx { src, points, errors };
    let mut configured = Vec::new();
    let mut votes = Vec::new();
    let mut spans: HashMap<String, (usize, Range<usize>)> = HashMap::new();
    let mut has_threshold = HashSet::new();
    for (i, rule) in raw.iter().enumerate() {
        let r = rule.get_ref();
        let name = r
            .name
            .as_ref()
            .map_or_else(|| format!("rule-{i}"), |n| n.get_ref().clone());
        if let Some((first, _)) = spans.insert(name.clone(), (i, rule.span())) {
            cx.err(
                r.name.as_ref().map_or_else(|| rule.span(), toml::Spanned::span),
                format!("rules[{i}].name"),
                format!("rule name `{name}` is already used by rules[{first}]"),
            );
            continue;
        }
        let Some(matched) = select(&mut cx, i, r, rule.span()) else {
            continue;
        };
        let before = cx.errors.len();
        let specs = bind_one(&mut cx, i, r, &name, &matched, rule.span(), alarms.suspect_priority);
        if cx.errors.len() > before {
            continue;
        }
        for spec in specs {
            if let RuleKind::Threshold { point, .. } = &spec.kind {
                has_threshold.insert(*point);
            }
            if matches!(spec.kind, RuleKind::Vote { .. }) {
                votes.push(spec)
            } else {
                configured.push(spec)
            }
        }
    }
    let mut rules: Vec<RuleSpec> = defaults
        .into_iter()
        .filter(|d| !has_threshold.contains(&d.point))
        .flat_map(|d| {
            let range = points.meta(d.point).range();
            let name = format!("profile:{}", d.profile);
            d.setpoints
                .threshold_kinds(d.point, range)
                .into_iter()
                .map(move |kind| RuleSpec {
                    name: name.clone(),
                    latching: false,
                    kind,
                })
        })
        .collect();
    // One rule each for every point's automatic alarms, expanded only where the engine is built.
    if alarms.sensor_fault {
        rules.push(RuleSpec {
            name: "sensor_fault".into(),
            latching: false,
            kind: RuleKind::DefaultSensorFault {
                priority: alarms.sensor_fault_priority,
            },
        });
    }
    if alarms.suspect_data {
        rules.push(RuleSpec {
            name: "suspect_data".into(),
            latching: false,
            kind: RuleKind::DefaultSuspect {
                priority: alarms.suspect_priority,
            },
        });
    }
    rules.extend(configured);
    rules.extend(votes);
    rules.shrink_to_fit();
    if cx.errors.is_empty() {
        trial_build(&mut cx, &rules, alarms, &spans);
    }
    rules
}

/// Builds the engine once so that duplicate alarms and impossible votes are reported now.
fn trial_build(
    cx: &mut Ctx<'_, '_>,
    rules: &[RuleSpec],
    alarms: &AlarmsConfig,
    spans: &HashMap<String, (usize, Range<usize>)>,
) {
    let Err(e) = RulesEngine::new(cx.points.clone(), rules, settings(alarms), Timestamp::default()) else {
        return;
    };
    let rule = match &e {
        BuildError::DuplicateAlarm { second, .. } => second,
        BuildError::UnknownGroup { rule, .. }
        | BuildError::MemberCannotVote { rule, .. }
        | BuildError::NoSetPoint { rule, .. } => rule,
    };
    match spans.get(rule) {
        Some((i, span)) => cx.err(span.clone(), format!("rules[{i}]"), e.to_string()),
        None => cx.errors.push(cx.src.file_error(e.to_string())),
    }
}

/// The points a rule's selectors match (all selectors must hold); `None` after an error.
fn select(cx: &mut Ctx<'_, '_>, i: usize, r: &RuleConfig, span: Range<usize>) -> Option<Vec<PointId>> {
    let groups_only = r.vote.as_ref().is_some_and(|v| !v.get_ref().groups.is_empty());
    if r.points.is_none() && r.kind.is_none() && r.hazard_source.is_none() {
        if groups_only {
            return Some(Vec::new());
        }
        cx.err(
            span,
            format!("rules[{i}]"),
            "a rule needs at least one selector: points, kind or hazard_source",
        );
        return None;
    }
    let mut matched: Vec<PointId> = cx.points.iter().map(|(id, _)| id).collect();
    if let Some(pattern) = &r.points {
        match match_points(cx.points, pattern.get_ref()) {
            Ok(m) => matched.retain(|p| m.contains(p)),
            Err(msg) => {
                cx.err(pattern.span(), format!("rules[{i}].points"), msg);
                return None;
            }
        }
    }
    if let Some(kind) = &r.kind {
        let Ok(k) = toml::Value::String(kind.get_ref().clone()).try_into::<PointKind>() else {
            cx.err(
                kind.span(),
                format!("rules[{i}].kind"),
                format!("unknown point kind `{}`", kind.get_ref()),
            );
            return None;
        };
        matched.retain(|p| cx.points.meta(*p).kind() == k);
    }
    if let Some(hs) = &r.hazard_source {
        matched.retain(|p| cx.points.meta(*p).hazard_source().map(|t| &**t) == Some(hs.get_ref().as_str()));
    }
    if matched.is_empty() {
        let (sel_span, key) = match (&r.points, &r.kind, &r.hazard_source) {
            (Some(p), _, _) => (p.span(), "points"),
            (_, Some(k), _) => (k.span(), "kind"),
            (_, _, Some(h)) => (h.span(), "hazard_source"),
            _ => (span, ""),
        };
        let what = [r.points.as_ref(), r.kind.as_ref(), r.hazard_source.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| format!("`{}`", s.get_ref()))
            .collect::<Vec<_>>()
            .join(" and ");
        cx.err(
            sel_span,
            format!("rules[{i}].{key}"),
            format!("{what} matches no point of this gateway"),
        );
        return None;
    }
    Some(matched)
}

fn match_points(points: &PointTable, pattern: &str) -> Result<Vec<PointId>, String> {
    if !pattern.contains(['*', '?', '[', '{']) {
        return Ok(points.id_of(pattern).into_iter().collect());
    }
    let glob = Glob::new(pattern)
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))?
        .compile_matcher();
    Ok(points
        .iter()
        .filter(|(_, m)| glob.is_match(m.name().as_ref()))
        .map(|(id, _)| id)
        .collect())
}

fn bind_one(
    cx: &mut Ctx<'_, '_>,
    i: usize,
    r: &RuleConfig,
    name: &str,
    matched: &[PointId],
    span: Range<usize>,
    suspect_priority: Priority,
) -> Vec<RuleSpec> {
    let kinds = [
        r.threshold.is_some(),
        r.rate_of_change.is_some(),
        r.stale.is_some(),
        r.sensor_fault.is_some(),
        r.deviation.is_some(),
        r.vote.is_some(),
        r.time_to_limit.is_some(),
        r.suspect.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        let msg = "a rule needs exactly one of threshold, rate_of_change, stale, sensor_fault, deviation, vote, time_to_limit, suspect";
        cx.err(span, format!("rules[{i}]"), msg);
        return Vec::new();
    }
    let spec = |kind| RuleSpec {
        name: name.to_string(),
        latching: r.latching,
        kind,
    };
    if let Some(t) = &r.threshold {
        let mut problems = BTreeMap::new();
        for &p in matched {
            for msg in t.get_ref().problems(cx.points.meta(p).range()) {
                problems.entry(msg).or_insert(p);
            }
        }
        for (msg, p) in problems {
            let point = cx.points.meta(p).name().clone();
            cx.err(
                t.span(),
                format!("rules[{i}].threshold"),
                format!("{msg} (point `{point}`)"),
            );
        }
        let t = t.get_ref();
        return matched
            .iter()
            .flat_map(|&point| t.threshold_kinds(point, cx.points.meta(point).range()))
            .map(spec)
            .collect();
    }
    if let Some(rc) = &r.rate_of_change {
        let c = rc.get_ref();
        if c.rise.is_none() && c.fall.is_none() {
            cx.err(
                rc.span(),
                format!("rules[{i}].rate_of_change"),
                "give rise, fall or both",
            );
        }
        if c.per.is_zero() || c.window.is_some_and(|w| w.is_zero()) {
            cx.err(
                rc.span(),
                format!("rules[{i}].rate_of_change"),
                "per and window must be longer than zero",
            );
        }
        refuse_state_points(cx, i, "rate_of_change", rc.span(), matched);
        let delays = Delays {
            on: c.on_delay,
            off: c.off_delay,
        };
        let window = c.window.unwrap_or(c.per);
        return matched
            .iter()
            .map(|&point| {
                spec(RuleKind::RateOfChange {
                    point,
                    rise: c.rise,
                    fall: c.fall,
                    per: c.per,
                    window,
                    priority: c.priority,
                    delays,
                })
            })
            .collect();
    }
    if let Some(tl) = &r.time_to_limit {
        let c = tl.get_ref();
        let key = format!("rules[{i}].time_to_limit");
        if c.horizon.is_zero() || c.window.is_zero() {
            cx.err(tl.span(), key.clone(), "horizon and window must be longer than zero");
        }
        if !(2..=32).contains(&c.min_samples) {
            let msg = format!(
                "min_samples must be 2 to 32 (the window keeps one sample per window / 32), not {}",
                c.min_samples
            );
            cx.err(tl.span(), key, msg);
        }
        refuse_state_points(cx, i, "time_to_limit", tl.span(), matched);
        let delays = Delays {
            on: c.on_delay,
            off: c.off_delay,
        };
        return matched
            .iter()
            .map(|&point| {
                spec(RuleKind::EarlyWarning {
                    point,
                    horizon: c.horizon,
                    window: c.window,
                    min_samples: c.min_samples,
                    priority: c.priority,
                    delays,
                })
            })
            .collect();
    }
    if let Some(s) = &r.stale {
        if s.get_ref().after.is_zero() {
            cx.err(s.span(), format!("rules[{i}].stale.after"), "must be longer than zero");
        }
        let c = s.get_ref();
        return matched
            .iter()
            .map(|&point| {
                spec(RuleKind::Stale {
                    point,
                    after: c.after,
                    priority: c.priority,
                })
            })
            .collect();
    }
    if let Some(f) = &r.sensor_fault {
        let c = f.get_ref();
        let delays = Delays {
            on: c.on_delay,
            off: c.off_delay,
        };
        return matched
            .iter()
            .map(|&point| {
                spec(RuleKind::SensorFault {
                    point,
                    priority: c.priority,
                    delays,
                })
            })
            .collect();
    }
    if let Some(s) = &r.suspect {
        return bind_suspect(cx, i, s, matched, suspect_priority)
            .into_iter()
            .map(spec)
            .collect();
    }
    if let Some(d) = &r.deviation {
        return bind_deviation(cx, i, r, d, matched).map(spec).into_iter().collect();
    }
    if let Some(v) = &r.vote {
        return bind_vote(cx, i, r, v, matched).map(spec).into_iter().collect();
    }
    Vec::new()
}

/// One `Suspect` rule per matched point: the kind's defaults with what the rule gives.
fn bind_suspect(
    cx: &mut Ctx<'_, '_>,
    i: usize,
    s: &Spanned<SuspectConfig>,
    matched: &[PointId],
    priority: Priority,
) -> Vec<RuleKind> {
    let c = s.get_ref();
    let key = format!("rules[{i}].suspect");
    if c.epsilon.is_some_and(|e| !(e.is_finite() && e >= 0.0)) {
        cx.err(
            s.span(),
            format!("{key}.epsilon"),
            "must be zero or a positive number of units",
        );
        return Vec::new();
    }
    if let Some(CheckRate::Rate(r)) = c.max_rate
        && !(r.is_finite() && r > 0.0)
    {
        cx.err(
            s.span(),
            format!("{key}.max_rate"),
            format!("must be a positive number of units per second, got {r}"),
        );
        return Vec::new();
    }
    for (field, w) in [("stuck", c.stuck), ("pinned", c.pinned)] {
        if let Some(CheckWindow::Window(d)) = w
            && d.is_zero()
        {
            cx.err(
                s.span(),
                format!("{key}.{field}"),
                "must be longer than zero (use false to turn the check off)",
            );
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    for &point in matched {
        let meta = cx.points.meta(point);
        let base = SuspectChecks::for_kind(meta.kind(), meta.range());
        let mut problem = None;
        let mut window = |field: &str, given: Option<CheckWindow>, default: Option<Duration>| match given {
            None => default,
            Some(CheckWindow::Switch(false)) => None,
            Some(CheckWindow::Switch(true)) => {
                if default.is_none() {
                    problem = Some(format!(
                        "{key}.{field}: point `{}` ({}) has no default window; give one",
                        meta.name(),
                        meta.kind().as_str()
                    ));
                }
                default
            }
            Some(CheckWindow::Window(d)) => Some(d),
        };
        let stuck = window("stuck", c.stuck, base.stuck);
        // Asked for by the rule, the pinned check's default is a minute (it needs a range).
        let pinned_default = base
            .pinned
            .or(Some(Duration::from_secs(60)).filter(|_| c.pinned.is_some()));
        let pinned = window("pinned", c.pinned, pinned_default);
        if pinned.is_some() && meta.range().is_none() {
            problem = Some(format!("{key}.pinned: point `{}` has no measuring range", meta.name()));
        }
        let max_rate = match c.max_rate {
            None => base.max_rate,
            Some(CheckRate::Switch(false)) => None,
            Some(CheckRate::Switch(true)) => {
                if base.max_rate.is_none() {
                    problem = Some(format!(
                        "{key}.max_rate: point `{}` ({}) has no default rate; give one in units per second",
                        meta.name(),
                        meta.kind().as_str()
                    ));
                }
                base.max_rate
            }
            Some(CheckRate::Rate(r)) => Some(r),
        };
        if let Some(msg) = problem {
            cx.err(s.span(), key.clone(), msg);
            return Vec::new();
        }
        let checks = SuspectChecks {
            stuck,
            epsilon: c.epsilon.unwrap_or(base.epsilon),
            pinned,
            rests_at_low: c.rests_at_low.unwrap_or(base.rests_at_low),
            max_rate,
            jump_hold: c.jump_hold.unwrap_or(base.jump_hold),
        };
        out.push(RuleKind::Suspect {
            point,
            checks,
            priority: c.priority.unwrap_or(priority),
        });
    }
    out
}

pub(super) fn refuse_state_points(cx: &mut Ctx<'_, '_>, i: usize, what: &str, span: Range<usize>, matched: &[PointId]) {
    if let Some(p) = matched.iter().find(|p| cx.points.meta(**p).kind() == PointKind::State) {
        let point = cx.points.meta(*p).name().clone();
        cx.err(
            span,
            format!("rules[{i}].{what}"),
            format!("point `{point}` is a discrete state and cannot carry a {what} rule"),
        );
    }
}
