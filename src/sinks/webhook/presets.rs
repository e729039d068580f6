//! The requests the enterprise chat robots document, and how to read their answers.
//!
//! - WeCom group robot (企业微信群机器人): `POST <url>?key=<key>` with
//!   `{"msgtype":"markdown","markdown":{"content":…}}`; no signature, the key is the secret.
//! - DingTalk custom robot with 加签 (钉钉自定义机器人): `POST <url>?access_token=…&timestamp=<ms>&sign=…`
//!   where `sign` is Base64(HMAC-SHA256(key = secret, message = "<timestamp>\n<secret>")),
//!   URL-encoded; body `{"msgtype":"markdown","markdown":{"title":…,"text":…},"at":{…}}`.
//! - Feishu custom robot with 签名校验 (飞书自定义机器人): `POST <url>` with `timestamp` (seconds)
//!   and `sign` = Base64(HMAC-SHA256(key = "<timestamp>\n<secret>", message = empty)) in the
//!   JSON body beside `msg_type` and `content`.
//!
//! All three answer HTTP 200 even when they refuse a message (bad key or signature, rate
//! limit): the refusal is a non-zero `errcode` (WeCom, DingTalk) or `code` (Feishu) in the
//! body. [`judge`] reads it, so a refused message is retried, never counted delivered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// DingTalk's `sign` before URL encoding: Base64(HMAC-SHA256(secret, "<ms>\n<secret>")).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let msg = format!("{timestamp_ms}\n{secret}");
    STANDARD.encode(hmac_sha256(secret.as_bytes(), msg.as_bytes()))
}

/// Feishu's `sign`: Base64(HMAC-SHA256(key = "<s>\n<secret>", message = empty)).
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// How an answer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: 2xx, and for the robots a zero code.
    Delivered,
    /// HTTP status other than 2xx.
    Rejected(u16),
    /// HTTP 2xx with a non-zero code in the body (or a body that is not the robot's answer).
    Refused(i64),
}

/// Which answer shape to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Any 2xx is delivered.
    Status,
    /// `{"errcode": 0, …}` (WeCom, DingTalk).
    Errcode,
    /// `{"code": 0, …}` (Feishu; older robots answered `StatusCode`).
    Code,
}

/// Code a body that is not the robot's JSON answer is refused with.
pub const UNREADABLE: i64 = -1;

/// Reads an answer.
pub fn judge(answer: Answer, status: u16, body: &str) -> Verdict {
    if !(200..300).contains(&status) {
        return Verdict::Rejected(status);
    }
    let field = match answer {
        Answer::Status => return Verdict::Delivered,
        Answer::Errcode => &["errcode"][..],
        Answer::Code => &["code", "StatusCode"][..],
    };
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return Verdict::Refused(UNREADABLE),
    };
    match field.iter().find_map(|f| v.get(*f).and_then(serde_json::Value::as_i64)) {
        Some(0) => Verdict::Delivered,
        Some(code) => Verdict::Refused(code),
        None => Verdict::Refused(UNREADABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently with Python's hmac, hashlib, base64 and urllib:
    //   s = "SECtest-secret-0123456789"; ts = "1765071665000"
    //   base64.b64encode(hmac.new(s.encode(), (ts + "\n" + s).encode(), hashlib.sha256).digest())
    //   s2 = "feishu-secret-xyz"; ts2 = "1765071665"
    //   base64.b64encode(hmac.new((ts2 + "\n" + s2).encode(), b"", hashlib.sha256).digest())
    #[test]
    fn dingtalk_sign_matches_an_independent_computation() {
        let sign = dingtalk_sign("SECtest-secret-0123456789", 1_765_071_665_000);
        assert_eq!(sign, "J28Xu1mZ6quEybCo5e+krG45HP+B3SlsMqr7Fu01w0Y=");
        // As the query parameter travels (urllib.parse.quote_plus of the same value).
        let mut url = reqwest::Url::parse("http://h/robot/send?access_token=t").unwrap();
        url.query_pairs_mut().append_pair("sign", &sign);
        assert!(
            url.as_str()
                .ends_with("&sign=J28Xu1mZ6quEybCo5e%2BkrG45HP%2BB3SlsMqr7Fu01w0Y%3D"),
            "{url}"
        );
    }

    #[test]
    fn feishu_sign_matches_an_independent_computation() {
        assert_eq!(
            feishu_sign("feishu-secret-xyz", 1_765_071_665),
            "0+VTyQiMn9qtZKe4s6nrMkVdG5N/Yod7jLX6EyawGaM="
        );
    }

    #[test]
    fn a_robot_refusal_in_a_200_answer_is_not_a_delivery() {
        let ding = r#"{"errcode":310000,"errmsg":"sign not match"}"#;
        assert_eq!(judge(Answer::Errcode, 200, ding), Verdict::Refused(310_000));
        assert_eq!(
            judge(Answer::Errcode, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
            Verdict::Delivered
        );
        let feishu = r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#;
        assert_eq!(judge(Answer::Code, 200, feishu), Verdict::Refused(19021));
        assert_eq!(
            judge(Answer::Code, 200, r#"{"code":0,"msg":"success","data":{}}"#),
            Verdict::Delivered
        );
        assert_eq!(
            judge(Answer::Code, 200, r#"{"StatusCode":0,"StatusMessage":"success"}"#),
            Verdict::Delivered
        );
        assert_eq!(judge(Answer::Errcode, 200, "<html>"), Verdict::Refused(UNREADABLE));
        assert_eq!(judge(Answer::Errcode, 502, ""), Verdict::Rejected(502));
        assert_eq!(judge(Answer::Status, 204, ""), Verdict::Delivered);
    }
}
