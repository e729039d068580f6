use proptest::prelude::*;

use super::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(s * 1000)
}

#[test]
fn table_of_isa_18_2_transitions() {
    use Action::*;
    use AlarmState::*;
    // (latching, actions, expected state after each)
    let cases: &[(bool, &[Action], &[AlarmState])] = &[
        (
            false,
            &[Condition(true), Acknowledge, Condition(false)],
            &[UnackActive, AckActive, Normal],
        ),
        (
            false,
            &[Condition(true), Condition(false), Acknowledge],
            &[UnackActive, UnackRtn, Normal],
        ),
        (
            false,
            &[Condition(true), Condition(false), Condition(true)],
            &[UnackActive, UnackRtn, UnackActive],
        ),
        (
            true,
            &[Condition(true), Acknowledge, Condition(false), Reset],
            &[UnackActive, AckActive, Latched, Normal],
        ),
        (
            true,
            &[Condition(true), Condition(false), Acknowledge, Reset],
            &[UnackActive, Latched, Latched, Normal],
        ),
        (
            true,
            &[Condition(true), Condition(false), Condition(true)],
            &[UnackActive, Latched, UnackActive],
        ),
    ];
    for (latching, actions, states) in cases {
        let mut l = Lifecycle::new(*latching);
        for (i, (a, s)) in actions.iter().zip(states.iter()).enumerate() {
            l.apply(*a, at(i as i64)).unwrap();
            assert_eq!(l.state(), *s, "latching={latching} after {:?}", &actions[..=i]);
        }
    }
}

#[test]
fn operator_actions_that_make_no_sense_are_refused() {
    let mut l = Lifecycle::new(false);
    assert_eq!(
        l.apply(Action::Acknowledge, at(0)),
        Err(LifecycleError::NothingToAcknowledge)
    );
    assert_eq!(l.apply(Action::Reset, at(0)), Err(LifecycleError::NotLatched));
    assert_eq!(l.apply(Action::Unshelve, at(0)), Err(LifecycleError::NotShelved));
    assert_eq!(l.apply(Action::Shelve(at(0)), at(0)), Err(LifecycleError::ShelveInPast));
    assert_eq!(
        l.apply(Action::OutOfService(false), at(0)),
        Err(LifecycleError::InService)
    );
    let mut latch = Lifecycle::new(true);
    latch.apply(Action::Condition(true), at(0)).unwrap();
    assert_eq!(
        latch.apply(Action::Reset, at(1)),
        Err(LifecycleError::NotLatched),
        "still active"
    );
}

#[test]
fn shelving_and_service_are_overlays_that_keep_the_state() {
    let mut l = Lifecycle::new(false);
    l.apply(Action::Condition(true), at(0)).unwrap();
    assert_eq!(l.apply(Action::Shelve(at(60)), at(1)), Ok(Some(Transition::Shelved)));
    assert_eq!(l.state(), AlarmState::UnackActive);
    assert_eq!(l.shelved_until(), Some(at(60)));
    assert_eq!(
        l.apply(Action::OutOfService(true), at(2)),
        Ok(Some(Transition::RemovedFromService))
    );
    assert_eq!(l.shelved_until(), None, "out of service replaces shelving");
    assert_eq!(
        l.apply(Action::Shelve(at(90)), at(3)),
        Err(LifecycleError::OutOfService)
    );
    assert_eq!(
        l.apply(Action::OutOfService(false), at(4)),
        Ok(Some(Transition::ReturnedToService))
    );
    assert_eq!(l.apply(Action::Suppress(true), at(5)), Ok(Some(Transition::Suppressed)));
    assert_eq!(l.apply(Action::Suppress(true), at(6)), Ok(None));
    assert!(l.visible());
}

#[test]
fn restored_lifecycle_matches_the_journaled_state() {
    for state in AlarmState::ALL {
        let l = Lifecycle::restored(*state, true, false, Some(at(9)), false, true, Some(at(1)));
        assert_eq!(l.state(), *state);
        assert_eq!(l.shelved_until(), Some(at(9)));
        assert!(l.out_of_service());
    }
}

/// A deliberately simple reference: the three facts an operator cares about.
#[derive(Debug, Default, Clone, Copy)]
struct Model {
    active: bool,
    unacked: bool,
    waiting_reset: bool,
}

impl Model {
    fn apply(&mut self, latching: bool, a: Action) -> bool {
        match a {
            Action::Condition(true) => {
                if !self.active {
                    *self = Model {
                        active: true,
                        unacked: true,
                        waiting_reset: false,
                    };
                }
                true
            }
            Action::Condition(false) => {
                if self.active {
                    self.active = false;
                    self.waiting_reset = latching;
                }
                true
            }
            Action::Acknowledge => std::mem::replace(&mut self.unacked, false),
            Action::Reset => {
                let ok = self.waiting_reset;
                if ok {
                    self.waiting_reset = false;
                    self.unacked = false;
                }
                ok
            }
            _ => true,
        }
    }

    fn state(&self) -> AlarmState {
        if self.active {
            if self.unacked {
                AlarmState::UnackActive
            } else {
                AlarmState::AckActive
            }
        } else if self.waiting_reset {
            AlarmState::Latched
        } else if self.unacked {
            AlarmState::UnackRtn
        } else {
            AlarmState::Normal
        }
    }
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        any::<bool>().prop_map(Action::Condition),
        Just(Action::Acknowledge),
        Just(Action::Reset),
        (0i64..50).prop_map(|s| Action::Shelve(at(s))),
        Just(Action::Unshelve),
        any::<bool>().prop_map(Action::Suppress),
        any::<bool>().prop_map(Action::OutOfService),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn engine_agrees_with_the_reference_model(latching in any::<bool>(), actions in proptest::collection::vec(action(), 0..40)) {
        let mut model = Model::default();
        let mut l = Lifecycle::new(latching);
        for (i, a) in actions.iter().enumerate() {
            let before = l;
            let model_ok = model.apply(latching, *a);
            let result = l.apply(*a, at(i as i64));
            if matches!(a, Action::Acknowledge | Action::Reset) {
                prop_assert_eq!(result.is_ok(), model_ok, "{:?} from {:?}", a, before.state());
            }
            if result.is_err() {
                prop_assert_eq!(l, before, "a refused action changes nothing");
            }
            prop_assert_eq!(l.state(), model.state());
            // Normal means nothing is pending for the operator.
            if l.state() == AlarmState::Normal {
                prop_assert!(l.acked() && l.raised_at().is_none());
            }
        }
    }

    #[test]
    fn a_raised_alarm_stays_visible_until_it_clears_and_is_acknowledged(
        latching in any::<bool>(),
        actions in proptest::collection::vec(action(), 0..40),
    ) {
        let mut l = Lifecycle::new(latching);
        l.apply(Action::Condition(true), at(0)).unwrap();
        let mut cleared = false;
        let mut acked = false;
        let mut reset = false;
        for (i, a) in actions.iter().enumerate() {
            let ok = l.apply(*a, at(i as i64 + 1)).is_ok();
            match a {
                Action::Condition(true) if !cleared => {}
                Action::Condition(true) => { cleared = false; acked = false; reset = false; }
                Action::Condition(false) => cleared = true,
                Action::Acknowledge if ok => acked = true,
                Action::Reset if ok => { reset = true; acked = true; }
                _ => {}
            }
            let done = cleared && acked && (!latching || reset);
            prop_assert_eq!(l.state() != AlarmState::Normal, !done, "after {:?}", &actions[..=i]);
        }
    }
}
