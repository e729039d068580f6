//! What the duty officer reads beside a point's or device's id: a Chinese name, a description
//! and where it is (area, unit, floor), from the config's `[labels]` section. Shown in
//! `/api/v1/points`, `/api/v1/devices` and the console.
//!
//! Why a section of its own, keyed by id: points come from Modbus devices, MQTT
//! subscriptions, OPC UA and DTU stations alike; one table names any of them without
//! touching how each source is configured. Labels are console policy, so a reload applies
//! them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::spec::{ConfigError, SourceText};

/// Where an instrument is, as the plant names its places.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Area, e.g. `液氯储罐区`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Unit or equipment, e.g. `T-101 储罐`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Floor or level, e.g. `2F`, `-350 m 水平`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
}

/// A label as written and as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Name the duty officer knows it by, e.g. `1号液氯储罐 可燃气体`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it is, beyond the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// `[labels]` as written: `[labels.points."<point id>"]`, `[labels.devices."<device name>"]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    /// By point id.
    #[serde(default)]
    pub points: BTreeMap<String, Spanned<Label>>,
    /// By device name, as `/api/v1/devices` shows it.
    #[serde(default)]
    pub devices: BTreeMap<String, Spanned<Label>>,
}

/// The labels of one site, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// By point id.
    pub points: BTreeMap<String, Label>,
    /// By device name.
    pub devices: BTreeMap<String, Label>,
}

/// Checks that every label names a known point or device and that no text is blank; every
/// error names the file, line and key.
pub fn validate<'a>(
    src: &SourceText<'_>,
    raw: &RawLabels,
    points: impl IntoIterator<Item = &'a str>,
    devices: impl IntoIterator<Item = &'a str>,
    errors: &mut Vec<ConfigError>,
) -> Labels {
    let mut out = Labels::default();
    for (kind, table, known, target) in [
        (
            "points",
            &raw.points,
            points.into_iter().collect::<BTreeSet<_>>(),
            &mut out.points,
        ),
        (
            "devices",
            &raw.devices,
            devices.into_iter().collect::<BTreeSet<_>>(),
            &mut out.devices,
        ),
    ] {
        for (id, label) in table {
            let key = format!("labels.{kind}.\"{id}\"");
            if !known.contains(id.as_str()) {
                let what = if kind == "points" { "point" } else { "device" };
                errors.push(src.error(label.span(), key.clone(), format!("no {what} `{id}` in this config")));
            }
            let l = label.get_ref();
            let texts = [
                ("name", l.name.as_deref()),
                ("description", l.description.as_deref()),
                ("location.area", l.location.as_ref().and_then(|p| p.area.as_deref())),
                ("location.unit", l.location.as_ref().and_then(|p| p.unit.as_deref())),
                ("location.floor", l.location.as_ref().and_then(|p| p.floor.as_deref())),
            ];
            for (field, text) in texts {
                if text.is_some_and(|t| t.trim().is_empty()) {
                    errors.push(src.error(
                        label.span(),
                        format!("{key}.{field}"),
                        "must not be blank; leave it out instead",
                    ));
                }
            }
            target.insert(id.clone(), l.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(text: &str) -> Result<Labels, Vec<ConfigError>> {
        #[derive(Deserialize)]
        struct Doc {
            labels: RawLabels,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        let src = SourceText {
            file: Path::new("site.toml"),
            text,
        };
        let mut errors = Vec::new();
        let labels = validate(&src, &doc.labels, ["MHS-001/GT-101"], ["gas-ai-1"], &mut errors);
        if errors.is_empty() { Ok(labels) } else { Err(errors) }
    }

    #[test]
    fn labels_of_known_points_and_devices_are_kept() {
        let labels = check(
            r#"
[labels.points."MHS-001/GT-101"]
name = "1号液氯储罐 可燃气体"
location = { area = "液氯储罐区", unit = "T-101", floor = "1F" }
[labels.devices.gas-ai-1]
name = "气体报警控制器"
"#,
        )
        .unwrap();
        let p = &labels.points["MHS-001/GT-101"];
        assert_eq!(p.name.as_deref(), Some("1号液氯储罐 可燃气体"));
        assert_eq!(p.location.as_ref().and_then(|l| l.floor.as_deref()), Some("1F"));
        assert_eq!(labels.devices["gas-ai-1"].name.as_deref(), Some("气体报警控制器"));
    }

    #[test]
    fn unknown_ids_and_blank_texts_are_located() {
        let errors =
            check("[labels.points.\"MHS-001/GT-999\"]\nname = \"x\"\n[labels.devices.gas-ai-1]\nname = \" \"\n")
                .unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("site.toml:1:1: ") && shown[0].contains("labels.points.\"MHS-001/GT-999\""),
            "{shown:?}"
        );
        assert!(shown[0].contains("no point `MHS-001/GT-999`"), "{shown:?}");
        assert!(
            shown[1].starts_with("site.toml:3:1: labels.devices.\"gas-ai-1\".name") && shown[1].contains("blank"),
            "{shown:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let text = "[labels.points.\"MHS-001/GT-101\"]\ntitle = \"x\"\n";
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            labels: RawLabels,
        }
        let err = toml::from_str::<Doc>(text).unwrap_err().to_string();
        assert!(err.contains("unknown field `title`"), "{err}");
    }
}
