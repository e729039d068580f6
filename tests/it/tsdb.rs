//! The time-series store output against real stores started by the tests: Debian's
//! VictoriaMetrics (v2 write API) and InfluxDB 1.x (v1 write API), on free loopback ports.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::GatewayConfig;
use hazard_gateway::model::{
    AlarmClass, AlarmEvent, AlarmState, ConditionKind, Level, PointKind, PointMeta, PointTable, Priority, Quality,
    Reading, SubjectKind, Timestamp, Transition,
};
use hazard_gateway::sinks::tsdb::{self, SinkItem, Store, TsdbSpec};
use hazard_gateway::telemetry::Metrics;
use support::{InfluxV1, VictoriaMetrics, WAIT, metric, wait_for};

/// A validated `[[tsdb]]` entry from TOML text, through the real config validation.
fn spec(body: &str) -> TsdbSpec {
    let text = format!("[gateway]\nid = \"gw\"\n[[tsdb]]\n{body}\n");
    let cfg = GatewayConfig::parse(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    cfg.tsdb.into_iter().next().unwrap()
}

fn points(names: &[(&str, &str)]) -> PointTable {
    let mut t = PointTable::default();
    for (name, unit) in names {
        t.insert(PointMeta {
            name: (*name).into(),
            unit: (*unit).into(),
            kind: PointKind::Gas,
            device: "gas ai,1".into(),
            hazard_source: Some("MHS-001".into()),
            range: None,
            description: None,
        })
        .unwrap();
    }
    t
}

async fn wait_sent(metrics: &Metrics, store: &str, lines: f64) {
    let label = format!("store=\"{store}\"");
    wait_for("the store to acknowledge every line", WAIT, || {
        let sent = metric(&metrics.render(), "hazard_tsdb_lines_sent_total", &[&label]);
        async move { (sent >= lines).then_some(()) }
    })
    .await;
}

const TRICKY: [f64; 8] = [
    0.1,
    -273.15,
    1e-300,
    1.797_693_134_862_315_7e308,
    123_456_789.123_456_78,
    42.0,
    5e-324,
    -1.5e-7,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_and_names_round_trip_exactly_through_influxdb_v1() {
    let influx = InfluxV1::start();
    influx.query("", "CREATE DATABASE plant").await;
    let names = [("MHS-001/GT 101", "%LEL"), ("罐区,T=1 \"x\"", "°C"), ("plain", "")];
    let table = points(&names);
    let s = spec(&format!(
        "url = \"{}\"\napi = \"v1\"\ndb = \"plant\"\nbatch_lines = 3\nbatch_age = \"50ms\"",
        influx.url()
    ));
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store = Store::start(&s, "gw 1", &table, dir.path(), clock::system(), metrics.tsdb.clone()).unwrap();
    let base = 1_700_000_000_000_000_000i64;
    let mut sent = 0;
    for (i, (_, _)) in names.iter().enumerate() {
        let id = table.id_of(names[i].0).unwrap();
        let batch: Vec<Reading> = TRICKY
            .iter()
            .enumerate()
            .map(|(j, v)| Reading {
                point: id,
                ts: Timestamp::from_nanos(base + j as i64 * 1_000_000_007 + i as i64),
                value: *v,
                quality: if j == 3 { Quality::OutOfRange } else { Quality::Good },
            })
            .chain(std::iter::once(Reading {
                point: id,
                ts: Timestamp::from_nanos(base - 1000),
                value: f64::NAN,
                quality: Quality::CommFault,
            }))
            .collect();
        sent += batch.len();
        store.tx.send(SinkItem::Readings(batch)).await.unwrap();
    }
    let alarm = AlarmEvent {
        seq: 3,
        alarm_id: "MHS-001/GT 101:high".into(),
        rule: "first level".into(),
        subject: "MHS-001/GT 101".into(),
        subject_kind: SubjectKind::Point,
        hazard_source: Some("MHS-001".into()),
        condition: ConditionKind::Threshold,
        class: AlarmClass::Process,
        level: Some(Level::High),
        priority: Priority::High,
        transition: Transition::Raised,
        state: AlarmState::UnackActive,
        acknowledged: false,
        latching: false,
        shelved_until: None,
        suppressed: false,
        out_of_service: false,
        value: 27.5,
        limit: Some(25.0),
        unit: "%LEL".into(),
        ts: Timestamp::from_nanos(base + 5),
        raised_at: Some(Timestamp::from_nanos(base + 5)),
        user: None,
        comment: None,
        category: None,
        predicted_at: None,
    };
    store.tx.send(SinkItem::Alarm(Box::new(alarm))).await.unwrap();
    wait_sent(&metrics, "tsdb0", (sent + 1) as f64).await;
    store.shutdown().await;

    for (i, (name, unit)) in names.iter().enumerate() {
        let q = format!(
            "SELECT value, quality, gateway, device, hazard_source, kind, unit FROM hazard_reading WHERE point = '{}' ORDER BY time",
            name.replace('\'', "\\'")
        );
        let r = influx.query("plant", &q).await;
        let rows = r["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {r}"))
            .clone();
        assert_eq!(rows.len(), TRICKY.len() + 1, "{name}");
        // Row 0 is the comm-fault reading (earliest timestamp): quality only, no value.
        assert_eq!(rows[0][1], serde_json::Value::Null);
        assert_eq!(rows[0][2], 1);
        for (j, v) in TRICKY.iter().enumerate() {
            let row = &rows[j + 1];
            assert_eq!(
                row[0].as_i64().unwrap(),
                base + j as i64 * 1_000_000_007 + i as i64,
                "{name} ts"
            );
            assert_eq!(row[1].as_f64().unwrap().to_bits(), v.to_bits(), "{name} value {v}");
            assert_eq!(row[2], if j == 3 { 3 } else { 0 });
            assert_eq!(row[3], "gw 1");
            assert_eq!(row[4], "gas ai,1");
            assert_eq!(row[5], "MHS-001");
            assert_eq!(row[6], "gas");
            assert_eq!(
                row[7],
                if unit.is_empty() {
                    serde_json::Value::Null
                } else {
                    (*unit).into()
                }
            );
        }
    }
    let a = influx
        .query(
            "plant",
            "SELECT active, value, \"limit\", seq, transition, priority FROM hazard_alarm",
        )
        .await;
    let row = &a["results"][0]["series"][0]["values"][0];
    assert_eq!(row[0].as_i64(), Some(base + 5));
    assert_eq!(
        (row[1].as_i64(), row[2].as_f64(), row[3].as_f64(), row[4].as_i64()),
        (Some(1), Some(27.5), Some(25.0), Some(3))
    );
    assert_eq!((row[5].as_str(), row[6].as_str()), (Some("raised"), Some("high")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_round_trip_through_victoriametrics_v2_with_gzip() {
    let vm = VictoriaMetrics::start();
    let names = [("MHS-001/GT 101", "%LEL"), ("罐区,T=1 a\\b", "°C")];
    let table = points(&names);
    let s = spec(&format!(
        "url = \"{}\"\napi = \"v2\"\norg = \"park-a\"\nbucket = \"safety\"\nbatch_age = \"50ms\"\ngzip = true",
        vm.url()
    ));
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store = Store::start(&s, "gw-1", &table, dir.path(), clock::system(), metrics.tsdb.clone()).unwrap();
    let base = 1_700_000_000_000i64;
    let values = [0.1, -273.15, 123_456.789, 42.0, -1.5e-7];
    for (name, _) in &names {
        let id = table.id_of(name).unwrap();
        let batch = values
            .iter()
            .enumerate()
            .map(|(j, v)| Reading {
                point: id,
                ts: Timestamp::from_millis(base + j as i64 * 1000),
                value: *v,
                quality: Quality::Good,
            })
            .collect();
        store.tx.send(SinkItem::Readings(batch)).await.unwrap();
    }
    wait_sent(&metrics, "tsdb0", 10.0).await;
    store.shutdown().await;
    let series = vm.export("hazard_reading_value").await;
    assert_eq!(series.len(), 2);
    for (name, unit) in &names {
        let (labels, ts, vals) = series
            .iter()
            .find(|(l, _, _)| l["point"] == *name)
            .unwrap_or_else(|| panic!("{name}: {series:?}"));
        assert_eq!(labels["unit"], *unit);
        assert_eq!(labels["gateway"], "gw-1");
        assert_eq!(ts, &(0..5).map(|j| base + j * 1000).collect::<Vec<_>>());
        assert_eq!(vals, &values.to_vec(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_reach_victoriametrics_over_https_trusting_a_site_ca() {
    let vm = VictoriaMetrics::start_tls();
    let cert = vm.tls_cert.clone().unwrap();
    let table = points(&[("MHS-001/GT-101", "%LEL")]);
    let s = spec(&format!(
        "url = \"{}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"50ms\"\nca_file = \"{}\"",
        vm.url(),
        cert.display()
    ));
    assert!(vm.url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store = Store::start(&s, "gw-tls", &table, dir.path(), clock::system(), metrics.tsdb.clone()).unwrap();
    let id = table.id_of("MHS-001/GT-101").unwrap();
    let base = 1_700_000_000_000i64;
    let batch = (0..3)
        .map(|j| Reading {
            point: id,
            ts: Timestamp::from_millis(base + j * 1000),
            value: j as f64 + 0.5,
            quality: Quality::Good,
        })
        .collect();
    store.tx.send(SinkItem::Readings(batch)).await.unwrap();
    wait_sent(&metrics, "tsdb0", 3.0).await;
    store.shutdown().await;
    let series = vm.export("hazard_reading_value").await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].2, vec![0.5, 1.5, 2.5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_batch_goes_to_the_dead_letter_file_and_later_batches_still_arrive() {
    // InfluxDB 1.x answers 400 "points beyond retention policy" for a batch older than the
    // retention policy: a real server producing a real 400, no fake needed.
    let influx = InfluxV1::start();
    influx.query("", "CREATE DATABASE plant").await;
    influx
        .query("", "CREATE RETENTION POLICY short ON plant DURATION 1h REPLICATION 1")
        .await;
    let table = points(&[("p", "m")]);
    let id = table.id_of("p").unwrap();
    let s = spec(&format!(
        "url = \"{}\"\napi = \"v1\"\ndb = \"plant\"\nretention_policy = \"short\"\nbatch_lines = 10\nretry_min = \"50ms\"\nretry_max = \"200ms\"",
        influx.url()
    ));
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store = Store::start(&s, "gw", &table, dir.path(), clock::system(), metrics.tsdb.clone()).unwrap();
    let now = clock::system().now();
    let batch = |t0: Timestamp| -> Vec<Reading> {
        (0..10)
            .map(|i| Reading {
                point: id,
                ts: t0.plus(Duration::from_millis(i)),
                value: i as f64,
                quality: Quality::Good,
            })
            .collect()
    };
    store
        .tx
        .send(SinkItem::Readings(batch(now.minus(Duration::from_secs(48 * 3600)))))
        .await
        .unwrap();
    store.tx.send(SinkItem::Readings(batch(now))).await.unwrap();
    store
        .tx
        .send(SinkItem::Readings(batch(now.plus(Duration::from_secs(1)))))
        .await
        .unwrap();
    wait_sent(&metrics, "tsdb0", 20.0).await;
    let m = metrics.render();
    assert_eq!(metric(&m, "hazard_tsdb_batches_dead_lettered_total", &[]), 1.0);
    assert_eq!(
        metric(&m, "hazard_tsdb_lines_dropped_total", &["reason=\"rejected\""]),
        10.0
    );
    store.shutdown().await;
    let dead = std::fs::read_to_string(tsdb::dead_letter_file(dir.path(), "tsdb0")).unwrap();
    assert!(dead.starts_with("# rejected by the store"), "{dead}");
    assert!(
        dead.contains("HTTP 400") && dead.contains("beyond retention policy"),
        "{dead}"
    );
    assert_eq!(dead.lines().filter(|l| l.starts_with("hazard_reading,")).count(), 10);
    let r = influx
        .query("plant", "SELECT count(value) FROM short.hazard_reading")
        .await;
    assert_eq!(r["results"][0]["series"][0]["values"][0][1], 20, "{r}");
}

/// Distinct timestamps per point of the gateway's quality series in VictoriaMetrics.
async fn counts_per_point(vm: &VictoriaMetrics, gateway: &str) -> BTreeMap<String, usize> {
    let sel = format!("hazard_reading_quality{{gateway=\"{gateway}\"}}");
    let mut out = BTreeMap::new();
    for (labels, ts, _) in vm.export(&sel).await {
        let set: BTreeSet<i64> = ts.into_iter().collect();
        *out.entry(labels["point"].as_str().unwrap().to_string()).or_insert(0) += set.len();
    }
    out
}

/// A device profile of `n` holding registers, one point each, with simulated signals.
fn bulk_profile(n: usize) -> String {
    let mut s = String::from("[profile]\ndescription = \"test: many points\"\nvendor = \"test\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[points.p{i:02}]\nfunction = \"holding\"\naddress = {i}\ntype = \"u16\"\nscale = 0.1\nrange = [0.0, 6553.5]\nunit = \"kPa\"\nkind = \"pressure\"\nsim = {{ base = {}.0, amplitude = 5.0, period = \"1m\", noise = 0.5 }}\n",
            100 + i
        ));
    }
    s
}

const POINTS: usize = 50;

/// Config of a gateway polling the bulk simulator every 10 ms: 50 points, 5,000 readings/s.
fn flow_config(api: &str, sim: std::net::SocketAddr, stores: &str, data_dir: Option<&Path>) -> String {
    let data = data_dir
        .map(|d| format!("data_dir = \"{}\"\n", d.display()))
        .unwrap_or_default();
    format!(
        "[gateway]\nid = \"flow-gw\"\n{data}profile_dirs = [\"profiles\"]\n[api]\nlisten = \"{api}\"\n\
         [[devices]]\nname = \"bulk\"\nprofile = \"bulk\"\ntransport = {{ tcp = \"{sim}\" }}\ninterval = \"10ms\"\ntimeout = \"500ms\"\n{stores}"
    )
}

fn store_toml(name: &str, url: &str) -> String {
    format!(
        "[[tsdb]]\nname = \"{name}\"\nurl = \"{url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"200ms\"\n\
         retry_min = \"100ms\"\nretry_max = \"2s\"\ntimeout = \"2s\"\n"
    )
}

async fn bulk_simulator() -> (hazard_gateway::sources::sim::Simulator, String) {
    let text = bulk_profile(POINTS);
    let profile = hazard_gateway::config::Profile::parse("bulk", Path::new("bulk.toml"), &text).expect("profile");
    let sim = hazard_gateway::sources::sim::Simulator::start(profile, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .expect("simulator");
    (sim, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_second_store_outage_at_5000_readings_per_second_loses_nothing_and_delays_no_other_store() {
    let t_start = clock::system().now().as_millis();
    let mut main = VictoriaMetrics::start();
    let other = VictoriaMetrics::start();
    let (sim, profile) = bulk_simulator().await;
    let stores = store_toml("main", &main.url()) + &store_toml("other", &other.url());
    let config = flow_config("127.0.0.1:0", sim.local_addr(), &stores, None);
    let mut gw = support::TestGateway::start_with_files(&config, &[("profiles/bulk.toml", &profile)]).await;
    let metrics = gw.gateway.as_ref().unwrap().metrics.clone();
    let sent = |store: &str| {
        metric(
            &metrics.render(),
            "hazard_tsdb_lines_sent_total",
            &[&format!("store=\"{store}\"")],
        )
    };
    wait_for("first readings in the main store", WAIT, || {
        let s = sent("main");
        async move { (s > 0.0).then_some(()) }
    })
    .await;

    let t_stop = clock::system().now().as_millis();
    main.stop();
    let other_before = sent("other");
    let readings_before = metric(&metrics.render(), "hazard_readings_total", &[]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let m = metrics.render();
    let flowed = metric(&m, "hazard_readings_total", &[]) - readings_before;
    assert!(flowed >= 200_000.0, "readings flowed during the outage: {flowed}");
    assert!(metric(&m, "hazard_tsdb_batches_retried_total", &["store=\"main\""]) > 0.0);
    assert!(metric(&m, "hazard_tsdb_buffer_batches", &["store=\"main\""]) > 10.0);
    // The other store kept up while the main one was down.
    assert!(
        sent("other") - other_before >= flowed * 0.9,
        "other store sent {} of {flowed}",
        sent("other") - other_before
    );

    let t_restart = clock::system().now().as_millis();
    main.restart();
    let label = ["store=\"main\""];
    wait_for("the main store's backlog to drain", Duration::from_secs(120), || {
        let left = metric(&metrics.render(), "hazard_tsdb_buffer_batches", &label);
        async move { (left <= 2.0).then_some(()) }
    })
    .await;
    gw.shutdown().await;

    let m = metrics.render();
    let readings = metric(&m, "hazard_readings_total", &[]);
    assert_eq!(metric(&m, "hazard_tsdb_lines_dropped_total", &[]), 0.0);
    assert_eq!(metric(&m, "hazard_tsdb_lines_buffered_total", &label), readings);
    assert_eq!(metric(&m, "hazard_tsdb_lines_sent_total", &label), readings);
    let per_point = readings as usize / POINTS;
    for vm in [&main, &other] {
        // The store makes the last samples searchable a moment after it acknowledged them.
        let counts = wait_for("every reading to be searchable", WAIT, || async move {
            let counts = counts_per_point(vm, "flow-gw").await;
            (counts.len() == POINTS && counts.values().all(|n| *n == per_point)).then_some(counts)
        })
        .await;
        assert_eq!(counts.values().sum::<usize>(), readings as usize, "{}", vm.url());
    }
    println!(
        "outage from {t_stop} to {t_restart} ms (test started {t_start}): {per_point} readings per point in both stores"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_a_gateway_had_accepted_arrive_after_it_is_killed_and_restarted() {
    use hazard_gateway::sinks::buffer::DiskQueue;
    let mut vm = VictoriaMetrics::start();
    let (sim, profile) = bulk_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/bulk.toml"), &profile).unwrap();
    let api = format!("127.0.0.1:{}", support::free_port());
    let data = dir.path().join("data");
    let mut store = store_toml("main", &vm.url());
    store.push_str("buffer = { fsync = \"never\" }\n");
    let config = flow_config(&api, sim.local_addr(), &store, Some(&data));
    let file = dir.path().join("gw.toml");
    std::fs::write(&file, config).unwrap();
    let port: u16 = api.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let run = || support::GatewayProcess::start(&file, port);
    let http = support::http_client();
    let metrics = |http: reqwest::Client| {
        let url = format!("http://{api}/metrics");
        async move { http.get(url).send().await.ok()?.text().await.ok() }
    };

    let mut gw = run().await;
    wait_for("first readings in the store", WAIT, || {
        let f = metrics(http.clone());
        async move { f.await.filter(|m| metric(m, "hazard_tsdb_lines_sent_total", &[]) > 0.0) }
    })
    .await;
    // Take the store away so a backlog builds up in the buffer, then kill the gateway.
    vm.stop();
    wait_for("a backlog in the buffer", WAIT, || {
        let f = metrics(http.clone());
        async move {
            f.await.filter(|m| {
                metric(m, "hazard_tsdb_lines_buffered_total", &[]) - metric(m, "hazard_tsdb_lines_sent_total", &[])
                    >= 10_000.0
            })
        }
    })
    .await;
    gw.kill();

    // What the killed gateway had accepted and not yet delivered: the buffer's records.
    let mut pending: BTreeSet<(String, i64)> = BTreeSet::new();
    {
        let cfg = GatewayConfig::load(&file).unwrap();
        let (mut q, _) = DiskQueue::open(&tsdb::buffer_dir(&data, "main"), cfg.tsdb[0].buffer.clone()).unwrap();
        while let Some(r) = q.next_unsent().unwrap() {
            for line in String::from_utf8(r.payload).unwrap().lines() {
                let point = line
                    .split(",point=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .to_string();
                let ns: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                pending.insert((point, ns / 1_000_000));
            }
        }
    }
    assert!(pending.len() >= 10_000, "buffered at kill: {}", pending.len());

    vm.restart();
    let mut gw = run().await;
    let missing = wait_for("every accepted reading in the store", Duration::from_secs(120), || {
        let vm = &vm;
        let pending = &pending;
        async move {
            let mut have = BTreeSet::new();
            for (labels, ts, _) in vm.export("hazard_reading_quality{gateway=\"flow-gw\"}").await {
                let p = labels["point"].as_str().unwrap().to_string();
                have.extend(ts.into_iter().map(|t| (p.clone(), t)));
            }
            let missing = pending.difference(&have).count();
            (missing == 0).then_some(missing)
        }
    })
    .await;
    assert_eq!(missing, 0);
    gw.kill();
}
