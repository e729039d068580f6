//! The built-in demo plant: four simulated devices and a gateway in one process.
//!
//! Two hazard sources: an LPG spherical-tank area (MHS-001, grade 2) and a methanol tank farm
//! (MHS-002, grade 3), each with a 4-channel combustible-gas module and a tank transmitter set,
//! 14 points in all. A scripted leak on `MHS-001/GT-101` crosses the first-level set-point
//! (25 %LEL) about 10 s after start, the second level (50 %LEL) a few seconds later, and clears
//! about a minute and a half in; it repeats every three minutes.
//!
//! The demo goes through the same config validation as a site config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::clock::SharedClock;
use crate::config::{ConfigErrors, GatewayConfig, ProfileSet};
use crate::pipeline::{Gateway, StartError};
use crate::sources::sim::signal::Leak;
use crate::sources::sim::{Scenario, Simulator};

/// The demo's config; `{gas1}` etc. are replaced by the simulators' addresses.
const DEMO_CONFIG: &str = include_str!("../deploy/demo.toml");

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A simulator could not start.
    #[error("cannot start simulator `{name}`: {source}")]
    Simulator {
        /// Device name.
        name: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The built-in profiles or demo config are invalid (a build defect).
    #[error("demo config is invalid:\n{0}")]
    Config(ConfigErrors),
    /// The gateway failed to start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A running demo: keep it alive as long as the demo should run.
#[derive(Debug)]
pub struct Demo {
    /// The gateway.
    pub gateway: Gateway,
    /// The simulated devices.
    pub simulators: Vec<Simulator>,
}

/// Starts the simulators and the gateway; the API listens on `listen`.
pub async fn start(listen: SocketAddr, data_dir: &Path, clock: SharedClock) -> Result<Demo, DemoError> {
    let profiles = ProfileSet::builtin().map_err(|e| DemoError::Config(ConfigErrors(e)))?;
    let devices = [
        ("gas1", "ai4-gas-lel", Some("ch1")),
        ("tank1", "tank-ltp", None),
        ("gas2", "ai4-gas-lel", None),
        ("tank2", "tank-ltp", None),
    ];
    let mut text = DEMO_CONFIG.replace("{listen}", &listen.to_string());
    let mut simulators = Vec::new();
    for (name, profile, leak_on) in devices {
        let profile = profiles.get(profile).cloned().ok_or_else(|| DemoError::Simulator {
            name: name.into(),
            source: std::io::Error::other("profile missing"),
        })?;
        let scenario = leak_on.map(|p| Scenario::Leak {
            point: p.into(),
            leak: Leak::demo(),
        });
        let sim = Simulator::start(profile, SocketAddr::from(([127, 0, 0, 1], 0)), scenario)
            .await
            .map_err(|source| DemoError::Simulator {
                name: name.into(),
                source,
            })?;
        text = text.replace(&format!("{{{name}}}"), &sim.local_addr().to_string());
        simulators.push(sim);
    }
    let config = GatewayConfig::parse(&PathBuf::from("deploy/demo.toml"), &text).map_err(DemoError::Config)?;
    let gateway = Gateway::start(config, data_dir, clock).await?;
    Ok(Demo { gateway, simulators })
}
