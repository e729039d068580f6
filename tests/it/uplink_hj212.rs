//! An HJ 212 uplink of a running gateway (polling our Modbus simulators) against a test
//! centre built on the independent `a` crate, on loopback: the centre checks every frame
//! (length, CRC, CR LF, MN, PW, edition) and acknowledges data with 9014. A detector that
//! stops answering is sent with flag `B` and no value. The centre goes away for 60 s; after
//! it returns, the messages of the outage arrive in time order with their original times,
//! none acknowledged twice, and a history pull of the outage gets every stored record.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::model::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

use support::{TestGateway, simulator, wait_for};

const MN: &str = "HZGW0001TEST";
const PW: &str = "778899";
const LEVEL: &str = "L00001";
const GAS: &str = "G00001";
const SHANGHAI: &str = "Asia/Shanghai";

fn config(tank: &str, gas: &str, centre_port: u16) -> String {
    format!(
        r#"
[gateway]
id = "hj212-gw"

[api]
listen = "127.0.0.1:0"

[history]
heartbeat = "10s"

[[devices]]
name = "tank-T101"
profile = "tank-ltp"
transport = {{ tcp = "{tank}" }}
interval = "1s"

[[devices]]
name = "gas-1"
profile = "gas-lel-detector"
transport = {{ tcp = "{gas}" }}
interval = "1s"

[[uplinks]]
name = "env"
realtime_interval = "5s"
statistics = ["minute"]
basic = "never"
select = {{ points = ["tank-T101/level", "gas-1/gas"], alarms = false }}
codes = {{ enterprise = "E1", points = {{ "tank-T101/level" = "{LEVEL}", "gas-1/gas" = "{GAS}" }} }}
encoder = {{ type = "hj212", version = 2017, st = "22", mn = "{MN}", pw = {{ file = "pw.txt" }} }}
transport = {{ type = "hj212", address = "127.0.0.1:{centre_port}", ack_timeout = "5s", retries = 2, backoff_min = "200ms", backoff_max = "2s" }}
"#
    )
}

/// One frame the centre received, parsed by the `a` crate, with its `CP` flattened
/// (the crate leaves comma-joined members to the caller).
#[derive(Debug, Clone)]
struct Got {
    cn: String,
    qn: String,
    data_time: Option<String>,
    cp: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Log {
    frames: Vec<Got>,
    acked: HashSet<String>,
    acked_again: Vec<String>,
    bad: Vec<String>,
}

/// The test centre: listens on a fixed port so it can go away and come back.
struct Centre {
    log: Arc<Mutex<Log>>,
    writer: Arc<tokio::sync::Mutex<Option<OwnedWriteHalf>>>,
    task: Option<JoinHandle<()>>,
}

fn check(pkt: &a::Hj212Packet) -> Result<(), String> {
    let flag = pkt.flag_bits().ok_or("no Flag")?;
    if flag.version() != 1 {
        return Err(format!("edition bits {} in {}", flag.version(), pkt.payload));
    }
    if pkt.mn.as_deref() != Some(MN) || pkt.pw.as_deref() != Some(PW) {
        return Err(format!("MN/PW wrong in {}", pkt.payload));
    }
    let st = pkt.st.as_deref().unwrap_or("");
    if st != "22" && st != "91" {
        return Err(format!("ST {st}"));
    }
    Ok(())
}

impl Centre {
    async fn start(port: u16, log: Arc<Mutex<Log>>) -> Centre {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("centre binds");
        let writer: Arc<tokio::sync::Mutex<Option<OwnedWriteHalf>>> = Arc::default();
        let (w, l) = (writer.clone(), log.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (mut rd, wr) = stream.into_split();
                *w.lock().await = Some(wr);
                let mut framer = a::Framer::new();
                let mut buf = vec![0u8; 8192];
                loop {
                    let n = match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    framer.push(&buf[..n]);
                    while let Some(bytes) = framer.next_frame() {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        let pkt = match a::parse_frame_strict(&text) {
                            Ok(p) => p,
                            Err(e) => {
                                l.lock().unwrap().bad.push(format!("{e}: {text:?}"));
                                continue;
                            }
                        };
                        if let Err(e) = check(&pkt) {
                            l.lock().unwrap().bad.push(e);
                        }
                        let qn = pkt.qn.clone().unwrap_or_default();
                        let mut cp = BTreeMap::new();
                        for (k, v) in &pkt.cp {
                            // `a21026-Rtd=1.5,a21026-Flag=N`: the crate keeps `1.5,a21026-Flag=N`.
                            let mut parts = v.split(',');
                            cp.insert(k.clone(), parts.next().unwrap_or("").to_string());
                            for member in parts {
                                if let Some((mk, mv)) = member.split_once('=') {
                                    cp.insert(mk.to_string(), mv.to_string());
                                }
                            }
                        }
                        let cn = pkt.cn.clone().unwrap_or_default();
                        let ack = pkt.flag_bits().is_some_and(|f| f.need_ack());
                        {
                            let mut log = l.lock().unwrap();
                            if ack && log.acked.contains(&qn) {
                                log.acked_again.push(qn.clone());
                            }
                            log.frames.push(Got {
                                cn,
                                qn: qn.clone(),
                                data_time: pkt.data_time.clone(),
                                cp,
                            });
                        }
                        if ack {
                            let answer = a::build_data_ack(&qn, PW, MN).flag("4").frame();
                            if let Some(wr) = w.lock().await.as_mut() {
                                if wr.write_all(answer.as_bytes()).await.is_ok() {
                                    l.lock().unwrap().acked.insert(qn);
                                }
                            }
                        }
                    }
                }
                *w.lock().await = None;
            }
        });
        Centre {
            log,
            writer,
            task: Some(task),
        }
    }

    /// Goes away: listener and connection closed.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        *self.writer.lock().await = None;
    }

    async fn send(&self, payload: &str) {
        let frame = a::build_frame(payload);
        let mut w = self.writer.lock().await;
        w.as_mut()
            .expect("gateway connected")
            .write_all(frame.as_bytes())
            .await
            .unwrap();
    }

    fn frames(&self) -> Vec<Got> {
        self.log.lock().unwrap().frames.clone()
    }

    /// Pulls `cn` history over `[begin, end]` (Shanghai time text) and returns the exchange.
    async fn pull(&self, qn: &str, cn: &str, begin: &str, end: &str) -> Vec<Got> {
        self.send(&format!(
            "QN={qn};ST=22;CN={cn};PW={PW};MN={MN};Flag=5;CP=&&BeginTime={begin};EndTime={end}&&"
        ))
        .await;
        wait_for("the pull's 9012", Duration::from_secs(30), || async {
            let got: Vec<Got> = self.frames().into_iter().filter(|g| g.qn == qn).collect();
            got.iter().any(|g| g.cn == "9012").then_some(got)
        })
        .await
    }
}

impl Drop for Centre {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn local(ts: Timestamp, fmt: &str) -> String {
    let tz = jiff::tz::TimeZone::get(SHANGHAI).unwrap();
    jiff::Timestamp::from_millisecond(ts.as_millis())
        .unwrap()
        .to_zoned(tz)
        .strftime(fmt)
        .to_string()
}

/// The muted detector appears in messages of `cns` with flag `B` and never with a value.
fn assert_dead_detector(frames: &[Got], cns: &[&str]) {
    let data: Vec<&Got> = frames.iter().filter(|g| cns.contains(&g.cn.as_str())).collect();
    let flag = format!("{GAS}-Flag");
    assert!(
        data.iter().any(|g| g.cp.contains_key(&flag)),
        "the detector is reported"
    );
    for g in data {
        if let Some(f) = g.cp.get(&flag) {
            assert_eq!(f, "B", "{g:?}");
        }
        for field in ["Rtd", "Min", "Avg", "Max", "Cou"] {
            assert!(!g.cp.contains_key(&format!("{GAS}-{field}")), "{g:?}");
        }
    }
}

fn whole_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_millis(ts.as_millis() - ts.as_millis().rem_euclid(1000))
}

fn hj_time(ts: Timestamp) -> String {
    local(ts, "%Y%m%d%H%M%S")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centre_gets_every_record_through_a_60s_outage_and_by_history_pull() {
    let tank = simulator("tank-ltp", None).await;
    let gas = simulator("gas-lel-detector", None).await;
    gas.set_mute(true); // the detector never answers: a dead sensor
    let port = support::free_port();
    let log = Arc::new(Mutex::new(Log::default()));
    let mut centre = Centre::start(port, log.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw.txt"), format!("{PW}\n")).unwrap();
    let cfg = config(&tank.local_addr().to_string(), &gas.local_addr().to_string(), port);
    let gw = TestGateway::start_with(&cfg, dir, clock::system()).await;
    let now = || clock::system().now();

    // Real-time and minute data arrive, checked and acknowledged.
    wait_for("a real-time and a minute message", Duration::from_secs(100), || async {
        let f = centre.frames();
        (f.iter().any(|g| g.cn == "2011") && f.iter().any(|g| g.cn == "2051")).then_some(())
    })
    .await;
    let frames = centre.frames();
    // Each reading keeps its own time, so one tick may give a message per second.
    let level_flag = format!("{LEVEL}-Flag");
    let rt = frames
        .iter()
        .rev()
        .find(|g| g.cn == "2011" && g.cp.contains_key(&level_flag))
        .unwrap();
    assert_eq!(
        rt.cp.get(&format!("{LEVEL}-Flag")).map(String::as_str),
        Some("N"),
        "{rt:?}"
    );
    assert!(rt.cp[&format!("{LEVEL}-Rtd")].parse::<f64>().is_ok(), "{rt:?}");
    let minute = frames.iter().find(|g| g.cn == "2051").unwrap();
    for field in ["Min", "Avg", "Max", "Cou"] {
        assert!(minute.cp.contains_key(&format!("{LEVEL}-{field}")), "{minute:?}");
    }
    // The dead detector: its fault state, never a value.
    assert_dead_detector(&frames, &["2011", "2051"]);

    // The centre goes away for 60 s while data flows.
    centre.stop().await;
    let down = whole_second(now());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let up = whole_second(now());
    let mut centre = Centre::start(port, log.clone()).await;

    // The backlog arrives; live data after it means the outbox is through.
    let after_up = hj_time(up.plus(Duration::from_secs(1)));
    wait_for("live data after the outage", Duration::from_secs(180), || async {
        centre
            .frames()
            .iter()
            .any(|g| g.cn == "2011" && g.data_time.as_deref().is_some_and(|t| t > after_up.as_str()))
            .then_some(())
    })
    .await;
    let frames = centre.frames();
    let (bad, again) = {
        let l = log.lock().unwrap();
        (l.bad.clone(), l.acked_again.clone())
    };
    assert!(bad.is_empty(), "frames failing the centre's checks: {bad:?}");
    assert!(again.is_empty(), "acknowledged messages sent again: {again:?}");
    let rt_times: Vec<&str> = frames
        .iter()
        .filter(|g| g.cn == "2011")
        .filter_map(|g| g.data_time.as_deref())
        .collect();
    assert!(rt_times.is_sorted(), "real-time data out of time order: {rt_times:?}");
    let (d, u) = (hj_time(down), hj_time(up));
    let in_outage = rt_times
        .iter()
        .filter(|t| **t >= d.as_str() && **t <= u.as_str())
        .count();
    assert!(
        in_outage >= 6,
        "real-time messages of the outage: {in_outage}, {rt_times:?}"
    );
    let minute_times: Vec<&str> = frames
        .iter()
        .filter(|g| g.cn == "2051")
        .filter_map(|g| g.data_time.as_deref())
        .collect();
    assert!(minute_times.is_sorted(), "{minute_times:?}");

    // History pull of the outage's closed minutes: every stored minute, original times.
    let first_minute = Timestamp::from_millis(down.as_millis() - down.as_millis().rem_euclid(60_000));
    let last_minute = Timestamp::from_millis(up.as_millis() - up.as_millis().rem_euclid(60_000) - 60_000);
    let stored = |from: Timestamp, to: Timestamp, resolution: &'static str| {
        let gw = &gw;
        async move {
            let path = format!(
                "/api/v1/points/tank-T101%2Flevel/history?from={}&to={}&resolution={resolution}",
                from.as_millis(),
                to.as_millis()
            );
            gw.get_json(&path).await
        }
    };
    let minutes = wait_for("the outage's minutes in history", Duration::from_secs(90), || async {
        let h = stored(first_minute, last_minute, "minute").await;
        let rows = h["minutes"].as_array().cloned().unwrap_or_default();
        rows.iter()
            .any(|r| r["ts_ms"].as_i64() == Some(last_minute.as_millis()))
            .then_some(rows)
    })
    .await;
    let pulled = centre
        .pull(
            "20300101000000001",
            "2051",
            &hj_time(first_minute),
            &hj_time(last_minute),
        )
        .await;
    assert_eq!(pulled[0].cn, "9011");
    assert_eq!(pulled[0].cp.get("QnRtn").map(String::as_str), Some("1"));
    assert_eq!(pulled.last().unwrap().cp.get("ExeRtn").map(String::as_str), Some("1"));
    let data: Vec<&Got> = pulled.iter().filter(|g| g.cn == "2051").collect();
    let level_minutes: Vec<(String, u64)> = data
        .iter()
        .filter_map(|g| {
            let cou = g.cp.get(&format!("{LEVEL}-Cou"))?.parse().ok()?;
            Some((g.data_time.clone()?, cou))
        })
        .collect();
    let want: Vec<(String, u64)> = minutes
        .iter()
        .filter(|r| r["count"].as_u64().unwrap_or(0) > 0)
        .map(|r| {
            let ts = Timestamp::from_millis(r["ts_ms"].as_i64().unwrap());
            (hj_time(ts), r["count"].as_u64().unwrap())
        })
        .collect();
    assert!(!want.is_empty(), "{minutes:?}");
    assert_eq!(level_minutes, want, "every stored minute with its original time");
    assert_dead_detector(&pulled, &["2051"]);

    // Raw history of the outage: every stored reading of the level, to the second.
    let raw = stored(down, up, "raw").await;
    let rows = raw["readings"].as_array().cloned().unwrap_or_default();
    let want: Vec<String> = rows
        .iter()
        .filter(|r| r["quality"] == "good")
        .map(|r| hj_time(Timestamp::from_millis(r["ts_ms"].as_i64().unwrap())))
        .collect();
    assert!(!want.is_empty(), "{raw:#}");
    let pulled = centre
        .pull("20300101000000002", "2011", &hj_time(down), &hj_time(up))
        .await;
    assert_eq!(pulled.last().unwrap().cp.get("ExeRtn").map(String::as_str), Some("1"));
    let got: Vec<String> = pulled
        .iter()
        .filter(|g| g.cn == "2011" && g.cp.contains_key(&format!("{LEVEL}-Rtd")))
        .filter_map(|g| g.data_time.clone())
        .collect();
    assert_eq!(got, want, "every stored reading with its original time");

    // A pull of a range with nothing stored ends with ExeRtn=100.
    let empty = centre
        .pull("20300101000000003", "2051", "20000101000000", "20000101010000")
        .await;
    assert_eq!(empty.last().unwrap().cp.get("ExeRtn").map(String::as_str), Some("100"));

    let metrics = gw.metrics().await;
    assert!(
        support::metric(
            &metrics,
            "hazard_uplink_hj212_history_records_total",
            &["uplink=\"env\""]
        ) > 0.0
    );
    assert!(support::metric(&metrics, "hazard_uplink_hj212_connects_total", &["result=\"ok\""]) >= 2.0);
    centre.stop().await;
}
