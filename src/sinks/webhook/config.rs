//! `[[webhooks]]` entries: where alarm transitions are delivered and which ones.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{AlarmEvent, Priority, Transition};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units;

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A `[[webhooks]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Name in logs and metrics; also names its delivery cursor in the data dir.
    pub name: Spanned<String>,
    /// `http://` or `https://` URL that receives one POST per transition.
    pub url: Spanned<String>,
    /// Environment variable holding the HMAC-SHA256 key; the signature goes in
    /// `X-Hazard-Signature: sha256=<hex>`. Without it, deliveries are unsigned.
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
}

/// A validated webhook target.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    /// Name.
    pub name: String,
    /// Target URL.
    pub url: String,
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

/// Validates the entries, reporting every problem with its place.
pub fn validate(src: &SourceText<'_>, raw: &[RawWebhook], errors: &mut Vec<ConfigError>) -> Vec<WebhookSpec> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let name = w.name.get_ref();
        let safe = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !safe || !names.insert(name.clone()) {
            let msg = "webhook names must be unique and made of letters, digits, `-` and `_` (they name a file)";
            errors.push(src.error(w.name.span(), format!("webhooks[{i}].name"), msg));
        }
        let url = w.url.get_ref();
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => errors.push(src.error(
                w.url.span(),
                format!("webhooks[{i}].url"),
                format!("scheme `{}` is not http or https", u.scheme()),
            )),
            Err(e) => errors.push(src.error(
                w.url.span(),
                format!("webhooks[{i}].url"),
                format!("`{url}` is not a URL: {e}"),
            )),
        }
        if w.timeout.is_zero() {
            errors.push(src.error(
                w.name.span(),
                format!("webhooks[{i}].timeout"),
                "must be longer than zero",
            ));
        }
        out.push(WebhookSpec {
            name: name.clone(),
            url: url.clone(),
            secret_env: w.secret_env.clone(),
            min_priority: w.min_priority,
            hazard_sources: w.hazard_sources.clone(),
            transitions: w.transitions.clone(),
            timeout: w.timeout,
        });
    }
    out
}
