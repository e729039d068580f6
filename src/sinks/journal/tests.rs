use super::*;
use crate::model::{AlarmClass, AlarmState, ConditionKind, Level, SubjectKind, Transition};

pub(super) fn event(subject: &str, transition: Transition, state: AlarmState, priority: Priority) -> AlarmEvent {
    AlarmEvent {
        seq: 0,
        alarm_id: format!("{subject}:high"),
        rule: "r".into(),
        subject: subject.into(),
        subject_kind: SubjectKind::Point,
        hazard_source: Some("MHS-001".into()),
        condition: ConditionKind::Threshold,
        class: AlarmClass::Process,
        level: Some(Level::High),
        priority,
        transition,
        state,
        acknowledged: state == AlarmState::Normal,
        latching: false,
        shelved_until: None,
        suppressed: false,
        out_of_service: false,
        value: f64::NAN,
        limit: Some(25.0),
        unit: "%LEL".into(),
        ts: Timestamp::from_millis(1_000),
        raised_at: None,
        user: Some("张三".into()),
        comment: Some("checked on site".into()),
        category: None,
        predicted_at: None,
    }
}

#[test]
fn a_batch_is_numbered_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    {
        let j = AlarmJournal::open(&path).unwrap();
        let mut batch = vec![
            event("a", Transition::Raised, AlarmState::UnackActive, Priority::High),
            event("b", Transition::Raised, AlarmState::UnackActive, Priority::Critical),
            event("a", Transition::Cleared, AlarmState::UnackRtn, Priority::High),
        ];
        j.append(&mut batch, &[("b:high".into(), Some(Timestamp::from_millis(5)))])
            .unwrap();
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        let mut ack = vec![event("a", Transition::Acknowledged, AlarmState::Normal, Priority::High)];
        j.append(&mut ack, &[]).unwrap();
    }
    let j = AlarmJournal::open(&path).unwrap();
    let visible = j.latest_visible().unwrap();
    assert_eq!(visible.len(), 1, "a is normal again: {visible:?}");
    assert_eq!(visible[0].subject, "b");
    assert!(visible[0].value.is_nan(), "NaN survives the JSON round trip");
    assert_eq!(visible[0].user.as_deref(), Some("张三"));
    assert_eq!(
        j.pending_timers().unwrap(),
        vec![("b:high".to_string(), Timestamp::from_millis(5))]
    );
    let since = j.since(1, 10).unwrap();
    assert_eq!(since.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3, 4]);
}

#[test]
fn history_filters_and_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let j = AlarmJournal::open(&dir.path().join("j.db")).unwrap();
    let mut batch: Vec<_> = (0..10)
        .map(|i| {
            let p = if i % 2 == 0 { Priority::Critical } else { Priority::Low };
            let mut e = event(&format!("p{i}"), Transition::Raised, AlarmState::UnackActive, p);
            e.ts = Timestamp::from_millis(i * 1000);
            e
        })
        .collect();
    j.append(&mut batch, &[]).unwrap();
    j.append(&mut [], &[("x".into(), Some(Timestamp::from_millis(1)))])
        .unwrap();
    j.append(&mut [], &[("x".into(), None)]).unwrap();
    assert!(j.pending_timers().unwrap().is_empty());
    let all = j
        .history(&HistoryFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.first().unwrap().seq, 10);
    let critical = j
        .history(&HistoryFilter {
            min_priority: Some(Priority::High),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(critical.len(), 5);
    let page = j
        .history(&HistoryFilter {
            from: Some(Timestamp::from_millis(2_000)),
            to: Some(Timestamp::from_millis(8_000)),
            before_seq: Some(8),
            limit: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![7, 6, 5]);
    let one = j
        .history(&HistoryFilter {
            alarm_id: Some("p3:high".into()),
            limit: 9,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
}

#[test]
fn a_journal_written_before_ack_categories_opens_reads_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    // A row exactly as an older gateway wrote it: its event JSON has no `category` key.
    let old = event("a", Transition::Acknowledged, AlarmState::AckActive, Priority::High);
    let mut json = serde_json::to_value(&old).unwrap();
    json.as_object_mut().unwrap().remove("category");
    json["seq"] = 1.into();
    assert!(json.get("category").is_none());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO alarm_transitions (ts, alarm_id, transition, state, priority, hazard_source, event)
             VALUES (1000000000, 'a:high', 'acknowledged', 'ack_active', 'high', 'MHS-001', ?1)",
            params![json.to_string()],
        )
        .unwrap();
    }
    let j = AlarmJournal::open(&path).unwrap();
    let mut new = event("b", Transition::Acknowledged, AlarmState::AckActive, Priority::High);
    new.category = Some(AckCategory::FalseAlarm);
    j.append(&mut [new], &[]).unwrap();
    let all = j
        .history(&HistoryFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].category, None);
    assert_eq!(
        (all[1].seq, &all[1].alarm_id, &all[1].user),
        (1, &old.alarm_id, &old.user)
    );
    assert_eq!(all[0].category, Some(AckCategory::FalseAlarm));
    let false_alarms = j
        .history(&HistoryFilter {
            category: Some(AckCategory::FalseAlarm),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        false_alarms.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(),
        vec!["b"]
    );
    let drills = j
        .history(&HistoryFilter {
            category: Some(AckCategory::Drill),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(drills.is_empty());
}

#[test]
fn latest_before_gives_each_alarm_s_state_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let j = AlarmJournal::open(&dir.path().join("j.db")).unwrap();
    let at = |ms, mut e: AlarmEvent| {
        e.ts = Timestamp::from_millis(ms);
        e
    };
    let mut batch = vec![
        at(
            1_000,
            event("A", Transition::Raised, AlarmState::UnackActive, Priority::High),
        ),
        at(
            2_000,
            event("B", Transition::Raised, AlarmState::UnackActive, Priority::Low),
        ),
        at(
            3_000,
            event("B", Transition::Cleared, AlarmState::Normal, Priority::Low),
        ),
        at(
            4_000,
            event("A", Transition::Acknowledged, AlarmState::AckActive, Priority::High),
        ),
    ];
    j.append(&mut batch, &[]).unwrap();
    let ids = |v: Vec<AlarmEvent>| -> Vec<(String, Transition)> {
        v.into_iter().map(|e| (e.alarm_id, e.transition)).collect()
    };
    assert_eq!(
        ids(j.latest_before(Timestamp::from_millis(2_500)).unwrap()),
        [
            ("A:high".to_string(), Transition::Raised),
            ("B:high".to_string(), Transition::Raised)
        ]
    );
    assert_eq!(
        ids(j.latest_before(Timestamp::from_millis(5_000)).unwrap()),
        [("A:high".to_string(), Transition::Acknowledged)],
        "B is back to normal"
    );
    assert!(j.latest_before(Timestamp::from_millis(1_000)).unwrap().is_empty());
}

#[test]
fn an_early_warning_keeps_its_predicted_crossing_and_older_records_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let j = AlarmJournal::open(&dir.path().join("j.db")).unwrap();
    let plain = event("a", Transition::Raised, AlarmState::UnackActive, Priority::High);
    assert!(
        serde_json::to_value(&plain).unwrap().get("predicted_at").is_none(),
        "absent, not null, so records stay as older gateways wrote them"
    );
    let mut warning = event("b", Transition::Raised, AlarmState::UnackActive, Priority::Medium);
    warning.condition = ConditionKind::EarlyWarning;
    warning.predicted_at = Some(Timestamp::from_millis(1_780_000_000_000));
    j.append(&mut [plain, warning], &[]).unwrap();
    let all = j
        .history(&HistoryFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].predicted_at, Some(Timestamp::from_millis(1_780_000_000_000)));
    assert_eq!(all[1].predicted_at, None);
}
