//! Checks of Modbus transports: addresses, serial settings, and serial buses shared by
//! several devices (one port is one half-duplex bus with one set of settings).

use std::collections::HashMap;

use super::raw::{RawConfig, RawDevice, RawTransport};
use super::{DeviceSpec, SerialSpec, TransportSpec};
use crate::spec::error::{ConfigError, SourceText};

pub(super) fn check_transport(
    src: &SourceText<'_>,
    i: usize,
    d: &RawDevice,
    errors: &mut Vec<ConfigError>,
) -> Option<TransportSpec> {
    let span = d.transport.span();
    let before = errors.len();
    let mut err = |field: &str, msg: String| {
        errors.push(src.error(span.clone(), format!("devices[{i}].transport.{field}"), msg));
    };
    let spec = match d.transport.get_ref() {
        RawTransport::Tcp(addr) | RawTransport::RtuOverTcp(addr) => {
            let (kind, spec) = match d.transport.get_ref() {
                RawTransport::Tcp(_) => ("tcp", TransportSpec::Tcp(addr.clone())),
                _ => ("rtu_over_tcp", TransportSpec::RtuOverTcp(addr.clone())),
            };
            if !has_port(addr) {
                err(kind, format!("`{addr}` is not host:port (e.g. \"192.168.10.21:502\")"));
            }
            spec
        }
        // The station is checked with the `[dtu]` section (`super::dtu::validate`).
        RawTransport::Dtu(station) => TransportSpec::Dtu(station.clone()),
        RawTransport::Rtu(s) => {
            if s.port.trim().is_empty() {
                err("rtu.port", "port must name a serial device, e.g. \"/dev/ttyS1\"".into());
            }
            if s.baud == 0 {
                err("rtu.baud", "baud must be a positive number of bits per second".into());
            }
            if !(7..=8).contains(&s.data_bits) {
                err(
                    "rtu.data_bits",
                    format!("data_bits must be 7 or 8, got {}", s.data_bits),
                );
            }
            if !(1..=2).contains(&s.stop_bits) {
                err(
                    "rtu.stop_bits",
                    format!("stop_bits must be 1 or 2, got {}", s.stop_bits),
                );
            }
            TransportSpec::Rtu(SerialSpec {
                port: s.port.clone(),
                baud: s.baud,
                parity: s.parity,
                data_bits: s.data_bits,
                stop_bits: s.stop_bits,
            })
        }
    };
    check_unit_id(src, i, d, &spec, errors);
    (errors.len() == before).then_some(spec)
}

/// Unit ids as the Modbus specification allows them per transport. In RTU frames (a serial
/// line, RTU over TCP, a dialled-in DTU) 1..=247 address devices, 0 is broadcast (never
/// answered) and 248..=255 are reserved. Over Modbus TCP a device ignores the unit id, and a
/// TCP-to-RTU gateway reads it as the serial address behind it, so 1..=247 are valid and 0
/// and 255 are accepted for devices and gateways that ask for them (255 is what the
/// specification recommends for a device addressed by IP alone); 248..=254 stay reserved.
fn check_unit_id(src: &SourceText<'_>, i: usize, d: &RawDevice, spec: &TransportSpec, errors: &mut Vec<ConfigError>) {
    let unit = *d.unit_id.get_ref();
    let msg = match spec {
        TransportSpec::Tcp(_) if matches!(unit, 0..=247 | 255) => return,
        TransportSpec::Tcp(_) => format!(
            "a Modbus TCP unit id must be 1..=247, or 0 or 255 for a device addressed by IP alone; {unit} is reserved"
        ),
        _ if (1..=247).contains(&unit) => return,
        _ => format!(
            "an RTU unit id ({}) must be 1..=247 (0 is broadcast, never answered; 248..=255 are reserved), got {unit}",
            spec.kind()
        ),
    };
    errors.push(src.error(
        super::validate::at_key(d.unit_id.span(), &d.name),
        format!("devices[{i}].unit_id"),
        msg,
    ));
}

/// Warns about two devices polling one unit id at one Modbus TCP address: allowed (one
/// instrument may be read under two profiles), but more often a copied block whose unit id
/// was not changed, so one of them reads the wrong instrument.
pub(super) fn shared_tcp_units(src: &SourceText<'_>, raw: &RawConfig, devices: &[DeviceSpec]) -> Vec<ConfigError> {
    let mut seen: HashMap<(&str, u8), &str> = HashMap::new();
    let mut out = Vec::new();
    for dev in devices {
        let TransportSpec::Tcp(addr) = &dev.transport else {
            continue;
        };
        let first = match seen.entry((addr.as_str(), dev.unit_id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(dev.name.as_str());
                continue;
            }
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
        };
        let Some(i) = raw.devices.iter().position(|d| d.get_ref().name.get_ref() == &dev.name) else {
            continue;
        };
        let d = raw.devices[i].get_ref();
        out.push(src.error(
            super::validate::at_key(d.unit_id.span(), &d.name),
            format!("devices[{i}].unit_id"),
            format!(
                "warning: `{}` and `{first}` both poll unit {} at {addr}; fine if they read one instrument twice, otherwise give each its own unit id",
                dev.name, dev.unit_id
            ),
        ));
    }
    out
}

/// Devices on one serial port share one half-duplex bus: they must agree on its settings,
/// and two of them must not both be unit `n`.
pub(super) fn check_serial_buses(
    src: &SourceText<'_>,
    raw: &RawConfig,
    devices: &[DeviceSpec],
    errors: &mut Vec<ConfigError>,
) {
    let mut by_port: HashMap<&str, (&DeviceSpec, &SerialSpec)> = HashMap::new();
    let mut units: HashMap<(&str, u8), &str> = HashMap::new();
    let index_of = |name: &str| raw.devices.iter().position(|d| d.get_ref().name.get_ref() == name);
    for dev in devices {
        let TransportSpec::Rtu(serial) = &dev.transport else {
            continue;
        };
        let Some(i) = index_of(&dev.name) else { continue };
        let span = raw.devices[i].get_ref().transport.span();
        match by_port.get(serial.port.as_str()) {
            Some((first, settings)) if *settings != serial => errors.push(src.error(
                span.clone(),
                format!("devices[{i}].transport.rtu"),
                format!(
                    "serial port `{}` is claimed by two buses with different settings: device `{}` uses {}, device `{}` uses {}; devices on one port share one bus and its settings",
                    serial.port, first.name, first.transport, dev.name, dev.transport
                ),
            )),
            Some(_) => {}
            None => {
                by_port.insert(serial.port.as_str(), (dev, serial));
            }
        }
        if let Some(other) = units.insert((serial.port.as_str(), dev.unit_id), dev.name.as_str()) {
            let d = raw.devices[i].get_ref();
            errors.push(src.error(
                super::validate::at_key(d.unit_id.span(), &d.name),
                format!("devices[{i}].unit_id"),
                format!(
                    "devices `{other}` and `{}` are both unit {} on serial port `{}`",
                    dev.name, dev.unit_id, serial.port
                ),
            ));
        }
    }
}

fn has_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}
