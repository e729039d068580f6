//! How a point sits in a device's register map: function, address, data type, word order and
//! the scaling from raw counts to engineering units.

use serde::Deserialize;

/// Modbus data table a point is read from (Modbus Application Protocol v1.1b3, §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterFunction {
    /// Holding registers, function code 03.
    Holding,
    /// Input registers, function code 04.
    Input,
}

impl RegisterFunction {
    /// The Modbus function code that reads this table.
    pub fn code(self) -> u8 {
        match self {
            RegisterFunction::Holding => 0x03,
            RegisterFunction::Input => 0x04,
        }
    }

    /// Name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterFunction::Holding => "holding",
            RegisterFunction::Input => "input",
        }
    }
}

/// How the register words of a point encode its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit (two's complement), one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// IEEE 754 single precision, two registers.
    F32,
}

impl DataType {
    /// Registers the type occupies.
    pub fn word_count(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }

    /// Name used in config and the profile table.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
        }
    }
}

/// Order of the bytes of a multi-register value, with A the most significant byte.
/// `ABCD` is the Modbus big-endian default; many meters send `CDAB` (word-swapped).
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
    /// Zero-based protocol address of the first register.
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
    /// Address one past the last register of the point.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.data_type.word_count())
    }
}
