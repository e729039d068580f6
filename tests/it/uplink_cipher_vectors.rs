//! The uplink ciphers checked byte for byte against an independent implementation: SM4 (CBC
//! and ECB) against `gmssl`, AES-ECB against Python's `cryptography`, over the same inputs:
//! empty, one byte short of a block, a block, one byte over, Chinese text, a JSON row, 10 KB.

use crate::support::seal_ref;

use hazard_gateway::sinks::uplink::seal::cipher::{Cipher, CipherKind};
use seal_ref::{RefOp, reference};

/// Deterministic inputs covering the padding edges and multi-byte text.
fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    // A fixed linear congruential sequence: the same 10 KB every run.
    let mut x: u32 = 0x2f6b_1d03;
    let big: Vec<u8> = (0..10 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    vec![
        ("empty", Vec::new()),
        ("1 byte", b"A".to_vec()),
        ("15 bytes", b"0123456789abcde".to_vec()),
        ("16 bytes", b"0123456789abcdef".to_vec()),
        ("17 bytes", b"0123456789abcdefg".to_vec()),
        ("chinese", "液氯储罐区 1号罐 液位高高报警，温度 38.5℃".as_bytes().to_vec()),
        (
            "json row",
            br#"[{"enterpriseCode":"320500001","pointCode":"LT-101","value":"12.50","unit":"%","status":"0","time":"2026-11-26 08:00:00"}]"#.to_vec(),
        ),
        ("all byte values", (0..=255u8).collect()),
        ("10 KB", big),
    ]
}

fn keys(kind: CipherKind) -> Vec<Vec<u8>> {
    let n = kind.key_len();
    vec![
        (0..n as u8).collect(),
        (0..n).map(|i| (i as u8).wrapping_mul(37).wrapping_add(0xa5)).collect(),
        // A text key, as platforms often issue them.
        b"HzGw-uplink-key-0123456789abcdef"[..n].to_vec(),
    ]
}

fn check(kind: CipherKind, iv: Option<Vec<u8>>) {
    let mut ops = Vec::new();
    let mut ours = Vec::new();
    for key in keys(kind) {
        let cipher = Cipher::new(kind, &key, iv.as_deref()).expect("key and iv lengths fit");
        for (name, plain) in inputs() {
            let sealed = cipher.encrypt(&plain);
            assert_eq!(cipher.decrypt(&sealed).expect("own round trip"), plain, "{kind} {name}");
            ops.push(RefOp {
                op: "encrypt",
                cipher: kind.name(),
                key: key.clone(),
                iv: iv.clone(),
                data: plain.clone(),
            });
            ops.push(RefOp {
                op: "decrypt",
                cipher: kind.name(),
                key: key.clone(),
                iv: iv.clone(),
                data: sealed.clone(),
            });
            ours.push((name, plain, sealed));
        }
    }
    let theirs = reference(&ops);
    for (i, (name, plain, sealed)) in ours.into_iter().enumerate() {
        let their_sealed = theirs[2 * i].as_ref().unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
        assert_eq!(
            &sealed, their_sealed,
            "{kind} {name}: ciphertext differs from the reference"
        );
        let their_plain = theirs[2 * i + 1]
            .as_ref()
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
        assert_eq!(
            &plain, their_plain,
            "{kind} {name}: the reference decrypts ours to something else"
        );
    }
}

#[test]
fn sm4_cbc_matches_gmssl() {
    check(CipherKind::Sm4Cbc, Some((0..16u8).rev().collect()));
    check(CipherKind::Sm4Cbc, Some(b"regulator-iv-001".to_vec()));
}

#[test]
fn sm4_ecb_matches_gmssl() {
    check(CipherKind::Sm4Ecb, None);
}

#[test]
fn aes_ecb_matches_cryptography() {
    check(CipherKind::Aes128Ecb, None);
    check(CipherKind::Aes192Ecb, None);
    check(CipherKind::Aes256Ecb, None);
}

/// The reference itself is sound: it reproduces the SM4 standard's example and rejects what
/// it must, so agreement with it means something.
#[test]
fn reference_reproduces_the_standard_vector() {
    let key: Vec<u8> = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
    ]
    .to_vec();
    let out = reference(&[
        RefOp {
            op: "encrypt",
            cipher: "sm4-ecb",
            key: key.clone(),
            iv: None,
            data: key.clone(),
        },
        RefOp {
            op: "encrypt",
            cipher: "aes-256-ecb",
            key: key.clone(),
            iv: None,
            data: Vec::new(),
        },
    ]);
    let first = out[0].as_ref().expect("sm4 runs");
    assert_eq!(
        &first[..16],
        &[
            0x68, 0x1e, 0xdf, 0x34, 0xd2, 0x06, 0x96, 0x5e, 0x86, 0xb3, 0xe9, 0x4f, 0x53, 0x6e, 0x42, 0x46
        ]
    );
    assert!(out[1].is_err(), "a 16-byte key is refused for aes-256");
}
