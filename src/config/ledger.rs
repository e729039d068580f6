//! Each point's expected reading interval, from the source that feeds it, for the completeness
//! ledger: a polled device's poll period, an MQTT subscription's declared `interval`, an OPC UA
//! item's sampling interval.

use std::time::Duration;

use crate::api::policy::Intervals;
use crate::model::{PointId, PointTable};
use crate::sources::modbus::spec::DeviceSpec;
use crate::sources::mqtt::MqttInSpec;
use crate::sources::opcua::OpcuaSpec;

/// Each point's expected interval, by point index; a point fed by more than one source keeps
/// the shortest.
pub(super) fn expected_intervals(
    points: &PointTable,
    devices: &[DeviceSpec],
    mqtt: &MqttInSpec,
    opcua: &OpcuaSpec,
) -> Intervals {
    let mut out: Vec<Option<Duration>> = vec![None; points.len()];
    let mut put_id = |id: PointId, d: Duration| {
        if let Some(e) = out.get_mut(id.index()) {
            *e = Some(e.map_or(d, |e| e.min(d)));
        }
    };
    for dev in devices {
        for id in dev.points.iter() {
            put_id(*id, dev.interval);
        }
    }
    // Every source's points are in the table by now; a name that is not has no point to
    // expect readings of.
    let mut put = |name: &str, d: Duration| {
        if let Some(id) = points.id_of(name) {
            put_id(id, d);
        }
    };
    for sub in &mqtt.subscriptions {
        for (name, _) in &sub.points {
            put(name, sub.interval);
        }
    }
    for item in &opcua.items {
        put(&item.point_name, item.sampling_interval);
    }
    Intervals::new(out.into_iter().collect())
}
