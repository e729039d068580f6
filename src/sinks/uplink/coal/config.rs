//! Settings of the coal-mine file encoder (`encoder = { coal = { … } }` of an uplink) and their
//! pure validation.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

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

/// The coal-mine file encoder's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoalSettings {
    /// The mine's code issued by the regulator: the first part of every file name and the first
    /// field of every header. Letters and digits only, since it becomes part of a file name.
    pub mine_code: Spanned<String>,
    /// The mine's registered name, second field of every header.
    pub mine_name: Spanned<String>,
    /// Text encoding the platform reads (*site*).
    pub encoding: TextEncoding,
    /// Decimals written for analog values and set-points unless a point says otherwise.
    #[serde(default = "default_decimals")]
    pub decimals: Spanned<u8>,
    /// Name of the monitoring system (CDDY `system` field, e.g. the KJ system model).
    #[serde(default = "empty_text")]
    pub system: Spanned<String>,
    /// Point kinds (`methane`) whose high-high set-point is the power-cut set-point: their
    /// high-high alarm sets state bit 2 and is reported as abnormal type 002. For every other
    /// kind high-high is a second alarm level (bit 1, type 001).
    #[serde(default = "default_power_cut_kinds")]
    pub power_cut_kinds: Vec<String>,
    /// Per-point details the gateway's own point description lacks, by gateway point id.
    #[serde(default)]
    pub points: BTreeMap<String, Spanned<CoalPoint>>,
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

fn default_decimals() -> Spanned<u8> {
    Spanned::new(0..0, 2)
}

fn empty_text() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

fn default_power_cut_kinds() -> Vec<String> {
    vec!["methane".to_string()]
}

/// Largest number of decimals accepted.
pub const MAX_DECIMALS: u8 = 6;

/// One mistake in the coal settings: a key below the encoder table and its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalProblem {
    /// Key path below `encoder.coal` (`points."8101/face/CH4".location`).
    pub key: String,
    /// Byte span in the config file (empty when the value came from a default).
    pub span: Range<usize>,
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
        let mut push =
            |key: String, span: Range<usize>, message: String| problems.push(CoalProblem { key, span, message });
        let code = self.mine_code.get_ref();
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            push(
                "mine_code".into(),
                self.mine_code.span(),
                format!("`{code}` must be the regulator's mine code: letters and digits only, not empty"),
            );
        }
        for (key, text) in [("mine_name", &self.mine_name), ("system", &self.system)] {
            if let Some(c) = reserved_in(text.get_ref()) {
                push(
                    key.into(),
                    text.span(),
                    format!("{c:?} separates fields or records in coal files"),
                );
            }
        }
        if *self.decimals.get_ref() > MAX_DECIMALS {
            push(
                "decimals".into(),
                self.decimals.span(),
                format!("at most {MAX_DECIMALS} decimals"),
            );
        }
        for (point, spec) in &self.points {
            let p = spec.get_ref();
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
                        spec.span(),
                        format!("{c:?} separates fields or records in coal files"),
                    );
                }
            }
            if p.decimals.is_some_and(|d| d > MAX_DECIMALS) {
                push(
                    format!("points.\"{point}\".decimals"),
                    spec.span(),
                    format!("at most {MAX_DECIMALS} decimals"),
                );
            }
            for (field, v) in [("x", p.x), ("y", p.y), ("z", p.z), ("high_clear", p.high_clear)]
                .into_iter()
                .chain([("low_clear", p.low_clear), ("restore", p.restore)])
            {
                if v.is_some_and(|v| !v.is_finite()) {
                    push(
                        format!("points.\"{point}\".{field}"),
                        spec.span(),
                        "must be a finite number".into(),
                    );
                }
            }
        }
        problems
    }

    /// The details configured for `point`, if any.
    pub fn point(&self, point: &str) -> Option<&CoalPoint> {
        self.points.get(point).map(|s| s.get_ref())
    }

    /// Settings for tests and benches: a mine with no per-point details.
    pub fn for_mine(code: &str, name: &str, encoding: TextEncoding) -> Self {
        Self {
            mine_code: Spanned::new(0..0, code.to_string()),
            mine_name: Spanned::new(0..0, name.to_string()),
            encoding,
            decimals: default_decimals(),
            system: Spanned::new(0..0, String::new()),
            power_cut_kinds: default_power_cut_kinds(),
            points: BTreeMap::new(),
        }
    }
}
