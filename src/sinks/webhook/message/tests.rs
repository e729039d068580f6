use super::*;
use crate::model::{AlarmClass, AlarmState, ConditionKind, Level, SubjectKind};

/// A raised critical gas alarm at 2025-12-07 01:41:05 UTC.
pub(crate) fn raised(priority: Priority) -> AlarmEvent {
    AlarmEvent {
        seq: 12,
        alarm_id: "g/ch1:high_high".into(),
        rule: "r".into(),
        subject: "g/ch1".into(),
        subject_kind: SubjectKind::Point,
        hazard_source: Some("MHS-001".into()),
        condition: ConditionKind::Threshold,
        class: AlarmClass::Process,
        level: Some(Level::HighHigh),
        priority,
        transition: Transition::Raised,
        state: AlarmState::UnackActive,
        acknowledged: false,
        latching: false,
        shelved_until: None,
        suppressed: false,
        out_of_service: false,
        value: 60.0,
        limit: Some(50.0),
        unit: "%LEL".into(),
        ts: Timestamp::from_millis(1_765_071_665_000),
        raised_at: Some(Timestamp::from_millis(1_765_071_665_000)),
        user: None,
        comment: None,
        category: None,
        predicted_at: None,
    }
}

fn directory() -> Directory {
    let mut d = Directory::default();
    d.subjects.insert(
        "g/ch1".into(),
        Naming {
            name: Some("1号液氯储罐 可燃气体".into()),
            place: Some("液氯储罐区 T-101 储罐 2F".into()),
        },
    );
    d.hazard_sources.insert("MHS-001".into(), "液氯储罐区".into());
    d
}

fn settings() -> MessageSettings {
    MessageSettings {
        console_url: Some("http://10.0.0.5:8080/".into()),
        ..MessageSettings::default()
    }
}

#[test]
fn a_chinese_message_names_point_place_value_limit_priority_time_and_link() {
    let f = fields(
        &raised(Priority::Critical),
        &directory(),
        &settings(),
        Language::Zh,
        None,
    );
    let md = f.markdown(Language::Zh);
    assert_eq!(
        md,
        "### 【紧急】1号液氯储罐 可燃气体 报警\n\
         - 危险源：液氯储罐区（MHS-001）\n\
         - 测点：1号液氯储罐 可燃气体\n\
         - 位置：液氯储罐区 T-101 储罐 2F\n\
         - 当前值：60 %LEL\n\
         - 报警限值：50 %LEL\n\
         - 级别：紧急\n\
         - 时间：2025-12-07 09:41:05 (UTC+08:00)\n\
         - [在控制台查看](http://10.0.0.5:8080/#alarm=g%2Fch1%3Ahigh_high)\n"
    );
}

#[test]
fn the_site_offset_and_english_are_honoured() {
    let s = MessageSettings {
        utc_offset_secs: -3 * 3600 - 1800,
        ..MessageSettings::default()
    };
    let mut e = raised(Priority::Medium);
    e.value = 27.3;
    e.transition = Transition::Cleared;
    let f = fields(&e, &Directory::default(), &s, Language::En, None);
    assert_eq!(f.time, "2025-12-06 22:11:05 (UTC-03:30)");
    assert_eq!(
        f.text(Language::En),
        "[medium] g/ch1 cleared\nHazard source: MHS-001\nPoint: g/ch1\nValue: 27.3 %LEL\nLimit: 50 %LEL\n\
         Priority: medium\nTime: 2025-12-06 22:11:05 (UTC-03:30)"
    );
}

#[test]
fn an_escalation_step_says_so() {
    let note = EscalationNote {
        roster: "gas".into(),
        level: 2,
        unacked_minutes: 5,
    };
    let f = fields(
        &raised(Priority::Critical),
        &directory(),
        &settings(),
        Language::Zh,
        Some(&note),
    );
    assert!(
        f.markdown(Language::Zh)
            .contains("> **升级通知（gas 第2级）：报警已 5 分钟未确认**\n"),
        "{}",
        f.markdown(Language::Zh)
    );
}
