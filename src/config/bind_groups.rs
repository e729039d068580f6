//! Binding the group rule kinds (deviation, vote) of `[[rules]]`.

use std::collections::HashSet;

use toml::Spanned;

use super::bind::{Ctx, refuse_state_points};
use super::rules::{DeviationConfig, RuleConfig, VoteConfig};
use crate::model::PointId;
use crate::rules::{Delays, RuleKind, VoteMember, VoteMode};

pub(super) fn bind_deviation(
    cx: &mut Ctx<'_, '_>,
    i: usize,
    r: &RuleConfig,
    d: &Spanned<DeviationConfig>,
    matched: &[PointId],
) -> Option<RuleKind> {
    let key = format!("rules[{i}].deviation");
    if r.name.is_none() {
        cx.err(
            d.span(),
            key.clone(),
            "a deviation rule needs a `name`: it names the group's alarm",
        );
    }
    if matched.len() < 2 {
        cx.err(
            d.span(),
            key.clone(),
            format!(
                "a deviation needs at least two points, the selectors match {}",
                matched.len()
            ),
        );
    }
    let units: HashSet<_> = matched.iter().map(|p| cx.points.meta(*p).unit().clone()).collect();
    if units.len() > 1 {
        let list: Vec<_> = units.iter().map(|u| format!("`{u}`")).collect();
        cx.err(
            d.span(),
            key.clone(),
            format!("redundant sensors must share a unit, these have {}", list.join(", ")),
        );
    }
    refuse_state_points(cx, i, "deviation", d.span(), matched);
    let c = d.get_ref();
    if !(c.max > 0.0 && c.max.is_finite() && c.deadband >= 0.0 && c.deadband < c.max) {
        cx.err(d.span(), key, "max must be positive and deadband in 0..max");
    }
    Some(RuleKind::Deviation {
        points: matched.to_vec(),
        max: c.max,
        deadband: c.deadband,
        priority: c.priority,
        delays: Delays {
            on: c.on_delay,
            off: c.off_delay,
        },
    })
}

pub(super) fn bind_vote(
    cx: &mut Ctx<'_, '_>,
    i: usize,
    r: &RuleConfig,
    v: &Spanned<VoteConfig>,
    matched: &[PointId],
) -> Option<RuleKind> {
    let key = format!("rules[{i}].vote");
    let c = v.get_ref();
    if r.name.is_none() {
        cx.err(
            v.span(),
            key.clone(),
            "a vote rule needs a `name`: it names the group and its alarms",
        );
    }
    let members: Vec<VoteMember> = matched
        .iter()
        .map(|p| VoteMember::Point(*p))
        .chain(c.groups.iter().map(|g| VoteMember::Group(g.clone())))
        .collect();
    let mode = match (&c.escalate, c.k, c.level) {
        (esc, None, None) if !esc.is_empty() => {
            let first = *esc.keys().next()?;
            if esc.keys().any(|l| !l.same_family(first)) || esc.values().any(|k| *k == 0) {
                cx.err(
                    v.span(),
                    key.clone(),
                    "escalate counts must be at least 1 and of one level family",
                );
            }
            VoteMode::Escalate {
                counts: esc.iter().map(|(l, k)| (*l, *k)).collect(),
            }
        }
        (esc, Some(k), Some(level)) if esc.is_empty() => {
            if k == 0 || k > members.len() {
                cx.err(
                    v.span(),
                    key.clone(),
                    format!("k must be 1..={} (the number of members), got {k}", members.len()),
                );
            }
            VoteMode::Confirm { level, k }
        }
        _ => {
            cx.err(
                v.span(),
                key,
                "give either `k` and `level` (confirmation) or `escalate` (escalation)",
            );
            return None;
        }
    };
    let hazard_source = r.hazard_source.as_ref().map(|h| h.get_ref().clone());
    Some(RuleKind::Vote {
        members,
        mode,
        priorities: c.priorities.iter().map(|(l, p)| (*l, *p)).collect(),
        hazard_source,
    })
}
