//! The built-in simulator: serves a device profile's registers over Modbus TCP with synthetic
//! signals and scripted scenarios, for commissioning, drills, the demo and the tests.
//!
//! It is a real Modbus server (tokio-modbus), so the gateway polls it exactly as it polls a
//! field device. It refuses every write: like the gateway, it is read-only.

pub mod scenario;
mod server;
pub mod signal;

pub use scenario::{Drill, Episode, ScenarioKind, ScenarioSet};
pub use server::{Scenario, SimPoint, SimProfile, SimTransport, Simulator};
