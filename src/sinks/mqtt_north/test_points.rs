//! Point tables for the unit tests of the readings encodings.

use crate::model::{PointKind, PointMeta, PointTable};

/// Gas points named by `(id, device, hazard source)`, all in %LEL over `range`.
pub(super) fn gas_table(rows: &[(&str, &str, Option<&str>)], range: Option<(f64, f64)>) -> PointTable {
    let mut t = PointTable::default();
    for &(name, device, hs) in rows {
        t.insert(PointMeta {
            name: name.into(),
            unit: "%LEL".into(),
            kind: PointKind::Gas,
            device: device.into(),
            hazard_source: hs.map(Into::into),
            range,
            description: None,
        })
        .expect("test point ids are unique");
    }
    t
}
