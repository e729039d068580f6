//! hazard-gateway: an edge gateway for real-time monitoring of major hazard sources (重大危险源).
//!
//! Data flows one way: sources -> rules -> sinks, and the API reads shared state.
//!
//! - [`config`]: typed TOML configuration and device profiles; every error names file, line and key.
//! - [`model`]: points, readings, quality and alarm events; imports nothing else of ours.
//! - [`clock`]: the only place that reads wall time, so tests can drive time by hand.
//! - [`sources`]: Modbus pollers, MQTT subscriptions and the built-in simulator; they emit reading
//!   batches.
//! - [`rules`]: pure alarm evaluation (threshold, deadband, on-delay) and its alarm events.
//! - [`sinks`]: the embedded history store and the durable alarm journal.
//! - [`state`]: live values and active alarms shared between the rules task and the API.
//! - [`api`]: HTTP API, SSE alarm feed, metrics and the duty-officer console.
//! - [`telemetry`]: every metric the gateway exports, created in one place.
//! - [`pipeline`]: wires the components from a validated config; start-up and shutdown.
//! - [`demo`]: the built-in demo plant (simulators plus gateway in one process).
//! - [`health`]: the readiness checks shared by `/readyz` and the service manager's watchdog.
//! - [`sd_notify`]: readiness, watchdog and stopping notifications to systemd.

pub mod api;
pub mod clock;
pub mod config;
pub mod demo;
pub mod health;
pub mod model;
pub mod pipeline;
pub mod rules;
#[cfg(unix)]
pub mod sd_notify;
pub mod sinks;
pub mod sources;
pub mod spec;
pub mod state;
pub mod telemetry;
