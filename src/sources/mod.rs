//! Sources of readings: field-device pollers, MQTT subscriptions and the built-in simulator.
//!
//! A source knows nothing of rules or sinks: it sends batches of readings into a bounded
//! channel and stops when its cancellation token fires.

pub mod dtu;
pub mod modbus;
pub mod mqtt;
pub mod opcua;
pub mod sim;
