//! Where readings and alarms go: the embedded history store and the durable alarm journal.

pub mod history;
pub mod journal;
