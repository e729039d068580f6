use std::path::Path;

use super::*;
use crate::sinks::webhook::notify_config::{RawEscalation, RawNotify, validate_escalations, validate_notify};

#[derive(Debug, Deserialize)]
struct Doc {
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    escalations: Vec<RawEscalation>,
}

/// Validates `text`; returns the webhooks and every error as `line:key: message`.
fn check(text: &str) -> (Vec<WebhookSpec>, Vec<String>) {
    let src = SourceText::new(Path::new("site.toml"), text);
    let doc: Doc = toml::from_str(text).unwrap();
    let mut errors = Vec::new();
    let hooks = validate(&src, &doc.webhooks, &mut errors);
    validate_notify(&src, &doc.notify, &mut errors);
    validate_escalations(&src, &doc.escalations, &hooks, &mut errors);
    let errors = errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.position.map_or(0, |p| p.0), e.key, e.message))
        .collect();
    (hooks, errors)
}

#[test]
fn robots_default_to_their_service_address_and_need_a_key() {
    let (hooks, errors) = check(
        "[[webhooks]]\nname = \"duty\"\nkind = \"wecom\"\nkey_env = \"WECOM_KEY\"\n\
         [[webhooks]]\nname = \"mgr\"\nkind = \"dingtalk\"\n",
    );
    assert_eq!(hooks[0].url, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send");
    assert_eq!(hooks[1].url, "https://oapi.dingtalk.com/robot/send");
    assert_eq!(
        errors,
        ["6:webhooks[1].key_env: is required: the environment variable holding the robot's key or access token"]
    );
}

#[test]
fn a_template_placeholder_that_does_not_exist_is_named_with_its_line() {
    let (_, errors) = check(
        "[[webhooks]]\nname = \"sms\"\nkind = \"template\"\nurl = \"http://127.0.0.1:9/sms\"\n\
         template = { body = \"{point} {valu}\" }\nquiet_hours = [\"22:00\", \"7\"]\n",
    );
    assert_eq!(
        errors,
        [
            "5:webhooks[0].template.body: unknown placeholder `{valu}`; known: point, value, limit, priority, \
             transition, time, hazard_source, place, link, phones, alarm_id, title, text",
            "6:webhooks[0].quiet_hours: `22:00`, `7`: times are written HH:MM (00:00 to 23:59)",
        ]
    );
}

#[test]
fn escalations_name_existing_webhooks_in_order_of_time() {
    let (_, errors) = check(
        "[[webhooks]]\nname = \"duty\"\nurl = \"http://127.0.0.1:9/\"\n\
         [notify]\nutc_offset = \"8\"\nconsole_url = \"ftp://x\"\n\
         [[escalations]]\nname = \"gas\"\n\
         [[escalations.levels]]\nafter = \"10m\"\nnotify = [\"duty\"]\n\
         [[escalations.levels]]\nafter = \"5m\"\nnotify = [\"boss\"]\n",
    );
    assert_eq!(
        errors,
        [
            "5:notify.utc_offset: `8` is not an offset like `+08:00`",
            "6:notify.console_url: `ftp://x` is not an http or https URL",
            "13:escalations[0].levels[1].after: must not be shorter than the level before (10m)",
            "14:escalations[0].levels[1].notify: no [[webhooks]] entry is named `boss`",
        ]
    );
}

#[test]
fn options_a_kind_does_not_use_are_refused_by_name() {
    let (_, errors) = check(
        "[[webhooks]]\nname = \"f\"\nkind = \"feishu\"\nkey_env = \"K\"\nphones = [\"138\"]\n\
         mention_all_on_critical = true\nonly_escalations = true\n\
         [[webhooks]]\nname = \"s\"\nkind = \"template\"\nurl = \"http://127.0.0.1:9/\"\n\
         template = { body = \"{text}\", headers_env = { \"X Key\" = \"K\" } }\n",
    );
    assert_eq!(
        errors,
        [
            "2:webhooks[0].mention_all_on_critical: only WeCom and DingTalk robots mention people",
            "5:webhooks[0].phones: only WeCom and DingTalk robots (mentions) and templates (`{phones}`) use phone numbers",
            "12:webhooks[1].template.headers_env: `X Key` is not an HTTP header name",
            "0:: webhook `f` has only_escalations = true but no [[escalations]] level notifies it: it would never be used",
        ]
    );
}
