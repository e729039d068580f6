//! Whether the gateway is fit to watch the plant: the checks behind `/readyz` and behind the
//! service manager's watchdog, kept in one place so both answer the same.

use std::time::Duration;

use crate::model::Timestamp;

/// How long the rules task may be silent before the gateway is not ready: it ticks every
/// second, so this is several missed ticks, not a slow one.
pub const RULES_STALL: Duration = Duration::from_secs(5);

/// The problem, if any, with a rules task last heard from at `heartbeat`, seen at `now`.
pub fn rules_problem(now: Timestamp, heartbeat: Timestamp) -> Option<String> {
    let silent = now.since(heartbeat);
    (silent > RULES_STALL).then(|| format!("rules engine silent for {} s", silent.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_rules_engine_is_a_problem() {
        let beat = Timestamp::from_millis(10_000);
        assert_eq!(rules_problem(Timestamp::from_millis(15_000), beat), None);
        assert_eq!(
            rules_problem(Timestamp::from_millis(15_001), beat).as_deref(),
            Some("rules engine silent for 5 s")
        );
    }
}
