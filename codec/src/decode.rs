//! Decoding column values (server to client).

use crate::builtin::{builtin, Format};
use crate::types::{Kind, Types};
use std::borrow::Cow;
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

pub(crate) fn bad<T>(
    type_name: &'static str,
    message: impl Into<String>,
) -> Result<T, DecodeError> {
    Err(DecodeError {
        type_name,
        message: message.into(),
    })
}

fn fixed<const N: usize>(raw: &[u8], type_name: &'static str) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .or_else(|_| bad(type_name, format!("expected {N} bytes, got {}", raw.len())))
}

/// What a decoded value is, whatever its PostgreSQL type: the consumer (the JS binding)
/// needs one way of emitting each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Bool,
    /// Fits an i32 (int2, int4).
    I32,
    /// A double (float4/8, and integers that may exceed i32 such as oid).
    F64,
    /// A 64-bit integer (int8): lossless, so a BigInt in JS.
    I64,
    /// A string appended by [`Scalar::decode_str`] (text types, enum labels, numeric, uuid,
    /// dates and times as ISO 8601).
    Str,
    Bytes,
    /// JSON text, one complete value (json, jsonb).
    Json,
}

/// How one scalar value is decoded: picked once per column (or array element type) from its
/// type OID and format, so the per-value work is one indexed call with no OID switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    // Binary format.
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Uuid,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Bytea,
    Jsonb,
    /// json in either format, and jsonb in text: the JSON text itself.
    Json,
    /// UTF-8 text: text/varchar/bpchar/name and enum labels in binary, and the text form of
    /// any type in text format.
    Text,
    // Text format, for the types above when a result arrives in text.
    BoolText,
    IntText,
    Int8Text,
    FloatText,
    /// bytea's text form (`\x` + hex).
    ByteaText,
    // int8 as the consumer asked for it ([`Int8`]), binary and text.
    /// A double; a value beyond ±(2^53 - 1) is an error rather than a rounded number.
    Int8Number,
    Int8TextNumber,
    /// Its decimal text.
    Int8String,
    Int8TextString,
}

/// How int8 values are handed to the consumer: as 64-bit integers (the default), as
/// doubles that refuse what they cannot hold exactly, or as decimal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Int8 {
    #[default]
    BigInt,
    Number,
    String,
}

impl Int8 {
    pub fn parse(s: &str) -> Option<Int8> {
        match s {
            "bigint" => Some(Int8::BigInt),
            "number" => Some(Int8::Number),
            "string" => Some(Int8::String),
            _ => None,
        }
    }
}

/// The largest integer a double holds with all its neighbours (`Number.MAX_SAFE_INTEGER`).
const MAX_EXACT: i64 = (1 << 53) - 1;

fn exact(v: i64) -> Result<f64, DecodeError> {
    if (-MAX_EXACT..=MAX_EXACT).contains(&v) {
        Ok(v as f64)
    } else {
        Err(DecodeError {
            type_name: "int8",
            message: format!(
                "{v} does not fit a JS number exactly (types.int8: 'number'); use 'bigint' or 'string'"
            ),
        })
    }
}

/// How one result column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Scalar(Scalar),
    /// A binary array whose elements decode with `elem`; `elem_oid` is the element type the
    /// column declares (the array header must name it or, for a domain, its base).
    Array {
        elem: Scalar,
        elem_oid: u32,
    },
    /// A text-format array (element types without a binary decoder): elements are strings.
    TextArray {
        delim: u8,
    },
}

/// The binary decoder of a (non-domain) type, if there is one.
fn binary_scalar(type_oid: u32, types: &Types) -> Option<Scalar> {
    match builtin(type_oid) {
        Some(t) => Some(t.binary),
        None if types.kind(type_oid) == Some(Kind::Enum) => Some(Scalar::Text),
        None => None,
    }
}

fn text_scalar(type_oid: u32) -> Scalar {
    builtin(type_oid).map_or(Scalar::Text, |t| t.text)
}

/// The format a (non-domain, non-array) type is asked for in, if the codec decodes it in
/// binary: the table's choice for a built-in type, binary for enum labels.
fn preferred_format(type_oid: u32, types: &Types) -> Option<Format> {
    match builtin(type_oid) {
        Some(t) => Some(t.result_format),
        None => binary_scalar(type_oid, types).map(|_| Format::Binary),
    }
}

/// The format to request for a result column of `type_oid`: binary wherever the codec has
/// an exact binary decoder (every type of the type table, enums, domains over those, arrays
/// of those), text for everything else, which then arrives as the server's own text form.
pub fn column_format(type_oid: u32, types: &Types) -> Format {
    let base = types.base(type_oid);
    if let Some(f) = preferred_format(base, types) {
        return f;
    }
    match types.array_element(base) {
        Some((elem, _)) => preferred_format(types.base(elem), types).unwrap_or(Format::Text),
        None => Format::Text,
    }
}

/// [`column_format`] as a wire format code (0 text, 1 binary).
///
/// Deprecated: use [`column_format`]. Kept (without `#[deprecated]`, so that callers
/// building with `-D warnings` keep building) until `hyperion-pool` and the fuzz checks move.
pub fn result_format(type_oid: u32, types: &Types) -> i16 {
    column_format(type_oid, types).code()
}

impl Decoder {
    /// This decoder with int8 values (scalars and array elements) handed over as `mode`.
    pub fn with_int8(self, mode: Int8) -> Decoder {
        match self {
            Decoder::Scalar(s) => Decoder::Scalar(s.with_int8(mode)),
            Decoder::Array { elem, elem_oid } => Decoder::Array {
                elem: elem.with_int8(mode),
                elem_oid,
            },
            d => d,
        }
    }

    /// The decoder for a column of `type_oid` sent in `format`.
    pub fn for_column(type_oid: u32, format: Format, types: &Types) -> Decoder {
        let base = types.base(type_oid);
        match format {
            Format::Binary => {
                if let Some(s) = binary_scalar(base, types) {
                    return Decoder::Scalar(s);
                }
                if let Some((elem, _)) = types.array_element(base) {
                    if let Some(s) = binary_scalar(types.base(elem), types) {
                        return Decoder::Array {
                            elem: s,
                            elem_oid: elem,
                        };
                    }
                }
                // Binary is only requested for the types above (`column_format`); anything
                // else in binary is handed out as its bytes rather than misread.
                Decoder::Scalar(Scalar::Bytea)
            }
            Format::Text => match types.array_element(base) {
                Some((_, delim)) => Decoder::TextArray { delim },
                None => Decoder::Scalar(text_scalar(base)),
            },
        }
    }

    /// [`Decoder::for_column`] with the format as its wire code (1 binary, anything else
    /// text).
    ///
    /// Deprecated: use [`Decoder::for_column`] with [`Format::from_code`]. Kept (without
    /// `#[deprecated]`) until `hyperion-napi` (`rows.rs`) and the fuzz checks move.
    pub fn plan(type_oid: u32, format: i16, types: &Types) -> Decoder {
        Decoder::for_column(type_oid, Format::from_code(format), types)
    }
}

impl Scalar {
    /// This decoder with int8 handed over as `mode` says.
    pub fn with_int8(self, mode: Int8) -> Scalar {
        match (self, mode) {
            (Scalar::Int8, Int8::Number) => Scalar::Int8Number,
            (Scalar::Int8Text, Int8::Number) => Scalar::Int8TextNumber,
            (Scalar::Int8, Int8::String) => Scalar::Int8String,
            (Scalar::Int8Text, Int8::String) => Scalar::Int8TextString,
            (s, _) => s,
        }
    }

    pub fn output(self) -> Output {
        match self {
            Scalar::Bool | Scalar::BoolText => Output::Bool,
            Scalar::Int2 | Scalar::Int4 => Output::I32,
            Scalar::Oid | Scalar::Float4 | Scalar::Float8 | Scalar::IntText | Scalar::FloatText => {
                Output::F64
            }
            Scalar::Int8 | Scalar::Int8Text => Output::I64,
            Scalar::Int8Number | Scalar::Int8TextNumber => Output::F64,
            Scalar::Int8String | Scalar::Int8TextString => Output::Str,
            Scalar::Numeric
            | Scalar::Uuid
            | Scalar::Date
            | Scalar::Time
            | Scalar::Timestamp
            | Scalar::Timestamptz
            | Scalar::Text => Output::Str,
            Scalar::Bytea | Scalar::ByteaText => Output::Bytes,
            Scalar::Json | Scalar::Jsonb => Output::Json,
        }
    }

    pub fn decode_bool(self, raw: &[u8]) -> Result<bool, DecodeError> {
        match self {
            Scalar::BoolText => bool_text(raw),
            _ => bool_binary(raw),
        }
    }

    pub fn decode_i32(self, raw: &[u8]) -> Result<i32, DecodeError> {
        match self {
            Scalar::Int2 => int2(raw).map(i32::from),
            _ => int4(raw),
        }
    }

    pub fn decode_f64(self, raw: &[u8]) -> Result<f64, DecodeError> {
        match self {
            Scalar::Oid => oid(raw).map(f64::from),
            Scalar::Float4 => float4(raw).map(f64::from),
            Scalar::IntText => int_text(raw).map(|v| v as f64),
            Scalar::FloatText => float_text(raw),
            Scalar::Int8Number => exact(int8(raw)?),
            Scalar::Int8TextNumber => exact(int_text(raw)?),
            _ => float8(raw),
        }
    }

    pub fn decode_i64(self, raw: &[u8]) -> Result<i64, DecodeError> {
        match self {
            Scalar::Int8Text => int_text(raw),
            _ => int8(raw),
        }
    }

    /// Appends a string value to `out` (for [`Output::Str`]).
    pub fn decode_str(self, raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
        match self {
            Scalar::Numeric => crate::numeric::numeric_to_string(raw, out),
            Scalar::Uuid => uuid_into(raw, out),
            Scalar::Date => crate::datetime::date_to_iso(raw, out),
            Scalar::Time => crate::datetime::time_to_iso(raw, out),
            Scalar::Timestamp => crate::datetime::timestamp_to_iso(raw, out),
            Scalar::Timestamptz => crate::datetime::timestamptz_to_iso(raw, out),
            Scalar::Int8String => {
                use std::fmt::Write;
                let _ = write!(out, "{}", int8(raw)?);
                Ok(())
            }
            _ => {
                out.push_str(text(raw)?);
                Ok(())
            }
        }
    }

    /// A bytea value (for [`Output::Bytes`]): borrowed in binary, decoded from hex in text.
    pub fn decode_bytes(self, raw: &[u8]) -> Result<Cow<'_, [u8]>, DecodeError> {
        match self {
            Scalar::ByteaText => bytea_hex(raw).map(Cow::Owned),
            _ => Ok(Cow::Borrowed(raw)),
        }
    }

    /// The JSON text of a json/jsonb value (for [`Output::Json`]), checked to be UTF-8 and
    /// one complete value, so that values can be joined into one JSON array and parsed at
    /// once without one value spilling into the next.
    pub fn decode_json(self, raw: &[u8]) -> Result<&str, DecodeError> {
        let s = self.json_body(raw)?;
        if !json_single_value(s.as_bytes()) {
            return bad("json", "not one complete JSON value");
        }
        Ok(s)
    }

    /// The JSON text of a json/jsonb value, checked to be UTF-8 only (for a reader that
    /// checks the rest itself, such as [`crate::json::Cursor`]).
    pub fn json_body(self, raw: &[u8]) -> Result<&str, DecodeError> {
        let body = match self {
            Scalar::Jsonb => match raw.split_first() {
                Some((1, rest)) => rest,
                Some((v, _)) => return bad("jsonb", format!("unknown jsonb version {v}")),
                None => return bad("jsonb", "empty value"),
            },
            _ => raw,
        };
        std::str::from_utf8(body).or_else(|_| bad("json", "invalid UTF-8"))
    }
}

/// A structural check (not a full parse): brackets balance in number, strings close, and no
/// comma or extra closing bracket appears at the top level. Enough to join values safely; the JSON parser
/// that reads the joined text checks the rest.
pub fn json_single_value(s: &[u8]) -> bool {
    let mut depth: u32 = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut any = false;
    for &b in s {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                any = true;
            }
            b'[' | b'{' => {
                depth += 1;
                any = true;
            }
            b']' | b'}' => {
                // A mismatched pair (`[}`) cannot spill into the next value; the parser
                // rejects it.
                let Some(d) = depth.checked_sub(1) else {
                    return false;
                };
                depth = d;
            }
            b',' if depth == 0 => return false,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => any = true,
        }
    }
    any && depth == 0 && !in_string
}

/// bytea's hex text form (`\x0a1b...`).
pub fn bytea_hex(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let Some(hex) = raw.strip_prefix(b"\\x") else {
        return bad("bytea", "expected hex format (\\x...)");
    };
    if hex.len() % 2 != 0 {
        return bad("bytea", "odd number of hex digits");
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|p| match (nibble(p[0]), nibble(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => bad("bytea", "invalid hex digit"),
        })
        .collect()
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

/// Appends a binary uuid as the canonical lowercase string.
pub fn uuid_into(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let b: [u8; 16] = fixed(raw, "uuid")?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    // Where each byte's two digits go: the dashes sit at 8, 13, 18 and 23.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    for (&at, &byte) in AT.iter().zip(b.iter()) {
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
    }
    // Hex digits and dashes: always ASCII.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oid;
    use proptest::prelude::*;

    fn uuid(raw: &[u8]) -> Result<String, DecodeError> {
        let mut s = String::new();
        uuid_into(raw, &mut s).map(|()| s)
    }

    #[test]
    fn plans() {
        let t = Types::new();
        assert_eq!(
            Decoder::for_column(oid::INT8, Format::Binary, &t),
            Decoder::Scalar(Scalar::Int8)
        );
        assert_eq!(
            Decoder::for_column(oid::INT8, Format::Text, &t),
            Decoder::Scalar(Scalar::Int8Text)
        );
        assert_eq!(
            Decoder::for_column(oid::VARCHAR, Format::Text, &t),
            Decoder::Scalar(Scalar::Text)
        );
        assert_eq!(
            Decoder::for_column(99999, Format::Text, &t),
            Decoder::Scalar(Scalar::Text)
        );
        assert_eq!(
            Decoder::for_column(oid::INT4_ARRAY, Format::Binary, &t),
            Decoder::Array {
                elem: Scalar::Int4,
                elem_oid: oid::INT4
            }
        );
        assert_eq!(column_format(oid::NUMERIC, &t), Format::Binary);
        assert_eq!(column_format(99999, &t), Format::Text);
    }

    #[test]
    fn code_wrappers_agree() {
        let t = learnt();
        let oids = crate::builtin::BUILTINS
            .iter()
            .flat_map(|b| [b.oid, b.array_oid])
            .chain([oid::CHAR, oid::UNKNOWN, 0, 99999])
            .chain(90001..=90007);
        for o in oids {
            assert_eq!(result_format(o, &t), column_format(o, &t).code(), "{o}");
            for code in [-1, 0, 1, 2] {
                assert_eq!(
                    Decoder::plan(o, code, &t),
                    Decoder::for_column(o, Format::from_code(code), &t),
                    "{o} {code}"
                );
            }
        }
    }

    fn learnt() -> Types {
        // 90001 enum, 90002 its array, 90003 a domain over int4, 90004 array of the domain,
        // 90005 a base type outside the table, 90006 its array with ';' as delimiter.
        let rows = [
            ["90001", "e", "0", "0", ","],
            ["90002", "b", "0", "90001", ","],
            ["90003", "d", "23", "0", ","],
            ["90004", "b", "0", "90003", ","],
            ["90005", "b", "0", "0", ";"],
            ["90006", "b", "0", "90005", ","],
        ];
        Types::new().learn(
            &[90001, 90002, 90003, 90004, 90005, 90006, 90007],
            rows.iter().map(|r| r.map(Some)),
        )
    }

    #[test]
    fn learnt_types_plan() {
        let t = learnt();
        assert_eq!(
            Decoder::for_column(90001, Format::Binary, &t),
            Decoder::Scalar(Scalar::Text)
        );
        assert_eq!(
            Decoder::for_column(90002, Format::Binary, &t),
            Decoder::Array {
                elem: Scalar::Text,
                elem_oid: 90001
            }
        );
        assert_eq!(
            Decoder::for_column(90003, Format::Binary, &t),
            Decoder::Scalar(Scalar::Int4)
        );
        assert_eq!(
            Decoder::for_column(90004, Format::Binary, &t),
            Decoder::Array {
                elem: Scalar::Int4,
                elem_oid: 90003
            }
        );
        assert_eq!(column_format(90005, &t), Format::Text);
        assert_eq!(column_format(90006, &t), Format::Text);
        assert_eq!(
            Decoder::for_column(90006, Format::Text, &t),
            Decoder::TextArray { delim: b';' }
        );
        // Asked for, not in the catalog (dropped): text, and not asked again.
        assert_eq!(
            Decoder::for_column(90007, Format::Text, &t),
            Decoder::Scalar(Scalar::Text)
        );
        assert!(t.missing([90001, 90004, 90007, 16]).is_empty());
        assert_eq!(t.missing([90008]), vec![90008]);
    }

    #[test]
    fn json_values_stay_single() {
        for ok in [
            &b"1"[..],
            b"\"a,b\"",
            b"{\"a\":[1,2]}",
            b" [ ] ",
            b"\"\\\"],\"",
            b"[}",
        ] {
            assert!(json_single_value(ok), "{ok:?}");
        }
        for bad in [&b""[..], b"1,2", b"[1", b"1]", b"\"a", b"  "] {
            assert!(!json_single_value(bad), "{bad:?}");
        }
        assert_eq!(Scalar::Jsonb.decode_json(b"\x01{}"), Ok("{}"));
        assert!(Scalar::Jsonb.decode_json(b"\x02{}").is_err());
        assert!(Scalar::Json.decode_json(b"1],[2").is_err());
    }

    #[test]
    fn bytea_text() {
        assert_eq!(bytea_hex(b"\\x00ff10"), Ok(vec![0, 255, 16]));
        assert!(bytea_hex(b"\\x0").is_err());
        assert!(bytea_hex(b"abc").is_err());
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
        fn uuid_is_its_bytes_in_hex(b: [u8; 16]) {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let want = format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
            prop_assert_eq!(uuid(&b).unwrap(), want);
            let mut after = String::from("id ");
            uuid_into(&b, &mut after).unwrap();
            prop_assert_eq!(after, format!("id {}", uuid(&b).unwrap()));
        }

        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = (bool_binary(&bytes), bool_text(&bytes), int2(&bytes), int4(&bytes), int8(&bytes));
            let _ = (oid(&bytes), float4(&bytes), float8(&bytes), int_text(&bytes), float_text(&bytes));
            let _ = (text(&bytes), uuid(&bytes));
        }
    }
}
