//! Criterion benches of the per-reading hot paths: register decoding, read planning and the
//! history writer's batch ingest (rule evaluation: `benches/rules.rs`).

use std::fmt;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::config::HistorySettings;
use hazard_gateway::model::{PointKind, PointMeta, PointTable, Quality, Reading, Timestamp};
use hazard_gateway::sinks::history::{HistoryPolicy, HistoryStore, HistoryWriter};
use hazard_gateway::sources::modbus::decoder::{decode, encode};
use hazard_gateway::sources::modbus::planner::{ReadLimits, Splits, plan};
use hazard_gateway::sources::modbus::register::{DataType, RegisterFunction, RegisterSpec, Scaling, WordOrder};

#[derive(Clone, Copy)]
struct Case(&'static str, DataType, WordOrder);

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn spec(data_type: DataType, word_order: WordOrder, address: u16) -> RegisterSpec {
    RegisterSpec {
        function: RegisterFunction::Holding,
        address,
        data_type,
        word_order,
        scaling: Scaling::Range {
            raw: (4000.0, 20000.0),
            eng: (0.0, 100.0),
        },
        range: Some((0.0, 100.0)),
    }
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    const N: usize = 1000;
    g.throughput(Throughput::Elements(N as u64));
    for case in [
        Case("u16_4_20mA", DataType::U16, WordOrder::ABCD),
        Case("i32_cdab", DataType::I32, WordOrder::CDAB),
        Case("f32_abcd", DataType::F32, WordOrder::ABCD),
        Case("f64_dcba", DataType::F64, WordOrder::DCBA),
        Case("i64_cdab", DataType::I64, WordOrder::CDAB),
        Case("bcd32_abcd", DataType::Bcd32, WordOrder::ABCD),
        Case("ascii8_badc", DataType::Ascii { words: 4 }, WordOrder::BADC),
    ] {
        let s = spec(case.1, case.2, 0);
        let words: Vec<Vec<u16>> = (0..N).map(|i| encode(&s, (i % 100) as f64)).collect();
        g.bench_with_input(BenchmarkId::from_parameter(case), &words, |b, words| {
            b.iter(|| {
                let mut sum = 0.0;
                for w in words {
                    sum += decode(&s, w).0;
                }
                sum
            })
        });
    }
    g.finish();
}

fn bench_plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    for n in [16usize, 256, 2048] {
        let points: Vec<_> = (0..n)
            .map(|i| spec(DataType::F32, WordOrder::ABCD, (i * 3 % 60_000) as u16))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("points", n), &points, |b, pts| {
            b.iter(|| {
                plan(
                    pts,
                    ReadLimits {
                        max_registers: 125,
                        max_gap: 1,
                        ..ReadLimits::default()
                    },
                    &Splits::new(),
                )
                .len()
            })
        });
    }
    g.finish();
}

fn bench_history(c: &mut Criterion) {
    let mut g = c.benchmark_group("history_ingest");
    g.sample_size(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut table = PointTable::default();
    for i in 0..1000 {
        table.insert(PointMeta {
            name: format!("MHS-001/GT-{i}").into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: "d".into(),
            hazard_source: None,
            range: None,
            description: None,
        });
    }
    let store = HistoryStore::open(&dir.path().join("bench.db"), &table).expect("store");
    // No range and no deadband: every changed value is kept, the worst case for raw history.
    let settings = HistorySettings {
        deadband_percent: 0.0,
        ..HistorySettings::default()
    };
    let mut writer = HistoryWriter::new(store, HistoryPolicy::new(&settings, &table));
    let mut second = 0i64;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("batch_of_1000_all_kept", |b| {
        b.iter(|| {
            second += 1;
            let ts = Timestamp::from_millis(second * 1000);
            let batch: Vec<Reading> = table
                .iter()
                .enumerate()
                .map(|(i, (id, _))| Reading {
                    point: id,
                    ts,
                    value: (i as i64 + second) as f64,
                    quality: Quality::Good,
                })
                .collect();
            writer.ingest(&[batch], ts).expect("ingest")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_plan, bench_history);
criterion_main!(benches);
