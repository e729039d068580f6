//! Each point's expected reading interval, from the source that feeds it, for the completeness
//! ledger: a polled device's poll period, an MQTT subscription's declared `interval`, an OPC UA
//! item's sampling interval.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::api::policy::Intervals;
use crate::model::PointTable;
use crate::sources::modbus::spec::DeviceSpec;
use crate::sources::mqtt::MqttInSpec;
use crate::sources::opcua::OpcuaSpec;

/// Point id to expected interval; a point fed by more than one source keeps the shortest.
pub(super) fn expected_intervals(
    points: &PointTable,
    devices: &[DeviceSpec],
    mqtt: &MqttInSpec,
    opcua: &OpcuaSpec,
) -> Intervals {
    let mut out: BTreeMap<Arc<str>, Duration> = BTreeMap::new();
    // Keys share the point table's names where it has them.
    let mut put = |name: &str, d: Duration| {
        let key = points
            .id_of(name)
            .map_or_else(|| Arc::from(name), |id| points.meta(id).name.clone());
        out.entry(key).and_modify(|e| *e = (*e).min(d)).or_insert(d);
    };
    for dev in devices {
        for id in dev.points.iter() {
            put(&points.meta(*id).name, dev.interval);
        }
    }
    for sub in &mqtt.subscriptions {
        for (name, _) in &sub.points {
            put(name, sub.interval);
        }
    }
    for item in &opcua.items {
        put(&item.point_name, item.sampling_interval);
    }
    Arc::new(out)
}
