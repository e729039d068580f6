//! `[[tsdb]]` entries: the serde shape, and validation into a [`TsdbSpec`] (pure: no env,
//! no files). Secrets are named by environment variable and read when the writer is built.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::sinks::buffer::{BufferConfig, FsyncPolicy, WhenFull};
use crate::spec::error::{ConfigError, SourceText};
use crate::spec::units;

/// Which write API the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ApiVersion {
    /// InfluxDB 2.x `/api/v2/write` (also VictoriaMetrics, GreptimeDB, QuestDB): org, bucket, token.
    #[serde(rename = "v2")]
    V2,
    /// InfluxDB 1.x `/write` (also VictoriaMetrics, TDengine's adapter): db, retention policy, user.
    #[serde(rename = "v1")]
    V1,
}

/// `fsync = "always" | "never" | { interval = "1s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawFsync {
    /// Sync every append and acknowledgement: nothing lost on power failure; slowest.
    Always,
    /// Never sync explicitly: a process crash loses nothing, a power loss the kernel's backlog.
    Never,
    /// Sync at most once per interval: a power loss loses at most that interval.
    Interval(#[serde(deserialize_with = "units::duration::deserialize")] Duration),
}

/// `buffer = { ... }` of one store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuffer {
    /// Most disk the buffer may use (`"1GiB"`).
    #[serde(default = "default_max_bytes", deserialize_with = "units::size::deserialize")]
    pub max_bytes: u64,
    /// What is lost when it is full.
    #[serde(default)]
    pub when_full: WhenFull,
    /// When buffered bytes are forced to disk.
    #[serde(default = "default_fsync")]
    pub fsync: RawFsync,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

fn default_fsync() -> RawFsync {
    RawFsync::Interval(Duration::from_secs(1))
}

impl Default for RawBuffer {
    fn default() -> Self {
        Self {
            max_bytes: default_max_bytes(),
            when_full: WhenFull::default(),
            fsync: default_fsync(),
        }
    }
}

/// One `[[tsdb]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsdb {
    /// Name in metrics, logs and the buffer directory; default `tsdb<index>`.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Base URL, `http://` or `https://`.
    pub url: Spanned<String>,
    /// Write API.
    pub api: ApiVersion,
    /// v2: organisation.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v2: environment variable holding the API token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// v1: database.
    #[serde(default)]
    pub db: Option<String>,
    /// v1: retention policy (the database's default when absent).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v1: user name.
    #[serde(default)]
    pub user: Option<String>,
    /// v1: environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM file of an extra trusted CA for `https://` (a plant's private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Lines per request at most.
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// How long a line may wait for its batch to fill.
    #[serde(default = "default_batch_age", deserialize_with = "units::duration::deserialize")]
    pub batch_age: Duration,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Time limit of one request.
    #[serde(default = "default_timeout", deserialize_with = "units::duration::deserialize")]
    pub timeout: Duration,
    /// Compress request bodies with gzip.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(default = "default_retry_min", deserialize_with = "units::duration::deserialize")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(default = "default_retry_max", deserialize_with = "units::duration::deserialize")]
    pub retry_max: Duration,
    /// Reading batches queued between the rules engine and this store's buffer; past this
    /// they are dropped and counted (the rules engine never waits for a store).
    #[serde(default = "default_queue")]
    pub queue_batches: usize,
    /// The durable buffer.
    #[serde(default)]
    pub buffer: RawBuffer,
    /// Size at which the dead-letter file of refused batches is moved to `.1` and a new one
    /// begins (`"64MiB"`); the previous `.1`, with its refused batches, is then deleted
    /// (counted in `hazard_tsdb_dead_letter_discarded_bytes_total`).
    #[serde(default = "default_dead_letter_max", deserialize_with = "units::size::deserialize")]
    pub dead_letter_max: u64,
}

fn default_dead_letter_max() -> u64 {
    64 << 20
}

fn default_batch_lines() -> usize {
    5000
}
fn default_batch_age() -> Duration {
    Duration::from_secs(1)
}
fn default_concurrency() -> usize {
    2
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_true() -> bool {
    true
}
fn default_retry_min() -> Duration {
    Duration::from_millis(200)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}
fn default_queue() -> usize {
    1024
}

/// Where and how to write, with credentials still named, not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api/v2/write`.
    V2 {
        /// Organisation.
        org: String,
        /// Bucket.
        bucket: String,
        /// Env var of the token, if any.
        token_env: Option<String>,
    },
    /// `/write`.
    V1 {
        /// Database.
        db: String,
        /// Retention policy.
        rp: Option<String>,
        /// User and the env var of the password.
        user: Option<(String, Option<String>)>,
    },
}

/// A validated store.
#[derive(Debug, Clone, PartialEq)]
pub struct TsdbSpec {
    /// Name in metrics, logs and the buffer directory.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// API and its parameters.
    pub target: Target,
    /// Extra trusted CA.
    pub ca_file: Option<PathBuf>,
    /// Lines per request at most.
    pub batch_lines: usize,
    /// Longest wait for a batch to fill.
    pub batch_age: Duration,
    /// Requests in flight.
    pub concurrency: usize,
    /// Request time limit.
    pub timeout: Duration,
    /// gzip request bodies.
    pub gzip: bool,
    /// Retry delays.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Intake queue, in reading batches.
    pub queue_batches: usize,
    /// Buffer settings.
    pub buffer: BufferConfig,
    /// Size at which the dead-letter file rotates.
    pub dead_letter_max: u64,
}

impl RawTsdb {
    /// Checks one entry; pushes every problem found.
    pub fn validate(&self, src: &SourceText<'_>, i: usize, errors: &mut Vec<ConfigError>) -> Option<TsdbSpec> {
        let before = errors.len();
        let key = |f: &str| format!("tsdb[{i}].{f}");
        let at = self.url.span();
        let url = self.url.get_ref().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(&url).is_err() {
            errors.push(src.error(
                at.clone(),
                key("url"),
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        let name = self
            .name
            .as_ref()
            .map_or_else(|| format!("tsdb{i}"), |n| n.get_ref().clone());
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            errors.push(src.error(
                self.name.as_ref().map_or(at.clone(), Spanned::span),
                key("name"),
                format!("`{name}` must be non-empty letters, digits, `-` or `_` (it names a directory)"),
            ));
        }
        let mut need = |field: &str, v: &Option<String>| -> String {
            match v {
                Some(s) if !s.is_empty() => s.clone(),
                _ => {
                    errors.push(src.error(
                        at.clone(),
                        key(field),
                        format!("api = \"{}\" needs `{field}`", api_name(self.api)),
                    ));
                    String::new()
                }
            }
        };
        let target = match self.api {
            ApiVersion::V2 => Target::V2 {
                org: need("org", &self.org),
                bucket: need("bucket", &self.bucket),
                token_env: self.token_env.clone(),
            },
            ApiVersion::V1 => Target::V1 {
                db: need("db", &self.db),
                rp: self.retention_policy.clone(),
                user: self.user.clone().map(|u| (u, self.password_env.clone())),
            },
        };
        let wrong_api = match self.api {
            ApiVersion::V2 => [
                ("db", self.db.is_some()),
                ("retention_policy", self.retention_policy.is_some()),
                ("user", self.user.is_some()),
                ("password_env", self.password_env.is_some()),
            ],
            ApiVersion::V1 => [
                ("org", self.org.is_some()),
                ("bucket", self.bucket.is_some()),
                ("token_env", self.token_env.is_some()),
                ("", false),
            ],
        };
        for (field, set) in wrong_api {
            if set {
                errors.push(src.error(
                    at.clone(),
                    key(field),
                    format!("`{field}` does not apply to api = \"{}\"", api_name(self.api)),
                ));
            }
        }
        for (field, n) in [
            ("batch_lines", self.batch_lines),
            ("concurrency", self.concurrency),
            ("queue_batches", self.queue_batches),
        ] {
            if n == 0 {
                errors.push(src.error(at.clone(), key(field), format!("{field} must be at least 1")));
            }
        }
        if self.retry_min.is_zero() || self.retry_min > self.retry_max {
            errors.push(src.error(
                at.clone(),
                key("retry_min"),
                "retry_min must be above zero and at most retry_max",
            ));
        }
        if self.buffer.max_bytes < 1 << 20 {
            errors.push(src.error(
                at.clone(),
                key("buffer.max_bytes"),
                "buffer.max_bytes must be at least 1MiB",
            ));
        }
        if self.dead_letter_max < 64 << 10 {
            errors.push(src.error(
                at.clone(),
                key("dead_letter_max"),
                "dead_letter_max must be at least 64KiB",
            ));
        }
        if errors.len() > before {
            return None;
        }
        let fsync = match self.buffer.fsync {
            RawFsync::Always => FsyncPolicy::Always,
            RawFsync::Never => FsyncPolicy::Never,
            RawFsync::Interval(d) => FsyncPolicy::Interval(d),
        };
        Some(TsdbSpec {
            name,
            url,
            target,
            ca_file: self.ca_file.clone(),
            batch_lines: self.batch_lines,
            batch_age: self.batch_age,
            concurrency: self.concurrency,
            timeout: self.timeout,
            gzip: self.gzip,
            retry_min: self.retry_min,
            retry_max: self.retry_max,
            queue_batches: self.queue_batches,
            buffer: BufferConfig::new(self.buffer.max_bytes, self.buffer.when_full, fsync),
            dead_letter_max: self.dead_letter_max,
        })
    }
}

fn api_name(a: ApiVersion) -> &'static str {
    match a {
        ApiVersion::V2 => "v2",
        ApiVersion::V1 => "v1",
    }
}
