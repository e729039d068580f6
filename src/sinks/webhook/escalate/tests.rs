use super::*;
use crate::model::AlarmState;
use crate::sinks::webhook::message::tests::raised;

fn roster() -> EscalationSpec {
    EscalationSpec {
        name: "gas".into(),
        min_priority: Priority::Critical,
        hazard_sources: vec![],
        levels: vec![
            LevelSpec {
                after: Duration::ZERO,
                notify: vec!["duty".into()],
            },
            LevelSpec {
                after: Duration::from_secs(300),
                notify: vec!["manager".into(), "sms".into()],
            },
        ],
    }
}

fn targets(steps: &[DueStep]) -> Vec<(usize, &str)> {
    steps.iter().map(|s| (s.note.level, s.key.target.as_str())).collect()
}

#[test]
fn levels_fall_due_exactly_at_their_time_and_never_twice() {
    let e = raised(Priority::Critical);
    let t0 = e.raised_at.unwrap();
    let mut sent = BTreeSet::new();
    let at_raise = due(&roster(), std::slice::from_ref(&e), t0, &sent);
    assert_eq!(targets(&at_raise), [(1, "duty")]);
    sent.insert(at_raise[0].key.clone());
    let just_before = t0.plus(Duration::from_secs(299));
    assert!(due(&roster(), std::slice::from_ref(&e), just_before, &sent).is_empty());
    let at_five = due(
        &roster(),
        std::slice::from_ref(&e),
        t0.plus(Duration::from_secs(300)),
        &sent,
    );
    assert_eq!(targets(&at_five), [(2, "manager"), (2, "sms")]);
    assert_eq!(at_five[0].note.unacked_minutes, 5);
}

#[test]
fn acknowledgement_shelving_and_lower_priorities_stop_escalation() {
    let late = |e: &AlarmEvent| e.raised_at.unwrap().plus(Duration::from_secs(3600));
    let mut acked = raised(Priority::Critical);
    acked.acknowledged = true;
    acked.state = AlarmState::AckActive;
    assert!(due(&roster(), std::slice::from_ref(&acked), late(&acked), &BTreeSet::new()).is_empty());
    let mut shelved = raised(Priority::Critical);
    shelved.shelved_until = Some(late(&shelved));
    assert!(
        due(
            &roster(),
            std::slice::from_ref(&shelved),
            late(&shelved),
            &BTreeSet::new()
        )
        .is_empty()
    );
    let high = raised(Priority::High);
    assert!(due(&roster(), std::slice::from_ref(&high), late(&high), &BTreeSet::new()).is_empty());
    // Cleared but never acknowledged: nobody has seen it, so it goes on.
    let mut rtn = raised(Priority::Critical);
    rtn.state = AlarmState::UnackRtn;
    assert_eq!(
        due(&roster(), std::slice::from_ref(&rtn), late(&rtn), &BTreeSet::new()).len(),
        3
    );
}

#[test]
fn the_record_of_sent_steps_survives_a_reopen_and_forgets_closed_activations() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Sent::open(dir.path(), "gas").unwrap();
    let key = |id: &str| StepKey {
        alarm_id: id.into(),
        raised_at: 5,
        level: 0,
        target: "duty".into(),
    };
    s.keys.insert(key("a"));
    s.keys.insert(key("b"));
    s.save().unwrap();
    let mut s = Sent::open(dir.path(), "gas").unwrap();
    assert_eq!(s.keys.len(), 2);
    assert!(s.prune(&[("b".to_string(), 5)].into_iter().collect()));
    assert_eq!(s.keys.into_iter().collect::<Vec<_>>(), [key("b")]);
}
