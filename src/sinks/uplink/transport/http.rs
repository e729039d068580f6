//! HTTP POST transport: one request per payload. Acknowledged by a 2xx status and, when
//! `ack = { pointer, equals }` is set, by the JSON answer holding that value at that pointer
//! (e.g. `pointer = "/code"`, `equals = 0`). Statuses listed in `reject_status` drop the
//! payload for good (counted); every other failure is retried.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::super::config::{Place, SecretRef};
use super::super::template::{self, Template};
use super::super::tls::TlsConfig;
use super::super::{BoxFuture, Payload, Transport, TransportError};
use crate::spec::error::ConfigError;
use crate::spec::units;

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_content_type() -> String {
    "application/json".into()
}

/// A header value: a `{name}` template or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// Text with placeholders (`{uplink}`, `{gateway}`, `{kind}`, …).
    Text(String),
    /// `{ env = "VAR" }` or `{ file = "path" }`.
    Secret(SecretRef),
}

/// `ack = { pointer = "/code", equals = 0 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyAck {
    /// JSON pointer (RFC 6901) into the answer.
    pub pointer: String,
    /// Value it must hold.
    pub equals: toml::Value,
}

/// `transport = { type = "http", … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Target URL; may hold placeholders (`{kind}`, …).
    pub url: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// `Content-Type` (default `application/json`).
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Per-request timeout (default 10s).
    #[serde(default = "default_timeout", deserialize_with = "units::duration::deserialize")]
    pub timeout: Duration,
    /// TLS trust and client certificate (default: the system's web PKI roots).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Answer check beyond the 2xx status.
    #[serde(default)]
    pub ack: Option<BodyAck>,
    /// Statuses that refuse a payload for good (it is dropped and counted).
    #[serde(default)]
    pub reject_status: Vec<u16>,
}

impl HttpConfig {
    /// Checks the settings.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        match Template::parse(&self.url).and_then(|t| t.check(template::TRANSPORT_VARS).map(|()| t)) {
            Ok(t) => {
                let sample = t.render(|_| Some(Cow::Borrowed("x")));
                match reqwest::Url::parse(&sample) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    Ok(u) => errors.push(at.error("url", format!("scheme `{}` is not http or https", u.scheme()))),
                    Err(e) => errors.push(at.error("url", format!("`{}` is not a URL: {e}", self.url))),
                }
            }
            Err(e) => errors.push(at.error("url", e)),
        }
        for (name, value) in &mut self.headers {
            let field = format!("headers.{name}");
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(at.error(&field, format!("`{name}` is not a header name")));
            }
            match value {
                HeaderValue::Text(t) => {
                    if let Err(e) = Template::parse(t).and_then(|t| t.check(template::TRANSPORT_VARS)) {
                        errors.push(at.error(&field, e));
                    }
                }
                HeaderValue::Secret(s) => s.check(at, &field, errors),
            }
        }
        if self.timeout.is_zero() {
            errors.push(at.error("timeout", "must be longer than zero"));
        }
        if let Some(ack) = &self.ack
            && !(ack.pointer.is_empty() || ack.pointer.starts_with('/'))
        {
            errors.push(at.error("ack.pointer", "a JSON pointer is empty or starts with `/`"));
        }
        for s in &self.reject_status {
            if !(400..600).contains(s) {
                errors.push(at.error("reject_status", format!("{s} is not an error status (400..599)")));
            }
        }
        if let Some(tls) = &mut self.tls {
            tls.check(at, "tls", errors);
        }
    }
}

/// The HTTP client of one uplink.
#[derive(Debug)]
pub struct HttpTransport {
    uplink: String,
    gateway: String,
    url: Template,
    headers: Vec<(reqwest::header::HeaderName, HeaderPart)>,
    content_type: String,
    ack: Option<(String, serde_json::Value)>,
    reject: Vec<u16>,
    client: reqwest::Client,
}

#[derive(Debug)]
enum HeaderPart {
    Text(Template),
    Secret(reqwest::header::HeaderValue),
}

impl HttpTransport {
    /// A client for `cfg`; secrets are read now.
    pub fn new(cfg: &HttpConfig, uplink: &str, gateway: &str) -> Result<Self, String> {
        let mut headers = Vec::new();
        for (name, value) in &cfg.headers {
            let hn =
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
            let part = match value {
                HeaderValue::Text(t) => HeaderPart::Text(Template::parse(t)?),
                HeaderValue::Secret(s) => {
                    let secret = s.resolve().map_err(|e| format!("header {name}: {e}"))?;
                    let mut v = reqwest::header::HeaderValue::from_bytes(&secret.0)
                        .map_err(|_| format!("header {name}: the secret is not a valid header value"))?;
                    v.set_sensitive(true);
                    HeaderPart::Secret(v)
                }
            };
            headers.push((hn, part));
        }
        let mut builder = reqwest::Client::builder().timeout(cfg.timeout);
        if let Some(tls) = &cfg.tls {
            let config = tls.client_config()?;
            builder = builder.use_preconfigured_tls((*config).clone());
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let ack = match &cfg.ack {
            Some(a) => Some((
                a.pointer.clone(),
                serde_json::to_value(&a.equals).map_err(|e| format!("ack.equals: {e}"))?,
            )),
            None => None,
        };
        Ok(Self {
            uplink: uplink.to_string(),
            gateway: gateway.to_string(),
            url: Template::parse(&cfg.url)?,
            headers,
            content_type: cfg.content_type.clone(),
            ack,
            reject: cfg.reject_status.clone(),
            client,
        })
    }

    async fn post(&self, payload: &Payload) -> Result<(), TransportError> {
        let url = template::render_for(&self.url, &self.uplink, &self.gateway, payload);
        let mut req = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, &self.content_type)
            .body(payload.body.clone());
        for (name, part) in &self.headers {
            req = match part {
                HeaderPart::Secret(v) => req.header(name, v.clone()),
                HeaderPart::Text(t) => req.header(name, template::render_for(t, &self.uplink, &self.gateway, payload)),
            };
        }
        // Per-payload headers the envelope rendered (`header:NAME` attributes).
        for (key, value) in &payload.attrs {
            if let Some(name) = key.strip_prefix(super::super::seal::HEADER_PREFIX) {
                req = req.header(name, value);
            }
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() || e.is_request() {
                TransportError::Unreachable(strip_url(&e))
            } else {
                TransportError::NotAcknowledged(strip_url(&e))
            }
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| TransportError::Unreachable(format!("reading the answer: {}", strip_url(&e))))?;
        if !status.is_success() {
            let what = format!("status {status}: {}", super::excerpt(&body));
            return Err(if self.reject.contains(&status.as_u16()) {
                TransportError::Rejected(what)
            } else {
                TransportError::NotAcknowledged(what)
            });
        }
        if let Some((pointer, want)) = &self.ack {
            let got: Option<serde_json::Value> = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer(pointer).cloned());
            if !got.as_ref().is_some_and(|g| same(g, want)) {
                return Err(TransportError::NotAcknowledged(format!(
                    "answer `{}` has no {want} at {pointer}",
                    super::excerpt(&body)
                )));
            }
        }
        Ok(())
    }
}

/// JSON equality where numbers compare by value (`0` equals `0.0`).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A reqwest error without the URL (it may carry a query-string token).
fn strip_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

impl Transport for HttpTransport {
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.post(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_in_the_body_check() {
        assert!(same(&serde_json::json!(0), &serde_json::json!(0.0)));
        assert!(same(&serde_json::json!("ok"), &serde_json::json!("ok")));
        assert!(!same(&serde_json::json!("0"), &serde_json::json!(0)));
    }
}
