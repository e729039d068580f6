//! One attempt at one target: the request its kind calls for, and how its answer reads.
//! Shared by journal delivery ([`super::Target`]) and escalation rosters
//! ([`super::escalate`]), so there is one way a message leaves the gateway.

use std::sync::Arc;

use serde_json::json;
use tracing::warn;

use super::config::{Kind, WebhookSpec};
use super::message::{Directory, EscalationNote, Fields, Language, MessageSettings, fields};
use super::presets::{Answer, Verdict, dingtalk_sign, feishu_sign, judge};
use super::template::Escape;
use super::{WebhookError, signature};
use crate::clock::SharedClock;
use crate::model::{AlarmEvent, Priority};
use crate::telemetry::{Metrics, WebhookLabel};

/// Credentials read from the environment at start; `Debug` shows none of them.
struct Secrets {
    key: Option<String>,
    secret: Option<String>,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

fn env(target: &str, field: &'static str, var: &str) -> Result<String, WebhookError> {
    std::env::var(var).map_err(|_| WebhookError::MissingEnv {
        target: target.to_string(),
        field,
        var: var.to_string(),
    })
}

/// What everything sending a message needs besides the target.
#[derive(Debug, Clone)]
pub struct SendContext {
    /// Gateway id, in generic bodies.
    pub gateway: String,
    /// Names from `[labels]` and hazard sources.
    pub directory: Arc<Directory>,
    /// Language, local time and console link.
    pub settings: MessageSettings,
    /// The gateway's clock: signature timestamps and quiet hours.
    pub clock: SharedClock,
    /// Metric handles.
    pub metrics: Metrics,
}

/// A request ready to go.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) url: reqwest::Url,
    pub(super) content_type: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
    pub(super) answer: Answer,
}

/// A target able to send.
#[derive(Debug)]
pub struct Sender {
    /// Its spec.
    pub spec: WebhookSpec,
    secrets: Secrets,
    http: reqwest::Client,
    /// Shared context.
    pub ctx: SendContext,
}

/// Why an attempt did not deliver, for the caller's log and backoff.
#[derive(Debug)]
pub enum Failure {
    /// Non-2xx status.
    Rejected(u16),
    /// 2xx with the robot's error code.
    Refused(i64),
    /// Network or timeout (the message carries no URL: it may hold a key).
    Error(String),
}

impl Sender {
    /// Reads the target's credentials and builds its client.
    pub fn new(spec: WebhookSpec, ctx: SendContext) -> Result<Self, WebhookError> {
        let t = spec.name.as_str();
        let key = spec.key_env.as_deref().map(|v| env(t, "key_env", v)).transpose()?;
        let secret = spec
            .secret_env
            .as_deref()
            .map(|v| env(t, "secret_env", v))
            .transpose()?;
        let mut headers = Vec::new();
        for (h, var) in spec.template.iter().flat_map(|t| &t.headers_env) {
            headers.push((h.clone(), env(t, "template.headers_env", var)?));
        }
        let http = reqwest::Client::builder()
            .timeout(spec.timeout)
            .build()
            .map_err(|source| WebhookError::Client {
                target: spec.name.clone(),
                source,
            })?;
        Ok(Self {
            spec,
            secrets: Secrets { key, secret, headers },
            http,
            ctx,
        })
    }

    fn language(&self) -> Language {
        self.spec.language.unwrap_or(self.ctx.settings.language)
    }

    /// The request for `e` (and an escalation step, if it is one).
    pub(super) fn request(&self, e: &AlarmEvent, note: Option<&EscalationNote>) -> Outgoing {
        let lang = self.language();
        let f = fields(e, &self.ctx.directory, &self.ctx.settings, lang, note);
        let mut url = reqwest::Url::parse(&self.spec.url).unwrap_or_else(|_| {
            // Validation checked the URL; an unparsable one fails every attempt visibly.
            reqwest::Url::parse("http://invalid.invalid/").expect("a fixed URL parses")
        });
        let now = self.ctx.clock.now();
        let critical = e.priority == Priority::Critical;
        let key = self.secrets.key.as_deref().unwrap_or_default();
        let mut headers = vec![("x-hazard-delivery".to_string(), e.seq.to_string())];
        let json = "application/json".to_string();
        match self.spec.kind {
            Kind::Generic => {
                let mut v = json!({ "gateway": self.ctx.gateway, "event": e });
                if let Some(n) = note {
                    v["escalation"] = json!({ "roster": n.roster, "level": n.level });
                }
                let body = v.to_string();
                headers.push(("x-hazard-gateway".into(), self.ctx.gateway.clone()));
                if let Some(s) = &self.secrets.secret {
                    headers.push(("x-hazard-signature".into(), signature(s.as_bytes(), body.as_bytes())));
                }
                Outgoing {
                    url,
                    content_type: json,
                    headers,
                    body,
                    answer: Answer::Status,
                }
            }
            Kind::Wecom => {
                url.query_pairs_mut().append_pair("key", key);
                let mention = critical && (self.spec.mention_all_on_critical || !self.spec.phones.is_empty());
                let body = if mention {
                    // Only WeCom's text message can mention people by mobile number.
                    let mut mobiles = self.spec.phones.clone();
                    if self.spec.mention_all_on_critical {
                        mobiles.push("@all".into());
                    }
                    json!({"msgtype": "text", "text": {"content": f.text(lang), "mentioned_mobile_list": mobiles}})
                } else {
                    json!({"msgtype": "markdown", "markdown": {"content": f.markdown(lang)}})
                };
                Outgoing {
                    url,
                    content_type: json,
                    headers,
                    body: body.to_string(),
                    answer: Answer::Errcode,
                }
            }
            Kind::Dingtalk => {
                url.query_pairs_mut().append_pair("access_token", key);
                if let Some(s) = &self.secrets.secret {
                    let ms = now.as_millis();
                    url.query_pairs_mut()
                        .append_pair("timestamp", &ms.to_string())
                        .append_pair("sign", &dingtalk_sign(s, ms));
                }
                let mobiles: Vec<String> = if critical { self.spec.phones.clone() } else { Vec::new() };
                let mut text = f.markdown(lang);
                for m in &mobiles {
                    // DingTalk shows a mention only when the text carries `@<mobile>`.
                    text.push_str(&format!("@{m} "));
                }
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": {"title": f.title, "text": text},
                    "at": {"atMobiles": mobiles, "isAtAll": critical && self.spec.mention_all_on_critical},
                });
                Outgoing {
                    url,
                    content_type: json,
                    headers,
                    body: body.to_string(),
                    answer: Answer::Errcode,
                }
            }
            Kind::Feishu => {
                if !key.is_empty() {
                    if let Ok(mut segs) = url.path_segments_mut() {
                        segs.pop_if_empty().push(key);
                    }
                }
                let body = feishu_body(&f, lang, self.secrets.secret.as_deref(), now.as_nanos() / 1_000_000_000);
                Outgoing {
                    url,
                    content_type: json,
                    headers,
                    body: body.to_string(),
                    answer: Answer::Code,
                }
            }
            Kind::Template => {
                let (body, content_type) = match &self.spec.template {
                    Some(t) => {
                        let esc = Escape::for_content_type(&t.content_type);
                        let body = t.body.render(&f, &f.text(lang), &e.alarm_id, &self.spec.phones, esc);
                        (body, t.content_type.clone())
                    }
                    None => (f.text(lang), "text/plain; charset=utf-8".into()),
                };
                headers.extend(self.secrets.headers.iter().cloned());
                Outgoing {
                    url,
                    content_type,
                    headers,
                    body,
                    answer: Answer::Status,
                }
            }
        }
    }

    /// One attempt; counts its outcome in `hazard_webhook_deliveries{target,result}`.
    pub async fn attempt(&self, e: &AlarmEvent, note: Option<&EscalationNote>) -> Result<(), Failure> {
        let out = self.request(e, note);
        let mut req = self
            .http
            .post(out.url)
            .header("content-type", out.content_type)
            .body(out.body);
        for (h, v) in out.headers {
            req = req.header(h, v);
        }
        let result = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                match judge(out.answer, status, &body) {
                    Verdict::Delivered => Ok(()),
                    Verdict::Rejected(s) => Err(Failure::Rejected(s)),
                    Verdict::Refused(c) => Err(Failure::Refused(c)),
                }
            }
            Err(err) => Err(Failure::Error(err.without_url().to_string())),
        };
        let label = match &result {
            Ok(()) => "ok",
            Err(Failure::Rejected(_)) => "rejected",
            Err(Failure::Refused(_)) => "refused",
            Err(Failure::Error(_)) => "error",
        };
        self.count(label);
        let failing = self.ctx.metrics.webhook_failing.get_or_create(&WebhookLabel {
            target: self.spec.name.clone(),
            result: "failing",
        });
        if result.is_ok() {
            failing.set(0);
        } else {
            failing.inc();
        }
        result
    }

    /// Counts one outcome of this target.
    pub fn count(&self, result: &'static str) {
        let l = WebhookLabel {
            target: self.spec.name.clone(),
            result,
        };
        self.ctx.metrics.webhook_deliveries.get_or_create(&l).inc();
    }

    /// Logs a failed attempt (callers back off between attempts, which bounds the rate).
    pub fn warn(&self, e: &AlarmEvent, f: &Failure, attempt: u32) {
        let t = &self.spec.name;
        match f {
            Failure::Rejected(s) => {
                warn!(webhook = %t, seq = e.seq, status = s, attempt, "Webhook refused a transition; retrying")
            }
            Failure::Refused(c) => {
                warn!(webhook = %t, seq = e.seq, code = c, attempt, "Chat robot answered with an error code; retrying")
            }
            Failure::Error(err) => {
                warn!(webhook = %t, seq = e.seq, error = %err, attempt, "Webhook delivery failed; retrying")
            }
        }
    }
}

/// Feishu's rich-text (`post`) message, signed when a secret is given.
fn feishu_body(f: &Fields, lang: Language, secret: Option<&str>, now_s: i64) -> serde_json::Value {
    let mut rows: Vec<serde_json::Value> = f
        .body_lines(lang)
        .into_iter()
        .map(|l| json!([{"tag": "text", "text": l}]))
        .collect();
    if !f.link.is_empty() {
        rows.push(json!([{"tag": "a", "text": Fields::link_text(lang), "href": f.link}]));
    }
    let locale = if lang == Language::Zh { "zh_cn" } else { "en_us" };
    let mut body = json!({
        "msg_type": "post",
        "content": {"post": {locale: {"title": f.title, "content": rows}}},
    });
    if let Some(s) = secret {
        body["timestamp"] = json!(now_s.to_string());
        body["sign"] = json!(feishu_sign(s, now_s));
    }
    body
}
