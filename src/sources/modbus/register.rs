//! How a point sits in a device's register map: function, address, data type, word order and
//! the scaling from raw counts to engineering units.
//!
//! Design: the two bit tables (coils, discrete inputs) and the two register tables (holding,
//! input) are handled alike: an "item" is one bit or one 16-bit register, a point occupies
//! [`DataType::word_count`] items, and a bit read is handed to the decoder as one word (0 or 1)
//! per bit. The planner and the decoder therefore need no second code path for bits.

use serde::Deserialize;

/// Modbus data table a point is read from (Modbus Application Protocol v1.1b3, §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterFunction {
    /// Coils (read-only for the gateway), function code 01.
    Coil,
    /// Discrete inputs, function code 02.
    Discrete,
    /// Holding registers, function code 03.
    Holding,
    /// Input registers, function code 04.
    Input,
}

impl RegisterFunction {
    /// Every table, in function-code order.
    pub const ALL: [RegisterFunction; 4] = [
        RegisterFunction::Coil,
        RegisterFunction::Discrete,
        RegisterFunction::Holding,
        RegisterFunction::Input,
    ];

    /// The Modbus function code that reads this table.
    pub fn code(self) -> u8 {
        match self {
            RegisterFunction::Coil => 0x01,
            RegisterFunction::Discrete => 0x02,
            RegisterFunction::Holding => 0x03,
            RegisterFunction::Input => 0x04,
        }
    }

    /// The table a read function code reads, if it is one of the four.
    pub fn from_code(code: u8) -> Option<RegisterFunction> {
        RegisterFunction::ALL.into_iter().find(|f| f.code() == code)
    }

    /// True for the single-bit tables (coils, discrete inputs).
    pub fn is_bits(self) -> bool {
        matches!(self, RegisterFunction::Coil | RegisterFunction::Discrete)
    }

    /// Name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterFunction::Coil => "coil",
            RegisterFunction::Discrete => "discrete",
            RegisterFunction::Holding => "holding",
            RegisterFunction::Input => "input",
        }
    }
}

/// How the items of a point encode its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// One coil or discrete input: 0 or 1.
    Bool,
    /// One bit of a register (0 = least significant): 0 or 1.
    Bit(u8),
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit (two's complement), one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// Unsigned 64-bit, four registers (values above 2^53 lose precision as f64).
    U64,
    /// Signed 64-bit, four registers.
    I64,
    /// IEEE 754 single precision, two registers.
    F32,
    /// IEEE 754 double precision, four registers.
    F64,
    /// Packed BCD, 4 digits (0–9999) in one register.
    Bcd16,
    /// Packed BCD, 8 digits (0–99999999) in two registers.
    Bcd32,
    /// ASCII text of `words` registers (two characters each), read as a decimal number.
    Ascii {
        /// Registers the text occupies (1..=32).
        words: u8,
    },
}

/// The data type names accepted in profiles (`type = "f64"`); `bit` takes `bit = N` and
/// `ascii` takes `length = N` (registers) beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeName {
    /// See [`DataType::Bool`].
    Bool,
    /// See [`DataType::Bit`].
    Bit,
    /// See [`DataType::U16`].
    U16,
    /// See [`DataType::I16`].
    I16,
    /// See [`DataType::U32`].
    U32,
    /// See [`DataType::I32`].
    I32,
    /// See [`DataType::U64`].
    U64,
    /// See [`DataType::I64`].
    I64,
    /// See [`DataType::F32`].
    F32,
    /// See [`DataType::F64`].
    F64,
    /// See [`DataType::Bcd16`].
    Bcd16,
    /// See [`DataType::Bcd32`].
    Bcd32,
    /// See [`DataType::Ascii`].
    Ascii,
}

/// Most registers an ASCII point may span.
pub const MAX_ASCII_WORDS: u8 = 32;

impl DataType {
    /// Items (registers, or bits in a bit table) the type occupies.
    pub fn word_count(self) -> u16 {
        match self {
            DataType::Bool | DataType::Bit(_) | DataType::U16 | DataType::I16 | DataType::Bcd16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 | DataType::Bcd32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::Ascii { words } => u16::from(words),
        }
    }

    /// True if the type lives in a bit table (coils, discrete inputs).
    pub fn is_bit_table_type(self) -> bool {
        matches!(self, DataType::Bool)
    }

    /// Name used in config and the profile table.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Bit(_) => "bit",
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
            DataType::Bcd16 => "bcd16",
            DataType::Bcd32 => "bcd32",
            DataType::Ascii { .. } => "ascii",
        }
    }

    /// Builds a type from its profile name and its `bit` / `length` companions.
    pub fn from_parts(name: TypeName, bit: Option<u8>, length: Option<u8>) -> Result<DataType, String> {
        let no_extra = |t: DataType| match (bit, length) {
            (None, None) => Ok(t),
            (Some(_), _) => Err(format!("`bit` only applies to type \"bit\", not \"{}\"", t.as_str())),
            (_, Some(_)) => Err(format!(
                "`length` only applies to type \"ascii\", not \"{}\"",
                t.as_str()
            )),
        };
        match name {
            TypeName::Bit => match (bit, length) {
                (Some(b), None) if b <= 15 => Ok(DataType::Bit(b)),
                (Some(b), None) => Err(format!("bit must be 0..=15 (0 = least significant), got {b}")),
                (None, _) => Err("type \"bit\" needs `bit = 0..15`".into()),
                (Some(_), Some(_)) => Err("`length` only applies to type \"ascii\"".into()),
            },
            TypeName::Ascii => match (length, bit) {
                (Some(n), None) if (1..=MAX_ASCII_WORDS).contains(&n) => Ok(DataType::Ascii { words: n }),
                (Some(n), None) => Err(format!("length must be 1..={MAX_ASCII_WORDS} registers, got {n}")),
                (None, _) => Err("type \"ascii\" needs `length` (registers, two characters each)".into()),
                (Some(_), Some(_)) => Err("`bit` only applies to type \"bit\"".into()),
            },
            TypeName::Bool => no_extra(DataType::Bool),
            TypeName::U16 => no_extra(DataType::U16),
            TypeName::I16 => no_extra(DataType::I16),
            TypeName::U32 => no_extra(DataType::U32),
            TypeName::I32 => no_extra(DataType::I32),
            TypeName::U64 => no_extra(DataType::U64),
            TypeName::I64 => no_extra(DataType::I64),
            TypeName::F32 => no_extra(DataType::F32),
            TypeName::F64 => no_extra(DataType::F64),
            TypeName::Bcd16 => no_extra(DataType::Bcd16),
            TypeName::Bcd32 => no_extra(DataType::Bcd32),
        }
    }
}

/// Order of the bytes of a multi-register value, with A the most significant byte.
///
/// For 64-bit values the letters generalise by words: `ABCD` big-endian words and bytes,
/// `CDAB` words reversed (least significant word first), `BADC` bytes swapped inside each
/// word, `DCBA` fully little-endian. For ASCII, `BADC`/`DCBA` put the first character in the
/// low byte of each register. One-register types ignore the word half of the order but honour
/// the byte swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum WordOrder {
    /// Big-endian bytes, big-endian words.
    #[default]
    ABCD,
    /// Big-endian bytes, little-endian words (word swap).
    CDAB,
    /// Little-endian bytes, big-endian words (byte swap).
    BADC,
    /// Little-endian bytes and words.
    DCBA,
}

impl WordOrder {
    /// True if the words of a multi-register value come least significant first.
    pub fn words_swapped(self) -> bool {
        matches!(self, WordOrder::CDAB | WordOrder::DCBA)
    }

    /// True if the two bytes of each register are swapped.
    pub fn bytes_swapped(self) -> bool {
        matches!(self, WordOrder::BADC | WordOrder::DCBA)
    }
}

/// Linear map from raw counts to engineering units. Either a raw range mapped onto an
/// engineering range (4–20 mA counts to %LEL), or a plain `raw * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling {
    /// `raw * scale + offset`.
    Linear {
        /// Multiplier.
        scale: f64,
        /// Added after scaling.
        offset: f64,
    },
    /// `raw.0..raw.1` maps linearly onto `eng.0..eng.1`.
    Range {
        /// Raw counts at the bottom and top of the instrument's range.
        raw: (f64, f64),
        /// Engineering values at those counts.
        eng: (f64, f64),
    },
}

impl Scaling {
    /// No scaling.
    pub const UNIT: Scaling = Scaling::Linear {
        scale: 1.0,
        offset: 0.0,
    };

    /// Raw value to engineering value.
    pub fn to_engineering(self, raw: f64) -> f64 {
        match self {
            Scaling::Linear { scale, offset } => raw * scale + offset,
            Scaling::Range {
                raw: (r0, r1),
                eng: (e0, e1),
            } => e0 + (raw - r0) * (e1 - e0) / (r1 - r0),
        }
    }

    /// Engineering value back to raw; the simulator uses it to serve a chosen value.
    pub fn to_raw(self, eng: f64) -> f64 {
        match self {
            Scaling::Linear { scale, offset } => (eng - offset) / scale,
            Scaling::Range {
                raw: (r0, r1),
                eng: (e0, e1),
            } => r0 + (eng - e0) * (r1 - r0) / (e1 - e0),
        }
    }
}

/// Where and how one point is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterSpec {
    /// Data table.
    pub function: RegisterFunction,
    /// Zero-based protocol address of the first register (or bit).
    pub address: u16,
    /// Raw encoding.
    pub data_type: DataType,
    /// Byte and word order of multi-register values.
    pub word_order: WordOrder,
    /// Raw to engineering units.
    pub scaling: Scaling,
    /// Instrument's measuring range in engineering units; outside it the reading is `out_of_range`.
    pub range: Option<(f64, f64)>,
}

impl RegisterSpec {
    /// Address one past the last register (or bit) of the point.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.data_type.word_count())
    }

    /// Why this type cannot sit in this table, if it cannot.
    pub fn table_mismatch(&self) -> Option<String> {
        match (self.function.is_bits(), self.data_type.is_bit_table_type()) {
            (true, false) => Some(format!(
                "a {} holds single bits: use type \"bool\", not \"{}\"",
                self.function.as_str(),
                self.data_type.as_str()
            )),
            (false, true) => Some(format!(
                "type \"bool\" is for coils and discrete inputs; for a bit of a {} register use type \"bit\" with `bit = N`",
                self.function.as_str()
            )),
            _ => None,
        }
    }
}
