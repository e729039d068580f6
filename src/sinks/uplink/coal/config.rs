//! Settings of the coal-mine file encoder (`encoder = { coal = { … } }` of an uplink) and their
//! pure validation.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::sinks::uplink::config::Place;
use crate::spec::error::ConfigError;

/// Text encoding of the files: fixed by the platform (*site*), so there is no default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// GBK (code page 936), what most provincial collectors of older systems read. A
    /// character GBK cannot hold (an emoji in a location text) is written as `?`.
    #[serde(rename = "gbk")]
    Gbk,
}

/// Whether a point is an analog (MN, 模拟量) or a switch (KG, 开关量) quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ValueType {
    /// Analog: a measured value with a unit, range and set-points.
    #[serde(rename = "MN")]
    Analog,
    /// Switch: 0 or 1 (power-cut feedback, fan on/off, door open); written as an integer.
    #[serde(rename = "KG")]
    Switch,
}

impl ValueType {
    /// The code written in CDDY.
    pub fn code(self) -> &'static str {
        match self {
            ValueType::Analog => "MN",
            ValueType::Switch => "KG",
        }
    }
}

/// `encoder = { type = "coal", … }`: the coal-mine file encoder's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoalSettings {
    /// The mine's code issued by the regulator: the first part of every file name and the first
    /// field of every header. Letters and digits only, since it becomes part of a file name.
    pub mine_code: String,
    /// The mine's registered name, second field of every header.
    pub mine_name: String,
    /// Text encoding the platform reads (*site*).
    pub encoding: TextEncoding,
    /// Decimals written for analog values and set-points unless a point says otherwise.
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// Name of the monitoring system (CDDY `system` field, e.g. the KJ system model).
    #[serde(default)]
    pub system: String,
    /// Point kinds (`methane`) whose high-high set-point is the power-cut set-point: their
    /// high-high alarm sets state bit 2 and is reported as abnormal type 002. For every other
    /// kind high-high is a second alarm level (bit 1, type 001).
    #[serde(default = "default_power_cut_kinds")]
    pub power_cut_kinds: Vec<String>,
    /// Per-point details the gateway's own point description lacks, by gateway point id.
    #[serde(default)]
    pub points: BTreeMap<String, CoalPoint>,
}

/// Coal-specific details of one point.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoalPoint {
    /// Sensor type name as the platform lists it (`甲烷`, `一氧化碳`); default from the point kind.
    pub type_name: Option<String>,
    /// Substation (分站) the sensor is wired to.
    pub substation: Option<String>,
    /// Installation place (安装地点); default from the point's description.
    pub location: Option<String>,
    /// Analog or switch; default: switch for `state` points, analog for the rest.
    pub value_type: Option<ValueType>,
    /// Text of the switch states (`有电/无电`), CDDY `on/off` field.
    pub on_off: Option<String>,
    /// Coordinates in the mine's survey system.
    pub x: Option<f64>,
    /// Coordinates in the mine's survey system.
    pub y: Option<f64>,
    /// Coordinates in the mine's survey system.
    pub z: Option<f64>,
    /// Related points (the power-cut feedback of a methane sensor), as the platform expects.
    pub relation: Option<String>,
    /// Decimals of this point's values.
    pub decimals: Option<u8>,
    /// High alarm clear value; default the high alarm value (the regulations' methane rule:
    /// the alarm ends below the set-point).
    pub high_clear: Option<f64>,
    /// Low alarm clear value; default the low alarm value.
    pub low_clear: Option<f64>,
    /// Power restore value; default the alarm value (methane: restore below the alarm level).
    pub restore: Option<f64>,
}

fn default_decimals() -> u8 {
    2
}

fn default_power_cut_kinds() -> Vec<String> {
    vec!["methane".to_string()]
}

/// Largest number of decimals accepted.
pub const MAX_DECIMALS: u8 = 6;

/// One mistake in the coal settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalProblem {
    /// Key path below the encoder table (`points."8101/face/CH4".location`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Characters that end a field, a record or the file and so may not appear in configured text.
pub const RESERVED: &[char] = &[';', '~', '|', '\r', '\n'];

fn reserved_in(text: &str) -> Option<char> {
    text.chars().find(|c| RESERVED.contains(c))
}

impl CoalSettings {
    /// Checks what serde cannot: returns every problem found (pure, no I/O).
    pub fn validate(&self) -> Vec<CoalProblem> {
        let mut problems = Vec::new();
        let mut push = |key: String, message: String| problems.push(CoalProblem { key, message });
        let code = &self.mine_code;
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            push(
                "mine_code".into(),
                format!("`{code}` must be the regulator's mine code: letters and digits only, not empty"),
            );
        }
        for (key, text) in [("mine_name", &self.mine_name), ("system", &self.system)] {
            if let Some(c) = reserved_in(text) {
                push(key.into(), format!("{c:?} separates fields or records in coal files"));
            }
        }
        if self.decimals > MAX_DECIMALS {
            push("decimals".into(), format!("at most {MAX_DECIMALS} decimals"));
        }
        for (point, p) in &self.points {
            let texts = [
                ("type_name", &p.type_name),
                ("substation", &p.substation),
                ("location", &p.location),
                ("on_off", &p.on_off),
                ("relation", &p.relation),
            ];
            for (field, text) in texts {
                if let Some(c) = text.as_deref().and_then(reserved_in) {
                    push(
                        format!("points.\"{point}\".{field}"),
                        format!("{c:?} separates fields or records in coal files"),
                    );
                }
            }
            if p.decimals.is_some_and(|d| d > MAX_DECIMALS) {
                push(
                    format!("points.\"{point}\".decimals"),
                    format!("at most {MAX_DECIMALS} decimals"),
                );
            }
            for (field, v) in [("x", p.x), ("y", p.y), ("z", p.z), ("high_clear", p.high_clear)]
                .into_iter()
                .chain([("low_clear", p.low_clear), ("restore", p.restore)])
            {
                if v.is_some_and(|v| !v.is_finite()) {
                    push(format!("points.\"{point}\".{field}"), "must be a finite number".into());
                }
            }
        }
        problems
    }

    /// The details configured for `point`, if any.
    pub fn point(&self, point: &str) -> Option<&CoalPoint> {
        self.points.get(point)
    }

    /// Reports every problem at the encoder table's place (config validation).
    pub fn check(&self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        for p in self.validate() {
            errors.push(at.error(&p.key, p.message));
        }
    }

    /// Settings for tests and benches: a mine with no per-point details.
    pub fn for_mine(code: &str, name: &str, encoding: TextEncoding) -> Self {
        Self {
            mine_code: code.to_string(),
            mine_name: name.to_string(),
            encoding,
            decimals: default_decimals(),
            system: String::new(),
            power_cut_kinds: default_power_cut_kinds(),
            points: BTreeMap::new(),
        }
    }
}
