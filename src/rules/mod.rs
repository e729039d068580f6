//! Alarm evaluation: pure state machines fed with readings, emitting alarm events.
//!
//! Rules know no destination: the pipeline journals and publishes what they emit.

pub mod engine;
pub mod threshold;

pub use engine::{RuleSpec, RulesEngine};
pub use threshold::{Limit, LimitState, Threshold};
