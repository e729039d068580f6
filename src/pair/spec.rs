//! The pair's timings, and its config (validated in `config::redundancy`).

pub use crate::config::PairSpec;

use std::time::Duration;

/// How often the active renews its lease at the witness.
pub const BEAT: Duration = Duration::from_millis(500);
/// How long a renewal (or a standby's acknowledgement over the link) lets the active drive
/// buses and regulators, counted from when it was sent.
pub const FENCE: Duration = Duration::from_secs(2);
/// How long the standby waits without a renewal before it takes the lease: longer than
/// [`FENCE`], so an active that stopped renewing has stopped driving first.
pub const TAKEOVER: Duration = Duration::from_millis(2_500);
