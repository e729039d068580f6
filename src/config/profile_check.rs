//! Checks of a device profile that look across points: overlapping registers, and the
//! simulator model of each point against its range and default set-points, so that every
//! drill a profile offers really trips (and then clears) the alarms it is meant to show.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::profile::ProfilePoint;
use crate::model::Quality;
use crate::sources::modbus::decoder::{decode, encode};
use crate::sources::modbus::register::DataType;
use crate::sources::sim::scenario::{EpisodeConfig, PointDrill, ScenarioKind, SimModel, StatusLink};
use crate::sources::sim::{Drill, ScenarioSet};
use crate::spec::error::{ConfigError, SourceText};

/// A point as checked here: its built form, its place in the file and its simulator model
/// (`None` when the profile gives no `sim` table: the point then rests at 0 and is not checked).
pub(super) struct CheckedPoint<'a> {
    pub(super) point: &'a ProfilePoint,
    pub(super) span: Range<usize>,
    pub(super) model: Option<&'a SimModel>,
}

/// Reports registers that two points both claim. Bits of one register may share it as long as
/// their bit numbers differ; anything else reading the same register twice is an error.
pub(super) fn check_overlaps(src: &SourceText<'_>, points: &[CheckedPoint<'_>], errors: &mut Vec<ConfigError>) {
    for (i, a) in points.iter().enumerate() {
        for b in &points[..i] {
            let (ra, rb) = (&a.point.register, &b.point.register);
            if ra.function != rb.function {
                continue;
            }
            let overlap = u32::from(ra.address) < rb.end() && u32::from(rb.address) < ra.end();
            if !overlap {
                continue;
            }
            if let (DataType::Bit(x), DataType::Bit(y)) = (ra.data_type, rb.data_type)
                && x != y
            {
                continue;
            }
            errors.push(src.error(
                a.span.clone(),
                format!("points.{}.address", a.point.key),
                format!(
                    "{} {} at {} overlaps point `{}` ({} at {})",
                    ra.function.as_str(),
                    ra.data_type.as_str(),
                    ra.address,
                    b.point.key,
                    rb.data_type.as_str(),
                    rb.address
                ),
            ));
        }
    }
}

/// Resolves and checks each point's part in drills.
pub(super) fn check_drills(
    src: &SourceText<'_>,
    points: &[CheckedPoint<'_>],
    errors: &mut Vec<ConfigError>,
) -> Vec<PointDrill> {
    let index = |key: &str| points.iter().position(|p| p.point.key == key);
    let mut out = Vec::new();
    for (i, c) in points.iter().enumerate() {
        let key = &c.point.key;
        let mut err = |msg: String| errors.push(src.error(c.span.clone(), format!("points.{key}.sim"), msg));
        let Some(m) = c.model else {
            out.push(PointDrill::default());
            continue;
        };
        let status = match (&m.follows, &m.fault_of) {
            (Some(_), Some(_)) => {
                err("give follows or fault_of, not both".into());
                None
            }
            (Some(f), None) => match (index(f), m.on) {
                (Some(j), Some(on)) if j != i => {
                    let off = m.off.unwrap_or(on);
                    if off > on {
                        err(format!("off ({off}) must not be above on ({on})"));
                    }
                    Some(StatusLink::Follows { index: j, on, off })
                }
                (Some(_), None) => {
                    err("a follows bit needs `on`, the value at which it sets".into());
                    None
                }
                _ => {
                    err(format!("follows `{f}`, which is not another point of this profile"));
                    None
                }
            },
            (None, Some(f)) => match index(f) {
                Some(j) if j != i => Some(StatusLink::FaultOf { index: j }),
                _ => {
                    err(format!("fault_of `{f}`, which is not another point of this profile"));
                    None
                }
            },
            (None, None) => {
                if m.on.is_some() || m.off.is_some() {
                    err("on and off belong to a follows bit".into());
                }
                None
            }
        };
        if status.is_none() {
            check_signal(c.point, m, &mut err);
        }
        out.push(PointDrill {
            excursion: m.excursion,
            fault: m.fault,
            status,
        });
    }
    for (i, d) in out.iter().enumerate() {
        let target = match d.status {
            Some(StatusLink::Follows { index, .. } | StatusLink::FaultOf { index }) => index,
            None => continue,
        };
        if out[target].status.is_some() {
            let c = &points[i];
            errors.push(src.error(
                c.span.clone(),
                format!("points.{}.sim", c.point.key),
                format!(
                    "`{}` is itself a status bit; follow a measured point",
                    points[target].point.key
                ),
            ));
        }
    }
    out
}

/// The everyday band, excursion and fault value of one measured point.
fn check_signal(p: &ProfilePoint, m: &SimModel, err: &mut impl FnMut(String)) {
    let range = p.register.range;
    let (lo, hi) = m.everyday_band();
    if let Some((rlo, rhi)) = range
        && (lo < rlo || hi > rhi)
    {
        err(format!(
            "the everyday signal ({lo}..{hi}) leaves the measuring range {rlo}..{rhi}"
        ));
    }
    let limits = p
        .setpoints
        .as_ref()
        .map(|s| (s.limits(), s.deadband_for(range), &s.clear));
    if let Some((limits, deadband, own)) = &limits {
        for l in limits {
            let clear = match own.get(&l.level) {
                Some(c) => *c,
                None if l.falling => l.value + deadband,
                None => l.value - deadband,
            };
            let quiet = if l.falling { lo > clear } else { hi < clear };
            if !quiet {
                err(format!(
                    "the everyday signal ({lo}..{hi}) reaches the {} set-point {} (clearing at {clear}): a nuisance alarm",
                    l.level, l.value
                ));
            }
        }
    }
    if let Some(x) = m.excursion {
        if let Some((rlo, rhi)) = range
            && !(rlo..=rhi).contains(&x)
        {
            err(format!("excursion {x} lies outside the measuring range {rlo}..{rhi}"));
        }
        if let Some((limits, ..)) = &limits {
            for l in limits {
                if (l.falling && x >= l.value) || (!l.falling && x <= l.value) {
                    err(format!(
                        "excursion {x} does not pass the {} set-point {}; a drill would not show it",
                        l.level, l.value
                    ));
                }
            }
        }
    }
    if let Some(f) = m.fault
        && range.is_some()
    {
        let (_, quality) = decode(&p.register, &encode(&p.register, f));
        if quality != Quality::OutOfRange && quality != Quality::DecodeError {
            err(format!(
                "fault value {f} reads back as a {} value; use one outside the measuring range",
                quality.as_str()
            ));
        }
    }
}

/// The scenarios a profile offers: each kind with targets, with the profile's overrides.
pub(super) fn scenarios(
    src: &SourceText<'_>,
    points: &[ProfilePoint],
    drills: &[PointDrill],
    overrides: &BTreeMap<ScenarioKind, Spanned<EpisodeConfig>>,
    errors: &mut Vec<ConfigError>,
) -> ScenarioSet {
    let at = |cfg: Option<&Spanned<EpisodeConfig>>, key: String, msg: String| match cfg {
        Some(c) => src.error(c.span(), key, msg),
        None => ConfigError {
            key,
            ..src.file_error(msg)
        },
    };
    let mut set = ScenarioSet::new();
    for kind in ScenarioKind::ALL {
        let cfg = overrides.get(&kind);
        let episode = cfg.map_or(kind.default_episode(), |c| c.get_ref().episode(kind));
        let wanted = |d: &PointDrill| match kind {
            ScenarioKind::Leak | ScenarioKind::SlowRise => d.excursion.is_some(),
            ScenarioKind::SensorFault => d.fault.is_some(),
            ScenarioKind::CommLoss => true,
        };
        let targets: Vec<usize> = match cfg.and_then(|c| c.get_ref().points.as_ref()) {
            Some(keys) => keys
                .iter()
                .filter_map(|k| {
                    let found = points.iter().position(|p| &p.key == k).filter(|&i| wanted(&drills[i]));
                    if found.is_none() {
                        let need = if kind == ScenarioKind::SensorFault {
                            "fault"
                        } else {
                            "excursion"
                        };
                        errors.push(at(
                            cfg,
                            format!("scenarios.{kind}.points"),
                            format!("`{k}` is not a point of this profile with a sim.{need} value"),
                        ));
                    }
                    found
                })
                .collect(),
            None if kind == ScenarioKind::CommLoss => Vec::new(),
            None => (0..points.len()).filter(|&i| wanted(&drills[i])).collect(),
        };
        if episode.hold.is_zero() {
            errors.push(at(
                cfg,
                format!("scenarios.{kind}.hold"),
                "hold must be longer than zero".into(),
            ));
        }
        for &i in &targets {
            let on = points[i].setpoints.as_ref().map_or(Duration::ZERO, |s| s.on_delay);
            // A sensor fault on a ranged point raises the undelayed sensor-fault alarm; on a
            // status input it trips the input's own set-points, delays included.
            let delayed = match kind {
                ScenarioKind::Leak | ScenarioKind::SlowRise => true,
                ScenarioKind::SensorFault => points[i].register.range.is_none(),
                ScenarioKind::CommLoss => false,
            };
            if delayed && !episode.hold.is_zero() && episode.hold <= on {
                let key = format!("scenarios.{kind}.hold");
                errors.push(at(
                    cfg,
                    key,
                    format!(
                        "hold ({:?}) is not longer than the on-delay ({on:?}) of `{}`: the drill would raise no alarm",
                        episode.hold, points[i].key
                    ),
                ));
            }
        }
        if kind == ScenarioKind::CommLoss || !targets.is_empty() {
            set.insert(kind, Drill { episode, targets });
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Profile;

    const HEAD: &str = "[profile]\ndescription = \"t\"\n";

    fn errors(body: &str) -> Vec<String> {
        let text = format!("{HEAD}{body}");
        match Profile::parse("t", Path::new("t.toml"), &text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| format!("{}: {}", e.key, e.message)).collect(),
        }
    }

    const GAS: &str = "[points.gas]\nfunction = \"holding\"\naddress = 0\ntype = \"u16\"\nscale = 0.1\nrange = [0.0, 100.0]\nunit = \"%LEL\"\nkind = \"gas\"\nsetpoints = { high = 25.0, high_high = 50.0, deadband = 2.0, on_delay = \"90s\" }\nsim = { base = 1.0, excursion = 60.0, fault = 6553.5 }\n";

    #[test]
    fn a_status_bit_must_follow_a_measured_point_of_its_own_profile() {
        let bits = "[points.a]\nfunction = \"holding\"\naddress = 1\ntype = \"bit\"\nbit = 0\nunit = \"\"\nkind = \"state\"\nsim = { follows = \"gas\", on = 25.0, off = 30.0 }\n\
                    [points.b]\nfunction = \"holding\"\naddress = 1\ntype = \"bit\"\nbit = 1\nunit = \"\"\nkind = \"state\"\nsim = { fault_of = \"a\" }\n";
        let e = errors(&format!(
            "{GAS}{bits}\n[scenarios.leak]\nhold = \"2m\"\n[scenarios.slow_rise]\nhold = \"2m\"\n"
        ));
        assert_eq!(
            e,
            vec![
                "points.a.sim: off (30) must not be above on (25)".to_string(),
                "points.b.sim: `a` is itself a status bit; follow a measured point".to_string(),
            ]
        );
    }

    #[test]
    fn a_drill_shorter_than_the_on_delay_or_on_an_unknown_point_is_refused() {
        let e = errors(&format!(
            "{GAS}\n[scenarios.slow_rise]\nhold = \"2m\"\n[scenarios.sensor_fault]\npoints = [\"nope\"]\n"
        ));
        assert_eq!(
            e,
            vec![
                "scenarios.leak.hold: hold (60s) is not longer than the on-delay (90s) of `gas`: the drill would raise no alarm"
                    .to_string(),
                "scenarios.sensor_fault.points: `nope` is not a point of this profile with a sim.fault value".to_string(),
            ]
        );
        assert!(
            errors(&format!(
                "{GAS}\n[scenarios.leak]\nhold = \"2m\"\n[scenarios.slow_rise]\nhold = \"2m\"\n"
            ))
            .is_empty()
        );
    }
}
