//! The store output honours a store's request to slow down: a 429 or a 503 answer with
//! Retry-After holds the batch back at least that long, however short the configured
//! backoff, and the batch then arrives in full.
//!
//! A scripted receiver is needed here: no real store (VictoriaMetrics, InfluxDB) can be made
//! to answer 429 or 503 with a Retry-After on demand. So a small HTTP/1.1 server on loopback
//! stands in front of a real VictoriaMetrics: it answers the first request 429 with
//! `Retry-After: 2`, the second 503 with `Retry-After: 1`, and forwards every later one to
//! VictoriaMetrics, relaying its answer, so the readings are counted in the real store.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazard_gateway::model::{PointKind, PointMeta, Quality, Reading, Timestamp};
use hazard_gateway::sinks::tsdb::SinkItem;
use support::{LoneStore, VictoriaMetrics, WAIT, metric, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// When each request arrived and what the receiver answered.
type Log = Arc<Mutex<Vec<(Instant, u16)>>>;

/// Reads one HTTP/1.1 request: request line + headers, and a body of Content-Length bytes.
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.ok()?;
    Some((target, headers, body))
}

/// The scripted store: refusals first, then a forwarding proxy to `upstream`.
async fn receiver(upstream: String, log: Log) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (client, upstream, log) = (client.clone(), upstream.clone(), log.clone());
            tokio::spawn(async move {
                while let Some((target, headers, body)) = read_request(&mut conn).await {
                    let n = {
                        let mut l = log.lock().unwrap();
                        l.push((Instant::now(), 0));
                        l.len()
                    };
                    let status = match n {
                        1 => {
                            conn.write_all(
                                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
                            )
                            .await
                            .unwrap();
                            429
                        }
                        2 => {
                            conn.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
                            )
                            .await
                            .unwrap();
                            503
                        }
                        _ => {
                            let mut req = client.post(format!("{upstream}{target}")).body(body);
                            for (k, v) in &headers {
                                if k == "content-type" || k == "content-encoding" || k == "authorization" {
                                    req = req.header(k, v);
                                }
                            }
                            let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(502);
                            let reply = format!("HTTP/1.1 {status} Relayed\r\nContent-Length: 0\r\n\r\n");
                            conn.write_all(reply.as_bytes()).await.unwrap();
                            status
                        }
                    };
                    log.lock().unwrap()[n - 1].1 = status;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_answering_429_then_503_with_retry_after_is_waited_for_and_then_gets_every_reading() {
    let vm = VictoriaMetrics::start();
    let log: Log = Arc::default();
    let url = receiver(vm.url(), log.clone()).await;
    // Backoff of 10–20 ms: any wait of a second or more comes from Retry-After.
    let text = format!(
        "[gateway]\nid = \"gw\"\n[[tsdb]]\nurl = \"{url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\n\
         batch_lines = 100\nbatch_age = \"50ms\"\nretry_min = \"10ms\"\nretry_max = \"20ms\"\nconcurrency = 1\n"
    );
    let LoneStore {
        store,
        point: id,
        metrics,
        dir: _dir,
    } = LoneStore::start(
        &text,
        PointMeta {
            name: "MHS-001/GT-101".into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: "gas-ai-1".into(),
            hazard_source: Some("MHS-001".into()),
            range: None,
            description: None,
        },
    );
    let base = 1_700_000_000_000i64;
    let batch: Vec<Reading> = (0..100)
        .map(|i| Reading {
            point: id,
            ts: Timestamp::from_millis(base + i * 1000),
            value: i as f64 * 0.25,
            quality: Quality::Good,
        })
        .collect();
    store.tx.send(SinkItem::Readings(batch)).await.unwrap();
    wait_for("the store to acknowledge every line", WAIT, || {
        let sent = metric(&metrics.render(), "hazard_tsdb_lines_sent_total", &["store=\"tsdb0\""]);
        async move { (sent >= 100.0).then_some(()) }
    })
    .await;
    store.shutdown().await;

    let log = log.lock().unwrap().clone();
    let statuses: Vec<u16> = log.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses,
        [429, 503, 204],
        "one throttled, one unavailable, then accepted"
    );
    // Lower bounds only: a slow machine makes the gaps longer, never shorter.
    let gaps: Vec<Duration> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps[0] >= Duration::from_secs(2),
        "429 Retry-After 2 s not honoured: {gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_secs(1),
        "503 Retry-After 1 s not honoured: {gaps:?}"
    );
    let m = metrics.render();
    assert_eq!(
        metric(&m, "hazard_tsdb_batches_retried_total", &["reason=\"throttled\""]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "hazard_tsdb_batches_retried_total", &["reason=\"server_error\""]),
        1.0
    );
    let series = vm.export("hazard_reading_value").await;
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].1, (0..100).map(|i| base + i * 1000).collect::<Vec<_>>());
    assert_eq!(series[0].2, (0..100).map(|i| i as f64 * 0.25).collect::<Vec<_>>());
}
