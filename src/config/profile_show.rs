//! The text of `profiles show NAME`: a profile's register table, default set-points,
//! simulator model and drills, for the instrument engineer commissioning a device.

use std::fmt::Write as _;

use super::profile::{Profile, ProfilePoint};
use crate::sources::modbus::register::{DataType, Scaling};
use crate::sources::sim::scenario::StatusLink;

impl Profile {
    /// A human description: register table, set-points, simulator and drills.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{} — {}", self.name, self.description);
        if let Some(v) = &self.vendor {
            let _ = writeln!(s, "vendor: {v}");
        }
        let _ = writeln!(
            s,
            "read limits: {} registers, {} bits per request, gap {}\n",
            self.limits.max_registers, self.limits.max_bits, self.limits.max_gap
        );
        let _ = writeln!(
            s,
            "{:<18} {:<8} {:>7} {:<5} {:<6} {:<16} {:<22} description",
            "point", "table", "address", "type", "unit", "range", "scaling"
        );
        let mut by_address: Vec<&ProfilePoint> = self.points.iter().collect();
        by_address.sort_by_key(|p| {
            let bit = match p.register.data_type {
                DataType::Bit(b) => b,
                _ => 0,
            };
            (p.register.function.code(), p.register.address, bit)
        });
        for p in by_address {
            let r = &p.register;
            let address = match r.data_type {
                DataType::Bit(b) => format!("{}.{b}", r.address),
                _ => r.address.to_string(),
            };
            let range = r.range.map_or("-".to_string(), |(a, b)| format!("{a}..{b}"));
            let scaling = match r.scaling {
                Scaling::Linear { scale, offset } if scale == 1.0 && offset == 0.0 => "-".to_string(),
                Scaling::Linear { scale, offset: 0.0 } => format!("x{scale}"),
                Scaling::Linear { scale, offset } => format!("x{scale} {offset:+}"),
                Scaling::Range { raw, eng } => format!("{}..{} -> {}..{}", raw.0, raw.1, eng.0, eng.1),
            };
            let _ = writeln!(
                s,
                "{:<18} {:<8} {:>7} {:<5} {:<6} {:<16} {:<22} {}",
                p.key,
                r.function.as_str(),
                address,
                r.data_type.as_str(),
                p.unit,
                range,
                scaling,
                p.description.as_deref().unwrap_or("")
            );
        }
        let _ = writeln!(s, "\nDefault set-points:");
        let mut any = false;
        for p in &self.points {
            if let Some(line) = setpoint_line(p) {
                let _ = writeln!(s, "  {:<16} {line}", p.key);
                any = true;
            }
        }
        if !any {
            let _ = writeln!(s, "  none: set them per site with [[rules]]");
        }
        let _ = writeln!(s, "\nSimulator:");
        for p in &self.points {
            let _ = writeln!(s, "  {:<16} {}", p.key, self.sim_line(p));
        }
        let _ = writeln!(s, "\nScenarios (simulate --profile {} --scenario NAME):", self.name);
        for (kind, d) in &self.scenarios {
            let e = &d.episode;
            let targets: Vec<&str> = d.targets.iter().map(|&i| self.points[i].key.as_str()).collect();
            let on = if targets.is_empty() {
                "the whole device".to_string()
            } else {
                targets.join(", ")
            };
            let _ = writeln!(
                s,
                "  {:<14} start {} rise {} hold {} fall {}; on {on}",
                kind.as_str(),
                humantime::format_duration(e.start),
                humantime::format_duration(e.rise),
                humantime::format_duration(e.hold),
                humantime::format_duration(e.fall),
            );
        }
        s
    }

    fn sim_line(&self, p: &ProfilePoint) -> String {
        match p.drill.status {
            Some(StatusLink::Follows { index, on, off }) => {
                return format!("follows {}: set at {on}, reset below {off}", self.points[index].key);
            }
            Some(StatusLink::FaultOf { index }) => {
                return format!("set while {} is in sensor fault", self.points[index].key);
            }
            None => {}
        }
        let g = &p.sim;
        let mut line = format!("{} {}", g.base, p.unit);
        if g.amplitude != 0.0 {
            let _ = write!(line, " ± {} over {}", g.amplitude, humantime::format_duration(g.period));
        }
        if g.noise != 0.0 {
            let _ = write!(line, ", noise {}", g.noise);
        }
        if let Some(x) = p.drill.excursion {
            let _ = write!(line, "; excursion {x}");
        }
        if let Some(f) = p.drill.fault {
            let _ = write!(line, "; fault value {f}");
        }
        line
    }
}

fn setpoint_line(p: &ProfilePoint) -> Option<String> {
    let sp = p.setpoints.as_ref()?;
    let mut parts: Vec<String> = sp
        .limits()
        .iter()
        .map(|l| {
            let mut t = format!("{}={}", l.level.as_str(), l.value);
            if let Some(c) = sp.clear.get(&l.level) {
                let _ = write!(t, " (clears {} {c})", if l.falling { "above" } else { "below" });
            }
            let _ = write!(t, " [{}]", l.priority.as_str());
            t
        })
        .collect();
    let deadband = sp.deadband_for(p.register.range);
    if deadband != 0.0 {
        parts.push(format!("deadband {deadband} {}", p.unit));
    }
    if !sp.on_delay.is_zero() {
        parts.push(format!("on-delay {}", humantime::format_duration(sp.on_delay)));
    }
    if !sp.off_delay.is_zero() {
        parts.push(format!("off-delay {}", humantime::format_duration(sp.off_delay)));
    }
    Some(parts.join("  "))
}

#[cfg(test)]
mod tests {
    use super::super::ProfileSet;

    #[test]
    fn the_methane_profile_shows_its_power_restore_value() {
        let set = ProfileSet::builtin().unwrap();
        let text = set.get("mine-ch4").unwrap().describe();
        assert!(text.contains("high=1 [high]"), "{text}");
        assert!(text.contains("high_high=1.5 (clears below 1) [critical]"), "{text}");
        assert!(text.contains("follows ch4: set at 1.5, reset below 1"), "{text}");
        assert!(text.contains("1.1"), "bit address shown as register.bit: {text}");
        assert!(text.contains("comm_loss"), "{text}");
    }
}
