//! `GET /`: a plain status page for duty officers, in Chinese with English labels.
//! It refreshes itself every few seconds; the full console comes with the alert API.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use super::{AppState, rfc3339};
use crate::model::Priority;

pub(super) async fn index(State(s): State<AppState>) -> Html<String> {
    let mut h = String::with_capacity(16 * 1024);
    let alarms = s.live.active_alarms();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3"><title>重大危险源监测 {id}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}th{{background:#eee}}
.critical{{background:#d32f2f;color:#fff}}.high{{background:#f57c00;color:#fff}}.medium{{background:#fbc02d}}
.bad{{color:#b71c1c;font-weight:bold}}</style></head><body>
<h1>重大危险源监测网关 <small>Hazard gateway {id}</small></h1>
<h2>活动报警 Active alarms ({n})</h2>"#,
        id = esc(&s.live.gateway_id),
        n = alarms.len()
    );
    if alarms.is_empty() {
        h.push_str("<p>无活动报警 No active alarms</p>");
    } else {
        h.push_str("<table><tr><th>优先级 Priority</th><th>对象 Subject</th><th>危险源 Source</th><th>条件 Condition</th><th>状态 State</th><th>值 Value</th><th>限值 Limit</th><th>时间 Raised</th></tr>");
        for a in &alarms {
            let _ = write!(
                h,
                "<tr class=\"{p}\"><td>{p}</td><td>{pt}</td><td>{hs}</td><td>{cond} {lvl}</td><td>{st}</td><td>{v}</td><td>{lim}</td><td>{t}</td></tr>",
                p = priority_class(a.priority),
                pt = esc(&a.subject),
                hs = esc(a.hazard_source.as_deref().unwrap_or("-")),
                cond = a.condition,
                lvl = a.level.map(|l| l.as_str()).unwrap_or_default(),
                st = a.state,
                v = if a.value.is_finite() {
                    format!("{:.2} {}", a.value, esc(&a.unit))
                } else {
                    "-".into()
                },
                lim = a.limit.map_or("-".to_string(), |l| format!("{l} {}", esc(&a.unit))),
                t = rfc3339(a.raised_at.unwrap_or(a.ts)),
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>测点 Points</h2><table><tr><th>测点 Point</th><th>危险源 Source</th><th>设备 Device</th><th>值 Value</th><th>质量 Quality</th><th>时间 Time</th></tr>");
    for (id, reading) in s.live.readings() {
        let m = s.live.points.meta(id);
        let (value, quality, time) = match reading {
            Some(r) if r.value.is_finite() => (
                format!("{:.2} {}", r.value, esc(&m.unit)),
                r.quality.as_str(),
                rfc3339(r.ts),
            ),
            Some(r) => ("-".to_string(), r.quality.as_str(), rfc3339(r.ts)),
            None => ("-".to_string(), "no_data", String::new()),
        };
        let class = if quality == "good" { "" } else { "bad" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{value}</td><td class=\"{class}\">{quality}</td><td>{time}</td></tr>",
            esc(&m.name),
            esc(m.hazard_source.as_deref().unwrap_or("-")),
            esc(&m.device),
        );
    }
    h.push_str("</table><p><a href=\"/api/v1/points\">/api/v1/points</a> · <a href=\"/api/v1/alarms\">/api/v1/alarms</a> · <a href=\"/metrics\">/metrics</a></p></body></html>");
    Html(h)
}

fn priority_class(p: Priority) -> &'static str {
    p.as_str()
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
