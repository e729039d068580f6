use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::*;
use crate::spec::error::SourceText;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    cipher: Option<Spanned<CipherConfig>>,
    #[serde(default)]
    envelope: Option<Spanned<EnvelopeConfig>>,
}

const KEY_HEX: &str = "0123456789abcdeffedcba9876543210";
const IV_HEX: &str = "00112233445566778899aabbccddeeff";

type Checked = (Option<CipherConfig>, Option<EnvelopeConfig>);

/// Checks `text` (top-level `cipher` and `envelope`) as the uplink config does.
fn check_in(dir: &Path, text: &str) -> Result<Checked, Vec<String>> {
    let file = dir.join("gw.toml");
    let src = SourceText::new(&file, text);
    let doc: Doc = toml::from_str(text).map_err(|e| vec![src.from_toml(&e).to_string()])?;
    let place = |field: &str, span: std::ops::Range<usize>| Place {
        src: &src,
        span,
        key: format!("uplinks[0].{field}"),
        uplink: "mem".into(),
    };
    let mut errors = Vec::new();
    let mut cipher = doc.cipher.as_ref().map(|c| c.get_ref().clone());
    if let (Some(c), Some(s)) = (cipher.as_mut(), doc.cipher.as_ref()) {
        check_cipher(c, &place("cipher", s.span()), &mut errors);
    }
    let mut envelope = doc.envelope.as_ref().map(|c| c.get_ref().clone());
    if let (Some(e), Some(s)) = (envelope.as_mut(), doc.envelope.as_ref()) {
        check_envelope(e, &place("envelope", s.span()), &mut errors);
        check_pair(cipher.as_ref(), Some(e), &place("envelope", s.span()), &mut errors);
    }
    if errors.is_empty() {
        Ok((cipher, envelope))
    } else {
        let dir = format!("{}/", dir.display());
        Err(errors.iter().map(|e| e.to_string().replace(&dir, "")).collect())
    }
}

fn check(text: &str) -> Result<Checked, Vec<String>> {
    check_in(Path::new("/etc/hg"), text)
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |var| map.get(var).map(OsString::from)
}

fn sealer(checked: &Checked, env: &[(&str, &str)]) -> Result<Sealer, SealBuildError> {
    build_with_env(checked.0.as_ref(), checked.1.as_ref(), "mem", &env_of(env))
}

fn payload(body: &[u8]) -> Payload {
    Payload {
        body: body.to_vec(),
        attrs: vec![("service_id".into(), "t_hazard_rt".into())],
        items: 2,
        urgent: false,
    }
}

#[test]
fn mem_shape_seals_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    // A relative key file is found next to the config file.
    std::fs::write(dir.path().join("mem.key"), format!("{}\n", KEY_HEX.to_uppercase())).unwrap();
    let text = r#"
cipher = { type = "sm4_cbc", key = { file = "mem.key", encoding = "hex" }, iv = { env = "MEM_IV", encoding = "hex" }, output = "hex_upper" }
envelope = { type = "json", body = '{"appid":"{{appid}}","data":"{{data}}"}', constants = { appid = "HG-3201" }, headers = { "X-Count" = "{{items}}", "X-App" = "{{appid}}" } }
"#;
    let checked = check_in(dir.path(), text).unwrap();
    let sealer = sealer(&checked, &[("MEM_IV", IV_HEX)]).unwrap();
    let plain = r#"[{"pointCode":"LT-101","value":"12.5","unit":"%","time":"2026-11-26 08:00:00"}]"#;
    let mut p = payload(plain.as_bytes());
    sealer.seal(&mut p).unwrap();

    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["appid"], "HG-3201");
    let data = v["data"].as_str().unwrap();
    assert!(
        data.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{data}"
    );
    assert_eq!(data.len(), 2 * 16 * (plain.len() / 16 + 1));
    // Independently of `open`: the data is the SM4-CBC ciphertext of the payload.
    let c = Cipher::new(
        CipherKind::Sm4Cbc,
        &cipher::decode_hex(KEY_HEX.as_bytes()).unwrap(),
        Some(&cipher::decode_hex(IV_HEX.as_bytes()).unwrap()),
    )
    .unwrap();
    assert_eq!(
        c.decrypt(&cipher::decode_hex(data.as_bytes()).unwrap()).unwrap(),
        plain.as_bytes()
    );
    assert_eq!(p.attr("header:X-Count"), Some("2"));
    assert_eq!(p.attr("header:X-App"), Some("HG-3201"));
    assert_eq!(p.attr("service_id"), Some("t_hazard_rt"));

    let opened = sealer.open(&p.body).unwrap();
    assert_eq!(opened.plain, plain.as_bytes());
    assert_eq!(opened.data.as_deref(), Some(data));

    // The preview shows both forms.
    let preview = sealer.preview(&payload(plain.as_bytes())).unwrap();
    assert!(preview.opens);
    let shown = preview.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], format!("decrypted ({} bytes): {plain}", plain.len()));
    // CBC with a fixed IV: the same payload seals to the same body.
    assert_eq!(
        lines[1],
        format!("sealed ({} bytes): {}", p.body.len(), String::from_utf8_lossy(&p.body))
    );
    assert_eq!(lines[2..], ["header X-App: HG-3201", "header X-Count: 2"]);
}

#[test]
fn jiangsu_shape_with_uuid_and_service_id() {
    let text = r#"
cipher = { type = "aes_128_ecb", key = { env = "JS_KEY", encoding = "raw" }, output = "base64" }
envelope = { type = "json", body = '{"appId":"{{appId}}","serviceId":"{{attr.service_id}}","dataId":"{{uuid}}","districtCode":"{{districtCode}}","data":"{{data}}"}', constants = { appId = "js-app-01", districtCode = "320500" }, headers = { "X-Data-Id" = "{{uuid}}" } }
"#;
    let sealer = sealer(&check(text).unwrap(), &[("JS_KEY", "1234567890abcdef")]).unwrap();
    let rows = r#"[{"qybm":"320500001","cgqbh":"PT-01","ssz":0.52,"cjsj":"2026-11-26 08:00:00","bz":"储罐"}]"#;
    let mut a = payload(rows.as_bytes());
    let mut b = payload(rows.as_bytes());
    sealer.seal(&mut a).unwrap();
    sealer.seal(&mut b).unwrap();
    let va: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
    assert_eq!(va.as_object().unwrap().len(), 5);
    assert_eq!(va["appId"], "js-app-01");
    assert_eq!(va["serviceId"], "t_hazard_rt");
    assert_eq!(va["districtCode"], "320500");
    let id = va["dataId"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert_eq!(
        a.attr("header:X-Data-Id"),
        Some(id),
        "body and header share the payload's uuid"
    );
    assert_ne!(va["dataId"], vb["dataId"], "each payload gets its own data id");
    // ECB: same plaintext, same ciphertext.
    assert_eq!(va["data"], vb["data"]);
    let ct = Output::Base64.decode(va["data"].as_str().unwrap().as_bytes()).unwrap();
    let c = Cipher::new(CipherKind::Aes128Ecb, b"1234567890abcdef", None).unwrap();
    assert_eq!(c.decrypt(&ct).unwrap(), rows.as_bytes());
    assert_eq!(sealer.open(&a.body).unwrap().plain, rows.as_bytes());
}

#[test]
fn cipher_without_envelope_writes_the_output_as_body() {
    for (output, check_body) in [
        ("raw", (|b: &[u8]| b.len() == 32) as fn(&[u8]) -> bool),
        ("hex_lower", |b: &[u8]| {
            b.len() == 64 && b.iter().all(|c| !c.is_ascii_uppercase())
        }),
        ("base64", |b: &[u8]| b.len() == 44 && b.ends_with(b"=")),
    ] {
        let text = format!(
            "cipher = {{ type = \"sm4_ecb\", key = {{ env = \"K\", encoding = \"base64\" }}, output = \"{output}\" }}\n"
        );
        // Base64 of the 16 bytes 0x00..0x0f, with a stray space.
        let sealer = sealer(&check(&text).unwrap(), &[("K", "AAECAwQFBgcICQoLDA0ODw== ")]).unwrap();
        let mut p = payload(b"seventeen bytes!!");
        sealer.seal(&mut p).unwrap();
        assert!(check_body(&p.body), "{output}: {:?}", p.body);
        assert_eq!(sealer.open(&p.body).unwrap().plain, b"seventeen bytes!!");
    }
}

#[test]
fn envelope_without_cipher_carries_the_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-秘密\n").unwrap();
    let text = r#"
envelope = { type = "json", body = '{"token":"{{secret.token}}","c":"{{t}}","payload":{{data}}}', constants = { t = "a\"b" }, secrets = { token = { file = "token" } } }
"#;
    let sealer = sealer(&check_in(dir.path(), text).unwrap(), &[]).unwrap();
    let inner = "{\"名称\":\"一号罐\",\"v\":\"x\\\"y\"}\n";
    let mut p = payload(inner.as_bytes());
    sealer.seal(&mut p).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["token"], "tok-秘密");
    assert_eq!(v["c"], "a\"b");
    assert_eq!(v["payload"], inner);
    assert_eq!(sealer.open(&p.body).unwrap().plain, inner.as_bytes());
    // The preview masks the secret.
    let shown = sealer.preview(&payload(inner.as_bytes())).unwrap().to_string();
    assert!(
        shown.contains(r#""token":"<secret>""#) && !shown.contains("秘密"),
        "{shown}"
    );
    // Bytes that are not text cannot stand in a JSON string as they are.
    let mut bad = payload(&[0xff, 0xfe]);
    let e = sealer.seal(&mut bad).unwrap_err();
    assert!(
        e.to_string().starts_with("uplink `mem`: the payload is not UTF-8 text"),
        "{e}"
    );
}

#[test]
fn config_mistakes_are_all_reported_with_their_place() {
    let text = r#"
cipher = { type = "aes_128_ecb", key = { file = "/k", env = "K", encoding = "hex" }, iv = { env = "IV", encoding = "hex" }, output = "raw" }
envelope = { type = "json", body = '{"appid":"{{appid}}","data":"{{data}}"}', headers = { "bad header" = "x", appsecret = "{{secret.s}}" }, secrets = { s = { env = "S" } } }
"#;
    let errors = check(text).unwrap_err();
    let expected = [
        "gw.toml:2:10: uplinks[0].cipher.key: uplink `mem`: give either `file` or `env`, not both",
        "gw.toml:2:10: uplinks[0].cipher.iv: uplink `mem`: aes_128_ecb takes no iv; remove `iv`",
        "gw.toml:3:12: uplinks[0].envelope.body: uplink `mem`: `{{appid}}` names no constant (constants: none)",
        "gw.toml:3:12: uplinks[0].envelope.headers.appsecret: uplink `mem`: `{{secret.s}}` in an envelope header \
         would be stored with every queued payload; give the header to the transport instead: \
         `headers = { appsecret = { file = … } }`",
        "gw.toml:3:12: uplinks[0].envelope.headers.bad header: uplink `mem`: `bad header` is not a valid HTTP header name",
        "gw.toml:3:12: uplinks[0].envelope: uplink `mem`: a aes_128_ecb ciphertext cannot go into a JSON envelope \
         as raw bytes: set the cipher's `output` to `hex_upper`, `hex_lower` or `base64`, as the platform's \
         specification says",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn missing_parts_are_named() {
    let errors = check("cipher = { type = \"sm4_cbc\", key = { env = \"K\" }, output = \"hex_upper\" }\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "gw.toml:1:10: uplinks[0].cipher.key: uplink `mem`: say how it is written: `encoding = \"hex\"`, `\"base64\"` or `\"raw\"`",
            "gw.toml:1:10: uplinks[0].cipher.iv: uplink `mem`: sm4_cbc needs an `iv` (16 bytes)",
        ]
    );
    let errors = check("cipher = { type = \"sm4_ecb\", key = { env = \"K\", encoding = \"hex\" } }\n").unwrap_err();
    assert!(errors[0].contains("missing field `output`"), "{errors:?}");
    let errors = check("envelope = { type = \"json\", body = '{\"a\":1}' }\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "gw.toml:1:12: uplinks[0].envelope.body: uplink `mem`: the body must hold `{{data}}` exactly once (it does 0 times)"
        ]
    );
}

#[test]
fn unknown_fields_and_ciphers_are_refused_by_name() {
    let errors = check("cipher = { type = \"sm4\", key = { env = \"K\", encoding = \"hex\" }, output = \"raw\" }\n")
        .unwrap_err();
    assert!(
        errors[0].contains("unknown variant `sm4`, expected one of"),
        "{errors:?}"
    );
    let errors = check(
        "cipher = { type = \"sm4_ecb\", key = { env = \"K\", encoding = \"hex\", bits = 128 }, output = \"raw\" }\n",
    )
    .unwrap_err();
    assert!(errors[0].contains("unknown field `bits`"), "{errors:?}");
    let errors = check(
        "cipher = { type = \"sm4_ecb\", key = { env = \"K\", encoding = \"hex\" }, output = \"raw\", padding = \"zero\" }\n",
    )
    .unwrap_err();
    assert!(errors[0].contains("unknown field `padding`"), "{errors:?}");
    let errors =
        check("cipher = { type = \"sm4_ecb\", key = { env = \"K\", encoding = \"hex\" }, output = \"HEX\" }\n")
            .unwrap_err();
    assert!(errors[0].contains("unknown variant `HEX`"), "{errors:?}");
}

#[test]
fn key_problems_name_the_uplink_and_field_but_never_the_key() {
    let checked = check(
        "cipher = { type = \"sm4_cbc\", key = { env = \"K\", encoding = \"hex\" }, \
         iv = { env = \"IV\", encoding = \"hex\" }, output = \"base64\" }\n",
    )
    .unwrap();
    let cases = [
        (
            vec![("IV", IV_HEX)],
            "uplink `mem`: cipher.key: environment variable `K` is not set",
        ),
        (
            vec![("K", "0123456789abcdeffedcba98765432"), ("IV", IV_HEX)],
            "uplink `mem`: cipher.key: environment variable `K`: key has 15 bytes; sm4_cbc needs 16 (that is 32 hex digits)",
        ),
        (
            vec![("K", "0123456789abcdeffedcba987654321z"), ("IV", IV_HEX)],
            "uplink `mem`: cipher.key: environment variable `K` is not valid hex: character 32 is not a hex digit",
        ),
        (
            vec![("K", KEY_HEX), ("IV", "0011")],
            "uplink `mem`: cipher.iv: environment variable `IV`: iv has 2 bytes; sm4_cbc needs 16 (that is 32 hex digits)",
        ),
    ];
    for (env, want) in cases {
        let e = sealer(&checked, &env).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(e.stage(), "cipher");
    }
    let dir = tempfile::tempdir().unwrap();
    let text =
        "cipher = { type = \"aes_256_ecb\", key = { file = \"js.key\", encoding = \"raw\" }, output = \"base64\" }\n";
    let checked = check_in(dir.path(), text).unwrap();
    let e = sealer(&checked, &[]).unwrap_err();
    let key_path = dir.path().join("js.key");
    assert!(
        e.to_string().starts_with(&format!(
            "uplink `mem`: cipher.key: cannot read file `{}`: ",
            key_path.display()
        )),
        "{e}"
    );
    // A raw key in a file: the final line break is not part of it.
    std::fs::write(&key_path, "0123456789abcdef0123456789abcdef\r\n").unwrap();
    assert_eq!(
        sealer(&checked, &[]).unwrap().cipher_kind(),
        Some(CipherKind::Aes256Ecb)
    );
}

#[test]
fn nothing_secret_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s"), "TOPSECRETVALUE").unwrap();
    let text = r#"
cipher = { type = "sm4_cbc", key = { env = "K", encoding = "raw" }, iv = { env = "IV", encoding = "raw" }, output = "hex_lower" }
envelope = { type = "json", body = '{"s":"{{secret.s}}","data":"{{data}}"}', secrets = { s = { file = "s" } } }
"#;
    let checked = check_in(dir.path(), text).unwrap();
    let sealer = sealer(&checked, &[("K", "KEYKEYKEYKEYKEY1"), ("IV", "IVIVIVIVIVIVIVI1")]).unwrap();
    let shown = format!("{sealer:?}");
    for needle in ["TOPSECRET", "KEYKEY", "IVIVIV", "4b45"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
}

#[test]
fn header_values_with_line_breaks_are_not_sent() {
    let text = r#"
cipher = { type = "sm4_ecb", key = { env = "K", encoding = "hex" }, output = "hex_upper" }
envelope = { type = "json", body = '{"data":"{{data}}"}', headers = { "X-Table" = "{{attr.service_id}}" } }
"#;
    let sealer = sealer(&check(text).unwrap(), &[("K", KEY_HEX)]).unwrap();
    let mut p = payload(b"x");
    p.attrs[0].1 = "evil\r\nInjected: 1".into();
    let e = sealer.seal(&mut p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "uplink `mem`: header `X-Table` would hold a line break; not sent"
    );
    // The payload is left as it was.
    assert_eq!(p.body, b"x");
}

#[test]
fn opening_garbage_says_why() {
    let text = r#"
cipher = { type = "sm4_ecb", key = { env = "K", encoding = "hex" }, output = "hex_upper" }
envelope = { type = "json", body = '{"data":"{{data}}"}' }
"#;
    let sealer = sealer(&check(text).unwrap(), &[("K", KEY_HEX)]).unwrap();
    let e = sealer.open(b"not json").unwrap_err().to_string();
    assert!(e.starts_with("uplink `mem`: sealed body is not JSON"), "{e}");
    let e = sealer.open(br#"{"other":"AB"}"#).unwrap_err().to_string();
    assert_eq!(
        e,
        "uplink `mem`: sealed body has no data string where the envelope puts it"
    );
    let e = sealer.open(br#"{"data":"ABC"}"#).unwrap_err().to_string();
    assert_eq!(
        e,
        "uplink `mem`: sealed data is not valid hex: odd number of digits (3)"
    );
    let e = sealer.open(br#"{"data":"ABCD"}"#).unwrap_err().to_string();
    assert_eq!(
        e,
        "uplink `mem`: cannot decrypt: ciphertext of 2 bytes is not a whole number of 16-byte blocks"
    );
}
