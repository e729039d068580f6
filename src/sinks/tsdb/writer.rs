//! The HTTP side of a store: one request per buffered batch, and what its answer means.
//!
//! Design: reqwest 0.12 (hyper 1, the same HTTP stack as our axum server) with rustls, and
//! our own encoder, rather than the `influxdb2` crate, which brings a second hyper and
//! rustls generation, has no v1 endpoint and no control over retries.

use std::io::Write as _;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::config::{Target, TsdbSpec};

/// Why a writer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// A credential's environment variable is not set.
    #[error("store `{store}`: environment variable {var} is not set")]
    MissingSecret {
        /// Store name.
        store: String,
        /// Variable name.
        var: String,
    },
    /// The CA file could not be read or parsed.
    #[error("store `{store}`: CA file {path}: {reason}")]
    CaFile {
        /// Store name.
        store: String,
        /// File.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The URL or client could not be built.
    #[error("store `{store}`: {reason}")]
    Client {
        /// Store name.
        store: String,
        /// What went wrong.
        reason: String,
    },
}

/// What the store made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the batch is stored.
    Accepted,
    /// Worth trying again: network error, timeout, 5xx, 408 or 429.
    Retry {
        /// Bounded reason for metrics: `network`, `timeout`, `server_error`, `throttled`.
        reason: &'static str,
        /// The store's Retry-After, if it sent one in seconds.
        after: Option<Duration>,
        /// Detail for the log.
        detail: String,
    },
    /// Any other 4xx: the store will never take this batch.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The store's explanation (first 512 bytes of its body).
        body: String,
    },
}

/// Sends batches to one store.
#[derive(Debug, Clone)]
pub struct Writer {
    client: reqwest::Client,
    url: Url,
    gzip: bool,
}

fn secret(store: &str, var: &str) -> Result<String, WriterError> {
    std::env::var(var).map_err(|_| WriterError::MissingSecret {
        store: store.to_string(),
        var: var.to_string(),
    })
}

impl Writer {
    /// Builds the client, reading credentials from the environment.
    pub fn build(spec: &TsdbSpec) -> Result<Writer, WriterError> {
        let client_err = |reason: String| WriterError::Client {
            store: spec.name.clone(),
            reason,
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        let (path, params): (&str, Vec<(&str, String)>) = match &spec.target {
            Target::V2 { org, bucket, token_env } => {
                if let Some(var) = token_env {
                    let token = secret(&spec.name, var)?;
                    let mut v = HeaderValue::from_str(&format!("Token {token}"))
                        .map_err(|_| client_err(format!("token in {var} is not a valid header value")))?;
                    v.set_sensitive(true);
                    headers.insert(reqwest::header::AUTHORIZATION, v);
                }
                (
                    "/api/v2/write",
                    vec![
                        ("org", org.clone()),
                        ("bucket", bucket.clone()),
                        ("precision", "ns".into()),
                    ],
                )
            }
            Target::V1 { db, rp, user } => {
                let mut p = vec![("db", db.clone()), ("precision", "n".into())];
                if let Some(rp) = rp {
                    p.push(("rp", rp.clone()));
                }
                if let Some((u, pw_env)) = user {
                    let pw = pw_env.as_deref().map(|v| secret(&spec.name, v)).transpose()?;
                    let mut v = basic_auth(u, pw.as_deref().unwrap_or(""));
                    v.set_sensitive(true);
                    headers.insert(reqwest::header::AUTHORIZATION, v);
                }
                ("/write", p)
            }
        };
        let url = Url::parse_with_params(&format!("{}{path}", spec.url), &params)
            .map_err(|e| client_err(format!("bad URL: {e}")))?;
        if spec.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout)
            .pool_max_idle_per_host(spec.concurrency);
        if let Some(path) = &spec.ca_file {
            let ca_err = |reason: String| WriterError::CaFile {
                store: spec.name.clone(),
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| client_err(e.to_string()))?;
        Ok(Writer {
            client,
            url,
            gzip: spec.gzip,
        })
    }

    /// The write URL (without credentials), for logs.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one batch of lines.
    pub async fn send(&self, lines: &[u8]) -> Outcome {
        let body = if self.gzip {
            let mut enc = GzEncoder::new(Vec::with_capacity(lines.len() / 4), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(lines);
            enc.finish().unwrap_or_default()
        } else {
            lines.to_vec()
        };
        let resp = match self.client.post(self.url.clone()).body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() { "timeout" } else { "network" };
                return Outcome::Retry {
                    reason,
                    after: None,
                    detail: error_chain(&e),
                };
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Outcome::Accepted;
        }
        let after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut text = resp.text().await.unwrap_or_default();
        if text.len() > 512 {
            let mut cut = 512;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let text = text.replace(['\n', '\r'], " ");
        classify(status, after, text)
    }
}

/// What an HTTP status means for a batch. Pure, so the rule is tested on its own.
pub fn classify(status: StatusCode, after: Option<Duration>, body: String) -> Outcome {
    if status.is_success() {
        Outcome::Accepted
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry {
            reason: "throttled",
            after,
            detail: format!("{status}: {body}"),
        }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Outcome::Retry {
            reason: "server_error",
            after,
            detail: format!("{status}: {body}"),
        }
    } else {
        Outcome::Rejected {
            status: status.as_u16(),
            body,
        }
    }
}

fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let raw = format!("{user}:{password}");
    let encoded = base64(raw.as_bytes());
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Standard base64 (RFC 4648 §4) for the Basic auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_accepted_retry_and_rejected() {
        assert_eq!(classify(StatusCode::NO_CONTENT, None, String::new()), Outcome::Accepted);
        let after = Some(Duration::from_secs(7));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, after, "slow down".into()),
            Outcome::Retry { reason: "throttled", after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, String::new()),
            Outcome::Retry {
                reason: "server_error",
                ..
            }
        ));
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, "unable to parse".into()),
            Outcome::Rejected {
                status: 400,
                body: "unable to parse".into()
            }
        );
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, None, String::new()),
            Outcome::Rejected { status: 404, .. }
        ));
    }

    #[test]
    fn basic_auth_is_standard_base64() {
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
