//! The Sparkplug B payload (Eclipse Sparkplug 3.0, `org.eclipse.tahu.protobuf.Payload`), the
//! part of it the gateway writes and reads: a payload's timestamp, metrics and sequence number,
//! a metric's name, alias, timestamp, datatype, flags, properties and scalar value.
//!
//! Design: declared by hand with prost's derive macros from the specification's field numbers,
//! so the build needs no protoc and no build script. The schema is proto2: every scalar has
//! presence (`Option`), which matters here, since a metric with an alias and no name, or a
//! payload without `seq` (NDEATH), is meaningful. Fields the gateway never writes (data sets,
//! templates, metadata, extensions) are left out; prost skips them when decoding a command.

/// Sparkplug datatype codes (the `datatype` of a metric, the `type` of a property value).
pub(super) mod datatype {
    /// 32-bit signed integer, carried in `int_value`.
    pub(in super::super) const INT32: u32 = 3;
    /// 64-bit unsigned integer, carried in `long_value`.
    pub(in super::super) const UINT64: u32 = 8;
    /// 64-bit float, carried in `double_value`.
    pub(in super::super) const DOUBLE: u32 = 10;
    /// Boolean, carried in `boolean_value`.
    pub(in super::super) const BOOLEAN: u32 = 11;
    /// UTF-8 string, carried in `string_value`.
    pub(in super::super) const STRING: u32 = 12;
}

/// A whole Sparkplug B message body.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Payload {
    /// When the message was sent, ms since the Unix epoch (UTC).
    #[prost(uint64, optional, tag = "1")]
    pub(super) timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub(super) metrics: Vec<Metric>,
    /// Message sequence number, 0..=255 (absent in NDEATH).
    #[prost(uint64, optional, tag = "3")]
    pub(super) seq: Option<u64>,
}

/// One metric of a payload.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Metric {
    /// Metric name (in births; data messages carry the alias instead).
    #[prost(string, optional, tag = "1")]
    pub(super) name: Option<String>,
    /// Alias announced in the birth.
    #[prost(uint64, optional, tag = "2")]
    pub(super) alias: Option<u64>,
    /// When the value was measured, ms since the Unix epoch (UTC).
    #[prost(uint64, optional, tag = "3")]
    pub(super) timestamp: Option<u64>,
    /// Datatype code ([`datatype`]); required in births.
    #[prost(uint32, optional, tag = "4")]
    pub(super) datatype: Option<u32>,
    /// A value from the past (store and forward), not the current one.
    #[prost(bool, optional, tag = "5")]
    pub(super) is_historical: Option<bool>,
    /// Not to be stored by a historian.
    #[prost(bool, optional, tag = "6")]
    pub(super) is_transient: Option<bool>,
    /// The metric has no value.
    #[prost(bool, optional, tag = "7")]
    pub(super) is_null: Option<bool>,
    /// Properties (unit, quality, ...).
    #[prost(message, optional, tag = "9")]
    pub(super) properties: Option<PropertySet>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub(super) value: Option<MetricValue>,
}

/// The scalar values a metric can carry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum MetricValue {
    /// Int8..Int32 and UInt8..UInt32.
    #[prost(uint32, tag = "10")]
    Int(u32),
    /// Int64, UInt64, DateTime.
    #[prost(uint64, tag = "11")]
    Long(u64),
    /// Float.
    #[prost(float, tag = "12")]
    Float(f32),
    /// Double.
    #[prost(double, tag = "13")]
    Double(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    Boolean(bool),
    /// String, Text, UUID.
    #[prost(string, tag = "15")]
    String(String),
    /// Bytes, File.
    #[prost(bytes = "vec", tag = "16")]
    Bytes(Vec<u8>),
}

/// Properties of a metric: keys and values, pairwise.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PropertySet {
    /// Property names.
    #[prost(string, repeated, tag = "1")]
    pub(super) keys: Vec<String>,
    /// Their values, in the order of `keys`.
    #[prost(message, repeated, tag = "2")]
    pub(super) values: Vec<PropertyValue>,
}

/// One property value.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PropertyValue {
    /// Datatype code ([`datatype`]).
    #[prost(uint32, optional, tag = "1")]
    pub(super) r#type: Option<u32>,
    /// The property has no value.
    #[prost(bool, optional, tag = "2")]
    pub(super) is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "PropertyScalar", tags = "3, 4, 5, 6, 7, 8")]
    pub(super) value: Option<PropertyScalar>,
}

/// The scalar values a property can carry.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(super) enum PropertyScalar {
    /// Int8..Int32 and UInt8..UInt32.
    #[prost(uint32, tag = "3")]
    Int(u32),
    /// Int64, UInt64, DateTime.
    #[prost(uint64, tag = "4")]
    Long(u64),
    /// Float.
    #[prost(float, tag = "5")]
    Float(f32),
    /// Double.
    #[prost(double, tag = "6")]
    Double(f64),
    /// Boolean.
    #[prost(bool, tag = "7")]
    Boolean(bool),
    /// String, Text.
    #[prost(string, tag = "8")]
    String(String),
}

impl PropertySet {
    /// Adds a property.
    pub(super) fn push(&mut self, key: &str, datatype: u32, value: PropertyScalar) {
        self.keys.push(key.to_string());
        self.values.push(PropertyValue {
            r#type: Some(datatype),
            is_null: None,
            value: Some(value),
        });
    }

    /// The value of `key`, if set.
    #[cfg(test)]
    pub(super) fn get(&self, key: &str) -> Option<&PropertyScalar> {
        let i = self.keys.iter().position(|k| k == key)?;
        self.values.get(i)?.value.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn field_numbers_give_the_bytes_the_specification_defines() {
        // seq (field 3, varint) = 7: key 0x18; a metric (field 2, bytes) with alias (field 2)
        // = 5 and a double (field 13, 64-bit) = 1.0: key 0x69.
        let p = Payload {
            timestamp: None,
            metrics: vec![Metric {
                alias: Some(5),
                value: Some(MetricValue::Double(1.0)),
                ..Default::default()
            }],
            seq: Some(7),
        };
        let bytes = p.encode_to_vec();
        assert_eq!(
            bytes,
            [0x12, 0x0b, 0x10, 0x05, 0x69, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x18, 0x07]
        );
        assert_eq!(Payload::decode(&bytes[..]).unwrap(), p);
    }

    #[test]
    fn properties_round_trip_and_unknown_fields_are_skipped() {
        let mut props = PropertySet::default();
        props.push("Quality", datatype::INT32, PropertyScalar::Int(192));
        let m = Metric {
            name: Some("a".into()),
            properties: Some(props),
            ..Default::default()
        };
        let mut bytes = Payload {
            timestamp: Some(1),
            metrics: vec![m.clone()],
            seq: None,
        }
        .encode_to_vec();
        // uuid (field 4, a string the gateway never reads).
        bytes.extend_from_slice(&[0x22, 0x01, b'x']);
        let back = Payload::decode(&bytes[..]).unwrap();
        assert_eq!(back.metrics, vec![m]);
        let q = back.metrics[0].properties.as_ref().unwrap().get("Quality");
        assert_eq!(q, Some(&PropertyScalar::Int(192)));
    }
}
