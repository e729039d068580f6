//! Synthetic signals and scripted scenarios for the simulator.
//!
//! Pure functions of elapsed time, so a scenario plays the same way in a test and a drill.

use std::time::Duration;

use serde::Deserialize;

use super::scenario::Episode;
use crate::spec::units;

/// The everyday behaviour of a simulated point: a base value with a slow swing and noise.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSignal {
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
}

fn default_period() -> Duration {
    Duration::from_secs(600)
}

impl Default for SimSignal {
    fn default() -> Self {
        Self {
            base: 0.0,
            amplitude: 0.0,
            period: default_period(),
            noise: 0.0,
        }
    }
}

impl SimSignal {
    /// Value at `elapsed` since the simulator started; `jitter` in -0.5..0.5 scales the noise.
    pub fn value_at(&self, elapsed: Duration, jitter: f64) -> f64 {
        let period = self.period.as_secs_f64().max(1e-3);
        let phase = std::f64::consts::TAU * elapsed.as_secs_f64() / period;
        self.base + self.amplitude * phase.sin() + self.noise * jitter
    }
}

/// A leak: the value ramps from its normal signal up to `peak`, holds, and ramps back down.
/// The demo uses it to walk a gas reading through both alarm set-points and out again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leak {
    /// Time from simulator start (or from each cycle start) to the start of the rise.
    pub start: Duration,
    /// Duration of the rise from the normal value to `peak`.
    pub rise: Duration,
    /// Time spent at `peak`.
    pub hold: Duration,
    /// Duration of the fall back to the normal value.
    pub fall: Duration,
    /// Highest value reached.
    pub peak: f64,
    /// Whether the leak repeats, and how often (cycle length, from one start to the next).
    pub repeat_every: Option<Duration>,
}

impl Leak {
    /// The demo's leak: crosses 25 %LEL about 10 s after start, 50 %LEL about 17 s after start,
    /// holds 40 s and clears about a minute and a half after start; repeats every 3 minutes.
    pub fn demo() -> Self {
        Self {
            start: Duration::from_secs(5),
            rise: Duration::from_secs(15),
            hold: Duration::from_secs(40),
            fall: Duration::from_secs(20),
            peak: 60.0,
            repeat_every: Some(Duration::from_secs(180)),
        }
    }

    /// The value at `elapsed`, given the normal value `normal` at that moment.
    pub fn value_at(&self, elapsed: Duration, normal: f64) -> f64 {
        let episode = Episode {
            start: self.start,
            rise: self.rise,
            hold: self.hold,
            fall: self.fall,
            repeat_every: self.repeat_every,
        };
        normal + (self.peak - normal) * episode.share(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_leak_crosses_both_gas_set_points_and_returns() {
        let leak = Leak::demo();
        let at = |s: u64| leak.value_at(Duration::from_secs(s), 2.0);
        assert!(at(0) < 25.0);
        let first = (0..120).find(|&s| at(s) >= 25.0).unwrap();
        let second = (0..120).find(|&s| at(s) >= 50.0).unwrap();
        assert!(first < 30, "first-level set-point within 30 s of start, got {first}");
        assert!(second > first);
        assert!(at(100) < 23.0, "back to normal past the deadband");
        assert!(at(180 + 30) > 50.0, "the leak repeats");
    }

    #[test]
    fn signal_swings_around_its_base() {
        let s = SimSignal {
            base: 10.0,
            amplitude: 2.0,
            period: Duration::from_secs(40),
            noise: 0.0,
        };
        assert!((s.value_at(Duration::from_secs(10), 0.0) - 12.0).abs() < 1e-9);
        assert!((s.value_at(Duration::from_secs(30), 0.0) - 8.0).abs() < 1e-9);
    }
}
