//! Token changes take effect on reload, not only on restart: the real binary with bearer
//! tokens; a token added to the config file works after SIGHUP and a removed one is refused,
//! and the same through `POST /api/v1/admin/reload`. The log names the change.

use crate::support;

use std::process::Command;
use std::time::Duration;

use hazard_gateway::api::auth::hash_token;
use serde_json::json;
use support::{GatewayProcess, free_port, wait_for};

const LIMIT: Duration = Duration::from_secs(30);
const ADMIN: &str = "reload-admin-token-0123456789abcdef";
const VIEWER: &str = "reload-viewer-token-0123456789abcd";
const NIGHT: &str = "reload-night-shift-token-012345678";

fn config(port: u16, tokens: &[(&str, &str, &str)]) -> String {
    let mut text =
        format!("[gateway]\nid = \"token-reload\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n");
    for (name, role, token) in tokens {
        text.push_str(&format!(
            "[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nhash = \"{}\"\n",
            hash_token(token)
        ));
    }
    text
}

async fn status(gw: &GatewayProcess, token: &str) -> u16 {
    gw.http
        .get(format!("{}/api/v1/alarms", gw.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("API answers")
        .status()
        .as_u16()
}

/// Acknowledging an alarm that does not exist: 404 for a caller allowed to act, 401 or 403
/// for one who is not.
async fn act(gw: &GatewayProcess, token: &str) -> u16 {
    gw.http
        .post(format!("{}/api/v1/alarms/none:high/ack", gw.base))
        .bearer_auth(token)
        .json(&json!({"category": "drill"}))
        .send()
        .await
        .expect("API answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_token_works_and_a_removed_one_is_refused_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        config(port, &[("班长", "admin", ADMIN), ("大屏", "viewer", VIEWER)]),
    )
    .unwrap();
    let mut gw = GatewayProcess::start(&path, port).await;
    assert_eq!(status(&gw, VIEWER).await, 200);
    assert_eq!(status(&gw, NIGHT).await, 401, "not configured yet");

    // SIGHUP: the night shift's operator token added, the wall screen's removed.
    std::fs::write(
        &path,
        config(port, &[("班长", "admin", ADMIN), ("夜班值班员", "operator", NIGHT)]),
    )
    .unwrap();
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("the added token accepted", LIMIT, || async {
        (status(&gw, NIGHT).await == 200).then_some(())
    })
    .await;
    assert_eq!(status(&gw, VIEWER).await, 401, "the removed token is refused");
    assert_eq!(act(&gw, NIGHT).await, 404, "the new token acts with its operator role");

    // The admin's reload: the night shift's token removed again, refused as soon as it answers.
    std::fs::write(&path, config(port, &[("班长", "admin", ADMIN)])).unwrap();
    let resp = gw
        .http
        .post(format!("{}/api/v1/admin/reload", gw.base))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["changes"]["tokens_changed"], true, "{body}");
    assert_eq!(status(&gw, NIGHT).await, 401);
    assert_eq!(act(&gw, NIGHT).await, 401);
    assert_eq!(status(&gw, ADMIN).await, 200);

    gw.signal_and_wait("TERM");
    let log = gw.stderr();
    assert_eq!(log.matches("API tokens replaced").count(), 2, "{log}");
    for secret in [ADMIN, VIEWER, NIGHT] {
        assert!(!log.contains(secret), "a token in the log:\n{log}");
    }
}
