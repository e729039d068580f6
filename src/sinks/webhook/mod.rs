//! Webhook delivery of alarm transitions, driven from the alarm journal.
//!
//! Design: each target follows the journal with a durable cursor in
//! `<data_dir>/webhooks/<name>.cursor` ([`crate::sinks::follow`]). It POSTs each wanted
//! transition until the receiver answers 2xx — retrying with exponential backoff and jitter,
//! never skipping — and only then moves the cursor. Delivery is therefore at least once, in
//! journal order, across restarts and outages of either side; a receiver deduplicates by the
//! `X-Hazard-Delivery` sequence number.

pub mod config;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::WebhookSpec;

use crate::model::AlarmEvent;
use crate::sinks::follow::{FollowError, Follower};
use crate::sinks::journal::AlarmJournal;
use crate::state::FeedEvent;
use crate::telemetry::{Metrics, WebhookLabel};

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a target could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The signing key's environment variable is not set.
    #[error("webhook `{target}`: environment variable `{var}` (secret_env) is not set")]
    MissingSecret {
        /// Target.
        target: String,
        /// Variable.
        var: String,
    },
    /// The delivery cursor could not be opened.
    #[error("webhook `{target}`: {source}")]
    Follow {
        /// Target.
        target: String,
        /// Cause.
        source: FollowError,
    },
    /// The HTTP client could not be built.
    #[error("webhook `{target}`: {source}")]
    Client {
        /// Target.
        target: String,
        /// Cause.
        source: reqwest::Error,
    },
}

/// `sha256=<hex>` HMAC of `body` under `key`: what `X-Hazard-Signature` carries.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// One running target.
#[derive(Debug)]
struct Target {
    spec: WebhookSpec,
    secret: Option<Vec<u8>>,
    gateway: String,
    http: reqwest::Client,
    metrics: Metrics,
}

/// Starts delivery to `spec`; the task stops when `stop` fires.
pub fn start(
    spec: WebhookSpec,
    gateway: &str,
    data_dir: &Path,
    journal: Arc<AlarmJournal>,
    feed: broadcast::Receiver<FeedEvent>,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, WebhookError> {
    let target = spec.name.clone();
    let secret = match &spec.secret_env {
        Some(var) => Some(
            std::env::var(var)
                .map_err(|_| WebhookError::MissingSecret {
                    target: target.clone(),
                    var: var.clone(),
                })?
                .into_bytes(),
        ),
        None => None,
    };
    let follower =
        Follower::open(&data_dir.join("webhooks"), &target, journal, feed).map_err(|source| WebhookError::Follow {
            target: target.clone(),
            source,
        })?;
    let http = reqwest::Client::builder()
        .timeout(spec.timeout)
        .build()
        .map_err(|source| WebhookError::Client {
            target: target.clone(),
            source,
        })?;
    let t = Target {
        spec,
        secret,
        gateway: gateway.to_string(),
        http,
        metrics,
    };
    Ok(tokio::spawn(t.run(follower, stop)))
}

impl Target {
    async fn run(self, mut follower: Follower, stop: CancellationToken) {
        info!(webhook = %self.spec.name, url = %self.spec.url, cursor = follower.position(), "Webhook delivery started");
        while let Some(page) = follower.next_page(&stop).await {
            for event in page {
                if self.spec.wants(&event) && !self.deliver(&event, &stop).await {
                    return;
                }
                follower.advance(event.seq);
                let l = WebhookLabel {
                    target: self.spec.name.clone(),
                    result: "cursor",
                };
                self.metrics
                    .webhook_cursor
                    .get_or_create(&l)
                    .set(i64::try_from(event.seq).unwrap_or(i64::MAX));
            }
        }
    }

    /// Posts until a 2xx answer; `false` if stopped first.
    async fn deliver(&self, event: &AlarmEvent, stop: &CancellationToken) -> bool {
        let body = serde_json::json!({ "gateway": self.gateway, "event": event }).to_string();
        let label = |result| WebhookLabel {
            target: self.spec.name.clone(),
            result,
        };
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .post(&self.spec.url)
                .header("content-type", "application/json")
                .header("x-hazard-delivery", event.seq.to_string())
                .header("x-hazard-gateway", &self.gateway);
            if let Some(key) = &self.secret {
                req = req.header("x-hazard-signature", signature(key, body.as_bytes()));
            }
            let outcome = req.body(body.clone()).send().await;
            match outcome {
                Ok(r) if r.status().is_success() => {
                    self.metrics.webhook_deliveries.get_or_create(&label("ok")).inc();
                    return true;
                }
                Ok(r) => {
                    self.metrics.webhook_deliveries.get_or_create(&label("rejected")).inc();
                    warn!(webhook = %self.spec.name, seq = event.seq, status = r.status().as_u16(), attempt, "Webhook refused a transition; retrying");
                }
                Err(e) => {
                    self.metrics.webhook_deliveries.get_or_create(&label("error")).inc();
                    warn!(webhook = %self.spec.name, seq = event.seq, error = %e, attempt, "Webhook delivery failed; retrying");
                }
            }
            let wait = backoff.mul_f64(rand::rng().random_range(0.8..1.2));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
