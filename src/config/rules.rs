//! Rule configuration: which points a rule watches and what it raises.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{Level, PointId, Priority};
use crate::rules::{Delays, Limit, RuleKind};
use crate::spec::units;

fn default_priority() -> Priority {
    Priority::High
}

/// Which way warning colours trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Danger grows with the value (displacement, reservoir level).
    #[default]
    Rising,
    /// Danger grows as the value falls (burial depth of the seepage line, beach length).
    Falling,
}

/// Threshold set-points, as written in a rule or as a profile's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// High limit (first-level alarm for a gas detector, GB 50493: <= 25 %LEL).
    #[serde(default)]
    pub high: Option<f64>,
    /// High-high limit (second-level alarm, GB 50493: <= 50 %LEL).
    #[serde(default)]
    pub high_high: Option<f64>,
    /// Low limit (e.g. oxygen deficiency at 19.5 %vol).
    #[serde(default)]
    pub low: Option<f64>,
    /// Low-low limit.
    #[serde(default)]
    pub low_low: Option<f64>,
    /// Blue warning (GB 51108 tailings ponds), the lowest of four colours.
    #[serde(default)]
    pub blue: Option<f64>,
    /// Yellow warning.
    #[serde(default)]
    pub yellow: Option<f64>,
    /// Orange warning.
    #[serde(default)]
    pub orange: Option<f64>,
    /// Red warning, the highest.
    #[serde(default)]
    pub red: Option<f64>,
    /// Whether the warning colours trip on a rising or a falling value.
    #[serde(default)]
    pub direction: Direction,
    /// Distance back past a limit before its alarm clears, in engineering units.
    #[serde(default)]
    pub deadband: f64,
    /// Deadband as a percentage of the instrument's span instead (EEMUA 191 starting values:
    /// flow 5 %, level 5 %, pressure 2 %, temperature 1 %). Needs the point to have a range.
    #[serde(default)]
    pub deadband_percent: Option<f64>,
    /// How long a limit must be exceeded before the alarm is raised; filters spikes.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
    /// How long the value must be back before the alarm clears; filters chattering.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub off_delay: Duration,
    /// Priority per level, where the default (outer limits and red critical) does not fit.
    #[serde(default)]
    pub priorities: BTreeMap<Level, Priority>,
    /// Value at which a level's alarm clears, where that is not the set-point less the
    /// deadband: the power-restore value of the Coal Mine Safety Regulations (coal face
    /// methane: power cut at >= 1.5 %, restored only below 1.0 %).
    #[serde(default)]
    pub clear: BTreeMap<Level, f64>,
}

impl ThresholdConfig {
    /// The configured levels with their set-points.
    fn levels(&self) -> Vec<(Level, f64)> {
        [
            (Level::LowLow, self.low_low),
            (Level::Low, self.low),
            (Level::High, self.high),
            (Level::HighHigh, self.high_high),
            (Level::Blue, self.blue),
            (Level::Yellow, self.yellow),
            (Level::Orange, self.orange),
            (Level::Red, self.red),
        ]
        .into_iter()
        .filter_map(|(l, v)| v.map(|v| (l, v)))
        .collect()
    }

    fn falling(&self, level: Level) -> bool {
        level.is_low() || (level.same_family(Level::Blue) && self.direction == Direction::Falling)
    }

    /// Everything wrong with these set-points for a point measuring `range`.
    pub fn problems(&self, range: Option<(f64, f64)>) -> Vec<String> {
        let levels = self.levels();
        let mut out = Vec::new();
        if levels.is_empty() {
            out.push(
                "a threshold needs at least one of high, high_high, low, low_low, blue, yellow, orange, red".into(),
            );
        }
        for (l, v) in &levels {
            if !v.is_finite() {
                out.push(format!("{l} must be a finite number"));
            }
        }
        for family in [Level::Low, Level::High, Level::Blue] {
            let mut fam: Vec<_> = levels.iter().filter(|(l, _)| l.same_family(family)).collect();
            fam.sort_by_key(|(l, _)| l.rank());
            for pair in fam.windows(2) {
                let ((la, va), (lb, vb)) = (pair[0], pair[1]);
                let (ok, word) = if self.falling(*la) {
                    (va > vb, "above")
                } else {
                    (va < vb, "below")
                };
                if !ok {
                    out.push(format!("{la} ({va}) must be {word} {lb} ({vb})"));
                }
            }
        }
        let low = levels
            .iter()
            .filter(|(l, _)| l.is_low())
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        let high = levels
            .iter()
            .filter(|(l, _)| l.same_family(Level::High))
            .map(|(_, v)| *v)
            .fold(f64::INFINITY, f64::min);
        if low >= high {
            out.push(format!("low limits ({low}) must be below high limits ({high})"));
        }
        if !(self.deadband >= 0.0 && self.deadband.is_finite()) {
            out.push(format!("deadband must be zero or positive, got {}", self.deadband));
        }
        match (self.deadband_percent, range) {
            (Some(p), _) if !(0.0..=100.0).contains(&p) => {
                out.push(format!("deadband_percent must be 0..=100, got {p}"))
            }
            (Some(_), None) => out.push("deadband_percent needs the point to have a measuring range".into()),
            (Some(_), Some(_)) if self.deadband != 0.0 => {
                out.push("give deadband or deadband_percent, not both".into())
            }
            _ => {}
        }
        for (l, c) in &self.clear {
            match levels.iter().find(|(x, _)| x == l) {
                None => out.push(format!("clear.{l} is given but there is no {l} set-point")),
                Some((_, v)) if !c.is_finite() => {
                    out.push(format!("clear.{l} must be a finite number, got {c} (set-point {v})"))
                }
                Some((_, v)) if self.falling(*l) && c < v => out.push(format!(
                    "clear.{l} ({c}) must not be below the {l} set-point ({v}): it trips on a falling value"
                )),
                Some((_, v)) if !self.falling(*l) && c > v => {
                    out.push(format!("clear.{l} ({c}) must not be above the {l} set-point ({v})"))
                }
                Some(_) => {}
            }
        }
        if let Some((lo, hi)) = range {
            for (l, v) in &levels {
                if *v < lo || *v > hi {
                    out.push(format!(
                        "{l} set-point {v} lies outside the instrument's range {lo}..{hi}"
                    ));
                }
            }
        }
        out
    }

    /// The engine's limits, with each level's priority.
    pub fn limits(&self) -> Vec<Limit> {
        self.levels()
            .into_iter()
            .map(|(level, value)| Limit {
                level,
                value,
                priority: self.priorities.get(&level).copied().unwrap_or(level.default_priority()),
                falling: self.falling(level),
            })
            .collect()
    }

    /// The threshold rules these set-points make on `point`: one for the levels that clear by
    /// the deadband, and one more for each level with its own `clear` value.
    pub fn threshold_kinds(&self, point: PointId, range: Option<(f64, f64)>) -> Vec<RuleKind> {
        let (own, shared): (Vec<Limit>, Vec<Limit>) = self
            .limits()
            .into_iter()
            .partition(|l| self.clear.contains_key(&l.level));
        let kind = |limits: Vec<Limit>, deadband: f64| RuleKind::Threshold {
            point,
            limits,
            deadband,
            delays: self.delays(),
        };
        let mut out = Vec::new();
        if !shared.is_empty() {
            out.push(kind(shared, self.deadband_for(range)));
        }
        for l in own {
            let clear = self.clear.get(&l.level).copied().unwrap_or(l.value);
            out.push(kind(vec![l], (l.value - clear).abs()));
        }
        out
    }

    /// The absolute deadband for a point measuring `range`.
    pub fn deadband_for(&self, range: Option<(f64, f64)>) -> f64 {
        match (self.deadband_percent, range) {
            (Some(p), Some((lo, hi))) => (hi - lo).abs() * p / 100.0,
            _ => self.deadband,
        }
    }

    /// The rule's delays.
    pub fn delays(&self) -> Delays {
        Delays {
            on: self.on_delay,
            off: self.off_delay,
        }
    }
}

/// Rate-of-change rule parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Alarm when rising faster than this many units per `per`.
    #[serde(default)]
    pub rise: Option<f64>,
    /// Alarm when falling faster than this many units per `per`.
    #[serde(default)]
    pub fall: Option<f64>,
    /// Time unit of `rise` and `fall` (`"1h"` for m/h).
    #[serde(deserialize_with = "units::duration::deserialize")]
    pub per: Duration,
    /// Window the change is measured over; defaults to `per`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub window: Option<Duration>,
    /// Priority of the alarm.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Delays against a noisy signal.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
    /// Off-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub off_delay: Duration,
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    units::duration::deserialize(d).map(Some)
}

/// Time-to-limit early warning parameters (`time_to_limit = { horizon = "30m" }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeToLimitConfig {
    /// Warn when the trend is predicted to reach the next set-point within this time.
    #[serde(deserialize_with = "units::duration::deserialize")]
    pub horizon: Duration,
    /// Window the trend is estimated over.
    #[serde(default = "default_trend_window", deserialize_with = "units::duration::deserialize")]
    pub window: Duration,
    /// Samples (one per window / 32, each the mean of the readings in it) needed before a
    /// trend is trusted.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Priority of the warnings; by default one step below the set-point's own.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Delays against a noisy signal.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
    /// Off-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub off_delay: Duration,
}

fn default_trend_window() -> Duration {
    Duration::from_secs(600)
}

fn default_min_samples() -> usize {
    10
}

/// Stale (no data) rule parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleConfig {
    /// Silence tolerated before the alarm.
    #[serde(deserialize_with = "units::duration::deserialize")]
    pub after: Duration,
    /// Priority of the alarm.
    #[serde(default = "default_priority")]
    pub priority: Priority,
}

/// Sensor-fault rule parameters (replaces the automatic one on the points it matches).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Priority of the alarm.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// On-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
    /// Off-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub off_delay: Duration,
}

/// A suspect-data check's window: `false` (off), `true` (the point kind's default) or a
/// duration.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CheckWindow {
    /// Off, or the kind's default.
    Switch(bool),
    /// A window.
    Window(#[serde(deserialize_with = "units::duration::deserialize")] Duration),
}

/// The jump check's limit: `false` (off), `true` (the kind's default) or units per second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CheckRate {
    /// Off, or the kind's default.
    Switch(bool),
    /// Fastest possible change, units per second.
    Rate(f64),
}

/// Suspect-data checks of the matched points (`suspect = { stuck = "30m", pinned = false }`);
/// what is not given keeps the point kind's default (`docs/suspect-data.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspectConfig {
    /// Stuck: unchanged within `epsilon` this long.
    #[serde(default)]
    pub stuck: Option<CheckWindow>,
    /// How far a stuck value may wander, in the point's unit.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Pinned: at an end of the measuring range this long.
    #[serde(default)]
    pub pinned: Option<CheckWindow>,
    /// Impossible jump: faster than this many units per second.
    #[serde(default)]
    pub max_rate: Option<CheckRate>,
    /// How long readings stay suspect after an impossible jump.
    #[serde(default, deserialize_with = "opt_duration")]
    pub jump_hold: Option<Duration>,
    /// The low end of the range is a normal resting value (not pinned, not stuck there).
    #[serde(default)]
    pub rests_at_low: Option<bool>,
    /// Priority of the data-quality alarms.
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// Deviation between redundant sensors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviationConfig {
    /// Largest tolerated spread (max - min) between the selected points.
    pub max: f64,
    /// Deadband for clearing.
    #[serde(default)]
    pub deadband: f64,
    /// Priority of the alarm.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// On-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
    /// Off-delay.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub off_delay: Duration,
}

/// k-of-n voting or escalation over the selected points and/or other vote rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteConfig {
    /// Confirmation: how many members must be at `level` or above.
    #[serde(default)]
    pub k: Option<usize>,
    /// Confirmation: the level members must reach (and the group's alarm level).
    #[serde(default)]
    pub level: Option<Level>,
    /// Escalation: `{ blue = 4, yellow = 3, orange = 2 }` lifts the group one level above each
    /// level that enough members reach (GB 51108-2015).
    #[serde(default)]
    pub escalate: BTreeMap<Level, usize>,
    /// Other vote rules counted as members (items of a pond), defined before this one.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Priority per output level, where the default does not fit.
    #[serde(default)]
    pub priorities: BTreeMap<Level, Priority>,
}

/// A `[[rules]]` entry: selectors, then exactly one rule kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name journaled with the rule's alarms; required for deviation and vote rules (it names
    /// the group). Defaults to `rule-<n>`.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// A point id, or a glob over point ids (`MHS-001/GT-*`).
    #[serde(default)]
    pub points: Option<Spanned<String>>,
    /// Only points of this kind (`gas`, `level`, `seepage`...).
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Only points of this hazard source.
    #[serde(default)]
    pub hazard_source: Option<Spanned<String>>,
    /// Alarms stay (latched) after their condition clears until an operator resets them.
    #[serde(default)]
    pub latching: bool,
    /// Threshold set-points; they replace a profile's defaults on the matched points.
    #[serde(default)]
    pub threshold: Option<Spanned<ThresholdConfig>>,
    /// Rate of change.
    #[serde(default)]
    pub rate_of_change: Option<Spanned<RateConfig>>,
    /// No data.
    #[serde(default)]
    pub stale: Option<Spanned<StaleConfig>>,
    /// Sensor fault.
    #[serde(default)]
    pub sensor_fault: Option<Spanned<FaultConfig>>,
    /// Deviation between the matched points.
    #[serde(default)]
    pub deviation: Option<Spanned<DeviationConfig>>,
    /// Voting or escalation over the matched points and listed groups.
    #[serde(default)]
    pub vote: Option<Spanned<VoteConfig>>,
    /// Time-to-limit early warning towards the matched points' threshold set-points.
    #[serde(default)]
    pub time_to_limit: Option<Spanned<TimeToLimitConfig>>,
    /// Suspect-data checks (stuck, pinned, impossible jump) of the matched points.
    #[serde(default)]
    pub suspect: Option<Spanned<SuspectConfig>>,
}

/// The `[alarms]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// Priority of the automatic communication alarm of each device.
    #[serde(default = "default_priority")]
    pub communication_priority: Priority,
    /// Priority of the gateway's self-diagnostic alarms (`gateway:disk_space`, ...).
    #[serde(default = "default_priority")]
    pub diagnostic_priority: Priority,
    /// Every point gets a sensor-fault alarm unless a rule says otherwise (GB 50493: a detector
    /// fault is itself an alarm).
    #[serde(default = "yes")]
    pub sensor_fault: bool,
    /// Priority of the automatic sensor-fault alarms.
    #[serde(default = "default_priority")]
    pub sensor_fault_priority: Priority,
    /// Every point gets its kind's suspect-data checks (stuck, pinned, impossible jump) unless
    /// a rule says otherwise.
    #[serde(default = "yes")]
    pub suspect_data: bool,
    /// Priority of the automatic data-quality alarms.
    #[serde(default = "default_priority")]
    pub suspect_priority: Priority,
    /// Annunciated alarms per 10 minutes above which the feed marks a flood.
    #[serde(default = "default_flood")]
    pub flood_threshold: usize,
    /// Raises per minute from which an alarm counts as chattering.
    #[serde(default = "default_chatter")]
    pub chatter_threshold: usize,
    /// Longest shelving an operator may ask for.
    #[serde(default = "default_max_shelve", deserialize_with = "units::duration::deserialize")]
    pub max_shelve: Duration,
    /// ISA-18.2 shelving rules per priority (`[alarms.shelving.critical] by = "admin"`).
    #[serde(default)]
    pub shelving: std::collections::BTreeMap<Priority, crate::api::policy::RawShelveRule>,
}

fn yes() -> bool {
    true
}

fn default_flood() -> usize {
    10
}

fn default_chatter() -> usize {
    3
}

fn default_max_shelve() -> Duration {
    Duration::from_secs(8 * 3600)
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            communication_priority: default_priority(),
            diagnostic_priority: default_priority(),
            sensor_fault: true,
            sensor_fault_priority: default_priority(),
            suspect_data: true,
            suspect_priority: default_priority(),
            flood_threshold: default_flood(),
            chatter_threshold: default_chatter(),
            max_shelve: default_max_shelve(),
            shelving: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> ThresholdConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn levels_must_be_in_order_and_inside_the_range() {
        assert!(
            cfg("high = 25.0\nhigh_high = 50.0")
                .problems(Some((0.0, 100.0)))
                .is_empty()
        );
        let p = cfg("high = 50.0\nhigh_high = 25.0").problems(None);
        assert_eq!(p, vec!["high (50) must be below high_high (25)".to_string()]);
        let p = cfg("high = 25.0\nhigh_high = 150.0").problems(Some((0.0, 100.0)));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("outside the instrument's range"));
        assert_eq!(cfg("deadband = 1.0").problems(None).len(), 1);
    }

    #[test]
    fn falling_colours_must_descend() {
        let ok = cfg("direction = \"falling\"\nblue = 6.0\nyellow = 5.0\norange = 4.4\nred = 4.0");
        assert!(ok.problems(None).is_empty(), "{:?}", ok.problems(None));
        assert!(ok.limits().iter().all(|l| l.falling));
        let bad = cfg("blue = 6.0\nyellow = 5.0");
        assert_eq!(
            bad.problems(None),
            vec!["blue (6) must be below yellow (5)".to_string()]
        );
    }

    #[test]
    fn a_level_with_its_own_clear_value_becomes_its_own_rule() {
        let c = cfg("high = 1.0\nhigh_high = 1.5\ndeadband = 0.05\nclear = { high_high = 1.0 }");
        assert!(c.problems(Some((0.0, 4.0))).is_empty(), "{:?}", c.problems(None));
        let mut table = crate::model::PointTable::default();
        let point = table
            .insert(crate::model::PointMeta {
                name: "ch4".into(),
                unit: "%CH4".into(),
                kind: crate::model::PointKind::Methane,
                device: "s1".into(),
                hazard_source: None,
                range: Some((0.0, 4.0)),
                description: None,
            })
            .unwrap();
        let kinds = c.threshold_kinds(point, Some((0.0, 4.0)));
        let bands: Vec<(Vec<Level>, f64)> = kinds
            .iter()
            .map(|k| match k {
                RuleKind::Threshold { limits, deadband, .. } => (limits.iter().map(|l| l.level).collect(), *deadband),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bands, vec![(vec![Level::High], 0.05), (vec![Level::HighHigh], 0.5)]);
        let bad = cfg("high = 1.0\nclear = { high = 1.2, low = 0.0 }");
        assert_eq!(bad.problems(None).len(), 2, "{:?}", bad.problems(None));
    }

    #[test]
    fn percent_deadband_uses_the_span() {
        let c = cfg("high = 16.0\ndeadband_percent = 5.0");
        assert_eq!(c.deadband_for(Some((0.0, 20.0))), 1.0);
        assert_eq!(
            c.problems(None),
            vec!["deadband_percent needs the point to have a measuring range".to_string()]
        );
    }
}
