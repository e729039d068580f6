use std::path::Path;

use super::*;
use crate::config::GatewayConfig;

const CONFIG: &str = r#"
[gateway]
id = "gw"

[[hazard_sources]]
id = "MHS-001"
name = "tank farm"
level = 2

[[mqtt.brokers]]
name = "plant"
address = "127.0.0.1:1883"

[[mqtt.subscriptions]]
name = "gas"
broker = "plant"
topic = "park/{site}/gas/{tag}"
point = "{site}/{tag}"
value = "/v"
unit = "%LEL"
kind = "gas"
range = [0, 100]
hazard_source = "MHS-001"
points = ["A/GT-{101..103}"]
stale_after = "10s"
max_payload = "64B"

[[mqtt.subscriptions]]
name = "dam"
broker = "plant"
topic = "park/+/dam/#"
point = "{1}/{json:/sensor}"
array = "/data"
value = "/value"
points = ["p1/{S1,S2}"]
"#;

fn router() -> (Router, GatewayConfig, MqttInMetrics) {
    let cfg = GatewayConfig::parse(Path::new("t.toml"), CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let metrics = MqttInMetrics::default();
    let r = Router::new(
        "plant",
        cfg.mqtt.subscriptions.clone(),
        &cfg.points,
        metrics.clone(),
        Instant::now(),
    );
    (r, cfg, metrics)
}

fn errors(m: &MqttInMetrics, sub: &str, kind: &'static str) -> u64 {
    m.errors
        .get_or_create(&SubscriptionKind {
            subscription: sub.into(),
            kind,
        })
        .get()
}

#[test]
fn topic_levels_and_payload_fields_name_declared_points() {
    let (mut r, cfg, m) = router();
    let now = Instant::now();
    let mut out = Vec::new();
    r.route(
        b"park/A/gas/GT-102",
        br#"{"v": 12.5}"#,
        Timestamp::from_nanos(7),
        now,
        &mut out,
    );
    r.route(
        b"park/p1/dam/x/y",
        br#"{"data": [{"sensor": "S1", "value": 1}, {"sensor": "S2", "value": "2"}]}"#,
        Timestamp::from_nanos(8),
        now,
        &mut out,
    );
    let named: Vec<(&str, f64, Quality)> = out
        .iter()
        .map(|x| (cfg.points.meta(x.point).name().as_ref(), x.value, x.quality))
        .collect();
    assert_eq!(
        named,
        [
            ("A/GT-102", 12.5, Quality::Good),
            ("p1/S1", 1.0, Quality::Good),
            ("p1/S2", 2.0, Quality::Good)
        ]
    );
    let meta = cfg.points.meta(out[0].point);
    assert_eq!(
        (
            meta.unit().as_ref(),
            meta.hazard_source().map(|t| &**t),
            meta.device().as_ref()
        ),
        ("%LEL", Some("MHS-001"), "mqtt:gas")
    );
    let label = SubscriptionLabel {
        subscription: "dam".into(),
    };
    assert_eq!(m.readings.get_or_create(&label).get(), 2);
    assert_eq!(m.messages.get_or_create(&label).get(), 1);
}

#[test]
fn bad_messages_are_counted_and_mark_their_point_when_the_topic_names_it() {
    let (mut r, cfg, m) = router();
    let now = Instant::now();
    let mut out = Vec::new();
    r.route(
        b"park/A/gas/GT-101",
        b"{not json",
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(
        b"park/A/gas/GT-101",
        &[b' '; 65],
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(
        b"park/A/gas/GT-101",
        br#"{"v": "high"}"#,
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(
        b"park/A/gas/GT-101",
        br#"{"v": 150}"#,
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(
        b"park/A/gas/GT-999",
        br#"{"v": 1}"#,
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(
        b"park/p1/dam",
        br#"{"data": [{"sensor": 2.5, "value": 1}]}"#,
        Timestamp::from_nanos(1),
        now,
        &mut out,
    );
    r.route(b"other/topic", b"1", Timestamp::from_nanos(1), now, &mut out);
    // Every message that cannot be decoded (invalid, oversize, wrong type) marks the point its
    // topic names.
    let q: Vec<Quality> = out.iter().map(|x| x.quality).collect();
    assert_eq!(
        q,
        [
            Quality::DecodeError,
            Quality::DecodeError,
            Quality::DecodeError,
            Quality::OutOfRange
        ]
    );
    assert!(
        out.iter()
            .all(|x| cfg.points.meta(x.point).name().as_ref() == "A/GT-101")
    );
    for (kind, n) in [
        ("invalid_json", 1),
        ("oversize", 1),
        ("wrong_type", 1),
        ("unknown_point", 1),
    ] {
        assert_eq!(errors(&m, "gas", kind), n, "{kind}");
    }
    assert_eq!(errors(&m, "dam", "bad_point_field"), 1);
    let unmatched = m.unmatched.get_or_create(&BrokerLabel { broker: "plant".into() }).get();
    assert_eq!(unmatched, 1);
}

#[test]
fn a_refused_shape_is_handled_like_any_undecodable_message() {
    let text = CONFIG.replace("value = \"/v\"", "value = \"/v\"\naccept = [\"object\"]");
    let cfg = GatewayConfig::parse(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let m = MqttInMetrics::default();
    let mut r = Router::new(
        "plant",
        cfg.mqtt.subscriptions.clone(),
        &cfg.points,
        m.clone(),
        Instant::now(),
    );
    let now = Instant::now();
    let mut out = Vec::new();
    let ts = Timestamp::from_nanos(5);
    assert_eq!(r.route(b"park/A/gas/GT-101", b"12.5", ts, now, &mut out), 1);
    assert_eq!(r.route(b"park/A/gas/GT-101", br#""12.5""#, ts, now, &mut out), 1);
    assert_eq!(r.route(b"park/A/gas/GT-101", br#"{"v": 12.5}"#, ts, now, &mut out), 1);
    let got: Vec<(Quality, bool)> = out.iter().map(|x| (x.quality, x.value.is_nan())).collect();
    assert_eq!(
        got,
        [
            (Quality::DecodeError, true),
            (Quality::DecodeError, true),
            (Quality::Good, false)
        ]
    );
    assert!(
        out.iter()
            .all(|x| cfg.points.meta(x.point).name().as_ref() == "A/GT-101")
    );
    assert_eq!(errors(&m, "gas", "refused_shape"), 2);
    let label = SubscriptionLabel {
        subscription: "gas".into(),
    };
    assert_eq!(m.messages.get_or_create(&label).get(), 3);
    assert_eq!(m.readings.get_or_create(&label).get(), 3);
}

#[test]
fn a_payload_the_link_dropped_is_counted_oversize_per_matching_subscription() {
    let (mut r, _cfg, m) = router();
    assert_eq!(r.keep_limit(), 64 * 1024, "the largest max_payload of the broker");
    let now = Instant::now();
    let mut out = Vec::new();
    let ts = Timestamp::from_nanos(1);
    assert_eq!(r.dropped(b"park/A/gas/GT-101", 2 << 20, ts, now, &mut out), 1);
    assert_eq!(r.dropped(b"park/A/gas/GT-101", 3 << 20, ts, now, &mut out), 1);
    assert_eq!(r.dropped(b"other/topic", 2 << 20, ts, now, &mut out), 0);
    assert!(out.iter().all(|x| x.quality == Quality::DecodeError));
    assert_eq!(errors(&m, "gas", "oversize"), 2);
    let label = SubscriptionLabel {
        subscription: "gas".into(),
    };
    assert_eq!(m.messages.get_or_create(&label).get(), 2);
    assert_eq!(m.readings.get_or_create(&label).get(), 2);
    let unmatched = m.unmatched.get_or_create(&BrokerLabel { broker: "plant".into() }).get();
    assert_eq!(unmatched, 1);
}

#[test]
fn silent_points_turn_stale_once() {
    let (mut r, cfg, m) = router();
    let t0 = Instant::now();
    let mut out = Vec::new();
    assert_eq!(r.sweep_period(), Some(Duration::from_secs(1)));
    r.route(
        b"park/A/gas/GT-101",
        b"{\"v\": 1}",
        Timestamp::from_nanos(1),
        t0 + Duration::from_secs(5),
        &mut out,
    );
    out.clear();
    assert_eq!(
        r.sweep(t0 + Duration::from_secs(9), Timestamp::from_nanos(2), &mut out),
        0
    );
    assert_eq!(
        r.sweep(t0 + Duration::from_secs(10), Timestamp::from_nanos(3), &mut out),
        2
    );
    assert_eq!(
        r.sweep(t0 + Duration::from_secs(15), Timestamp::from_nanos(4), &mut out),
        1
    );
    assert_eq!(
        r.sweep(t0 + Duration::from_secs(30), Timestamp::from_nanos(5), &mut out),
        0
    );
    let stale: Vec<&str> = out.iter().map(|x| cfg.points.meta(x.point).name().as_ref()).collect();
    assert_eq!(stale, ["A/GT-102", "A/GT-103", "A/GT-101"]);
    assert!(out.iter().all(|x| x.quality == Quality::Stale && x.value.is_nan()));
    let label = SubscriptionLabel {
        subscription: "gas".into(),
    };
    assert_eq!(m.stale.get_or_create(&label).get(), 3);
}
