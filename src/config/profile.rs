//! Device profiles: one TOML file per device model with its register map, units, point kinds,
//! default alarm set-points and simulator signals.
//!
//! The profiles in `device-profiles/` are compiled into the binary, so a gateway on a plant IPC
//! knows the standard instruments without extra files; `gateway.profile_dirs` adds or overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::profile_check::{CheckedPoint, check_drills, check_overlaps, scenarios};
use super::rules::ThresholdConfig;
use crate::model::PointKind;
use crate::sources::modbus::planner::{MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, ReadLimits};
use crate::sources::modbus::register::{DataType, RegisterFunction, RegisterSpec, Scaling, TypeName, WordOrder};
use crate::sources::sim::ScenarioSet;
use crate::sources::sim::scenario::{EpisodeConfig, PointDrill, ScenarioKind, SimModel};
use crate::sources::sim::signal::SimSignal;
use crate::spec::error::{ConfigError, SourceText};

/// Profiles built into the binary: (name, text).
const BUILTIN: &[(&str, &str)] = &[
    ("ai4-gas-lel", include_str!("../../device-profiles/ai4-gas-lel.toml")),
    ("ai4-ma", include_str!("../../device-profiles/ai4-ma.toml")),
    ("ai8-ma", include_str!("../../device-profiles/ai8-ma.toml")),
    ("beach-length", include_str!("../../device-profiles/beach-length.toml")),
    (
        "gas-cl2-detector",
        include_str!("../../device-profiles/gas-cl2-detector.toml"),
    ),
    (
        "gas-co-detector",
        include_str!("../../device-profiles/gas-co-detector.toml"),
    ),
    (
        "gas-h2s-detector",
        include_str!("../../device-profiles/gas-h2s-detector.toml"),
    ),
    (
        "gas-lel-detector",
        include_str!("../../device-profiles/gas-lel-detector.toml"),
    ),
    (
        "gas-nh3-detector",
        include_str!("../../device-profiles/gas-nh3-detector.toml"),
    ),
    (
        "gnss-displacement",
        include_str!("../../device-profiles/gnss-displacement.toml"),
    ),
    (
        "high-level-switch",
        include_str!("../../device-profiles/high-level-switch.toml"),
    ),
    (
        "mine-air-velocity",
        include_str!("../../device-profiles/mine-air-velocity.toml"),
    ),
    ("mine-ch4", include_str!("../../device-profiles/mine-ch4.toml")),
    ("mine-co", include_str!("../../device-profiles/mine-co.toml")),
    ("piezometer", include_str!("../../device-profiles/piezometer.toml")),
    (
        "pressure-transmitter",
        include_str!("../../device-profiles/pressure-transmitter.toml"),
    ),
    ("radar-level", include_str!("../../device-profiles/radar-level.toml")),
    ("rain-gauge", include_str!("../../device-profiles/rain-gauge.toml")),
    (
        "reservoir-level",
        include_str!("../../device-profiles/reservoir-level.toml"),
    ),
    ("tank-ltp", include_str!("../../device-profiles/tank-ltp.toml")),
    (
        "temperature-transmitter",
        include_str!("../../device-profiles/temperature-transmitter.toml"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    profile: RawHeader,
    points: BTreeMap<String, toml::Spanned<RawPoint>>,
    /// Timing and targets of the drills, where the defaults do not fit the instrument.
    #[serde(default)]
    scenarios: BTreeMap<ScenarioKind, toml::Spanned<EpisodeConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    description: String,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default = "default_max_registers")]
    max_registers: u16,
    #[serde(default = "default_max_bits")]
    max_bits: u16,
    #[serde(default)]
    max_gap: u16,
    /// Byte/word order of points that do not set their own.
    #[serde(default)]
    word_order: WordOrder,
}

fn default_max_bits() -> u16 {
    MAX_BITS_PER_READ
}

fn default_max_registers() -> u16 {
    MAX_REGISTERS_PER_READ
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    #[serde(default)]
    description: Option<String>,
    function: RegisterFunction,
    address: u16,
    #[serde(rename = "type")]
    data_type: TypeName,
    /// Bit number (0 = least significant) for type `bit`.
    #[serde(default)]
    bit: Option<u8>,
    /// Registers of an `ascii` point.
    #[serde(default)]
    length: Option<u8>,
    #[serde(default)]
    word_order: Option<WordOrder>,
    #[serde(default = "one")]
    scale: f64,
    #[serde(default)]
    offset: f64,
    #[serde(default)]
    raw_range: Option<[f64; 2]>,
    #[serde(default)]
    range: Option<[f64; 2]>,
    unit: String,
    kind: PointKind,
    #[serde(default)]
    setpoints: Option<toml::Spanned<ThresholdConfig>>,
    #[serde(default)]
    sim: Option<SimModel>,
}

/// One point of a device model.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilePoint {
    /// Key in the profile (`ch1`, `level`).
    pub key: String,
    /// What it is (channel, instrument).
    pub description: Option<String>,
    /// Where and how it is read.
    pub register: RegisterSpec,
    /// True if the profile fixes this point's word order (a device-wide override skips it).
    pub word_order_fixed: bool,
    /// Engineering unit.
    pub unit: String,
    /// What it measures.
    pub kind: PointKind,
    /// Default alarm set-points, e.g. a gas detector's first and second alarm levels.
    pub setpoints: Option<ThresholdConfig>,
    /// Simulated everyday behaviour.
    pub sim: SimSignal,
    /// Part in the drills (excursion, fault value, status bit behaviour).
    pub drill: PointDrill,
}

/// A validated device model.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile name (file stem).
    pub name: String,
    /// What the device is.
    pub description: String,
    /// Maker, if the profile is for one vendor's model.
    pub vendor: Option<String>,
    /// Request limits of the device.
    pub limits: ReadLimits,
    /// Points in key order.
    pub points: Vec<ProfilePoint>,
    /// Drills the simulator can play on this device.
    pub scenarios: ScenarioSet,
}

/// The simulator serves a profile's registers, signals and drills.
impl From<Profile> for crate::sources::sim::SimProfile {
    fn from(p: Profile) -> Self {
        Self {
            name: p.name,
            points: p
                .points
                .into_iter()
                .map(|pt| crate::sources::sim::SimPoint {
                    key: pt.key,
                    register: pt.register,
                    sim: pt.sim,
                    drill: pt.drill,
                })
                .collect(),
            scenarios: p.scenarios,
        }
    }
}

impl From<&Profile> for crate::sources::sim::SimProfile {
    fn from(p: &Profile) -> Self {
        p.clone().into()
    }
}

impl Profile {
    /// A point by key.
    pub fn point(&self, key: &str) -> Option<&ProfilePoint> {
        self.points.iter().find(|p| p.key == key)
    }

    /// Parses and validates a profile's text; `file` is only used in errors.
    pub fn parse(name: &str, file: &Path, text: &str) -> Result<Profile, Vec<ConfigError>> {
        let src = SourceText::new(file, text);
        let raw: RawProfile = toml::from_str(text).map_err(|e| vec![src.from_toml(&e)])?;
        let mut errors = Vec::new();
        let h = &raw.profile;
        if h.max_registers == 0 || h.max_registers > MAX_REGISTERS_PER_READ {
            errors.push(src.file_error(format!(
                "profile.max_registers must be 1..={MAX_REGISTERS_PER_READ}, got {}",
                h.max_registers
            )));
        }
        if h.max_bits == 0 || h.max_bits > MAX_BITS_PER_READ {
            errors.push(src.file_error(format!(
                "profile.max_bits must be 1..={MAX_BITS_PER_READ}, got {}",
                h.max_bits
            )));
        }
        if raw.points.is_empty() {
            errors.push(src.file_error("a profile needs at least one entry under [points]"));
        }
        let mut points = Vec::new();
        for (key, spanned) in &raw.points {
            match build_point(&src, key, spanned, h.word_order) {
                Ok(p) => points.push(p),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let checked: Vec<CheckedPoint<'_>> = points
            .iter()
            .zip(raw.points.values())
            .map(|(point, raw)| CheckedPoint {
                point,
                span: raw.span(),
                model: raw.get_ref().sim.as_ref(),
            })
            .collect();
        check_overlaps(&src, &checked, &mut errors);
        let drills = check_drills(&src, &checked, &mut errors);
        drop(checked);
        for (p, d) in points.iter_mut().zip(drills) {
            p.drill = d;
        }
        let drills: Vec<PointDrill> = points.iter().map(|p| p.drill.clone()).collect();
        let scenarios = scenarios(&src, &points, &drills, &raw.scenarios, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Profile {
            name: name.to_string(),
            description: h.description.clone(),
            vendor: h.vendor.clone(),
            limits: ReadLimits {
                max_registers: h.max_registers,
                max_bits: h.max_bits,
                max_gap: h.max_gap,
            },
            points,
            scenarios,
        })
    }
}

fn build_point(
    src: &SourceText<'_>,
    key: &str,
    spanned: &toml::Spanned<RawPoint>,
    default_order: WordOrder,
) -> Result<ProfilePoint, Vec<ConfigError>> {
    let p = spanned.get_ref();
    let at = |field: &str, msg: String| src.error(spanned.span(), format!("points.{key}.{field}"), msg);
    let mut errors = Vec::new();
    let scaling = match (p.raw_range, p.range) {
        (Some([r0, r1]), Some([e0, e1])) if r0 != r1 && e0 != e1 => Scaling::Range {
            raw: (r0, r1),
            eng: (e0, e1),
        },
        (Some(_), None) => {
            errors.push(at(
                "raw_range",
                "raw_range needs an engineering `range` to map onto".into(),
            ));
            Scaling::Linear {
                scale: 1.0,
                offset: 0.0,
            }
        }
        (Some(_), Some(_)) => {
            errors.push(at(
                "raw_range",
                "raw_range and range must each span a non-zero interval".into(),
            ));
            Scaling::Linear {
                scale: 1.0,
                offset: 0.0,
            }
        }
        (None, _) => Scaling::Linear {
            scale: p.scale,
            offset: p.offset,
        },
    };
    if p.scale == 0.0 || !p.scale.is_finite() {
        errors.push(at("scale", format!("scale must be a non-zero number, got {}", p.scale)));
    }
    let range = p.range.map(|[lo, hi]| (lo.min(hi), lo.max(hi)));
    let data_type = DataType::from_parts(p.data_type, p.bit, p.length).unwrap_or_else(|msg| {
        errors.push(at("type", msg));
        DataType::U16
    });
    let register = RegisterSpec {
        function: p.function,
        address: p.address,
        data_type,
        word_order: p.word_order.unwrap_or(default_order),
        scaling,
        range,
    };
    if let Some(msg) = register.table_mismatch() {
        errors.push(at("type", msg));
    }
    if register.end() > 0x1_0000 {
        errors.push(at(
            "address",
            format!("{} at {} runs past address 65535", data_type.as_str(), p.address),
        ));
    }
    let setpoints = p.setpoints.as_ref().map(|s| s.get_ref().clone());
    if let Some(sp) = &p.setpoints {
        let span = sp.span();
        for msg in sp.get_ref().problems(range) {
            errors.push(src.error(span.clone(), format!("points.{key}.setpoints"), msg));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ProfilePoint {
        key: key.to_string(),
        description: p.description.clone(),
        register,
        word_order_fixed: p.word_order.is_some(),
        unit: p.unit.clone(),
        kind: p.kind,
        setpoints,
        sim: p.sim.as_ref().map(SimModel::signal).unwrap_or_default(),
        drill: PointDrill::default(),
    })
}

/// Every profile the gateway knows, by name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// The profiles compiled into the binary.
    pub fn builtin() -> Result<ProfileSet, Vec<ConfigError>> {
        let mut set = ProfileSet::default();
        let mut errors = Vec::new();
        for (name, text) in BUILTIN {
            let file = PathBuf::from(format!("device-profiles/{name}.toml"));
            match Profile::parse(name, &file, text) {
                Ok(p) => {
                    set.profiles.insert(p.name.clone(), p);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() { Ok(set) } else { Err(errors) }
    }

    /// Adds every `*.toml` in `dir`, replacing built-in profiles of the same name.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), Vec<ConfigError>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![ConfigError {
                file: dir.to_path_buf(),
                position: None,
                key: String::new(),
                message: format!("cannot read profile directory: {e}"),
            }]
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut errors = Vec::new();
        for path in paths {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(SourceText::new(&path, "").file_error(format!("cannot read: {e}")));
                    continue;
                }
            };
            match Profile::parse(&name, &path, &text) {
                Ok(p) => {
                    self.profiles.insert(name, p);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// A profile by name.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// All profiles in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// Names of all profiles, for "did you mean" messages.
    pub fn names(&self) -> Vec<&str> {
        self.profiles.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load() {
        let set = ProfileSet::builtin().expect("built-in profiles are valid");
        let gas = set.get("ai4-gas-lel").unwrap();
        assert_eq!(gas.points.len(), 4);
        assert!(
            gas.points
                .iter()
                .all(|p| p.kind == PointKind::Gas && p.setpoints.is_some())
        );
        assert!(set.get("tank-ltp").is_some());
    }

    #[test]
    fn every_file_in_device_profiles_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
        let mut on_disk = ProfileSet::default();
        on_disk.load_dir(&dir).expect("profiles on disk are valid");
        let builtin = ProfileSet::builtin().unwrap();
        assert_eq!(on_disk.names(), builtin.names());
    }

    #[test]
    fn a_bad_profile_names_the_point_and_field() {
        let text = "[profile]\ndescription = \"x\"\n\n[points.ch1]\nfunction = \"holding\"\naddress = 65535\ntype = \"f32\"\nunit = \"m\"\nkind = \"level\"\nraw_range = [0, 10]\n";
        let errs = Profile::parse("x", Path::new("x.toml"), text).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"points.ch1.raw_range"), "{errs:?}");
        assert!(keys.contains(&"points.ch1.address"), "{errs:?}");
        assert_eq!(errs[0].position.unwrap().0, 4);
    }

    #[test]
    fn an_unknown_data_type_is_reported_with_its_line() {
        let text = "[profile]\ndescription = \"x\"\n[points.ch1]\nfunction = \"holding\"\naddress = 0\ntype = \"u12\"\nunit = \"m\"\nkind = \"level\"\n";
        let errs = Profile::parse("x", Path::new("x.toml"), text).unwrap_err();
        assert_eq!(errs[0].position.unwrap().0, 6, "{errs:?}");
        assert!(errs[0].message.contains("u12"), "{errs:?}");
    }
}
