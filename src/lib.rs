//! hazard-gateway: an edge gateway for real-time monitoring of major hazard sources (重大危险源).
//!
//! Data flows one way: sources -> rules -> sinks, and the API reads shared state. Imports between
//! these modules run one way too (`docs/architecture.md`; `tests/it/layers.rs` enforces it).
//!
//! - [`config`]: typed TOML configuration and device profiles; gathers every component's spec
//!   type into one validated config. No component imports it.
//! - [`spec`]: what every component's config is built from: errors that name file, line and
//!   key, durations and sizes, paths relative to the config file, TLS files; imports no
//!   component.
//! - [`model`]: points, readings and reading batches, quality, hazard sources and alarm events:
//!   every type that crosses layers; imports nothing else of ours.
//! - [`clock`]: the only place that reads wall time, so tests can drive time by hand.
//! - [`sources`]: Modbus pollers, DTU listener, MQTT subscriptions, OPC UA sessions and the
//!   built-in simulator; they emit reading batches and define their own spec types.
//! - [`rules`]: pure alarm evaluation (threshold, deadband, on-delay) and its alarm events.
//! - [`tuning`]: suggested deadbands and on/off delays for nuisance alarms, from their own
//!   history, and the replay set that measures them.
//! - [`sinks`]: the embedded history store, the durable alarm journal, time-series stores,
//!   webhooks, northbound MQTT and regulator uplinks; each defines its own spec type.
//! - [`pair`]: hot standby: this gateway as one node of a pair, its lease at a witness broker,
//!   the pair link that copies the journal to the standby, and the role loop that starts the
//!   gateway on the node that holds the lease.
//! - [`state`]: live values and active alarms shared between the rules task and the API, and
//!   device health ([`state::devices`]) that the sources write and the API reads.
//! - [`api`]: HTTP API, SSE alarm feed, metrics and the duty-officer console.
//! - [`telemetry`]: every metric the gateway exports, created in one place; imports no source
//!   or sink.
//! - [`pipeline`]: wires the components from a validated config; start-up and shutdown.
//! - [`demo`]: the built-in demo plant (simulators plus gateway in one process).
//! - [`kpi`]: alarm-system performance KPIs (ISA-18.2 / EEMUA 191) computed from journaled
//!   transitions; pure, imports only `model` and `spec`.
//! - [`health`]: the readiness checks shared by `/readyz` and the service manager's watchdog.
//! - [`sd_notify`]: readiness, watchdog and stopping notifications to systemd.

pub mod api;
pub mod clock;
pub mod config;
pub mod demo;
pub mod health;
pub mod kpi;
pub mod ledger;
pub mod model;
pub mod pair;
pub mod pipeline;
pub mod rules;
#[cfg(unix)]
pub mod sd_notify;
pub mod sinks;
pub mod sources;
pub mod spec;
pub mod state;
pub mod telemetry;
pub mod tuning;
