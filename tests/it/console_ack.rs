//! Acknowledgement with a category (real alarm, false alarm, equipment fault, maintenance,
//! drill) and of several alarms at once: through the console in a real browser
//! (`tests/browser/console_ack.mjs`) and through the API as an older client would call it.
//! Each acknowledgement is read back from the journal with its user, comment and category.

use crate::console::ONE_BROWSER;
use crate::support;

use std::time::Duration;

use hazard_gateway::sources::sim::Simulator;
use serde_json::{Value, json};
use support::{ConsoleBrowser, TestGateway, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const USER: &str = "值班员赵六";

/// Shift starts two hours ago and six hours ahead (UTC, to the minute), and the start of the
/// current shift as the console's date-time field shows it in UTC.
fn shifts() -> (String, String) {
    let now_min = hazard_gateway::clock::system().now().as_millis() / 60_000;
    let start = now_min - 120;
    let hm = |m: i64| format!("\"{:02}:{:02}\"", m.rem_euclid(1440) / 60, m.rem_euclid(60));
    let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(start * 60).unwrap_or(0));
    let field = humantime::format_rfc3339(at).to_string()[..16].to_string();
    (format!("[{}, {}]", hm(start), hm(start + 480)), field)
}

/// An open API on loopback with four gas detectors; GT-101 above both set-points.
async fn gateway(levels: [f64; 4], shifts: &str) -> (Simulator, TestGateway) {
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in ["ch1", "ch2", "ch3", "ch4"].iter().zip(levels) {
        assert!(sim.pin(ch, v));
    }
    let config = support::console::gas_gateway(
        "console-ack",
        sim.local_addr(),
        "",
        &format!("[console]\nshifts = {shifts}\n"),
    );
    let gw = TestGateway::start(&config).await;
    (sim, gw)
}

async fn wait_active(gw: &TestGateway, ids: &[&str]) {
    for id in ids {
        wait_for(&format!("{id} active"), LIMIT, || async {
            gw.alarm(id).await.filter(|a| a["state"] == "unack_active").map(|_| ())
        })
        .await;
    }
}

/// The journaled acknowledgements, by alarm id.
async fn acks(gw: &TestGateway, query: &str) -> Vec<Value> {
    let history = gw.get_json(&format!("/api/v1/alarms/history?limit=1000{query}")).await;
    history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "acknowledged")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_acknowledges_with_a_category_one_alarm_a_point_and_a_selection() {
    let _one = ONE_BROWSER.lock().await;
    let (shift_starts, shift_from) = shifts();
    let (_sim, gw) = gateway([60.0, 31.0, 31.0, 31.0], &shift_starts).await;
    let single = "MHS-001/GT-102:high";
    let subject = ["MHS-001/GT-101:high", "MHS-001/GT-101:high_high"];
    let picks = ["MHS-001/GT-103:high", "MHS-001/GT-104:high"];
    wait_active(&gw, &[single, subject[0], subject[1], picks[0], picks[1]]).await;

    let mut browser = ConsoleBrowser::start_script(
        "console_ack.mjs",
        &format!("{}/", gw.base),
        &[
            ("SINGLE_ID", single),
            ("SUBJECT", "MHS-001/GT-101"),
            ("PICK_IDS", &picks.join(",")),
            ("ACK_USER", USER),
            ("SHIFT_FROM", &shift_from),
            ("TZ", "UTC"),
        ],
    );
    let journal_rows: usize = browser.expect_prefix("JOURNAL ", LIMIT).await.parse().expect("a count");
    let csv_drills: usize = browser.expect_prefix("CSV ", LIMIT).await.parse().expect("a count");
    let handover = browser.expect_prefix("HANDOVER ", LIMIT).await;
    browser.expect_line("DONE", LIMIT).await;
    browser.finish();

    let all = acks(&gw, "").await;
    assert_eq!(all.len(), 5, "each alarm journaled on its own: {all:#?}");
    let of = |id: &str| {
        all.iter()
            .find(|e| e["alarm_id"] == id)
            .unwrap_or_else(|| panic!("no acknowledgement of {id}"))
    };
    let expect = [
        (single, "false_alarm", "现场检测无泄漏，误报"),
        (subject[0], "maintenance", "仪表检修标定"),
        (subject[1], "maintenance", "仪表检修标定"),
        (picks[0], "drill", "应急演练"),
        (picks[1], "drill", "应急演练"),
    ];
    for (id, category, comment) in expect {
        let e = of(id);
        assert_eq!(
            (e["user"].as_str(), e["comment"].as_str(), e["category"].as_str()),
            (Some(USER), Some(comment), Some(category)),
            "{id}"
        );
        let live = gw.alarm(id).await.expect("still active");
        assert_eq!(
            (live["state"].as_str(), live["category"].as_str()),
            (Some("ack_active"), Some(category))
        );
    }
    assert_eq!(journal_rows, 2, "the journal page filtered by maintenance");
    assert_eq!(acks(&gw, "&category=maintenance").await.len(), 2);
    assert_eq!(csv_drills, 2, "the CSV lines whose category is drill");
    assert_eq!(handover, "false_alarm=1,maintenance=2,drill=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_acknowledgements_without_a_category_and_several_at_once() {
    let (_sim, gw) = gateway([60.0, 31.0, 31.0, 2.0], "[\"08:00\", \"20:00\"]").await;
    let ids = [
        "MHS-001/GT-101:high",
        "MHS-001/GT-101:high_high",
        "MHS-001/GT-102:high",
        "MHS-001/GT-103:high",
    ];
    wait_active(&gw, &ids).await;
    let one = |id: &str| format!("/api/v1/alarms/{}/ack", id.replace('/', "%2F"));

    // A client written before categories: its body is taken as it always was.
    let (status, view) = gw
        .post_json(&one(ids[3]), json!({"user": "老客户端", "comment": "ok"}))
        .await;
    assert_eq!(status, 200, "{view}");
    assert!(view.get("category").is_none(), "no category given, none shown: {view}");
    // An unknown category is a body that is not this command's.
    let (status, err) = gw
        .post_json(&one(ids[2]), json!({"user": "u", "category": "prank"}))
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_body")), "{err}");

    // Several at once: an unknown and an already acknowledged one are refused, not fatal.
    let (status, err) = gw
        .post_json("/api/v1/alarms/ack", json!({"alarm_ids": [], "user": "u"}))
        .await;
    assert_eq!((status, err["error"].as_str()), (400, Some("bad_parameter")), "{err}");
    let (status, res) = gw
        .post_json(
            "/api/v1/alarms/ack",
            json!({
                "alarm_ids": [ids[0], "MHS-001/NOPE:high", ids[1], ids[3], ids[2]],
                "user": USER, "comment": "设备故障，已报修", "category": "equipment_fault"
            }),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    let acked: Vec<&str> = res["acknowledged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["alarm_id"].as_str().unwrap())
        .collect();
    assert_eq!(acked, vec![ids[0], ids[1], ids[2]]);
    let refused: Vec<(&str, &str)> = res["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["alarm_id"].as_str().unwrap(), v["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        vec![("MHS-001/NOPE:high", "unknown_alarm"), (ids[3], "conflict")]
    );

    let journaled = acks(&gw, "&category=equipment_fault").await;
    let mut journaled_ids: Vec<&str> = journaled.iter().map(|e| e["alarm_id"].as_str().unwrap()).collect();
    journaled_ids.sort_unstable();
    assert_eq!(journaled_ids, vec![ids[0], ids[1], ids[2]], "one journal entry each");
    for e in &journaled {
        assert_eq!(
            (e["user"].as_str(), e["comment"].as_str()),
            (Some(USER), Some("设备故障，已报修"))
        );
    }
    let old = acks(&gw, "").await;
    let old = old
        .iter()
        .find(|e| e["alarm_id"] == ids[3])
        .expect("the old client's ack");
    assert!(old.get("category").is_none(), "{old}");
}
