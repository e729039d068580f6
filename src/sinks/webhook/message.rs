//! The text a person reads on a phone: an alarm transition rendered in Chinese (or English)
//! with the names the duty officer knows from the console — hazard source, point name and
//! place from `[labels]`, value and set-point with the unit, priority and transition in words,
//! the time in the site's local time, and a link that opens the alarm in the console.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::{AlarmEvent, Priority, Timestamp, Transition};

/// Characters of an alarm id kept as they are in a console link.
const ID_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Which language messages are written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Chinese, for duty officers and managers on site.
    #[default]
    Zh,
    /// English.
    En,
}

/// What a point or device is called and where it is, as `[labels]` has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    /// Name, e.g. `1号液氯储罐 可燃气体`.
    pub name: Option<String>,
    /// Place, e.g. `液氯储罐区 T-101 储罐 2F`.
    pub place: Option<String>,
}

/// Names of the site's points, devices and hazard sources, built by `config` from `[labels]`
/// and `[[hazard_sources]]` so messages use the words of the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// By point id or device name (an alarm's subject).
    pub subjects: BTreeMap<String, Naming>,
    /// Hazard source names by id.
    pub hazard_sources: BTreeMap<String, String>,
}

/// Site-wide message settings (`[notify]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    /// Language unless a target says otherwise.
    pub language: Language,
    /// Offset of the site's local time from UTC, in seconds.
    pub utc_offset_secs: i32,
    /// Base of the console's address; a link is `<base>#alarm=<id>`.
    pub console_url: Option<String>,
}

impl Default for MessageSettings {
    fn default() -> Self {
        Self {
            language: Language::Zh,
            utc_offset_secs: 8 * 3600,
            console_url: None,
        }
    }
}

/// An escalation step a message announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationNote {
    /// Roster name.
    pub roster: String,
    /// Level, from 1.
    pub level: usize,
    /// How long the alarm has gone unacknowledged.
    pub unacked_minutes: u64,
}

/// The fields of one message, each already in words; templates pick from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Point (or device) name, else its id.
    pub point: String,
    /// Place, or empty.
    pub place: String,
    /// Hazard source name (and id), or empty.
    pub hazard_source: String,
    /// Value with unit, or empty.
    pub value: String,
    /// Set-point with unit, or empty.
    pub limit: String,
    /// Priority in words.
    pub priority: String,
    /// Transition in words.
    pub transition: String,
    /// Local time of the transition, with its offset.
    pub time: String,
    /// Console link, or empty.
    pub link: String,
    /// Title line.
    pub title: String,
    /// Escalation line, or empty.
    pub escalation: String,
}

/// Priority in the reader's words.
pub fn priority_words(p: Priority, lang: Language) -> &'static str {
    match (lang, p) {
        (Language::Zh, Priority::Critical) => "紧急",
        (Language::Zh, Priority::High) => "高",
        (Language::Zh, Priority::Medium) => "中",
        (Language::Zh, Priority::Low) => "低",
        (Language::En, Priority::Critical) => "critical",
        (Language::En, Priority::High) => "high",
        (Language::En, Priority::Medium) => "medium",
        (Language::En, Priority::Low) => "low",
    }
}

/// Transition in the reader's words.
pub fn transition_words(t: Transition, lang: Language) -> &'static str {
    match lang {
        Language::Zh => match t {
            Transition::Raised => "报警",
            Transition::Cleared => "恢复",
            Transition::Acknowledged => "确认",
            Transition::Reset => "复位",
            Transition::Shelved => "搁置",
            Transition::Unshelved => "解除搁置",
            Transition::Suppressed => "抑制",
            Transition::Unsuppressed => "解除抑制",
            Transition::RemovedFromService => "停用",
            Transition::ReturnedToService => "恢复投用",
        },
        Language::En => match t {
            Transition::Raised => "raised",
            Transition::Cleared => "cleared",
            Transition::Acknowledged => "acknowledged",
            Transition::Reset => "reset",
            Transition::Shelved => "shelved",
            Transition::Unshelved => "unshelved",
            Transition::Suppressed => "suppressed",
            Transition::Unsuppressed => "unsuppressed",
            Transition::RemovedFromService => "removed from service",
            Transition::ReturnedToService => "returned to service",
        },
    }
}

/// `2026-12-07 09:41:05 (UTC+08:00)`: the site's local time of `ts`.
pub fn local_time(ts: Timestamp, offset_secs: i32) -> String {
    let offset = jiff::tz::Offset::from_seconds(offset_secs).unwrap_or(jiff::tz::Offset::UTC);
    let at = jiff::Timestamp::from_nanosecond(i128::from(ts.as_nanos())).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let local = at.to_zoned(jiff::tz::TimeZone::fixed(offset));
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let abs = offset_secs.unsigned_abs();
    format!(
        "{} (UTC{sign}{:02}:{:02})",
        local.strftime("%Y-%m-%d %H:%M:%S"),
        abs / 3600,
        abs % 3600 / 60
    )
}

/// The console link of alarm `id` under `base`.
pub fn console_link(base: &str, id: &str) -> String {
    format!("{base}#alarm={}", utf8_percent_encode(id, ID_KEEP))
}

fn number(v: f64) -> String {
    // Two decimals, trailing zeros dropped: 30.00 -> 30, 27.30 -> 27.3.
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn with_unit(v: f64, unit: &str) -> String {
    if unit.is_empty() {
        number(v)
    } else {
        format!("{} {unit}", number(v))
    }
}

/// Renders the words of `e` for a reader of `lang`.
pub fn fields(
    e: &AlarmEvent,
    dir: &Directory,
    settings: &MessageSettings,
    lang: Language,
    note: Option<&EscalationNote>,
) -> Fields {
    let naming = dir.subjects.get(&e.subject).cloned().unwrap_or_default();
    let point = naming.name.unwrap_or_else(|| e.subject.clone());
    let hazard_source = match &e.hazard_source {
        Some(id) => match dir.hazard_sources.get(id) {
            Some(name) => format!("{name}（{id}）"),
            None => id.clone(),
        },
        None => String::new(),
    };
    let value = if e.value.is_finite() {
        with_unit(e.value, &e.unit)
    } else {
        String::new()
    };
    let limit = e.limit.map(|l| with_unit(l, &e.unit)).unwrap_or_default();
    let priority = priority_words(e.priority, lang).to_string();
    let transition = transition_words(e.transition, lang).to_string();
    let title = match lang {
        Language::Zh => format!("【{priority}】{point} {transition}"),
        Language::En => format!("[{priority}] {point} {transition}"),
    };
    let escalation = match (note, lang) {
        (Some(n), Language::Zh) => format!(
            "升级通知（{} 第{}级）：报警已 {} 分钟未确认",
            n.roster, n.level, n.unacked_minutes
        ),
        (Some(n), Language::En) => format!(
            "Escalation ({} level {}): unacknowledged for {} min",
            n.roster, n.level, n.unacked_minutes
        ),
        (None, _) => String::new(),
    };
    Fields {
        point,
        place: naming.place.unwrap_or_default(),
        hazard_source,
        value,
        limit,
        priority,
        transition,
        time: local_time(e.ts, settings.utc_offset_secs),
        link: settings
            .console_url
            .as_deref()
            .map(|b| console_link(b, &e.alarm_id))
            .unwrap_or_default(),
        title,
        escalation,
    }
}

impl Fields {
    /// `(label, value)` lines worth showing, in reading order.
    fn lines(&self, lang: Language) -> Vec<(&'static str, &str)> {
        let labels: [&'static str; 7] = match lang {
            Language::Zh => ["危险源", "测点", "位置", "当前值", "报警限值", "级别", "时间"],
            Language::En => ["Hazard source", "Point", "Place", "Value", "Limit", "Priority", "Time"],
        };
        let values = [
            &self.hazard_source,
            &self.point,
            &self.place,
            &self.value,
            &self.limit,
            &self.priority,
            &self.time,
        ];
        labels
            .into_iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|(l, v)| (l, v.as_str()))
            .collect()
    }

    fn link_words(lang: Language) -> &'static str {
        match lang {
            Language::Zh => "在控制台查看",
            Language::En => "Open in console",
        }
    }

    /// Markdown as the chat robots render it: a heading, one line per field, the link.
    pub fn markdown(&self, lang: Language) -> String {
        let sep = if lang == Language::Zh { "：" } else { ": " };
        let mut out = format!("### {}\n", self.title);
        if !self.escalation.is_empty() {
            out.push_str(&format!("> **{}**\n", self.escalation));
        }
        for (l, v) in self.lines(lang) {
            out.push_str(&format!("- {l}{sep}{v}\n"));
        }
        if !self.link.is_empty() {
            out.push_str(&format!("- [{}]({})\n", Self::link_words(lang), self.link));
        }
        out
    }

    /// Plain text: the title, the escalation, one line per field, the bare link.
    pub fn text(&self, lang: Language) -> String {
        let sep = if lang == Language::Zh { "：" } else { ": " };
        let mut out = self.title.clone();
        if !self.escalation.is_empty() {
            out.push('\n');
            out.push_str(&self.escalation);
        }
        for (l, v) in self.lines(lang) {
            out.push_str(&format!("\n{l}{sep}{v}"));
        }
        if !self.link.is_empty() {
            out.push_str(&format!("\n{}{sep}{}", Self::link_words(lang), self.link));
        }
        out
    }

    /// The lines of `text` without the title, as Feishu's rich text wants them.
    pub fn body_lines(&self, lang: Language) -> Vec<String> {
        let sep = if lang == Language::Zh { "：" } else { ": " };
        let mut out = Vec::new();
        if !self.escalation.is_empty() {
            out.push(self.escalation.clone());
        }
        out.extend(self.lines(lang).into_iter().map(|(l, v)| format!("{l}{sep}{v}")));
        out
    }

    /// Link words for a rich-text anchor.
    pub fn link_text(lang: Language) -> &'static str {
        Self::link_words(lang)
    }
}

#[cfg(test)]
pub(crate) mod tests;
