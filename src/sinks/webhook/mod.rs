//! Webhook delivery of alarm transitions, driven from the alarm journal.
//!
//! Design: each target follows the journal with a durable cursor in
//! `<data_dir>/webhooks/<name>.cursor` ([`crate::sinks::follow`]). It POSTs each wanted
//! transition until the receiver answers 2xx — retrying with exponential backoff and jitter,
//! never skipping — and only then moves the cursor. Delivery is therefore at least once, in
//! journal order, across restarts and outages of either side; a receiver deduplicates by the
//! `X-Hazard-Delivery` sequence number.
//!
//! A target's `kind` only changes the request ([`send`]): generic JSON, a chat robot's
//! message ([`presets`]: a robot's HTTP 200 with a non-zero error code is a refusal and is
//! retried like any other), or a template for SMS and voice gateways ([`template`]). Quiet
//! hours ([`quiet`]) hold transitions below critical out of line; escalation rosters
//! ([`escalate`]) send through the same [`Sender`].

pub mod config;
pub mod escalate;
pub mod message;
pub mod notify_config;
pub mod presets;
pub mod quiet;
pub mod send;
pub mod template;

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
pub use send::{SendContext, Sender};

use crate::model::AlarmEvent;
use crate::sinks::follow::{FollowError, Follower};
use crate::sinks::journal::AlarmJournal;
use crate::state::FeedEvent;
use crate::telemetry::WebhookLabel;
use quiet::Held;

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often a target with held transitions looks whether its quiet hours ended.
const QUIET_TICK: Duration = Duration::from_secs(1);

/// Why a target could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A credential's environment variable is not set.
    #[error("webhook `{target}`: environment variable `{var}` ({field}) is not set")]
    MissingEnv {
        /// Target.
        target: String,
        /// Config key naming the variable.
        field: &'static str,
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
    /// The list of held transitions could not be read.
    #[error("webhook `{target}`: held transitions: {source}")]
    Held {
        /// Target.
        target: String,
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
    /// An escalation roster could not open its record of sent steps.
    #[error("escalation `{roster}`: {source}")]
    Escalation {
        /// Roster.
        roster: String,
        /// Cause.
        source: std::io::Error,
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
    sender: Sender,
    journal: Arc<AlarmJournal>,
    held: Held,
}

/// Starts delivery to `spec`; the task stops when `stop` fires. A target reached only through
/// escalation rosters (`only_escalations`) gets no task: `None`.
pub fn start(
    spec: WebhookSpec,
    ctx: SendContext,
    data_dir: &Path,
    journal: Arc<AlarmJournal>,
    feed: broadcast::Receiver<FeedEvent>,
    stop: CancellationToken,
) -> Result<Option<JoinHandle<()>>, WebhookError> {
    let target = spec.name.clone();
    let only_escalations = spec.only_escalations;
    let sender = Sender::new(spec, ctx)?;
    if only_escalations {
        return Ok(None);
    }
    let dir = data_dir.join("webhooks");
    let follower = Follower::open(&dir, &target, journal.clone(), feed).map_err(|source| WebhookError::Follow {
        target: target.clone(),
        source,
    })?;
    let held = Held::open(&dir, &target).map_err(|source| WebhookError::Held {
        target: target.clone(),
        source,
    })?;
    let t = Target { sender, journal, held };
    Ok(Some(tokio::spawn(t.run(follower, stop))))
}

impl Target {
    fn name(&self) -> &str {
        &self.sender.spec.name
    }

    /// Whether the target's quiet hours hold `e` now.
    fn holds(&self, e: &AlarmEvent) -> bool {
        let ctx = &self.sender.ctx;
        self.sender
            .spec
            .quiet_hours
            .is_some_and(|q| q.holds(e.priority, ctx.clock.now(), ctx.settings.utc_offset_secs))
    }

    async fn run(mut self, mut follower: Follower, stop: CancellationToken) {
        info!(webhook = %self.name(), url = %self.sender.spec.url, kind = ?self.sender.spec.kind, cursor = follower.position(), held = self.held.len(), "Webhook delivery started");
        loop {
            if !self.release_held(&stop).await {
                return;
            }
            let page = tokio::select! {
                page = follower.next_page(&stop) => page,
                _ = tokio::time::sleep(QUIET_TICK), if !self.held.is_empty() => continue,
            };
            let Some(page) = page else { return };
            for event in page {
                if self.sender.spec.wants(&event) {
                    if self.holds(&event) {
                        if let Err(e) = self.held.push(event.seq) {
                            // Not recorded as held: deliver now rather than risk losing it.
                            warn!(webhook = %self.name(), seq = event.seq, error = %e, "Cannot record a held transition; sending it now");
                            if !self.deliver(&event, &stop).await {
                                return;
                            }
                        } else {
                            self.sender.count("held");
                        }
                    } else if !self.deliver(&event, &stop).await {
                        return;
                    }
                }
                follower.advance(event.seq);
                let l = WebhookLabel {
                    target: self.name().to_string(),
                    result: "cursor",
                };
                self.sender
                    .ctx
                    .metrics
                    .webhook_cursor
                    .get_or_create(&l)
                    .set(i64::try_from(event.seq).unwrap_or(i64::MAX));
            }
        }
    }

    /// Delivers held transitions once the quiet hours are over; `false` if stopped first.
    async fn release_held(&mut self, stop: &CancellationToken) -> bool {
        while let Some(seq) = self.held.first() {
            let journal = self.journal.clone();
            let read = tokio::task::spawn_blocking(move || journal.since(seq.saturating_sub(1), 1)).await;
            let event = match read {
                Ok(Ok(page)) => page.into_iter().find(|e| e.seq == seq),
                Ok(Err(e)) => {
                    warn!(webhook = %self.name(), seq, error = %e, "Cannot read a held transition; retrying");
                    return true;
                }
                Err(_) => return false,
            };
            match event {
                Some(e) if self.holds(&e) => return true,
                Some(e) => {
                    if !self.deliver(&e, stop).await {
                        return false;
                    }
                    self.sender.count("released");
                }
                None => {
                    // Journal retention removed it while it was held: a counted loss.
                    self.sender.count("held_lost");
                    warn!(webhook = %self.name(), seq, "A held transition is no longer in the journal");
                }
            }
            if let Err(e) = self.held.pop() {
                warn!(webhook = %self.name(), seq, error = %e, "Cannot update the held transitions; it may be sent again");
            }
        }
        true
    }

    /// Posts until delivered; `false` if stopped first.
    async fn deliver(&self, event: &AlarmEvent, stop: &CancellationToken) -> bool {
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.sender.attempt(event, None).await {
                Ok(()) => return true,
                Err(f) => self.sender.warn(event, &f, attempt),
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
