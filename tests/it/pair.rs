//! Hot standby: two gateway processes of one pair, a real Mosquitto as the witness, and the
//! gateway's simulator as the field device, each node behind relays a test can cut
//! (`support::pair`): two actives must never both poll the device.

use crate::support;

use serde_json::json;
use support::pair::*;
use support::{WAIT, wait_for};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_active_is_replaced_by_the_standby_with_every_alarm_and_acknowledgement() {
    let p = Pair::new().await;
    let (mut a, b) = started_pair(&p).await;
    assert!(p.nodes[1].device.sent().is_empty(), "the standby never polls");
    // The standby sends the console to the active, method and body kept.
    let r = b.http.get(format!("{}/api/v1/alarms", b.base)).send().await.unwrap();
    assert_eq!(
        r.url().as_str(),
        format!("{}/api/v1/alarms", a.base),
        "followed the redirect"
    );
    let ready = b.http.get(format!("{}/readyz", b.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(pair_status(&b).await.unwrap()["link_tls"], false);
    assert!(
        a.stderr_so_far().contains("Pair link: not encrypted"),
        "a warning at start: {}",
        a.stderr_so_far()
    );

    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    assert_eq!(before.len(), 3, "{before:#?}");

    let fault = Instant::now();
    a.kill();
    let killed = fault;
    let status = wait_role(&b, "active").await;
    eprintln!("switch-over after SIGKILL: {} ms", killed.elapsed().as_millis());
    assert_eq!(status["node"], "b");
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    // The new active polls: a fresh good reading.
    wait_reads_ch1(&b).await;
    let history = b.get_json("/api/v1/alarms/history?alarm=g%2Fch1:high").await;
    let raised = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "raised")
        .count();
    assert_eq!(raised, 1, "raised once, never again: {history:#}");
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device, fault);
    assert_switchovers(&b, "lease_expired", 1.0).await;

    // The killed node comes back as standby and copies on from where its journal stopped.
    drop(a);
    let a = p.spawn(0).await;
    wait_role(&a, "standby").await;
    act(&b, "g/ch1:high", "ack", json!({})).await;
    wait_replicated(&p, 1).await;
    let m = a.metrics().await;
    assert_eq!(
        support::metric(&m, "hazard_pair_diverged_journals_total", &[]),
        0.0,
        "{m}"
    );
    assert_eq!(wait_role(&b, "active").await["peer_up"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_standby_follows_and_takes_over_with_every_alarm() {
    let p = Pair::with_tls(|_| String::new()).await;
    let (mut a, b) = started_pair(&p).await;
    for gw in [&a, &b] {
        // The active counts the standby as up once it asked to resume, a moment after the
        // standby heard its hello.
        wait_for("both see the peer over TLS", WAIT, || async {
            let s = pair_status(gw).await?;
            (s["link_tls"] == true && s["peer_up"] == true).then_some(())
        })
        .await;
        assert!(!gw.stderr_so_far().contains("Pair link: not encrypted"));
    }
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    assert_eq!(before.len(), 3, "{before:#?}");

    let fault = Instant::now();
    a.kill();
    assert_eq!(wait_role(&b, "active").await["node"], "b");
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    wait_for("the new active polls", WAIT, || async {
        (!p.nodes[1].device.sent().is_empty()).then_some(())
    })
    .await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device, fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_active_is_replaced_and_steps_down_without_touching_the_bus_when_it_wakes() {
    let p = Pair::new().await;
    let (mut a, b) = started_pair(&p).await;
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;

    let fault = Instant::now();
    a.signal("STOP");
    wait_role(&b, "active").await;
    assert_eq!(snapshot(&b).await, before);
    wait_for("the new active polls", WAIT, || async {
        (!p.nodes[1].device.sent().is_empty()).then_some(())
    })
    .await;
    a.signal("CONT");
    // Woken past its fence: it steps down before any transaction.
    wait_role(&a, "standby").await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device, fault);
    // And it follows the new active.
    wait_for("the woken node follows", WAIT, || async {
        let s = pair_status(&a).await?;
        (s["peer_up"] == true && s["active_api"] == b.base.as_str()).then_some(())
    })
    .await;
    let _ = &mut a;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_pair_link_changes_no_role_while_both_reach_the_witness() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    p.cut_link();
    wait_for("both see the link down", WAIT, || async {
        let (sa, sb) = (pair_status(&a).await?, pair_status(&b).await?);
        (sa["peer_up"] == false && sb["peer_up"] == false).then_some(())
    })
    .await;
    // Three times the takeover time of renewals, as the standby counts them at the witness.
    let start = pair_status(&b).await.unwrap()["lease"]["beat"].as_u64().unwrap();
    wait_for("12 renewals seen by the standby", WAIT, || async {
        let s = pair_status(&b).await?;
        assert_eq!(s["role"], "standby", "{s}");
        assert_eq!(s["lease"]["holder"], "a", "{s}");
        (s["lease"]["beat"].as_u64()? >= start + 12).then_some(())
    })
    .await;
    assert_eq!(pair_status(&a).await.unwrap()["role"], "active");
    assert!(p.nodes[1].device.sent().is_empty(), "the standby never polled");
    p.restore_link();
    wait_for("the link is back", WAIT, || async {
        (pair_status(&b).await?["peer_up"] == true).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_cut_off_from_witness_and_peer_steps_down_and_only_one_node_polls() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    // The witness alone lost: the standby still confirms the active over the link.
    p.nodes[0].witness.cut();
    wait_for("a sees the witness lost", WAIT, || async {
        (pair_status(&a).await?["witness_up"] == false).then_some(())
    })
    .await;
    let polls = p.nodes[0].device.sent().len();
    wait_for("a keeps polling on the standby's word", WAIT, || async {
        (p.nodes[0].device.sent().len() >= polls + 50).then_some(())
    })
    .await;
    assert_eq!(pair_status(&a).await.unwrap()["role"], "active");
    assert_eq!(pair_status(&b).await.unwrap()["role"], "standby");
    // Now the link too: a can prove nothing and steps down; b takes the lease.
    let fault = Instant::now();
    p.cut_link();
    wait_role(&b, "active").await;
    wait_role(&a, "standby").await;
    wait_for("the new active polls", WAIT, || async {
        (!p.nodes[1].device.sent().is_empty()).then_some(())
    })
    .await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device, fault);
    // b monitors alone, and the duty officer is told: nobody could take over from it.
    wait_state(&b, "gateway:pair_degraded", "unack_active").await;
    // Healed: a stays standby and follows b.
    p.nodes[0].witness.restore();
    p.restore_link();
    wait_for("a follows b", WAIT, || async {
        let s = pair_status(&a).await?;
        (s["role"] == "standby" && s["peer_up"] == true && s["active_api"] == b.base.as_str()).then_some(())
    })
    .await;
    wait_state(&b, "gateway:pair_degraded", "unack_rtn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_hand_over_moves_the_role_with_every_alarm_and_no_second_master() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    let (status, body) = b.post_json("/api/v1/pair/handover", json!({})).await;
    assert_eq!(status, 202, "the standby's answer comes from the active: {body}");
    assert_eq!(body["to"], "b");
    let fault = Instant::now();
    wait_role(&b, "active").await;
    let active = Instant::now();
    eprintln!("hand-over: {} ms", fault.elapsed().as_millis());
    assert_eq!(snapshot(&b).await, before);
    // Asked to, b polled the device read-only before a stopped; from a's stop on, b's own
    // readings were evaluated when it took over: the record has no gap.
    let warm = support::metric(&b.metrics().await, "hazard_pair_warm_readings_total", &[]);
    assert!(warm > 0.0, "readings b took after a stopped polling: {warm}");
    wait_for("the new active polls", WAIT, || async {
        (p.nodes[1].device.sent().iter().any(|t| *t >= active)).then_some(())
    })
    .await;
    never_two_masters(&p.nodes[0].device, &p.nodes[1].device, active);
    wait_follows(&a).await;
    assert_switchovers(&a, "handover", 1.0).await;
    assert_switchovers(&b, "lease_vacant", 1.0).await;
    // Nothing was journaled on a that b lacks: a follows without setting its journal aside.
    assert_eq!(
        support::metric(&a.metrics().await, "hazard_pair_diverged_journals_total", &[]),
        0.0
    );
    // A standby cannot be asked to hand over what it does not hold.
    let (status, _) = a.post_json("/api/v1/pair/handover", json!({})).await;
    assert_eq!(status, 202, "redirected to b, which hands back to a");
    wait_role(&a, "active").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_names_the_active_node_and_says_when_no_switch_over_is_possible() {
    let p = Pair::new().await;
    let (a, mut b) = started_pair(&p).await;
    let mut browser = support::ConsoleBrowser::start_script(
        "console_pair.mjs",
        &format!("{}/", b.base),
        &[
            ("STANDBY_URL", &format!("{}/", b.base)),
            ("ACTIVE_URL", &format!("{}/", a.base)),
        ],
    );
    let limit = std::time::Duration::from_secs(90);
    browser.expect_line("READY", limit).await;
    b.kill();
    wait_for("a sees its standby gone", WAIT, || async {
        (pair_status(&a).await?["peer_up"] == false).then_some(())
    })
    .await;
    browser.proceed();
    browser.expect_line("DONE", limit).await;
    browser.finish();
}

/// A standby whose API address is still held when it starts (the previous process's socket,
/// another program) serves it as soon as it is free, instead of staying invisible to
/// keepalived and the plant's monitoring until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_api_address_is_taken_serves_it_once_it_is_free() {
    let p = Pair::new().await;
    let a = p.spawn(0).await;
    wait_role(&a, "active").await;
    let holder = std::net::TcpListener::bind(("127.0.0.1", p.nodes[1].api)).expect("hold b's API port");
    let mut b = p.spawn_unchecked(1);
    wait_for("b says its API address is taken", WAIT, || async {
        b.stderr_so_far()
            .contains("cannot serve the standby's role on the API address")
            .then_some(())
    })
    .await;
    drop(holder);
    b.wait_up().await;
    wait_follows(&b).await;
    assert!(
        b.stderr_so_far()
            .contains("serving the standby's role on the API address"),
        "b says when it serves the address after all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_automatic_failback_the_preferred_node_takes_its_role_back_once_it_follows() {
    let p = Pair::with(|_| "failback = \"auto\"".to_string()).await;
    let (mut a, b) = started_pair(&p).await;
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    a.kill();
    wait_role(&b, "active").await;
    drop(a);
    let a = p.spawn(0).await;
    wait_role(&a, "standby").await;
    // After 30 s of following with nothing missing, b hands the role back to a.
    let back = Instant::now();
    wait_for("a active again", std::time::Duration::from_secs(90), || async {
        pair_status(&a).await.filter(|s| s["role"] == "active").map(|_| ())
    })
    .await;
    eprintln!("failback after {} ms", back.elapsed().as_millis());
    assert_eq!(snapshot(&a).await, before);
    wait_follows(&b).await;
    assert_switchovers(&b, "handover", 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_that_loses_its_plant_network_hands_over_only_to_a_standby_that_reaches_it() {
    let p = Pair::new().await;
    let (a, b) = started_pair(&p).await;
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    assert!(
        pair_status(&b).await.unwrap()["field"].is_null(),
        "the standby polls nothing while the active reaches its devices"
    );
    assert!(p.nodes[1].device.sent().is_empty(), "the standby never polls");

    // The device is gone for both nodes: switching over would gain nothing.
    p.nodes[0].device.cut();
    p.nodes[1].device.cut();
    let seen = wait_for("the active knows the standby reaches nothing either", WAIT, || async {
        let s = pair_status(&a).await?;
        let (own, peer) = (&s["field"], &s["peer_field"]);
        (own["devices"] == 1 && own["known"] == 1 && own["online"] == 0 && peer["known"] == 1 && peer["online"] == 0)
            .then_some(s)
    })
    .await;
    assert_eq!(seen["role"], "active", "{seen:#}");
    assert_eq!(pair_status(&b).await.unwrap()["role"], "standby");
    wait_state(&a, "g:communication", "unack_active").await;
    wait_replicated(&p, 0).await;
    let mut before = snapshot(&a).await;

    // The standby reaches the device again, the active does not: it hands over.
    let fault = Instant::now();
    p.nodes[1].device.restore();
    wait_role(&b, "active").await;
    eprintln!(
        "switch-over after the active's plant network: {} ms",
        fault.elapsed().as_millis()
    );
    // b reaches the device: the communication alarm a raised returns, unacknowledged.
    wait_state(&b, "g:communication", "unack_rtn").await;
    before.get_mut("g:communication").unwrap()["state"] = json!("unack_rtn");
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    wait_follows(&a).await;
    assert_switchovers(&a, "field_lost", 1.0).await;
    // b reaches the device and does not ask a to poll: a stops.
    wait_for("the standby stops polling once no longer asked", WAIT, || async {
        pair_status(&a).await?["field"].is_null().then_some(())
    })
    .await;
    wait_reads_ch1(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dual_poll_the_standby_polls_network_devices_and_shows_what_it_reaches() {
    let p = Pair::with(|_| "dual_poll = true\n".to_string()).await;
    let (a, b) = started_pair(&p).await;
    let s = wait_for("the standby reaches the device", WAIT, || async {
        let s = pair_status(&b).await?;
        (s["field"]["online"] == 1).then_some(s)
    })
    .await;
    assert_eq!(s["field"]["devices"], 1, "{s:#}");
    wait_for("the active hears what the standby reaches", WAIT, || async {
        let s = pair_status(&a).await?;
        (s["peer_field"]["online"] == 1).then_some(())
    })
    .await;
    assert!(
        !p.nodes[1].device.sent().is_empty(),
        "the standby polls through its own link"
    );

    // Its readings after the active went quiet are evaluated first when it takes over.
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    let mut a = a;
    a.kill();
    wait_role(&b, "active").await;
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    let warm = support::metric(&b.metrics().await, "hazard_pair_warm_readings_total", &[]);
    assert!(
        warm > 0.0,
        "the standby's own readings since the active went quiet: {warm}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_shared_serial_bus_a_partition_with_the_witness_on_one_side_never_makes_two_masters() {
    let p = Pair::on_serial_bus().await;
    let bus = p.bus.as_ref().unwrap();
    let (a, b) = started_pair(&p).await;
    wait_for("a polls the bus", WAIT, || async {
        (bus.sent(0).len() >= 20).then_some(())
    })
    .await;
    assert!(bus.sent(1).is_empty(), "the standby never opens the bus");
    raise_and_handle(&p, &a).await;
    wait_replicated(&p, 0).await;
    let before = snapshot(&a).await;
    // The pair apart, and a cut off from the witness: only b can prove itself.
    let fault = Instant::now();
    p.nodes[0].witness.cut();
    p.cut_link();
    wait_role(&b, "active").await;
    wait_role(&a, "standby").await;
    assert_eq!(snapshot(&b).await, before, "alarms after the switch-over");
    wait_for("b polls the bus", WAIT, || async {
        bus.sent(1).iter().any(|t| *t >= fault).then_some(())
    })
    .await;
    let late = late(&bus.sent(0), &bus.sent(1), fault);
    assert_eq!(late, 0, "a sent {late} requests on the bus after b began");
    // Healed: a follows and stays off the bus.
    p.nodes[0].witness.restore();
    p.restore_link();
    wait_follows(&a).await;
    let first_b = *bus.sent(1).iter().find(|t| **t >= fault).unwrap();
    assert_eq!(
        bus.sent(0).iter().filter(|t| **t >= first_b).count(),
        0,
        "a never drove the bus again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_buffered_for_a_store_that_is_down_reach_it_from_the_standby_after_the_active_is_killed() {
    let vm = support::VictoriaMetrics::start();
    let store = support::CutProxy::start(([127, 0, 0, 1], vm.port).into()).await;
    store.cut();
    let url = format!("http://{}", store.addr);
    let p = Pair::with(|_| {
        format!(
            "[[tsdb]]\nname = \"vm\"\nurl = \"{url}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\nbatch_age = \"100ms\"\n"
        )
    })
    .await;
    // A value that moves at every poll, so the active's raw history keeps each one.
    let ramp = async {
        let mut k = 0u32;
        loop {
            p.sim.pin("ch1", 1.0 + f64::from(k % 10) * 0.9);
            k += 1;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let test = async {
        let (mut a, b) = started_pair(&p).await;
        // The store is unreachable: the active buffers what it polls.
        let polled = wait_for("the active polls for a while", WAIT, || async {
            let ts = raw_history_ms(&a, "g%2Fch1").await;
            (ts.len() >= 30).then_some(ts)
        })
        .await;
        let copy = p.dir.path().join("data-b/tsdb/vm");
        wait_for(
            "the standby's copy of the store buffer holds every one",
            WAIT,
            || async {
                let bytes = segments(&copy);
                polled
                    .iter()
                    .all(|t| contains(&bytes, format!(" {t}").as_bytes()))
                    .then_some(())
            },
        )
        .await;
        let m = b.metrics().await;
        assert!(
            support::metric(&m, "hazard_pair_replicated_queue_bytes_total", &[]) > 0.0,
            "{m}"
        );
        let m = a.metrics().await;
        assert!(m.contains("hazard_pair_queue_lag_bytes"), "{m}");
        assert_eq!(
            support::metric(&m, "hazard_tsdb_lines_sent_total", &["store=\"vm\""]),
            0.0,
            "nothing reached the store: {m}"
        );

        a.kill();
        wait_role(&b, "active").await;
        store.restore();
        let got = wait_for("every buffered reading reaches the store", WAIT, || async {
            let got = in_store(&vm, "g/ch1").await;
            polled.iter().all(|t| got.contains_key(t)).then_some(got)
        })
        .await;
        for t in &polled {
            assert_eq!(got[t], 1, "reading at {t} ms stored once");
        }
        let m = b.metrics().await;
        assert_eq!(
            support::metric(&m, "hazard_pair_queue_bytes_dropped_total", &[]),
            0.0,
            "{m}"
        );
    };
    tokio::select! {
        () = ramp => unreachable!("the ramp runs until the test ends"),
        () = test => {}
    }
}

/// Timestamps (ms) of `point`'s raw history on `gw`, good readings only.
async fn raw_history_ms(gw: &support::GatewayProcess, point: &str) -> Vec<i64> {
    let now = hazard_gateway::clock::system().now().as_millis();
    let h = gw
        .get_json(&format!(
            "/api/v1/points/{point}/history?resolution=raw&from={}&to={}&limit=100000",
            now - 3_600_000,
            now + 3_600_000
        ))
        .await;
    h["readings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["quality"] == "good")
        .filter_map(|r| r["ts_ms"].as_i64())
        .collect()
}

/// The segment files of a queue directory, concatenated.
fn segments(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    for path in names {
        if path.extension().is_some_and(|e| e == "hgq") {
            out.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// How many samples of `point` the store holds per timestamp (ms).
async fn in_store(vm: &support::VictoriaMetrics, point: &str) -> std::collections::BTreeMap<i64, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (_, ts, _) in vm.export(&format!("hazard_reading_value{{point=\"{point}\"}}")).await {
        for t in ts {
            *out.entry(t).or_insert(0) += 1;
        }
    }
    out
}
