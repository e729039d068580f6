//! The figures of one group as labelled rows, shared by the HTML report and the CSV export so
//! both say the same thing in the same order.

use crate::kpi::{Comparison, Figures, Measure, Verdict};
use crate::model::Priority;

/// The report's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Lang {
    /// Simplified Chinese (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Picks the text of this language.
    pub(super) fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// One figure: a stable id, its label, value, target and verdict as text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    /// Stable id for machines (`rate.average_per_10min`).
    pub(super) id: &'static str,
    /// Label in the report's language.
    pub(super) label: &'static str,
    /// The value as shown.
    pub(super) value: String,
    /// The target as shown; empty when there is none.
    pub(super) target: String,
    /// The verdict, if judged.
    pub(super) verdict: Option<Verdict>,
}

/// Verdict text.
pub(super) fn verdict_text(v: Option<Verdict>, lang: Lang) -> &'static str {
    match v {
        Some(Verdict::Acceptable) => lang.t("可接受", "acceptable"),
        Some(Verdict::Manageable) => lang.t("可管理", "manageable"),
        Some(Verdict::Over) => lang.t("超标", "over"),
        None => "",
    }
}

/// A priority's name.
pub(super) fn priority_text(p: Priority, lang: Lang) -> &'static str {
    match (lang, p) {
        (Lang::En, p) => p.as_str(),
        (Lang::Zh, Priority::Low) => "低",
        (Lang::Zh, Priority::Medium) => "中",
        (Lang::Zh, Priority::High) => "高",
        (Lang::Zh, Priority::Critical) => "紧急",
    }
}

/// The worst verdict of a group's headline figures: alarm rate, peak, time in flood,
/// chattering and stale alarms.
pub(super) fn overall(f: &Figures) -> Option<Verdict> {
    [
        f.rate.average_per_10min.verdict,
        f.rate.peak_per_10min.verdict,
        f.flood.pct_time_in_flood.verdict,
        f.chattering.count.verdict,
        f.stale.count.verdict,
    ]
    .into_iter()
    .flatten()
    .max()
}

/// A number with at most two decimals, without trailing zeros.
pub(super) fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration in ms as `H:MM:SS` (or `N ms` below a second).
pub(super) fn duration(ms: i64) -> String {
    if ms != 0 && ms.abs() < 1000 {
        return format!("{ms} ms");
    }
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn target(m: &Measure, unit: &str, lang: Lang) -> String {
    let op = match m.comparison {
        Comparison::AtMost => "≤",
        Comparison::Below => "<",
        Comparison::About => "≈",
    };
    let mut t = format!("{op} {}{unit}", num(m.target));
    if let Some(limit) = m.manageable {
        t.push_str(&format!(" ({} ≤ {}{unit})", lang.t("可管理", "manageable"), num(limit)));
    }
    t
}

/// Every figure of `f`, in report order.
pub(super) fn rows(f: &Figures, lang: Lang) -> Vec<Row> {
    let measure = |id, label, m: &Measure, unit: &str| Row {
        id,
        label,
        value: format!("{}{unit}", num(m.value)),
        target: target(m, unit, lang),
        verdict: m.verdict,
    };
    let info = |id, label, value: String| Row {
        id,
        label,
        value,
        target: String::new(),
        verdict: None,
    };
    let pct = |v: f64| format!("{}%", num(v));
    let share = |p: Priority| {
        f.priorities
            .counts
            .iter()
            .find(|c| c.priority == p)
            .map_or(0, |c| c.count)
    };
    let t = |zh, en| lang.t(zh, en);
    let ack = &f.acknowledgement;
    vec![
        info(
            "rate.raises",
            t("报警次数（已通告）", "Annunciated alarms"),
            f.rate.raises.to_string(),
        ),
        measure(
            "rate.average_per_10min",
            t("平均每10分钟报警数", "Average per 10 minutes"),
            &f.rate.average_per_10min,
            "",
        ),
        measure(
            "rate.peak_per_10min",
            t("10分钟最高报警数", "Peak per 10 minutes"),
            &f.rate.peak_per_10min,
            "",
        ),
        info(
            "rate.peak_sliding_10min",
            t("任意10分钟最高报警数", "Peak in any 10 minutes"),
            f.rate.peak_sliding_10min.to_string(),
        ),
        info(
            "rate.pct_intervals_over_1",
            t("超过1次的10分钟区间占比", "10-minute intervals over 1"),
            pct(f.rate.pct_intervals_over_1),
        ),
        info(
            "rate.pct_intervals_over_2",
            t("超过2次的10分钟区间占比", "10-minute intervals over 2"),
            pct(f.rate.pct_intervals_over_2),
        ),
        measure(
            "rate.pct_intervals_over_10",
            t("超过10次的10分钟区间占比", "10-minute intervals over 10"),
            &f.rate.pct_intervals_over_10,
            "%",
        ),
        info(
            "flood.periods",
            t("报警泛滥次数", "Alarm floods"),
            f.flood.periods.len().to_string(),
        ),
        measure(
            "flood.pct_time_in_flood",
            t("泛滥时间占比", "Time in flood"),
            &f.flood.pct_time_in_flood,
            "%",
        ),
        measure(
            "bad_actors.top_share_pct",
            t("最频繁报警占比", "Share of the most frequent alarms"),
            &f.bad_actors.top_share_pct,
            "%",
        ),
        measure(
            "chattering.count",
            t("振荡报警（60秒内≥3次）", "Chattering alarms (3+ in 60 s)"),
            &f.chattering.count,
            "",
        ),
        measure(
            "fleeting.count",
            t("瞬时报警", "Fleeting alarms"),
            &f.fleeting.count,
            "",
        ),
        measure(
            "stale.count",
            t("陈旧报警（持续>24小时）", "Stale alarms (active > 24 h)"),
            &f.stale.count,
            "",
        ),
        info(
            "standing.count",
            t("期末仍在报警", "Standing at the end"),
            f.standing.len().to_string(),
        ),
        info("shelved.count", t("搁置次数", "Shelved"), f.shelved.count.to_string()),
        info(
            "shelved.duration",
            t("搁置时长", "Time shelved"),
            duration(f.shelved.duration_ms),
        ),
        info(
            "out_of_service.count",
            t("退出服务次数", "Out of service"),
            f.out_of_service.count.to_string(),
        ),
        info(
            "out_of_service.duration",
            t("退出服务时长", "Time out of service"),
            duration(f.out_of_service.duration_ms),
        ),
        info(
            "suppressed.count",
            t("设计抑制次数", "Suppressed by design"),
            f.suppressed.count.to_string(),
        ),
        info(
            "suppressed.duration",
            t("设计抑制时长", "Time suppressed"),
            duration(f.suppressed.duration_ms),
        ),
        Row {
            value: format!("{} ({})", pct(f.priorities.low_pct.value), share(Priority::Low)),
            ..measure(
                "priorities.low_pct",
                t("低优先级占比", "Low priority"),
                &f.priorities.low_pct,
                "%",
            )
        },
        Row {
            value: format!("{} ({})", pct(f.priorities.medium_pct.value), share(Priority::Medium)),
            ..measure(
                "priorities.medium_pct",
                t("中优先级占比", "Medium priority"),
                &f.priorities.medium_pct,
                "%",
            )
        },
        Row {
            value: format!(
                "{} ({})",
                pct(f.priorities.high_pct.value),
                share(Priority::High) + share(Priority::Critical)
            ),
            ..measure(
                "priorities.high_pct",
                t("高及紧急优先级占比", "High and critical priority"),
                &f.priorities.high_pct,
                "%",
            )
        },
        info(
            "acknowledgement.acknowledged",
            t("已确认次数", "Acknowledged"),
            ack.acknowledged.to_string(),
        ),
        info(
            "acknowledgement.median",
            t("确认时间中位数", "Time to acknowledge, median"),
            ack.median_ms.map(duration).unwrap_or_default(),
        ),
        info(
            "acknowledgement.p90",
            t("确认时间90分位", "Time to acknowledge, 90th percentile"),
            ack.p90_ms.map(duration).unwrap_or_default(),
        ),
        info(
            "acknowledgement.unacknowledged",
            t("未确认次数", "Not acknowledged"),
            ack.unacknowledged.to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_plainly() {
        assert_eq!(num(0.6251), "0.63");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(70.5), "70.5");
        assert_eq!(duration(400), "400 ms");
        assert_eq!(duration(0), "0:00:00");
        assert_eq!(duration(160_000), "0:02:40");
        assert_eq!(duration(108_000_000), "30:00:00");
    }
}
