//! Faults a plant network throws at the poller, each against a real peer where one can be
//! made to produce it: exceptions and illegal-address splits (pymodbus), a device that
//! disappears and comes back, one that answers slowly, a dead unit on a shared RTU bus (our
//! simulator, on TCP and on a socat pty pair). Garbled answers come from a scripted fake peer,
//! because no real server can be made to send them. Each case checks the quality of the
//! readings, the device's health, and that the other devices are not disturbed.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use hazard_gateway::sources::sim::{SimTransport, Simulator};
use serde_json::json;
use support::{PtyPair, PyModbusPeer, TestGateway, WAIT, profile, simulator, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A counter from `/metrics`, 0 when absent.
async fn metric(gw: &TestGateway, series: &str) -> f64 {
    let text = gw.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn config(devices: &str) -> String {
    format!("[gateway]\nid = \"faults\"\n[api]\nlisten = \"127.0.0.1:0\"\n{devices}")
}

fn device(name: &str, profile: &str, transport: &str, extra: &str) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\nprofile = \"{profile}\"\ntransport = {transport}\ninterval = \"100ms\"\ntimeout = \"300ms\"\n{extra}\n"
    )
}

/// Waits until `point` has quality `quality`.
async fn quality_is(gw: &TestGateway, point: &str, quality: &str) {
    wait_for(&format!("{point} to be {quality}"), WAIT, || async {
        (gw.point(point).await["quality"] == quality).then_some(())
    })
    .await;
}

/// Waits until `point` gets a reading newer than the current one, and checks it is good.
async fn still_fresh_and_good(gw: &TestGateway, point: &str) {
    let before = gw.point(point).await["ts_ms"].as_i64().unwrap_or(0);
    let p = wait_for(&format!("a newer reading of {point}"), WAIT, || async {
        let p = gw.point(point).await;
        (p["ts_ms"].as_i64().unwrap_or(0) > before).then_some(p)
    })
    .await;
    assert_eq!(p["quality"], "good", "{point}: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_illegal_address_splits_the_read_once_and_the_split_is_remembered() {
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("gappy.toml"),
        "[profile]\ndescription = \"a map with a hole\"\nmax_gap = 10\n\
         [points.a]\nfunction = \"holding\"\naddress = 0\ntype = \"u16\"\nunit = \"1\"\nkind = \"state\"\n\
         [points.b]\nfunction = \"holding\"\naddress = 5\ntype = \"u16\"\nunit = \"1\"\nkind = \"state\"\n",
    )
    .unwrap();
    let peer = PyModbusPeer::start_spec(json!({"transport": "tcp", "devices": {"1": [
        {"table": "hr", "address": 0, "type": "u16", "value": 11},
        {"table": "hr", "address": 5, "type": "u16", "value": 55},
    ]}}));
    let cfg = format!(
        "[gateway]\nid = \"split\"\nprofile_dirs = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n{}",
        profiles.path().display(),
        device("g", "gappy", &format!("{{ tcp = \"{}\" }}", peer.addr), "")
    );
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "g/b", "good").await;
    assert_eq!(gw.point("g/a").await["value"], 11.0);
    assert_eq!(gw.point("g/b").await["value"], 55.0);
    let h = gw.device("g").await;
    assert_eq!(h["exceptions"], 1, "one rejected bridged read: {h}");
    assert_eq!(h["status"], "online", "{h}");
    // Later cycles read the two pieces and are never rejected again.
    let requests = h["requests"].as_u64().unwrap();
    let later = wait_for("more cycles", WAIT, || async {
        let h = gw.device("g").await;
        (h["requests"].as_u64().unwrap() >= requests + 6).then_some(h)
    })
    .await;
    assert_eq!(later["exceptions"], 1, "{later}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_other_than_a_bad_address_is_a_decode_error_and_the_device_stays_online() {
    // pymodbus answers exception 02 for a single unmapped register: nothing left to split.
    let peer = PyModbusPeer::start_spec(json!({"transport": "tcp", "devices": {"1": [
        {"table": "ir", "address": 0, "type": "u16", "value": 8000},
        {"table": "ir", "address": 1, "type": "u16", "value": 8000},
    ]}}));
    let mut gw = TestGateway::start(&config(&device(
        "gas",
        "ai4-gas-lel",
        &format!("{{ tcp = \"{}\" }}", peer.addr),
        "",
    )))
    .await;
    // The profile reads ch1..ch4 in one block; the peer serves only ch1 and ch2, so the block
    // is rejected, split, and ch3/ch4 alone are refused.
    quality_is(&gw, "gas/ch1", "good").await;
    quality_is(&gw, "gas/ch4", "decode_error").await;
    assert_eq!(gw.point("gas/ch2").await["value"], 25.0);
    let h = gw.device("gas").await;
    assert_eq!(h["status"], "online", "{h}");
    assert!(h["exceptions"].as_u64().unwrap() >= 2, "{h}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_disappears_goes_offline_and_comes_back_without_disturbing_another() {
    let a = simulator("tank-ltp", None).await;
    let b = simulator("ai4-gas-lel", None).await;
    let addr = a.local_addr();
    let cfg = config(&format!(
        "{}{}",
        device("a", "tank-ltp", &format!("{{ tcp = \"{addr}\" }}"), ""),
        device("b", "ai4-gas-lel", &format!("{{ tcp = \"{}\" }}", b.local_addr()), "")
    ));
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "a/level", "good").await;
    a.stop();
    quality_is(&gw, "a/level", "comm_fault").await;
    let h = gw.device("a").await;
    assert_eq!(h["status"], "offline", "{h}");
    assert!(h["consecutive_failures"].as_u64().unwrap() >= 1, "{h}");
    assert!(h["last_success"].is_string(), "{h}");
    assert_eq!(metric(&gw, "hazard_modbus_device_online{device=\"a\"}").await, 0.0);
    assert!(metric(&gw, "hazard_modbus_consecutive_failures{device=\"a\"}").await >= 1.0);
    assert!(metric(&gw, "hazard_modbus_last_success_timestamp_seconds{device=\"a\"}").await > 1.6e9);
    still_fresh_and_good(&gw, "b/ch1").await;
    assert_eq!(gw.device("b").await["status"], "online");
    drop(a);
    // The device powers up again on the same address.
    let back = wait_for("the address to be free again", WAIT, || async {
        Simulator::start(profile("tank-ltp"), addr, None).await.ok()
    })
    .await;
    quality_is(&gw, "a/level", "good").await;
    let h = gw.device("a").await;
    assert_eq!(h["status"], "online", "{h}");
    assert_eq!(h["consecutive_failures"], 0, "{h}");
    drop(back);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_device_is_good_within_its_timeout_and_comm_fault_beyond_it() {
    let slow = simulator("tank-ltp", None).await;
    let b = simulator("ai4-gas-lel", None).await;
    slow.set_delay(Duration::from_millis(150));
    let cfg = config(&format!(
        "{}{}",
        device(
            "slow",
            "tank-ltp",
            &format!("{{ tcp = \"{}\" }}", slow.local_addr()),
            ""
        ),
        device("b", "ai4-gas-lel", &format!("{{ tcp = \"{}\" }}", b.local_addr()), "")
    ));
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "slow/level", "good").await;
    let h = gw.device("slow").await;
    assert!(h["response_ms_p50"].as_f64().unwrap() >= 150.0, "{h}");
    // Each cycle takes longer than the 100 ms interval: the missed ticks are counted as
    // overruns and skipped, never queued up.
    wait_for("an overrun to be counted", WAIT, || async {
        (metric(&gw, "hazard_modbus_overruns_total{device=\"slow\"}").await >= 1.0).then_some(())
    })
    .await;
    slow.set_delay(Duration::from_secs(2));
    quality_is(&gw, "slow/level", "comm_fault").await;
    let h = gw.device("slow").await;
    assert!(h["timeouts"].as_u64().unwrap() >= 1, "{h}");
    assert_eq!(h["status"], "offline", "{h}");
    still_fresh_and_good(&gw, "b/ch2").await;
    slow.set_delay(Duration::ZERO);
    quality_is(&gw, "slow/level", "good").await;
    assert_eq!(gw.device("slow").await["status"], "online");
    gw.shutdown().await;
}

/// A scripted fake peer (no real server can be made to send garbled frames): reads each
/// request and answers with `answer(request)`, until dropped.
async fn garbling_peer(answer: fn(&[u8]) -> Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&answer(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_answers_are_decode_errors_counted_as_bad_frames() {
    // TCP: the right transaction and unit, but a byte count that disagrees with the request.
    let (tcp, tcp_task) = garbling_peer(|req| {
        let mut a = req[..4].to_vec();
        a.extend([0, 5, req[6], req[7], 2, 0x12, 0x34]);
        a
    })
    .await;
    // RTU over TCP: a well-shaped answer with a wrong CRC.
    let (rtu, rtu_task) = garbling_peer(|req| {
        let count = usize::from(req[5]) * 2;
        let mut a = vec![req[0], req[1], count as u8];
        a.extend(std::iter::repeat_n(0x11, count));
        a.extend([0xDE, 0xAD]);
        a
    })
    .await;
    let good = simulator("ai4-gas-lel", None).await;
    let cfg = config(&format!(
        "{}{}{}",
        device("t", "tank-ltp", &format!("{{ tcp = \"{tcp}\" }}"), ""),
        device("r", "tank-ltp", &format!("{{ rtu_over_tcp = \"{rtu}\" }}"), ""),
        device(
            "g",
            "ai4-gas-lel",
            &format!("{{ tcp = \"{}\" }}", good.local_addr()),
            ""
        )
    ));
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "t/level", "decode_error").await;
    quality_is(&gw, "r/level", "decode_error").await;
    for name in ["t", "r"] {
        let h = gw.device(name).await;
        assert!(h["bad_frames"].as_u64().unwrap() >= 1, "{h}");
        assert_eq!(h["status"], "offline", "{h}");
    }
    assert!(metric(&gw, "hazard_modbus_requests_total{device=\"r\",result=\"bad_crc\"}").await >= 1.0);
    assert!(
        metric(
            &gw,
            "hazard_modbus_requests_total{device=\"t\",result=\"wrong_byte_count\"}"
        )
        .await
            >= 1.0
    );
    still_fresh_and_good(&gw, "g/ch1").await;
    tcp_task.abort();
    rtu_task.abort();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_unit_on_a_shared_rtu_bus_costs_one_timeout_per_cycle_and_is_polled_less_often() {
    let pty = PtyPair::start();
    let sim = Simulator::serve(
        profile("ai4-gas-lel"),
        SimTransport::Rtu(pty.b.clone(), 19200),
        Some(1),
        None,
    )
    .await
    .expect("simulator on the pty");
    let port = pty.a.display();
    let bus = format!("{{ rtu = {{ port = \"{port}\", baud = 19200 }} }}");
    // Unit 2 is configured but nothing answers as unit 2. With two registers per read its
    // tank profile takes three reads a cycle.
    let cfg = config(&format!(
        "{}{}",
        device("alive", "ai4-gas-lel", &bus, "unit_id = 1"),
        device("dead", "tank-ltp", &bus, "unit_id = 2\nmax_registers = 2")
    ));
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "alive/ch1", "good").await;
    quality_is(&gw, "dead/level", "comm_fault").await;
    wait_for("the live unit to run 20 cycles", WAIT, || async {
        (metric(&gw, "hazard_modbus_polls_total{device=\"alive\",result=\"ok\"}").await >= 20.0).then_some(())
    })
    .await;
    still_fresh_and_good(&gw, "alive/ch1").await;
    let dead_cycles = metric(&gw, "hazard_modbus_polls_total{device=\"dead\",result=\"comm_fault\"}").await;
    let timeouts = metric(&gw, "hazard_modbus_requests_total{device=\"dead\",result=\"timeout\"}").await;
    let alive_cycles = metric(&gw, "hazard_modbus_polls_total{device=\"alive\",result=\"ok\"}").await;
    assert!(timeouts <= dead_cycles, "{timeouts} timeouts in {dead_cycles} cycles");
    // Both are due every 100 ms; backing off, the dead unit is tried far less often.
    assert!(
        dead_cycles * 2.0 <= alive_cycles,
        "dead unit polled {dead_cycles} times vs {alive_cycles}"
    );
    let h = gw.device("dead").await;
    assert_eq!(h["status"], "offline", "{h}");
    assert_eq!(gw.device("alive").await["status"], "online");
    drop(sim);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_unit_behind_a_tcp_gateway_does_not_hold_back_the_unit_that_answers() {
    // One TCP address, two unit ids on one connection; only unit 1 answers (unit 2 gets no
    // reply at all, as behind a serial gateway whose downstream device is dead).
    let sim = Simulator::serve(
        profile("ai4-gas-lel"),
        SimTransport::Tcp("127.0.0.1:0".parse().unwrap()),
        Some(1),
        None,
    )
    .await
    .unwrap();
    let addr = format!("{{ tcp = \"{}\" }}", sim.local_addr());
    let cfg = config(&format!(
        "{}{}",
        device("one", "ai4-gas-lel", &addr, "unit_id = 1"),
        device("two", "ai4-gas-lel", &addr, "unit_id = 2")
    ));
    let mut gw = TestGateway::start(&cfg).await;
    quality_is(&gw, "two/ch1", "comm_fault").await;
    wait_for("unit 1 to run 20 cycles", WAIT, || async {
        (metric(&gw, "hazard_modbus_polls_total{device=\"one\",result=\"ok\"}").await >= 20.0).then_some(())
    })
    .await;
    still_fresh_and_good(&gw, "one/ch1").await;
    assert_eq!(gw.device("one").await["status"], "online");
    let two = gw.device("two").await;
    assert_eq!(two["status"], "offline", "{two}");
    assert!(two["timeouts"].as_u64().unwrap() >= 1, "{two}");
    gw.shutdown().await;
}
