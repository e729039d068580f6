//! The whole-system tests, one crate so the library links once: a module per concern, the
//! shared server helpers in `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod alarm_restart;
mod api_auth;
mod api_openapi;
mod api_server;
mod api_token_reload;
mod backup;
mod cli;
mod config_errors;
mod console;
mod console_ack;
mod console_devices;
mod console_english;
mod console_performance;
mod console_read_only;
mod console_roles;
mod console_safety;
mod console_trend;
mod deploy_docker;
mod dtu;
mod durability;
mod early_warning;
mod end_to_end;
mod history;
mod kpi;
mod layers;
mod modbus_faults;
mod modbus_peer;
mod modbus_types;
mod mqtt_in;
mod mqtt_north;
mod mqtt_north_readings;
mod notify;
mod opcua;
mod park;
mod profiles;
mod readiness;
mod reload;
mod self_check;
mod systemd;
mod tsdb;
mod tsdb_dead_letter;
mod tsdb_secret;
mod tsdb_throttle;
mod tuning;
mod uplink_cipher_vectors;
mod uplink_coal;
mod uplink_hj212;
mod uplink_http;
mod uplink_mqtt;
mod uplink_seal;
mod uplink_tls;
mod webhook;
