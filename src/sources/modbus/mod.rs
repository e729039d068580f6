//! Modbus polling: a register map is planned into reads, the reads go over a transport, and
//! the answers are decoded into readings.
//!
//! - [`register`]: where a point sits and how it is encoded.
//! - [`planner`]: coalesces points into the fewest reads under the device's limits.
//! - [`decoder`]: words to engineering values with quality (and back, for the simulator).
//! - [`transport`]: the only module that knows how bytes reach the device.
//! - [`poller`]: the per-device task: schedule, timeouts, reconnect with backoff.
//!
//! The gateway only ever reads (function codes 03 and 04): it never writes to field devices.

pub mod decoder;
pub mod planner;
pub mod poller;
pub mod register;
pub mod transport;
