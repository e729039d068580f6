//! Hot reload as plant IT uses it: `POST /api/v1/admin/reload` and SIGHUP apply a changed
//! rule without losing an active alarm, refuse a broken config with its errors while the old
//! one keeps running; and a shutdown in the middle of a load flushes every reading.

use crate::support;

use std::process::Command;

use hazard_gateway::model::{Quality, Reading, Timestamp};
use serde_json::json;
use support::{GatewayProcess, TestGateway, VictoriaMetrics, WAIT, free_port, simulator, wait_for};

fn gas_config(sim: std::net::SocketAddr, high: f64, extra: &str) -> String {
    format!(
        "[gateway]\nid = \"gw-reload\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[devices]]\nname = \"g\"\nprofile = \"ai4-gas-lel\"\ntransport = {{ tcp = \"{sim}\" }}\ninterval = \"100ms\"\n\
         [[rules]]\nname = \"gas\"\npoints = \"g/ch1\"\nthreshold = {{ high = {high:.1}, deadband = 1.0 }}\n{extra}"
    )
}

/// The config file a `TestGateway` was parsed from; reload reads it back.
fn config_file(gw: &TestGateway) -> std::path::PathBuf {
    gw.data_dir().join("test.toml")
}

async fn reload(gw: &TestGateway) -> (u16, serde_json::Value) {
    gw.post_json("/api/v1/admin/reload", json!({})).await
}

async fn raised_count(gw: &TestGateway, alarm: &str) -> usize {
    let history = gw
        .get_json(&format!("/api/v1/alarms/history?alarm={}", alarm.replace('/', "%2F")))
        .await;
    history
        .as_array()
        .map_or(0, |h| h.iter().filter(|e| e["transition"] == "raised").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_rule_keeps_the_active_alarm_and_applies_the_new_set_point() {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let text = gas_config(sim.local_addr(), 20.0, "");
    let gw = TestGateway::start(&text).await;
    std::fs::write(config_file(&gw), &text).unwrap();

    sim.pin("ch1", 30.0);
    let id = "g/ch1:high";
    wait_for("raised at 20", WAIT, || async { gw.alarm(id).await }).await;
    let (status, _) = gw
        .post_json(
            &format!("/api/v1/alarms/{}/ack", id.replace('/', "%2F")),
            json!({"user": "op", "comment": "seen"}),
        )
        .await;
    assert_eq!(status, 200);
    let before = wait_for("acknowledged", WAIT, || async {
        gw.alarm(id).await.filter(|a| a["state"] == "ack_active")
    })
    .await;

    // Raise the set-point but keep it below the present value (30 stays in alarm at 28, so the
    // check below cannot race a clearing poll), lower another channel's, add a rule.
    let new_text = gas_config(
        sim.local_addr(),
        28.0,
        "[[rules]]\nname = \"ch2\"\npoints = \"g/ch2\"\nthreshold = { high = 5.0 }\n\
         [[rules]]\nname = \"ch3-silent\"\npoints = \"g/ch3\"\nstale = { after = \"1h\" }\n",
    );
    std::fs::write(config_file(&gw), &new_text).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"], true);
    assert!(body["changes"]["alarms_kept"].as_u64().unwrap() >= 1, "{body}");
    assert!(body["changes"]["alarms_added"].as_u64().unwrap() >= 1, "{body}");

    // The alarm survived the reload as it was: same state, raise time, acknowledgement,
    // and no second raise in the journal.
    let after = gw.alarm(id).await.expect("the active alarm survives the reload");
    assert_eq!(after["state"], before["state"]);
    assert_eq!(after["raised_at"], before["raised_at"]);
    assert_eq!(raised_count(&gw, id).await, 1);

    // The new set-point applies: 26 is below 28 - 1, so the alarm clears (it was
    // acknowledged, so it leaves the list); at 20 it would have stayed.
    sim.pin("ch1", 26.0);
    wait_for("cleared under the new set-point", WAIT, || async {
        gw.alarm(id).await.is_none().then_some(())
    })
    .await;
    sim.pin("ch1", 36.0);
    let again = wait_for("raised again at the new set-point", WAIT, || async {
        gw.alarm(id).await.filter(|a| a["state"] == "unack_active")
    })
    .await;
    assert_eq!(again["limit"], 28.0);
    sim.pin("ch2", 6.0);
    wait_for("the set-point lowered by the reload raises", WAIT, || async {
        gw.alarm("g/ch2:high").await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_is_refused_with_its_errors_and_the_old_one_keeps_running() {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let text = gas_config(sim.local_addr(), 20.0, "");
    let gw = TestGateway::start(&text).await;
    let path = config_file(&gw);
    std::fs::write(&path, &text).unwrap();
    sim.pin("ch1", 30.0);
    wait_for("raised", WAIT, || async { gw.alarm("g/ch1:high").await }).await;

    // Two errors: an unknown profile and a rule on a point that does not exist.
    let broken = text.replace("profile = \"ai4-gas-lel\"", "profile = \"no-such\"")
        + "[[rules]]\npoints = \"x/*\"\nthreshold = { high = 1.0 }\n";
    std::fs::write(&path, &broken).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_config");
    let errors: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    let p = path.display();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{p}:7:11: devices[0].profile: no device profile `no-such`"))),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("`x/*` matches no point")),
        "{errors:?}"
    );

    // A valid file that changes what only a restart can change is refused too.
    std::fs::write(&path, text.replace("127.0.0.1:0", "127.0.0.1:1")).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["errors"][0], "api.listen changed: restart the gateway to apply it");

    // The old config still runs: the alarm is there, and its set-point is the old one.
    let alarm = gw.alarm("g/ch1:high").await.expect("alarm kept");
    assert_eq!(alarm["limit"], 20.0);
    sim.pin("ch1", 1.0);
    wait_for("cleared under the old set-point", WAIT, || async {
        gw.alarm("g/ch1:high")
            .await
            .filter(|a| a["state"] == "unack_rtn")
            .map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_good_config_and_logs_why_a_bad_one_is_refused() {
    let sim = simulator("ai4-gas-lel", None).await;
    for ch in ["ch1", "ch2", "ch3", "ch4"] {
        sim.pin(ch, 1.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    let text = gas_config(sim.local_addr(), 25.0, "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace(
            "id = \"gw-reload\"\n",
            &format!(
                "id = \"gw-reload\"\ndata_dir = \"{}\"\n",
                dir.path().join("data").display()
            ),
        );
    std::fs::write(&path, &text).unwrap();
    let mut gw = GatewayProcess::start(&path, port).await;
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .arg("-HUP")
                .arg(pid.to_string())
                .status()
                .unwrap()
                .success()
        );
    };

    // Lower the set-point to 15; a value of 20 then raises the alarm (at 25 it would not).
    std::fs::write(&path, text.replace("high = 25.0", "high = 15.0")).unwrap();
    hup(gw.pid());
    sim.pin("ch1", 20.0);
    let alarm = wait_for("raised at the reloaded set-point", WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .find(|a| a["alarm_id"] == "g/ch1:high")
            .cloned()
    })
    .await;
    assert_eq!(alarm["limit"], 15.0);

    std::fs::write(&path, text.replace("[[rules]]", "[[rulez]]")).unwrap();
    hup(gw.pid());
    // The process keeps serving after the refused reload, with the alarm it had.
    wait_for("the refused reload in the log", WAIT, || async {
        gw.stderr_so_far().contains("Config reload error").then_some(())
    })
    .await;
    let (status, _) = gw.post_json("/api/v1/alarms/none/ack", json!({"user": "op"})).await;
    assert_eq!(status, 404);
    assert!(
        gw.get_json("/api/v1/alarms")
            .await
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["alarm_id"] == "g/ch1:high"))
    );
    assert!(gw.signal_and_wait("TERM").success());
    let log = gw.stderr();
    assert!(log.contains("Config reloaded"), "{log}");
    assert!(log.contains("Config reload error") && log.contains("rulez"), "{log}");
    assert!(log.contains("invalid_config"), "{log}");
}

/// Readings in the store stamped in `[from, to)` (ms).
async fn stored(vm: &VictoriaMetrics, from: i64, to: i64) -> usize {
    vm.export("hazard_reading_quality{gateway=\"gw-load\"}")
        .await
        .iter()
        .map(|(_, ts, _)| ts.iter().filter(|t| (from..to).contains(*t)).count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_load_flushes_every_reading_to_history_and_the_store() {
    let vm = VictoriaMetrics::start();
    // A device nobody answers, polled once an hour: its points exist, the load is injected.
    let dead = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "[gateway]\nid = \"gw-load\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[devices]]\nname = \"t\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{dead}\" }}\ninterval = \"1h\"\n\
         [[tsdb]]\nname = \"central\"\nurl = \"{}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"100ms\"\n",
        vm.url()
    );
    let mut gw = TestGateway::start(&config).await;
    let (tx, points, metrics) = {
        let g = gw.gateway.as_ref().unwrap();
        (g.reading_sender(), g.state.points.clone(), g.metrics.clone())
    };
    let ids: Vec<_> = points.iter().map(|(id, _)| id).collect();
    // 30,000 readings, 100 a batch, 1 ms apart (the store keeps milliseconds), stamped ten
    // minutes ago so they stand apart from the device's own readings.
    let now = hazard_gateway::clock::system().now();
    let base = Timestamp::from_millis(now.as_millis() - 600_000);
    let mut sent = 0usize;
    for b in 0..300i64 {
        let batch: Vec<Reading> = (0..100i64)
            .map(|i| {
                let n = b * 100 + i;
                Reading {
                    point: ids[(n as usize) % ids.len()],
                    ts: Timestamp::from_millis(base.as_millis() + n),
                    value: (n % 50) as f64,
                    quality: Quality::Good,
                }
            })
            .collect();
        sent += batch.len();
        tx.send(batch).await.expect("the rules engine takes readings");
    }
    drop(tx);
    // Stop at once, with batches still queued for the rules engine and the sinks.
    gw.shutdown().await;
    let evaluated = support::metric(&metrics.render(), "hazard_readings_total", &[]) as usize;
    assert!(evaluated >= sent, "{evaluated} evaluated, {sent} sent");
    let dropped = support::metric(&metrics.render(), "hazard_tsdb_lines_dropped_total", &[])
        + support::metric(&metrics.render(), "hazard_history_readings_dropped_total", &[]);
    assert_eq!(dropped, 0.0);

    let first_minute = base.as_millis() / 60_000;
    let in_history = support::sqlite_count(
        &gw.data_dir().join("history.db"),
        "SELECT COALESCE(SUM(count + bad), 0) FROM rollup_minute WHERE minute BETWEEN ?1 AND ?2",
        [first_minute, first_minute + 1],
    ) as usize;
    assert_eq!(in_history, sent, "history holds every injected reading");

    // What the store had not acknowledged by the end is in the durable buffer: a restart on
    // the same data dir delivers it.
    let dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().unwrap());
    let again = TestGateway::start_with(&config, dir, hazard_gateway::clock::system()).await;
    let (from, to) = (base.as_millis(), base.as_millis() + sent as i64);
    wait_for("every injected reading in the store", WAIT, || async {
        (stored(&vm, from, to).await >= sent).then_some(())
    })
    .await;
    assert_eq!(stored(&vm, from, to).await, sent);
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_a_changed_store_and_device_loses_no_buffered_or_arriving_reading() {
    let mut vm = VictoriaMetrics::start();
    let dead = format!("127.0.0.1:{}", free_port());
    let vm_url = vm.url();
    let config = |timeout: &str, interval: &str| {
        format!(
            "[gateway]\nid = \"gw-load\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[devices]]\nname = \"t\"\nprofile = \"tank-ltp\"\ntransport = {{ tcp = \"{dead}\" }}\ninterval = \"{interval}\"\n\
             [[tsdb]]\nname = \"central\"\nurl = \"{}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"100ms\"\n\
             retry_min = \"100ms\"\nretry_max = \"500ms\"\ntimeout = \"{timeout}\"\n",
            vm_url
        )
    };
    let text = config("2s", "1h");
    let gw = TestGateway::start(&text).await;
    std::fs::write(config_file(&gw), &text).unwrap();
    let (tx, ids) = {
        let g = gw.gateway.as_ref().unwrap();
        (
            g.reading_sender(),
            g.state.points.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        )
    };
    let base = Timestamp::from_millis(hazard_gateway::clock::system().now().as_millis() - 600_000);
    let inject = |from: i64, n: i64| {
        let tx = tx.clone();
        let ids = ids.clone();
        async move {
            for b in (from..from + n).step_by(100) {
                let batch = (b..b + 100)
                    .map(|k| Reading {
                        point: ids[(k as usize) % ids.len()],
                        ts: Timestamp::from_millis(base.as_millis() + k),
                        value: 1.0,
                        quality: Quality::Good,
                    })
                    .collect();
                tx.send(batch).await.expect("rules engine takes readings");
            }
        }
    };

    // The store is down: the first half waits in its durable buffer.
    vm.stop();
    inject(0, 5_000).await;
    wait_for("the backlog in the buffer", WAIT, || async {
        let m = gw.metrics().await;
        (support::metric(&m, "hazard_tsdb_buffer_batches", &["central"]) > 0.0).then_some(())
    })
    .await;

    // Reload with a changed store and device while readings keep arriving.
    std::fs::write(config_file(&gw), config("3s", "2h")).unwrap();
    let (reloaded, ()) = tokio::join!(reload(&gw), inject(5_000, 5_000));
    assert_eq!(reloaded.0, 200, "{}", reloaded.1);
    let changes = &reloaded.1["changes"];
    assert_eq!(changes["stores"]["restarted"], json!(["central"]), "{changes}");
    assert_eq!(changes["devices_restarted"], true, "{changes}");

    vm.restart();
    let (from, to) = (base.as_millis(), base.as_millis() + 10_000);
    wait_for(
        "every reading, buffered before or sent during the reload",
        WAIT,
        || async { (stored(&vm, from, to).await >= 10_000).then_some(()) },
    )
    .await;
    assert_eq!(stored(&vm, from, to).await, 10_000);
    let m = gw.metrics().await;
    assert_eq!(support::metric(&m, "hazard_tsdb_lines_dropped_total", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_token_may_reload() {
    let sim = simulator("ai4-gas-lel", None).await;
    let hash = hazard_gateway::api::auth::hash_token;
    let tokens = format!(
        "[[api.tokens]]\nname = \"duty\"\nrole = \"operator\"\nhash = \"{}\"\n\
         [[api.tokens]]\nname = \"it\"\nrole = \"admin\"\nhash = \"{}\"\n",
        hash("operator-token-0123456789"),
        hash("admin-token-0123456789")
    );
    let text = gas_config(sim.local_addr(), 20.0, "").replace("[[devices]]", &format!("{tokens}[[devices]]"));
    let gw = TestGateway::start(&text).await;
    std::fs::write(config_file(&gw), &text).unwrap();
    let post = |token: Option<&'static str>| {
        let mut req = gw.http.post(format!("{}/api/v1/admin/reload", gw.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 401);
    assert_eq!(post(Some("operator-token-0123456789")).await, 403);
    assert_eq!(post(Some("admin-token-0123456789")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_health_follows_a_reload_that_moves_a_device() {
    let first = simulator("ai4-gas-lel", None).await;
    let second = simulator("ai4-gas-lel", None).await;
    let text = gas_config(first.local_addr(), 20.0, "");
    let gw = TestGateway::start(&text).await;
    std::fs::write(config_file(&gw), &text).unwrap();
    let device = |name: &'static str| {
        let gw = &gw;
        async move {
            let all = gw.get_json("/api/v1/devices").await;
            all.as_array()
                .and_then(|d| d.iter().find(|d| d["name"] == name).cloned())
        }
    };
    wait_for("g online on the first simulator", WAIT, || async {
        device("g").await.filter(|d| d["status"] == "online")
    })
    .await;

    // `g` moves to the second simulator (adding a device adds points: that needs a restart).
    let moved = gas_config(second.local_addr(), 20.0, "");
    drop(first);
    std::fs::write(config_file(&gw), &moved).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");

    let g = device("g").await.expect("g is still listed");
    let transport = g["transport"].as_str().unwrap();
    assert!(transport.contains(&second.local_addr().to_string()), "{g}");
    wait_for("g online on the second simulator", WAIT, || async {
        device("g").await.filter(|d| d["status"] == "online")
    })
    .await;
    // Its counters start afresh with the new transport: every request went to the new one.
    let g = device("g").await.unwrap();
    assert_eq!(g["link_errors"], 0, "{g}");
}
