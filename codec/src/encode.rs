//! Encoding parameters (client to server) for the types the server declared.
//!
//! Binary where the value's JS kind and the target type match exactly (numbers to integers
//! and floats, booleans to bool, Buffers to bytea); otherwise the text format, which lets the
//! server parse the value with its own input function (a string for a uuid, a number for a
//! numeric). A value that cannot be represented in its target is an error here, before
//! anything is sent.

use crate::builtin::{builtin, Format};
use crate::decode::Output;
use crate::oid;
use crate::types::Types;
use bytes::{BufMut, BytesMut};
use std::fmt;
use std::fmt::Write as _;

/// A parameter value as it comes from JavaScript.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    /// A JS number.
    Number(f64),
    /// A JS BigInt (128 bits cover every integer type PostgreSQL has, and then some).
    BigInt(i128),
    Text(String),
    /// A Buffer: bytea.
    Bytes(Vec<u8>),
    /// A Date, as milliseconds since the Unix epoch.
    Date(f64),
    /// Already-serialized JSON (plain objects).
    Json(String),
    /// A JS array: a PostgreSQL array when the target is an array type (nested arrays are
    /// dimensions), otherwise JSON.
    Array(Vec<Param>),
}

/// A parameter that cannot be encoded for its target type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, EncodeError> {
    Err(EncodeError(msg.into()))
}

/// A short name for a type OID, for error messages: its `typname` for a type of the table.
pub fn type_name(type_oid: u32) -> String {
    match builtin(type_oid) {
        Some(t) => t.name.into(),
        None => format!("type {type_oid}"),
    }
}

/// The format `param` is sent in to a parameter of `type_oid` (a domain binds as its base
/// type): binary when the value's JS kind is exactly the type's (see
/// [`crate::builtin::BuiltinType::js`]), text otherwise, for the server to parse.
pub fn bind_format(param: &Param, type_oid: u32, types: &Types) -> Format {
    let Some(target) = builtin(types.base(type_oid)) else {
        return Format::Text;
    };
    let exact = match param {
        Param::Bool(_) => target.js == Output::Bool,
        Param::Number(_) | Param::BigInt(_) => {
            matches!(target.js, Output::I32 | Output::I64 | Output::F64)
        }
        Param::Bytes(_) => target.js == Output::Bytes,
        // The server reads 8 bytes instead of parsing an ISO string (timestamptz_in was
        // about 7% of its CPU per row of an insert with one Date); the text form stays for
        // every other target (date, text, json, ...).
        Param::Date(_) => matches!(target.oid, oid::TIMESTAMPTZ | oid::TIMESTAMP),
        _ => false,
    };
    if exact {
        Format::Binary
    } else {
        Format::Text
    }
}

/// Whether `param` is sent in binary (see [`bind_format`]).
///
/// Deprecated: use [`bind_format`]. Kept (without `#[deprecated]`, so that callers building
/// with `-D warnings` keep building) until `hyperion-napi` (`params.rs`) and the fuzz checks
/// move.
pub fn param_format(param: &Param, type_oid: u32, types: &Types) -> bool {
    bind_format(param, type_oid, types) == Format::Binary
}

/// Whether the float `f` is exactly the integer `v`. (A float cast to i128 saturates, so
/// i128::MAX, which no float holds, must not count as a match.)
fn exact_float(f: f64, v: i128) -> bool {
    let back = f as i128;
    f.is_finite() && back == v && back != i128::MAX
}

/// Integer bounds of the integer types.
fn int_range(type_oid: u32) -> Option<(i128, i128)> {
    match type_oid {
        oid::INT2 => Some((i16::MIN.into(), i16::MAX.into())),
        oid::INT4 => Some((i32::MIN.into(), i32::MAX.into())),
        oid::INT8 => Some((i64::MIN.into(), i64::MAX.into())),
        oid::OID => Some((0, u32::MAX.into())),
        _ => None,
    }
}

fn put_int(v: i128, type_oid: u32, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let Some((lo, hi)) = int_range(type_oid) else {
        return err(format!(
            "internal: {} is not an integer type",
            type_name(type_oid)
        ));
    };
    if v < lo || v > hi {
        return err(format!(
            "{v} is out of range for {} ({lo}..={hi})",
            type_name(type_oid)
        ));
    }
    // In range, so the narrowing casts below are exact.
    match type_oid {
        oid::INT2 => buf.put_i16(v as i16),
        oid::INT4 => buf.put_i32(v as i32),
        oid::OID => buf.put_u32(v as u32),
        _ => buf.put_i64(v as i64),
    }
    Ok(())
}

/// Formats a JS number the way PostgreSQL's numeric/float input accepts and without losing
/// digits: the shortest representation that round-trips.
fn number_text(v: f64, buf: &mut BytesMut) {
    if v.is_nan() {
        buf.put_slice(b"NaN");
    } else if v.is_infinite() {
        buf.put_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        let mut s = String::new();
        let _ = write!(s, "{v}");
        buf.put_slice(s.as_bytes());
    }
}

/// Whether an encoded parameter is NULL (then nothing was appended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsNull {
    Yes,
    No,
}

/// [`encode_value`], returning `Ok(true)` for NULL.
///
/// Deprecated: use [`encode_value`]. Kept (without `#[deprecated]`) until `hyperion-napi`
/// (`params.rs`) and the fuzz checks move.
pub fn encode_param(
    param: &Param,
    type_oid: u32,
    types: &Types,
    buf: &mut BytesMut,
) -> Result<bool, EncodeError> {
    encode_value(param, type_oid, types, buf).map(|n| n == IsNull::Yes)
}

/// Encodes `param` for a parameter the server declared as `type_oid`, appending its bytes in
/// the format [`bind_format`] chose. A domain binds as its base type; a JS array binds as a
/// PostgreSQL array literal when the target is an array type and as JSON otherwise.
pub fn encode_value(
    param: &Param,
    type_oid: u32,
    types: &Types,
    buf: &mut BytesMut,
) -> Result<IsNull, EncodeError> {
    let type_oid = types.base(type_oid);
    match param {
        Param::Null => return Ok(IsNull::Yes),
        Param::Bool(b) => {
            if type_oid == oid::BOOL {
                buf.put_u8(u8::from(*b));
            } else if is_numeric_type(type_oid) {
                return err(format!("a boolean cannot bind to {}", type_name(type_oid)));
            } else {
                buf.put_slice(if *b { b"true" } else { b"false" });
            }
        }
        Param::Number(v) => {
            let v = *v;
            match type_oid {
                oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => {
                    if !v.is_finite() || v.fract() != 0.0 {
                        return err(format!(
                            "{v} is not an integer and cannot bind to {} without truncation",
                            type_name(type_oid)
                        ));
                    }
                    // |v| < 2^127 is guaranteed for anything in an integer type's range;
                    // larger finite values saturate here and then fail the range check.
                    put_int(v as i128, type_oid, buf)?;
                }
                oid::FLOAT4 => {
                    // Rounding to float4 precision is what float4 means (the server rounds
                    // '0.1' the same way); overflowing to Infinity or underflowing to 0 is
                    // not (the server refuses both as out of range).
                    let f = v as f32;
                    if (v.is_finite() && f.is_infinite()) || (v != 0.0 && f == 0.0) {
                        return err(format!("{v} is out of range for float4"));
                    }
                    buf.put_f32(v as f32)
                }
                oid::FLOAT8 => buf.put_f64(v),
                oid::BOOL => return err("a number cannot bind to bool"),
                oid::BYTEA => return err("a number cannot bind to bytea"),
                _ => number_text(v, buf),
            }
        }
        Param::BigInt(v) => match type_oid {
            oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => put_int(*v, type_oid, buf)?,
            oid::FLOAT4 | oid::FLOAT8 => {
                // Exact or refused: a BigInt is an integer the caller wants kept.
                let exact = if type_oid == oid::FLOAT4 {
                    let f = *v as f32;
                    exact_float(f as f64, *v).then(|| buf.put_f32(f))
                } else {
                    let f = *v as f64;
                    exact_float(f, *v).then(|| buf.put_f64(f))
                };
                if exact.is_none() {
                    return err(format!(
                        "{v} cannot bind to {} without losing precision",
                        type_name(type_oid)
                    ));
                }
            }
            oid::BOOL => return err("a BigInt cannot bind to bool"),
            oid::BYTEA => return err("a BigInt cannot bind to bytea"),
            // The same rule as inside an object or array: JSON has no BigInt.
            oid::JSON | oid::JSONB => return err(BIGINT_JSON),
            _ => {
                let mut s = String::new();
                let _ = write!(s, "{v}");
                buf.put_slice(s.as_bytes());
            }
        },
        Param::Text(s) => buf.put_slice(s.as_bytes()),
        Param::Bytes(b) => {
            if type_oid != oid::BYTEA {
                return err(format!(
                    "a Buffer binds to bytea, not to {}",
                    type_name(type_oid)
                ));
            }
            buf.put_slice(b);
        }
        Param::Date(ms) if matches!(type_oid, oid::TIMESTAMPTZ | oid::TIMESTAMP) => {
            buf.put_i64(timestamp_micros(*ms)?);
        }
        Param::Date(ms) => date_text(*ms, type_oid, buf)?,
        Param::Json(s) => {
            if is_numeric_type(type_oid) || type_oid == oid::BOOL || type_oid == oid::BYTEA {
                return err(format!("an object cannot bind to {}", type_name(type_oid)));
            }
            buf.put_slice(s.as_bytes());
        }
        Param::Array(items) => {
            let mut out = String::new();
            if let Some((elem, delim)) = types.array_element(type_oid) {
                array_literal(items, types.base(elem), delim, &mut out, 0)?;
            } else if is_numeric_type(type_oid) || type_oid == oid::BOOL || type_oid == oid::BYTEA {
                return err(format!("an array cannot bind to {}", type_name(type_oid)));
            } else {
                json_array(items, &mut out, 0)?;
            }
            buf.put_slice(out.as_bytes());
        }
    }
    Ok(IsNull::No)
}

/// PostgreSQL allows 6 dimensions; JSON nesting gets the same bound so that a deeply nested
/// JS value cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// A JS array as an array literal (`{"a","b",NULL}`, nested for more dimensions): every
/// element quoted, each in the text form its element type reads. Integer elements are checked
/// like integer parameters (no fraction, in range).
fn array_literal(
    items: &[Param],
    elem: u32,
    delim: u8,
    out: &mut String,
    depth: usize,
) -> Result<(), EncodeError> {
    if depth >= 6 {
        return err("an array parameter has more than 6 dimensions");
    }
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(char::from(delim));
        }
        match item {
            Param::Null => out.push_str("NULL"),
            // For json/jsonb elements a nested JS array is a JSON value, not a dimension.
            Param::Array(inner) if matches!(elem, oid::JSON | oid::JSONB) => {
                let mut text = String::new();
                json_array(inner, &mut text, 0)?;
                crate::array::write_text_element(&text, out);
            }
            Param::Array(inner) => array_literal(inner, elem, delim, out, depth + 1)?,
            other => {
                let text = element_text(other, elem)?;
                crate::array::write_text_element(&text, out);
            }
        }
    }
    out.push('}');
    Ok(())
}

/// The text form of one array element for an element type of `elem`.
fn element_text(p: &Param, elem: u32) -> Result<String, EncodeError> {
    let mut b = BytesMut::new();
    Ok(match p {
        Param::Bool(v) if elem == oid::BOOL => (if *v { "t" } else { "f" }).to_string(),
        Param::Number(v)
            if int_range(elem).is_some() || matches!(elem, oid::FLOAT4 | oid::FLOAT8) =>
        {
            // Checked as a binary parameter would be, then written in decimal.
            encode_value(p, elem, &Types::new(), &mut b)?;
            if int_range(elem).is_some() {
                format!("{}", *v as i128)
            } else {
                let mut t = BytesMut::new();
                number_text(*v, &mut t);
                String::from_utf8_lossy(&t).into_owned()
            }
        }
        Param::BigInt(v)
            if int_range(elem).is_some() || matches!(elem, oid::FLOAT4 | oid::FLOAT8) =>
        {
            // Checked as a binary parameter would be, then written in decimal.
            encode_value(p, elem, &Types::new(), &mut b)?;
            v.to_string()
        }
        Param::Bytes(bytes) => {
            if elem != oid::BYTEA {
                return err(format!(
                    "a Buffer binds to bytea, not to {}",
                    type_name(elem)
                ));
            }
            let mut s = String::with_capacity(2 + bytes.len() * 2);
            s.push_str("\\x");
            for byte in bytes {
                let _ = write!(s, "{byte:02x}");
            }
            s
        }
        Param::Array(_) | Param::Null => {
            return err("internal: nested arrays are written by array_literal");
        }
        // An array literal is text: a Date in it is always its ISO text (a Date parameter
        // of its own goes in binary to timestamptz and timestamp).
        Param::Date(ms) => {
            date_text(*ms, elem, &mut b)?;
            String::from_utf8_lossy(&b).into_owned()
        }
        other => {
            encode_value(other, elem, &Types::new(), &mut b)?;
            String::from_utf8(b.to_vec())
                .or_else(|_| err(format!("a value cannot bind to {}[]", type_name(elem))))?
        }
    })
}

/// A JS array bound to a non-array type, as `JSON.stringify` would write it (a BigInt is
/// refused, as `JSON.stringify` refuses it, rather than rounded).
fn json_array(items: &[Param], out: &mut String, depth: usize) -> Result<(), EncodeError> {
    if depth >= MAX_DEPTH {
        return err("an array parameter is nested too deeply");
    }
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_value(item, out, depth)?;
    }
    out.push(']');
    Ok(())
}

const BIGINT_JSON: &str = "a BigInt cannot be written as JSON (convert it to a string or a number)";

fn json_value(p: &Param, out: &mut String, depth: usize) -> Result<(), EncodeError> {
    match p {
        Param::Null => out.push_str("null"),
        Param::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Param::Number(v) if v.is_finite() => {
            let _ = write!(out, "{v}");
        }
        Param::Number(_) => out.push_str("null"),
        Param::BigInt(_) => return err(BIGINT_JSON),
        Param::Text(s) => json_string(s, out),
        Param::Bytes(b) => {
            out.push_str("{\"type\":\"Buffer\",\"data\":[");
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{byte}");
            }
            out.push_str("]}");
        }
        // As `JSON.stringify` writes a Date: its `toISOString()`, or null when invalid.
        Param::Date(ms) => match js_iso(*ms) {
            Some(iso) => {
                out.push('"');
                out.push_str(&iso);
                out.push('"');
            }
            None => out.push_str("null"),
        },
        Param::Json(s) => out.push_str(s),
        Param::Array(items) => json_array(items, out, depth + 1)?,
    }
    Ok(())
}

/// Appends `s` as a JSON string literal (quotes, escapes, control characters as `\u00XX`).
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn is_numeric_type(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC
    )
}

/// A Date as its ISO text for `type_oid` (anything but a number, bool or bytea).
fn date_text(ms: f64, type_oid: u32, buf: &mut BytesMut) -> Result<(), EncodeError> {
    if is_numeric_type(type_oid) || type_oid == oid::BOOL || type_oid == oid::BYTEA {
        return err(format!("a Date cannot bind to {}", type_name(type_oid)));
    }
    match type_oid {
        // A JSON value: the quoted string `JSON.stringify` makes of a Date.
        oid::JSON | oid::JSONB => {
            let Some(iso) = js_iso(ms) else {
                return err("an invalid Date cannot be bound");
            };
            buf.put_u8(b'"');
            buf.put_slice(iso.as_bytes());
            buf.put_u8(b'"');
            Ok(())
        }
        // A string: `toISOString()`'s, whatever the year.
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => match js_iso(ms) {
            Some(iso) => {
                buf.put_slice(iso.as_bytes());
                Ok(())
            }
            None => err("an invalid Date cannot be bound"),
        },
        // A date or time type: the form PostgreSQL reads (its BC years).
        _ => iso_timestamp(ms, buf),
    }
}

/// `Date#toISOString()`: years 0000–9999 with four digits, others signed with six
/// (astronomical numbering: 1 BC is 0000); `None` for an invalid Date.
fn js_iso(ms: f64) -> Option<String> {
    if !ms.is_finite() {
        return None;
    }
    let ms = ms as i64;
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    let rem = ms.rem_euclid(86_400_000);
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
    Some(if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}T{time}")
    } else {
        let sign = if y < 0 { '-' } else { '+' };
        format!("{sign}{:06}-{m:02}-{d:02}T{time}", y.abs())
    })
}

/// Milliseconds since the Unix epoch as PostgreSQL's binary timestamp: microseconds since
/// 2000-01-01 00:00 UTC (for `timestamp`, that instant's UTC wall-clock time, which is what
/// the ISO text with its `Z` gave too). The milliseconds are taken as the text form takes
/// them (truncated). Every JS Date fits; a value beyond (not a Date's) saturates short of
/// i64::MIN and i64::MAX, which PostgreSQL reads as -infinity and infinity: it is refused as
/// out of range (22008), as its text would be.
fn timestamp_micros(ms: f64) -> Result<i64, EncodeError> {
    const PG_EPOCH_MS: i64 = 946_684_800_000;
    if !ms.is_finite() {
        return err("an invalid Date cannot be bound");
    }
    let micros = (ms as i64).saturating_sub(PG_EPOCH_MS).saturating_mul(1000);
    Ok(micros.clamp(i64::MIN + 1, i64::MAX - 1))
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (what `Date#toISOString`
/// gives), which PostgreSQL parses for timestamptz, timestamp and date.
fn iso_timestamp(ms: f64, buf: &mut BytesMut) -> Result<(), EncodeError> {
    if !ms.is_finite() {
        return err("an invalid Date cannot be bound");
    }
    let ms = ms as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut out = String::with_capacity(32);
    if y < 0 {
        // PostgreSQL writes BC years as "YYYY-MM-DD ... BC" with year 1 BC = astronomical 0.
        let _ = write!(
            out,
            "{:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z BC",
            1 - y
        );
    } else if y == 0 {
        let _ = write!(
            out,
            "0001-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z BC"
        );
    } else {
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
        );
    }
    buf.put_slice(out.as_bytes());
    Ok(())
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(p: Param, oid: u32) -> Result<Vec<u8>, EncodeError> {
        let mut b = BytesMut::new();
        encode_value(&p, oid, &Types::new(), &mut b).map(|_| b.to_vec())
    }

    fn text(p: Param, oid: u32) -> String {
        String::from_utf8(enc(p, oid).unwrap()).unwrap()
    }

    #[test]
    fn arrays_to_array_types() {
        use Param::*;
        assert_eq!(
            text(
                Array(vec![Number(1.0), Null, Number(-3.0)]),
                oid::INT4_ARRAY
            ),
            r#"{"1",NULL,"-3"}"#
        );
        assert_eq!(
            text(
                Array(vec![
                    Array(vec![Text("a\"b".into())]),
                    Array(vec![Text("NULL".into())])
                ]),
                oid::TEXT_ARRAY
            ),
            r#"{{"a\"b"},{"NULL"}}"#
        );
        assert_eq!(text(Array(vec![]), oid::INT8_ARRAY), "{}");
        assert_eq!(
            text(Array(vec![Bytes(vec![0, 255])]), oid::BYTEA_ARRAY),
            r#"{"\\x00ff"}"#
        );
        assert_eq!(
            text(Array(vec![Bool(true), Bool(false)]), oid::BOOL_ARRAY),
            r#"{"t","f"}"#
        );
        assert_eq!(
            text(Array(vec![BigInt(i64::MIN.into())]), oid::INT8_ARRAY),
            r#"{"-9223372036854775808"}"#
        );
        // Elements are checked like scalars.
        assert!(enc(Array(vec![Number(1.5)]), oid::INT4_ARRAY).is_err());
        assert!(enc(Array(vec![Number(40000.0)]), oid::INT2_ARRAY).is_err());
        assert!(enc(Array(vec![BigInt(1 << 40)]), oid::INT4_ARRAY).is_err());
        assert!(enc(Array(vec![Text("x".into())]), oid::INT4).is_err());
        assert!(enc(Array(vec![Bytes(vec![1])]), oid::TEXT_ARRAY).is_err());
        let deep = (0..7).fold(Number(1.0), |p, _| Array(vec![p]));
        assert!(enc(deep, oid::INT4_ARRAY).is_err());
    }

    #[test]
    fn floats_refuse_overflow_and_inexact_bigints() {
        use Param::*;
        assert!(enc(Number(1e39), oid::FLOAT4).is_err());
        assert!(enc(Number(1e-50), oid::FLOAT4).is_err());
        assert_eq!(
            enc(Number(f64::INFINITY), oid::FLOAT4),
            Ok(f32::INFINITY.to_be_bytes().to_vec())
        );
        assert_eq!(
            enc(Number(0.1), oid::FLOAT4),
            Ok(0.1f32.to_be_bytes().to_vec())
        );
        // 2^24 + 1 is exact in float8, not in float4.
        assert!(enc(BigInt((1 << 24) + 1), oid::FLOAT4).is_err());
        assert!(enc(BigInt((1 << 24) + 1), oid::FLOAT8).is_ok());
        assert!(enc(BigInt((1 << 53) + 1), oid::FLOAT8).is_err());
        assert!(enc(BigInt(i128::MAX), oid::FLOAT4).is_err());
        assert!(enc(BigInt(i128::MAX), oid::FLOAT8).is_err());
        assert!(enc(BigInt(i128::MIN), oid::FLOAT8).is_ok());
        assert_eq!(text(Array(vec![BigInt(7)]), oid::FLOAT8_ARRAY), r#"{"7"}"#);
        assert!(enc(Array(vec![BigInt((1 << 53) + 1)]), oid::FLOAT8_ARRAY).is_err());
        assert!(enc(Array(vec![Number(1e39)]), oid::FLOAT4_ARRAY).is_err());
    }

    #[test]
    fn nested_arrays_in_json_arrays_are_values() {
        use Param::*;
        assert_eq!(
            text(
                Array(vec![Json("{}".into()), Array(vec![Number(1.0)])]),
                oid::JSONB_ARRAY
            ),
            r#"{"{}","[1]"}"#
        );
    }

    #[test]
    fn arrays_to_other_types_are_json() {
        use Param::*;
        assert_eq!(
            text(
                Array(vec![
                    Number(1.5),
                    Null,
                    Text("q\"\n\u{1}".into()),
                    Bool(true),
                    Number(f64::NAN),
                    Json("{\"a\":1}".into()),
                    Array(vec![])
                ]),
                oid::JSONB
            ),
            r#"[1.5,null,"q\"\n\u0001",true,null,{"a":1},[]]"#
        );
        assert!(enc(Array(vec![BigInt(1)]), oid::JSONB).is_err());
        // Alone too: the same rule whether the BigInt is the value or inside it.
        assert!(enc(BigInt(1), oid::JSONB).is_err());
        assert!(enc(BigInt(1), oid::JSON).is_err());
        assert!(enc(BigInt(1), oid::TEXT).is_ok());
        assert_eq!(
            text(Array(vec![Date(0.0), Bytes(vec![1, 2])]), oid::JSON),
            r#"["1970-01-01T00:00:00.000Z",{"type":"Buffer","data":[1,2]}]"#
        );
    }

    #[test]
    fn integers_check_range_and_fraction() {
        assert_eq!(enc(Param::Number(7.0), oid::INT4), Ok(vec![0, 0, 0, 7]));
        assert_eq!(enc(Param::Number(-1.0), oid::INT2), Ok(vec![0xff, 0xff]));
        assert!(enc(Param::Number(1.5), oid::INT4).is_err());
        assert!(enc(Param::Number(2147483648.0), oid::INT4).is_err());
        assert!(enc(Param::Number(f64::NAN), oid::INT8).is_err());
        assert!(enc(Param::Number(1e300), oid::INT8).is_err());
        assert!(enc(Param::Number(32768.0), oid::INT2).is_err());
        assert!(enc(Param::Number(-1.0), oid::OID).is_err());
        assert_eq!(
            enc(Param::BigInt(i64::MAX.into()), oid::INT8),
            Ok(i64::MAX.to_be_bytes().to_vec())
        );
        assert!(enc(Param::BigInt(i128::from(i64::MAX) + 1), oid::INT8).is_err());
        assert!(enc(Param::BigInt(1 << 40), oid::INT4).is_err());
    }

    #[test]
    fn text_fallbacks() {
        assert_eq!(enc(Param::Number(1.5), oid::NUMERIC), Ok(b"1.5".to_vec()));
        assert_eq!(
            enc(Param::BigInt(-12345678901234567890), oid::NUMERIC),
            Ok(b"-12345678901234567890".to_vec())
        );
        assert_eq!(enc(Param::Number(42.0), oid::TEXT), Ok(b"42".to_vec()));
        assert_eq!(enc(Param::Bool(true), oid::TEXT), Ok(b"true".to_vec()));
        assert_eq!(enc(Param::Text("x".into()), oid::UUID), Ok(b"x".to_vec()));
        assert!(enc(Param::Bytes(vec![1]), oid::TEXT).is_err());
        assert!(enc(Param::Bool(true), oid::INT4).is_err());
    }

    #[test]
    fn null_is_null() {
        let mut b = BytesMut::new();
        assert_eq!(
            encode_param(&Param::Null, oid::INT4, &Types::new(), &mut b),
            Ok(true)
        );
        assert_eq!(
            encode_value(&Param::Null, oid::INT4, &Types::new(), &mut b),
            Ok(IsNull::Yes)
        );
        assert_eq!(
            encode_value(&Param::Number(1.0), oid::INT4, &Types::new(), &mut b),
            Ok(IsNull::No)
        );
        assert_eq!(b.to_vec(), vec![0, 0, 0, 1]);
    }

    /// The binding formats derived from the table's JS kinds are exactly the hand-written
    /// rule they replace: numbers to int2/int4/int8/oid/float4/float8, booleans to bool,
    /// Buffers to bytea, in binary; everything else in text.
    #[test]
    fn bind_formats_match_the_rule() {
        let params = [
            Param::Null,
            Param::Bool(true),
            Param::Number(1.0),
            Param::BigInt(1),
            Param::Text("1".into()),
            Param::Bytes(vec![1]),
            Param::Date(0.0),
            Param::Json("{}".into()),
            Param::Array(vec![]),
        ];
        let oids = crate::builtin::BUILTINS
            .iter()
            .flat_map(|b| [b.oid, b.array_oid])
            .chain([oid::CHAR, oid::UNKNOWN, 0, 99999]);
        for o in oids {
            for p in &params {
                let binary = match p {
                    Param::Bool(_) => o == oid::BOOL,
                    Param::Number(_) | Param::BigInt(_) => matches!(
                        o,
                        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::FLOAT4 | oid::FLOAT8
                    ),
                    Param::Bytes(_) => o == oid::BYTEA,
                    Param::Date(_) => matches!(o, oid::TIMESTAMPTZ | oid::TIMESTAMP),
                    _ => false,
                };
                let want = if binary { Format::Binary } else { Format::Text };
                assert_eq!(bind_format(p, o, &Types::new()), want, "{p:?} to {o}");
                assert_eq!(param_format(p, o, &Types::new()), binary, "{p:?} to {o}");
            }
        }
    }

    #[test]
    fn type_names_are_typnames() {
        assert_eq!(type_name(oid::TIMESTAMPTZ), "timestamptz");
        assert_eq!(type_name(oid::BPCHAR), "bpchar");
        assert_eq!(type_name(oid::INT4_ARRAY), "type 1007");
        assert_eq!(type_name(oid::CHAR), "type 18");
    }

    #[test]
    fn dates() {
        // To timestamptz and timestamp in binary: microseconds since 2000-01-01 UTC.
        for o in [oid::TIMESTAMPTZ, oid::TIMESTAMP] {
            let micros = |ms: f64| enc(Param::Date(ms), o).map(|b| crate::decode::int8(&b));
            assert_eq!(micros(946_684_800_000.0), Ok(Ok(0)));
            assert_eq!(micros(0.0), Ok(Ok(-946_684_800_000_000)));
            assert_eq!(micros(1_700_000_000_123.0), Ok(Ok(753_315_200_123_000)));
            // The oldest and latest Dates JS has.
            assert_eq!(micros(-8.64e15), Ok(Ok(-8_640_946_684_800_000_000)));
            assert_eq!(micros(8.64e15), Ok(Ok(8_639_053_315_200_000_000)));
            // As the text form: a fraction truncated, and nothing is ever +-infinity.
            assert_eq!(micros(946_684_800_000.9), Ok(Ok(0)));
            assert_eq!(micros(1e300), Ok(Ok(i64::MAX - 1)));
            assert_eq!(micros(-1e300), Ok(Ok(i64::MIN + 1)));
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                assert!(enc(Param::Date(bad), o).is_err(), "{bad}");
            }
        }
        // Inside an array literal, in text (the literal is text).
        assert_eq!(
            enc(Param::Array(vec![Param::Date(0.0)]), oid::TIMESTAMPTZ_ARRAY),
            Ok(b"{\"1970-01-01T00:00:00.000Z\"}".to_vec())
        );
        // Anything else (date, text, an unknown type) in text, as Date#toISOString.
        for o in [oid::DATE, oid::TEXT, 0] {
            assert_eq!(
                enc(Param::Date(0.0), o),
                Ok(b"1970-01-01T00:00:00.000Z".to_vec())
            );
            assert_eq!(
                enc(Param::Date(1_700_000_000_123.0), o),
                Ok(b"2023-11-14T22:13:20.123Z".to_vec())
            );
            assert_eq!(
                enc(Param::Date(-1.0), o),
                Ok(b"1969-12-31T23:59:59.999Z".to_vec())
            );
            assert!(enc(Param::Date(f64::NAN), o).is_err());
        }
        // Years outside 0000-9999: a string gets toISOString()'s signed six digits, a date
        // PostgreSQL's BC form (which it reads), JSON what JSON.stringify writes.
        let year0 = -62_154_086_400_000.0; // 0000-06-01T00:00:00.000Z (1 BC)
        let year10000 = 253_402_300_800_000.0; // +010000-01-01T00:00:00.000Z
        assert_eq!(
            text(Param::Date(year0), oid::TEXT),
            "0000-06-01T00:00:00.000Z"
        );
        assert_eq!(
            text(Param::Date(year10000), oid::VARCHAR),
            "+010000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            text(Param::Date(-62_198_755_200_000.0), oid::TEXT),
            "-000001-01-01T00:00:00.000Z"
        );
        assert_eq!(
            text(Param::Date(year0), oid::DATE),
            "0001-06-01T00:00:00.000Z BC"
        );
        for o in [oid::JSON, oid::JSONB] {
            assert_eq!(text(Param::Date(0.0), o), "\"1970-01-01T00:00:00.000Z\"");
            assert_eq!(
                text(Param::Date(year10000), o),
                "\"+010000-01-01T00:00:00.000Z\""
            );
            assert!(enc(Param::Date(f64::NAN), o).is_err());
        }
        assert_eq!(
            text(
                Param::Array(vec![
                    Param::Date(year0),
                    Param::Date(year10000),
                    Param::Date(f64::NAN)
                ]),
                oid::JSONB
            ),
            "[\"0000-06-01T00:00:00.000Z\",\"+010000-01-01T00:00:00.000Z\",null]"
        );
    }

    proptest! {
        #[test]
        fn int4_numbers_round_trip(v: i32) {
            let b = enc(Param::Number(f64::from(v)), oid::INT4).unwrap();
            prop_assert_eq!(crate::decode::int4(&b), Ok(v));
        }

        #[test]
        fn int8_bigints_round_trip(v: i64) {
            let b = enc(Param::BigInt(v.into()), oid::INT8).unwrap();
            prop_assert_eq!(crate::decode::int8(&b), Ok(v));
        }

        #[test]
        fn numbers_as_text_round_trip(v: f64) {
            let b = enc(Param::Number(v), oid::NUMERIC).unwrap();
            let back = crate::decode::float_text(&b).unwrap();
            prop_assert!(back.to_bits() == v.to_bits() || (v == 0.0 && back == 0.0) || v.is_nan());
        }
    }
}
