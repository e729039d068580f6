//! DTU server mode against a simulated DTU written here (`support::dtu`): it dials in,
//! registers, interleaves heartbeats with answers it gets from our Modbus simulator (RTU over
//! TCP, or TCP), and can deliver a late answer, redial with the same id, or go silent. An
//! unknown id is a plain socket. Every case ends in the values and qualities the API shows.

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hazard_gateway::sources::sim::{SimTransport, Simulator};
use support::dtu::{DtuOptions, Framing, SimDtu};
use support::{TestGateway, WAIT, free_port, metric, profile, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMEI: &str = "866123456789012";

/// A gas detector simulator as unit `unit` with its concentration pinned to `gas`.
async fn detector(unit: u8, gas: f64, framing: Framing) -> Simulator {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let transport = match framing {
        Framing::Rtu => SimTransport::RtuOverTcp(any),
        Framing::Tcp => SimTransport::Tcp(any),
    };
    let sim = Simulator::serve(profile("gas-lel-detector"), transport, Some(unit), None)
        .await
        .expect("simulator starts");
    assert!(sim.pin("gas", gas));
    sim
}

/// A gateway with one DTU listener on `port` and station `dam` with gas detectors 1 and 2.
fn config(port: u16, framing: &str, station: &str, heartbeat_timeout: &str) -> String {
    let mut s = format!(
        "[gateway]\nid = \"dtu\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[dtu.listeners]]\nlisten = \"127.0.0.1:{port}\"\nframing = \"{framing}\"\n\
         heartbeat_interval = \"1s\"\nheartbeat_timeout = \"{heartbeat_timeout}\"\n\
         [[dtu.stations]]\nname = \"dam\"\n{station}\n"
    );
    for unit in [1, 2] {
        s.push_str(&format!(
            "[[devices]]\nname = \"gas-{unit}\"\nprofile = \"gas-lel-detector\"\ntransport = {{ dtu = \"dam\" }}\n\
             unit_id = {unit}\ninterval = \"200ms\"\ntimeout = \"500ms\"\n"
        ));
    }
    s
}

fn options(port: u16, framing: Framing, registration: &[u8], heartbeat: &[u8], sims: &[&Simulator]) -> DtuOptions {
    DtuOptions {
        gateway: SocketAddr::from(([127, 0, 0, 1], port)),
        registration: registration.to_vec(),
        heartbeat: heartbeat.to_vec(),
        heartbeat_every: Duration::from_millis(150),
        heartbeat_around_answers: true,
        split_answers: false,
        framing,
        upstream: sims
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u8 + 1, s.local_addr()))
            .collect::<HashMap<_, _>>(),
    }
}

async fn quality_is(gw: &TestGateway, point: &str, quality: &str) -> serde_json::Value {
    wait_for(&format!("{point} to be {quality}"), WAIT, || async {
        let p = gw.point(point).await;
        (p["quality"] == quality).then_some(p)
    })
    .await
}

/// Waits for a reading of `point` newer than the current one and returns it.
async fn next_reading(gw: &TestGateway, point: &str) -> serde_json::Value {
    let before = gw.point(point).await["ts_ms"].as_i64().unwrap_or(0);
    wait_for(&format!("a newer reading of {point}"), WAIT, || async {
        let p = gw.point(point).await;
        (p["ts_ms"].as_i64().unwrap_or(0) > before).then_some(p)
    })
    .await
}

async fn both_good(gw: &TestGateway) {
    let a = quality_is(gw, "gas-1/gas", "good").await;
    let b = quality_is(gw, "gas-2/gas", "good").await;
    assert_eq!(a["value"], 12.5, "{a}");
    assert_eq!(b["value"], 7.5, "{b}");
}

/// Station `dam` registering by IMEI with `HB` heartbeats over RTU framing: its two detectors
/// and the gateway's DTU port; `dial` starts a simulated DTU for it.
struct ImeiStation {
    port: u16,
    detectors: (Simulator, Simulator),
}

impl ImeiStation {
    /// The station and a gateway waiting for it.
    async fn start(heartbeat_timeout: &str) -> (TestGateway, Self) {
        let detectors = (
            detector(1, 12.5, Framing::Rtu).await,
            detector(2, 7.5, Framing::Rtu).await,
        );
        let port = free_port();
        let station = format!("imei = \"{IMEI}\"\nheartbeat = \"HB\"");
        let gw = TestGateway::start(&config(port, "rtu", &station, heartbeat_timeout)).await;
        (gw, Self { port, detectors })
    }

    async fn dial(&self) -> SimDtu {
        let (s1, s2) = &self.detectors;
        SimDtu::start(options(self.port, Framing::Rtu, IMEI.as_bytes(), b"HB", &[s1, s2])).await
    }

    /// A DTU whose unit 2 is dead: requests to it get no answer, the rest flows as usual.
    async fn dial_with_unit_2_dead(&self) -> SimDtu {
        let mut opts = options(self.port, Framing::Rtu, IMEI.as_bytes(), b"HB", &[&self.detectors.0]);
        // Nothing listens there: the DTU's serial side finds no device and stays silent.
        opts.upstream.insert(2, SocketAddr::from(([127, 0, 0, 1], free_port())));
        SimDtu::start(opts).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_dtu_is_polled_and_its_heartbeats_never_reach_the_decoder() {
    let (mut gw, station) = ImeiStation::start("3s").await;
    let dtu = station.dial().await;
    both_good(&gw).await;
    // Several cycles more, every one of them with heartbeats around each answer.
    for _ in 0..3 {
        assert_eq!(next_reading(&gw, "gas-1/gas").await["quality"], "good");
        assert_eq!(next_reading(&gw, "gas-2/gas").await["quality"], "good");
    }
    let d = gw.device("gas-1").await;
    assert_eq!(d["status"], "online", "{d}");
    assert_eq!(d["bad_frames"], 0, "{d}");
    assert_eq!(d["transport"], "dtu dam", "{d}");
    assert_eq!(d["station"]["connected"], true, "{d}");
    assert!(d["station"]["heartbeats"].as_u64().unwrap() > 0, "{d}");
    let m = gw.metrics().await;
    assert!(
        metric(&m, "hazard_dtu_heartbeats_total", &["station=\"dam\""]) > 0.0,
        "{m}"
    );
    assert_eq!(metric(&m, "hazard_dtu_garbled_bytes_total", &["station=\"dam\""]), 0.0);
    assert_eq!(metric(&m, "hazard_dtu_station_connected", &["station=\"dam\""]), 1.0);
    assert_eq!(
        metric(
            &m,
            "hazard_dtu_registrations_total",
            &["listener=\"dtu\"", "result=\"ok\""]
        ),
        1.0
    );
    assert!(dtu.requests() > 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_with_a_regex_id_and_a_hex_heartbeat() {
    let (s1, s2) = (
        detector(1, 12.5, Framing::Tcp).await,
        detector(2, 7.5, Framing::Tcp).await,
    );
    let port = free_port();
    let station = "id_regex = \"REG:[0-9]{4};\"\nheartbeat_hex = \"fe fe\"";
    let mut gw = TestGateway::start(&config(port, "tcp", station, "3s")).await;
    let _dtu = SimDtu::start(options(port, Framing::Tcp, b"REG:0042;", &[0xfe, 0xfe], &[&s1, &s2])).await;
    both_good(&gw).await;
    assert_eq!(next_reading(&gw, "gas-2/gas").await["quality"], "good");
    assert_eq!(gw.device("gas-2").await["bad_frames"], 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_discarded_not_taken_for_the_next_request() {
    let (mut gw, station) = ImeiStation::start("3s").await;
    let dtu = station.dial().await;
    both_good(&gw).await;
    // Unit 1's next answer is held past the gateway's timeout and arrives just before an
    // answer of unit 2, in the same packet.
    dtu.delay_next_answer_of(1);
    wait_for("the late answer to be delivered", WAIT, || async {
        (dtu.state.late_sent.load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    wait_for("the late answer to be counted", WAIT, || async {
        let m = gw.metrics().await;
        (metric(&m, "hazard_dtu_late_replies_total", &["station=\"dam\""]) >= 1.0).then_some(())
    })
    .await;
    // Unit 2 never took unit 1's answer for its own, and both read their own values again.
    both_good(&gw).await;
    assert_eq!(next_reading(&gw, "gas-2/gas").await["value"], 7.5);
    assert_eq!(next_reading(&gw, "gas-1/gas").await["value"], 12.5);
    let d2 = gw.device("gas-2").await;
    assert_eq!(d2["bad_frames"], 0, "{d2}");
    assert!(d2["station"]["late_replies"].as_u64().unwrap() >= 1, "{d2}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtu_that_redials_with_the_same_id_replaces_its_old_connection() {
    let (mut gw, station) = ImeiStation::start("3s").await;
    let old = station.dial().await;
    both_good(&gw).await;
    let new = station.dial().await;
    wait_for("the old connection to be closed", WAIT, || async {
        old.closed_by_gateway().then_some(())
    })
    .await;
    wait_for("polls over the new connection", WAIT, || async {
        (new.requests() >= 4).then_some(())
    })
    .await;
    assert_eq!(next_reading(&gw, "gas-1/gas").await["quality"], "good");
    assert_eq!(next_reading(&gw, "gas-2/gas").await["quality"], "good");
    both_good(&gw).await;
    let d = gw.device("gas-1").await;
    assert_eq!(d["station"]["replaced"], 1, "{d}");
    assert_eq!(d["station"]["connected"], true, "{d}");
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "hazard_dtu_connections_replaced_total", &["station=\"dam\""]),
        1.0
    );
    assert!(gw.alarm("dam:communication").await.is_none());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_is_refused_and_counted() {
    let (mut gw, station) = ImeiStation::start("3s").await;
    let mut stranger = tokio::net::TcpStream::connect(("127.0.0.1", station.port))
        .await
        .unwrap();
    stranger.write_all(b"861111111111111").await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, stranger.read(&mut buf))
        .await
        .expect("the gateway hangs up");
    assert!(matches!(read, Ok(0) | Err(_)), "refused: {read:?}");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hazard_dtu_registrations_total",
            &["listener=\"dtu\"", "result=\"unknown\""]
        ),
        1.0
    );
    assert_eq!(metric(&m, "hazard_dtu_station_connected", &["station=\"dam\""]), 0.0);
    // The station's own DTU still gets in.
    let _dtu = station.dial().await;
    both_good(&gw).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dtu_turns_its_points_comm_fault_under_one_station_alarm() {
    let (mut gw, station) = ImeiStation::start("2s").await;
    let dtu = station.dial().await;
    both_good(&gw).await;
    dtu.set_silent(true);
    quality_is(&gw, "gas-1/gas", "comm_fault").await;
    quality_is(&gw, "gas-2/gas", "comm_fault").await;
    let alarm = wait_for("the station's communication alarm", WAIT, || async {
        gw.alarm("dam:communication").await
    })
    .await;
    assert_eq!(alarm["subject"], "dam", "{alarm}");
    wait_for("the gateway to close the silent connection", WAIT, || async {
        dtu.closed_by_gateway().then_some(())
    })
    .await;
    let d = gw.device("gas-2").await;
    assert_eq!(d["status"], "offline", "{d}");
    assert_eq!(d["station"]["connected"], false, "{d}");
    assert_eq!(d["station"]["heartbeat_timeouts"], 1, "{d}");
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "hazard_dtu_heartbeat_timeouts_total", &["station=\"dam\""]),
        1.0
    );
    assert_eq!(metric(&m, "hazard_dtu_station_connected", &["station=\"dam\""]), 0.0);
    // One alarm for the station, none per device.
    let alarms = gw.get_json("/api/v1/alarms").await;
    let comm: Vec<&str> = alarms
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["condition"] == "communication")
        .filter_map(|a| a["alarm_id"].as_str())
        .collect();
    assert_eq!(comm, vec!["dam:communication"], "{alarms}");
    assert_eq!(gw.point("gas-1/gas").await["quality"], "comm_fault");
    // The DTU redials: values come back and the station's alarm returns to normal.
    drop(dtu);
    let _again = station.dial().await;
    both_good(&gw).await;
    wait_for("the station's alarm to return to normal", WAIT, || async {
        let a = gw.alarm("dam:communication").await?;
        (a["state"] == "unack_rtn").then_some(())
    })
    .await;
    assert_eq!(gw.device("gas-1").await["station"]["connected"], true);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_device_inside_a_live_station_raises_its_own_alarm() {
    let (mut gw, station) = ImeiStation::start("3s").await;
    let _dtu = station.dial_with_unit_2_dead().await;
    quality_is(&gw, "gas-1/gas", "good").await;
    quality_is(&gw, "gas-2/gas", "comm_fault").await;
    let alarm = wait_for("the dead device's communication alarm", WAIT, || async {
        gw.alarm("gas-2:communication").await
    })
    .await;
    assert_eq!(alarm["state"], "unack_active", "{alarm}");
    assert_eq!(alarm["annunciated"], true, "{alarm}");
    // The station is alive: no station alarm, and the live device reads on.
    assert!(gw.alarm("dam:communication").await.is_none());
    assert!(gw.alarm("gas-1:communication").await.is_none());
    assert_eq!(next_reading(&gw, "gas-1/gas").await["quality"], "good");
    assert_eq!(gw.device("gas-1").await["station"]["connected"], true);
    gw.shutdown().await;
}

/// A DTU whose every answer arrives in two TCP segments with a heartbeat landing inside it or
/// around it (whole between the halves, split across the halves, split just before and just
/// after), the cut moving one byte per answer so it falls at every position of the frame.
/// Its heartbeat timer fires only once, at dial-in: every other heartbeat is one of these.
async fn split_answers_end_in_exact_values(framing: Framing, station: &str, registration: &[u8], heartbeat: &[u8]) {
    let (s1, s2) = (detector(1, 12.5, framing).await, detector(2, 7.5, framing).await);
    let port = free_port();
    let name = match framing {
        Framing::Rtu => "rtu",
        Framing::Tcp => "tcp",
    };
    // What is checked here is framing, not speed: a request timeout well above a loaded
    // machine's scheduling delays, so a split answer is never late for its request.
    let site = config(port, name, station, "3s").replace("timeout = \"500ms\"", "timeout = \"2s\"");
    let mut gw = TestGateway::start(&site).await;
    let mut opts = options(port, framing, registration, heartbeat, &[&s1, &s2]);
    opts.heartbeat_around_answers = false;
    opts.split_answers = true;
    opts.heartbeat_every = Duration::from_secs(3600);
    let dtu = SimDtu::start(opts).await;
    both_good(&gw).await;
    // Three shapes times every cut of a 9-byte RTU or 13-byte TCP answer, with a margin.
    wait_for("answers split at every position", WAIT, || async {
        (dtu.split_sent() >= 3 * 13 + 6).then_some(())
    })
    .await;
    for _ in 0..2 {
        let a = next_reading(&gw, "gas-1/gas").await;
        let b = next_reading(&gw, "gas-2/gas").await;
        assert_eq!((&a["quality"], &a["value"]), (&"good".into(), &12.5.into()), "{a}");
        assert_eq!((&b["quality"], &b["value"]), (&"good".into(), &7.5.into()), "{b}");
    }
    // Every heartbeat reached the station's liveness count, and nothing else did.
    let sent = dtu.heartbeats_sent() as f64;
    let counted = wait_for("every heartbeat sent so far counted", WAIT, || async {
        let n = metric(&gw.metrics().await, "hazard_dtu_heartbeats_total", &["station=\"dam\""]);
        (n >= sent).then_some(n)
    })
    .await;
    assert!(
        counted <= dtu.heartbeats_sent() as f64,
        "{counted} counted, {} sent",
        dtu.heartbeats_sent()
    );
    // No heartbeat byte went to the decoder or was dropped as garbage, and no answer was lost.
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "hazard_dtu_garbled_bytes_total", &["station=\"dam\""]),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "hazard_dtu_late_replies_total", &["station=\"dam\""]),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "hazard_dtu_heartbeat_timeouts_total", &["station=\"dam\""]),
        0.0
    );
    for device in ["gas-1", "gas-2"] {
        let d = gw.device(device).await;
        assert_eq!(d["status"], "online", "{d}");
        assert_eq!(d["bad_frames"], 0, "{d}");
        assert_eq!(d["timeouts"], 0, "{d}");
        assert_eq!(d["station"]["connected"], true, "{d}");
    }
    // Not one reading of the run was anything but the pinned value, good.
    for (point, value) in [("gas-1%2Fgas", 12.5), ("gas-2%2Fgas", 7.5)] {
        let hist = gw.get_json(&format!("/api/v1/points/{point}/history")).await;
        let rows = hist["readings"].as_array().expect("raw history");
        assert!(!rows.is_empty(), "{hist}");
        for r in rows {
            assert_eq!((&r["quality"], &r["value"]), (&"good".into(), &value.into()), "{r}");
        }
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_inside_and_around_split_rtu_answers_never_reach_the_decoder() {
    let station = format!("imei = \"{IMEI}\"\nheartbeat = \"HB\"");
    split_answers_end_in_exact_values(Framing::Rtu, &station, IMEI.as_bytes(), b"HB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_inside_and_around_split_tcp_answers_never_reach_the_decoder() {
    let station = "id_regex = \"REG:[0-9]{4};\"\nheartbeat_hex = \"fe fe\"";
    split_answers_end_in_exact_values(Framing::Tcp, station, b"REG:0042;", &[0xfe, 0xfe]).await;
}

/// A heartbeat made of bytes every answer is full of: the zeros of the MBAP header, and the
/// zero each answer here ends with (its status word), so every answer waits out the short
/// pause in which a split answer's rest would come, then is taken whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_that_looks_like_answer_bytes_inside_split_tcp_answers_never_reaches_the_decoder() {
    let station = "id_regex = \"REG:[0-9]{4};\"\nheartbeat_hex = \"00 fe\"";
    split_answers_end_in_exact_values(Framing::Tcp, station, b"REG:0042;", &[0x00, 0xfe]).await;
}
