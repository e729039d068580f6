//! Late delivery to the regulator in the completeness ledger: an HTTP uplink against a real
//! HTTP receiver loses its platform for a while as readings flow. Once the platform is back and
//! the backlog has gone out, the ledger and the daily report (JSON and CSV) show one span the
//! regulator did not get in real time, when the platform took payloads again and when the
//! backlog was backfilled; the receiver holds that span's records, the completeness page
//! (`tests/browser/console_completeness_late.mjs`) lists it, and it is still shown after the
//! gateway restarts.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::{HttpReceiver, TestGateway, WAIT, metric, simulator, wait_for};

fn config(sim: &str, url: &str) -> String {
    format!(
        r#"
[gateway]
id = "late-gw"
[api]
listen = "127.0.0.1:0"

[[hazard_sources]]
id = "MHS-1"
name = "Tank farm"
level = 2

[[devices]]
name = "gas-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "250ms"
hazard_source = "MHS-1"
points = {{ ch1 = "A/GT-101" }}

[[uplinks]]
name = "mem"
realtime_interval = "1s"
replay_rate = 200
retry_max = "1s"
statistics = []
codes = {{ enterprise = "E-0001", hazard_sources = {{ "MHS-1" = "HS-01" }}, points = {{ "A/GT-101" = {{ code = "GT101" }} }} }}
encoder = {{ type = "json", record = {{ id = "{{uuid}}", wh = "{{point_code}}", z = "{{value}}", ms = "{{time_ms}}", kind = "{{kind}}" }} }}
transport = {{ type = "http", url = "{url}" }}
"#
    )
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_millis()
}

/// Real-time records the receiver holds, by collection time.
fn realtime(rx: &HttpReceiver) -> Vec<i64> {
    rx.json()
        .iter()
        .filter(|v| v["kind"] == "realtime")
        .filter_map(|v| v["ms"].as_str().and_then(|s| s.parse().ok()).or(v["ms"].as_i64()))
        .collect()
}

/// The site-local (+08:00) time of `ms` as the completeness page writes it.
fn local(ms: i64) -> String {
    let s = (ms / 1000 + 8 * 3600).rem_euclid(86_400);
    format!("{} {:02}:{:02}:{:02}", day_of(ms), s / 3600, s % 3600 / 60, s % 60)
}

/// The site-local (+08:00) day of `ms`, `YYYY-MM-DD`.
fn day_of(ms: i64) -> String {
    let days = (ms + 8 * 3_600_000).div_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The gateway's late spans from `from` to a minute from now.
async fn late_spans(gw: &TestGateway, from: i64) -> Value {
    let q = format!(
        "/api/v1/completeness?group=gateway&from={from}&to={}",
        now_ms() + 60_000
    );
    gw.get_json(&q).await["regulator_spans"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_outage_is_a_span_the_regulator_got_late_and_its_backfill_is_shown() {
    let sim = simulator("ai4-gas-lel", None).await;
    let mut rx = HttpReceiver::start().await;
    let cfg = config(&sim.local_addr().to_string(), &rx.url("/api/data"));
    let mut gw = TestGateway::start(&cfg).await;
    let metrics = gw.metric_handles().clone();
    let from = now_ms() - 60_000;
    wait_for("first real-time records", WAIT, || async {
        (realtime(&rx).len() >= 2).then_some(())
    })
    .await;
    assert_eq!(
        late_spans(&gw, from).await,
        serde_json::json!([]),
        "nothing late while the platform takes everything"
    );

    rx.down().await;
    let down_at = now_ms();
    // The platform refuses; payloads pile up in the outbox while readings flow.
    wait_for("payloads queued during the outage", WAIT, || async {
        let text = metrics.render();
        let failed = metric(
            &text,
            "hazard_uplink_delivery_retries_total",
            &["uplink=\"mem\"", "reason=\"unreachable\""],
        );
        let pending = metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"mem\""]);
        (failed >= 1.0 && pending >= 4.0).then_some(())
    })
    .await;
    let open = late_spans(&gw, from).await;
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open:#}");
    assert!(
        open[0]["end_ms"].is_null() && open[0]["backfilled"] == false,
        "{open:#}"
    );
    rx.up().await;
    let up_at = now_ms();

    let spans = wait_for("the backlog backfilled", Duration::from_secs(60), || async {
        let s = late_spans(&gw, from).await;
        (s[0]["backfilled"] == true).then_some(s)
    })
    .await;
    assert_eq!(spans.as_array().map(Vec::len), Some(1), "{spans:#}");
    let span = &spans[0];
    assert_eq!(span["uplink"], "mem");
    let start = span["start_ms"].as_i64().expect("start");
    let end = span["end_ms"].as_i64().expect("end");
    let backfilled = span["backfilled_at_ms"].as_i64().expect("backfilled at");
    // The first payload the platform did not take was queued about when it went down (the one
    // in flight then at most one real-time interval before); the platform took payloads again
    // after it was back, and the backlog went out after that.
    assert!(
        start >= down_at - 1500 && start <= up_at,
        "{span:#} down {down_at} up {up_at}"
    );
    assert!(end >= up_at && backfilled >= end, "{span:#} up {up_at}");
    // The receiver holds the span's records, with their own collection times.
    let during = realtime(&rx).into_iter().filter(|t| *t >= start && *t < end).count();
    assert!(during >= 3, "records of the span delivered late: {during}");

    // The day's report: the same span, and a CSV line for it.
    let day = day_of(start);
    let report = gw
        .get_json(&format!("/api/v1/completeness/report.json?day={day}"))
        .await;
    assert_eq!(report["regulator_spans"], spans, "{report:#}");
    let csv = gw
        .http
        .get(format!("{}/api/v1/completeness/report.csv?day={day}", gw.base))
        .send()
        .await
        .expect("report")
        .text()
        .await
        .expect("text");
    let section = csv
        .split("上报通道,未实时上报开始,平台恢复,已补传,补传完成\r\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no uplink section: {csv}"));
    let lines: Vec<&str> = section.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{csv}");
    assert!(
        lines[0].starts_with(&format!("mem,{day} ")) && lines[0].contains(",是,"),
        "{csv}"
    );

    // The completeness page lists it.
    let late = serde_json::json!([[
        "mem",
        local(start),
        local(end),
        format!("已补传（{} 完成）", local(backfilled)),
    ]]);
    {
        let _one = ONE_BROWSER.lock().await;
        support::console::run_script(
            "console_completeness_late.mjs",
            &format!("{}/", gw.base),
            &[("DAY", &day), ("LATE", &late.to_string())],
            Duration::from_secs(60),
        )
        .await;
    }

    // Kept across a restart on the same data dir.
    gw.shutdown().await;
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    drop(gw);
    let gw = TestGateway::start_with(&cfg, dir, hazard_gateway::clock::system()).await;
    assert_eq!(late_spans(&gw, from).await, spans);
}
