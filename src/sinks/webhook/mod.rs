//! Webhook delivery of alarm transitions, driven from the alarm journal.
//!
//! Design: each target keeps a cursor, the journal sequence number of the last transition it
//! has dealt with, in `<data_dir>/webhooks/<name>.cursor` (written by rename, so a crash
//! leaves the old or the new value, never a torn one). It reads the journal after its cursor,
//! POSTs each wanted transition until the receiver answers 2xx — retrying with exponential
//! backoff and jitter, never skipping — and only then moves the cursor. Delivery is therefore
//! at least once, in journal order, across restarts and outages of either side; a receiver
//! deduplicates by the `X-Hazard-Delivery` sequence number. A new target starts at the journal's
//! current end rather than replaying all history.

pub mod config;

use std::path::{Path, PathBuf};
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
use crate::sinks::journal::AlarmJournal;
use crate::state::FeedEvent;
use crate::telemetry::{Metrics, WebhookLabel};

/// Transitions read from the journal per round.
const PAGE: usize = 200;
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
    /// The cursor could not be read or written.
    #[error("webhook `{target}`: cursor {path}: {source}")]
    Cursor {
        /// Target.
        target: String,
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("webhook `{target}`: {source}")]
    Client {
        /// Target.
        target: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The journal could not be read at start.
    #[error("webhook `{target}`: {source}")]
    Journal {
        /// Target.
        target: String,
        /// Cause.
        source: crate::sinks::history::StoreError,
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
    cursor_path: PathBuf,
    cursor: u64,
    http: reqwest::Client,
    metrics: Metrics,
}

fn read_cursor(path: &Path) -> std::io::Result<Option<u64>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_cursor(path: &Path, seq: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("cursor.tmp");
    std::fs::write(&tmp, format!("{seq}\n"))?;
    std::fs::rename(tmp, path)
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
    let dir = data_dir.join("webhooks");
    let cursor_path = dir.join(format!("{target}.cursor"));
    let cursor_err = |source| WebhookError::Cursor {
        target: target.clone(),
        path: cursor_path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(cursor_err)?;
    let cursor = match read_cursor(&cursor_path).map_err(cursor_err)? {
        Some(seq) => seq,
        None => {
            let end = journal.last_seq().map_err(|source| WebhookError::Journal {
                target: target.clone(),
                source,
            })?;
            write_cursor(&cursor_path, end).map_err(cursor_err)?;
            end
        }
    };
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
        cursor_path,
        cursor,
        http,
        metrics,
    };
    Ok(tokio::spawn(t.run(journal, feed, stop)))
}

impl Target {
    async fn run(
        mut self,
        journal: Arc<AlarmJournal>,
        mut feed: broadcast::Receiver<FeedEvent>,
        stop: CancellationToken,
    ) {
        info!(webhook = %self.spec.name, url = %self.spec.url, cursor = self.cursor, "Webhook delivery started");
        loop {
            let j = journal.clone();
            let after = self.cursor;
            let page = match tokio::task::spawn_blocking(move || j.since(after, PAGE)).await {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    warn!(webhook = %self.spec.name, error = %e, "Cannot read the alarm journal; retrying");
                    Vec::new()
                }
                Err(_) => return,
            };
            if page.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = feed.recv() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for event in page {
                if self.spec.wants(&event) && !self.deliver(&event, &stop).await {
                    return;
                }
                self.advance(event.seq);
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

    fn advance(&mut self, seq: u64) {
        self.cursor = seq;
        let l = WebhookLabel {
            target: self.spec.name.clone(),
            result: "cursor",
        };
        self.metrics
            .webhook_cursor
            .get_or_create(&l)
            .set(i64::try_from(seq).unwrap_or(i64::MAX));
        if let Err(e) = write_cursor(&self.cursor_path, seq) {
            // Delivery goes on; after a restart the transitions since the last saved cursor are
            // sent again (at least once), never lost.
            warn!(webhook = %self.spec.name, error = %e, "Cannot save the webhook cursor");
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

    #[test]
    fn cursor_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.cursor");
        assert_eq!(read_cursor(&p).unwrap(), None);
        write_cursor(&p, 41).unwrap();
        write_cursor(&p, 42).unwrap();
        assert_eq!(read_cursor(&p).unwrap(), Some(42));
    }
}
