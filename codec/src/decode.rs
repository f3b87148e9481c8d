//! Decoding column values (server to client).

use crate::oid;
use std::fmt;

/// A value that does not decode as its declared type: an error for that query, never a
/// panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub type_name: &'static str,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode {} value: {}",
            self.type_name, self.message
        )
    }
}

impl std::error::Error for DecodeError {}

fn bad<T>(type_name: &'static str, message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError {
        type_name,
        message: message.into(),
    })
}

fn fixed<const N: usize>(raw: &[u8], type_name: &'static str) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .or_else(|_| bad(type_name, format!("expected {N} bytes, got {}", raw.len())))
}

/// How one result column is decoded, chosen once from its type OID and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Bytea,
    Uuid,
    /// Text-format bool (`t`/`f`).
    BoolText,
    /// Text-format integers that fit a JS number (int2, int4, oid).
    IntText,
    /// Text-format int8.
    Int8Text,
    /// Text-format float4/float8.
    FloatText,
    /// Any text-format value delivered as a string (text, varchar, numeric, ... and every
    /// type without a dedicated decoder).
    Text,
}

impl Decoder {
    /// The decoder for a column of `type_oid` sent in `format` (0 text, 1 binary).
    pub fn plan(type_oid: u32, format: i16) -> Decoder {
        if format == 1 {
            match type_oid {
                oid::BOOL => Decoder::Bool,
                oid::INT2 => Decoder::Int2,
                oid::INT4 => Decoder::Int4,
                oid::INT8 => Decoder::Int8,
                oid::OID => Decoder::Oid,
                oid::FLOAT4 => Decoder::Float4,
                oid::FLOAT8 => Decoder::Float8,
                oid::BYTEA => Decoder::Bytea,
                oid::UUID => Decoder::Uuid,
                // A binary column we have no decoder for would be unreadable: callers only
                // request binary for the OIDs above (`prefers_binary`).
                _ => Decoder::Bytea,
            }
        } else {
            match type_oid {
                oid::BOOL => Decoder::BoolText,
                oid::INT2 | oid::INT4 | oid::OID => Decoder::IntText,
                oid::INT8 => Decoder::Int8Text,
                oid::FLOAT4 | oid::FLOAT8 => Decoder::FloatText,
                _ => Decoder::Text,
            }
        }
    }
}

pub fn bool_binary(raw: &[u8]) -> Result<bool, DecodeError> {
    match raw {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => bad("bool", format!("invalid bytes {raw:?}")),
    }
}

pub fn bool_text(raw: &[u8]) -> Result<bool, DecodeError> {
    match raw {
        b"t" => Ok(true),
        b"f" => Ok(false),
        _ => bad("bool", "expected t or f"),
    }
}

pub fn int2(raw: &[u8]) -> Result<i16, DecodeError> {
    Ok(i16::from_be_bytes(fixed(raw, "int2")?))
}

pub fn int4(raw: &[u8]) -> Result<i32, DecodeError> {
    Ok(i32::from_be_bytes(fixed(raw, "int4")?))
}

pub fn int8(raw: &[u8]) -> Result<i64, DecodeError> {
    Ok(i64::from_be_bytes(fixed(raw, "int8")?))
}

pub fn oid(raw: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_be_bytes(fixed(raw, "oid")?))
}

pub fn float4(raw: &[u8]) -> Result<f32, DecodeError> {
    Ok(f32::from_be_bytes(fixed(raw, "float4")?))
}

pub fn float8(raw: &[u8]) -> Result<f64, DecodeError> {
    Ok(f64::from_be_bytes(fixed(raw, "float8")?))
}

/// A text-format integer (int2/int4/oid/int8).
pub fn int_text(raw: &[u8]) -> Result<i64, DecodeError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or_else(|| bad("integer", "not a decimal integer"), Ok)
}

/// A text-format float, including `NaN`, `Infinity` and `-Infinity`.
pub fn float_text(raw: &[u8]) -> Result<f64, DecodeError> {
    match raw {
        b"NaN" => Ok(f64::NAN),
        b"Infinity" => Ok(f64::INFINITY),
        b"-Infinity" => Ok(f64::NEG_INFINITY),
        _ => std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| bad("float", "not a number"), Ok),
    }
}

/// A text value: the server sends UTF-8 (client_encoding is set at startup), but a value is
/// still checked rather than trusted.
pub fn text(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw).or_else(|_| bad("text", "invalid UTF-8"))
}

/// A binary uuid as the canonical lowercase string.
pub fn uuid(raw: &[u8]) -> Result<String, DecodeError> {
    let b: [u8; 16] = fixed(raw, "uuid")?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plans() {
        assert_eq!(Decoder::plan(oid::INT8, 1), Decoder::Int8);
        assert_eq!(Decoder::plan(oid::INT8, 0), Decoder::Int8Text);
        assert_eq!(Decoder::plan(oid::VARCHAR, 0), Decoder::Text);
        assert_eq!(Decoder::plan(99999, 0), Decoder::Text);
    }

    #[test]
    fn wrong_lengths_are_errors() {
        assert!(int4(&[0, 0, 1]).is_err());
        assert!(int8(&[0; 9]).is_err());
        assert!(int2(&[]).is_err());
        assert!(float8(&[0; 4]).is_err());
        assert!(bool_binary(&[2]).is_err());
        assert!(bool_binary(&[]).is_err());
        assert!(uuid(&[0; 15]).is_err());
        assert!(text(&[0xff]).is_err());
        assert!(int_text(b"12x").is_err());
        assert!(float_text(b"").is_err());
    }

    #[test]
    fn values() {
        assert_eq!(int8(&i64::MIN.to_be_bytes()), Ok(i64::MIN));
        assert_eq!(int_text(b"-9223372036854775808"), Ok(i64::MIN));
        assert!(float_text(b"NaN").unwrap().is_nan());
        assert_eq!(float_text(b"-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(float_text(b"1.5e300"), Ok(1.5e300));
        assert_eq!(bool_text(b"t"), Ok(true));
        assert_eq!(
            uuid(&[
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ])
            .unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }

    proptest! {
        #[test]
        fn int8_round_trips(v: i64) {
            prop_assert_eq!(int8(&v.to_be_bytes()), Ok(v));
            prop_assert_eq!(int_text(v.to_string().as_bytes()), Ok(v));
        }

        #[test]
        fn float8_round_trips(v: f64) {
            let got = float8(&v.to_be_bytes()).unwrap();
            prop_assert!(got.to_bits() == v.to_bits());
        }

        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = (bool_binary(&bytes), bool_text(&bytes), int2(&bytes), int4(&bytes), int8(&bytes));
            let _ = (oid(&bytes), float4(&bytes), float8(&bytes), int_text(&bytes), float_text(&bytes));
            let _ = (text(&bytes), uuid(&bytes));
        }
    }
}
