//! Load harness for the embedded history: a compressed-time simulation of many points polled
//! once a second, driven by reading timestamps (not wall time), through the same
//! [`HistoryWriter`] the gateway's writer thread runs (deadband/heartbeat raw tier, minute
//! rollups, packing into blocks, pruning every simulated minute). Prints bytes on disk per
//! tier and per kept reading, readings/s ingested, the wall time of each one-second batch and
//! rows kept; extrapolates to the full window when asked to simulate less.
//!
//! ```sh
//! HISTORY_POINTS=10000 HISTORY_HOURS=3 HISTORY_JITTER_MS=20 cargo bench --bench history_load
//! ```
//! Signals (deterministic, seeded): 60 % steady process values (slow swing of 2–5 % of span,
//! noise 0.2 % of span peak-to-peak, inside the 0.5 % deadband), 25 % noisy ones (noise
//! 1.5 % of span, mostly outside it), 10 % discrete states that flip every ~30 min, 5 % with a
//! one-minute communication fault every ~2 h. Every point spans 0–100.

use std::time::Duration;

use hazard_gateway::config::HistorySettings;
use hazard_gateway::model::{PointKind, PointMeta, PointTable, Quality, Reading, Timestamp};
use hazard_gateway::sinks::history::{HistoryPolicy, HistoryStore, HistoryWriter, Retention};
use hazard_gateway::sources::sim::signal::SimSignal;

/// 2024-01-01T00:00:00Z.
const START_MS: i64 = 1_704_067_200_000;

/// A small deterministic generator (xorshift64*), so every run sees the same signals.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..1.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Signal {
    Analog(SimSignal),
    State {
        flip_every: u64,
        offset: u64,
    },
    Faulty {
        signal: SimSignal,
        fault_every: u64,
        offset: u64,
    },
}

impl Signal {
    fn build(i: usize, rng: &mut Rng) -> Signal {
        let analog = |rng: &mut Rng, noise: f64| SimSignal {
            base: 20.0 + 60.0 * rng.unit(),
            amplitude: 2.0 + 3.0 * rng.unit(),
            period: Duration::from_secs(600 + (rng.unit() * 6600.0) as u64),
            noise,
        };
        match i % 20 {
            0..12 => Signal::Analog(analog(rng, 0.2)),
            12..17 => Signal::Analog(analog(rng, 1.5)),
            17 | 18 => Signal::State {
                flip_every: 1200 + (rng.unit() * 1200.0) as u64,
                offset: rng.next() % 3600,
            },
            _ => Signal::Faulty {
                signal: analog(rng, 0.2),
                fault_every: 7200,
                offset: rng.next() % 7200,
            },
        }
    }

    fn sample(&self, second: u64, rng: &mut Rng) -> (f64, Quality) {
        match self {
            Signal::Analog(s) => (s.value_at(Duration::from_secs(second), rng.unit() - 0.5), Quality::Good),
            Signal::State { flip_every, offset } => ((((second + offset) / flip_every) % 2) as f64, Quality::Good),
            Signal::Faulty {
                signal,
                fault_every,
                offset,
            } => {
                if (second + offset) % fault_every < 60 {
                    (f64::NAN, Quality::CommFault)
                } else {
                    (
                        signal.value_at(Duration::from_secs(second), rng.unit() - 0.5),
                        Quality::Good,
                    )
                }
            }
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let points_n: usize = env_or("HISTORY_POINTS", 10_000);
    // Poll timestamps are taken from the clock, in ns: each reading lands up to this many ms
    // after its second, at random (0 = exact seconds, which compress better than real polls).
    let jitter_ms: u64 = env_or("HISTORY_JITTER_MS", 20);
    let hours: f64 = env_or("HISTORY_HOURS", 48.0);
    let window_hours = 48.0;
    let seconds = (hours * 3600.0) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.db");

    let mut table = PointTable::default();
    for i in 0..points_n {
        table.insert(PointMeta {
            name: format!("site-{:02}/dev-{:04}/p{i}", i % 40, i / 8).into(),
            unit: "%".into(),
            kind: PointKind::Other,
            device: format!("dev-{:04}", i / 8).into(),
            hazard_source: None,
            range: Some((0.0, 100.0)),
            description: None,
        });
    }
    let settings = HistorySettings::default();
    let keep = Retention {
        raw: settings.retention,
        rollup: settings.rollup_retention,
    };
    let store = HistoryStore::open(&path, &table).expect("open store");
    let mut writer = HistoryWriter::new(store, HistoryPolicy::new(&settings, &table));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let signals: Vec<Signal> = (0..points_n).map(|i| Signal::build(i, &mut rng)).collect();
    let ids: Vec<_> = table.iter().map(|(id, _)| id).collect();

    println!(
        "history_load: {points_n} points at 1 s (timestamps up to {jitter_ms} ms late, in ns) for {hours} h simulated ({} readings), deadband {} % of span, heartbeat {:?}",
        points_n as u64 * seconds,
        settings.deadband_percent,
        settings.heartbeat
    );
    let mut batch: Vec<Reading> = Vec::with_capacity(points_n);
    // Wall time of each one-second batch (all points): real time needs every one under 1 s.
    let mut call_ms: Vec<f64> = Vec::with_capacity(seconds as usize);
    let (mut readings, mut raw, mut minutes) = (0u64, 0u64, 0u64);
    let t0 = tokio::time::Instant::now();
    let mut last_report = t0;
    for second in 0..seconds {
        let ts = Timestamp::from_millis(START_MS + second as i64 * 1000);
        batch.clear();
        for (id, sig) in ids.iter().zip(&signals) {
            let (value, quality) = sig.sample(second, &mut rng);
            let jitter = if jitter_ms == 0 {
                0
            } else {
                rng.next() % (jitter_ms * 1_000_000)
            };
            batch.push(Reading {
                point: *id,
                ts: ts.plus(Duration::from_nanos(jitter)),
                value,
                quality,
            });
        }
        let call = tokio::time::Instant::now();
        let done = writer.ingest(std::slice::from_ref(&batch), ts).expect("ingest");
        call_ms.push(call.elapsed().as_secs_f64() * 1e3);
        readings += done.readings as u64;
        raw += done.raw as u64;
        minutes += done.minutes as u64;
        if second % 60 == 59 {
            writer.prune(ts, keep).expect("prune");
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = tokio::time::Instant::now();
            eprintln!(
                "  {:.2} h simulated, {:.0} readings/s so far, {} bytes",
                second as f64 / 3600.0,
                readings as f64 / t0.elapsed().as_secs_f64(),
                dir_bytes(dir.path())
            );
        }
    }
    let done = writer.flush().expect("flush");
    minutes += done.minutes as u64;
    let wall = t0.elapsed().as_secs_f64();
    let with_wal = dir_bytes(dir.path());

    let conn = rusqlite::Connection::open(&path).expect("reopen");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let on_disk = dir_bytes(dir.path());
    let tables: Vec<(String, i64)> = conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("dbstat");
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect("count");
    let bytes = |name: &str| tables.iter().find(|(n, _)| n == name).map_or(0, |(_, b)| *b) as f64;
    let free = count("PRAGMA freelist_count") * count("PRAGMA page_size");
    let raw_tail = count("SELECT COUNT(*) FROM raw_readings");
    let raw_packed = count("SELECT COALESCE(SUM(n), 0) FROM raw_blocks");
    let raw_blocks = count("SELECT COUNT(*) FROM raw_blocks");
    let raw_blob = count("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM raw_blocks");
    let min_tail = count("SELECT COUNT(*) FROM rollup_minute");
    let min_packed = count("SELECT COALESCE(SUM(n), 0) FROM minute_blocks");
    let min_blocks = count("SELECT COUNT(*) FROM minute_blocks");
    let min_blob = count("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM minute_blocks");
    let (rb, rt, mb, mt) = (
        bytes("raw_blocks") + bytes("raw_blocks_point"),
        bytes("raw_readings"),
        bytes("minute_blocks") + bytes("minute_blocks_point"),
        bytes("rollup_minute"),
    );
    let rate = readings as f64 / wall;
    call_ms.sort_by(f64::total_cmp);
    let q = |p: f64| {
        call_ms
            .get(((call_ms.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };

    println!("ingest: {readings} readings in {wall:.1} s wall = {rate:.0} readings/s");
    println!(
        "per one-second batch of {points_n} readings: p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
    println!(
        "keeps up with {points_n} points at 1 s ({points_n} readings/s): {} ({:.1}x)",
        if rate >= points_n as f64 { "yes" } else { "NO" },
        rate / points_n as f64
    );
    println!(
        "kept: {} raw readings = {:.2} % of readings ({raw} written); {minutes} minutes written or merged",
        raw_packed + raw_tail,
        100.0 * (raw_packed + raw_tail) as f64 / readings as f64
    );
    println!(
        "on disk: {on_disk} bytes after checkpoint ({with_wal} with the WAL before it), {free} of them free pages"
    );
    println!(
        "raw: {raw_packed} readings in {raw_blocks} blocks, {rb:.0} B of pages (with its index) = {:.2} B per packed reading (blobs alone {:.2} B); tail {raw_tail} rows in {rt:.0} B",
        rb / raw_packed.max(1) as f64,
        raw_blob as f64 / raw_packed.max(1) as f64
    );
    println!(
        "minutes: {min_packed} minutes in {min_blocks} blocks, {mb:.0} B of pages (with its index) = {:.2} B per packed minute (blobs alone {:.2} B); tail {min_tail} rows in {mt:.0} B",
        mb / min_packed.max(1) as f64,
        min_blob as f64 / min_packed.max(1) as f64
    );
    println!("all tables: {tables:?}");
    // Blocks grow with time; the tails (about an hour per point) and the point names do not.
    // Blocks are scaled by bytes per packed sample times the samples of the full window, so
    // the readings still in the tails count once in each (a slight overestimate).
    let fixed = on_disk as f64 - rb - mb - free as f64;
    let kept_window = (raw_packed + raw_tail) as f64 * window_hours / hours;
    let minutes_window = points_n as f64 * window_hours * 60.0;
    let raw_window = rb / raw_packed.max(1) as f64 * kept_window;
    let min_window = mb / min_packed.max(1) as f64 * minutes_window;
    println!(
        "EXTRAPOLATED to {window_hours} h ({kept_window:.0} kept readings, {minutes_window:.0} minutes): {:.2} GB on disk = raw blocks {:.2} GB + minute blocks {:.2} GB + tails/points/free pages {:.2} GB",
        (raw_window + min_window + fixed + free as f64) / 1e9,
        raw_window / 1e9,
        min_window / 1e9,
        (fixed + free as f64) / 1e9
    );
    let rollup_days = keep.rollup.as_secs_f64() / 86_400.0;
    let per_minute = mb / min_packed.max(1) as f64;
    println!(
        "EXTRAPOLATED minute tier at the {rollup_days:.0}-day window: {:.1} GB ({points_n} points x {:.0} minutes x {per_minute:.2} B)",
        points_n as f64 * rollup_days * 1440.0 * per_minute / 1e9,
        rollup_days * 1440.0,
    );
}
