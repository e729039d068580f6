//! What the console's browser tests share: the gas-detector gateway most of them watch, and
//! running a browser script to its end.

use std::net::SocketAddr;
use std::time::Duration;

use super::ConsoleBrowser;

/// A gateway config with an open API on a free loopback port, hazard source `MHS-001`
/// (液氯储罐区, grade 2) and the four-channel gas detector `gas-ai-1` on `sim` polled every
/// 100 ms (points `MHS-001/GT-101` to `GT-104`); `extra` is appended (tokens, rules, labels,
/// more devices) and `api_extra` goes into `[api]`.
pub fn gas_gateway(id: &str, sim: SocketAddr, api_extra: &str, extra: &str) -> String {
    format!(
        r#"
[gateway]
id = "{id}"
data_dir = "data"
[api]
listen = "127.0.0.1:0"
{api_extra}
[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2
[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = {{ tcp = "{sim}" }}
interval = "100ms"
hazard_source = "MHS-001"
points = {{ ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102", ch3 = "MHS-001/GT-103", ch4 = "MHS-001/GT-104" }}
{extra}
"#
    )
}

/// Runs `script` (in `tests/browser`) against `url` with `env` until it prints `DONE` and
/// exits successfully; panics with its output otherwise, or after `limit`.
pub async fn run_script(script: &str, url: &str, env: &[(&str, &str)], limit: Duration) {
    let mut browser = ConsoleBrowser::start_script(script, url, env);
    browser.expect_line("DONE", limit).await;
    browser.finish();
}
