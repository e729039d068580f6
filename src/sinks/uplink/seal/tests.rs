use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    seal: RawSeal,
}

const KEY_HEX: &str = "0123456789abcdeffedcba9876543210";
const IV_HEX: &str = "00112233445566778899aabbccddeeff";

/// Validates `text` (a `[seal]` table) as the config loader would.
fn check(text: &str) -> Result<SealSpec, Vec<String>> {
    let src = SourceText::new(Path::new("gw.toml"), text);
    let doc: Doc = toml::from_str(text).map_err(|e| vec![src.from_toml(&e).to_string()])?;
    let mut errors = Vec::new();
    let spec = validate(&src, &doc.seal, "uplinks[0].seal", &mut errors);
    if errors.is_empty() {
        Ok(spec.expect("a spec when there are no errors"))
    } else {
        assert!(spec.is_none());
        Err(errors.iter().map(ToString::to_string).collect())
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |var| map.get(var).map(OsString::from)
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
    let key_file = dir.path().join("mem.key");
    std::fs::write(&key_file, format!("{}\n", KEY_HEX.to_uppercase())).unwrap();
    let secret_file = dir.path().join("appsecret");
    std::fs::write(&secret_file, "s3cr3t-应用\n").unwrap();
    let text = format!(
        r#"
[seal]
cipher = "sm4-cbc"
key = {{ file = "{}", encoding = "hex" }}
iv = {{ env = "MEM_IV", encoding = "hex" }}
output = "hex-upper"

[seal.envelope]
body = '{{"appid":"{{{{appid}}}}","data":"{{{{data}}}}"}}'
constants = {{ appid = "HG-3201" }}
secrets = {{ appsecret = {{ file = "{}" }} }}
headers = {{ appsecret = "{{{{secret.appsecret}}}}", "X-Count" = "{{{{items}}}}" }}
"#,
        key_file.display(),
        secret_file.display()
    );
    let spec = check(&text).unwrap();
    let env = env_of(&[("MEM_IV", IV_HEX)]);
    let sealer = build_with_env(&spec, "mem", &env).unwrap();
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
    assert_eq!(p.attr("header:appsecret"), Some("s3cr3t-应用"));
    assert_eq!(p.attr("header:X-Count"), Some("2"));
    assert_eq!(p.attr("service_id"), Some("t_hazard_rt"));

    let opened = sealer.open(&p.body).unwrap();
    assert_eq!(opened.plain, plain.as_bytes());
    assert_eq!(opened.data.as_deref(), Some(data));

    // The preview shows both forms and masks the secret header.
    let preview = sealer.preview(&payload(plain.as_bytes())).unwrap();
    assert!(preview.opens);
    assert_eq!(
        preview.sealed, p.body,
        "CBC with a fixed IV: the same payload seals the same"
    );
    let shown = preview.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], format!("decrypted ({} bytes): {plain}", plain.len()));
    assert!(lines[1].starts_with(r#"sealed ("#) && lines[1].contains(r#"{"appid":"HG-3201","data":""#));
    assert_eq!(lines[2], "header X-Count: 2");
    assert_eq!(lines[3], "header appsecret: <secret>");
    assert!(!shown.contains("s3cr3t"));
}

#[test]
fn jiangsu_shape_with_uuid_and_service_id() {
    let text = r#"
[seal]
cipher = "aes-128-ecb"
key = { env = "JS_KEY", encoding = "raw" }
output = "base64"

[seal.envelope]
body = '{"appId":"{{appId}}","serviceId":"{{attr.service_id}}","dataId":"{{uuid}}","districtCode":"{{districtCode}}","data":"{{data}}"}'
constants = { appId = "js-app-01", districtCode = "320500" }
"#;
    let spec = check(text).unwrap();
    let env = env_of(&[("JS_KEY", "1234567890abcdef")]);
    let sealer = build_with_env(&spec, "jiangsu", &env).unwrap();
    let rows = r#"[{"qybm":"320500001","cgqbh":"PT-01","ssz":0.52,"cjsj":"2026-11-26 08:00:00","bz":"储罐"}]"#;
    let mut a = payload(rows.as_bytes());
    let mut b = payload(rows.as_bytes());
    sealer.seal(&mut a).unwrap();
    sealer.seal(&mut b).unwrap();
    let va: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
    let keys: Vec<&str> = va.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(va["appId"], "js-app-01");
    assert_eq!(va["serviceId"], "t_hazard_rt");
    assert_eq!(va["districtCode"], "320500");
    let id = va["dataId"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert_ne!(va["dataId"], vb["dataId"], "each payload gets its own data id");
    // ECB: same plaintext, same ciphertext.
    assert_eq!(va["data"], vb["data"]);
    let ct = cipher::Output::Base64
        .decode(va["data"].as_str().unwrap().as_bytes())
        .unwrap();
    let c = Cipher::new(CipherKind::Aes128Ecb, b"1234567890abcdef", None).unwrap();
    assert_eq!(c.decrypt(&ct).unwrap(), rows.as_bytes());
    assert_eq!(sealer.open(&a.body).unwrap().plain, rows.as_bytes());
    // No header templates: no header attributes.
    assert!(a.attrs.iter().all(|(k, _)| !k.starts_with(HEADER_PREFIX)));
}

#[test]
fn cipher_without_envelope_writes_the_output_as_body() {
    for (output, check_body) in [
        ("raw", (|b: &[u8]| b.len() == 32) as fn(&[u8]) -> bool),
        ("hex-lower", |b: &[u8]| {
            b.len() == 64 && b.iter().all(|c| !c.is_ascii_uppercase())
        }),
        ("base64", |b: &[u8]| b.len() == 44 && b.ends_with(b"=")),
    ] {
        let text = format!(
            "[seal]\ncipher = \"sm4-ecb\"\nkey = {{ env = \"K\", encoding = \"base64\" }}\noutput = \"{output}\"\n"
        );
        let spec = check(&text).unwrap();
        // Base64 of the 16 bytes 0x00..0x0f, with a stray space.
        let sealer = build_with_env(&spec, "u", &env_of(&[("K", "AAECAwQFBgcICQoLDA0ODw== ")])).unwrap();
        let mut p = payload(b"seventeen bytes!!");
        sealer.seal(&mut p).unwrap();
        assert!(check_body(&p.body), "{output}: {:?}", p.body);
        assert_eq!(sealer.open(&p.body).unwrap().plain, b"seventeen bytes!!");
    }
}

#[test]
fn envelope_without_cipher_carries_the_text_escaped() {
    let text = r#"
[seal.envelope]
body = '{"token":"{{t}}","payload":{{data}}}'
constants = { t = "a\"b" }
"#;
    let spec = check(text).unwrap();
    let sealer = build_with_env(&spec, "plain", &env_of(&[])).unwrap();
    let inner = "{\"名称\":\"一号罐\",\"v\":\"x\\\"y\"}\n";
    let mut p = payload(inner.as_bytes());
    sealer.seal(&mut p).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["token"], "a\"b");
    assert_eq!(v["payload"], inner);
    assert_eq!(sealer.open(&p.body).unwrap().plain, inner.as_bytes());
    // Bytes that are not text cannot stand in a JSON string as they are.
    let mut bad = payload(&[0xff, 0xfe]);
    let e = sealer.seal(&mut bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("uplink `plain`: the payload is not UTF-8 text"),
        "{e}"
    );
}

#[test]
fn config_mistakes_are_all_reported_with_their_place() {
    let text = r#"
[seal]
cipher = "aes-128-ecb"
key = { file = "/k", env = "K", encoding = "hex" }
iv = { env = "IV", encoding = "hex" }

[seal.envelope]
body = '{"appid":"{{appid}}","data":"{{data}}"}'
headers = { "bad header" = "{{secret.nope}}" }
"#;
    let errors = check(text).unwrap_err();
    let expected = [
        "gw.toml:4:7: uplinks[0].seal.key: give either `file` or `env`, not both",
        "gw.toml:5:6: uplinks[0].seal.iv: aes-128-ecb takes no iv; remove `iv`",
        "gw.toml:7:1: uplinks[0].seal.output: a aes-128-ecb ciphertext cannot go into a JSON envelope as raw bytes: \
         set `output` to `hex-upper`, `hex-lower` or `base64`, as the platform's specification says",
        "gw.toml:8:8: uplinks[0].seal.envelope.body: `{{appid}}` names no constant (constants: none)",
        "gw.toml:9:28: uplinks[0].seal.envelope.headers.bad header: `bad header` is not a valid HTTP header name",
        "gw.toml:9:28: uplinks[0].seal.envelope.headers.bad header: `{{secret.nope}}` names no entry of `secrets`",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn missing_parts_are_named() {
    let errors = check("[seal]\ncipher = \"sm4-cbc\"\noutput = \"hex-upper\"\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "gw.toml:2:10: uplinks[0].seal.key: sm4-cbc needs a `key` (a file or an environment variable)",
            "gw.toml:2:10: uplinks[0].seal.iv: sm4-cbc needs an `iv` (16 bytes)",
        ]
    );
    let errors = check("[seal]\ncipher = \"sm4-ecb\"\nkey = { env = \"K\" }\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "gw.toml:3:7: uplinks[0].seal.key: say how the key is written: `encoding = \"hex\"`, `\"base64\"` or `\"raw\"`"
        ]
    );
    let errors = check("[seal]\nkey = { env = \"K\", encoding = \"hex\" }\n").unwrap_err();
    assert_eq!(
        errors,
        ["gw.toml:2:7: uplinks[0].seal.key: a key is given but no `cipher`"]
    );
    let errors = check("[seal]\n").unwrap_err();
    assert_eq!(
        errors,
        ["gw.toml: uplinks[0].seal: nothing to do: give a `cipher`, an `envelope` or both"]
    );
}

#[test]
fn unknown_fields_and_ciphers_are_refused_by_name() {
    let errors = check("[seal]\ncipher = \"sm4\"\n").unwrap_err();
    assert!(
        errors[0].starts_with("gw.toml:2:10: seal.cipher: unknown variant `sm4`, expected one of"),
        "{errors:?}"
    );
    let errors =
        check("[seal]\ncipher = \"sm4-ecb\"\nkey = { env = \"K\", encoding = \"hex\", bits = 128 }\n").unwrap_err();
    assert!(errors[0].contains("unknown field `bits`"), "{errors:?}");
    let errors = check("[seal]\npadding = \"zero\"\n").unwrap_err();
    assert!(errors[0].contains("unknown field `padding`"), "{errors:?}");
    let errors = check("[seal]\noutput = \"HEX\"\n").unwrap_err();
    assert!(errors[0].contains("unknown variant `HEX`"), "{errors:?}");
}

#[test]
fn key_problems_name_the_uplink_and_field_but_never_the_key() {
    let spec = check(
        "[seal]\ncipher = \"sm4-cbc\"\nkey = { env = \"K\", encoding = \"hex\" }\n\
         iv = { env = \"IV\", encoding = \"hex\" }\noutput = \"base64\"\n",
    )
    .unwrap();
    let cases = [
        (
            vec![("IV", IV_HEX)],
            "uplink `mem`: seal.key: environment variable `K` is not set",
        ),
        (
            vec![("K", "0123456789abcdeffedcba98765432"), ("IV", IV_HEX)],
            "uplink `mem`: seal.key: environment variable `K`: key has 15 bytes; sm4-cbc needs 16 (that is 32 hex digits)",
        ),
        (
            vec![("K", "0123456789abcdeffedcba987654321z"), ("IV", IV_HEX)],
            "uplink `mem`: seal.key: environment variable `K` is not valid hex: character 32 is not a hex digit",
        ),
        (
            vec![("K", KEY_HEX), ("IV", "0011")],
            "uplink `mem`: seal.iv: environment variable `IV`: iv has 2 bytes; sm4-cbc needs 16 (that is 32 hex digits)",
        ),
    ];
    for (env, want) in cases {
        let e = build_with_env(&spec, "mem", &env_of(&env)).unwrap_err();
        assert_eq!(e.to_string(), want);
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.key");
    let spec = check(&format!(
        "[seal]\ncipher = \"aes-256-ecb\"\nkey = {{ file = \"{}\", encoding = \"raw\" }}\noutput = \"base64\"\n",
        missing.display()
    ))
    .unwrap();
    let e = build_with_env(&spec, "js", &env_of(&[])).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "uplink `js`: seal.key: cannot read file `{}`: ",
            missing.display()
        )),
        "{e}"
    );
    // A raw key in a file: the final line break is not part of it.
    std::fs::write(&missing, "0123456789abcdef0123456789abcdef\r\n").unwrap();
    let sealer = build_with_env(&spec, "js", &env_of(&[])).unwrap();
    assert_eq!(sealer.cipher_kind(), Some(CipherKind::Aes256Ecb));
}

#[test]
fn nothing_secret_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, "TOPSECRETVALUE").unwrap();
    let text = format!(
        r#"
[seal]
cipher = "sm4-cbc"
key = {{ env = "K", encoding = "raw" }}
iv = {{ env = "IV", encoding = "raw" }}
output = "hex-lower"
[seal.envelope]
body = '{{"s":"{{{{secret.s}}}}","data":"{{{{data}}}}"}}'
secrets = {{ s = {{ file = "{}" }} }}
"#,
        secret.display()
    );
    let spec = check(&text).unwrap();
    let sealer = build_with_env(
        &spec,
        "u",
        &env_of(&[("K", "KEYKEYKEYKEYKEY1"), ("IV", "IVIVIVIVIVIVIVI1")]),
    )
    .unwrap();
    let shown = format!("{spec:?} {sealer:?}");
    for needle in ["TOPSECRET", "KEYKEY", "IVIVIV", "4b45"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
}

#[test]
fn header_values_with_line_breaks_are_not_sent() {
    let text = r#"
[seal]
cipher = "sm4-ecb"
key = { env = "K", encoding = "hex" }
output = "hex-upper"
[seal.envelope]
body = '{"data":"{{data}}"}'
headers = { "X-Table" = "{{attr.service_id}}" }
"#;
    let spec = check(text).unwrap();
    let sealer = build_with_env(&spec, "u", &env_of(&[("K", KEY_HEX)])).unwrap();
    let mut p = payload(b"x");
    p.attrs[0].1 = "evil\r\nInjected: 1".into();
    let e = sealer.seal(&mut p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "uplink `u`: header `X-Table` would hold a line break; not sent"
    );
    // The payload is left as it was.
    assert_eq!(p.body, b"x");
}

#[test]
fn opening_garbage_says_why() {
    let text = "[seal]\ncipher = \"sm4-ecb\"\nkey = { env = \"K\", encoding = \"hex\" }\noutput = \"hex-upper\"\n\
                [seal.envelope]\nbody = '{\"data\":\"{{data}}\"}'\n";
    let sealer = build_with_env(&check(text).unwrap(), "u", &env_of(&[("K", KEY_HEX)])).unwrap();
    let e = sealer.open(b"not json").unwrap_err().to_string();
    assert!(e.starts_with("uplink `u`: sealed body is not JSON"), "{e}");
    let e = sealer.open(br#"{"other":"AB"}"#).unwrap_err().to_string();
    assert_eq!(
        e,
        "uplink `u`: sealed body has no data string where the envelope puts it"
    );
    let e = sealer.open(br#"{"data":"ABC"}"#).unwrap_err().to_string();
    assert_eq!(e, "uplink `u`: sealed data is not valid hex: odd number of digits (3)");
    let e = sealer.open(br#"{"data":"ABCD"}"#).unwrap_err().to_string();
    assert_eq!(
        e,
        "uplink `u`: cannot decrypt: ciphertext of 2 bytes is not a whole number of 16-byte blocks"
    );
}
