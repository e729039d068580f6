//! Config mistakes an instrument engineer makes, each reported with file, line, column and key.

use std::path::{Path, PathBuf};

use hazard_gateway::config::{ConfigError, GatewayConfig};
use proptest::prelude::*;

const GOOD: &str = r#"
[gateway]
id = "gw"

[[hazard_sources]]
id = "MHS-001"
name = "液氯储罐区"
level = 2

[[devices]]
name = "gas-ai-1"
profile = "ai4-gas-lel"
transport = { tcp = "127.0.0.1:502" }
interval = "1s"
hazard_source = "MHS-001"
points = { ch1 = "MHS-001/GT-101", ch2 = "MHS-001/GT-102" }

[[devices]]
name = "tank-T101"
profile = "tank-ltp"
transport = { tcp = "127.0.0.1:503" }

[[rules]]
points = "MHS-001/GT-*"
threshold = { high = 20.0, high_high = 40.0, deadband = 2.0, on_delay = "2s" }
"#;

fn file() -> PathBuf {
    PathBuf::from("/etc/hazard-gateway/site.toml")
}

/// Replaces `from` (which must occur once) in the good config and returns the errors.
fn errors_after(from: &str, to: &str) -> Vec<ConfigError> {
    assert_eq!(GOOD.matches(from).count(), 1, "`{from}` must occur once");
    let text = GOOD.replace(from, to);
    match GatewayConfig::parse(&file(), &text) {
        Ok(_) => panic!("config with `{to}` was accepted"),
        Err(e) => e.0,
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("needle in text");
    text[..at].matches('\n').count() + 1
}

fn only(errors: &[ConfigError]) -> &ConfigError {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    &errors[0]
}

#[test]
fn the_good_config_is_accepted_with_rules_bound() {
    let cfg = GatewayConfig::parse(&file(), GOOD).unwrap();
    assert_eq!(cfg.devices.len(), 2);
    assert_eq!(cfg.points.len(), 5);
    // Two gas points carry the configured rule; three tank points keep their profile defaults.
    let bindings: Vec<_> = cfg.rule_bindings().collect();
    let names: Vec<_> = bindings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "rule-0").count(), 2);
    assert_eq!(names.iter().filter(|n| **n == "profile:tank-ltp").count(), 3);
    assert!(cfg.summary().contains("2 device(s), 5 point(s)"), "{}", cfg.summary());
    // Every point also gets the automatic sensor-fault alarm.
    assert_eq!(names.iter().filter(|n| **n == "sensor_fault").count(), 5);
}

#[test]
fn unknown_key_names_its_table_and_line() {
    let text = GOOD.replace(
        "transport = { tcp = \"127.0.0.1:503\" }",
        "transprot = { tcp = \"127.0.0.1:503\" }",
    );
    let errors = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let e = only(&errors);
    assert_eq!(e.file, file());
    assert_eq!(e.key, "devices[1].transprot");
    assert_eq!(e.position, Some((line_of(&text, "transprot"), 1)));
    assert!(e.message.contains("unknown field `transprot`"), "{}", e.message);
    assert!(e.to_string().starts_with(&format!(
        "/etc/hazard-gateway/site.toml:{}:1: devices[1].transprot: ",
        line_of(&text, "transprot")
    )));
}

#[test]
fn bad_duration_names_the_key_and_shows_examples() {
    let errors = errors_after("interval = \"1s\"", "interval = \"fast\"");
    let e = only(&errors);
    assert_eq!(e.key, "devices[0].interval");
    assert_eq!(e.position.unwrap().0, line_of(GOOD, "interval = "));
    assert!(
        e.message.contains("invalid duration `fast`") && e.message.contains("\"500ms\""),
        "{}",
        e.message
    );
}

#[test]
fn sizes_parse_and_a_bad_size_names_the_key() {
    let ok = format!("{GOOD}\n[api]\nlisten = \"127.0.0.1:9000\"\nmax_body = \"1MiB\"\n");
    let cfg = GatewayConfig::parse(&file(), &ok).unwrap();
    assert_eq!(cfg.api_max_body, 1024 * 1024);
    assert_eq!(cfg.api_listen.port(), 9000);
    let bad = format!("{GOOD}\n[api]\nmax_body = \"lots\"\n");
    let errors = GatewayConfig::parse(&file(), &bad).unwrap_err().0;
    let e = only(&errors);
    assert_eq!(e.key, "api.max_body");
    assert_eq!(e.position.unwrap().0, line_of(&bad, "max_body"));
    assert!(e.message.contains("invalid size `lots`"), "{}", e.message);
}

#[test]
fn missing_profile_is_an_error_listing_known_profiles() {
    let errors = errors_after("profile = \"tank-ltp\"", "profile = \"tank-xyz\"");
    let e = only(&errors);
    assert_eq!(e.key, "devices[1].profile");
    assert_eq!(e.position, Some((line_of(GOOD, "profile = \"tank-ltp\""), 11)));
    assert!(e.message.contains("no device profile `tank-xyz`"));
    assert!(e.message.contains("ai4-gas-lel"), "{}", e.message);
}

#[test]
fn duplicate_point_id_names_both_devices() {
    let errors = errors_after("ch2 = \"MHS-001/GT-102\"", "ch2 = \"MHS-001/GT-101\"");
    let e = only(&errors);
    assert_eq!(e.key, "devices[0].points.ch2");
    assert_eq!(e.position.unwrap().0, line_of(GOOD, "points = { ch1"));
    assert!(
        e.message
            .contains("point id `MHS-001/GT-101` is already used (by device `gas-ai-1`)"),
        "{}",
        e.message
    );
}

#[test]
fn rule_on_an_unknown_point_is_an_error_not_a_no_op() {
    let errors = errors_after("points = \"MHS-001/GT-*\"", "points = \"MHS-009/GT-*\"");
    let e = only(&errors);
    assert_eq!(e.key, "rules[0].points");
    assert_eq!(e.position, Some((line_of(GOOD, "points = \"MHS-001/GT-*\""), 10)));
    assert!(e.message.contains("`MHS-009/GT-*` matches no point"));
    let errors = errors_after("points = \"MHS-001/GT-*\"", "points = \"MHS-001/GT-199\"");
    assert!(only(&errors).message.contains("`MHS-001/GT-199` matches no point"));
}

#[test]
fn hazard_source_level_outside_gb18218_grades() {
    let errors = errors_after("level = 2", "level = 5");
    let e = only(&errors);
    assert_eq!(e.key, "hazard_sources[0].level");
    assert_eq!(e.position, Some((line_of(GOOD, "level = 2"), 9)));
    assert!(e.message.contains("1..=4"));
}

#[test]
fn unknown_hazard_source_and_bad_address_are_both_reported() {
    let text = GOOD
        .replace("hazard_source = \"MHS-001\"", "hazard_source = \"MHS-002\"")
        .replace("127.0.0.1:503", "127.0.0.1");
    let errors = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].key, "devices[0].hazard_source");
    assert!(errors[0].message.contains("no hazard source `MHS-002`"));
    assert_eq!(errors[1].key, "devices[1].transport.tcp");
    assert!(errors[1].message.contains("not host:port"));
}

#[test]
fn set_points_out_of_order_or_range_are_errors() {
    let errors = errors_after("high = 20.0, high_high = 40.0", "high = 45.0, high_high = 140.0");
    let e = only(&errors);
    assert_eq!(e.key, "rules[0].threshold");
    assert!(
        e.message.contains("outside the instrument's range 0..100"),
        "{}",
        e.message
    );
    let errors = errors_after("high = 20.0, high_high = 40.0", "high = 45.0, high_high = 40.0");
    assert!(only(&errors).message.contains("high (45) must be below high_high (40)"));
}

#[test]
fn syntax_error_points_at_the_line() {
    let errors = errors_after("name = \"tank-T101\"", "name = \"tank-T101");
    let e = only(&errors);
    assert_eq!(e.position.unwrap().0, line_of(GOOD, "name = \"tank-T101\""));
}

#[test]
fn wrong_type_names_the_key() {
    let errors = errors_after("level = 2", "level = \"two\"");
    let e = only(&errors);
    assert_eq!(e.key, "hazard_sources[0].level");
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    let errors = GatewayConfig::load(Path::new("/nonexistent/site.toml")).unwrap_err().0;
    let e = only(&errors);
    assert_eq!(e.file, Path::new("/nonexistent/site.toml"));
    assert!(e.message.contains("cannot read config"));
}

/// Every error the loader returns must be well-formed: the right file, a message, and a
/// position inside the text when it has one.
fn assert_well_formed(text: &str, result: Result<GatewayConfig, hazard_gateway::config::ConfigErrors>) {
    if let Err(errors) = result {
        assert!(!errors.0.is_empty());
        let lines = text.split('\n').count();
        for e in &errors.0 {
            assert!(!e.message.is_empty());
            if let Some((line, col)) = e.position {
                assert!(line >= 1 && line <= lines && col >= 1, "{e} outside {lines} lines");
            }
        }
    }
}

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        "[a-z0-9:./*-]{0,12}".prop_map(toml::Value::String),
        prop_oneof![
            Just("1s"),
            Just("500ms"),
            Just("127.0.0.1:502"),
            Just("ai4-gas-lel"),
            Just("MHS-001")
        ]
        .prop_map(|s| toml::Value::String(s.into())),
    ];
    let keys = prop_oneof![
        Just("gateway"),
        Just("id"),
        Just("api"),
        Just("listen"),
        Just("devices"),
        Just("name"),
        Just("profile"),
        Just("transport"),
        Just("tcp"),
        Just("points"),
        Just("rules"),
        Just("threshold"),
        Just("high"),
        Just("hazard_sources"),
        Just("level"),
        Just("interval"),
        Just("history"),
        Just("retention"),
        Just("ch1"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            proptest::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_loader(text in "\\PC{0,400}") {
        let result = GatewayConfig::parse(&file(), &text);
        prop_assert!(result.is_err(), "random text cannot be a complete config");
        assert_well_formed(&text, result);
    }

    #[test]
    fn arbitrary_toml_never_panics_the_loader(v in toml_value()) {
        let Some(table) = v.as_table() else { return Ok(()) };
        let text = toml::to_string(table).unwrap_or_default();
        let result = GatewayConfig::parse(&file(), &text);
        assert_well_formed(&text, result);
    }

    #[test]
    fn mutated_good_config_never_panics_the_loader(cut in 0usize..GOOD.len(), insert in "\\PC{0,8}") {
        let mut text = GOOD.to_string();
        let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.insert_str(cut, &insert);
        let result = GatewayConfig::parse(&file(), &text);
        assert_well_formed(&text, result);
    }
}

/// Appends rules to the good config and returns the errors.
fn errors_with(extra: &str) -> Vec<ConfigError> {
    let text = format!("{GOOD}\n{extra}");
    match GatewayConfig::parse(&file(), &text) {
        Ok(_) => panic!("config with `{extra}` was accepted"),
        Err(e) => e.0,
    }
}

#[test]
fn every_rule_kind_binds_from_config() {
    let extra = r#"
[alarms]
communication_priority = "critical"
flood_threshold = 20
max_shelve = "4h"

[[rules]]
name = "seepage-rise"
points = "tank-T101/level"
rate_of_change = { rise = 0.5, per = "1h", window = "30m", priority = "medium" }

[[rules]]
name = "silence"
hazard_source = "MHS-001"
stale = { after = "30s", priority = "medium" }

[[rules]]
name = "detector-fault"
kind = "gas"
sensor_fault = { priority = "critical", on_delay = "5s" }

[[rules]]
name = "gas-pair"
points = "MHS-001/GT-10[12]"
deviation = { max = 10.0, deadband = 1.0 }

[[rules]]
name = "zone-a"
points = "MHS-001/GT-*"
vote = { k = 2, level = "high", priorities = { high = "critical" } }

[[rules]]
name = "tank-latch"
points = "tank-T101/pressure"
latching = true
threshold = { high = 1.2, deadband_percent = 2.0, off_delay = "10s" }

[[rules]]
name = "gas-trend"
points = "MHS-001/GT-*"
time_to_limit = { horizon = "30m", window = "10m", min_samples = 10, priority = "low" }
"#;
    let text = format!("{GOOD}\n{extra}");
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    let count = |name: &str| cfg.rule_bindings().filter(|r| r.name == name).count();
    assert_eq!(count("seepage-rise"), 1);
    assert_eq!(count("silence"), 2, "the two points of MHS-001");
    assert_eq!(count("detector-fault"), 2);
    assert_eq!(count("sensor_fault"), 3, "the automatic one stays on the tank points");
    assert_eq!((count("gas-pair"), count("zone-a")), (1, 1));
    assert_eq!(count("gas-trend"), 2, "one per gas point");
    assert!(cfg.rules.iter().any(|r| r.name == "tank-latch" && r.latching));
    assert_eq!(cfg.alarms.flood_threshold, 20);
}

#[test]
fn a_deviation_between_different_units_is_refused() {
    let errors = errors_with(
        "[[rules]]\nname = \"mixed\"\npoints = \"{MHS-001/GT-101,tank-T101/level}\"\ndeviation = { max = 1.0 }\n",
    );
    let e = only(&errors);
    assert_eq!(e.key, "rules[1].deviation");
    assert!(e.message.contains("must share a unit"), "{}", e.message);
}

#[test]
fn a_vote_on_points_without_that_level_is_refused() {
    let errors =
        errors_with("[[rules]]\nname = \"pond\"\npoints = \"MHS-001/GT-*\"\nvote = { escalate = { blue = 4 } }\n");
    let e = only(&errors);
    assert_eq!(e.key, "rules[1]");
    assert!(
        e.message.contains("no threshold rule gives it a `blue`-family level"),
        "{}",
        e.message
    );
    let errors = errors_with("[[rules]]\nname = \"pond\"\nvote = { escalate = { blue = 2 }, groups = [\"items\"] }\n");
    assert!(
        only(&errors)
            .message
            .contains("counts `items`, which is not a vote rule defined before it")
    );
}

#[test]
fn two_rules_defining_one_alarm_are_refused() {
    let errors = errors_with("[[rules]]\nname = \"again\"\npoints = \"MHS-001/GT-101\"\nthreshold = { high = 30.0 }\n");
    let e = only(&errors);
    assert!(
        e.message
            .contains("alarm `MHS-001/GT-101:high` is defined by both rule `rule-0` and rule `again`"),
        "{}",
        e.message
    );
    assert_eq!(e.position.unwrap().0, GOOD.lines().count() + 2);
}

#[test]
fn a_time_to_limit_rule_names_its_bad_parameters() {
    let extra = "[[rules]]\nname = \"trend\"\npoints = \"MHS-001/GT-101\"\ntime_to_limit = { horizon = \"0s\", min_samples = 40 }\n";
    let errors = errors_with(extra);
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["rules[1].time_to_limit", "rules[1].time_to_limit"],
        "{errors:#?}"
    );
    assert!(
        errors[0]
            .message
            .contains("horizon and window must be longer than zero")
    );
    assert!(
        errors[1].message.contains("min_samples must be 2 to 32"),
        "{}",
        errors[1].message
    );
    let line = line_of(&format!("{GOOD}\n{extra}"), "time_to_limit");
    assert_eq!(errors[0].position.unwrap().0, line);
    let errors = errors_with(
        "[[rules]]\npoints = \"MHS-001/GT-101\"\ntime_to_limit = { horizon = \"30m\", window = \"ten\" }\n",
    );
    let e = only(&errors);
    assert_eq!(e.key, "rules[1].time_to_limit");
    assert!(e.message.contains("invalid duration `ten`"), "{}", e.message);
}

#[test]
fn a_suspect_rule_names_its_bad_parameters_and_the_point() {
    let extra = "[[rules]]\nname = \"quality\"\npoints = \"MHS-001/GT-101\"\nsuspect = { epsilon = -0.5 }\n";
    let errors = errors_with(extra);
    let e = only(&errors);
    assert_eq!(e.key, "rules[1].suspect.epsilon");
    assert!(e.message.contains("zero or a positive number"), "{}", e.message);
    assert_eq!(e.position.unwrap().0, line_of(&format!("{GOOD}\n{extra}"), "suspect ="));
    // A gas detector has no default stuck window: asking for the default names the point.
    let errors = errors_with("[[rules]]\npoints = \"MHS-001/GT-101\"\nsuspect = { stuck = true }\n");
    let e = only(&errors);
    assert_eq!(e.key, "rules[1].suspect");
    assert!(
        e.message.contains("point `MHS-001/GT-101` (gas) has no default window"),
        "{}",
        e.message
    );
    let errors = errors_with("[[rules]]\npoints = \"MHS-001/GT-101\"\nsuspect = { max_rate = -2 }\n");
    assert!(only(&errors).message.contains("positive number of units per second"));
}

#[test]
fn a_rule_needs_exactly_one_kind_and_a_selector() {
    let errors = errors_with("[[rules]]\npoints = \"MHS-001/GT-101\"\nstale = { after = \"1m\" }\nsensor_fault = {}\n");
    assert!(only(&errors).message.contains("exactly one of threshold"));
    let errors = errors_with("[[rules]]\nstale = { after = \"1m\" }\n");
    assert!(only(&errors).message.contains("at least one selector"));
    let errors = errors_with("[[rules]]\nkind = \"gass\"\nstale = { after = \"1m\" }\n");
    let e = only(&errors);
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        ("rules[1].kind", "unknown point kind `gass`")
    );
}

#[test]
fn group_rules_need_a_name_and_sensible_parameters() {
    let errors = errors_with("[[rules]]\npoints = \"MHS-001/GT-*\"\nvote = { k = 3, level = \"high\" }\n");
    let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("needs a `name`")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("k must be 1..=2")), "{messages:?}");
    let errors =
        errors_with("[[rules]]\nname = \"r\"\npoints = \"tank-T101/level\"\nrate_of_change = { per = \"1h\" }\n");
    assert!(only(&errors).message.contains("give rise, fall or both"));
}

#[test]
fn a_token_hash_that_is_not_sha256_is_refused() {
    let errors =
        errors_with("[api]\n[[api.tokens]]\nname = \"console\"\nrole = \"operator\"\nhash = \"plain-secret\"\n");
    let e = only(&errors);
    assert_eq!(e.key, "api.tokens[0].hash");
    assert!(e.message.contains("hazard-gateway hash-token"), "{}", e.message);
    let errors = errors_with("[api]\n[[api.tokens]]\nname = \"console\"\nrole = \"root\"\nhash = \"x\"\n");
    assert!(only(&errors).message.contains("unknown variant `root`"), "{errors:?}");
}

#[test]
fn a_webhook_needs_an_http_url_and_a_file_safe_name() {
    let errors = errors_with("[[webhooks]]\nname = \"park/platform\"\nurl = \"ftp://example/alarms\"\n");
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, vec!["webhooks[0].name", "webhooks[0].url"], "{errors:#?}");
    assert!(errors[1].message.contains("scheme `ftp` is not http or https"));
}

#[test]
fn two_buses_claiming_one_serial_port_name_both_devices() {
    let text = GOOD
        .replace(
            r#"transport = { tcp = "127.0.0.1:502" }"#,
            r#"transport = { rtu = { port = "/dev/ttyS1", baud = 9600, parity = "none" } }"#,
        )
        .replace(
            r#"transport = { tcp = "127.0.0.1:503" }"#,
            "transport = { rtu = { port = \"/dev/ttyS1\", baud = 19200, parity = \"even\" } }\nunit_id = 2",
        );
    let errs = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let e = only(&errs);
    assert_eq!(e.key, "devices[1].transport.rtu");
    assert_eq!(e.position.unwrap().0, line_of(&text, "baud = 19200"));
    assert!(
        e.message.contains("`gas-ai-1`") && e.message.contains("`tank-T101`"),
        "{e}"
    );
    assert!(e.message.contains("/dev/ttyS1"), "{e}");
}

#[test]
fn devices_sharing_a_serial_port_with_one_setting_form_one_bus() {
    let bus = r#"transport = { rtu = { port = "/dev/ttyS1", baud = 9600 } }"#;
    let text = GOOD.replace(r#"transport = { tcp = "127.0.0.1:502" }"#, bus).replace(
        r#"transport = { tcp = "127.0.0.1:503" }"#,
        &format!("{bus}\nunit_id = 2"),
    );
    let cfg = GatewayConfig::parse(&file(), &text).expect("one bus, two units");
    let lines = hazard_gateway::sources::modbus::poller::group_lines(&cfg.devices);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].devices, vec![0, 1]);
}

#[test]
fn two_devices_with_one_unit_id_on_a_bus_are_an_error() {
    let bus = r#"transport = { rtu = { port = "/dev/ttyS1" } }"#;
    let text = GOOD
        .replace(r#"transport = { tcp = "127.0.0.1:502" }"#, bus)
        .replace(r#"transport = { tcp = "127.0.0.1:503" }"#, bus);
    let errs = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let e = only(&errs);
    assert_eq!(e.key, "devices[1].unit_id");
    assert!(e.message.contains("both unit 1"), "{e}");
    // Left to its default, the unit id has no line: the error points at the device's name.
    assert_eq!(e.position, Some((line_of(&text, "name = \"tank-T101\""), 8)));
    // Written, it is the unit_id line.
    let text = text.replacen(
        "transport = { rtu = { port = \"/dev/ttyS1\" } }\n\n[[rules]]",
        "transport = { rtu = { port = \"/dev/ttyS1\" } }\nunit_id = 1\n\n[[rules]]",
        1,
    );
    let errs = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let e = only(&errs);
    assert_eq!(e.position, Some((line_of(&text, "unit_id = 1"), 11)));
}

#[test]
fn bad_serial_settings_and_overrides_name_their_keys() {
    let errs = errors_after(
        r#"transport = { tcp = "127.0.0.1:503" }"#,
        "transport = { rtu = { port = \"/dev/ttyS2\", data_bits = 9, stop_bits = 3 } }\nunit_id = 0\nmax_bits = 5000\npoint_word_order = { nope = \"CDAB\" }",
    );
    let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "devices[1].transport.rtu.data_bits",
        "devices[1].transport.rtu.stop_bits",
        "devices[1].unit_id",
        "devices[1].max_bits",
        "devices[1].point_word_order.nope",
    ] {
        assert!(keys.contains(&key), "{key} missing from {errs:#?}");
    }
}

#[test]
fn an_unknown_parity_or_word_order_is_reported_with_its_line() {
    let errs = errors_after(
        r#"transport = { tcp = "127.0.0.1:503" }"#,
        "transport = { rtu = { port = \"/dev/ttyS2\", parity = \"mark\" } }",
    );
    let e = only(&errs);
    assert!(e.message.contains("mark"), "{e}");
    let errs = errors_after(
        r#"transport = { tcp = "127.0.0.1:503" }"#,
        "transport = { tcp = \"127.0.0.1:503\" }\nword_order = \"ADCB\"",
    );
    let e = only(&errs);
    assert!(e.message.contains("ADCB"), "{e}");
    assert_eq!(e.key, "devices[1].word_order");
}

#[test]
fn device_and_point_word_orders_override_the_profile_in_that_order() {
    let text = GOOD.replace(
        r#"transport = { tcp = "127.0.0.1:503" }"#,
        "transport = { tcp = \"127.0.0.1:503\" }\nword_order = \"CDAB\"\npoint_word_order = { pressure = \"DCBA\" }",
    );
    let cfg = GatewayConfig::parse(&file(), &text).expect("valid");
    let tank = cfg.devices.iter().find(|d| d.name == "tank-T101").unwrap();
    let order = |key: &str| {
        let id = cfg.points.id_of(&format!("tank-T101/{key}")).unwrap();
        let at = tank.points.iter().position(|p| *p == id).unwrap();
        tank.registers[at].word_order
    };
    use hazard_gateway::sources::modbus::register::WordOrder;
    assert_eq!(order("level"), WordOrder::CDAB);
    assert_eq!(order("pressure"), WordOrder::DCBA);
}

#[test]
fn history_keys_are_checked_with_their_line() {
    let text = format!(
        "{GOOD}\n[history]\nheartbeat = \"500ms\"\nrollup_retention = \"1h\"\ndeadband_percent = 150.0\nqueue_batches = 0\n\n[history.deadbands]\n\"MHS-001/GT-101\" = -1.0\n\"nope/x\" = 1.0\n"
    );
    let errors = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let got: Vec<(usize, String)> = errors
        .iter()
        .map(|e| (e.position.map_or(0, |p| p.0), e.key.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (line_of(&text, "heartbeat ="), "history.heartbeat".to_string()),
            (
                line_of(&text, "rollup_retention ="),
                "history.rollup_retention".to_string()
            ),
            (
                line_of(&text, "deadband_percent ="),
                "history.deadband_percent".to_string()
            ),
            (line_of(&text, "queue_batches ="), "history.queue_batches".to_string()),
            (
                line_of(&text, "\"MHS-001/GT-101\" ="),
                "history.deadbands.\"MHS-001/GT-101\"".to_string()
            ),
            (
                line_of(&text, "\"nope/x\" ="),
                "history.deadbands.\"nope/x\"".to_string()
            ),
        ],
        "{errors:#?}"
    );
    let msg = |key: &str| errors.iter().find(|e| e.key == key).map(|e| e.message.clone()).unwrap();
    assert_eq!(msg("history.heartbeat"), "heartbeat must be at least 1s, got 500ms");
    assert!(msg("history.rollup_retention").contains("must not be shorter than the raw retention"));
    assert_eq!(
        msg("history.deadbands.\"nope/x\""),
        "no point `nope/x` is defined by any device"
    );
    assert_eq!(
        msg("history.deadbands.\"MHS-001/GT-101\""),
        "a deadband must be zero or positive, got -1"
    );
}

#[test]
fn history_settings_default_and_resolve_point_deadbands() {
    let cfg = GatewayConfig::parse(&file(), GOOD).unwrap();
    assert_eq!(cfg.history, hazard_gateway::config::HistorySettings::default());
    let text = format!(
        "{GOOD}\n[history]\nretention = \"12h\"\nheartbeat = \"5m\"\n[history.deadbands]\n\"tank-T101/level\" = 0.01\n"
    );
    let cfg = GatewayConfig::parse(&file(), &text).unwrap();
    let level = cfg.points.id_of("tank-T101/level").unwrap();
    assert_eq!(cfg.history.deadbands, [(level, 0.01)]);
    assert_eq!(
        (cfg.history.retention, cfg.history.heartbeat),
        (
            std::time::Duration::from_secs(12 * 3600),
            std::time::Duration::from_secs(300)
        )
    );
}

const MQTT: &str = r#"
[[mqtt.brokers]]
name = "plant"
address = "127.0.0.1:1883"

[[mqtt.subscriptions]]
name = "dam"
broker = "plant"
topic = "park/{site}/dam/{tag}"
point = "{site}/{tag}"
value = "/v"
unit = "mm"
kind = "displacement"
hazard_source = "MHS-001"
points = ["A/P{01..40}"]
stale_after = "30s"
"#;

fn mqtt_errors(from: &str, to: &str) -> Vec<ConfigError> {
    assert_eq!(MQTT.matches(from).count(), 1, "`{from}` must occur once");
    let text = format!("{GOOD}{}", MQTT.replace(from, to));
    match GatewayConfig::parse(&file(), &text) {
        Ok(_) => panic!("config with `{to}` was accepted"),
        Err(e) => e.0,
    }
}

#[test]
fn mqtt_subscriptions_declare_their_points_for_rules_and_history() {
    let text = format!("{GOOD}{MQTT}\n[[rules]]\npoints = \"A/P*\"\nthreshold = {{ high = 30.0, high_high = 50.0 }}\n");
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.mqtt.subscriptions[0].points.len(), 40);
    let p = cfg.points.id_of("A/P07").expect("declared point");
    let meta = cfg.points.meta(p);
    assert_eq!(
        (
            meta.unit().as_ref(),
            meta.device().as_ref(),
            meta.hazard_source().map(|t| &**t)
        ),
        ("mm", "mqtt:dam", Some("MHS-001"))
    );
    assert_eq!(cfg.mqtt.brokers[0].client_id, "gw-in-plant");
    let bound = cfg
        .rules
        .iter()
        .filter(|r| match &r.kind {
            hazard_gateway::rules::RuleKind::Threshold { point, .. } => {
                cfg.points.meta(*point).name().starts_with("A/P")
            }
            _ => false,
        })
        .count();
    assert_eq!(bound, 40, "the rule's glob matches every declared MQTT point");
}

#[test]
fn mqtt_mistakes_name_their_key_and_line() {
    let cases: [(&str, &str, &str, &str); 19] = [
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\nmax_packet = \"8B\"",
            "mqtt.brokers[0].max_packet",
            "must be at least 16B",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\nkeep_alive = \"500ms\"",
            "mqtt.brokers[0].keep_alive",
            "keep_alive must be 1s..18h",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\ncomm_grace = \"20m\"",
            "mqtt.brokers[0].comm_grace",
            "comm_grace must be 1s..10m",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\nprotocol = \"5\"\nsession_expiry = \"0s\"",
            "mqtt.brokers[0].session_expiry",
            "session_expiry must be at least 1s",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\npassword = \"secret\"",
            "mqtt.brokers[0].username",
            "a password needs a username",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\nusername = \"gw\"\npassword = \"secret\"\npassword_env = \"MQTT_PASSWORD\"",
            "mqtt.brokers[0].password_env",
            "give password or password_env, not both",
        ),
        (
            "stale_after = \"30s\"",
            "stale_after = \"30s\"\nmax_payload = \"8B\"",
            "mqtt.subscriptions[0].max_payload",
            "max_payload must be 16B..1MiB",
        ),
        (
            "stale_after = \"30s\"",
            "stale_after = \"30s\"\nmax_payload = \"2MiB\"",
            "mqtt.subscriptions[0].max_payload",
            "max_payload must be 16B..1MiB",
        ),
        (
            "stale_after = \"30s\"",
            "stale_after = \"30s\"\naccept = []",
            "mqtt.subscriptions[0].accept",
            "`accept` lists no shape",
        ),
        (
            "value = \"/v\"",
            "value = \"\"\naccept = [\"object\"]",
            "mqtt.subscriptions[0].accept",
            "needs `value`, `fields` or `array`",
        ),
        (
            "broker = \"plant\"",
            "broker = \"site\"",
            "mqtt.subscriptions[0].broker",
            "no broker `site`",
        ),
        (
            "topic = \"park/{site}/dam/{tag}\"",
            "topic = \"park/#/dam\"",
            "mqtt.subscriptions[0].topic",
            "`#` may only be the last level",
        ),
        (
            "point = \"{site}/{tag}\"",
            "point = \"{site}/{sensor}\"",
            "mqtt.subscriptions[0].point",
            "`{sensor}` is not a level of the topic",
        ),
        (
            "value = \"/v\"",
            "value = \"v\"",
            "mqtt.subscriptions[0].value",
            "not a JSON pointer",
        ),
        (
            "points = [\"A/P{01..40}\"]",
            "points = [\"A/P{40..01}\"]",
            "mqtt.subscriptions[0].points",
            "runs backwards",
        ),
        (
            "stale_after = \"30s\"",
            "stale_after = \"10ms\"",
            "mqtt.subscriptions[0].stale_after",
            "at least 100ms and at most 7d",
        ),
        (
            "hazard_source = \"MHS-001\"",
            "hazard_source = \"MHS-009\"",
            "mqtt.subscriptions[0].hazard_source",
            "no hazard source `MHS-009`",
        ),
        (
            "address = \"127.0.0.1:1883\"",
            "address = \"plant-broker\"",
            "mqtt.brokers[0].address",
            "is not host:port",
        ),
        (
            "name = \"dam\"",
            "name = \"dam\"\nqos = 2",
            "mqtt.subscriptions[0].qos",
            "qos must be 0 or 1",
        ),
    ];
    for (from, to, key, message) in cases {
        let errors = mqtt_errors(from, to);
        let text = format!("{GOOD}{}", MQTT.replace(from, to));
        let e = errors
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("{to}: no error at {key}: {errors:#?}"));
        assert!(e.message.contains(message), "{to}: {}", e.message);
        let needle = to.lines().last().unwrap();
        assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, needle)), "{to}: {e}");
    }
}

#[test]
fn accept_names_json_shapes_and_is_refused_for_text_payloads() {
    let text = format!(
        "{GOOD}{}",
        MQTT.replace("value = \"/v\"", "value = \"/v\"\naccept = [\"object\", \"string\"]")
    );
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    use hazard_gateway::sources::mqtt::decode::{Accept, Layout};
    let Layout::Json(j) = &cfg.mqtt.subscriptions[0].layout else {
        panic!("a JSON layout");
    };
    let want = Accept {
        number: false,
        string: true,
        object: true,
    };
    assert_eq!(j.accept, want);
    // Not given: every shape.
    let cfg = GatewayConfig::parse(&file(), &format!("{GOOD}{MQTT}")).unwrap_or_else(|e| panic!("{e}"));
    let Layout::Json(j) = &cfg.mqtt.subscriptions[0].layout else {
        panic!("a JSON layout");
    };
    assert_eq!(j.accept, Accept::ALL);

    let errors = mqtt_errors("value = \"/v\"", "payload = \"text\"\naccept = [\"number\"]");
    let text = format!(
        "{GOOD}{}",
        MQTT.replace("value = \"/v\"", "payload = \"text\"\naccept = [\"number\"]")
    );
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.subscriptions[0].accept");
    assert_eq!(e.message, "`accept` needs payload = \"json\"");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "accept = [\"number\"]")));

    let errors = mqtt_errors("value = \"/v\"", "value = \"/v\"\naccept = [\"xml\"]");
    let text = format!(
        "{GOOD}{}",
        MQTT.replace("value = \"/v\"", "value = \"/v\"\naccept = [\"xml\"]")
    );
    let e = only(&errors);
    assert!(e.message.contains("unknown variant `xml`"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "accept = [\"xml\"]")));
}

#[test]
fn max_packet_is_read_as_max_payload_with_a_located_warning() {
    let text = format!(
        "{GOOD}{}",
        MQTT.replace(
            "address = \"127.0.0.1:1883\"",
            "address = \"127.0.0.1:1883\"\nmax_packet = \"256KiB\""
        )
    );
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.mqtt.subscriptions[0].max_payload, 256 * 1024);
    let w = only(&cfg.warnings);
    assert_eq!(w.key, "mqtt.brokers[0].max_packet");
    assert_eq!(w.position, Some((line_of(&text, "max_packet = "), 14)));
    assert!(
        w.message
            .starts_with("warning: max_packet is deprecated; it is read as max_payload = \"256KiB\" for this broker's 1 subscription(s)"),
        "{w}"
    );
    assert!(
        w.message
            .contains("Write max_payload in each [[mqtt.subscriptions]] instead and remove max_packet"),
        "{w}"
    );

    // Larger than max_payload may be: capped, and the warning says so.
    let big = text.replace("max_packet = \"256KiB\"", "max_packet = \"4MiB\"");
    let cfg = GatewayConfig::parse(&file(), &big).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.mqtt.subscriptions[0].max_payload, 1 << 20);
    assert!(
        only(&cfg.warnings)
            .message
            .contains("max_payload = \"1MiB\" (capped at 1MiB"),
        "{:?}",
        cfg.warnings
    );

    // With max_payload on one of its subscriptions the old key conflicts: an error at max_packet.
    let both = text.replace(
        "stale_after = \"30s\"",
        "stale_after = \"30s\"\nmax_payload = \"64KiB\"",
    );
    let errors = GatewayConfig::parse(&file(), &both).unwrap_err().0;
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.brokers[0].max_packet");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&both, "max_packet = ")));
    assert_eq!(
        e.message,
        format!(
            "max_packet is deprecated and max_payload replaces it, but subscription `dam` sets max_payload (line {}) as well: remove max_packet",
            line_of(&both, "max_payload = ")
        )
    );
}

#[test]
fn two_brokers_with_one_client_id_are_reported_at_the_client_id() {
    let second = "\n[[mqtt.brokers]]\nname = \"backup\"\naddress = \"127.0.0.1:1884\"\nclient_id = \"gw-in-plant\"\n";
    let text = format!("{GOOD}{MQTT}{second}");
    let errors = GatewayConfig::parse(&file(), &text).unwrap_err().0;
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.brokers[1].client_id");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "client_id = ")));
}

#[test]
fn read_limits_and_rule_names_are_reported_at_their_key() {
    for (to, key, message) in [
        (
            "interval = \"1s\"\nmax_registers = 300",
            "devices[0].max_registers",
            "max_registers must be 1..=125",
        ),
        (
            "interval = \"1s\"\nmax_bits = 5000",
            "devices[0].max_bits",
            "max_bits must be 1..=2000",
        ),
    ] {
        let errors = errors_after("interval = \"1s\"", to);
        let e = only(&errors);
        assert_eq!(e.key, key, "{to}");
        assert!(e.message.contains(message), "{to}: {}", e.message);
        let text = GOOD.replace("interval = \"1s\"", to);
        assert_eq!(
            e.position.map(|p| p.0),
            Some(line_of(&text, to.lines().last().unwrap())),
            "{e}"
        );
    }
    let extra = "[[rules]]\npoints = \"MHS-001/GT-101\"\nname = \"rule-0\"\nthreshold = { low = 1.0 }\n";
    let errors = errors_with(extra);
    let e = only(&errors);
    assert_eq!(e.key, "rules[1].name");
    let text = format!("{GOOD}\n{extra}");
    assert_eq!(e.position, Some((line_of(&text, "name = \"rule-0\""), 8)));
}

#[test]
fn journal_retention_defaults_to_three_years_and_is_at_least_one() {
    let cfg = GatewayConfig::parse(&file(), GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.journal.retention, std::time::Duration::from_secs(1096 * 24 * 3600));
    let ok = GatewayConfig::parse(&file(), &format!("{GOOD}\n[journal]\nretention = \"400d\"\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.journal.retention, std::time::Duration::from_secs(400 * 24 * 3600));
    let errors = errors_with("[journal]\nretention = \"30d\"\n");
    let e = only(&errors);
    assert_eq!(e.key, "journal.retention");
    assert!(e.message.contains("at least 365d"), "{e}");
    assert_eq!(e.position, Some((GOOD.lines().count() + 3, 13)));
}

#[test]
fn an_mqtt_point_id_may_not_repeat_a_device_point() {
    let errors = mqtt_errors("points = [\"A/P{01..40}\"]", "points = [\"MHS-001/GT-101\"]");
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.subscriptions[0].points");
    assert_eq!(e.message, "point id `MHS-001/GT-101` is already used (by `gas-ai-1`)");
}

#[test]
fn an_mqtt_subscription_without_declared_points_is_refused() {
    let errors = mqtt_errors("points = [\"A/P{01..40}\"]\n", "");
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.subscriptions[0].points");
    assert!(e.message.starts_with("declare the point ids"), "{}", e.message);
}

#[test]
fn an_unknown_mqtt_key_names_its_table() {
    let errors = mqtt_errors("stale_after = \"30s\"", "stale_afer = \"30s\"");
    let e = only(&errors);
    assert_eq!(e.key, "mqtt.subscriptions[0].stale_afer");
    assert!(e.message.contains("unknown field `stale_afer`"), "{}", e.message);
}
const DTU: &str = r#"
[[dtu.listeners]]
listen = "0.0.0.0:9000"
heartbeat_interval = "30s"

[[dtu.stations]]
name = "dam"
imei = "866123456789012"
heartbeat = "HB"

[[dtu.stations]]
name = "tank"
id_hex = "fe 01"

[[devices]]
name = "pz-1"
profile = "piezometer"
transport = { dtu = "dam" }
unit_id = 3
"#;

#[test]
fn dtu_stations_are_accepted_and_each_has_a_communication_alarm_over_its_devices() {
    let cfg = GatewayConfig::parse(&file(), &format!("{GOOD}{DTU}")).unwrap();
    assert_eq!(cfg.dtu.listeners.len(), 1);
    assert_eq!(
        cfg.dtu.listeners[0].heartbeat_timeout,
        std::time::Duration::from_secs(90)
    );
    assert_eq!(cfg.dtu.stations.len(), 2);
    let pz = cfg.devices.iter().find(|d| d.name == "pz-1").unwrap();
    assert_eq!(pz.transport, hazard_gateway::config::TransportSpec::Dtu("dam".into()));
    let dam = cfg.alarms.stations.iter().find(|g| g.station == "dam").unwrap();
    assert_eq!(dam.devices, ["pz-1"]);
    assert!(dam.grace >= pz.interval + pz.timeout, "{dam:?}");
    let summary = cfg.summary();
    assert!(summary.contains("device pz-1 (piezometer) dtu dam unit 3"), "{summary}");
    assert!(
        summary.contains("dtu station dam registers as \"866123456789012\", heartbeat \"HB\""),
        "{summary}"
    );
    assert!(
        summary.contains("dtu station tank registers as hex fe01, heartbeat none"),
        "{summary}"
    );
}

#[test]
fn dtu_mistakes_are_located() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "transport = { dtu = \"dam\" }",
            "transport = { dtu = \"nowhere\" }",
            "devices[2].transport.dtu",
            "no station `nowhere` under [[dtu.stations]]; known stations: dam, tank",
        ),
        (
            "id_hex = \"fe 01\"",
            "id_hex = \"fe0g\"",
            "dtu.stations[1].id_hex",
            "`fe0g` is not hex bytes: `g` is not a hex digit",
        ),
        (
            "id_hex = \"fe 01\"",
            "id_regex = \"RTU[0-9\"",
            "dtu.stations[1].id_regex",
            "bad regular expression",
        ),
        (
            "id_hex = \"fe 01\"",
            "imei = \"866123456789012\"",
            "dtu.stations[1].imei",
            "station id \"866123456789012\" is already used by dtu.stations[0] on the same listener",
        ),
        (
            "name = \"tank\"",
            "name = \"dam\"",
            "dtu.stations[1].name",
            "station name `dam` is already used by dtu.stations[0]",
        ),
        (
            "imei = \"866123456789012\"",
            "imei = \"86612345\"",
            "dtu.stations[0].imei",
            "an IMEI is 15 digits, got `86612345`",
        ),
        (
            "heartbeat = \"HB\"",
            "heartbeat = \"HB\"\nheartbeat_regex = \"^$\"",
            "dtu.stations[0].heartbeat_regex",
            "give only one of heartbeat, heartbeat_regex",
        ),
        (
            "heartbeat_interval = \"30s\"",
            "heartbeat_interval = \"30s\"\nheartbeat_timeout = \"30s\"",
            "dtu.listeners[0].heartbeat_timeout",
            "must be longer than heartbeat_interval",
        ),
    ];
    for (from, to, key, message) in cases {
        assert_eq!(DTU.matches(from).count(), 1, "`{from}` must occur once");
        let text = format!("{GOOD}{}", DTU.replace(from, to));
        let errors = match GatewayConfig::parse(&file(), &text) {
            Ok(_) => panic!("config with `{to}` was accepted"),
            Err(e) => e.0,
        };
        let e = only(&errors);
        assert_eq!(e.key, *key, "{errors:#?}");
        assert!(e.message.contains(message), "{key}: {}", e.message);
        let needle = to.lines().last().unwrap();
        let line = text.rfind(needle).map(|at| text[..at].matches('\n').count() + 1);
        assert_eq!(e.position.map(|p| p.0), line, "{key} at its line: {e}");
    }
}

#[test]
fn unit_ids_follow_the_transport_and_errors_point_at_the_key() {
    let tcp = "transport = { tcp = \"127.0.0.1:502\" }";
    let accepts = |to: &str| {
        let text = GOOD.replace(tcp, to);
        GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{to}: {e}"));
    };
    // Modbus TCP: 0 and 255 address a device by IP alone (gateways ask for either).
    accepts(&format!("{tcp}\nunit_id = 0"));
    accepts(&format!("{tcp}\nunit_id = 255"));
    accepts(&format!("{tcp}\nunit_id = 247"));
    let cases = [
        (format!("{tcp}\nunit_id = 248"), "unit_id", "248 is reserved"),
        (
            "transport = { rtu_over_tcp = \"127.0.0.1:502\" }\nunit_id = 0".to_string(),
            "unit_id",
            "must be 1..=247",
        ),
        (
            "transport = { rtu_over_tcp = \"127.0.0.1:502\" }\nunit_id = 255".to_string(),
            "unit_id",
            "must be 1..=247",
        ),
    ];
    for (to, field, message) in cases {
        let errors = errors_after(tcp, &to);
        let e = only(&errors);
        assert_eq!(e.key, format!("devices[0].{field}"), "{to}");
        assert!(e.message.contains(message), "{to}: {}", e.message);
        let text = GOOD.replace(tcp, &to);
        let needle = to.lines().last().unwrap();
        assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, needle)), "{to}: {e}");
    }
}

#[test]
fn intervals_and_timeouts_have_upper_bounds_reported_at_their_line() {
    for (from, to, key, message) in [
        (
            "interval = \"1s\"",
            "interval = \"999999999h\"",
            "devices[0].interval",
            "interval must be 10ms..24h",
        ),
        (
            "interval = \"1s\"",
            "interval = \"1s\"\ntimeout = \"5m\"",
            "devices[0].timeout",
            "timeout must be 10ms..60s",
        ),
        (
            "interval = \"1s\"",
            "interval = \"5ms\"",
            "devices[0].interval",
            "interval must be 10ms..24h",
        ),
    ] {
        let errors = errors_after(from, to);
        let e = only(&errors);
        assert_eq!(e.key, key, "{to}");
        assert!(e.message.contains(message), "{to}: {}", e.message);
        let text = GOOD.replace(from, to);
        let needle = to.lines().last().unwrap();
        assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, needle)), "{to}: {e}");
    }
}

#[test]
fn two_devices_on_one_unit_of_one_tcp_address_are_a_located_warning() {
    let from = "transport = { tcp = \"127.0.0.1:503\" }";
    let text = GOOD.replace(from, "transport = { tcp = \"127.0.0.1:502\" }");
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    let w = &cfg.warnings[0];
    assert_eq!(w.key, "devices[1].unit_id");
    assert!(
        w.message
            .contains("`tank-T101` and `gas-ai-1` both poll unit 1 at 127.0.0.1:502"),
        "{w}"
    );
    // The unit id was left to its default: the warning points at the device's name.
    assert_eq!(w.position.map(|p| p.0), Some(line_of(&text, "name = \"tank-T101\"")));
    let text = text.replacen(
        "transport = { tcp = \"127.0.0.1:502\" }\n\n[[rules]]",
        "transport = { tcp = \"127.0.0.1:502\" }\nunit_id = 2\n\n[[rules]]",
        1,
    );
    let cfg = GatewayConfig::parse(&file(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let good = GatewayConfig::parse(&file(), GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert!(good.warnings.is_empty());
}

#[test]
fn sparkplug_readings_need_a_valid_group_id_named_with_file_line_and_target() {
    let north = |readings: &str| {
        format!("[[mqtt_north]]\nname = \"park\"\nbroker = \"10.1.0.5:1883\"\nreadings = {{ {readings} }}\n")
    };
    let text = north(r#"points = "*", encoding = "sparkplug_b""#);
    let e = errors_with(&text);
    let e = only(&e);
    assert_eq!(e.file, file());
    assert_eq!(e.key, "mqtt_north[0].readings.group_id");
    assert_eq!(
        e.position.map(|p| p.0),
        Some(line_of(&format!("{GOOD}\n{text}"), "readings = {"))
    );
    assert!(
        e.message.contains("target `park`") && e.message.contains("needs a `group_id`"),
        "{e}"
    );

    let text = north(r#"points = "*", encoding = "sparkplug_b", group_id = "park/a""#);
    let e = errors_with(&text);
    let e = only(&e);
    assert_eq!(e.key, "mqtt_north[0].readings.group_id");
    assert!(e.message.contains("`park/a` has `/`"), "{e}");

    let e = errors_with(&north(
        r#"points = "*", encoding = "sparkplug_b", group_id = "park", edge_node_id = "gw#1", batch = "window""#,
    ));
    let keys: Vec<_> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["mqtt_north[0].readings.batch", "mqtt_north[0].readings.edge_node_id"],
        "{e:#?}"
    );

    let e = errors_with(&north(r#"points = "*", group_id = "park""#));
    assert_eq!(only(&e).key, "mqtt_north[0].readings.group_id");
    assert!(
        only(&e)
            .message
            .contains("applies only with encoding = \"sparkplug_b\"")
    );

    let ok = format!(
        "{GOOD}\n{}",
        north(r#"points = "*", encoding = "sparkplug_b", group_id = "park-a""#)
    );
    let cfg = GatewayConfig::parse(&file(), &ok).unwrap_or_else(|e| panic!("{e}"));
    let ids = cfg.mqtt_north[0]
        .readings
        .as_ref()
        .and_then(|r| r.sparkplug.clone())
        .unwrap();
    assert_eq!((ids.group_id.as_str(), ids.edge_node_id.as_str()), ("park-a", "gw"));
}
