//! Rule configuration: which points a rule watches and its set-points.

use std::time::Duration;

use serde::Deserialize;

use super::units;
use crate::model::AlarmLevel;
use crate::rules::{Limit, Threshold};

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
    /// Distance back past a limit before its alarm clears; stops chattering at the limit.
    #[serde(default)]
    pub deadband: f64,
    /// How long a limit must be exceeded before the alarm is raised; filters spikes.
    /// Gas alarms usually run without one: the detector's response time already filters.
    #[serde(default, deserialize_with = "units::duration::deserialize")]
    pub on_delay: Duration,
}

impl ThresholdConfig {
    /// The configured limits from lowest to highest.
    fn levels(&self) -> Vec<(AlarmLevel, f64)> {
        [
            (AlarmLevel::LowLow, self.low_low),
            (AlarmLevel::Low, self.low),
            (AlarmLevel::High, self.high),
            (AlarmLevel::HighHigh, self.high_high),
        ]
        .into_iter()
        .filter_map(|(l, v)| v.map(|v| (l, v)))
        .collect()
    }

    /// Everything wrong with these set-points for a point measuring `range`.
    pub fn problems(&self, range: Option<(f64, f64)>) -> Vec<String> {
        let levels = self.levels();
        let mut out = Vec::new();
        if levels.is_empty() {
            out.push("a threshold needs at least one of high, high_high, low, low_low".to_string());
        }
        for (l, v) in &levels {
            if !v.is_finite() {
                out.push(format!("{} must be a finite number", l.as_str()));
            }
        }
        for pair in levels.windows(2) {
            let ((la, va), (lb, vb)) = (pair[0], pair[1]);
            if va >= vb {
                out.push(format!("{} ({va}) must be below {} ({vb})", la.as_str(), lb.as_str()));
            }
        }
        if !(self.deadband >= 0.0 && self.deadband.is_finite()) {
            out.push(format!("deadband must be zero or positive, got {}", self.deadband));
        }
        if let Some((lo, hi)) = range {
            for (l, v) in &levels {
                if *v < lo || *v > hi {
                    out.push(format!(
                        "{} set-point {v} lies outside the instrument's range {lo}..{hi}",
                        l.as_str()
                    ));
                }
            }
        }
        out
    }

    /// The rule engine's form, with each level's default priority.
    pub fn to_threshold(&self) -> Threshold {
        Threshold {
            limits: self
                .levels()
                .into_iter()
                .map(|(level, value)| Limit {
                    level,
                    value,
                    priority: Threshold::default_priority(level),
                })
                .collect(),
            deadband: self.deadband,
            on_delay: self.on_delay,
        }
    }
}

/// A `[[rules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name journaled with the rule's alarms; defaults to `rule-<n>`.
    #[serde(default)]
    pub name: Option<String>,
    /// A point id, or a glob over point ids (`MHS-001/GT-*`). Must match at least one point.
    pub points: toml::Spanned<String>,
    /// Threshold set-points. They replace the profile's defaults on the matched points.
    pub threshold: toml::Spanned<ThresholdConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(high: Option<f64>, high_high: Option<f64>) -> ThresholdConfig {
        ThresholdConfig {
            high,
            high_high,
            low: None,
            low_low: None,
            deadband: 1.0,
            on_delay: Duration::ZERO,
        }
    }

    #[test]
    fn levels_must_be_in_order_and_inside_the_range() {
        assert!(cfg(Some(25.0), Some(50.0)).problems(Some((0.0, 100.0))).is_empty());
        let p = cfg(Some(50.0), Some(25.0)).problems(None);
        assert_eq!(p, vec!["high (50) must be below high_high (25)".to_string()]);
        let p = cfg(Some(25.0), Some(150.0)).problems(Some((0.0, 100.0)));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("outside the instrument's range"));
        assert_eq!(cfg(None, None).problems(None).len(), 1);
    }
}
