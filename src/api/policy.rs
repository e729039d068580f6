//! What the console and the operator commands are allowed to do at this site: the lowest
//! priority that sounds in the console (`[console] sound_from`) and the ISA-18.2 shelving
//! rules per priority (`[alarms.shelving]`): who may shelve and for how long at most.
//!
//! Why in the API: shelving is an operator action, and only the API takes operator actions,
//! so the rules are enforced where the caller's role is known; the rules engine still caps
//! every shelving at `alarms.max_shelve`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::Role;
use crate::model::Priority;
use crate::spec::units::DurationText;

/// Who may shelve alarms of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShelveBy {
    /// Operators and admins.
    Operator,
    /// Admins (the shift supervisor's token) only.
    Admin,
    /// Nobody: these alarms cannot be shelved at this site.
    Nobody,
}

impl ShelveBy {
    /// The least role that may shelve, or `None` when nobody may.
    pub fn least_role(self) -> Option<Role> {
        match self {
            ShelveBy::Operator => Some(Role::Operator),
            ShelveBy::Admin => Some(Role::Admin),
            ShelveBy::Nobody => None,
        }
    }
}

/// `[alarms.shelving.<priority>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShelveRule {
    /// Who may shelve (`operator`, `admin`, `nobody`).
    pub by: ShelveBy,
    /// Longest shelving (`"30m"`); absent or longer than `alarms.max_shelve`: that.
    #[serde(default)]
    pub max: Option<DurationText>,
}

/// `[console]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// Unacknowledged alarms of this priority or a more urgent one sound in the console.
    #[serde(default = "default_sound_from")]
    pub sound_from: Priority,
    /// Shift starts (`"HH:MM"`, local time) the handover page covers; absent: the last 8 hours.
    #[serde(default)]
    pub shifts: Option<toml::Spanned<Vec<toml::Spanned<String>>>>,
}

fn default_sound_from() -> Priority {
    Priority::High
}

impl Default for RawConsole {
    fn default() -> Self {
        Self {
            sound_from: default_sound_from(),
            shifts: None,
        }
    }
}

/// The shelving rule of one priority, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShelveRule {
    /// Who may shelve.
    pub by: ShelveBy,
    /// Longest shelving allowed.
    pub max: Duration,
}

/// A hazard source as the console names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteName {
    /// Registration code, e.g. `MHS-001`.
    pub id: String,
    /// Name, e.g. `液氯储罐区`.
    pub name: String,
    /// GB 18218-2018 grade, 1 (most severe) to 4.
    pub grade: u8,
}

/// The site's console and shelving policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsolePolicy {
    /// Lowest priority that sounds in the console.
    pub sound_from: Priority,
    /// Shelving rules by priority.
    pub shelving: BTreeMap<Priority, ShelveRule>,
    /// The hazard sources, so the console shows their names and grades, not only codes.
    pub hazard_sources: Vec<SiteName>,
    /// Each point's threshold set-points, drawn on its trend.
    pub setpoints: BTreeMap<String, Vec<SetpointView>>,
    /// Names and places of points and devices (`[labels]`).
    pub labels: super::labels::Labels,
    /// Shift starts, minutes after local midnight, ascending; empty: the last 8 hours.
    pub shifts: Vec<u16>,
    /// Alarm KPI settings (`[kpi]`, with the shifts above).
    pub kpi: crate::kpi::KpiSettings,
    /// How often each point is expected to deliver a reading, by point id (the completeness
    /// ledger's expected readings).
    pub intervals: Intervals,
}

/// Each point's expected reading interval, by [`crate::model::PointId::index`] (`None`: no
/// source declares one): one shared copy for the config, the live policy and each
/// completeness request.
pub type Intervals = std::sync::Arc<IntervalTable>;

/// Expected intervals by point index, each point's as a 4-byte index into the few distinct
/// intervals (a farm has one per poll period) rather than a 16-byte `Option<Duration>`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntervalTable {
    /// The distinct intervals, in the order first met.
    distinct: Box<[Duration]>,
    /// Per point: 0 for none, else one more than the position in `distinct`.
    by_point: Box<[u32]>,
}

impl IntervalTable {
    /// Point `index`'s expected interval; `None` when no source declares one or the index is
    /// past the table.
    pub fn get(&self, index: usize) -> Option<Duration> {
        let slot = usize::try_from(*self.by_point.get(index)?).ok()?;
        self.distinct.get(slot.checked_sub(1)?).copied()
    }

    /// Number of points in the table.
    pub fn len(&self) -> usize {
        self.by_point.len()
    }

    /// Whether the table has no points.
    pub fn is_empty(&self) -> bool {
        self.by_point.is_empty()
    }
}

impl FromIterator<Option<Duration>> for IntervalTable {
    fn from_iter<I: IntoIterator<Item = Option<Duration>>>(iter: I) -> Self {
        let mut distinct: Vec<Duration> = Vec::new();
        let mut index: std::collections::HashMap<Duration, u32> = std::collections::HashMap::new();
        let by_point = iter
            .into_iter()
            .map(|d| {
                d.map_or(0, |d| {
                    *index.entry(d).or_insert_with(|| {
                        distinct.push(d);
                        // At most one distinct interval per point, and points fit a u32 index.
                        u32::try_from(distinct.len()).unwrap_or(u32::MAX)
                    })
                })
            })
            .collect();
        Self {
            distinct: distinct.into_boxed_slice(),
            by_point,
        }
    }
}

/// One set-point of a point.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SetpointView {
    /// Which level.
    pub level: crate::model::Level,
    /// The set-point in engineering units.
    pub value: f64,
    /// Priority of the alarm it raises.
    pub priority: Priority,
}

impl Eq for SetpointView {}

impl ConsolePolicy {
    /// Resolves the written sections; by default a critical alarm may be shelved only by an
    /// admin (a supervisor), other priorities by operators, each for at most `max_shelve`.
    pub fn new(console: &RawConsole, shelving: &BTreeMap<Priority, RawShelveRule>, max_shelve: Duration) -> Self {
        let shelving = Priority::ALL
            .iter()
            .map(|&p| {
                let default_by = if p == Priority::Critical {
                    ShelveBy::Admin
                } else {
                    ShelveBy::Operator
                };
                let rule = shelving.get(&p);
                let max = rule.and_then(|r| r.max).map_or(max_shelve, |m| m.0.min(max_shelve));
                let by = rule.map_or(default_by, |r| r.by);
                (p, ShelveRule { by, max })
            })
            .collect();
        Self {
            sound_from: console.sound_from,
            shelving,
            hazard_sources: Vec::new(),
            setpoints: BTreeMap::new(),
            labels: super::labels::Labels::default(),
            shifts: Vec::new(),
            kpi: crate::kpi::KpiSettings::default(),
            intervals: Intervals::default(),
        }
    }

    /// The rule for `priority`.
    pub fn rule(&self, priority: Priority) -> ShelveRule {
        self.shelving.get(&priority).copied().unwrap_or(ShelveRule {
            by: ShelveBy::Nobody,
            max: Duration::ZERO,
        })
    }

    /// Why `role` may not shelve an alarm of `priority` for `duration`, if it may not.
    pub fn refuse_shelve(&self, priority: Priority, role: Role, duration: Duration) -> Option<ShelveRefusal> {
        let rule = self.rule(priority);
        match rule.by.least_role() {
            None => return Some(ShelveRefusal::Nobody { priority }),
            Some(least) if role < least => return Some(ShelveRefusal::Role { priority, least }),
            Some(_) => {}
        }
        (duration > rule.max).then_some(ShelveRefusal::TooLong {
            priority,
            max: rule.max,
        })
    }
}

impl Default for ConsolePolicy {
    fn default() -> Self {
        Self::new(&RawConsole::default(), &BTreeMap::new(), Duration::from_secs(8 * 3600))
    }
}

/// Why a shelving request breaks the site's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShelveRefusal {
    /// The site does not shelve alarms of this priority.
    #[error("{priority} alarms may not be shelved at this site (alarms.shelving.{priority}.by = \"nobody\")")]
    Nobody {
        /// The alarm's priority.
        priority: Priority,
    },
    /// The caller's role is below the one the site asks for.
    #[error("shelving a {priority} alarm needs the {least} role (alarms.shelving.{priority}.by)")]
    Role {
        /// The alarm's priority.
        priority: Priority,
        /// The least role that may.
        least: Role,
    },
    /// Longer than the site allows for this priority.
    #[error("{priority} alarms may be shelved for at most {}s (alarms.shelving.{priority}.max)", max.as_secs())]
    TooLong {
        /// The alarm's priority.
        priority: Priority,
        /// The longest allowed.
        max: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> ConsolePolicy {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            shelving: BTreeMap<Priority, RawShelveRule>,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        ConsolePolicy::new(&RawConsole::default(), &doc.shelving, Duration::from_secs(4 * 3600))
    }

    #[test]
    fn by_default_only_an_admin_shelves_a_critical_alarm() {
        let p = policy("");
        let hour = Duration::from_secs(3600);
        assert_eq!(
            p.refuse_shelve(Priority::Critical, Role::Operator, hour),
            Some(ShelveRefusal::Role {
                priority: Priority::Critical,
                least: Role::Admin
            })
        );
        assert_eq!(p.refuse_shelve(Priority::Critical, Role::Admin, hour), None);
        assert_eq!(p.refuse_shelve(Priority::High, Role::Operator, hour), None);
        assert!(matches!(
            p.refuse_shelve(Priority::High, Role::Operator, 5 * hour),
            Some(ShelveRefusal::TooLong { .. })
        ));
    }

    #[test]
    fn written_rules_apply_and_never_exceed_the_global_cap() {
        let p = policy(
            r#"
[shelving.critical]
by = "nobody"
[shelving.medium]
by = "operator"
max = "30m"
[shelving.low]
by = "admin"
max = "48h"
"#,
        );
        assert_eq!(
            p.refuse_shelve(Priority::Critical, Role::Admin, Duration::from_secs(60)),
            Some(ShelveRefusal::Nobody {
                priority: Priority::Critical
            })
        );
        assert!(
            p.refuse_shelve(Priority::Medium, Role::Operator, Duration::from_secs(31 * 60))
                .is_some()
        );
        assert_eq!(p.rule(Priority::Low).max, Duration::from_secs(4 * 3600));
        assert_eq!(p.rule(Priority::Low).by, ShelveBy::Admin);
    }

    #[test]
    fn copies_of_the_policy_share_one_interval_map() {
        let mut p = policy("");
        p.intervals = Intervals::new([None, Some(Duration::from_secs(1))].into_iter().collect());
        let live = p.clone();
        assert!(std::sync::Arc::ptr_eq(&p.intervals, &live.intervals));
        assert_eq!(live.intervals.get(1), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_interval_table_answers_each_points_own_interval() {
        let s = Duration::from_secs;
        let each = [
            Some(s(1)),
            None,
            Some(s(5)),
            Some(s(1)),
            Some(Duration::from_millis(1500)),
            None,
        ];
        let table: IntervalTable = each.iter().copied().collect();
        assert_eq!(table.len(), each.len());
        for (i, want) in each.iter().enumerate() {
            assert_eq!(table.get(i), *want, "point {i}");
        }
        assert_eq!(table.get(each.len()), None);
        assert_eq!(table.distinct.len(), 3);
        assert!(IntervalTable::default().is_empty());
    }
}
