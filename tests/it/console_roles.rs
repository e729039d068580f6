//! Every action button of the console by role, in a real browser
//! (`tests/browser/console_roles.mjs`): a viewer sees none, an operator may not shelve a
//! critical alarm, an admin may; a latched alarm offers reset. The admin's reset and
//! out-of-service round trip through the page are then read back from the journal.

use crate::console::ONE_BROWSER;
use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use hazard_gateway::api::auth::hash_token;
use serde_json::Value;
use support::{ConsoleBrowser, TestGateway, simulator, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
const VIEWER: &str = "roles-viewer-token-0123456789abcd";
const OPERATOR: &str = "roles-operator-token-0123456789ab";
const ADMIN: &str = "roles-admin-token-0123456789abcdef";

const CRITICAL: &str = "MHS-001/GT-101:high_high";
const HIGH: &str = "MHS-001/GT-101:high";
const LATCHED: &str = "MHS-001/GT-102:high";

async fn get(gw: &TestGateway, path: &str) -> Value {
    gw.http
        .get(format!("{}{path}", gw.base))
        .bearer_auth(VIEWER)
        .send()
        .await
        .expect("API answers")
        .json()
        .await
        .expect("JSON")
}

async fn state_of(gw: &TestGateway, alarm: &str) -> Option<String> {
    let all = get(gw, "/api/v1/alarms").await;
    all.as_array()?
        .iter()
        .find(|a| a["alarm_id"] == alarm)
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_only_the_actions_it_may_take_and_an_admin_acts_through_the_console() {
    let _one = ONE_BROWSER.lock().await;
    let sim = simulator("ai4-gas-lel", None).await;
    for (ch, v) in [("ch1", 60.0), ("ch2", 31.0), ("ch3", 2.0), ("ch4", 2.0)] {
        assert!(sim.pin(ch, v));
    }
    let extra = format!(
        r#"
[[api.tokens]]
name = "大屏"
role = "viewer"
hash = "{viewer}"
[[api.tokens]]
name = "值班员张三"
role = "operator"
hash = "{operator}"
[[api.tokens]]
name = "班长王五"
role = "admin"
hash = "{admin}"

[[rules]]
name = "latching-gt-102"
points = "MHS-001/GT-102"
threshold = {{ high = 25.0, high_high = 50.0, deadband = 2.0 }}
latching = true
"#,
        viewer = hash_token(VIEWER),
        operator = hash_token(OPERATOR),
        admin = hash_token(ADMIN),
    );
    let config = support::console::gas_gateway("console-roles", sim.local_addr(), "", &extra);
    let gw = TestGateway::start(&config).await;
    for a in [CRITICAL, HIGH, LATCHED] {
        wait_for(&format!("{a} active"), LIMIT, || async {
            (state_of(&gw, a).await.as_deref() == Some("unack_active")).then_some(())
        })
        .await;
    }
    assert!(sim.pin("ch2", 2.0), "GT-102 clears: its latching alarm stays");
    wait_for("GT-102 latched", LIMIT, || async {
        (state_of(&gw, LATCHED).await.as_deref() == Some("latched")).then_some(())
    })
    .await;

    let mut browser = ConsoleBrowser::start_script(
        "console_roles.mjs",
        &format!("{}/", gw.base),
        &[
            ("ROLES", &format!("viewer={VIEWER},operator={OPERATOR},admin={ADMIN}")),
            ("ALARMS", &[CRITICAL, HIGH, LATCHED].join(",")),
            ("LATCHED_ID", LATCHED),
            ("OOS_ID", HIGH),
            ("ACTOR", "班长王五"),
        ],
    );
    let mut seen = BTreeMap::new();
    for role in ["viewer", "operator", "admin"] {
        let line = browser.expect_prefix(&format!("BUTTONS {role} "), LIMIT).await;
        let buttons: BTreeMap<String, Vec<String>> = serde_json::from_str(&line).expect("buttons as JSON");
        seen.insert(role, buttons);
    }
    let journal_rows: usize = browser.expect_prefix("JOURNAL ", LIMIT).await.parse().expect("a count");
    let csv_lines: usize = browser.expect_prefix("CSV ", LIMIT).await.parse().expect("a count");
    let handover = browser.expect_prefix("HANDOVER ", LIMIT).await;
    browser.expect_line("DONE", LIMIT).await;
    browser.finish();

    let want = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let expect = |critical: &[&str], high: &[&str], latched: &[&str]| {
        BTreeMap::from([
            (CRITICAL.to_string(), want(critical)),
            (HIGH.to_string(), want(high)),
            (LATCHED.to_string(), want(latched)),
        ])
    };
    assert_eq!(seen["viewer"], expect(&[], &[], &[]), "a viewer acts on nothing");
    assert_eq!(
        seen["operator"],
        expect(
            &["ack", "oos", "ack-subject"],
            &["ack", "shelve", "oos", "ack-subject"],
            &["ack", "shelve", "reset", "oos"]
        ),
        "an operator may not shelve a critical alarm; GT-101's two alarms are acknowledged together"
    );
    assert_eq!(
        seen["admin"],
        expect(
            &["ack", "shelve", "oos", "ack-subject"],
            &["ack", "shelve", "oos", "ack-subject"],
            &["ack", "shelve", "reset", "oos"]
        )
    );

    // The admin's actions, journaled with their reasons, by the token's holder.
    let history = get(&gw, "/api/v1/alarms/history?limit=100").await;
    let find = |alarm: &str, transition: &str| {
        history
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["alarm_id"] == alarm && e["transition"] == transition)
            .cloned()
            .unwrap_or_else(|| panic!("no {transition} of {alarm} in {history:#}"))
    };
    let reset = find(LATCHED, "reset");
    assert_eq!(reset["user"], "班长王五");
    assert_eq!(reset["comment"], "现场确认已无泄漏，复位");
    let oos = find(HIGH, "removed_from_service");
    assert_eq!(oos["comment"], "探头更换 (detector replacement)");
    find(HIGH, "returned_to_service");
    // The journal page showed, and exported, exactly the admin's three actions.
    let by_admin = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user"] == "班长王五")
        .count();
    assert_eq!(by_admin, 3, "reset, out of service, return: {history:#}");
    assert_eq!(journal_rows, by_admin, "rows shown for the user filter");
    assert_eq!(csv_lines, by_admin, "lines exported");
    // The handover's figures are the journal's and the live view's.
    let count = |transition: &str| {
        history
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["transition"] == transition)
            .count()
    };
    let open = get(&gw, "/api/v1/alarms")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] != "normal")
        .count();
    assert_eq!(
        handover,
        format!("{} {} {open}", count("raised"), count("acknowledged")),
        "raised, acknowledged, still open"
    );
    assert_eq!(open, 2, "the critical and the returned high alarm");
    assert_eq!(state_of(&gw, LATCHED).await, None, "reset: nothing left to show");
}
