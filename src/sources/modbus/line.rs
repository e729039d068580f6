//! Which devices share a link: one serial port is one half-duplex bus, one TCP (or RTU over
//! TCP) address is one connection, whatever unit ids sit behind it. Pure grouping of the
//! validated config; the poller runs one task per line.

use super::spec::{DeviceSpec, TransportSpec};

/// Devices that share one link, grouped from the config.
#[derive(Debug, Clone)]
pub struct LineSpec {
    /// Where the link goes.
    pub transport: TransportSpec,
    /// Indexes into the gateway's device list (and its [`HealthBoard`]).
    pub devices: Vec<usize>,
}

/// Groups devices by link: one serial port is one bus; one TCP (or RTU-over-TCP) address is
/// one connection, whatever unit ids sit behind it.
pub fn group_lines(devices: &[DeviceSpec]) -> Vec<LineSpec> {
    let mut lines: Vec<LineSpec> = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let same = |l: &&mut LineSpec| {
            l.transport.kind() == d.transport.kind() && l.transport.endpoint() == d.transport.endpoint()
        };
        match lines.iter_mut().find(|l| same(l)) {
            Some(l) => l.devices.push(i),
            None => lines.push(LineSpec {
                transport: d.transport.clone(),
                devices: vec![i],
            }),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::planner::ReadLimits;
    use crate::sources::modbus::spec::{Parity, SerialSpec};
    use std::time::Duration;

    fn dev(name: &str, transport: TransportSpec, unit_id: u8) -> DeviceSpec {
        DeviceSpec {
            name: name.into(),
            profile: "p".into(),
            transport,
            unit_id,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 0,
            inter_request_delay: Duration::ZERO,
            limits: ReadLimits::default(),
            points: Vec::new().into(),
            registers: Vec::new().into(),
        }
    }

    #[test]
    fn a_serial_port_and_a_tcp_address_each_make_one_line() {
        let bus = TransportSpec::Rtu(SerialSpec {
            port: "/dev/ttyS1".into(),
            baud: 9600,
            parity: Parity::None,
            data_bits: 8,
            stop_bits: 1,
        });
        let devices = [
            dev("a", bus.clone(), 1),
            dev("b", TransportSpec::Tcp("10.0.0.1:502".into()), 1),
            dev("c", bus, 2),
            dev("d", TransportSpec::Tcp("10.0.0.1:502".into()), 2),
            dev("e", TransportSpec::RtuOverTcp("10.0.0.1:502".into()), 3),
        ];
        let lines: Vec<Vec<usize>> = group_lines(&devices).into_iter().map(|l| l.devices).collect();
        assert_eq!(lines, vec![vec![0, 2], vec![1, 3], vec![4]]);
    }
}
