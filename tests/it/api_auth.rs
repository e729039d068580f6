//! Bearer tokens with roles on a real socket: 401 without or with an unknown token, 403 for a
//! role that may not act, and the token's holder journaled as the user of an acknowledgement.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;
use support::{TestGateway, WAIT, binary, simulator, wait_for};

fn hash(token: &str) -> String {
    let mut child = Command::new(binary())
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_guard_the_api() {
    let sim = simulator("ai4-gas-lel", None).await;
    sim.pin("ch1", 30.0);
    let (op, viewer) = ("operator-token-0123456789", "viewer-token-0123456789");
    let config = format!(
        r#"
[gateway]
id = "auth-gw"
[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "值班员张三"
role = "operator"
hash = "{}"
[[api.tokens]]
name = "grafana"
role = "viewer"
hash = "{}"
[[devices]]
name = "g"
profile = "ai4-gas-lel"
transport = {{ tcp = "{}" }}
interval = "100ms"
"#,
        hash(op),
        hash(viewer),
        sim.local_addr()
    );
    let gw = TestGateway::start(&config).await;
    let url = |p: &str| format!("{}{p}", gw.base);
    let get = |path: &'static str, token: Option<&'static str>| {
        let mut r = gw.http.get(url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = get("/api/v1/alarms", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(get("/api/v1/alarms", Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(get("/api/v1/points", Some(viewer)).await.unwrap().status(), 200);
    assert_eq!(
        get("/healthz", None).await.unwrap().status(),
        200,
        "health stays open for probes"
    );

    wait_for("the alarm", WAIT, || async {
        let r = gw
            .http
            .get(url("/api/v1/alarms"))
            .bearer_auth(viewer)
            .send()
            .await
            .ok()?;
        let a: serde_json::Value = r.json().await.ok()?;
        a.as_array()?
            .iter()
            .any(|a| a["alarm_id"] == "g/ch1:high")
            .then_some(())
    })
    .await;
    let ack = url("/api/v1/alarms/g%2Fch1:high/ack");
    let body = json!({"comment": "checked", "user": "someone else"});
    let r = gw.http.post(&ack).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw.http.post(&ack).bearer_auth(viewer).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403, "a viewer may not acknowledge");
    let r = gw.http.post(&ack).bearer_auth(op).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let event: serde_json::Value = r.json().await.unwrap();
    assert_eq!(event["user"], "值班员张三", "the token's holder, not the body's user");
    assert_eq!(event["state"], "ack_active");
}

#[test]
fn hash_token_generates_a_token_and_its_hash() {
    let out = Command::new(binary())
        .args(["hash-token", "--generate"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let token = lines.next().unwrap().strip_prefix("token: ").unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(lines.next().unwrap(), hazard_gateway::api::auth::hash_token(&token));
    let short = Command::new(binary())
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = short.wait_with_output().unwrap();
    assert!(!out.status.success(), "an empty token is refused");
}
