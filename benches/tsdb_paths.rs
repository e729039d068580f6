//! Criterion benches of the store output's hot paths: line-protocol encoding of readings
//! and the durable buffer's append + acknowledge cycle.

use std::fmt;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hazard_gateway::model::{PointKind, PointMeta, PointTable, Quality, Reading, Timestamp};
use hazard_gateway::sinks::buffer::{BufferConfig, DiskQueue, FsyncPolicy, WhenFull};
use hazard_gateway::sinks::tsdb::schema::ReadingEncoder;

fn table(n: usize) -> PointTable {
    let mut t = PointTable::default();
    for i in 0..n {
        t.insert(PointMeta {
            name: format!("MHS-{:03}/GT-{i:04}", i % 7).into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: format!("gas-ai-{}", i / 4).into(),
            hazard_source: Some(format!("MHS-{:03}", i % 7).into()),
            range: Some((0.0, 100.0)),
            description: None,
        });
    }
    t
}

fn readings(points: &PointTable, n: usize) -> Vec<Reading> {
    let ids: Vec<_> = points.iter().map(|(id, _)| id).collect();
    (0..n)
        .map(|i| Reading {
            point: ids[i % ids.len()],
            ts: Timestamp::from_nanos(1_764_000_000_000_000_000 + i as i64 * 1_000_017),
            value: 12.5 + (i % 1000) as f64 * 0.037,
            quality: if i % 97 == 0 { Quality::CommFault } else { Quality::Good },
        })
        .collect()
}

fn bench_encode(c: &mut Criterion) {
    let points = table(1000);
    let enc = ReadingEncoder::new("park-a-gw1", &points);
    let batch = readings(&points, 5000);
    let mut g = c.benchmark_group("encode_lines");
    g.throughput(Throughput::Elements(batch.len() as u64));
    let mut out = String::with_capacity(1 << 20);
    g.bench_function("readings/5000", |b| {
        b.iter(|| {
            out.clear();
            for r in &batch {
                let _ = enc.encode(r, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

#[derive(Clone, Copy)]
struct Batch(usize);

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_readings_per_record", self.0)
    }
}

fn bench_buffer(c: &mut Criterion) {
    let points = table(1000);
    let enc = ReadingEncoder::new("park-a-gw1", &points);
    let mut g = c.benchmark_group("buffer_append_ack");
    for batch in [Batch(100), Batch(1000)] {
        let mut text = String::new();
        for r in readings(&points, batch.0) {
            let _ = enc.encode(&r, &mut text);
        }
        let payload = text.into_bytes();
        let dir = tempfile::tempdir().unwrap();
        let cfg = BufferConfig::new(256 << 20, WhenFull::DropOldest, FsyncPolicy::Never);
        let (mut q, _) = DiskQueue::open(dir.path(), cfg).unwrap();
        g.throughput(Throughput::Elements(batch.0 as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &payload, |b, payload| {
            b.iter(|| {
                q.append(payload, batch.0 as u32, Timestamp::from_nanos(1)).unwrap();
                let r = q.next_unsent().unwrap().unwrap();
                q.ack(r.seq).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_encode, bench_buffer);
criterion_main!(benches);
