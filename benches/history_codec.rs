//! Criterion benches of the embedded history's block codec (`sinks::history::codec`): packing a
//! run of one point's kept readings or minutes into blocks, and unpacking them for a read.

use std::fmt;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::Quality;
use hazard_gateway::sinks::history::codec::{
    MinuteSample, RawSample, decode_minutes, decode_raw, encode_minutes, encode_raw,
};

const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_764_000_000 * SEC;
/// The store closes a block near this many bytes.
const TARGET: usize = 900;

/// Which raw signal a scenario packs.
#[derive(Debug, Clone, Copy)]
enum RawScenario {
    /// A noisy value kept every second (the deadband passes nearly every reading).
    NoisyEverySecond,
    /// A value inside its deadband, kept at the 60 s heartbeat.
    SteadyHeartbeat,
    /// A two-state signal kept when it flips, at irregular times.
    DiscreteFlips,
}

impl fmt::Display for RawScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawScenario::NoisyEverySecond => "noisy_every_second",
            RawScenario::SteadyHeartbeat => "steady_heartbeat",
            RawScenario::DiscreteFlips => "discrete_flips",
        })
    }
}

fn raw_samples(s: RawScenario, n: usize) -> Vec<RawSample> {
    (0..n as i64)
        .map(|i| {
            let (ts, value) = match s {
                RawScenario::NoisyEverySecond => (T0 + i * SEC, 50.0 + ((i * 7919) as f64).sin() * 3.0),
                RawScenario::SteadyHeartbeat => (T0 + i * 60 * SEC, 42.0 + ((i * 104_729) as f64).sin() * 0.1),
                RawScenario::DiscreteFlips => (T0 + (i * i % 977 + i * 1200) * SEC, (i % 2) as f64),
            };
            RawSample {
                ts,
                value: Some(value),
                quality: Quality::Good,
            }
        })
        .collect()
}

fn minute_samples(n: usize) -> Vec<MinuteSample> {
    (0..n as i64)
        .map(|i| {
            let base = 50.0 + ((i * 7919) as f64).sin() * 3.0;
            MinuteSample {
                minute: 29_400_000 + i,
                min: Some(base - 0.4),
                max: Some(base + 0.45),
                sum: base * 60.0 + 0.013,
                count: 60,
                bad: 0,
            }
        })
        .collect()
}

fn bench_raw(c: &mut Criterion) {
    let mut g = c.benchmark_group("history_codec_raw");
    let n = 10_000;
    for s in [
        RawScenario::NoisyEverySecond,
        RawScenario::SteadyHeartbeat,
        RawScenario::DiscreteFlips,
    ] {
        let samples = raw_samples(s, n);
        let blocks = encode_raw(&samples, TARGET, 3600 * SEC);
        let bytes: usize = blocks.iter().map(|b| b.data.len()).sum();
        eprintln!(
            "history_codec_raw/{s}: {n} samples in {} blocks, {:.2} B per sample",
            blocks.len(),
            bytes as f64 / n as f64
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("encode", s), &samples, |b, samples| {
            b.iter(|| encode_raw(samples, TARGET, 3600 * SEC))
        });
        g.bench_with_input(BenchmarkId::new("decode", s), &blocks, |b, blocks| {
            b.iter(|| {
                blocks
                    .iter()
                    .map(|bl| decode_raw(&bl.data).expect("decode").len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn bench_minutes(c: &mut Criterion) {
    let mut g = c.benchmark_group("history_codec_minute");
    let n = 10_000;
    let samples = minute_samples(n);
    let blocks = encode_minutes(&samples, TARGET, 60);
    let bytes: usize = blocks.iter().map(|b| b.data.len()).sum();
    eprintln!(
        "history_codec_minute: {n} minutes in {} blocks, {:.2} B per minute",
        blocks.len(),
        bytes as f64 / n as f64
    );
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("encode/noisy_minutes", |b| {
        b.iter(|| encode_minutes(&samples, TARGET, 60))
    });
    g.bench_function("decode/noisy_minutes", |b| {
        b.iter(|| {
            blocks
                .iter()
                .map(|bl| decode_minutes(&bl.data).expect("decode").len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_raw, bench_minutes);
criterion_main!(benches);
