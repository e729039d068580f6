use super::*;
use crate::model::{Level, Priority};

const HIGH: Limit = Limit {
    level: Level::High,
    value: 25.0,
    priority: Priority::High,
    falling: false,
};

fn at(s: f64) -> Timestamp {
    Timestamp::from_millis((s * 1000.0) as i64)
}

/// Samples one second apart from `values`.
fn series(values: &[f64]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Sample {
            ts: at(i as f64),
            value: *v,
        })
        .collect()
}

fn naive() -> Settings {
    Settings {
        deadband: 0.0,
        on_delay: Duration::ZERO,
        off_delay: Duration::ZERO,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn simulation_raises_at_the_set_point_and_clears_past_the_deadband() {
    let s = series(&[20.0, 25.0, 24.0, 22.5, 23.0, 26.0]);
    let with_band = Settings {
        deadband: 2.0,
        ..naive()
    };
    assert_eq!(
        simulate(&s, &HIGH, &with_band),
        vec![
            Activation {
                raised: at(1.0),
                cleared: Some(at(3.0))
            },
            Activation {
                raised: at(5.0),
                cleared: None
            },
        ]
    );
    let raised: Vec<Timestamp> = simulate(&s, &HIGH, &naive()).iter().map(|a| a.raised).collect();
    assert_eq!(raised, vec![at(1.0), at(5.0)]);
}

#[test]
fn delays_expire_at_their_exact_due_time_between_samples() {
    // Samples every 4 s; a 2 s on-delay completes at 6 s, between the samples at 4 and 8.
    let s: Vec<Sample> = [20.0, 30.0, 30.0, 20.0, 20.0, 20.0]
        .iter()
        .enumerate()
        .map(|(i, v)| Sample {
            ts: at(i as f64 * 4.0),
            value: *v,
        })
        .collect();
    let d = Settings {
        on_delay: secs(2),
        off_delay: secs(5),
        ..naive()
    };
    assert_eq!(
        simulate(&s, &HIGH, &d),
        vec![Activation {
            raised: at(6.0),
            cleared: Some(at(17.0))
        }]
    );
}

#[test]
fn a_delay_that_runs_out_when_the_next_reading_comes_counts_as_run_out() {
    let s = series(&[2.0, 40.0, 2.0]);
    let d = Settings {
        on_delay: secs(1),
        ..naive()
    };
    assert_eq!(
        simulate(&s, &HIGH, &d),
        vec![Activation {
            raised: at(2.0),
            cleared: Some(at(2.0))
        }]
    );
}

#[test]
fn a_spike_shorter_than_the_on_delay_never_raises() {
    let s = series(&[2.0, 40.0, 40.0, 2.0, 2.0]);
    let d = Settings {
        on_delay: secs(3),
        ..naive()
    };
    assert!(simulate(&s, &HIGH, &d).is_empty());
    assert_eq!(simulate(&s, &HIGH, &naive()).len(), 1);
}

#[test]
fn chattering_counts_each_raise_that_is_the_third_within_a_minute() {
    let raises: Vec<Timestamp> = [0.0, 10.0, 20.0, 30.0, 100.0, 200.0, 230.0, 259.0]
        .iter()
        .map(|s| at(*s))
        .collect();
    // 20 and 30 (third and fourth within 60 s of 0), 259 (third of 200, 230, 259).
    assert_eq!(chattering(&raises), 3);
    assert_eq!(chattering(&raises[..2]), 0);
    // Exactly 60 s apart is outside the window.
    assert_eq!(chattering(&[at(0.0), at(30.0), at(60.0)]), 0);
}

#[test]
fn noise_is_estimated_from_successive_differences_and_ignores_steps() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut values: Vec<f64> = (0..20_000).map(|_| 10.0 + 0.5 * normal(&mut rng)).collect();
    // A large step halfway changes one difference, not the estimate.
    for v in values.iter_mut().skip(10_000) {
        *v += 30.0;
    }
    let sigma = noise(&series(&values));
    assert!((sigma - 0.5).abs() < 0.02, "estimated {sigma}");
    assert_eq!(noise(&series(&[1.0])), 0.0);
}

use rand::SeedableRng;
use rand::rngs::StdRng;

fn normal(rng: &mut StdRng) -> f64 {
    use rand::Rng;
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An hour of a value hovering at the set-point (chattering), then ten quiet minutes, then a
/// true excursion to 35 for five minutes, then quiet again.
fn chattering_then_true() -> (Vec<Sample>, f64) {
    let mut rng = StdRng::seed_from_u64(11);
    let mut v = Vec::new();
    for _ in 0..3600 {
        v.push(24.6 + 0.4 * normal(&mut rng));
    }
    for _ in 0..600 {
        v.push(15.0 + 0.4 * normal(&mut rng));
    }
    let true_start = v.len() as f64;
    for _ in 0..300 {
        v.push(35.0 + 0.4 * normal(&mut rng));
    }
    for _ in 0..600 {
        v.push(15.0 + 0.4 * normal(&mut rng));
    }
    (series(&v), true_start)
}

#[test]
fn a_chattering_alarm_gets_a_deadband_or_off_delay_and_its_true_alarm_is_not_delayed() {
    let (s, true_start) = chattering_then_true();
    let policy = Policy::for_point(Some((0.0, 100.0)), 25.0);
    let r = recommend(&s, &HIGH, &naive(), &policy);
    assert!(r.current_outcome.raises > 100, "{:?}", r.current_outcome);
    assert!(r.current_outcome.chattering > 50);
    assert_eq!(r.suggested_outcome.chattering, 0, "{r:?}");
    assert!(r.suggested_outcome.raises * 20 < r.current_outcome.raises, "{r:?}");
    assert_eq!(r.suggested_outcome.true_missed, 0);
    assert!(r.suggested_outcome.true_raised >= 1);
    assert!(Duration::from_millis(r.suggested_outcome.max_added_delay_ms) <= policy.max_delay);
    assert!(r.suggested.deadband <= policy.max_deadband);
    // With the suggested on-delay only the true excursion is active: its 300 s less the delay,
    // of the 5099 s replayed.
    assert_eq!(r.suggested.on_delay, secs(5), "{r:?}");
    let expect = 100.0 * 295.0 / 5099.0;
    assert!((r.suggested_outcome.active_pct - expect).abs() < 1e-9, "{r:?}");
    // The true excursion is raised by the suggestion within the bound of its crossing.
    let acts = simulate(&s, &HIGH, &r.suggested);
    assert!(
        acts.iter()
            .any(|a| a.raised >= at(true_start) && a.raised <= at(true_start).plus(policy.max_delay))
    );
}

#[test]
fn fleeting_spikes_get_an_on_delay_no_longer_than_the_bound() {
    // A quiet detector with a two-sample interference spike every ten minutes and one true
    // leak of three minutes.
    let mut v = vec![2.0; 7200];
    for k in 0..11 {
        v[300 + k * 600] = 45.0;
        v[301 + k * 600] = 45.0;
    }
    for x in v.iter_mut().skip(6800).take(180) {
        *x = 40.0;
    }
    let s = series(&v);
    let policy = Policy::for_point(Some((0.0, 100.0)), 25.0);
    let r = recommend(&s, &HIGH, &naive(), &policy);
    assert_eq!(r.current_outcome.raises, 12);
    assert_eq!(r.current_outcome.true_raised, 1, "only the leak persisted");
    // 11 spikes of 2 s (each cleared at the next reading) and the leak's 180 s, of 7199 s.
    let expect = 100.0 * (11.0 * 2.0 + 180.0) / 7199.0;
    assert!(
        (r.current_outcome.active_pct - expect).abs() < 1e-9,
        "{}",
        r.current_outcome.active_pct
    );
    assert_eq!(r.suggested_outcome.raises, 1, "{r:?}");
    // Two samples 1 s apart past the set-point, and the next at 2 s back: a 2 s on-delay could
    // run out at a tick just before that reading, so 3 s is the shortest that surely holds.
    assert_eq!(
        r.suggested.on_delay,
        secs(3),
        "the shortest on-delay that removes two-sample spikes"
    );
    assert_eq!(r.suggested_outcome.max_added_delay_ms, 3000);
    assert_eq!(r.suggested_outcome.median_added_delay_ms, 3000);
}

#[test]
fn no_on_delay_longer_than_the_bound_is_suggested_even_if_it_would_remove_more() {
    // Spikes of 20 s: removing them needs a 20 s on-delay, beyond a 10 s bound.
    let mut v = vec![2.0; 4000];
    for k in 0..5 {
        for x in v.iter_mut().skip(200 + k * 600).take(20) {
            *x = 45.0;
        }
    }
    for x in v.iter_mut().skip(3500).take(200) {
        *x = 40.0;
    }
    let policy = Policy {
        max_delay: secs(10),
        ..Policy::for_point(Some((0.0, 100.0)), 25.0)
    };
    let r = recommend(&series(&v), &HIGH, &naive(), &policy);
    assert!(r.suggested.on_delay <= secs(10), "{r:?}");
    assert_eq!(
        r.suggested_outcome.raises, 6,
        "the spikes stay: nothing within the bound removes them"
    );
    assert_eq!(r.suggested, naive(), "no change that does not help is suggested");
}

#[test]
fn a_clean_alarm_keeps_its_settings() {
    let mut v = vec![5.0; 1000];
    for x in v.iter_mut().skip(400).take(300) {
        *x = 30.0;
    }
    let current = Settings {
        deadband: 1.0,
        on_delay: secs(1),
        off_delay: Duration::ZERO,
    };
    let r = recommend(
        &series(&v),
        &HIGH,
        &current,
        &Policy::for_point(Some((0.0, 100.0)), 25.0),
    );
    assert_eq!(r.suggested, current);
    assert_eq!(r.current_outcome.raises, 1);
    assert_eq!(r.suggested_outcome, r.current_outcome);
}

#[test]
fn a_low_limit_is_tuned_on_its_falling_side() {
    let low = Limit {
        level: Level::Low,
        value: 19.5,
        priority: Priority::High,
        falling: true,
    };
    let mut v = vec![20.9; 3000];
    for k in 0..4 {
        v[100 + k * 500] = 19.0;
    }
    for x in v.iter_mut().skip(2500).take(200) {
        *x = 17.0;
    }
    let r = recommend(&series(&v), &low, &naive(), &Policy::for_point(Some((0.0, 25.0)), 19.5));
    assert_eq!(r.current_outcome.raises, 5);
    assert_eq!(r.suggested_outcome.raises, 1);
    assert_eq!(r.suggested.on_delay, secs(2));
    assert_eq!(r.suggested_outcome.true_missed, 0);
}
