//! Time-series store output: InfluxDB line protocol over HTTP (v2 and v1 write APIs), fed
//! from a durable per-store buffer so an outage of the store loses nothing.

pub mod line;
pub mod schema;
