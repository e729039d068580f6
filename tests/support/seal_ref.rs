//! Runs `seal_reference.py` (SM4 from gmssl, AES from cryptography): an implementation of the
//! uplink ciphers independent of ours. A module of `support`, used by the seal and cipher-vector tests.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::process::{Command, Stdio};

/// One operation for the reference.
#[derive(Debug, Clone)]
pub struct RefOp {
    /// `encrypt` or `decrypt`.
    pub op: &'static str,
    /// `sm4-cbc`, `sm4-ecb`, `aes-128-ecb`, …
    pub cipher: &'static str,
    /// Key bytes.
    pub key: Vec<u8>,
    /// IV bytes, for CBC.
    pub iv: Option<Vec<u8>>,
    /// Input bytes.
    pub data: Vec<u8>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex from the reference"))
        .collect()
}

/// Runs every op in one Python process; each result is the output bytes or the reference's
/// error text.
pub fn reference(ops: &[RefOp]) -> Vec<Result<Vec<u8>, String>> {
    let doc = serde_json::json!({
        "ops": ops.iter().map(|o| serde_json::json!({
            "op": o.op,
            "cipher": o.cipher,
            "key": hex(&o.key),
            "iv": o.iv.as_deref().map(hex),
            "data": hex(&o.data),
        })).collect::<Vec<_>>()
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/seal_reference.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(&doc).expect("json");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("reference finishes");
    writer
        .join()
        .expect("writer thread")
        .expect("reference reads its input");
    assert!(
        out.status.success(),
        "the reference failed (install gmssl and cryptography: .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("reference prints JSON");
    assert_eq!(results.len(), ops.len());
    results
        .into_iter()
        .map(|r| match (r["ok"].as_str(), r["error"].as_str()) {
            (Some(h), _) => Ok(unhex(h)),
            (_, Some(e)) => Err(e.to_string()),
            _ => Err(format!("unexpected answer {r}")),
        })
        .collect()
}
