//! k-of-n voting and escalation over a group: members' levels in, the group's level out.
//!
//! GB 51108-2015's tailings-pond rule ("4 blue points make the item yellow, 3 yellow make it
//! orange, 2 orange make it red", and the same across items) is `Escalate` with counts
//! `blue = 4, yellow = 3, orange = 2`; two gas detectors confirming a leak is `Confirm`.

use super::VoteMode;
use crate::model::Level;

/// The group's level given its members' current levels (`None` = member not in alarm).
pub fn group_level(mode: &VoteMode, members: &[Option<Level>]) -> Option<Level> {
    let at_least = |level: Level| {
        members
            .iter()
            .flatten()
            .filter(|m| m.same_family(level) && m.rank() >= level.rank())
            .count()
    };
    match mode {
        VoteMode::Confirm { level, k } => (at_least(*level) >= *k).then_some(*level),
        VoteMode::Escalate { counts } => {
            let family = counts.first().map(|(l, _)| *l)?;
            let base = members
                .iter()
                .flatten()
                .filter(|m| m.same_family(family))
                .max_by_key(|m| m.rank())
                .copied();
            let lifted = counts
                .iter()
                .filter(|(level, k)| at_least(*level) >= *k)
                .filter_map(|(level, _)| level.next())
                .max_by_key(|l| l.rank());
            [base, lifted].into_iter().flatten().max_by_key(|l| l.rank())
        }
    }
}

/// The levels a vote rule raises alarms for.
pub fn output_levels(mode: &VoteMode) -> Vec<Level> {
    match mode {
        VoteMode::Confirm { level, .. } => vec![*level],
        VoteMode::Escalate { counts } => {
            let Some((first, _)) = counts.first() else {
                return Vec::new();
            };
            Level::ALL.iter().copied().filter(|l| l.same_family(*first)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn tailings() -> VoteMode {
        VoteMode::Escalate {
            counts: vec![(Blue, 4), (Yellow, 3), (Orange, 2)],
        }
    }

    #[test]
    fn four_blue_points_make_the_item_yellow() {
        assert_eq!(
            group_level(&tailings(), &[Some(Blue), Some(Blue), Some(Blue), None]),
            Some(Blue)
        );
        assert_eq!(
            group_level(&tailings(), &[Some(Blue), Some(Blue), Some(Blue), Some(Blue)]),
            Some(Yellow)
        );
    }

    #[test]
    fn three_yellow_make_orange_and_two_orange_make_red() {
        assert_eq!(
            group_level(&tailings(), &[Some(Yellow), Some(Yellow), Some(Yellow)]),
            Some(Orange)
        );
        assert_eq!(group_level(&tailings(), &[Some(Orange), Some(Orange), None]), Some(Red));
        // Higher members count towards lower thresholds: 2 orange + 1 yellow = 3 at yellow or above.
        assert_eq!(
            group_level(&tailings(), &[Some(Orange), Some(Yellow), Some(Yellow)]),
            Some(Orange)
        );
    }

    #[test]
    fn a_single_red_member_makes_the_group_red() {
        assert_eq!(group_level(&tailings(), &[Some(Red), None, None]), Some(Red));
        assert_eq!(group_level(&tailings(), &[None, None]), None);
    }

    #[test]
    fn two_of_n_confirm_a_leak() {
        let mode = VoteMode::Confirm { level: High, k: 2 };
        assert_eq!(group_level(&mode, &[Some(High), None, None]), None);
        assert_eq!(group_level(&mode, &[Some(High), Some(HighHigh), None]), Some(High));
        assert_eq!(output_levels(&mode), vec![High]);
        assert_eq!(output_levels(&tailings()), vec![Blue, Yellow, Orange, Red]);
    }
}
