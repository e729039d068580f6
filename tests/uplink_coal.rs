//! Coal-mine uplink files pushed to a real FTP server (pyftpdlib) on loopback: complete files,
//! in time order, each once, nothing lost while the server is down.

mod support;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::sinks::uplink::coal::{CoalEncoder, CoalSettings, TextEncoding};
use hazard_gateway::sinks::uplink::file_drop::{AfterPush, FileDrop, FileDropSettings, FtpSettings, Password};
use hazard_gateway::sinks::uplink::time::{DEFAULT_ZONE, zone};
use hazard_gateway::sinks::uplink::{Codes, Encoder, Payload, RecordKind, Transport, TransportError, UplinkRecord};
use support::FtpServer;

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
