//! What tests do with alarms through a gateway process's API: wait for a state, act as the
//! duty officer, and take the fields a restart or a switch-over must keep.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{GatewayProcess, WAIT, wait_for};

/// Alarm id -> what a switch-over must keep.
pub async fn snapshot(gw: &GatewayProcess) -> BTreeMap<String, Value> {
    let alarms = gw.get_json("/api/v1/alarms").await;
    alarms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let keep = json!({
                "state": a["state"], "acknowledged": a["acknowledged"], "shelved_until": a["shelved_until"],
                "out_of_service": a["out_of_service"], "raised_at": a["raised_at"], "user": a["user"],
            });
            (a["alarm_id"].as_str().unwrap().to_string(), keep)
        })
        .collect()
}

pub async fn wait_state(gw: &GatewayProcess, id: &str, state: &str) {
    wait_for(&format!("{id} in {state}"), WAIT, || async {
        let alarms = gw.get_json("/api/v1/alarms").await;
        alarms
            .as_array()?
            .iter()
            .any(|a| a["alarm_id"] == id && a["state"] == state)
            .then_some(())
    })
    .await;
}

pub async fn act(gw: &GatewayProcess, id: &str, action: &str, extra: Value) {
    let mut body = json!({"user": "值班员", "comment": "drill"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, answer) = gw
        .post_json(&format!("/api/v1/alarms/{}/{action}", id.replace('/', "%2F")), body)
        .await;
    assert_eq!(status, 200, "{action} {id}: {answer}");
}
