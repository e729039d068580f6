//! Modbus polling: a register map is planned into reads, the reads go over a transport, and
//! the answers are decoded into readings.
//!
//! - [`register`]: where a point sits and how it is encoded.
//! - [`planner`]: coalesces points into the fewest reads under the device's limits.
//! - [`decoder`]: words to engineering values with quality (and back, for the simulator).
//! - [`frame`]: read requests and answers on the wire (TCP MBAP, RTU CRC), pure.
//! - [`transport`]: the only module that knows how bytes reach the device.
//! - [`schedule`]: fixed-rate poll times and backoff, pure.
//! - [`health`]: per-device health for the API and metrics.
//! - [`line`]: which devices share one link (a serial bus, a TCP address).
//! - [`poller`]: the per-line task: schedule, timeouts, retries, reconnect with backoff.
//!
//! The gateway only ever reads (function codes 01, 02, 03 and 04): [`frame`] can encode no
//! other request, so it cannot write to a field device.

pub mod decoder;
pub mod frame;
pub mod line;
pub mod planner;
pub mod poller;
pub mod register;
pub mod schedule;
pub mod spec;
pub mod transport;
