//! The block ciphers regulators prescribe, their key material and the text form of a ciphertext.
//!
//! SM4 (GB/T 32907) in CBC or ECB mode and AES-128/192/256 in ECB mode, always with PKCS#7
//! padding (what Java calls `PKCS5Padding` for a 16-byte block): a plaintext of `n` bytes
//! becomes `16 * (n / 16 + 1)` bytes, so an empty plaintext is one whole block of padding.
//! Everything here is pure: keys come in as bytes, loading them from files or the environment
//! is `mod.rs`'s job.

use std::fmt;

use aes::{Aes128, Aes192, Aes256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use ecb::cipher::crypto_common::InnerInit;
use serde::Deserialize;
use sm4::Sm4;
use zeroize::Zeroizing;

/// SM4's and AES's block size, and the size of an SM4 key and of a CBC IV.
pub const BLOCK: usize = 16;

/// Which cipher and mode (the `type` of an uplink's `cipher` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherKind {
    /// SM4 in CBC mode with PKCS#7 padding; needs a 16-byte key and a 16-byte IV (the MEM
    /// IoT platform's choice, IV issued with the key).
    Sm4Cbc,
    /// SM4 in ECB mode with PKCS#7 padding; a 16-byte key, no IV. Equal plaintext blocks give
    /// equal ciphertext blocks: use it only where the platform demands it.
    Sm4Ecb,
    /// AES with a 16-byte key in ECB mode with PKCS#7 padding, no IV.
    Aes128Ecb,
    /// AES with a 24-byte key in ECB mode with PKCS#7 padding, no IV.
    Aes192Ecb,
    /// AES with a 32-byte key in ECB mode with PKCS#7 padding, no IV (provincial chemical
    /// platforms such as Jiangsu's use AES-ECB with Base64 output).
    Aes256Ecb,
}

impl CipherKind {
    /// The name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sm4Cbc => "sm4_cbc",
            Self::Sm4Ecb => "sm4_ecb",
            Self::Aes128Ecb => "aes_128_ecb",
            Self::Aes192Ecb => "aes_192_ecb",
            Self::Aes256Ecb => "aes_256_ecb",
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Sm4Cbc | Self::Sm4Ecb | Self::Aes128Ecb => 16,
            Self::Aes192Ecb => 24,
            Self::Aes256Ecb => 32,
        }
    }

    /// Whether the mode takes an IV.
    pub fn needs_iv(self) -> bool {
        matches!(self, Self::Sm4Cbc)
    }
}

impl fmt::Display for CipherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the ciphertext (or, without a cipher, the plaintext) is written into the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Output {
    /// The bytes themselves: only without an envelope (a JSON envelope holds text).
    #[serde(rename = "raw")]
    Raw,
    /// Hexadecimal, `0-9A-F`.
    #[serde(rename = "hex_upper")]
    HexUpper,
    /// Hexadecimal, `0-9a-f`.
    #[serde(rename = "hex_lower")]
    HexLower,
    /// Standard Base64 (RFC 4648 alphabet with `+/`, `=` padding).
    #[serde(rename = "base64")]
    Base64,
}

impl Output {
    /// The name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::HexUpper => "hex_upper",
            Self::HexLower => "hex_lower",
            Self::Base64 => "base64",
        }
    }

    /// `bytes` in this form, appended to `out`.
    pub fn encode_into(self, bytes: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Raw => out.extend_from_slice(bytes),
            Self::HexUpper => hex_into(bytes, b"0123456789ABCDEF", out),
            Self::HexLower => hex_into(bytes, b"0123456789abcdef", out),
            Self::Base64 => {
                let start = out.len();
                out.resize(start + bytes.len().div_ceil(3) * 4, 0);
                let n = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
                out.truncate(start + n);
            }
        }
    }

    /// `bytes` in this form.
    pub fn encode(self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() * 2);
        self.encode_into(bytes, &mut out);
        out
    }

    /// The bytes written in this form (hex of either case is accepted).
    pub fn decode(self, text: &[u8]) -> Result<Vec<u8>, CipherError> {
        match self {
            Self::Raw => Ok(text.to_vec()),
            Self::HexUpper | Self::HexLower => decode_hex(text),
            Self::Base64 => BASE64.decode(text).map_err(|e| CipherError::BadText {
                form: "base64",
                reason: e.to_string(),
            }),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn hex_into(bytes: &[u8], digits: &[u8; 16], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
}

/// Hex text (either case, no separators) to bytes.
pub fn decode_hex(text: &[u8]) -> Result<Vec<u8>, CipherError> {
    if text.len() % 2 != 0 {
        return Err(CipherError::BadText {
            form: "hex",
            reason: format!("odd number of digits ({})", text.len()),
        });
    }
    let digit = |i: usize| -> Result<u8, CipherError> {
        match text[i] {
            c @ b'0'..=b'9' => Ok(c - b'0'),
            c @ b'a'..=b'f' => Ok(c - b'a' + 10),
            c @ b'A'..=b'F' => Ok(c - b'A' + 10),
            // The position only: the text may be a key.
            _ => Err(CipherError::BadText {
                form: "hex",
                reason: format!("character {} is not a hex digit", i + 1),
            }),
        }
    };
    (0..text.len() / 2)
        .map(|i| Ok(digit(2 * i)? << 4 | digit(2 * i + 1)?))
        .collect()
}

/// Key or IV bytes: wiped from memory when dropped, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Why a cipher could not be set up or a ciphertext could not be opened. Never carries key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key has the wrong length for the cipher.
    #[error("key has {got} bytes; {kind} needs {expected} (that is {} hex digits)", expected * 2)]
    KeyLength {
        /// The cipher.
        kind: CipherKind,
        /// Bytes it needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The IV has the wrong length.
    #[error("iv has {got} bytes; {kind} needs {BLOCK} (that is 32 hex digits)")]
    IvLength {
        /// The cipher.
        kind: CipherKind,
        /// Bytes given.
        got: usize,
    },
    /// CBC without an IV.
    #[error("{kind} needs an iv")]
    IvMissing {
        /// The cipher.
        kind: CipherKind,
    },
    /// An IV for a mode that takes none.
    #[error("{kind} takes no iv")]
    IvUnused {
        /// The cipher.
        kind: CipherKind,
    },
    /// A ciphertext that is not a whole number of blocks.
    #[error("ciphertext of {0} bytes is not a whole number of 16-byte blocks")]
    Length(usize),
    /// Decryption gave bad PKCS#7 padding: wrong key or IV, or a damaged ciphertext.
    #[error("bad padding after decryption (wrong key or iv, or a damaged ciphertext)")]
    Padding,
    /// Text that is not valid hex or Base64.
    #[error("not valid {form}: {reason}")]
    BadText {
        /// `hex` or `base64`.
        form: &'static str,
        /// Why.
        reason: String,
    },
}

#[derive(Clone)]
enum Keyed {
    Sm4Cbc(Sm4, [u8; BLOCK]),
    Sm4Ecb(Sm4),
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

/// A cipher with its key (and IV) set up, ready to encrypt and decrypt whole messages.
#[derive(Clone)]
pub struct Cipher {
    kind: CipherKind,
    keyed: Keyed,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("kind", &self.kind)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Cipher {
    /// Sets up `kind` with `key` and, for CBC, `iv`; lengths are checked.
    pub fn new(kind: CipherKind, key: &[u8], iv: Option<&[u8]>) -> Result<Self, CipherError> {
        if key.len() != kind.key_len() {
            return Err(CipherError::KeyLength {
                kind,
                expected: kind.key_len(),
                got: key.len(),
            });
        }
        let iv: Option<[u8; BLOCK]> = match (kind.needs_iv(), iv) {
            (true, None) => return Err(CipherError::IvMissing { kind }),
            (false, Some(_)) => return Err(CipherError::IvUnused { kind }),
            (false, None) => None,
            (true, Some(iv)) => Some(
                iv.try_into()
                    .map_err(|_| CipherError::IvLength { kind, got: iv.len() })?,
            ),
        };
        let bad_key = || CipherError::KeyLength {
            kind,
            expected: kind.key_len(),
            got: key.len(),
        };
        let keyed = match kind {
            CipherKind::Sm4Cbc => Keyed::Sm4Cbc(
                Sm4::new_from_slice(key).map_err(|_| bad_key())?,
                iv.unwrap_or([0; BLOCK]),
            ),
            CipherKind::Sm4Ecb => Keyed::Sm4Ecb(Sm4::new_from_slice(key).map_err(|_| bad_key())?),
            CipherKind::Aes128Ecb => Keyed::Aes128(Aes128::new_from_slice(key).map_err(|_| bad_key())?),
            CipherKind::Aes192Ecb => Keyed::Aes192(Aes192::new_from_slice(key).map_err(|_| bad_key())?),
            CipherKind::Aes256Ecb => Keyed::Aes256(Aes256::new_from_slice(key).map_err(|_| bad_key())?),
        };
        Ok(Self { kind, keyed })
    }

    /// Which cipher this is.
    pub fn kind(&self) -> CipherKind {
        self.kind
    }

    /// `plain` padded (PKCS#7) and encrypted.
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        match &self.keyed {
            Keyed::Sm4Cbc(c, iv) => {
                cbc::Encryptor::<Sm4>::inner_iv_init(c.clone(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
            }
            Keyed::Sm4Ecb(c) => ecb::Encryptor::<Sm4>::inner_init(c.clone()).encrypt_padded_vec_mut::<Pkcs7>(plain),
            Keyed::Aes128(c) => ecb::Encryptor::<Aes128>::inner_init(c.clone()).encrypt_padded_vec_mut::<Pkcs7>(plain),
            Keyed::Aes192(c) => ecb::Encryptor::<Aes192>::inner_init(c.clone()).encrypt_padded_vec_mut::<Pkcs7>(plain),
            Keyed::Aes256(c) => ecb::Encryptor::<Aes256>::inner_init(c.clone()).encrypt_padded_vec_mut::<Pkcs7>(plain),
        }
    }

    /// `sealed` decrypted and unpadded.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.is_empty() || sealed.len() % BLOCK != 0 {
            return Err(CipherError::Length(sealed.len()));
        }
        let out = match &self.keyed {
            Keyed::Sm4Cbc(c, iv) => {
                cbc::Decryptor::<Sm4>::inner_iv_init(c.clone(), iv.into()).decrypt_padded_vec_mut::<Pkcs7>(sealed)
            }
            Keyed::Sm4Ecb(c) => ecb::Decryptor::<Sm4>::inner_init(c.clone()).decrypt_padded_vec_mut::<Pkcs7>(sealed),
            Keyed::Aes128(c) => ecb::Decryptor::<Aes128>::inner_init(c.clone()).decrypt_padded_vec_mut::<Pkcs7>(sealed),
            Keyed::Aes192(c) => ecb::Decryptor::<Aes192>::inner_init(c.clone()).decrypt_padded_vec_mut::<Pkcs7>(sealed),
            Keyed::Aes256(c) => ecb::Decryptor::<Aes256>::inner_init(c.clone()).decrypt_padded_vec_mut::<Pkcs7>(sealed),
        };
        out.map_err(|_| CipherError::Padding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbc::cipher::BlockEncrypt;

    fn unhex(s: &str) -> Vec<u8> {
        decode_hex(s.as_bytes()).unwrap()
    }

    /// GB/T 32907-2016, appendix A, example 1: one block under the key equal to the plaintext.
    #[test]
    fn sm4_standard_vector() {
        let key = unhex("0123456789abcdeffedcba9876543210");
        let cipher = Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::generic_array::GenericArray::clone_from_slice(&key);
        cipher.encrypt_block(&mut block);
        assert_eq!(Output::HexLower.encode(&block), b"681edf34d206965e86b3e94f536e4246");
        // ECB over one block plus PKCS#7: the first block is the standard's, then a block of padding.
        let ecb = Cipher::new(CipherKind::Sm4Ecb, &key, None).unwrap();
        let sealed = ecb.encrypt(&key);
        assert_eq!(sealed.len(), 32);
        assert_eq!(&sealed[..16], &unhex("681edf34d206965e86b3e94f536e4246")[..]);
        assert_eq!(ecb.decrypt(&sealed).unwrap(), key);
    }

    /// GB/T 32907-2016, appendix A, example 2: the same block encrypted 1,000,000 times.
    #[test]
    fn sm4_standard_vector_million_rounds() {
        let key = unhex("0123456789abcdeffedcba9876543210");
        let cipher = Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::generic_array::GenericArray::clone_from_slice(&key);
        for _ in 0..1_000_000 {
            cipher.encrypt_block(&mut block);
        }
        assert_eq!(Output::HexLower.encode(&block), b"595298c7c6fd271f0402f804c33d3f66");
    }

    /// FIPS-197 appendix C vectors, through ECB (first block) for each key size.
    #[test]
    fn aes_fips197_vectors() {
        let plain = unhex("00112233445566778899aabbccddeeff");
        let cases = [
            (
                CipherKind::Aes128Ecb,
                "000102030405060708090a0b0c0d0e0f",
                "69c4e0d86a7b0430d8cdb78070b4c55a",
            ),
            (
                CipherKind::Aes192Ecb,
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "dda97ca4864cdfe06eaf70a0ec0d7191",
            ),
            (
                CipherKind::Aes256Ecb,
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8ea2b7ca516745bfeafc49904b496089",
            ),
        ];
        for (kind, key, want) in cases {
            let c = Cipher::new(kind, &unhex(key), None).unwrap();
            let sealed = c.encrypt(&plain);
            assert_eq!(Output::HexLower.encode(&sealed[..16]), want.as_bytes(), "{kind}");
            assert_eq!(c.decrypt(&sealed).unwrap(), plain);
        }
    }

    #[test]
    fn padding_adds_a_whole_block_and_round_trips() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let c = Cipher::new(CipherKind::Sm4Cbc, &key, Some(&iv)).unwrap();
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000] {
            let plain: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let sealed = c.encrypt(&plain);
            assert_eq!(sealed.len(), 16 * (n / 16 + 1), "{n}");
            assert_eq!(c.decrypt(&sealed).unwrap(), plain, "{n}");
        }
    }

    #[test]
    fn lengths_are_checked_with_clear_messages() {
        let e = Cipher::new(CipherKind::Sm4Cbc, &[0; 15], Some(&[0; 16])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key has 15 bytes; sm4_cbc needs 16 (that is 32 hex digits)"
        );
        let e = Cipher::new(CipherKind::Aes256Ecb, &[0; 16], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key has 16 bytes; aes_256_ecb needs 32 (that is 64 hex digits)"
        );
        let e = Cipher::new(CipherKind::Sm4Cbc, &[0; 16], Some(&[0; 8])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "iv has 8 bytes; sm4_cbc needs 16 (that is 32 hex digits)"
        );
        let e = Cipher::new(CipherKind::Sm4Cbc, &[0; 16], None).unwrap_err();
        assert_eq!(e.to_string(), "sm4_cbc needs an iv");
        let e = Cipher::new(CipherKind::Aes128Ecb, &[0; 16], Some(&[0; 16])).unwrap_err();
        assert_eq!(e.to_string(), "aes_128_ecb takes no iv");
    }

    #[test]
    fn wrong_key_or_damage_is_reported_not_returned_as_data() {
        let a = Cipher::new(CipherKind::Sm4Ecb, &[1; 16], None).unwrap();
        let sealed = a.encrypt(b"{\"v\":1}");
        assert_eq!(a.decrypt(&sealed[..15]).unwrap_err(), CipherError::Length(15));
        assert_eq!(a.decrypt(&[]).unwrap_err(), CipherError::Length(0));
        // A wrong key almost always breaks the padding; when it happens not to, the text differs.
        let b = Cipher::new(CipherKind::Sm4Ecb, &[2; 16], None).unwrap();
        assert_ne!(b.decrypt(&sealed).ok().as_deref(), Some(&b"{\"v\":1}"[..]));
    }

    #[test]
    fn text_forms_round_trip() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for out in [Output::Raw, Output::HexUpper, Output::HexLower, Output::Base64] {
            let text = out.encode(&bytes);
            assert_eq!(out.decode(&text).unwrap(), bytes, "{out}");
        }
        assert_eq!(Output::HexUpper.encode(&[0xab, 0x01]), b"AB01");
        assert_eq!(Output::HexLower.encode(&[0xab, 0x01]), b"ab01");
        assert_eq!(Output::Base64.encode(b"\xfb\xff"), b"+/8=");
        // Either case is accepted when opening.
        assert_eq!(Output::HexUpper.decode(b"ab01").unwrap(), [0xab, 0x01]);
        let e = decode_hex(b"0g").unwrap_err();
        assert_eq!(e.to_string(), "not valid hex: character 2 is not a hex digit");
        assert!(decode_hex(b"abc").is_err());
        assert!(Output::Base64.decode(b"@@@@").is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = [0x5au8; 16];
        let c = Cipher::new(CipherKind::Sm4Cbc, &key, Some(&[0xa5; 16])).unwrap();
        let shown = format!("{c:?} {:?}", SecretBytes::new(key.to_vec()));
        assert!(
            !shown.contains("90") && !shown.contains("5a") && !shown.contains("165"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }
}
