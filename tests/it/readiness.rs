//! `/readyz` as an orchestrator sees it: unready while a store's durable buffer holds more
//! than `[ops] unready_when_buffer_over`, ready again once the store has taken the backlog.

use crate::support;

use support::{TestGateway, VictoriaMetrics, WAIT, simulator, wait_for};

async fn readyz(gw: &TestGateway) -> (u16, serde_json::Value) {
    let r = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .expect("readyz answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_buffer_over_the_limit_makes_the_gateway_unready_until_it_drains() {
    let mut vm = VictoriaMetrics::start();
    let sim = simulator("tank-ltp", None).await;
    let config = format!(
        "[gateway]\nid = \"gw-ready\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[devices]]\nname = \"t1\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"50ms\"\n\
         [[tsdb]]\nname = \"central\"\nurl = \"{}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"100ms\"\n\
         retry_min = \"100ms\"\nretry_max = \"500ms\"\ntimeout = \"2s\"\n\
         [ops]\nunready_when_buffer_over = \"2KiB\"\n",
        sim.local_addr(),
        vm.url()
    );
    let gw = TestGateway::start(&config).await;
    wait_for("readings delivered while the store is up", WAIT, || async {
        let m = gw.metrics().await;
        (support::metric(&m, "hazard_tsdb_lines_sent_total", &["central"]) > 0.0).then_some(())
    })
    .await;
    let (status, body) = readyz(&gw).await;
    assert_eq!(status, 200, "{body}");

    vm.stop();
    let body = wait_for("the gateway turns unready as the backlog grows", WAIT, || async {
        let (status, body) = readyz(&gw).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["ready"], false);
    let problem = body["problems"][0].as_str().unwrap_or_default().to_string();
    assert!(
        problem.starts_with("store `central` buffer holds ")
            && problem.ends_with(" not yet delivered, over the 2.0 KiB limit"),
        "{body}"
    );

    vm.restart();
    wait_for("ready again once the store took the backlog", WAIT, || async {
        let (status, _) = readyz(&gw).await;
        (status == 200).then_some(())
    })
    .await;
}

/// An orchestrator probes `/readyz` every few seconds for as long as a store is down: each
/// 503 is an answer, not an error of the gateway, and must not fill the log at ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unready_answers_are_not_logged_as_errors() {
    let sim = simulator("tank-ltp", None).await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    // A store nobody listens on: its backlog grows past the limit at once.
    let dead = support::free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"gw-quiet\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[devices]]\nname = \"t1\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"50ms\"\n\
             [[tsdb]]\nname = \"central\"\nurl = \"http://127.0.0.1:{dead}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\n\
             batch_age = \"100ms\"\n[ops]\nunready_when_buffer_over = \"1KiB\"\n",
            sim.local_addr()
        ),
    )
    .unwrap();
    let mut gw = support::GatewayProcess::start(&config, port).await;
    let unready = std::sync::atomic::AtomicU32::new(0);
    wait_for("twenty unready answers", WAIT, || async {
        let r = gw.http.get(format!("{}/readyz", gw.base)).send().await.ok()?;
        if r.status().as_u16() == 503 {
            unready.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        (unready.load(std::sync::atomic::Ordering::SeqCst) >= 20).then_some(())
    })
    .await;
    assert!(gw.signal_and_wait("TERM").success());
    let log = gw.stderr();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"ERROR\"") && (l.contains("503") || l.contains("response failed")))
        .collect();
    assert!(errors.is_empty(), "503 answers logged as errors: {errors:?}");
    assert!(
        log.contains("Time-series store output started"),
        "the log was captured: {log}"
    );
}
