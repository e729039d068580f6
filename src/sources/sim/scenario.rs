//! Drill scenarios a device profile can play: a leak, a slow rise, a sensor fault and a loss of
//! communication, plus the per-point simulator model they act on.
//!
//! Design: every scenario is one [`Episode`] on the simulator's clock (start, rise, hold, fall),
//! so the value served is a pure function of elapsed time and a test can walk a scenario by
//! moving a manual clock. A leak and a slow rise ramp each target point from its everyday
//! signal to its `excursion` and back; a sensor fault serves each target's `fault` value
//! during the hold; a communication loss leaves every request unanswered during the hold.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::signal::SimSignal;
use crate::spec::units;

/// The drills a profile offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// A fast rise to the excursion value (a gas release, an overfill), held, then gone.
    Leak,
    /// The same excursion reached slowly (a creeping leak, a rising seepage line).
    SlowRise,
    /// The sensor reports a fault: the value goes outside the measuring range, status bits set.
    SensorFault,
    /// The device stops answering (cable cut, substation or DTU down).
    CommLoss,
}

impl ScenarioKind {
    /// Every kind, in the order drills usually run.
    pub const ALL: [ScenarioKind; 4] = [
        ScenarioKind::Leak,
        ScenarioKind::SlowRise,
        ScenarioKind::SensorFault,
        ScenarioKind::CommLoss,
    ];

    /// The name used on the command line and in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Leak => "leak",
            ScenarioKind::SlowRise => "slow_rise",
            ScenarioKind::SensorFault => "sensor_fault",
            ScenarioKind::CommLoss => "comm_loss",
        }
    }

    /// Parses a command-line name (`leak`, `slow_rise` or `slow-rise`, ...).
    pub fn parse(text: &str) -> Option<ScenarioKind> {
        let t = text.replace('-', "_");
        Self::ALL.into_iter().find(|k| k.as_str() == t)
    }

    /// The timing used when the profile does not set one.
    pub fn default_episode(self) -> Episode {
        let s = Duration::from_secs;
        match self {
            ScenarioKind::Leak => Episode::new(s(5), s(15), s(60), s(20)),
            ScenarioKind::SlowRise => Episode::new(s(5), s(20 * 60), s(5 * 60), s(10 * 60)),
            ScenarioKind::SensorFault | ScenarioKind::CommLoss => Episode::new(s(5), s(0), s(60), s(0)),
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The timing of one scenario, from the start of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// Quiet time before the scenario begins.
    pub start: Duration,
    /// Ramp from the everyday value to the excursion (zero for faults and comm loss).
    pub rise: Duration,
    /// Time at the excursion, in fault, or silent.
    pub hold: Duration,
    /// Ramp back to the everyday value.
    pub fall: Duration,
    /// Replays the scenario with this period, for unattended drills.
    pub repeat_every: Option<Duration>,
}

impl Episode {
    /// An episode played once.
    pub fn new(start: Duration, rise: Duration, hold: Duration, fall: Duration) -> Self {
        Self {
            start,
            rise,
            hold,
            fall,
            repeat_every: None,
        }
    }

    /// Start plus rise plus hold plus fall: when the scenario is over.
    pub fn end(&self) -> Duration {
        self.start + self.rise + self.hold + self.fall
    }

    /// Time into the current cycle, or `None` before the start.
    fn offset(&self, elapsed: Duration) -> Option<f64> {
        let mut t = elapsed.as_secs_f64();
        if let Some(every) = self.repeat_every {
            t %= every.as_secs_f64().max(1e-3);
        }
        let t = t - self.start.as_secs_f64();
        (t >= 0.0).then_some(t)
    }

    /// How far the value has moved from its everyday signal towards the excursion: 0..=1.
    pub fn share(&self, elapsed: Duration) -> f64 {
        let Some(t) = self.offset(elapsed) else { return 0.0 };
        let (rise, hold, fall) = (
            self.rise.as_secs_f64(),
            self.hold.as_secs_f64(),
            self.fall.as_secs_f64(),
        );
        if t < rise {
            t / rise.max(1e-9)
        } else if t < rise + hold {
            1.0
        } else if t < rise + hold + fall {
            1.0 - (t - rise - hold) / fall.max(1e-9)
        } else {
            0.0
        }
    }

    /// Whether the scenario is in its hold phase (fault present, device silent).
    pub fn holding(&self, elapsed: Duration) -> bool {
        self.offset(elapsed).is_some_and(|t| {
            let rise = self.rise.as_secs_f64();
            t >= rise && t < rise + self.hold.as_secs_f64()
        })
    }
}

/// A scenario's timing as a profile may override it under `[scenarios.<kind>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeConfig {
    /// Quiet time before the scenario begins.
    #[serde(default, deserialize_with = "opt_duration")]
    pub start: Option<Duration>,
    /// Ramp up to the excursion.
    #[serde(default, deserialize_with = "opt_duration")]
    pub rise: Option<Duration>,
    /// Time at the excursion, in fault or silent.
    #[serde(default, deserialize_with = "opt_duration")]
    pub hold: Option<Duration>,
    /// Ramp back down.
    #[serde(default, deserialize_with = "opt_duration")]
    pub fall: Option<Duration>,
    /// Points the scenario acts on (default: every point with an `excursion` for a leak or
    /// slow rise, every point with a `fault` value for a sensor fault).
    #[serde(default)]
    pub points: Option<Vec<String>>,
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    units::duration::deserialize(d).map(Some)
}

impl EpisodeConfig {
    /// The episode, defaults filled in from `kind`.
    pub fn episode(&self, kind: ScenarioKind) -> Episode {
        let d = kind.default_episode();
        Episode::new(
            self.start.unwrap_or(d.start),
            self.rise.unwrap_or(d.rise),
            self.hold.unwrap_or(d.hold),
            self.fall.unwrap_or(d.fall),
        )
    }
}

/// One scenario a profile offers: its timing and the points it acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    /// Timing on the simulator's clock.
    pub episode: Episode,
    /// Indexes of the profile points it drives (none for a communication loss).
    pub targets: Vec<usize>,
}

/// The scenarios of a profile, by kind.
pub type ScenarioSet = BTreeMap<ScenarioKind, Drill>;

/// The `sim = { ... }` table of a profile point: its everyday signal and its part in drills.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimModel {
    /// Value around which the point rests.
    #[serde(default)]
    pub base: f64,
    /// Peak deviation of a slow sine swing.
    #[serde(default)]
    pub amplitude: f64,
    /// Period of the swing.
    #[serde(default = "default_period", deserialize_with = "units::duration::deserialize")]
    pub period: Duration,
    /// Peak-to-peak uniform noise.
    #[serde(default)]
    pub noise: f64,
    /// Value a leak or slow rise drives the point to; past every default set-point.
    #[serde(default)]
    pub excursion: Option<f64>,
    /// Value served while the sensor is faulty (outside the measuring range, e.g. the
    /// 0xFFFF fault code of a detector or 3.6 mA on a 4-20 mA loop).
    #[serde(default)]
    pub fault: Option<f64>,
    /// A status bit that follows another point of the device (an alarm relay, power-cut
    /// feedback): set when that point reaches `on`, reset when it falls below `off`.
    #[serde(default)]
    pub follows: Option<String>,
    /// Set value of a `follows` bit.
    #[serde(default)]
    pub on: Option<f64>,
    /// Reset value of a `follows` bit (default: `on`); below `on` gives hysteresis.
    #[serde(default)]
    pub off: Option<f64>,
    /// A status bit set while the named point is in sensor fault.
    #[serde(default)]
    pub fault_of: Option<String>,
}

fn default_period() -> Duration {
    Duration::from_secs(600)
}

impl Default for SimModel {
    fn default() -> Self {
        Self {
            base: 0.0,
            amplitude: 0.0,
            period: default_period(),
            noise: 0.0,
            excursion: None,
            fault: None,
            follows: None,
            on: None,
            off: None,
            fault_of: None,
        }
    }
}

impl SimModel {
    /// The everyday signal.
    pub fn signal(&self) -> SimSignal {
        SimSignal {
            base: self.base,
            amplitude: self.amplitude,
            period: self.period,
            noise: self.noise,
        }
    }

    /// Lowest and highest everyday value (swing plus half the noise).
    pub fn everyday_band(&self) -> (f64, f64) {
        let spread = self.amplitude.abs() + self.noise.abs() / 2.0;
        (self.base - spread, self.base + spread)
    }
}

/// How a point takes part in drills, resolved against its profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PointDrill {
    /// Target of a leak or slow rise.
    pub excursion: Option<f64>,
    /// Value served in sensor fault.
    pub fault: Option<f64>,
    /// Status bit behaviour.
    pub status: Option<StatusLink>,
}

/// A status bit derived from another point of the same device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatusLink {
    /// Set at `on` or above, reset below `off`, following point `index`.
    Follows {
        /// Index of the followed point in the profile.
        index: usize,
        /// Set value.
        on: f64,
        /// Reset value.
        off: f64,
    },
    /// Set while point `index` is in sensor fault.
    FaultOf {
        /// Index of the watched point in the profile.
        index: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_ramps_holds_and_returns() {
        let s = Duration::from_secs;
        let e = Episode::new(s(10), s(10), s(20), s(10));
        assert_eq!(e.share(s(5)), 0.0);
        assert!((e.share(s(15)) - 0.5).abs() < 1e-9);
        assert_eq!(e.share(s(25)), 1.0);
        assert!(e.holding(s(25)) && !e.holding(s(15)) && !e.holding(s(45)));
        assert!((e.share(s(45)) - 0.5).abs() < 1e-9);
        assert_eq!(e.share(e.end()), 0.0);
    }

    #[test]
    fn a_repeating_episode_plays_again() {
        let s = Duration::from_secs;
        let mut e = Episode::new(s(0), s(0), s(10), s(0));
        e.repeat_every = Some(s(30));
        assert!(e.holding(s(5)) && !e.holding(s(15)) && e.holding(s(35)));
    }

    #[test]
    fn kinds_parse_from_the_command_line() {
        assert_eq!(ScenarioKind::parse("slow-rise"), Some(ScenarioKind::SlowRise));
        assert_eq!(ScenarioKind::parse("comm_loss"), Some(ScenarioKind::CommLoss));
        assert_eq!(ScenarioKind::parse("flood"), None);
    }
}
