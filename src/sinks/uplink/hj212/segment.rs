//! The HJ 212 data segment: `QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&`
//! (HJ 212-2017 6.3.3), its `Flag` bits and the `CP` field list.

use std::fmt::Write as _;

/// Which edition of the standard a frame follows; it is written into the `Flag` field's
/// version bits (7..2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HJ 212-2017: version bits 1.
    V2017,
    /// HJ 212-2025 (in force from 2026-01-01): version bits 2.
    V2025,
}

impl<'de> serde::Deserialize<'de> for Version {
    /// `version = 2017` or `version = "2025"`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(i64),
            Text(String),
        }
        let year = match Written::deserialize(d)? {
            Written::Number(n) => n.to_string(),
            Written::Text(t) => t,
        };
        match year.as_str() {
            "2017" => Ok(Version::V2017),
            "2025" => Ok(Version::V2025),
            other => Err(serde::de::Error::custom(format!(
                "HJ 212 version `{other}` is not 2017 or 2025"
            ))),
        }
    }
}

impl Version {
    /// The value of the `Flag` field's version bits.
    pub fn bits(self) -> u8 {
        match self {
            Version::V2017 => 1,
            Version::V2025 => 2,
        }
    }

    /// The edition given by version bits, if we know it.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            1 => Some(Version::V2017),
            2 => Some(Version::V2025),
            _ => None,
        }
    }
}

/// The `Flag` field: version in bits 7..2, split packet (bit 1), acknowledgement requested
/// (bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub u8);

impl Flag {
    /// The flag for `version` with the given bits.
    pub fn new(version: Version, split: bool, ack: bool) -> Self {
        Flag((version.bits() << 2) | (u8::from(split) << 1) | u8::from(ack))
    }

    /// Version bits.
    pub fn version_bits(self) -> u8 {
        self.0 >> 2
    }

    /// Whether the frame is one packet of a split message (carries `PNUM`/`PNO`).
    pub fn split(self) -> bool {
        self.0 & 0b10 != 0
    }

    /// Whether the sender asks for an acknowledgement.
    pub fn ack(self) -> bool {
        self.0 & 0b01 != 0
    }
}

/// Why a data segment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// The segment has no `CP=&&…&&` field.
    #[error("data segment has no `CP=&&…&&` field")]
    MissingCp,
    /// A required header field is absent.
    #[error("data segment has no `{0}` field")]
    MissingField(&'static str),
    /// A header field holds something unreadable.
    #[error("field `{field}` holds `{value}`")]
    BadField {
        /// Field name.
        field: &'static str,
        /// Its text.
        value: String,
    },
}

/// One data segment, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Request number `YYYYMMDDhhmmsszzz`: identifies a message and its answers.
    pub qn: Option<String>,
    /// System code (`ST`): 91 for system interaction, else the monitored system's code.
    pub st: String,
    /// Command code (`CN`).
    pub cn: String,
    /// Access password (`PW`).
    pub pw: String,
    /// Device unique identifier (`MN`).
    pub mn: String,
    /// `Flag`, if present.
    pub flag: Option<Flag>,
    /// `(PNUM, PNO)`: packet count and 1-based packet number of a split message.
    pub packet: Option<(u32, u32)>,
    /// The command parameters between `CP=&&` and `&&`, unparsed.
    pub cp: String,
}

impl Segment {
    /// The segment's text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 + self.cp.len());
        self.render_into(&mut out);
        out
    }

    /// Appends the segment's text to `out`.
    pub fn render_into(&self, out: &mut String) {
        if let Some(qn) = &self.qn {
            let _ = write!(out, "QN={qn};");
        }
        let _ = write!(out, "ST={};CN={};PW={};MN={};", self.st, self.cn, self.pw, self.mn);
        if let Some(flag) = self.flag {
            let _ = write!(out, "Flag={};", flag.0);
        }
        if let Some((pnum, pno)) = self.packet {
            let _ = write!(out, "PNUM={pnum};PNO={pno};");
        }
        let _ = write!(out, "CP=&&{}&&", self.cp);
    }

    /// Reads a data segment. Header fields may come in any order; unknown ones are ignored.
    pub fn parse(text: &str) -> Result<Segment, SegmentError> {
        let at = text.find("CP=&&").ok_or(SegmentError::MissingCp)?;
        let head = &text[..at];
        let body = &text[at + 5..];
        let cp = body.strip_suffix("&&").ok_or(SegmentError::MissingCp)?;
        let (mut qn, mut st, mut cn, mut pw, mut mn, mut flag, mut pnum, mut pno) =
            (None, None, None, None, None, None, None, None);
        for part in head.split(';').filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            match key {
                "QN" => qn = Some(value.to_string()),
                "ST" => st = Some(value.to_string()),
                "CN" => cn = Some(value.to_string()),
                "PW" => pw = Some(value.to_string()),
                "MN" => mn = Some(value.to_string()),
                "Flag" => flag = Some(number::<u8>("Flag", value)?),
                "PNUM" => pnum = Some(number::<u32>("PNUM", value)?),
                "PNO" => pno = Some(number::<u32>("PNO", value)?),
                _ => {}
            }
        }
        let packet = match (pnum, pno) {
            (Some(n), Some(i)) => Some((n, i)),
            (None, None) => None,
            (Some(_), None) => return Err(SegmentError::MissingField("PNO")),
            (None, Some(_)) => return Err(SegmentError::MissingField("PNUM")),
        };
        Ok(Segment {
            qn,
            st: st.ok_or(SegmentError::MissingField("ST"))?,
            cn: cn.ok_or(SegmentError::MissingField("CN"))?,
            pw: pw.unwrap_or_default(),
            mn: mn.ok_or(SegmentError::MissingField("MN"))?,
            flag: flag.map(Flag),
            packet,
            cp: cp.to_string(),
        })
    }

    /// The `CP` fields as `(key, value)` pairs in order; groups (`;`) and members (`,`) are
    /// flattened.
    pub fn cp_fields(&self) -> Vec<(&str, &str)> {
        cp_fields(&self.cp)
    }

    /// The value of `CP` field `key`, if present.
    pub fn cp_value(&self, key: &str) -> Option<&str> {
        self.cp_fields().into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Splits a `CP` body into `(key, value)` pairs; a part without `=` is skipped.
pub fn cp_fields(cp: &str) -> Vec<(&str, &str)> {
    cp.split([';', ','])
        .filter_map(|part| part.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn number<T: std::str::FromStr>(field: &'static str, value: &str) -> Result<T, SegmentError> {
    value.parse().map_err(|_| SegmentError::BadField {
        field,
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str =
        "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&";

    #[test]
    fn golden_segment_round_trips() {
        let s = Segment::parse(GOLDEN).unwrap();
        assert_eq!(s.qn.as_deref(), Some("20160801085857223"));
        assert_eq!((s.st.as_str(), s.cn.as_str(), s.pw.as_str()), ("32", "1062", "100000"));
        assert_eq!(s.flag, Some(Flag::new(Version::V2017, false, true)));
        assert_eq!(s.cp_value("RtdInterval"), Some("30"));
        assert_eq!(s.render(), GOLDEN);
    }

    #[test]
    fn flag_bits_follow_the_edition() {
        assert_eq!(Flag::new(Version::V2017, false, false).0, 4);
        assert_eq!(Flag::new(Version::V2017, false, true).0, 5);
        assert_eq!(Flag::new(Version::V2017, true, true).0, 7);
        assert_eq!(Flag::new(Version::V2025, false, false).0, 8);
        assert_eq!(Flag::new(Version::V2025, true, true).0, 11);
        let f = Flag(11);
        assert_eq!(Version::from_bits(f.version_bits()), Some(Version::V2025));
        assert!(f.split() && f.ack());
        assert!(Version::from_bits(0).is_none());
    }

    #[test]
    fn split_packet_fields_round_trip() {
        let s = Segment {
            qn: Some("20250101000000000".into()),
            st: "22".into(),
            cn: "2011".into(),
            pw: "123456".into(),
            mn: "MN1".into(),
            flag: Some(Flag::new(Version::V2025, true, true)),
            packet: Some((3, 2)),
            cp: "DataTime=20250101000000;a01-Rtd=1,a01-Flag=N".into(),
        };
        let text = s.render();
        assert!(text.contains("Flag=11;PNUM=3;PNO=2;CP=&&"));
        assert_eq!(Segment::parse(&text).unwrap(), s);
    }

    #[test]
    fn cp_groups_and_members_are_flattened() {
        let f = cp_fields("DataTime=20160801084000;a21005-Rtd=1.1,a21005-Flag=N;;junk");
        assert_eq!(
            f,
            vec![
                ("DataTime", "20160801084000"),
                ("a21005-Rtd", "1.1"),
                ("a21005-Flag", "N")
            ]
        );
    }

    #[test]
    fn broken_segments_name_the_field() {
        assert_eq!(Segment::parse("QN=1;ST=32").unwrap_err(), SegmentError::MissingCp);
        assert_eq!(
            Segment::parse("QN=1;ST=32;MN=1;CP=&&&&").unwrap_err(),
            SegmentError::MissingField("CN")
        );
        assert_eq!(
            Segment::parse("ST=32;CN=1;MN=1;Flag=x;CP=&&&&").unwrap_err(),
            SegmentError::BadField {
                field: "Flag",
                value: "x".into()
            }
        );
        assert_eq!(
            Segment::parse("ST=32;CN=1;MN=1;PNUM=2;CP=&&&&").unwrap_err(),
            SegmentError::MissingField("PNO")
        );
    }
}
