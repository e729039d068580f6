//! Coal-mine uplink files pushed to a real FTP server (pyftpdlib) on loopback: complete files,
//! in time order, each once, nothing lost while the server is down; first the file-drop
//! transport on its own, then a running gateway reading simulated methane sensors.

use crate::support;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::coal::{CoalEncoder, CoalSettings, TextEncoding};
use hazard_gateway::sinks::uplink::file_drop::{AfterPush, FileDrop, FileDropSettings, FtpSettings, Password};
use hazard_gateway::sinks::uplink::time::{DEFAULT_ZONE, zone};
use hazard_gateway::sinks::uplink::{Codes, Encoder, Payload, RecordKind, Transport, TransportError, UplinkRecord};
use support::{FtpServer, TestGateway, WAIT, metric, simulator, wait_for};

/// 2026-11-25 08:00:00 in Shanghai.
const T0_SECS: i64 = 1_795_564_800;

fn reading(secs: i64, value: Option<f64>, quality: Quality) -> UplinkRecord {
    UplinkRecord {
        kind: RecordKind::Realtime,
        point: "8101/face/CH4-T0".into(),
        codes: Codes {
            enterprise: "140211001".into(),
            hazard_source: None,
            point: "140211001MN0001".into(),
        },
        unit: "%CH4".into(),
        time: Timestamp::from_millis((T0_SECS + secs) * 1000),
        value,
        quality,
        stats: None,
        alarm: None,
        meta: None,
    }
}

fn file_drop_settings(spool: &Path, ftp: &FtpServer, after_push: AfterPush) -> FileDropSettings {
    FileDropSettings {
        spool_dir: Some(spool.to_path_buf()),
        ftp: Some(FtpSettings {
            address: ftp.addr(),
            user: FtpServer::USER.into(),
            password: None,
            remote_dir: None,
            timeout: None,
        }),
        after_push,
    }
}

/// The records of a GBK coal file, each split into fields (the file must be complete).
fn parse_gbk(bytes: &[u8]) -> Vec<Vec<String>> {
    let (text, _, bad) = encoding_rs::GBK.decode(bytes);
    assert!(!bad, "valid GBK");
    let body = text.strip_suffix("~||").expect("a complete file ends with ~||");
    body.split('~')
        .map(|r| r.split(';').map(str::to_string).collect())
        .collect()
}

/// Delivers the head of `queue` until it is empty or a delivery fails, as the outbox does.
async fn drain(drop: &mut FileDrop, queue: &mut VecDeque<Payload>) -> Option<TransportError> {
    while let Some(p) = queue.front() {
        match drop.deliver(p).await {
            Ok(()) => {
                queue.pop_front();
            }
            Err(e) => return Some(e),
        }
    }
    None
}

#[tokio::test]
async fn coal_files_reach_a_real_ftp_server_complete_in_order_and_once_through_an_outage() {
    let mut ftp = FtpServer::start();
    let spool = tempfile::tempdir().unwrap();
    let settings = file_drop_settings(spool.path(), &ftp, AfterPush::Move);
    let mut drop = FileDrop::open("coal", &settings, spool.path(), Password(FtpServer::PASSWORD.into())).unwrap();
    let coal = CoalSettings::for_mine("140211001", "示例煤矿", TextEncoding::Gbk);
    let mut enc = CoalEncoder::new("coal", coal, zone(DEFAULT_ZONE).unwrap(), Duration::from_secs(300));

    let mut queue = VecDeque::new();
    let mut names = Vec::new();
    for i in 0..12i64 {
        if i == 4 {
            ftp.stop();
        }
        if i == 9 {
            ftp.restart();
        }
        // The sensor dies at the eighth reading: a fault state and no value from then on.
        let r = if i < 7 {
            reading(i * 10, Some(0.10 + 0.01 * i as f64), Quality::Good)
        } else {
            reading(i * 10, Some(655.35), Quality::OutOfRange)
        };
        let payload = enc.encode(&[r]).unwrap().remove(0);
        names.push(payload.attr("file_name").unwrap().to_string());
        queue.push_back(payload);
        let failed = drain(&mut drop, &mut queue).await;
        if (4..9).contains(&i) {
            assert!(
                matches!(failed, Some(TransportError::Unreachable(_))),
                "server down at {i}: {failed:?}"
            );
            assert_eq!(queue.len() as i64, i - 3, "held for the outbox");
        } else {
            assert!(failed.is_none(), "server up at {i}: {failed:?}");
        }
    }
    assert!(queue.is_empty());
    assert_eq!(ftp.received(), names, "every file once, in time order");
    for (i, name) in names.iter().enumerate() {
        let rows = parse_gbk(&std::fs::read(ftp.root().join(name)).unwrap());
        assert_eq!(rows[0][..2], ["140211001", "示例煤矿"]);
        let (value, state) = (&rows[1][3], &rows[1][5]);
        if i < 7 {
            assert_eq!(
                (value.as_str(), state.as_str()),
                (format!("{:.2}", 0.10 + 0.01 * i as f64).as_str(), "0")
            );
        } else {
            assert_eq!(
                (value.as_str(), state.as_str()),
                ("", "8"),
                "dead sensor: no value, fault state"
            );
        }
    }
    // Nothing waits in the spool; every pushed file is in sent/; no temporary names anywhere.
    let spooled: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");
    assert_eq!(
        std::fs::read_dir(spool.path().join("sent")).unwrap().count(),
        names.len()
    );
    let server_files = std::fs::read_dir(ftp.root()).unwrap().count();
    assert_eq!(server_files, names.len(), "no partial uploads left on the server");
}

#[tokio::test]
async fn after_push_delete_leaves_nothing_and_a_new_gateway_pushes_what_an_old_one_spooled() {
    let mut ftp = FtpServer::start();
    let spool = tempfile::tempdir().unwrap();
    ftp.stop();
    // A first run spools two files while the server is down, then stops.
    {
        let settings = file_drop_settings(spool.path(), &ftp, AfterPush::Delete);
        let mut drop = FileDrop::open("coal", &settings, spool.path(), Password(FtpServer::PASSWORD.into())).unwrap();
        let coal = CoalSettings::for_mine("140211001", "煤矿", TextEncoding::Utf8);
        let mut enc = CoalEncoder::new("coal", coal, zone(DEFAULT_ZONE).unwrap(), Duration::from_secs(300));
        for secs in [0, 10] {
            let p = enc
                .encode(&[reading(secs, Some(0.2), Quality::Good)])
                .unwrap()
                .remove(0);
            assert!(matches!(drop.deliver(&p).await, Err(TransportError::Unreachable(_))));
        }
    }
    ftp.restart();
    // The next run's first file pushes the leftovers first, in name order.
    let settings = file_drop_settings(spool.path(), &ftp, AfterPush::Delete);
    let mut drop = FileDrop::open("coal", &settings, spool.path(), Password(FtpServer::PASSWORD.into())).unwrap();
    let coal = CoalSettings::for_mine("140211001", "煤矿", TextEncoding::Utf8);
    let mut enc = CoalEncoder::new("coal", coal, zone(DEFAULT_ZONE).unwrap(), Duration::from_secs(300));
    let p = enc.encode(&[reading(20, Some(0.3), Quality::Good)]).unwrap().remove(0);
    drop.deliver(&p).await.unwrap();
    assert_eq!(
        ftp.received(),
        [
            "140211001_CDSS_20261125080000.txt",
            "140211001_CDSS_20261125080010.txt",
            "140211001_CDSS_20261125080020.txt"
        ]
    );
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(std::fs::read_dir(spool.path().join("sent")).unwrap().count(), 0);
}

/// A coal face read from two simulated methane sensors; the second one has died (it serves
/// 0xFFFF, outside its 0–4 % range).
fn coal_gateway(live: &str, dead: &str, ftp: &FtpServer) -> String {
    format!(
        r#"
[gateway]
id = "mine-gw"
[api]
listen = "127.0.0.1:0"

[[devices]]
name = "T0-face"
profile = "mine-ch4"
transport = {{ tcp = "{live}" }}
interval = "250ms"
points = {{ ch4 = "8101/face/CH4-T0" }}

[[devices]]
name = "T1-corner"
profile = "mine-ch4"
transport = {{ tcp = "{dead}" }}
interval = "250ms"
points = {{ ch4 = "8101/face/CH4-T1" }}

[[uplinks]]
name = "coal"
realtime_interval = "1s"
replay_rate = 200
retry_max = "2s"
statistics = ["minute"]
codes = {{ enterprise = "140211001", points = {{ "8101/face/CH4-T0" = {{ code = "140211001MN0001", location = "8101工作面" }}, "8101/face/CH4-T1" = {{ code = "140211001MN0002", location = "8101上隅角" }} }} }}
select = {{ points = ["8101/face/CH4-T0", "8101/face/CH4-T1"] }}
encoder = {{ type = "coal", mine_code = "140211001", mine_name = "示例煤矿", encoding = "gbk", system = "KJ95X" }}
transport = {{ type = "file", ftp = {{ address = "{addr}", user = "{user}", password = {{ file = "ftp-password.txt" }} }} }}
"#,
        addr = ftp.addr(),
        user = FtpServer::USER,
    )
}

/// A file on the FTP server, parsed back (it must be complete GBK).
fn server_file(ftp: &FtpServer, name: &str) -> Vec<Vec<String>> {
    parse_gbk(&std::fs::read(ftp.root().join(name)).unwrap())
}

fn of_type<'a>(names: &'a [String], kind: &str) -> Vec<&'a String> {
    names.iter().filter(|n| n.contains(&format!("_{kind}_"))).collect()
}

/// CDSS rows of point `code` across `files`, in delivery order: (value, state, time).
fn cdss_rows(ftp: &FtpServer, files: &[&String], code: &str) -> Vec<(String, u16, String)> {
    files
        .iter()
        .flat_map(|f| server_file(ftp, f))
        .filter(|r| r.len() == 7 && r[0] == code)
        .map(|r| (r[3].clone(), r[5].parse().unwrap(), r[6].clone()))
        .collect()
}

#[tokio::test]
async fn a_running_gateway_pushes_coal_files_through_a_60_second_ftp_outage() {
    let live = simulator("mine-ch4", None).await;
    let dead = simulator("mine-ch4", None).await;
    assert!(dead.pin("ch4", 655.35), "the dead sensor serves 0xFFFF");
    let mut ftp = FtpServer::start();
    let config = coal_gateway(&live.local_addr().to_string(), &dead.local_addr().to_string(), &ftp);
    let mut gw =
        TestGateway::start_with_files(&config, &[("ftp-password.txt", &format!("{}\n", FtpServer::PASSWORD))]).await;
    let metrics = gw.metric_handles().clone();

    // Definitions first, then real-time files; the dead sensor's fault alarm opens a YCBJ
    // record (004) and its CDSS rows carry over range + sensor fault, never a value.
    wait_for("CDDY, CDSS with the dead sensor's fault, YCBJ", WAIT, || async {
        let got = ftp.received();
        let cdss = of_type(&got, "CDSS");
        let faulted = cdss_rows(&ftp, &cdss, "140211001MN0002").iter().any(|r| r.1 & 128 != 0);
        (!of_type(&got, "CDDY").is_empty() && cdss.len() >= 3 && faulted && !of_type(&got, "YCBJ").is_empty())
            .then_some(())
    })
    .await;
    let got = ftp.received();
    assert!(got[0].contains("_CDDY_"), "definitions come first: {got:?}");
    let cddy = server_file(&ftp, &got[0]);
    assert_eq!(cddy[0][..2], ["140211001", "示例煤矿"]);
    let t0 = cddy.iter().find(|r| r[0] == "140211001MN0001").expect("T0 defined");
    // Coal-face methane: MN, %CH4, range 4.00–0.00, alarm 1.00, power cut 1.50, restore 1.00.
    assert_eq!(
        t0[1..10],
        ["KJ95X", "", "甲烷", "MN", "%CH4", "4.00", "0.00", "1.00", "1.00"]
    );
    assert_eq!(t0[12..14], ["1.50", "1.00"]);
    assert_eq!(t0[17], "8101工作面");
    let ycbj = server_file(&ftp, of_type(&got, "YCBJ")[0]);
    let fault = ycbj
        .iter()
        .find(|r| r[0] == "140211001MN0002")
        .expect("the dead sensor's record");
    assert_eq!(
        (fault[3].as_str(), fault[5].as_str()),
        ("004", ""),
        "sensor fault, still open"
    );
    for (value, state, _) in cdss_rows(&ftp, &of_type(&got, "CDSS"), "140211001MN0002") {
        assert_eq!(value, "", "a dead sensor never carries a value");
        assert!(state & (8 | 128) != 0, "fault state expected, got {state}");
    }

    // The FTP server is down for 60 s while readings flow.
    ftp.stop();
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let text = metrics.render();
    assert!(metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"coal\""]) >= 50.0);
    ftp.restart();
    let up_at = now_ms();
    wait_for("the backlog to drain", Duration::from_secs(90), || async {
        let text = metrics.render();
        (metric(&text, "hazard_uplink_outbox_payloads", &["uplink=\"coal\""]) <= 1.0).then_some(())
    })
    .await;
    gw.shutdown().await;

    let text = metrics.render();
    assert_eq!(
        text.matches("hazard_uplink_records_dropped_total{").count(),
        0,
        "nothing dropped"
    );
    let got = ftp.received();
    let unique: std::collections::HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a file arrived twice");
    let delivered = metric(&text, "hazard_uplink_payloads_delivered_total", &["uplink=\"coal\""]);
    // The one in flight at shutdown may have reached the server without its acknowledgement.
    let on_server = got.len() as f64;
    assert!(
        on_server == delivered || on_server == delivered + 1.0,
        "{on_server} files on the server, {delivered} acknowledged"
    );
    // Every file on the server is complete (parse_gbk insists on the `~||` ending).
    for name in &got {
        server_file(&ftp, name);
    }
    // Real-time files in time order: names sort as they arrived, collection times never go
    // back, and the readings taken during the outage arrive with their own times.
    let cdss = of_type(&got, "CDSS");
    let mut sorted = cdss.clone();
    sorted.sort();
    assert_eq!(cdss, sorted, "CDSS files in time order");
    let rows = cdss_rows(&ftp, &cdss, "140211001MN0001");
    assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2), "collection times go back");
    let zone = zone(DEFAULT_ZONE).unwrap();
    let fmt = "%Y-%m-%d %H:%M:%S";
    let (from, to) = (
        hazard_gateway::sinks::uplink::time::render(Timestamp::from_millis(down_at + 2000), &zone, fmt),
        hazard_gateway::sinks::uplink::time::render(Timestamp::from_millis(up_at - 2000), &zone, fmt),
    );
    let during = rows.iter().filter(|r| r.2 > from && r.2 < to).count();
    assert!(
        during >= 50,
        "readings from the outage delivered with their times: {during}"
    );
    assert!(
        rows.iter().filter(|r| r.1 == 0).all(|r| !r.0.is_empty()),
        "a good reading carries its value"
    );
    // Minute statistics: the live sensor's max/min/avg over its good readings, the dead
    // sensor's interval without any good reading has no numbers.
    let tjsj = of_type(&got, "TJSJ");
    assert!(!tjsj.is_empty(), "a minute passed: statistics sent");
    for file in tjsj {
        for r in server_file(&ftp, file).iter().skip(1) {
            assert_eq!(r.len(), 11, "{r:?}");
            let count: u64 = r[7].parse().unwrap();
            if r[0] == "140211001MN0002" {
                assert_eq!((r[4..7].join(";").as_str(), count), (";;", 0), "dead sensor: {r:?}");
            } else if count > 0 {
                let (max, min): (f64, f64) = (r[4].parse().unwrap(), r[5].parse().unwrap());
                assert!(max >= min, "{r:?}");
            }
        }
    }
}

fn now_ms() -> i64 {
    hazard_gateway::clock::system().now().as_millis()
}

#[test]
fn check_config_names_every_bad_coal_and_file_setting_with_its_line() {
    let text = r#"
[gateway]
id = "mine-gw"

[[uplinks]]
name = "coal"
realtime_interval = "20s"
codes = { enterprise = "140211001" }
transport = { type = "file", ftp = { address = "ftp.example", user = "", password = { env = "A", file = "b" } } }

[uplinks.encoder]
type = "coal"
mine_code = "14-02"
mine_name = "示例;煤矿"
encoding = "gbk"
"#;
    let path = Path::new("/etc/hazard-gateway/mine.toml");
    let err = hazard_gateway::config::GatewayConfig::parse(path, text).unwrap_err();
    let shown = err.to_string();
    for want in [
        "/etc/hazard-gateway/mine.toml:9:13: uplinks[0].transport.ftp.address: uplink `coal`: `ftp.example` must be host:port",
        "/etc/hazard-gateway/mine.toml:9:13: uplinks[0].transport.ftp.user: uplink `coal`: must name the login",
        "uplinks[0].transport.ftp.password: uplink `coal`: give exactly one of `env` or `file`",
        "/etc/hazard-gateway/mine.toml:11:1: uplinks[0].encoder.mine_code: uplink `coal`: `14-02` must be the regulator's mine code",
        "uplinks[0].encoder.mine_name: uplink `coal`: ';' separates fields",
    ] {
        assert!(shown.contains(want), "missing `{want}` in:\n{shown}");
    }
    // Two uplinks cannot share a spool directory.
    let two = r#"
[gateway]
id = "mine-gw"

[[uplinks]]
name = "a"
realtime_interval = "20s"
codes = { enterprise = "1" }
encoder = { type = "coal", mine_code = "1", mine_name = "m", encoding = "utf-8" }
transport = { type = "file", spool_dir = "/var/spool/coal" }

[[uplinks]]
name = "b"
realtime_interval = "20s"
codes = { enterprise = "1" }
encoder = { type = "coal", mine_code = "1", mine_name = "m", encoding = "utf-8" }
transport = { type = "file", spool_dir = "/var/spool/coal" }
"#;
    let shown = hazard_gateway::config::GatewayConfig::parse(path, two)
        .unwrap_err()
        .to_string();
    assert!(
        shown.contains("mine.toml:17:13: uplinks[1].transport.spool_dir: uplink `b`: spool directory /var/spool/coal is already uplink `a`'s"),
        "{shown}"
    );
    // Unknown keys and a missing encoding are refused by name.
    let bad = text.replace("encoding = \"gbk\"", "encodng = \"gbk\"");
    let shown = hazard_gateway::config::GatewayConfig::parse(path, &bad)
        .unwrap_err()
        .to_string();
    assert!(shown.contains("encodng"), "{shown}");
}

#[tokio::test]
async fn a_session_the_server_dropped_is_replaced_without_failing_the_delivery() {
    let mut ftp = FtpServer::start();
    let spool = tempfile::tempdir().unwrap();
    let settings = file_drop_settings(spool.path(), &ftp, AfterPush::Move);
    let mut drop = FileDrop::open("coal", &settings, spool.path(), Password(FtpServer::PASSWORD.into())).unwrap();
    let coal = CoalSettings::for_mine("140211001", "煤矿", TextEncoding::Utf8);
    let mut enc = CoalEncoder::new("coal", coal, zone(DEFAULT_ZONE).unwrap(), Duration::from_secs(300));
    let first = enc.encode(&[reading(0, Some(0.2), Quality::Good)]).unwrap().remove(0);
    drop.deliver(&first).await.unwrap();
    // The server restarts (as an idle timeout would close the session): the kept session is
    // dead, the next push opens a new one at once instead of failing and backing off.
    ftp.restart();
    let second = enc.encode(&[reading(10, Some(0.3), Quality::Good)]).unwrap().remove(0);
    drop.deliver(&second).await.unwrap();
    assert_eq!(
        ftp.received(),
        ["140211001_CDSS_20261125080000.txt", "140211001_CDSS_20261125080010.txt"]
    );
}
