//! Criterion benches of the HJ 212 encoder on one core: real-time (2011) messages of 10 and
//! 100 points (the latter split into packets), minute (2051) statistics of 10 points, and the
//! centre's side of the stream (cutting frames out of bytes and checking their CRC).
//! Throughput is counted in frames, so reports read frames/s.

use std::fmt;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::clock::{ManualClock, SharedClock};
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::hj212::{Cou, Deframer, Hj212Encoder, Hj212Settings, Version};
use hazard_gateway::sinks::uplink::{Codes, Encoder, RecordKind, Stats, UplinkRecord, time};

const T0_MS: i64 = 1_764_000_000_000;

struct Case {
    name: &'static str,
    kind: RecordKind,
    points: usize,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

fn settings() -> Arc<Hj212Settings> {
    Arc::new(Hj212Settings {
        version: Version::V2017,
        st: "22".into(),
        mn: "010000A8900016F000169DC0".into(),
        pw: "123456".into(),
        ack: true,
        max_segment: 1024,
        zone: time::zone(time::DEFAULT_ZONE).expect("bundled zone"),
        cou: Cou::Count,
        decimals: None,
    })
}

fn records(kind: RecordKind, n: usize) -> Vec<UplinkRecord> {
    (0..n)
        .map(|i| {
            let v = 10.0 + i as f64 * 0.37;
            let quality = if i % 10 == 9 { Quality::CommFault } else { Quality::Good };
            UplinkRecord {
                kind,
                point: Arc::from(format!("plant/p{i}")),
                codes: Codes {
                    enterprise: Arc::from("E1"),
                    hazard_source: None,
                    point: Arc::from(format!("a{:05}", 21000 + i)),
                },
                unit: Arc::from("mg/m3"),
                time: Timestamp::from_millis(T0_MS),
                value: (quality == Quality::Good).then_some(v),
                quality,
                stats: (kind != RecordKind::Realtime && quality == Quality::Good).then_some(Stats {
                    min: v - 1.0,
                    avg: v,
                    max: v + 1.25,
                    count: 60,
                }),
                alarm: None,
                meta: None,
            }
        })
        .collect()
}

fn encoder() -> Hj212Encoder {
    let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::from_millis(T0_MS)));
    Hj212Encoder::new("bench", settings(), clock)
}

fn encode(c: &mut Criterion) {
    let cases = [
        Case {
            name: "realtime_10_points",
            kind: RecordKind::Realtime,
            points: 10,
        },
        Case {
            name: "realtime_100_points_split",
            kind: RecordKind::Realtime,
            points: 100,
        },
        Case {
            name: "minute_10_points",
            kind: RecordKind::Minute,
            points: 10,
        },
    ];
    let mut g = c.benchmark_group("hj212_encode");
    for case in &cases {
        let recs = records(case.kind, case.points);
        let mut enc = encoder();
        let frames: u64 = enc
            .encode(&recs)
            .expect("encodes")
            .iter()
            .map(|p| p.attr("frames").and_then(|f| f.parse::<u64>().ok()).unwrap_or(1))
            .sum();
        g.throughput(Throughput::Elements(frames));
        g.bench_with_input(BenchmarkId::from_parameter(case), &recs, |b, recs| {
            b.iter(|| enc.encode(recs).expect("encodes"));
        });
    }
    g.finish();
}

fn deframe(c: &mut Criterion) {
    let mut enc = encoder();
    let mut stream = Vec::new();
    let mut frames = 0u64;
    for _ in 0..100 {
        for p in enc.encode(&records(RecordKind::Realtime, 10)).expect("encodes") {
            stream.extend_from_slice(&p.body);
            frames += 1;
        }
    }
    let mut g = c.benchmark_group("hj212_deframe");
    g.throughput(Throughput::Elements(frames));
    g.bench_function("realtime_10_points_x100", |b| {
        b.iter(|| {
            let mut d = Deframer::new();
            d.push(&stream);
            let mut n = 0;
            while let Some(seg) = d.next_segment() {
                seg.expect("valid frame");
                n += 1;
            }
            n
        });
    });
    g.finish();
}

criterion_group!(benches, encode, deframe);
criterion_main!(benches);
