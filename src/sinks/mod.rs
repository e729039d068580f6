//! Where readings and alarms go: the embedded history store, the durable alarm journal, the
//! time-series store writers and the durable store-and-forward buffer they send from.

pub mod backup;
pub mod buffer;
pub mod follow;
pub mod history;
pub mod journal;
pub mod mqtt_link;
pub mod mqtt_north;
pub mod runlog;
pub mod tsdb;
pub mod uplink;
pub mod webhook;
