//! HJ 212 (污染物在线监控(监测)系统数据传输标准, 2017 and 2025 editions): the field unit's
//! side of the protocol, for platforms that take hazard readings in the environmental
//! monitoring format.
//!
//! - [`frame`]: `##` + length + data segment + ANSI CRC16 + CR LF; building, checking and
//!   cutting frames out of a TCP stream.
//! - [`segment`]: the data segment's fields (`QN`, `ST`, `CN`, `PW`, `MN`, `Flag`,
//!   `PNUM`/`PNO`, `CP`).
//! - [`encode`]: records into real-time (2011) and minute/hour/day (2051/2061/2031) messages,
//!   quality into data flags, split packets.
//! - [`command`]: the centre's requests (9014 acknowledgements, time, intervals, history
//!   pulls) and our answers (9011, 9012, data).
//!
//! - [`centre`]: what the field unit does for the centre's requests (time, intervals,
//!   history pulls answered from the embedded history store).
//! - [`link`]: the TCP connection: data out with 9014 acknowledgements, centre requests in,
//!   reconnect with backoff.
//!
//! Everything but [`link`] is pure or blocking library code; `link` owns the socket.

pub mod centre;
pub mod command;
pub mod config;
pub mod encode;
pub mod frame;
pub mod history;
pub mod link;
pub mod segment;

pub use command::{ExeRtn, Incoming, QnRtn, Request, classify};
pub use encode::{Cou, Hj212Encoder, Hj212Settings, data_flag};
pub use frame::{Deframer, FrameError, MAX_SEGMENT, crc16};
pub use segment::{Flag, Segment, SegmentError, Version};

#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;
