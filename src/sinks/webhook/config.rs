//! `[[webhooks]]` entries: where alarm transitions are delivered, which ones, and in what
//! shape (generic JSON, a chat robot's message, or a user's template for SMS and voice).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::message::Language;
use super::quiet::QuietHours;
use super::template::Template;
use crate::model::{AlarmEvent, Priority, Transition};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units;

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_content_type() -> String {
    "application/json".into()
}

/// What a target expects to receive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `{"gateway", "event"}` JSON, optionally HMAC-signed (`X-Hazard-Signature`).
    #[default]
    Generic,
    /// WeCom group robot (企业微信群机器人): markdown message; the key is the credential.
    Wecom,
    /// DingTalk custom robot (钉钉自定义机器人), signed with 加签 when `secret_env` is set.
    Dingtalk,
    /// Feishu custom robot (飞书自定义机器人), signed with 签名校验 when `secret_env` is set.
    Feishu,
    /// Any HTTP gateway (SMS, voice): a body from `template`.
    Template,
}

impl Kind {
    /// The service's documented address, for the robots.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            Kind::Wecom => Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send"),
            Kind::Dingtalk => Some("https://oapi.dingtalk.com/robot/send"),
            Kind::Feishu => Some("https://open.feishu.cn/open-apis/bot/v2/hook/"),
            Kind::Generic | Kind::Template => None,
        }
    }
}

/// `template = { … }` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    /// The body with `{placeholder}`s, e.g. `{"phones":"{phones}","text":"{point} {value}"}`.
    pub body: Spanned<String>,
    /// `Content-Type` of the body; JSON bodies get JSON-escaped values, form bodies
    /// percent-encoded ones.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Extra headers, each naming the environment variable that holds its value (API keys of
    /// the SMS gateway stay out of the file).
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
}

/// A `[[webhooks]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Name in logs and metrics; also names its delivery cursor in the data dir.
    pub name: Spanned<String>,
    /// What the receiver expects (default `generic`).
    #[serde(default)]
    pub kind: Kind,
    /// `http://` or `https://` URL that receives one POST per transition. The robots default
    /// to the service's documented address.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Environment variable holding the robot's credential: WeCom's `key`, DingTalk's
    /// `access_token`, the last path segment of a Feishu hook. Never logged.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Environment variable holding the signing secret: the HMAC key of generic deliveries
    /// (`X-Hazard-Signature: sha256=<hex>`), DingTalk's 加签 or Feishu's 签名校验 secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Only alarms of this priority or higher.
    #[serde(default)]
    pub min_priority: Option<Priority>,
    /// Only alarms of these hazard sources (empty: all).
    #[serde(default)]
    pub hazard_sources: Vec<String>,
    /// Only these transitions (empty: all).
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// How long one attempt may take.
    #[serde(default = "default_timeout", deserialize_with = "units::duration::deserialize")]
    pub timeout: Duration,
    /// Message language, overriding `[notify] language`.
    #[serde(default)]
    pub language: Option<Language>,
    /// Mobile numbers: DingTalk mentions them (`at.atMobiles`) on critical alarms, WeCom in
    /// its text message, templates fill `{phones}` with them.
    #[serde(default)]
    pub phones: Vec<Spanned<String>>,
    /// DingTalk and WeCom: mention everyone in the group on critical alarms.
    #[serde(default)]
    pub mention_all_on_critical: bool,
    /// The body of a `template` target.
    #[serde(default)]
    pub template: Option<Spanned<RawTemplate>>,
    /// `["22:00", "07:00"]`: site local hours in which alarms below critical are held back
    /// and sent when they end. Critical alarms are never held.
    #[serde(default)]
    pub quiet_hours: Option<Spanned<Vec<String>>>,
    /// Only escalation rosters notify this target; it does not follow the journal itself.
    #[serde(default)]
    pub only_escalations: bool,
}

/// A validated template body.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    /// Parsed body.
    pub body: Template,
    /// Content type.
    pub content_type: String,
    /// Header name and the environment variable of its value.
    pub headers_env: Vec<(String, String)>,
}

/// A validated webhook target.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    /// Name.
    pub name: String,
    /// What the receiver expects.
    pub kind: Kind,
    /// Target URL (without the robot's credential).
    pub url: String,
    /// Environment variable of the robot's credential.
    pub key_env: Option<String>,
    /// Environment variable of the signing key.
    pub secret_env: Option<String>,
    /// Lowest priority delivered.
    pub min_priority: Option<Priority>,
    /// Hazard sources delivered (empty: all).
    pub hazard_sources: Vec<String>,
    /// Transitions delivered (empty: all).
    pub transitions: Vec<Transition>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Message language, if the target sets one.
    pub language: Option<Language>,
    /// Mobile numbers to mention or to send to.
    pub phones: Vec<String>,
    /// Mention everyone on critical alarms.
    pub mention_all_on_critical: bool,
    /// Body of a `template` target.
    pub template: Option<TemplateSpec>,
    /// Hours in which alarms below critical are held.
    pub quiet_hours: Option<QuietHours>,
    /// Reached only through escalation rosters.
    pub only_escalations: bool,
}

impl WebhookSpec {
    /// Whether this target wants `e`.
    pub fn wants(&self, e: &AlarmEvent) -> bool {
        self.min_priority.is_none_or(|p| e.priority >= p)
            && (self.hazard_sources.is_empty()
                || e.hazard_source
                    .as_ref()
                    .is_some_and(|h| self.hazard_sources.contains(h)))
            && (self.transitions.is_empty() || self.transitions.contains(&e.transition))
    }
}

fn check_url(src: &SourceText<'_>, i: usize, url: &Spanned<String>, errors: &mut Vec<ConfigError>) {
    match reqwest::Url::parse(url.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => errors.push(src.error(
            url.span(),
            format!("webhooks[{i}].url"),
            format!("scheme `{}` is not http or https", u.scheme()),
        )),
        Err(e) => errors.push(src.error(
            url.span(),
            format!("webhooks[{i}].url"),
            format!("`{}` is not a URL: {e}", url.get_ref()),
        )),
    }
}

/// Validates the entries, reporting every problem with its place.
pub fn validate(src: &SourceText<'_>, raw: &[RawWebhook], errors: &mut Vec<ConfigError>) -> Vec<WebhookSpec> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let name = w.name.get_ref();
        let at = |key: &str| format!("webhooks[{i}].{key}");
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !safe || !names.insert(name.clone()) {
            let msg = "webhook names must be unique and made of letters, digits, `-` and `_` (they name a file)";
            errors.push(src.error(w.name.span(), at("name"), msg));
        }
        let url = match (&w.url, w.kind.default_url()) {
            (Some(u), _) => {
                check_url(src, i, u, errors);
                u.get_ref().clone()
            }
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                errors.push(src.error(w.name.span(), at("url"), "is required for this kind"));
                String::new()
            }
        };
        let robot = matches!(w.kind, Kind::Wecom | Kind::Dingtalk | Kind::Feishu);
        if robot && w.key_env.is_none() {
            let msg = "is required: the environment variable holding the robot's key or access token";
            errors.push(src.error(w.name.span(), at("key_env"), msg));
        }
        if !robot && w.key_env.is_some() {
            errors.push(src.error(
                w.name.span(),
                at("key_env"),
                "is only for kind wecom, dingtalk or feishu",
            ));
        }
        if w.kind == Kind::Wecom && w.secret_env.is_some() {
            let msg = "WeCom robots have no signature; the key (key_env) is the credential";
            errors.push(src.error(w.name.span(), at("secret_env"), msg));
        }
        if w.timeout.is_zero() {
            errors.push(src.error(w.name.span(), at("timeout"), "must be longer than zero"));
        }
        let template = match (&w.template, w.kind) {
            (Some(t), Kind::Template) => {
                let raw_t = t.get_ref();
                for h in raw_t.headers_env.keys() {
                    if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                        let msg = format!("`{h}` is not an HTTP header name");
                        errors.push(src.error(t.span(), at("template.headers_env"), msg));
                    }
                }
                match Template::parse(raw_t.body.get_ref()) {
                    Ok(body) => Some(TemplateSpec {
                        body,
                        content_type: raw_t.content_type.clone(),
                        headers_env: raw_t.headers_env.clone().into_iter().collect(),
                    }),
                    Err(e) => {
                        errors.push(src.error(raw_t.body.span(), at("template.body"), e.to_string()));
                        None
                    }
                }
            }
            (None, Kind::Template) => {
                errors.push(src.error(w.name.span(), at("template"), "is required for kind `template`"));
                None
            }
            (Some(t), _) => {
                errors.push(src.error(t.span(), at("template"), "is only for kind `template`"));
                None
            }
            (None, _) => None,
        };
        for (j, p) in w.phones.iter().enumerate() {
            let ok = !p.get_ref().is_empty() && p.get_ref().chars().all(|c| c.is_ascii_digit() || c == '+');
            if !ok {
                errors.push(src.error(p.span(), at(&format!("phones[{j}]")), "must be digits (and `+`)"));
            }
        }
        let mentions = matches!(w.kind, Kind::Wecom | Kind::Dingtalk);
        if !mentions && w.mention_all_on_critical {
            let msg = "only WeCom and DingTalk robots mention people";
            errors.push(src.error(w.name.span(), at("mention_all_on_critical"), msg));
        }
        if let (Some(p), false) = (w.phones.first(), mentions || w.kind == Kind::Template) {
            let msg = "only WeCom and DingTalk robots (mentions) and templates (`{phones}`) use phone numbers";
            errors.push(src.error(p.span(), at("phones"), msg));
        }
        let quiet_hours = w
            .quiet_hours
            .as_ref()
            .and_then(|q| match QuietHours::parse(q.get_ref()) {
                Ok(h) => Some(h),
                Err(msg) => {
                    errors.push(src.error(q.span(), at("quiet_hours"), msg));
                    None
                }
            });
        out.push(WebhookSpec {
            name: name.clone(),
            kind: w.kind,
            url,
            key_env: w.key_env.clone(),
            secret_env: w.secret_env.clone(),
            min_priority: w.min_priority,
            hazard_sources: w.hazard_sources.clone(),
            transitions: w.transitions.clone(),
            timeout: w.timeout,
            language: w.language,
            phones: w.phones.iter().map(|p| p.get_ref().clone()).collect(),
            mention_all_on_critical: w.mention_all_on_critical,
            template,
            quiet_hours,
            only_escalations: w.only_escalations,
        });
    }
    out
}

#[cfg(test)]
mod tests;
