//! The link against a scripted centre on loopback, built with the independent `a` crate.
//! A real centre cannot be told to withhold or misdirect its 9014, so these faults need a
//! scripted peer; the whole-gateway test (`tests/it/uplink_hj212.rs`) covers the normal flow.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::centre::{CentreServices, HistorySource, Intervals};
use super::encode::{Cou, Hj212Encoder, Hj212Settings};
use super::link::{self, Hj212Transport, LinkOptions};
use super::segment::Version;
use crate::clock::{ManualClock, SharedClock};
use crate::model::{Quality, Timestamp};
use crate::sinks::uplink::{Codes, Encoder, Payload, RecordKind, Transport, TransportError, UplinkRecord};
use crate::sinks::uplink::{SharedInterval, time};
use crate::telemetry::uplink::hj212::{Hj212Metrics, UplinkLabel};

const MN: &str = "MN0001";
const PW: &str = "123456";
/// 2016-08-01 08:58:57.223 in Shanghai.
const T0_MS: i64 = 1_470_013_137_223;

fn settings() -> Arc<Hj212Settings> {
    Arc::new(Hj212Settings {
        version: Version::V2017,
        st: "22".into(),
        mn: MN.into(),
        pw: PW.into(),
        ack: true,
        max_segment: 1024,
        zone: time::zone(time::DEFAULT_ZONE).unwrap(),
        cou: Cou::Count,
        decimals: None,
    })
}

fn record(kind: RecordKind, code: &str, ms: i64, value: Option<f64>, quality: Quality) -> UplinkRecord {
    UplinkRecord {
        kind,
        point: Arc::from(code),
        codes: Codes {
            enterprise: Arc::from("E"),
            hazard_source: None,
            point: Arc::from(code),
        },
        unit: Arc::from("ppm"),
        time: Timestamp::from_millis(ms),
        value,
        quality,
        stats: None,
        alarm: None,
        meta: None,
    }
}

/// Serves fixed records for any range (empty for hour pulls, to see `ExeRtn=100`).
#[derive(Debug)]
struct FixedHistory;

impl HistorySource for FixedHistory {
    fn records(&self, kind: RecordKind, _: Timestamp, _: Timestamp, _: u32) -> Result<Vec<UplinkRecord>, String> {
        if kind == RecordKind::Hour {
            return Ok(Vec::new());
        }
        Ok((0..3)
            .map(|i| record(kind, "a01", T0_MS + i * 60_000, Some(i as f64), Quality::Good))
            .collect())
    }
}

struct Setup {
    transport: Hj212Transport,
    encoder: Hj212Encoder,
    intervals: Intervals,
    metrics: Hj212Metrics,
    listener: TcpListener,
    _cancel: tokio_util::sync::DropGuard,
}

async fn setup(ack_timeout: Duration, retries: u32) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::from_millis(T0_MS)));
    let intervals = Intervals::new(
        SharedInterval::new(Duration::from_secs(30)),
        SharedInterval::new(Duration::from_secs(60)),
    );
    let metrics = Hj212Metrics::default();
    let services = CentreServices {
        uplink: "env".into(),
        encoder: Arc::new(Hj212Encoder::new("env", settings(), clock.clone())),
        clock: clock.clone(),
        intervals: intervals.clone(),
        history: Some(Arc::new(FixedHistory)),
        metrics: metrics.clone(),
    };
    let opts = LinkOptions {
        addr: listener.local_addr().unwrap().to_string(),
        connect_timeout: Duration::from_secs(5),
        ack_timeout,
        retries,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
    };
    let cancel = CancellationToken::new();
    let transport = link::spawn(opts, services, cancel.clone());
    Setup {
        transport,
        encoder: Hj212Encoder::new("env", settings(), clock),
        intervals,
        metrics,
        listener,
        _cancel: cancel.drop_guard(),
    }
}

/// The centre's end of one connection.
struct Centre {
    stream: TcpStream,
    framer: a::Framer,
}

impl Centre {
    async fn accept(listener: &TcpListener) -> Centre {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the gateway connects")
            .unwrap();
        Centre {
            stream,
            framer: a::Framer::new(),
        }
    }

    /// The next frame, checked strictly (length, CRC, CR LF).
    async fn next(&mut self) -> a::Hj212Packet {
        let mut buf = [0u8; 2048];
        loop {
            if let Some(bytes) = self.framer.next_frame() {
                return a::parse_frame_strict(std::str::from_utf8(&bytes).unwrap()).unwrap();
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf))
                .await
                .expect("a frame within 10 s")
                .unwrap();
            assert!(n > 0, "gateway closed the connection");
            self.framer.push(&buf[..n]);
        }
    }

    async fn send(&mut self, payload: &str) {
        self.stream.write_all(a::build_frame(payload).as_bytes()).await.unwrap();
    }

    async fn ack(&mut self, qn: &str) {
        self.send(&a::build_data_ack(qn, PW, MN).flag("4").payload()).await;
    }

    async fn request(&mut self, qn: &str, cn: &str, cp: &str) {
        self.send(&format!("QN={qn};ST=32;CN={cn};PW={PW};MN={MN};Flag=5;CP=&&{cp}&&"))
            .await;
    }
}

fn realtime(enc: &mut Hj212Encoder) -> Payload {
    enc.encode(&[record(RecordKind::Realtime, "a21026", T0_MS, Some(1.5), Quality::Good)])
        .unwrap()
        .remove(0)
}

const QN1: &str = "20160801090000001";

#[tokio::test]
async fn a_message_counts_as_delivered_only_at_its_own_9014() {
    let mut s = setup(Duration::from_secs(30), 0).await;
    let payload = realtime(&mut s.encoder);
    let qn = payload.attr("qn").unwrap().to_string();
    let mut transport = s.transport;
    let delivery = tokio::spawn(async move { transport.deliver(&payload).await });
    let mut c = Centre::accept(&s.listener).await;
    let pkt = c.next().await;
    assert_eq!(pkt.qn.as_deref(), Some(qn.as_str()));
    assert_eq!(pkt.cp.get("a21026-Rtd").map(String::as_str), Some("1.5,a21026-Flag=N"));
    // A 9014 for another message changes nothing; the answer to a later request proves the
    // gateway has read it.
    c.ack("20000101000000000").await;
    c.request(QN1, "1061", "").await;
    assert_eq!(c.next().await.cn.as_deref(), Some("9011"));
    assert!(!delivery.is_finished());
    c.ack(&qn).await;
    delivery.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unacknowledged_message_is_resent_then_reported() {
    let mut s = setup(Duration::from_millis(200), 2).await;
    let payload = realtime(&mut s.encoder);
    let mut transport = s.transport;
    let delivery = tokio::spawn(async move { transport.deliver(&payload).await });
    let mut c = Centre::accept(&s.listener).await;
    let first = c.next().await;
    for _ in 0..2 {
        assert_eq!(c.next().await.payload, first.payload, "the same message again");
    }
    let e = delivery.await.unwrap().unwrap_err();
    assert!(matches!(e, TransportError::NotAcknowledged(_)), "{e}");
    let label = UplinkLabel { uplink: "env".into() };
    assert_eq!(s.metrics.resent.get_or_create(&label).get(), 2);
}

#[tokio::test]
async fn a_dropped_connection_fails_the_delivery_and_the_link_comes_back() {
    let mut s = setup(Duration::from_secs(30), 3).await;
    let payload = realtime(&mut s.encoder);
    let again = payload.clone();
    let mut transport = s.transport;
    let delivery = tokio::spawn(async move {
        let first = transport.deliver(&payload).await;
        (first, transport)
    });
    let mut c = Centre::accept(&s.listener).await;
    c.next().await;
    drop(c);
    let (first, mut transport) = delivery.await.unwrap();
    assert!(matches!(first, Err(TransportError::Unreachable(_))), "{first:?}");
    let qn = again.attr("qn").unwrap().to_string();
    let delivery = tokio::spawn(async move { transport.deliver(&again).await });
    let mut c = Centre::accept(&s.listener).await;
    assert_eq!(c.next().await.qn.as_deref(), Some(qn.as_str()));
    c.ack(&qn).await;
    delivery.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_centre_reads_and_sets_time_and_intervals() {
    let s = setup(Duration::from_secs(30), 0).await;
    let mut c = Centre::accept(&s.listener).await;
    let mut rtd = s.intervals.watch_rtd();

    c.request(QN1, "1062", "RtdInterval=60").await;
    let (a1, a2) = (c.next().await, c.next().await);
    assert_eq!(
        (a1.cn.as_deref(), a1.cp.get("QnRtn").map(String::as_str)),
        (Some("9011"), Some("1"))
    );
    assert_eq!(a1.qn.as_deref(), Some(QN1));
    assert_eq!(
        (a2.cn.as_deref(), a2.cp.get("ExeRtn").map(String::as_str)),
        (Some("9012"), Some("1"))
    );
    rtd.changed().await.unwrap();
    assert_eq!(*rtd.borrow(), Duration::from_secs(60));

    c.request(QN1, "1061", "").await;
    let answers = [c.next().await, c.next().await, c.next().await];
    assert_eq!(answers[1].cn.as_deref(), Some("1061"));
    assert_eq!(answers[1].cp.get("RtdInterval").map(String::as_str), Some("60"));

    c.request(QN1, "1064", "MinInterval=10").await;
    c.next().await;
    c.next().await;
    assert_eq!(s.intervals.minutes(), 10);

    c.request(QN1, "1011", "").await;
    let answers = [c.next().await, c.next().await, c.next().await];
    assert_eq!(
        answers[1].cp.get("SystemTime").map(String::as_str),
        Some("20160801085857")
    );

    // Set time is answered and recorded; the clock is not moved.
    c.request(QN1, "1012", "SystemTime=20160801095857").await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("1"));
    assert_eq!(c.next().await.cp.get("ExeRtn").map(String::as_str), Some("1"));
    let label = UplinkLabel { uplink: "env".into() };
    assert_eq!(s.metrics.centre_clock_offset.get_or_create(&label).get(), 3600);

    // Wrong password and unknown command: refused with their codes, nothing else follows.
    c.send(&format!("QN={QN1};ST=32;CN=1011;PW=999999;MN={MN};Flag=5;CP=&&&&"))
        .await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("3"));
    c.request(QN1, "3020", "").await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("8"));
    c.request(QN1, "1062", "RtdInterval=1").await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("2"));
    c.request(QN1, "1064", "MinInterval=7").await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("2"));
    assert_eq!(s.intervals.rtd(), Duration::from_secs(60));
}

#[tokio::test]
async fn a_history_pull_streams_stored_records_under_the_pull_qn() {
    let s = setup(Duration::from_secs(30), 0).await;
    let mut c = Centre::accept(&s.listener).await;
    c.request(QN1, "2051", "BeginTime=20160801000000;EndTime=20160801235959")
        .await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("1"));
    let mut times = Vec::new();
    loop {
        let p = c.next().await;
        assert_eq!(p.qn.as_deref(), Some(QN1));
        if p.cn.as_deref() == Some("9012") {
            assert_eq!(p.cp.get("ExeRtn").map(String::as_str), Some("1"));
            break;
        }
        assert_eq!(p.cn.as_deref(), Some("2051"));
        assert!(!p.flag_bits().unwrap().need_ack());
        times.push(p.data_time.clone().unwrap());
    }
    assert_eq!(times, ["20160801085857", "20160801085957", "20160801090057"]);

    c.request(QN1, "2061", "BeginTime=20160801000000;EndTime=20160801235959")
        .await;
    assert_eq!(c.next().await.cp.get("QnRtn").map(String::as_str), Some("1"));
    let end = c.next().await;
    assert_eq!(end.cp.get("ExeRtn").map(String::as_str), Some("100"));
}
