//! Opening a Modbus client connection to a device.

use std::io;
use std::time::Duration;

use tokio_modbus::Slave;
use tokio_modbus::client::Context;

use crate::config::TransportSpec;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host name did not resolve.
    #[error("cannot resolve `{addr}`: {source}")]
    Resolve {
        /// Address as configured.
        addr: String,
        /// Resolver error.
        source: io::Error,
    },
    /// The host name resolved to nothing.
    #[error("`{addr}` resolves to no address")]
    NoAddress {
        /// Address as configured.
        addr: String,
    },
    /// The device refused or reset the connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address as configured.
        addr: String,
        /// Socket error.
        source: io::Error,
    },
    /// The device did not accept the connection in time.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout {
        /// Address as configured.
        addr: String,
        /// The limit that passed.
        timeout: Duration,
    },
}

impl TransportError {
    /// Bounded outcome name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Resolve { .. } | TransportError::NoAddress { .. } => "resolve_error",
            TransportError::Connect { .. } => "refused",
            TransportError::Timeout { .. } => "timeout",
        }
    }
}

/// Connects to a device, bounded by `timeout`.
pub async fn connect(spec: &TransportSpec, unit_id: u8, timeout: Duration) -> Result<Context, TransportError> {
    let TransportSpec::Tcp(addr) = spec;
    let attempt = async {
        let socket_addr = tokio::net::lookup_host(addr.as_str())
            .await
            .map_err(|source| TransportError::Resolve {
                addr: addr.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| TransportError::NoAddress { addr: addr.clone() })?;
        tokio_modbus::client::tcp::connect_slave(socket_addr, Slave(unit_id))
            .await
            .map_err(|source| TransportError::Connect {
                addr: addr.clone(),
                source,
            })
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TransportError::Timeout {
            addr: addr.clone(),
            timeout,
        })?
}
