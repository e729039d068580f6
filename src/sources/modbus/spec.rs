//! What the config says of a polled Modbus device: how to reach it (TCP, serial RTU, RTU over
//! TCP, a dialled-in DTU) and which registers feed which points. The top-level config builds
//! these; the line tasks run from them.

use std::time::Duration;

use super::planner::ReadLimits;
use super::register::RegisterSpec;
use crate::model::PointId;

/// How the gateway reaches a Modbus device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportSpec {
    /// Modbus TCP to `host:port`.
    Tcp(String),
    /// Modbus RTU on a local serial line (RS-485/RS-232).
    Rtu(SerialSpec),
    /// RTU frames carried over a TCP connection to a serial server / DTU at `host:port`.
    RtuOverTcp(String),
    /// Through a DTU that dials in to the gateway: the station's name.
    Dtu(String),
}

impl TransportSpec {
    /// `tcp`, `rtu` or `rtu_over_tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Tcp(_) => "tcp",
            TransportSpec::Rtu(_) => "rtu",
            TransportSpec::RtuOverTcp(_) => "rtu_over_tcp",
            TransportSpec::Dtu(_) => "dtu",
        }
    }

    /// The endpoint: `host:port` or the serial port path.
    pub fn endpoint(&self) -> &str {
        match self {
            TransportSpec::Tcp(a) | TransportSpec::RtuOverTcp(a) | TransportSpec::Dtu(a) => a,
            TransportSpec::Rtu(s) => &s.port,
        }
    }
}

impl std::fmt::Display for TransportSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportSpec::Rtu(s) => write!(
                f,
                "rtu {} {} {}{}{}",
                s.port,
                s.baud,
                s.data_bits,
                s.parity.letter(),
                s.stop_bits
            ),
            other => write!(f, "{} {}", other.kind(), other.endpoint()),
        }
    }
}

/// Serial line settings of an RTU bus.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SerialSpec {
    /// Serial device, e.g. `/dev/ttyS1`.
    pub port: String,
    /// Bits per second.
    pub baud: u32,
    /// Parity bit.
    pub parity: Parity,
    /// Data bits per character (7 or 8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

impl SerialSpec {
    /// Modbus over Serial Line v1.02 §2.5.1.1: frames are separated by 3.5 character times of
    /// silence; above 19200 baud a fixed 1.75 ms is recommended.
    pub fn inter_frame_silence(&self) -> Duration {
        if self.baud > 19_200 {
            return Duration::from_micros(1750);
        }
        let bits = 1 + u32::from(self.data_bits) + u32::from(self.parity != Parity::None) + u32::from(self.stop_bits);
        Duration::from_secs_f64(3.5 * f64::from(bits) / f64::from(self.baud.max(1)))
    }
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit (Modbus requires 2 stop bits then, though many devices use 1).
    None,
    /// Even parity, the Modbus default (Serial Line v1.02 §2.5.1).
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        }
    }
}

/// One polled device, with its points resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    /// Device name, unique in the gateway.
    pub name: String,
    /// Profile it follows.
    pub profile: String,
    /// Where it is.
    pub transport: TransportSpec,
    /// Modbus unit (slave) id.
    pub unit_id: u8,
    /// Poll period.
    pub interval: Duration,
    /// How long to wait for an answer before the device counts as silent.
    pub timeout: Duration,
    /// Extra attempts of a failed request while the device is online (none once it is not:
    /// a dead device costs its bus one timeout per cycle).
    pub retries: u8,
    /// Pause before each request to this device, for slow serial devices and DTUs.
    pub inter_request_delay: Duration,
    /// Request limits (profile's, possibly narrowed per device).
    pub limits: ReadLimits,
    /// The points it feeds, by position in its register map; shared by the config and the
    /// device's poller.
    pub points: std::sync::Arc<[PointId]>,
    /// Where each of `points` sits (same positions). One copy serves every device with the
    /// same map (the devices of a profile, as a rule): a plant has thousands of devices.
    pub registers: std::sync::Arc<[RegisterSpec]>,
}

impl From<&DeviceSpec> for crate::state::devices::DeviceIdentity {
    fn from(d: &DeviceSpec) -> Self {
        Self {
            name: d.name.clone(),
            profile: d.profile.clone(),
            transport: d.transport.to_string(),
            station: match &d.transport {
                TransportSpec::Dtu(s) => Some(s.clone()),
                _ => None,
            },
            unit_id: d.unit_id,
            network: matches!(d.transport, TransportSpec::Tcp(_) | TransportSpec::RtuOverTcp(_)),
        }
    }
}
