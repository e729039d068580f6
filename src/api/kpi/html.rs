//! The printable KPI report: one self-contained HTML page (no scripts, no external files) laid
//! out for A4, in Chinese or English.
//!
//! Design: markup is written only from `&'static str` and every value goes through
//! [`Page::text`], which escapes it, so an alarm id or a position name can never become markup.
//! A templating crate would add a build step for one page; this keeps the escaping rule in the
//! type.

use super::rows::{Lang, Row, duration, num, overall, priority_text, rows, verdict_text};
use crate::kpi::{Group, KpiReport, Verdict};

/// An HTML document being written.
struct Page {
    out: String,
}

impl Page {
    /// Markup: only literals can be written as-is.
    fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Text, escaped for element content and quoted attributes.
    fn text(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&#39;"),
                c => self.out.push(c),
            }
        }
        self
    }

    /// A table row of text cells.
    fn row(&mut self, cells: &[&str]) -> &mut Self {
        self.raw("<tr>");
        for c in cells {
            self.raw("<td>").text(c).raw("</td>");
        }
        self.raw("</tr>\n")
    }

    /// A table head.
    fn head(&mut self, cells: &[&str]) -> &mut Self {
        self.raw("<thead><tr>");
        for c in cells {
            self.raw("<th>").text(c).raw("</th>");
        }
        self.raw("</tr></thead>\n")
    }

    fn verdict(&mut self, v: Option<Verdict>, lang: Lang) -> &mut Self {
        self.raw(match v {
            Some(Verdict::Acceptable) => "<td class=\"ok\">",
            Some(Verdict::Manageable) => "<td class=\"warn\">",
            Some(Verdict::Over) => "<td class=\"bad\">",
            None => "<td>",
        })
        .text(verdict_text(v, lang))
        .raw("</td>")
    }
}

const STYLE: &str = "<style>
@page { size: A4; margin: 15mm 12mm; }
body { font-family: 'Noto Sans CJK SC', 'Microsoft YaHei', 'SimSun', sans-serif; font-size: 10.5pt; color: #000; margin: 0 auto; max-width: 186mm; }
h1 { font-size: 16pt; margin: 0 0 4pt; }
h2 { font-size: 12.5pt; margin: 14pt 0 4pt; border-bottom: 1px solid #444; page-break-after: avoid; break-after: avoid; }
p.meta { margin: 0 0 8pt; color: #333; }
table { border-collapse: collapse; width: 100%; margin-bottom: 6pt; }
th, td { border: 1px solid #888; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eee; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.ok { color: #05620f; } td.warn { color: #8a5a00; font-weight: bold; } td.bad { color: #a00000; font-weight: bold; }
section.groups { page-break-before: always; break-before: page; }
p.none { color: #555; font-style: italic; }
@media print { a { color: #000; text-decoration: none; } }
</style>\n";

/// The report page.
pub(super) fn render(r: &KpiReport, lang: Lang) -> String {
    let t = |zh, en| lang.t(zh, en);
    let mut p = Page {
        out: String::with_capacity(32 * 1024),
    };
    p.raw("<!DOCTYPE html>\n")
        .raw(match lang {
            Lang::Zh => "<html lang=\"zh-CN\">",
            Lang::En => "<html lang=\"en\">",
        })
        .raw("<head><meta charset=\"utf-8\"><title>")
        .text(t("报警系统性能报告", "Alarm system performance report"))
        .raw("</title>\n")
        .raw(STYLE)
        .raw("</head><body>\n<h1>")
        .text(t("报警系统性能报告", "Alarm system performance report"))
        .raw("</h1>\n<p class=\"meta\">")
        .text(&format!(
            "{} {} – {} (UTC{})",
            t("统计区间", "Period"),
            r.from_local,
            r.to_local,
            r.utc_offset
        ));
    if let Some(pos) = &r.position {
        p.raw("<br>")
            .text(&format!("{}: {pos}", t("操作岗位", "Operator position")));
    }
    p.raw("<br>").text(t(
        "依据 GB/T 41261-2022（IEC 62682 / ISA-18.2）与 EEMUA 191；自诊断报警单独统计。",
        "Against GB/T 41261-2022 (IEC 62682 / ISA-18.2) and EEMUA 191; self-diagnostic alarms are counted apart.",
    ));
    p.raw("</p>\n<h2>")
        .text(t("关键指标", "Key figures"))
        .raw("</h2>\n<table>");
    p.head(&[
        t("指标", "Figure"),
        t("数值", "Value"),
        t("目标", "Target"),
        t("评价", "Verdict"),
    ]);
    p.raw("<tbody>\n");
    for row in rows(&r.site, lang) {
        figure_row(&mut p, &row, lang);
    }
    p.raw("</tbody></table>\n");

    let f = &r.site;
    p.raw("<h2>")
        .text(t("最频繁报警", "Most frequent alarms"))
        .raw("</h2>\n");
    if f.bad_actors.top.is_empty() {
        none(&mut p, lang);
    } else {
        p.raw("<table>");
        p.head(&[
            t("报警", "Alarm"),
            t("对象", "Subject"),
            t("危险源", "Hazard source"),
            t("优先级", "Priority"),
            t("次数", "Count"),
            t("占比", "Share"),
        ]);
        p.raw("<tbody>\n");
        for a in &f.bad_actors.top {
            p.row(&[
                &a.alarm_id,
                &a.subject,
                a.hazard_source.as_deref().unwrap_or("-"),
                priority_text(a.priority, lang),
                &a.raises.to_string(),
                &format!("{}%", num(a.share_pct)),
            ]);
        }
        p.raw("</tbody></table>\n");
    }

    p.raw("<h2>").text(t("报警泛滥", "Alarm floods")).raw("</h2>\n");
    if f.flood.periods.is_empty() {
        none(&mut p, lang);
    } else {
        p.raw("<table>");
        p.head(&[
            t("开始", "Start"),
            t("结束", "End"),
            t("时长", "Duration"),
            t("报警数", "Alarms"),
            t("10分钟峰值", "Peak in 10 min"),
        ]);
        p.raw("<tbody>\n");
        for fl in &f.flood.periods {
            let end = if fl.ongoing {
                format!("{} ({})", fl.end_local, t("仍在泛滥", "ongoing"))
            } else {
                fl.end_local.clone()
            };
            p.row(&[
                &fl.start_local,
                &end,
                &duration(fl.end_ms - fl.start_ms),
                &fl.raises.to_string(),
                &fl.peak_10min.to_string(),
            ]);
        }
        p.raw("</tbody></table>\n");
    }

    p.raw("<h2>").text(t("陈旧报警", "Stale alarms")).raw("</h2>\n");
    aged_table(&mut p, &f.stale.alarms, lang);
    p.raw("<h2>").text(t("振荡报警", "Chattering alarms")).raw("</h2>\n");
    if f.chattering.alarms.is_empty() {
        none(&mut p, lang);
    } else {
        p.raw("<table>");
        p.head(&[
            t("报警", "Alarm"),
            t("振荡次数", "Episodes"),
            t("60秒内最多", "Most in 60 s"),
            t("报警次数", "Raises"),
        ]);
        p.raw("<tbody>\n");
        for c in &f.chattering.alarms {
            p.row(&[
                &c.alarm_id,
                &c.episodes.to_string(),
                &c.max_in_60s.to_string(),
                &c.raises.to_string(),
            ]);
        }
        p.raw("</tbody></table>\n");
    }
    p.raw("<h2>").text(t("瞬时报警", "Fleeting alarms")).raw("</h2>\n");
    if f.fleeting.alarms.is_empty() {
        none(&mut p, lang);
    } else {
        p.raw("<table>");
        p.head(&[t("报警", "Alarm"), t("次数", "Activations"), t("最短", "Shortest")]);
        p.raw("<tbody>\n");
        for a in &f.fleeting.alarms {
            p.row(&[&a.alarm_id, &a.activations.to_string(), &duration(a.shortest_ms)]);
        }
        p.raw("</tbody></table>\n");
    }
    p.raw("<h2>")
        .text(t("期末仍在报警", "Standing at the end"))
        .raw("</h2>\n");
    aged_table(&mut p, &f.standing, lang);

    p.raw("<section class=\"groups\">\n");
    for (title, groups) in [
        (t("按操作岗位", "By operator position"), &r.positions),
        (t("按危险源", "By hazard source"), &r.hazard_sources),
        (t("按日", "By day"), &r.days),
        (t("按班次", "By shift"), &r.shifts),
        (t("按周", "By week"), &r.weeks),
    ] {
        if !groups.is_empty() {
            group_table(&mut p, title, groups, lang);
        }
    }
    if r.self_diagnostic.raises > 0 {
        p.raw("<h2>")
            .text(t("网关自诊断报警", "Gateway self-diagnostic alarms"))
            .raw("</h2>\n<table>");
        p.head(&[t("报警", "Alarm"), t("次数", "Raises")]);
        p.raw("<tbody>\n");
        for a in &r.self_diagnostic.alarms {
            p.row(&[&a.alarm_id, &a.count.to_string()]);
        }
        p.raw("</tbody></table>\n");
    }
    p.raw("</section>\n</body></html>\n");
    p.out
}

fn figure_row(p: &mut Page, row: &Row, lang: Lang) {
    p.raw("<tr><td>")
        .text(row.label)
        .raw("</td><td>")
        .text(&row.value)
        .raw("</td><td>")
        .text(&row.target)
        .raw("</td>")
        .verdict(row.verdict, lang)
        .raw("</tr>\n");
}

fn none(p: &mut Page, lang: Lang) {
    p.raw("<p class=\"none\">").text(lang.t("无", "None")).raw("</p>\n");
}

fn aged_table(p: &mut Page, alarms: &[crate::kpi::AgedAlarm], lang: Lang) {
    let t = |zh, en| lang.t(zh, en);
    if alarms.is_empty() {
        none(p, lang);
        return;
    }
    p.raw("<table>");
    p.head(&[
        t("报警", "Alarm"),
        t("对象", "Subject"),
        t("优先级", "Priority"),
        t("开始", "Since"),
        t("持续", "Age"),
        t("状态", "State"),
    ]);
    p.raw("<tbody>\n");
    for a in alarms {
        let state = if !a.ongoing {
            t("已恢复", "cleared")
        } else if a.annunciated {
            t("报警中", "active")
        } else {
            t(
                "报警中（已搁置/抑制/退出服务）",
                "active (shelved, suppressed or out of service)",
            )
        };
        p.row(&[
            &a.alarm_id,
            &a.subject,
            priority_text(a.priority, lang),
            &a.since_local,
            &duration(a.age_ms),
            state,
        ]);
    }
    p.raw("</tbody></table>\n");
}

/// One line per group with the headline figures and the worst of their verdicts.
fn group_table(p: &mut Page, title: &str, groups: &[Group], lang: Lang) {
    let t = |zh, en| lang.t(zh, en);
    p.raw("<h2>").text(title).raw("</h2>\n<table>");
    p.head(&[
        t("分组", "Group"),
        t("报警数", "Alarms"),
        t("平均/10分钟", "Avg / 10 min"),
        t("峰值/10分钟", "Peak / 10 min"),
        t("泛滥时间", "In flood"),
        t("振荡", "Chattering"),
        t("陈旧", "Stale"),
        t("总体评价", "Overall"),
    ]);
    p.raw("<tbody>\n");
    for g in groups {
        let f = &g.figures;
        p.raw("<tr><td>")
            .text(&g.key)
            .raw("</td><td>")
            .text(&f.rate.raises.to_string())
            .raw("</td><td>")
            .text(&num(f.rate.average_per_10min.value))
            .raw("</td><td>")
            .text(&num(f.rate.peak_per_10min.value))
            .raw("</td><td>")
            .text(&format!("{}%", num(f.flood.pct_time_in_flood.value)))
            .raw("</td><td>")
            .text(&f.chattering.alarms.len().to_string())
            .raw("</td><td>")
            .text(&f.stale.alarms.len().to_string())
            .raw("</td>")
            .verdict(overall(f), lang)
            .raw("</tr>\n");
    }
    p.raw("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_markup_is_not() {
        let mut p = Page { out: String::new() };
        p.raw("<td>").text("<script>alert('x')</script> & \"y\"").raw("</td>");
        assert_eq!(
            p.out,
            "<td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;</td>"
        );
    }
}
