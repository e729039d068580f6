//! `[kpi]`: the site's UTC offset, the fleeting threshold, how many bad actors to list, and the
//! operator positions (`[[kpi.positions]]`) that share the alarm load.
//!
//! ```toml
//! [kpi]
//! utc_offset = "+08:00"
//! fleeting = "1s"
//! top = 10
//!
//! [[kpi.positions]]
//! name = "中控室一"
//! hazard_sources = ["MHS-001", "MHS-002"]
//! ```

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::UtcOffset;
use crate::spec::units::DurationText;
use crate::spec::{ConfigError, SourceText};

/// Default fleeting threshold: an activation that clears within 1 s was over before anyone
/// could look at it.
pub const DEFAULT_FLEETING: Duration = Duration::from_secs(1);
/// Default number of bad actors (ISA-18.2 judges the top 10).
pub const DEFAULT_TOP: usize = 10;
/// Most bad actors listed.
const MAX_TOP: usize = 100;
/// Longest fleeting threshold accepted.
const MAX_FLEETING: Duration = Duration::from_secs(3600);

/// `[kpi]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKpi {
    /// Offset of site-local time from UTC (`"+08:00"`, the default): days, shifts and weeks
    /// are local.
    #[serde(default)]
    pub utc_offset: Option<Spanned<String>>,
    /// An activation that clears sooner than this is fleeting (default `"1s"`).
    #[serde(default)]
    pub fleeting: Option<Spanned<DurationText>>,
    /// How many of the most frequent alarms to list (default 10).
    #[serde(default)]
    pub top: Option<Spanned<i64>>,
    /// Name of the position that takes alarms of hazard sources no position lists (default
    /// `"unassigned"`, or `"site"` when no positions are given).
    #[serde(default)]
    pub default_position: Option<Spanned<String>>,
    /// Operator positions, each watching the alarms of its hazard sources.
    #[serde(default)]
    pub positions: Vec<Spanned<RawPosition>>,
}

/// `[[kpi.positions]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPosition {
    /// The position's name (e.g. `中控室一`).
    pub name: Spanned<String>,
    /// Hazard source codes whose alarms this position answers.
    #[serde(default)]
    pub hazard_sources: Vec<Spanned<String>>,
}

/// An operator position: one console operator's share of the alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Its name.
    pub name: String,
    /// The hazard sources it answers.
    pub hazard_sources: Vec<String>,
}

/// The validated `[kpi]`, plus the shift starts of `[console] shifts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiSettings {
    /// Site-local time.
    pub utc_offset: UtcOffset,
    /// Shift starts, minutes after local midnight, ascending; empty: no shift groups.
    pub shifts: Vec<u16>,
    /// Operator positions; empty: one position for everything.
    pub positions: Vec<Position>,
    /// The position of alarms no position lists.
    pub default_position: String,
    /// Fleeting threshold.
    pub fleeting: Duration,
    /// Bad actors listed.
    pub top: usize,
    /// Hazard source to position index.
    index: HashMap<String, usize>,
}

impl Default for KpiSettings {
    fn default() -> Self {
        KpiSettings::new(
            UtcOffset::CHINA,
            Vec::new(),
            Vec::new(),
            None,
            DEFAULT_FLEETING,
            DEFAULT_TOP,
        )
    }
}

impl KpiSettings {
    /// Settings from validated parts.
    pub fn new(
        utc_offset: UtcOffset,
        shifts: Vec<u16>,
        positions: Vec<Position>,
        default_position: Option<String>,
        fleeting: Duration,
        top: usize,
    ) -> Self {
        let index = positions
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.hazard_sources.iter().map(move |h| (h.clone(), i)))
            .collect();
        let default_position =
            default_position.unwrap_or_else(|| if positions.is_empty() { "site" } else { "unassigned" }.to_string());
        KpiSettings {
            utc_offset,
            shifts,
            positions,
            default_position,
            fleeting,
            top,
            index,
        }
    }

    /// The position that answers alarms of `hazard_source`.
    pub fn position_of(&self, hazard_source: Option<&str>) -> &str {
        hazard_source
            .and_then(|h| self.index.get(h))
            .and_then(|&i| self.positions.get(i))
            .map_or(self.default_position.as_str(), |p| p.name.as_str())
    }

    /// Every position's name, the default one last (unless a listed position has its name).
    pub fn position_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.positions.iter().map(|p| p.name.as_str()).collect();
        if !names.contains(&self.default_position.as_str()) {
            names.push(&self.default_position);
        }
        names
    }

    /// Whether `name` is a position.
    pub fn has_position(&self, name: &str) -> bool {
        self.position_names().contains(&name)
    }
}

/// Validates `[kpi]` against the known hazard sources; `shifts` come from `[console] shifts`.
pub fn validate(
    src: &SourceText<'_>,
    raw: &RawKpi,
    known_sources: &HashSet<&str>,
    shifts: Vec<u16>,
    errors: &mut Vec<ConfigError>,
) -> KpiSettings {
    let utc_offset = match &raw.utc_offset {
        None => UtcOffset::CHINA,
        Some(text) => UtcOffset::parse(text.get_ref()).unwrap_or_else(|| {
            errors.push(src.error(
                text.span(),
                "kpi.utc_offset",
                format!(
                    "a UTC offset is \"+HH:MM\" or \"-HH:MM\" up to 14 hours (China: \"+08:00\"), got `{}`",
                    text.get_ref()
                ),
            ));
            UtcOffset::CHINA
        }),
    };
    let fleeting = match &raw.fleeting {
        None => DEFAULT_FLEETING,
        Some(d) if d.get_ref().0.is_zero() || d.get_ref().0 > MAX_FLEETING => {
            errors.push(src.error(
                d.span(),
                "kpi.fleeting",
                format!("fleeting must be more than 0 and at most 1h, got {:?}", d.get_ref().0),
            ));
            DEFAULT_FLEETING
        }
        Some(d) => d.get_ref().0,
    };
    let top = match &raw.top {
        None => DEFAULT_TOP,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(n @ 1..=MAX_TOP) => n,
            _ => {
                errors.push(src.error(
                    n.span(),
                    "kpi.top",
                    format!("top must be 1 to {MAX_TOP}, got {}", n.get_ref()),
                ));
                DEFAULT_TOP
            }
        },
    };
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut claimed: HashMap<&str, usize> = HashMap::new();
    let mut positions = Vec::new();
    for (i, p) in raw.positions.iter().enumerate() {
        let p = p.get_ref();
        let name = p.name.get_ref().trim();
        let key = format!("kpi.positions[{i}].name");
        if name.is_empty() {
            errors.push(src.error(p.name.span(), key, "a position needs a name"));
        } else if let Some(first) = names.insert(name, i) {
            errors.push(src.error(
                p.name.span(),
                key,
                format!("position name `{name}` is already used by kpi.positions[{first}]"),
            ));
        }
        for (j, hs) in p.hazard_sources.iter().enumerate() {
            let code = hs.get_ref().as_str();
            let key = format!("kpi.positions[{i}].hazard_sources[{j}]");
            if !known_sources.contains(code) {
                errors.push(src.error(
                    hs.span(),
                    key,
                    format!("unknown hazard source `{code}` (not in [[hazard_sources]])"),
                ));
            } else if let Some(first) = claimed.insert(code, i) {
                errors.push(src.error(
                    hs.span(),
                    key,
                    format!(
                        "hazard source `{code}` is already answered by kpi.positions[{first}]: one position per source"
                    ),
                ));
            }
        }
        positions.push(Position {
            name: name.to_string(),
            hazard_sources: p.hazard_sources.iter().map(|h| h.get_ref().clone()).collect(),
        });
    }
    let default_position = raw.default_position.as_ref().and_then(|d| {
        let name = d.get_ref().trim();
        if name.is_empty() {
            errors.push(src.error(d.span(), "kpi.default_position", "the default position needs a name"));
            None
        } else {
            Some(name.to_string())
        }
    });
    KpiSettings::new(utc_offset, shifts, positions, default_position, fleeting, top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(text: &str) -> Result<KpiSettings, Vec<String>> {
        #[derive(Deserialize)]
        struct Doc {
            kpi: RawKpi,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        let src = SourceText::new(Path::new("gw.toml"), text);
        let known: HashSet<&str> = ["MHS-001", "MHS-002"].into_iter().collect();
        let mut errors = Vec::new();
        let s = validate(&src, &doc.kpi, &known, vec![480], &mut errors);
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn positions_take_their_hazard_sources_and_the_rest_goes_to_the_default() {
        let s = check(
            "[kpi]\nutc_offset = \"+07:00\"\nfleeting = \"500ms\"\ntop = 5\n\
             [[kpi.positions]]\nname = \"中控室一\"\nhazard_sources = [\"MHS-001\"]\n",
        )
        .unwrap();
        assert_eq!(s.utc_offset, UtcOffset(420));
        assert_eq!(s.fleeting, Duration::from_millis(500));
        assert_eq!(s.top, 5);
        assert_eq!(s.shifts, vec![480]);
        assert_eq!(s.position_of(Some("MHS-001")), "中控室一");
        assert_eq!(s.position_of(Some("MHS-002")), "unassigned");
        assert_eq!(s.position_of(None), "unassigned");
        assert_eq!(s.position_names(), vec!["中控室一", "unassigned"]);
        let s = check("[kpi]\n").unwrap();
        assert_eq!(s.position_names(), vec!["site"]);
        assert_eq!(s.utc_offset, UtcOffset::CHINA);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let errors = check(
            "[kpi]\nutc_offset = \"8\"\nfleeting = \"0s\"\ntop = 0\n\
             [[kpi.positions]]\nname = \"A\"\nhazard_sources = [\"MHS-009\", \"MHS-001\"]\n\
             [[kpi.positions]]\nname = \"A\"\nhazard_sources = [\"MHS-001\"]\n",
        )
        .unwrap_err();
        let text = errors.join("\n");
        assert_eq!(errors.len(), 6, "{text}");
        assert!(text.contains("gw.toml:2:14: kpi.utc_offset: a UTC offset is"), "{text}");
        assert!(
            text.contains("gw.toml:3:12: kpi.fleeting: fleeting must be more than 0"),
            "{text}"
        );
        assert!(
            text.contains("gw.toml:4:7: kpi.top: top must be 1 to 100, got 0"),
            "{text}"
        );
        assert!(
            text.contains("kpi.positions[0].hazard_sources[0]: unknown hazard source `MHS-009`"),
            "{text}"
        );
        assert!(
            text.contains("kpi.positions[1].name: position name `A` is already used by kpi.positions[0]"),
            "{text}"
        );
        assert!(
            text.contains("kpi.positions[1].hazard_sources[0]: hazard source `MHS-001` is already answered"),
            "{text}"
        );
    }
}
