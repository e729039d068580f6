//! The KPI figures as CSV: UTF-8 with a byte-order mark, so Excel on Chinese Windows reads it as
//! UTF-8 rather than GBK. One row per figure per group, then the bad actors, floods and stale
//! alarms of the whole.

use super::rows::{Lang, duration, num, rows, verdict_text};
use crate::kpi::{Figures, KpiReport};

/// The UTF-8 byte-order mark.
pub(super) const BOM: &str = "\u{feff}";

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(out: &mut String, cells: &[&str]) {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// The header row.
pub(super) fn header(lang: Lang) -> &'static str {
    lang.t(
        "范围,分组,指标代码,指标,数值,目标,评价",
        "scope,group,metric_id,metric,value,target,verdict",
    )
}

/// The whole export.
pub(super) fn render(r: &KpiReport, lang: Lang) -> String {
    let mut out = String::from(BOM);
    out.push_str(header(lang));
    out.push_str("\r\n");
    let mut figures = |scope: &str, key: &str, f: &Figures| {
        for row in rows(f, lang) {
            line(
                &mut out,
                &[
                    scope,
                    key,
                    row.id,
                    row.label,
                    &row.value,
                    &row.target,
                    verdict_text(row.verdict, lang),
                ],
            );
        }
    };
    let whole = r.position.clone().unwrap_or_else(|| "site".to_string());
    figures("site", &whole, &r.site);
    for (scope, groups) in [
        ("position", &r.positions),
        ("hazard_source", &r.hazard_sources),
        ("day", &r.days),
        ("shift", &r.shifts),
        ("week", &r.weeks),
    ] {
        for g in groups {
            figures(scope, &g.key, &g.figures);
        }
    }
    let f = &r.site;
    for a in &f.bad_actors.top {
        let share = format!("{}%", num(a.share_pct));
        line(
            &mut out,
            &[
                "bad_actor",
                &a.alarm_id,
                "raises",
                &a.subject,
                &a.raises.to_string(),
                &share,
                "",
            ],
        );
    }
    for fl in &f.flood.periods {
        let span = format!("{} – {}", fl.start_local, fl.end_local);
        line(
            &mut out,
            &[
                "flood",
                &fl.start_local,
                "raises",
                &span,
                &fl.raises.to_string(),
                "",
                "",
            ],
        );
    }
    for a in &f.stale.alarms {
        line(
            &mut out,
            &["stale", &a.alarm_id, "age", &a.since_local, &duration(a.age_ms), "", ""],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("中控室一"), "中控室一");
    }
}
