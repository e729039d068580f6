//! Sources of readings: field-device pollers, MQTT subscriptions and the built-in simulator.
//!
//! A source knows nothing of rules or sinks: it sends batches of readings into a bounded
//! channel and stops when its cancellation token fires.

pub mod dtu;
pub mod modbus;
pub mod mqtt;
pub mod opcua;
pub mod sim;

use crate::model::{Reading, Receipt};

/// What sources send to the rules engine: one poll cycle's readings.
pub type ReadingBatch = Vec<Reading>;

/// A batch from a source that acknowledges upstream (MQTT QoS 1) only once the readings are
/// durable in every sink: the receipt travels with the readings (see `docs/durability.md`).
#[derive(Debug)]
pub struct DurableBatch {
    /// The readings.
    pub readings: ReadingBatch,
    /// Settled when every sink has them durable or counted lost.
    pub receipt: Receipt,
}
