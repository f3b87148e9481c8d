//! The properties the `hyperion-codec` fuzz targets check, kept in one place.
//!
//! Both the targets in `fuzz_targets/codec_*.rs` and the corpus replay test
//! `codec/tests/fuzz_corpus.rs` include this file with `#[path]`, so a seed or a saved crash is
//! replayed by a plain `cargo test -p hyperion-codec` against exactly the checks the fuzzer
//! ran. Uses `hyperion-codec`, `hyperion-wire` (the DataRow view), `bytes` and `simd-json`
//! (the JSON oracle, built with `big-int-as-float` so that big integers parse as doubles, as
//! `JSON.parse` reads them).
//!
//! The oracles are written independently of the codec's code where that is cheap: numeric
//! digits are printed position by position, dates are parsed back from their text and
//! compared through `civil_to_days`, JSON is parsed by a real parser.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use hyperion_codec::array::{
    encode_binary_array, parse_text_array, write_text_array, BinaryArray, MAX_DIMS,
};
use hyperion_codec::datetime::{civil_to_days, days_to_civil};
use hyperion_codec::decode::json_single_value;
use hyperion_codec::json::{Cursor, Flat, Token};
use hyperion_codec::numeric::{numeric_from_str, numeric_to_string};
use hyperion_codec::{
    encode_param, oid, param_format, result_format, DecodeError, Decoder, Output, Param, Scalar,
    Types,
};
use hyperion_wire::backend::DataRowBody;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::Debug;
use std::sync::OnceLock;

/// A fuzz target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every codec target by name, for the replay test.
pub const TARGETS: &[(&str, Check)] = &[
    ("codec_scalars", codec_scalars),
    ("codec_arrays", codec_arrays),
    ("codec_params", codec_params),
    ("codec_datarow", codec_datarow),
];

// --- findings reported and not fixed yet -------------------------------------------------------

/// Bugs these targets found in `hyperion-codec` that are reported and not fixed yet, as
/// `(name, target)`. The checks skip exactly these cases (so the fuzzer keeps looking for
/// other bugs) unless [`strictly`] is on. Each has its input in
/// `regressions/<target>/open-<name>`, which the replay test runs strictly and expects to
/// fail: once the codec is fixed, that test says so; then delete the entry here and drop the
/// `open-` prefix from the file name, so the input stays a plain regression.
pub const OPEN_FINDINGS: &[(&str, &str)] = &[
    // Fixed in the codec (inputs kept in fuzz/regressions/codec_params/ without the prefix):
    // a BigInt element of a float4[]/float8[] parameter used the binary float bytes as its
    // text; a finite number outside float4's range went out as Infinity or 0; a BigInt bound
    // to float4 was checked for exactness as a double, then rounded to a float.
];

thread_local! {
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every check on, open findings included.
pub fn strictly<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            STRICT.with(|s| s.set(self.0));
        }
    }
    let _reset = Reset(STRICT.with(|s| s.replace(true)));
    f()
}

/// Whether the check for finding `name` is skipped (it is open and we are not strict).
fn open(name: &str) -> bool {
    !STRICT.with(Cell::get) && OPEN_FINDINGS.iter().any(|(n, _)| *n == name)
}

// --- input -------------------------------------------------------------------------------------

/// A cursor over the fuzz input.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

// --- shared helpers ----------------------------------------------------------------------------

/// A decode error is a value, never a panic, and says what failed.
pub fn check_error(e: &DecodeError) {
    assert!(!e.type_name.is_empty(), "an error without a type: {e:?}");
    assert!(!e.message.is_empty(), "an error without a message: {e:?}");
    assert!(e.to_string().contains(e.type_name), "{e}");
}

fn be<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
    raw.try_into().ok()
}

fn utf8(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok()
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The JSON oracle: the value `text` parses to, if it is one valid JSON text.
///
/// simd-json 0.15.1 has defects with numbers, worked around here and in [`same_json`]: it
/// accepts junk after a number of more than 19 significant digits (`1111111111111111111111.5x`
/// parses, with default features too), so whether a text is valid JSON is decided by
/// [`strict_json`] first; it refuses valid negative integers in (-2^64, -2^63) (see
/// [`widen_negative_integers`]); and it misreads such long numbers when they start past
/// byte ~59 of the text (`1.234567890123456789012e-51` reads as `1.708e-53`,
/// `-9223372036854776000.0` as `-192`). Its structure is reliable, so the checks compare
/// structure, and numbers by value only where they are short. A valid text simd-json cannot
/// read (`1e400`, beyond a double) is `None` too.
pub fn parse_json(text: &[u8]) -> Option<OwnedValue> {
    if !strict_json(text) {
        return None;
    }
    let mut buf = widen_negative_integers(text);
    simd_json::to_owned_value(&mut buf).ok()
}

/// Whether `text` is exactly one JSON text (RFC 8259: one value, white space around it),
/// without building anything: an explicit stack, so any depth is fine.
pub fn strict_json(text: &[u8]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Want {
        Value,
        ValueOrClose,
        KeyOrClose,
        Key,
        Colon,
        After,
    }
    if std::str::from_utf8(text).is_err() {
        return false;
    }
    let mut open: Vec<u8> = Vec::new(); // b']' or b'}' per open container
    let mut want = Want::Value;
    let mut i = 0;
    loop {
        while matches!(text.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        let Some(&c) = text.get(i) else {
            return want == Want::After && open.is_empty();
        };
        let next = match want {
            Want::ValueOrClose | Want::KeyOrClose
                if open.last() == Some(&c) && (c == b']') == (want == Want::ValueOrClose) =>
            {
                open.pop();
                i += 1;
                Want::After
            }
            Want::Value | Want::ValueOrClose => match c {
                b'[' => {
                    open.push(b']');
                    i += 1;
                    Want::ValueOrClose
                }
                b'{' => {
                    open.push(b'}');
                    i += 1;
                    Want::KeyOrClose
                }
                b'"' => match json_string_end(text, i) {
                    Some(end) => {
                        i = end;
                        Want::After
                    }
                    None => return false,
                },
                b'-' | b'0'..=b'9' => match json_number_end(text, i) {
                    Some(end) => {
                        i = end;
                        Want::After
                    }
                    None => return false,
                },
                _ => {
                    let Some(word) = [&b"true"[..], b"false", b"null"]
                        .into_iter()
                        .find(|w| text[i..].starts_with(w))
                    else {
                        return false;
                    };
                    i += word.len();
                    Want::After
                }
            },
            Want::KeyOrClose | Want::Key => match json_string_end(text, i) {
                Some(end) if c == b'"' => {
                    i = end;
                    Want::Colon
                }
                _ => return false,
            },
            Want::Colon if c == b':' => {
                i += 1;
                Want::Value
            }
            Want::Colon => return false,
            Want::After => match (open.last(), c) {
                (Some(b']'), b',') => {
                    i += 1;
                    Want::Value
                }
                (Some(b'}'), b',') => {
                    i += 1;
                    Want::Key
                }
                (Some(&close), c) if c == close => {
                    open.pop();
                    i += 1;
                    Want::After
                }
                _ => return false,
            },
        };
        want = next;
    }
}

/// The end of the JSON string starting with the `"` at `start`: escapes are `\"\\/bfnrt` and
/// `\u` with four hex digits, no control characters.
fn json_string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *text.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *text.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = text.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// The end of the JSON number starting at `start`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn json_number_end(text: &[u8], start: usize) -> Option<usize> {
    let digits = |i: usize| {
        text[i.min(text.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = start + usize::from(text[start] == b'-');
    match text.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(i),
        _ => return None,
    }
    if text.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(text.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    Some(i)
}

/// simd-json 0.15.1 refuses valid negative integers in (-2^64, -2^63) as `InvalidNumber`,
/// even with `big-int-as-float` (smaller and larger ones parse; `JSON.parse` reads them all
/// as doubles). So that the oracle does not fail on them, a negative integer of 19 or 20
/// digits outside strings gets `.0` appended, which makes simd-json read it as a double.
fn widen_negative_integers(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        out.push(b);
        i += 1;
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
            b'"' => in_string = true,
            b'-' if i < 2 || !matches!(text[i - 2], b'e' | b'E') => {
                let digits = text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                out.extend_from_slice(&text[i..i + digits]);
                i += digits;
                let integer = !matches!(text.get(i), Some(b'.' | b'e' | b'E'));
                if (19..=20).contains(&digits) && integer {
                    out.extend_from_slice(b".0");
                }
            }
            _ => {}
        }
    }
    out
}

/// A nested array as `nest` builds it, for checking its shape.
#[derive(Debug)]
enum Tree<X> {
    Leaf(X),
    Node(Vec<Tree<X>>),
}

/// `nested` (what `nest` returned) has the shape `dims` and, read in order, the leaves `flat`.
fn check_nested<X: PartialEq + Debug>(dims: &[usize], flat: &[X], nested: &[Tree<X>]) {
    if dims.is_empty() {
        assert!(
            nested.is_empty() && flat.is_empty(),
            "an empty array nests as []"
        );
        return;
    }
    let mut leaves = flat.iter();
    walk_nested(dims, nested, &mut leaves);
    assert!(leaves.next().is_none(), "nest left elements out");
}

fn walk_nested<'x, X: PartialEq + Debug + 'x>(
    dims: &[usize],
    nodes: &[Tree<X>],
    leaves: &mut impl Iterator<Item = &'x X>,
) {
    assert_eq!(nodes.len(), dims[0], "a level of the wrong length");
    for node in nodes {
        match (node, dims.len()) {
            (Tree::Leaf(x), 1) => assert_eq!(Some(x), leaves.next(), "nest reordered"),
            (Tree::Node(children), d) if d > 1 => walk_nested(&dims[1..], children, leaves),
            _ => panic!("nest built a leaf and a sub-array at the same level"),
        }
    }
}

// --- scalars ---------------------------------------------------------------------------------

/// Every scalar decoder, for the first byte of a `codec_scalars` input to pick from.
pub const SCALARS: [Scalar; 26] = [
    Scalar::Bool,
    Scalar::Int2,
    Scalar::Int4,
    Scalar::Int8,
    Scalar::Oid,
    Scalar::Float4,
    Scalar::Float8,
    Scalar::Numeric,
    Scalar::Uuid,
    Scalar::Date,
    Scalar::Time,
    Scalar::Timestamp,
    Scalar::Timestamptz,
    Scalar::Bytea,
    Scalar::Jsonb,
    Scalar::Json,
    Scalar::Text,
    Scalar::BoolText,
    Scalar::IntText,
    Scalar::Int8Text,
    Scalar::FloatText,
    Scalar::ByteaText,
    Scalar::Int8Number,
    Scalar::Int8TextNumber,
    Scalar::Int8String,
    Scalar::Int8TextString,
];

/// What `Scalar::output` must say, written out again. The match is exhaustive on purpose: a
/// new variant does not compile until it is added here and to [`SCALARS`] (the replay test
/// checks that every variant listed here is in `SCALARS`).
pub fn expected_output(s: Scalar) -> Output {
    match s {
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

/// Byte 0 picks a [`Scalar`] (from [`SCALARS`]), the rest is the value: decoded with the
/// method its `output()` names, never a panic, and checked against an oracle (see
/// [`check_scalar`]). For `Numeric` the value is also read as text by `numeric_from_str`.
pub fn codec_scalars(data: &[u8]) {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    let s = SCALARS[usize::from(pick) % SCALARS.len()];
    let _ = check_scalar(s, raw);
    if s == Scalar::Numeric {
        check_numeric_from_str(raw);
    }
}

/// Decodes `raw` with `s` as the JS binding does (the method `s.output()` names) and checks
/// the result against an oracle: the exact set of accepted inputs and the exact value.
pub fn check_scalar(s: Scalar, raw: &[u8]) -> Result<(), DecodeError> {
    assert_eq!(s.output(), expected_output(s), "{s:?}");
    let result = match s.output() {
        Output::Bool => {
            let want = match (s, raw) {
                (Scalar::BoolText, b"t") | (Scalar::Bool, [1]) => Some(true),
                (Scalar::BoolText, b"f") | (Scalar::Bool, [0]) => Some(false),
                _ => None,
            };
            let got = s.decode_bool(raw);
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{s:?} of {raw:?}");
            got.map(drop)
        }
        Output::I32 => {
            let want = match s {
                Scalar::Int2 => be::<2>(raw).map(|b| i32::from(i16::from_be_bytes(b))),
                _ => be::<4>(raw).map(i32::from_be_bytes),
            };
            let got = s.decode_i32(raw);
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{s:?} of {raw:?}");
            got.map(drop)
        }
        Output::F64 => {
            let want = match s {
                Scalar::Oid => be::<4>(raw).map(|b| f64::from(u32::from_be_bytes(b))),
                Scalar::Float4 => be::<4>(raw).map(|b| f64::from(f32::from_be_bytes(b))),
                Scalar::IntText => utf8(raw)
                    .and_then(|t| t.parse::<i64>().ok())
                    .map(|v| v as f64),
                Scalar::FloatText => utf8(raw).and_then(|t| match t {
                    "NaN" => Some(f64::NAN),
                    "Infinity" => Some(f64::INFINITY),
                    "-Infinity" => Some(f64::NEG_INFINITY),
                    _ => t.parse().ok(),
                }),
                // int8 as a number: exact, or refused.
                Scalar::Int8Number => be::<8>(raw)
                    .map(i64::from_be_bytes)
                    .filter(|v| v.unsigned_abs() < 1 << 53)
                    .map(|v| v as f64),
                Scalar::Int8TextNumber => utf8(raw)
                    .and_then(|t| t.parse::<i64>().ok())
                    .filter(|v| v.unsigned_abs() < 1 << 53)
                    .map(|v| v as f64),
                _ => be::<8>(raw).map(f64::from_be_bytes),
            };
            let got = s.decode_f64(raw);
            match (&got, want) {
                (Ok(g), Some(w)) => assert!(same_f64(*g, w), "{s:?} of {raw:?}: {g} != {w}"),
                (Err(_), None) => {}
                _ => panic!("{s:?} of {raw:?}: got {got:?}, expected {want:?}"),
            }
            got.map(drop)
        }
        Output::I64 => {
            let want = match s {
                Scalar::Int8Text => utf8(raw).and_then(|t| t.parse::<i64>().ok()),
                _ => be::<8>(raw).map(i64::from_be_bytes),
            };
            let got = s.decode_i64(raw);
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{s:?} of {raw:?}");
            got.map(drop)
        }
        Output::Str => check_str(s, raw),
        Output::Bytes => {
            let want: Option<Vec<u8>> = match s {
                Scalar::ByteaText => hex_oracle(raw),
                _ => Some(raw.to_vec()),
            };
            let got = s.decode_bytes(raw);
            assert_eq!(got.as_deref().ok(), want.as_deref(), "{s:?} of {raw:?}");
            if s == Scalar::Bytea {
                assert!(
                    matches!(got, Ok(Cow::Borrowed(_))),
                    "binary bytea is borrowed"
                );
            }
            got.map(drop)
        }
        Output::Json => check_json_value(s, raw),
    };
    if let Err(e) = &result {
        check_error(e);
    }
    result
}

/// `\x` + an even number of hex digits, decoded.
fn hex_oracle(raw: &[u8]) -> Option<Vec<u8>> {
    let hex = utf8(raw.strip_prefix(b"\\x")?)?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            let pair = hex.get(i..i + 2)?;
            if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// Text already in the buffer before a string decode, which must survive it (a column's
/// values are appended to one buffer).
const PREFIX: &str = "é|";

const USECS_PER_DAY: i128 = 86_400_000_000;

fn check_str(s: Scalar, raw: &[u8]) -> Result<(), DecodeError> {
    let mut out = String::from(PREFIX);
    let got = s.decode_str(raw, &mut out);
    if got.is_err() {
        assert_eq!(out, PREFIX, "{s:?} appended text and then failed");
    }
    let text = out
        .strip_prefix(PREFIX)
        .expect("decode_str kept the text before it");
    let want: Option<()> = match s {
        Scalar::Numeric => {
            let want = numeric_oracle(raw);
            if let (Ok(()), Some(w)) = (&got, &want) {
                assert_eq!(text, w, "numeric {raw:?}");
                check_numeric_reparses(text, raw);
            }
            want.map(drop)
        }
        Scalar::Uuid => {
            let want = be::<16>(raw).map(|b| {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            });
            if let (Ok(()), Some(w)) = (&got, &want) {
                assert_eq!(text, w, "uuid {raw:?}");
            }
            want.map(drop)
        }
        Scalar::Date => be::<4>(raw).map(|b| {
            if got.is_ok() {
                match i32::from_be_bytes(b) {
                    i32::MAX => assert_eq!(text, "infinity"),
                    i32::MIN => assert_eq!(text, "-infinity"),
                    days => {
                        let (y, m, d) = parse_iso_date(text);
                        assert_eq!(civil_to_days(y, m, d), i64::from(days), "{text}");
                        assert_eq!(days_to_civil(i64::from(days)), (y, m, d), "{text}");
                    }
                }
            }
        }),
        Scalar::Time => be::<8>(raw)
            .map(i64::from_be_bytes)
            .filter(|us| (0..=86_400_000_000).contains(us))
            .map(|us| {
                if got.is_ok() {
                    assert_eq!(parse_time(text, true), i128::from(us), "{text}");
                }
            }),
        Scalar::Int8String => be::<8>(raw).map(|b| {
            if got.is_ok() {
                assert_eq!(text, i64::from_be_bytes(b).to_string());
            }
        }),
        Scalar::Timestamp | Scalar::Timestamptz => be::<8>(raw).map(|b| {
            if got.is_ok() {
                let suffix = if s == Scalar::Timestamptz { "Z" } else { "" };
                match i64::from_be_bytes(b) {
                    i64::MAX => assert_eq!(text, "infinity"),
                    i64::MIN => assert_eq!(text, "-infinity"),
                    us => {
                        let body = text
                            .strip_suffix(suffix)
                            .unwrap_or_else(|| panic!("{text} does not end with {suffix:?}"));
                        assert_eq!(parse_timestamp(body), i128::from(us), "{text}");
                    }
                }
            }
        }),
        _ => {
            let want = utf8(raw);
            if let (Ok(()), Some(w)) = (&got, want) {
                assert_eq!(text, w);
            }
            want.map(drop)
        }
    };
    assert_eq!(
        got.is_ok(),
        want.is_some(),
        "{s:?} of {raw:?}: {got:?}, expected {}",
        if want.is_some() {
            "a value"
        } else {
            "an error"
        }
    );
    got
}

/// What `numeric_out` prints for the binary numeric `raw`, computed decimal position by
/// decimal position; `None` where `numeric_recv` refuses the bytes.
pub fn numeric_oracle(raw: &[u8]) -> Option<String> {
    let (h, digits) = raw.split_first_chunk::<8>()?;
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let ndigits = usize::from(word(0));
    let weight = i64::from(word(2) as i16);
    let sign = word(4);
    let dscale = i64::from(word(6));
    if digits.len() != 2 * ndigits || dscale > 0x3FFF {
        return None;
    }
    let digits: Vec<u16> = digits
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    if digits.iter().any(|&d| d >= 10_000) {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    // Digit k is worth 10000^(weight - k): it holds the decimal exponents 4(weight-k)..+3.
    let digit_at = |e: i64| -> char {
        let k = weight - e.div_euclid(4);
        let d = usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k))
            .copied()
            .unwrap_or(0);
        let place = 10u16.pow(e.rem_euclid(4) as u32);
        char::from(b'0' + (d / place % 10) as u8)
    };
    let int: String = (0..=4 * weight + 3).rev().map(digit_at).collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac: String = (1..=dscale).map(|k| digit_at(-k)).collect();
    let nonzero = int != "0" || frac.bytes().any(|c| c != b'0');
    let mut out = String::new();
    if sign == 0x4000 && nonzero {
        out.push('-');
    }
    out.push_str(int);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// Decoded numeric text reads back through `numeric_from_str` and prints identically, with
/// the same display scale.
fn check_numeric_reparses(text: &str, raw: &[u8]) {
    let again = numeric_from_str(text).unwrap_or_else(|| panic!("{text:?} does not re-parse"));
    let mut printed = String::new();
    numeric_to_string(&again, &mut printed).expect("numeric_from_str output decodes");
    assert_eq!(printed, text, "numeric re-print of {raw:?}");
    if text
        .bytes()
        .all(|c| c == b'-' || c == b'.' || c.is_ascii_digit())
    {
        assert_eq!(again[6..8], raw[6..8], "dscale changed through text");
    }
}

/// `numeric_from_str` on the input read as text: accepted exactly when `numeric_in` would
/// accept it and the binary format can carry it, and then printed as `numeric_out` would.
pub fn check_numeric_from_str(raw: &[u8]) {
    let Some(s) = utf8(raw) else {
        return;
    };
    let got = numeric_from_str(s);
    let want = numeric_text_oracle(s);
    assert_eq!(got.is_some(), want.is_some(), "numeric_from_str({s:?})");
    let (Some(bin), Some(want)) = (got, want) else {
        return;
    };
    let mut printed = String::new();
    numeric_to_string(&bin, &mut printed).expect("numeric_from_str output decodes");
    assert_eq!(printed, want, "numeric_from_str({s:?})");
    // Canonical: zero is no digits, weight 0, positive; otherwise no leading or trailing
    // zero digits.
    let ndigits = usize::from(u16::from_be_bytes([bin[0], bin[1]]));
    assert_eq!(bin.len(), 8 + 2 * ndigits);
    let sign = u16::from_be_bytes([bin[4], bin[5]]);
    if ndigits == 0 {
        if sign == 0 || sign == 0x4000 {
            assert_eq!(bin[2..6], [0, 0, 0, 0], "zero is not canonical: {s:?}");
        }
    } else {
        assert!(
            bin[8..10] != [0, 0] && bin[bin.len() - 2..] != [0, 0],
            "{s:?}"
        );
    }
}

/// What `numeric_out(numeric_in(s))` prints, or `None` when `numeric_from_str` must refuse
/// `s` (not `[+-]?digits[.digits]` or a special word, or beyond the binary format's limits:
/// 16,383 fraction digits, 131,072 significant integer digits).
fn numeric_text_oracle(s: &str) -> Option<String> {
    for (word, out) in [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("+Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
    ] {
        if s.eq_ignore_ascii_case(word) {
            return Some(out.into());
        }
    }
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        || frac.len() > 0x3FFF
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() > 131_072 {
        return None;
    }
    let int = if int.is_empty() { "0" } else { int };
    let nonzero = int != "0" || frac.bytes().any(|c| c != b'0');
    let mut out = String::new();
    if negative && nonzero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0);
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits_value(s: &str) -> i64 {
    assert!(
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()),
        "{s:?} is not a number"
    );
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is out of range"))
}

/// `YYYY-MM-DD` with `toISOString`'s years (four digits for 0..=9999, else a sign and at
/// least six digits): checked, and returned as an astronomical year, month and day.
pub fn parse_iso_date(s: &str) -> (i64, u32, u32) {
    let (year, rest) = match s.as_bytes().first() {
        Some(b'+' | b'-') => {
            let end = s[1..].find('-').map(|i| i + 1).expect("a date has a month");
            let digits = &s[1..end];
            assert!(digits.len() >= 6, "a signed year has 6+ digits: {s}");
            let y = digits_value(digits);
            let y = if s.starts_with('-') { -y } else { y };
            assert!(!(0..=9999).contains(&y), "a signed year in 0..=9999: {s}");
            (y, &s[end..])
        }
        _ => {
            let (digits, rest) = s.split_at_checked(4).expect("a four-digit year");
            (digits_value(digits), rest)
        }
    };
    let md = rest.as_bytes();
    assert!(
        md.len() == 6 && md[0] == b'-' && md[3] == b'-',
        "not -MM-DD: {s}"
    );
    let m = digits_value(&rest[1..3]) as u32;
    let d = digits_value(&rest[4..6]) as u32;
    assert!((1..=12).contains(&m), "month {m} in {s}");
    assert!((1..=days_in_month(year, m)).contains(&d), "day {d} in {s}");
    (year, m, d)
}

/// `HH:MM:SS.ffffff` as microseconds; `24:00:00.000000` only when `allow_24`.
fn parse_time(s: &str, allow_24: bool) -> i128 {
    let b = s.as_bytes();
    assert!(
        b.len() == 15 && b[2] == b':' && b[5] == b':' && b[8] == b'.',
        "not HH:MM:SS.ffffff: {s}"
    );
    let h = digits_value(&s[0..2]);
    let m = digits_value(&s[3..5]);
    let sec = digits_value(&s[6..8]);
    let us = digits_value(&s[9..15]);
    let us = ((h * 60 + m) * 60 + sec) * 1_000_000 + us;
    assert!(m < 60 && sec < 60, "{s}");
    assert!(
        h < 24 || (allow_24 && us == 86_400_000_000),
        "hour {h} in {s}"
    );
    i128::from(us)
}

/// `<date>T<time>` as microseconds since 2000-01-01.
fn parse_timestamp(s: &str) -> i128 {
    let (date, time) = s.split_once('T').expect("a timestamp has a T");
    let (y, m, d) = parse_iso_date(date);
    i128::from(civil_to_days(y, m, d)) * USECS_PER_DAY + parse_time(time, false)
}

// --- JSON ------------------------------------------------------------------------------------

fn check_json_value(s: Scalar, raw: &[u8]) -> Result<(), DecodeError> {
    let body = match s {
        Scalar::Jsonb => match raw.split_first() {
            Some((1, rest)) => Some(rest),
            _ => None,
        },
        _ => Some(raw),
    };
    let want = body.filter(|b| utf8(b).is_some() && json_single_value(b));
    let got = s.decode_json(raw);
    assert_eq!(
        got.as_ref().ok().map(|t| t.as_bytes()),
        want,
        "{s:?} of {raw:?}"
    );
    if let Some(body) = body {
        check_json_text(body);
    }
    got.map(drop)
}

/// `json_single_value` against a real parser: a text the parser reads as one JSON value (or
/// that is one by RFC 8259, see [`parse_json`]) is accepted; two accepted texts joined as `[a,b]`, if that parses, give exactly two
/// elements, `a` and `b` (neither spills into the other). Checked for the text joined with
/// itself and, when it contains a 0xFF byte (never in JSON), for the parts either side.
pub fn check_json_text(text: &[u8]) {
    if strict_json(text) || parse_json(text).is_some() {
        assert!(
            json_single_value(text),
            "a JSON value the parser accepts is refused: {:?}",
            String::from_utf8_lossy(text)
        );
    }
    check_cursor(text);
    check_cursor_shaped(text, text);
    check_json_pair(text, text);
    if let Some(i) = text.iter().position(|&b| b == 0xff) {
        check_json_pair(&text[..i], &text[i + 1..]);
        check_cursor_shaped(&text[..i], &text[i + 1..]);
    }
}

/// A document as [`Cursor`] reads it.
enum Doc<'a> {
    Scalar(Flat<'a>),
    Object(Vec<(&'a str, Doc<'a>)>),
    Array(Vec<Doc<'a>>),
}

/// The document at the cursor, to a depth of 64 (deeper: `None`, as for a text the
/// cursor refuses; the cursor itself keeps no stack, its callers do).
fn read_doc<'a>(c: &mut Cursor<'a>, depth: usize) -> Option<Doc<'a>> {
    Some(match c.value()? {
        Token::Scalar(v) => Doc::Scalar(v),
        _ if depth >= 64 => return None,
        Token::Object => {
            let mut members = Vec::new();
            while let Some(k) = c.key(members.is_empty())? {
                members.push((k, read_doc(c, depth + 1)?));
            }
            Doc::Object(members)
        }
        Token::Array => {
            let mut items = Vec::new();
            while c.item(items.is_empty())? {
                items.push(read_doc(c, depth + 1)?);
            }
            Doc::Array(items)
        }
    })
}

/// `Cursor` against a real parser: a text it reads whole is one JSON text (RFC 8259), and
/// what it read is the parser's tree: the same containers, keys, items and scalars, numbers
/// equal where the parser is exact (in short texts; see [`parse_json`]).
fn check_cursor(text: &[u8]) {
    let Some(text) = utf8(text) else { return };
    let mut c = Cursor::new(text);
    let Some(doc) = read_doc(&mut c, 0) else {
        return;
    };
    if !c.at_end() {
        return;
    }
    assert!(
        strict_json(text.as_bytes()),
        "Cursor read a text that is not JSON: {text:?}"
    );
    let Some(parsed) = parse_json(text.as_bytes()) else {
        return; // a number beyond the oracle (1e400)
    };
    same_doc(&doc, &parsed, text);
}

/// The document at the cursor read as one of `shape` (a document read before), the way
/// the addon reads a json column of documents of one shape: the next byte and the place's
/// kind choose the reader, keys are compared in place, and null may stand anywhere.
fn read_shaped<'a>(c: &mut Cursor<'a>, shape: &Doc<'a>) -> Option<Doc<'a>> {
    let next = c.peek()?;
    if next == b'n' {
        c.null()?;
        return Some(Doc::Scalar(Flat::Null));
    }
    Some(match shape {
        Doc::Scalar(Flat::Number(_)) => Doc::Scalar(Flat::Number(c.number()?)),
        Doc::Scalar(Flat::Str(_)) => Doc::Scalar(Flat::Str(c.string()?)),
        Doc::Scalar(Flat::Bool(_)) => Doc::Scalar(Flat::Bool(c.boolean()?)),
        Doc::Scalar(Flat::Null) => return None,
        Doc::Object(members) => {
            c.open(b'{')?;
            let mut read = Vec::new();
            for (i, (k, m)) in members.iter().enumerate() {
                c.known_key(i == 0, k)?;
                read.push((*k, read_shaped(c, m)?));
            }
            if c.key(members.is_empty())?.is_some() {
                return None;
            }
            Doc::Object(read)
        }
        Doc::Array(items) => {
            c.open(b'[')?;
            let mut read = Vec::new();
            for (i, m) in items.iter().enumerate() {
                if !c.item(i == 0)? {
                    return None;
                }
                read.push(read_shaped(c, m)?);
            }
            if c.item(items.is_empty())? {
                return None;
            }
            Doc::Array(read)
        }
    })
}

fn same_tree(a: &Doc<'_>, b: &Doc<'_>) -> bool {
    match (a, b) {
        (Doc::Scalar(Flat::Number(x)), Doc::Scalar(Flat::Number(y))) => x.to_bits() == y.to_bits(),
        (Doc::Scalar(x), Doc::Scalar(y)) => x == y,
        (Doc::Object(x), Doc::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k, a), (l, b))| k == l && same_tree(a, b))
        }
        (Doc::Array(x), Doc::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_tree(a, b))
        }
        _ => false,
    }
}

/// `Cursor`'s readers by kind (`peek`, `open`, `known_key`, `number`, ...) against its
/// general reading: `text` read as a document of `shape`'s shape (`shape` read the general
/// way first) reads whole only if the general reading reads it whole too, to the same
/// tree; and a document read the general way reads the same by its own shape.
fn check_cursor_shaped<'a>(shape: &'a [u8], text: &'a [u8]) {
    let (Some(shape), Some(text)) = (utf8(shape), utf8(text)) else {
        return;
    };
    let mut c = Cursor::new(shape);
    let Some(shape) = read_doc(&mut c, 0).filter(|_| c.at_end()) else {
        return;
    };
    let mut c = Cursor::new(text);
    let Some(shaped) = read_shaped(&mut c, &shape).filter(|_| c.at_end()) else {
        let mut g = Cursor::new(text);
        if let Some(general) = read_doc(&mut g, 0).filter(|_| g.at_end()) {
            // Read the general way, the text must read by its own shape.
            let mut c = Cursor::new(text);
            let own = read_shaped(&mut c, &general).filter(|_| c.at_end());
            assert!(
                own.is_some_and(|d| same_tree(&d, &general)),
                "{text:?} reads the general way but not by its own shape"
            );
        }
        return;
    };
    let mut g = Cursor::new(text);
    let general = read_doc(&mut g, 0).filter(|_| g.at_end());
    assert!(
        general.is_some_and(|d| same_tree(&d, &shaped)),
        "{text:?} reads by a shape, not the same (or not at all) the general way"
    );
}

fn same_doc(doc: &Doc<'_>, want: &OwnedValue, text: &str) {
    match doc {
        Doc::Scalar(Flat::Str(s)) => assert_eq!(want.as_str(), Some(*s), "{text:?}"),
        Doc::Scalar(Flat::Bool(b)) => assert_eq!(want.as_bool(), Some(*b), "{text:?}"),
        Doc::Scalar(Flat::Null) => assert!(want.is_null(), "{text:?}"),
        Doc::Scalar(Flat::Number(x)) => {
            let exact = want
                .as_i64()
                .map(|i| i as f64)
                .or_else(|| want.as_u64().map(|u| u as f64))
                .or_else(|| want.as_f64());
            let exact =
                exact.unwrap_or_else(|| panic!("{text:?}: a number where the parser has {want:?}"));
            // The oracle misreads long numbers past byte ~59 (see `parse_json`); it drops
            // the sign of an integer -0.
            if text.len() <= 56 {
                assert!(exact == *x, "{text:?}: {x} where the parser has {exact}");
            }
        }
        Doc::Array(items) => {
            let got = want
                .as_array()
                .unwrap_or_else(|| panic!("{text:?}: an array where the parser has {want:?}"));
            assert_eq!(got.len(), items.len(), "{text:?}");
            for (d, w) in items.iter().zip(got.iter()) {
                same_doc(d, w, text);
            }
        }
        Doc::Object(members) => {
            let object = want
                .as_object()
                .unwrap_or_else(|| panic!("{text:?}: an object where the parser has {want:?}"));
            let mut keys: Vec<&str> = members.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            keys.dedup();
            if keys.len() != members.len() {
                // Which repeated value the parser kept is its own business (simd-json keeps
                // every repeated key: its count says nothing then).
                return;
            }
            assert_eq!(object.len(), keys.len(), "{text:?}");
            for (k, d) in members {
                let w = object
                    .get(*k)
                    .unwrap_or_else(|| panic!("{text:?}: no key {k:?} in the parser's object"));
                same_doc(d, w, text);
            }
        }
    }
}

fn check_json_pair(a: &[u8], b: &[u8]) {
    if !(json_single_value(a) && json_single_value(b)) {
        return;
    }
    check_json_join(&[a, b]);
}

/// Equal as JSON trees, any number equal to any number (see [`parse_json`]); objects only
/// by their keys (with a duplicate key, which value simd-json keeps depends on the text
/// around it).
pub fn same_json(a: &OwnedValue, b: &OwnedValue) -> bool {
    if let (Some(x), Some(y)) = (a.as_array(), b.as_array()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| same_json(x, y));
    }
    if let (Some(x), Some(y)) = (a.as_object(), b.as_object()) {
        return x.len() == y.len() && x.keys().all(|k| y.contains_key(k.as_str()));
    }
    match (a.cast_f64(), b.cast_f64()) {
        (Some(_), Some(_)) => true,
        _ => a == b,
    }
}

/// `values`, each accepted by `json_single_value`, joined as one JSON array the way result
/// columns are: when the parser accepts it, it holds exactly the values, in order.
pub fn check_json_join(values: &[&[u8]]) {
    let mut joined = vec![b'['];
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            joined.push(b',');
        }
        joined.extend_from_slice(v);
    }
    joined.push(b']');
    let Some(parsed) = parse_json(&joined) else {
        return;
    };
    let items = parsed.as_array().expect("[...] parses as an array");
    assert_eq!(
        items.len(),
        values.len(),
        "joined JSON values spilled: {:?}",
        String::from_utf8_lossy(&joined)
    );
    for (item, v) in items.iter().zip(values) {
        let Some(alone) = parse_json(v) else {
            // simd-json reads some numbers beyond a double inside an array but not alone
            // (see `parse_json`): that is the oracle's limit, not a spill.
            assert!(
                strict_json(v),
                "{:?} is an element of a valid array but not valid alone",
                String::from_utf8_lossy(v)
            );
            continue;
        };
        assert!(
            same_json(item, &alone),
            "{:?} joined is not itself",
            String::from_utf8_lossy(v)
        );
    }
}

// --- arrays ----------------------------------------------------------------------------------

/// Byte 0 picks a mode (mod 4): 0 the rest as a binary array; 1 byte 1 as the delimiter (a
/// byte below 0x80 as it is, usable or not; above, `,` or `;`) and the rest as a text array;
/// 2 a valid binary array built from the rest (see [`built_binary_array`]); 3 a valid text
/// array built from the rest (see [`built_text_array`]).
pub fn codec_arrays(data: &[u8]) {
    let mut input = Input(data);
    let Some(mode) = input.byte() else {
        return;
    };
    match mode % 4 {
        0 => {
            check_binary_array(input.rest());
        }
        1 => {
            let Some(d) = input.byte() else {
                return;
            };
            let delim = if d < 0x80 {
                d
            } else {
                [b',', b';'][usize::from(d & 1)]
            };
            check_text_array(input.rest(), delim);
        }
        2 => built_binary_array(input),
        _ => built_text_array(input),
    }
}

/// `BinaryArray::parse`: never panics; an accepted array has at most `MAX_DIMS` dimensions,
/// each at least 1, and as many elements as their product; `elements()`, `has_null()` and
/// `nest` agree with each other; re-encoding it parses back to the same array.
pub fn check_binary_array(raw: &[u8]) -> Option<BinaryArray<'_>> {
    match BinaryArray::parse(raw) {
        Err(e) => {
            check_error(&e);
            None
        }
        Ok(a) => {
            check_parsed_binary(&a);
            Some(a)
        }
    }
}

fn check_parsed_binary(a: &BinaryArray<'_>) {
    let dims = a.dims();
    assert!(
        dims.len() <= MAX_DIMS && dims.iter().all(|&d| d >= 1),
        "{dims:?}"
    );
    let dims_usize: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let product = if dims.is_empty() {
        0
    } else {
        dims_usize.iter().product()
    };
    assert_eq!(a.len(), product);
    assert_eq!(a.is_empty(), product == 0);
    let elements: Vec<Option<&[u8]>> = a.elements().collect();
    assert_eq!(elements.len(), a.len());
    assert_eq!(a.elements().size_hint(), (a.len(), Some(a.len())));
    assert_eq!(a.has_null(), elements.contains(&None));

    let nested = a
        .nest(|e| Ok::<_, ()>(Tree::Leaf(e)), |c| Ok(Tree::Node(c)))
        .expect("nothing fails");
    check_nested(&dims_usize, &elements, &nested);
    // A failing leaf stops the walk at once.
    if !elements.is_empty() {
        let stop = elements.len() / 2;
        let mut calls = 0;
        let result = a.nest(
            |_| {
                calls += 1;
                if calls > stop {
                    Err(())
                } else {
                    Ok(())
                }
            },
            |_| Ok(()),
        );
        assert!(result.is_err());
        assert_eq!(calls, stop + 1, "nest went on after an error");
    }

    let mut again = Vec::new();
    encode_binary_array(a.element_oid(), dims, &elements, &mut again);
    let b = BinaryArray::parse(&again).expect("a re-encoded array parses");
    assert_eq!(b.element_oid(), a.element_oid());
    assert_eq!(b.dims(), dims);
    assert_eq!(b.elements().collect::<Vec<_>>(), elements);
}

/// A valid binary array from the input: element OID (4 bytes), dimension count (mod 7), each
/// dimension (mod 4, so zero-length ones too), then per element a byte, 0xFF for NULL, else
/// its length (mod 8) and that many bytes; then a position and a byte to overwrite there.
/// `encode_binary_array` output parses back to exactly that array; the mutated copy never
/// panics.
pub fn built_binary_array(mut input: Input<'_>) {
    let Some(oid) = input.array::<4>().map(u32::from_be_bytes) else {
        return;
    };
    let Some(ndim) = input.byte().map(|b| b % 7) else {
        return;
    };
    let dims: Vec<i32> = (0..ndim)
        .map(|_| i32::from(input.byte().unwrap_or(1) % 4))
        .collect();
    let n = if dims.is_empty() {
        0
    } else {
        dims.iter().map(|&d| d as usize).product()
    };
    let elements: Vec<Option<&[u8]>> = (0..n)
        .map(|_| match input.byte() {
            Some(0xff) => None,
            Some(b) => Some(input.take(usize::from(b % 8))),
            None => Some(&[][..]),
        })
        .collect();
    let mut raw = Vec::new();
    encode_binary_array(oid, &dims, &elements, &mut raw);
    let a = BinaryArray::parse(&raw).expect("encode_binary_array output parses");
    assert_eq!(a.element_oid(), oid);
    if n == 0 {
        assert_eq!(a.dims(), &[] as &[i32]);
    } else {
        assert_eq!(a.dims(), &dims[..]);
    }
    assert_eq!(a.elements().collect::<Vec<_>>(), elements);
    check_parsed_binary(&a);

    if let (Some(at), Some(byte)) = (input.array::<2>(), input.byte()) {
        let at = usize::from(u16::from_be_bytes(at)) % raw.len();
        raw[at] = byte;
        let cut = usize::from(input.byte().unwrap_or(0) % 4).min(raw.len());
        raw.truncate(raw.len() - cut);
        check_binary_array(&raw);
    }
}

/// Delimiters `parse_text_array` accepts: ASCII, not white space, a brace, a quote or a
/// backslash.
fn usable_delim(d: u8) -> bool {
    d.is_ascii()
        && !matches!(
            d,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'{' | b'}' | b'"' | b'\\'
        )
}

/// Delimiters `write_text_array` can use: a letter of `NULL` would split the bare word it
/// writes for NULL (`{NULLN"x"}` with `N`). PostgreSQL's types use `,` and `;`.
fn writable_delim(d: u8) -> bool {
    usable_delim(d) && !b"nNuUlL".contains(&d)
}

/// `parse_text_array`: never panics; refuses unusable delimiters; an accepted array has at
/// most `MAX_DIMS` dimensions, each at least 1, as many elements as their product, borrows
/// every element when there is no backslash, nests consistently, and `write_text_array`
/// writes it back to text that parses to the same array.
pub fn check_text_array(raw: &[u8], delim: u8) {
    let a = match parse_text_array(raw, delim) {
        Err(e) => {
            check_error(&e);
            return;
        }
        Ok(a) => a,
    };
    assert!(usable_delim(delim), "accepted delimiter {delim:#04x}");
    let dims = a.dims();
    assert!(
        dims.len() <= MAX_DIMS && dims.iter().all(|&d| d >= 1),
        "{dims:?}"
    );
    let product = if dims.is_empty() {
        0
    } else {
        dims.iter().product()
    };
    assert_eq!(a.len(), product);
    assert_eq!(a.is_empty(), product == 0);
    let elements: Vec<Option<&str>> = a.elements().iter().map(|e| e.as_deref()).collect();
    if !raw.contains(&b'\\') {
        assert!(
            a.elements()
                .iter()
                .all(|e| !matches!(e, Some(Cow::Owned(_)))),
            "an element without escapes was copied"
        );
    }
    let nested = a
        .nest(
            |e| Ok::<_, ()>(Tree::Leaf(e.map(str::to_owned))),
            |c| Ok(Tree::Node(c)),
        )
        .expect("nothing fails");
    let owned: Vec<Option<String>> = elements.iter().map(|e| e.map(str::to_owned)).collect();
    check_nested(dims, &owned, &nested);

    if writable_delim(delim) {
        let mut out = String::new();
        write_text_array(dims, &elements, delim, &mut out);
        let b = parse_text_array(out.as_bytes(), delim)
            .unwrap_or_else(|e| panic!("write_text_array wrote {out:?}, which fails: {e}"));
        assert_eq!(b.dims(), dims, "{out:?}");
        let back: Vec<Option<&str>> = b.elements().iter().map(|e| e.as_deref()).collect();
        assert_eq!(back, elements, "{out:?}");
    }
}

/// A valid text array from the input: a delimiter (mod 4: `,`, `;`, `|`, or the next byte if
/// `write_text_array` can use it, else `,`), a dimension count (mod 7; 0 is `{}`), each
/// dimension (1 + mod 3), then per element a byte, 0xFF for NULL, else a length (mod 16) and
/// that many bytes as (lossy) UTF-8. Written by `write_text_array`, it parses back to exactly
/// those dimensions and elements, and passes [`check_text_array`].
pub fn built_text_array(mut input: Input<'_>) {
    let Some(pick) = input.byte() else {
        return;
    };
    let delim = match pick % 4 {
        0 => b',',
        1 => b';',
        2 => b'|',
        _ => input.byte().filter(|&d| writable_delim(d)).unwrap_or(b','),
    };
    let Some(ndim) = input.byte().map(|b| b % 7) else {
        return;
    };
    let dims: Vec<usize> = (0..ndim)
        .map(|_| 1 + usize::from(input.byte().unwrap_or(0) % 3))
        .collect();
    let n = if dims.is_empty() {
        0
    } else {
        dims.iter().product()
    };
    let strings: Vec<Option<String>> = (0..n)
        .map(|_| match input.byte() {
            Some(0xff) => None,
            Some(b) => Some(String::from_utf8_lossy(input.take(usize::from(b % 16))).into_owned()),
            None => Some(String::new()),
        })
        .collect();
    let elements: Vec<Option<&str>> = strings.iter().map(|e| e.as_deref()).collect();
    let mut out = String::new();
    write_text_array(&dims, &elements, delim, &mut out);
    let a = parse_text_array(out.as_bytes(), delim)
        .unwrap_or_else(|e| panic!("write_text_array wrote {out:?}, which fails: {e}"));
    assert_eq!(a.dims(), &dims[..], "{out:?}");
    let back: Vec<Option<&str>> = a.elements().iter().map(|e| e.as_deref()).collect();
    assert_eq!(back, elements, "{out:?}");
    check_text_array(out.as_bytes(), delim);
}

// --- types ------------------------------------------------------------------------------------

/// A type snapshot with user-defined types learnt from a fake `pg_type` answer, so parameters
/// and columns reach enums, domains and arrays of them.
pub fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let rows: [[&str; 5]; 13] = [
            ["90001", "e", "0", "0", ","],     // an enum
            ["90002", "b", "0", "90001", ","], // its array
            ["90003", "d", "23", "0", ","],    // a domain over int4
            ["90004", "b", "0", "90003", ","], // an array of that domain
            ["90005", "b", "0", "0", ";"],     // a base type outside the table, ';' delimiter
            ["90006", "b", "0", "90005", ","], // its array (delimiter ';')
            ["90007", "d", "1007", "0", ","],  // a domain over int4[]
            ["90008", "d", "90003", "0", ","], // a domain over the domain
            ["90009", "d", "3802", "0", ","],  // a domain over jsonb
            ["90010", "b", "0", "90009", ","], // an array of it
            ["90011", "d", "90012", "0", ","], // a domain cycle (a hostile catalog)
            ["90012", "d", "90011", "0", ","],
            ["90013", "c", "0", "0", ","], // a composite: its text form
        ];
        let asked: Vec<u32> = (90_001..=90_013).collect();
        Types::new().learn(&asked, rows.iter().map(|r| r.map(Some)))
    })
}

/// Type OIDs for parameters and columns to pick from: every built-in type and array type of
/// the type table, some that are not (`char`, `unknown`), the learnt ones of [`types`], an
/// unknown OID and 0 (unspecified).
pub const OIDS: &[u32] = &[
    oid::BOOL,
    oid::BYTEA,
    oid::CHAR,
    oid::NAME,
    oid::INT8,
    oid::INT2,
    oid::INT4,
    oid::TEXT,
    oid::OID,
    oid::JSON,
    oid::FLOAT4,
    oid::FLOAT8,
    oid::UNKNOWN,
    oid::BPCHAR,
    oid::VARCHAR,
    oid::DATE,
    oid::TIME,
    oid::TIMESTAMP,
    oid::TIMESTAMPTZ,
    oid::NUMERIC,
    oid::UUID,
    oid::JSONB,
    oid::BOOL_ARRAY,
    oid::BYTEA_ARRAY,
    oid::NAME_ARRAY,
    oid::INT2_ARRAY,
    oid::INT4_ARRAY,
    oid::TEXT_ARRAY,
    oid::BPCHAR_ARRAY,
    oid::VARCHAR_ARRAY,
    oid::INT8_ARRAY,
    oid::FLOAT4_ARRAY,
    oid::FLOAT8_ARRAY,
    oid::OID_ARRAY,
    oid::JSON_ARRAY,
    oid::TIMESTAMP_ARRAY,
    oid::DATE_ARRAY,
    oid::TIME_ARRAY,
    oid::TIMESTAMPTZ_ARRAY,
    oid::NUMERIC_ARRAY,
    oid::UUID_ARRAY,
    oid::JSONB_ARRAY,
    90_001,
    90_002,
    90_003,
    90_004,
    90_005,
    90_006,
    90_007,
    90_008,
    90_009,
    90_010,
    90_011,
    90_012,
    90_013,
    99_999,
    0,
];

/// A byte picks from [`OIDS`]; 0xFF is followed by a raw big-endian OID.
fn pick_oid(input: &mut Input<'_>) -> Option<u32> {
    match input.byte()? {
        0xff => input.array::<4>().map(u32::from_be_bytes),
        b => Some(OIDS[usize::from(b) % OIDS.len()]),
    }
}

// --- parameters ------------------------------------------------------------------------------

/// Numbers worth trying: integer-type bounds and one past them, fractions, float4 limits,
/// 2^53 and past it, the extremes and the specials.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -1.5,
    32_767.0,
    32_768.0,
    -32_768.0,
    -32_769.0,
    2_147_483_647.0,
    2_147_483_648.0,
    -2_147_483_648.0,
    -2_147_483_649.0,
    4_294_967_295.0,
    4_294_967_296.0,
    16_777_217.0,
    9_007_199_254_740_992.0,
    9_007_199_254_740_994.0,
    9_223_372_036_854_775_808.0,
    -9_223_372_036_854_775_808.0,
    3.402_823_466e38,
    3.5e38,
    1e-46,
    1e300,
    -1e300,
    1e-300,
    5e-324,
    f64::MAX,
    f64::MIN_POSITIVE,
    0.1,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

const BIGINTS: &[i128] = &[
    0,
    1,
    -1,
    i16::MAX as i128,
    i16::MAX as i128 + 1,
    i16::MIN as i128 - 1,
    i32::MAX as i128,
    i32::MAX as i128 + 1,
    i32::MIN as i128,
    i32::MIN as i128 - 1,
    u32::MAX as i128,
    u32::MAX as i128 + 1,
    i64::MAX as i128,
    i64::MAX as i128 + 1,
    i64::MIN as i128,
    i64::MIN as i128 - 1,
    16_777_217,
    1 << 53,
    (1 << 53) + 1,
    1 << 70,
    -(1 << 100),
    i128::MAX,
    i128::MIN,
];

/// Milliseconds since the Unix epoch: around year 1 and year 0, the ends of JS's Date range.
const DATES: &[f64] = &[
    0.0,
    -1.0,
    1.5,
    -0.5,
    1_700_000_000_123.0,
    -62_135_596_800_000.0,
    -62_135_596_800_001.0,
    -62_167_219_200_000.0,
    -62_198_755_200_000.0,
    8.64e15,
    -8.64e15,
    253_402_300_800_000.0,
    1e300,
    f64::NAN,
    f64::INFINITY,
];

/// Valid JSON texts, as `JSON.stringify` gives them to `Param::Json`.
const JSON_TEXTS: &[&str] = &[
    "{}",
    "[]",
    "null",
    "true",
    "0",
    "-1.5e3",
    "\"s\"",
    "\"\\u00e9\\n\\\"]\"",
    "{\"a\":[1,2,{\"b\":null}],\"c\":\"}\"}",
    "123456789012345678901234567890",
    "[[[]]]",
];

fn f64_from(input: &mut Input<'_>, table: &[f64]) -> Option<f64> {
    let b = input.byte()?;
    if b < 0x80 {
        Some(table[usize::from(b) % table.len()])
    } else {
        input.array::<8>().map(f64::from_be_bytes)
    }
}

/// Parameter trees from the input: a tag byte (mod 10) then its content; arrays hold up to
/// 4 children and nest at most 8 deep, and tag 9 wraps a scalar in up to 71 single-element
/// arrays (past both the 6 dimensions of array literals and the 64 levels of JSON); arrays
/// and wraps below depth 8 are NULL.
fn next_param(input: &mut Input<'_>, depth: usize) -> Option<Param> {
    let tag = input.byte()?;
    Some(match tag % 10 {
        0 => Param::Null,
        1 => Param::Bool(input.byte()? & 1 == 1),
        2 => Param::Number(f64_from(input, NUMBERS)?),
        3 => {
            let b = input.byte()?;
            if b < 0x80 {
                Param::BigInt(BIGINTS[usize::from(b) % BIGINTS.len()])
            } else {
                Param::BigInt(i128::from_be_bytes(input.array::<16>()?))
            }
        }
        4 => {
            let n = usize::from(input.byte()?);
            Param::Text(String::from_utf8_lossy(input.take(n)).into_owned())
        }
        5 => {
            let n = usize::from(input.byte()?);
            Param::Bytes(input.take(n).to_vec())
        }
        6 => Param::Date(f64_from(input, DATES)?),
        7 => Param::Json(JSON_TEXTS[usize::from(input.byte()?) % JSON_TEXTS.len()].into()),
        8 if depth < 8 => {
            let n = input.byte()? % 5;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(next_param(input, depth + 1)?);
            }
            Param::Array(items)
        }
        9 if depth < 8 => {
            let levels = input.byte()? % 72;
            // Depth 8: the inner value is a scalar, so trees stay under 80 levels (the
            // checks walk them recursively).
            let inner = next_param(input, 8)?;
            (0..levels).fold(inner, |p, _| Param::Array(vec![p]))
        }
        _ => Param::Null,
    })
}

fn is_json(t: u32) -> bool {
    matches!(t, oid::JSON | oid::JSONB)
}

fn is_int(t: u32) -> bool {
    matches!(t, oid::INT2 | oid::INT4 | oid::INT8 | oid::OID)
}

fn is_float(t: u32) -> bool {
    matches!(t, oid::FLOAT4 | oid::FLOAT8)
}

/// int2, int4, int8, oid, float4, float8, numeric: what booleans, Dates, objects and arrays
/// cannot bind to.
fn is_numeric(t: u32) -> bool {
    is_int(t) || is_float(t) || t == oid::NUMERIC
}

/// Integer types' ranges as `[lo, hi)`, in powers of two (exact as doubles).
fn int_range_f64(t: u32) -> (f64, f64) {
    match t {
        oid::INT2 => (-32_768.0, 32_768.0),
        oid::INT4 => (-2_147_483_648.0, 2_147_483_648.0),
        oid::INT8 => (-9_223_372_036_854_775_808.0, 9_223_372_036_854_775_808.0),
        _ => (0.0, 4_294_967_296.0),
    }
}

fn int_range_i128(t: u32) -> (i128, i128) {
    match t {
        oid::INT2 => (i16::MIN.into(), i16::MAX.into()),
        oid::INT4 => (i32::MIN.into(), i32::MAX.into()),
        oid::INT8 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u32::MAX.into()),
    }
}

/// Array nesting levels of a parameter (0 for a scalar).
fn levels(p: &Param) -> usize {
    match p {
        Param::Array(items) => 1 + items.iter().map(levels).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_bigint_leaf(p: &Param) -> bool {
    match p {
        Param::Array(items) => items.iter().any(has_bigint_leaf),
        other => matches!(other, Param::BigInt(_)),
    }
}

fn leaves<'p>(p: &'p Param, out: &mut Vec<&'p Param>) {
    match p {
        Param::Array(items) => items.iter().for_each(|i| leaves(i, out)),
        other => out.push(other),
    }
}

/// Whether an array can be written as JSON: at most 64 levels, and no BigInt (refused, as
/// `JSON.stringify` refuses it).
fn json_ok(p: &Param) -> bool {
    levels(p) <= 64 && !has_bigint_leaf(p)
}

/// Whether `encode_param(p, type_oid)` must succeed, where `base` is `type_oid` after domains:
/// the rules of `encode.rs`'s documentation, written out again.
fn expect_ok(p: &Param, base: u32, types: &Types) -> bool {
    let not_for_values = is_numeric(base) || base == oid::BOOL || base == oid::BYTEA;
    match p {
        Param::Null | Param::Text(_) => true,
        Param::Bool(_) => !is_numeric(base),
        Param::Number(v) if is_int(base) => {
            let (lo, hi) = int_range_f64(base);
            v.is_finite() && v.fract() == 0.0 && *v >= lo && *v < hi
        }
        // float4: no overflow to Infinity, no underflow to 0 (the server refuses both).
        Param::Number(v) if base == oid::FLOAT4 => {
            let f = *v as f32;
            !((v.is_finite() && f.is_infinite()) || (*v != 0.0 && f == 0.0))
        }
        Param::Number(_) => base != oid::BOOL && base != oid::BYTEA,
        Param::BigInt(v) if is_int(base) => {
            let (lo, hi) = int_range_i128(base);
            (lo..=hi).contains(v)
        }
        // Exact in the target float, or refused.
        // (i128::MAX is in no float: a cast back saturates to it.)
        Param::BigInt(v) if base == oid::FLOAT4 => (*v as f32) as i128 == *v && *v != i128::MAX,
        Param::BigInt(v) if is_float(base) => (*v as f64) as i128 == *v && *v != i128::MAX,
        // JSON has no BigInt: refused for json/jsonb as inside an object or array.
        Param::BigInt(_) => base != oid::BOOL && base != oid::BYTEA && !is_json(base),
        Param::Bytes(_) => base == oid::BYTEA,
        Param::Date(ms) => !not_for_values && ms.is_finite(),
        Param::Json(_) => !not_for_values,
        Param::Array(items) => match types.array_element(base) {
            // json[]/jsonb[]: one dimension; a nested array is a JSON value.
            Some((elem, _)) if is_json(types.base(elem)) => items.iter().all(|i| match i {
                Param::Null => true,
                Param::Array(_) => json_ok(i),
                other => expect_ok(other, types.base(elem), &Types::new()),
            }),
            Some((elem, _)) => {
                let elem = types.base(elem);
                let mut all = Vec::new();
                items.iter().for_each(|i| leaves(i, &mut all));
                levels(p) <= 6
                    && all
                        .iter()
                        .all(|l| matches!(l, Param::Null) || expect_ok(l, elem, &Types::new()))
            }
            None => !not_for_values && json_ok(p),
        },
    }
}

/// Builds a parameter tree and a target type from the input (a type byte, see `pick_oid`,
/// then a parameter, see `next_param`) and checks `encode_param`: it never panics; it
/// succeeds exactly when the encoding rules say (`expect_ok`); an error appends nothing and
/// NULL appends nothing; what it writes reads back:
///
/// * binary (`param_format` true): the column decoder of that type returns the same value
///   (integers exactly, floats bit for bit, bool, bytea);
/// * text: numbers parse back to the same double, BigInts to the same integer, Dates to the
///   same millisecond (through `civil_to_days`), strings and JSON as given;
/// * an array bound to an array type: the literal parses with `parse_text_array` exactly when
///   the tree is rectangular, to the same dimensions and, element by element, the text the
///   element has as a scalar parameter of the element type (json[]/jsonb[]: one dimension,
///   nested arrays are JSON elements);
/// * an array bound to another type: JSON that parses (simd-json) to the same tree and that
///   `json_single_value` accepts (a BigInt anywhere in it is refused).
pub fn codec_params(data: &[u8]) {
    if let Some((type_oid, p)) = param_input(data) {
        check_param(&p, type_oid, types());
    }
}

/// The target type and the parameter a `codec_params` input describes.
pub fn param_input(data: &[u8]) -> Option<(u32, Param)> {
    let mut input = Input(data);
    let type_oid = pick_oid(&mut input)?;
    Some((type_oid, next_param(&mut input, 0)?))
}

pub fn check_param(p: &Param, type_oid: u32, types: &Types) {
    let base = types.base(type_oid);
    let mut buf = BytesMut::from(&b"before"[..]);
    let result = encode_param(p, type_oid, types, &mut buf);
    let binary = param_format(p, type_oid, types);
    assert_eq!(
        binary,
        matches!(
            (p, base),
            (Param::Bool(_), oid::BOOL)
                | (Param::Bytes(_), oid::BYTEA)
                | (Param::Date(_), oid::TIMESTAMPTZ | oid::TIMESTAMP)
        ) || (matches!(p, Param::Number(_) | Param::BigInt(_)) && (is_int(base) || is_float(base))),
        "param_format of {p:?} for {type_oid}"
    );
    let want_ok = expect_ok(p, base, types);
    let bigint_float_array = matches!(p, Param::Array(_))
        && types
            .array_element(base)
            .is_some_and(|(e, _)| is_float(types.base(e)))
        && has_bigint_leaf(p);
    if bigint_float_array && open("bigint-in-float-array") {
        return;
    }
    match &result {
        Err(e) => {
            assert!(!e.0.is_empty());
            assert_eq!(&buf[..], b"before", "a refused parameter left bytes behind");
        }
        Ok(true) => {
            assert_eq!(p, &Param::Null, "only NULL is NULL");
            assert_eq!(&buf[..], b"before", "NULL wrote bytes");
        }
        Ok(false) => assert_ne!(p, &Param::Null, "NULL is NULL"),
    }
    assert_eq!(
        result.is_ok(),
        want_ok,
        "encode_param({p:?}, {type_oid}) = {result:?}"
    );
    if result != Ok(false) {
        return;
    }
    let bytes = &buf[b"before".len()..];
    if binary {
        check_binary_param(p, type_oid, bytes, types);
    } else {
        check_text_param(p, base, bytes, types);
    }
}

fn check_binary_param(p: &Param, type_oid: u32, bytes: &[u8], types: &Types) {
    let base = types.base(type_oid);
    let Decoder::Scalar(s) = Decoder::plan(type_oid, 1, types) else {
        panic!("no scalar decoder for binary {type_oid}");
    };
    match p {
        Param::Bool(b) => assert_eq!(s.decode_bool(bytes), Ok(*b)),
        Param::Bytes(b) => assert_eq!(s.decode_bytes(bytes).as_deref(), Ok(&b[..])),
        Param::Number(v) => match base {
            oid::FLOAT8 => assert_eq!(s.decode_f64(bytes).map(f64::to_bits), Ok(v.to_bits())),
            oid::FLOAT4 => {
                let got = s.decode_f64(bytes).expect("float4 decodes");
                assert!(
                    same_f64(got, f64::from(*v as f32)),
                    "{v} as float4 is {got}"
                );
                if !open("float4-out-of-range") && v.is_finite() {
                    assert!(
                        got.is_finite() && (got != 0.0 || *v == 0.0),
                        "{v} is out of float4's range and was sent as {got}"
                    );
                }
            }
            _ => assert_eq!(decoded_int(s, bytes), *v as i128, "{v} as {type_oid}"),
        },
        Param::BigInt(v) => match base {
            oid::FLOAT8 => {
                let got = s.decode_f64(bytes).expect("float8 decodes");
                assert_eq!(got as i128, *v, "{v} as float8 is {got}");
            }
            oid::FLOAT4 => {
                let got = s.decode_f64(bytes).expect("float4 decodes");
                if !open("bigint-float4-precision") {
                    assert_eq!(got as i128, *v, "{v} as float4 is {got}");
                }
            }
            _ => assert_eq!(decoded_int(s, bytes), *v, "{v} as {type_oid}"),
        },
        // Microseconds since 2000-01-01 UTC, of the milliseconds the text form would show;
        // never -infinity or infinity (i64::MIN, i64::MAX).
        Param::Date(ms) => {
            let got = i64::from_be_bytes(bytes.try_into().expect("a timestamp is 8 bytes"));
            let want = (i128::from(*ms as i64) - 946_684_800_000) * 1000;
            if want > i128::from(i64::MIN) && want < i128::from(i64::MAX) {
                assert_eq!(i128::from(got), want, "{ms} as {type_oid}");
            } else {
                assert!(got != i64::MIN && got != i64::MAX, "{ms} sent as {got}");
            }
        }
        _ => panic!("{p:?} is not sent in binary"),
    }
}

fn decoded_int(s: Scalar, bytes: &[u8]) -> i128 {
    match s.output() {
        Output::I32 => s.decode_i32(bytes).map(i128::from),
        Output::I64 => s.decode_i64(bytes).map(i128::from),
        _ => s.decode_f64(bytes).map(|v| v as i128),
    }
    .expect("an integer parameter decodes")
}

/// The text of a Date parameter (`YYYY-MM-DDTHH:MM:SS.mmmZ`, with ` BC` for years up to 1
/// BC) as milliseconds since the Unix epoch.
fn parse_param_date(text: &str) -> i128 {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let body = text.strip_suffix('Z').expect("a Date ends with Z");
    let (date, time) = body.split_once('T').expect("a Date has a T");
    let (year, md) = date
        .rsplit_once('-')
        .and_then(|(ym, d)| {
            let (y, m) = ym.rsplit_once('-')?;
            Some((y, (m, d)))
        })
        .expect("YYYY-MM-DD");
    assert!(year.len() >= 4, "{text}");
    let year = digits_value(year);
    let y = if bc {
        assert!(year >= 1, "{text}");
        1 - year
    } else {
        year
    };
    let (m, d) = (digits_value(md.0) as u32, digits_value(md.1) as u32);
    assert!(md.0.len() == 2 && md.1.len() == 2, "{text}");
    assert!(
        (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d),
        "{text}"
    );
    let t = time.as_bytes();
    assert!(
        t.len() == 12 && t[2] == b':' && t[5] == b':' && t[8] == b'.',
        "{text}"
    );
    let (h, mi, s, ms) = (
        digits_value(&time[0..2]),
        digits_value(&time[3..5]),
        digits_value(&time[6..8]),
        digits_value(&time[9..12]),
    );
    assert!(h < 24 && mi < 60 && s < 60, "{text}");
    // 1970-01-01 is day 10,957 before 2000-01-01.
    let days = i128::from(civil_to_days(y, m, d)) + 10_957;
    days * 86_400_000 + i128::from(((h * 60 + mi) * 60 + s) * 1000 + ms)
}

fn check_text_param(p: &Param, base: u32, bytes: &[u8], types: &Types) {
    let text = std::str::from_utf8(bytes).expect("a text-format parameter is UTF-8");
    match p {
        Param::Bool(b) => assert_eq!(text, if *b { "true" } else { "false" }),
        Param::Number(v) => {
            let back = hyperion_codec::decode::float_text(bytes).expect("a number's text parses");
            assert!(same_f64(back, *v), "{v} written as {text}");
            assert!(
                numeric_from_str(text).is_some(),
                "{text} is not numeric input"
            );
        }
        Param::BigInt(v) => assert_eq!(text.parse::<i128>().ok(), Some(*v)),
        Param::Text(s) | Param::Json(s) => assert_eq!(text, s),
        Param::Date(ms) => assert_eq!(parse_param_date(text), i128::from(*ms as i64)),
        Param::Array(items) => match types.array_element(base) {
            Some((elem, delim)) if is_json(types.base(elem)) => {
                check_json_array_literal(items, types.base(elem), delim, bytes)
            }
            Some((elem, delim)) => check_array_literal(items, types.base(elem), delim, bytes),
            None => {
                let value = parse_json(bytes).unwrap_or_else(|| panic!("not JSON: {text}"));
                check_json_param(p, &value);
                assert!(json_single_value(bytes), "{text}");
            }
        },
        Param::Null | Param::Bytes(_) => panic!("{p:?} is not sent as text"),
    }
}

/// The dimensions of a rectangular array parameter (`[]` for an empty one), `None` for a
/// ragged one, one that mixes values and sub-arrays at a level, or has an empty sub-array.
fn shape(items: &[Param], top: bool) -> Option<Vec<usize>> {
    if items.is_empty() {
        return top.then(Vec::new);
    }
    let arrays: Vec<&[Param]> = items
        .iter()
        .filter_map(|i| match i {
            Param::Array(inner) => Some(&inner[..]),
            _ => None,
        })
        .collect();
    if arrays.is_empty() {
        return Some(vec![items.len()]);
    }
    if arrays.len() != items.len() {
        return None;
    }
    let inner = shape(arrays[0], false)?;
    for a in &arrays[1..] {
        if shape(a, false)? != inner {
            return None;
        }
    }
    Some([vec![items.len()], inner].concat())
}

fn check_array_literal(items: &[Param], elem: u32, delim: u8, bytes: &[u8]) {
    let parsed = parse_text_array(bytes, delim);
    let Some(dims) = shape(items, true) else {
        assert!(
            parsed.is_err(),
            "a ragged array literal parses: {:?}",
            String::from_utf8_lossy(bytes)
        );
        return;
    };
    let a = parsed.unwrap_or_else(|e| {
        panic!(
            "array literal {:?} does not parse: {e}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert_eq!(a.dims(), &dims[..]);
    let mut all = Vec::new();
    items.iter().for_each(|i| leaves(i, &mut all));
    assert_eq!(a.len(), all.len());
    for (leaf, got) in all.iter().zip(a.elements()) {
        match (leaf, got) {
            (Param::Null, None) => {}
            (Param::Null, Some(_)) | (_, None) => panic!("NULL mismatch: {leaf:?} as {got:?}"),
            (leaf, Some(text)) => check_element_text(leaf, elem, text),
        }
    }
}

/// A json[]/jsonb[] literal: one dimension, a nested array is an element holding its JSON.
fn check_json_array_literal(items: &[Param], elem: u32, delim: u8, bytes: &[u8]) {
    let a = parse_text_array(bytes, delim).unwrap_or_else(|e| {
        panic!(
            "array literal {:?} does not parse: {e}",
            String::from_utf8_lossy(bytes)
        )
    });
    let dims: &[usize] = if items.is_empty() {
        &[]
    } else {
        &[items.len()]
    };
    assert_eq!(a.dims(), dims);
    for (item, got) in items.iter().zip(a.elements()) {
        match (item, got) {
            (Param::Null, None) => {}
            (Param::Null, Some(_)) | (_, None) => panic!("NULL mismatch: {item:?} as {got:?}"),
            (Param::Array(_), Some(text)) => {
                let value = parse_json(text.as_bytes())
                    .unwrap_or_else(|| panic!("a json[] element is not JSON: {text:?}"));
                check_json_param(item, &value);
                assert!(json_single_value(text.as_bytes()), "{text:?}");
            }
            (item, Some(text)) => check_element_text(item, elem, text),
        }
    }
}

/// An array element's text is what the element is as a scalar parameter of the element type:
/// its text form, or for binary ones the text of the same value (`t`/`f`, the integer, a
/// decimal that reads back as the same double, `\x` + hex).
fn check_element_text(leaf: &Param, elem: u32, text: &str) {
    let fresh = Types::new();
    if param_format(leaf, elem, &fresh) {
        match leaf {
            Param::Bool(b) => assert_eq!(text, if *b { "t" } else { "f" }),
            Param::Number(v) if is_int(elem) => {
                assert_eq!(text.parse::<i128>().ok(), Some(*v as i128), "{text}")
            }
            Param::BigInt(v) if is_int(elem) => assert_eq!(text.parse::<i128>().ok(), Some(*v)),
            Param::Number(v) => {
                let back = hyperion_codec::decode::float_text(text.as_bytes());
                assert!(
                    back.is_ok_and(|b| same_f64(b, *v)),
                    "{v} as a float element is {text:?}"
                );
            }
            Param::BigInt(v) => {
                let back = hyperion_codec::decode::float_text(text.as_bytes());
                assert!(
                    back.is_ok_and(|b| b as i128 == *v),
                    "{v} as a float element is {text:?}"
                );
            }
            Param::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                assert_eq!(text, format!("\\x{hex}"));
            }
            // A Date binds to timestamptz and timestamp in binary, but an array literal is
            // text: the element is its ISO text, the milliseconds the binary form carries.
            Param::Date(ms) => assert_eq!(parse_param_date(text), i128::from(*ms as i64)),
            _ => unreachable!(),
        }
    } else {
        let mut b = BytesMut::new();
        encode_param(leaf, elem, &fresh, &mut b).expect("the element encodes as a scalar");
        assert_eq!(
            text.as_bytes(),
            &b[..],
            "{leaf:?} as an element of {elem}[]"
        );
    }
}

/// The JSON of an array parameter bound to a non-array type is the tree, as
/// `JSON.stringify` writes it.
fn check_json_param(p: &Param, v: &OwnedValue) {
    match p {
        Param::Null => assert!(v.is_null(), "{p:?} as {v:?}"),
        Param::Bool(b) => assert_eq!(v.as_bool(), Some(*b)),
        Param::Number(x) if x.is_finite() => {
            let got = v.cast_f64().expect("a number");
            // Numbers are written as Rust prints them, without exponents (1e300 has 301
            // digits); simd-json misreads long ones (see `parse_json`), so only numbers of
            // up to 18 characters are compared by value.
            if format!("{x}").len() <= 18 {
                assert!(got == *x, "{x} as JSON reads {got}");
            }
        }
        Param::Number(_) => assert!(v.is_null(), "a non-finite number is null"),
        Param::BigInt(i) => panic!("BigInt {i} was written as JSON"),
        Param::Text(s) => assert_eq!(v.as_str(), Some(s.as_str())),
        Param::Bytes(b) => {
            let o = v.as_object().expect("a Buffer is an object");
            assert_eq!(o.get("type").and_then(|t| t.as_str()), Some("Buffer"));
            let data = o
                .get("data")
                .and_then(|d| d.as_array())
                .expect("Buffer data");
            let got: Vec<Option<u64>> = data.iter().map(|x| x.as_u64()).collect();
            let want: Vec<Option<u64>> = b.iter().map(|&x| Some(u64::from(x))).collect();
            assert_eq!(got, want);
        }
        Param::Date(ms) => {
            let year = ms
                .is_finite()
                .then(|| days_to_civil((*ms as i64).div_euclid(86_400_000) - 10_957).0);
            match year {
                Some(y) if y > 0 => {
                    let s = v.as_str().expect("a Date is a string");
                    assert_eq!(parse_param_date(s), i128::from(*ms as i64));
                }
                _ => assert!(v.is_null(), "an invalid or BC Date is null: {v:?}"),
            }
        }
        Param::Json(s) => {
            let want = parse_json(s.as_bytes()).expect("the JSON texts are valid");
            assert!(same_json(v, &want), "{s} as {v:?}");
        }
        Param::Array(items) => {
            let got = v.as_array().expect("an array");
            assert_eq!(got.len(), items.len());
            for (i, g) in items.iter().zip(got.iter()) {
                check_json_param(i, g);
            }
        }
    }
}

// --- rows ---------------------------------------------------------------------------------

/// A RowDescription's columns and a DataRow from the input, decoded the way the JS binding
/// does. Byte 0: the column count (mod 9). Per column: a type (see `pick_oid`) and a format
/// byte (mod 4: text, binary, what `result_format` asks for, or the next byte as a signed
/// format code). Then a mode byte: bit 0 set, the rest is the DataRow body as it is;
/// otherwise the body is built: the column count (plus one when bit 1 is set), then per
/// value a byte, 0xFF for NULL, else a length followed by that many bytes.
///
/// Checked: the DataRow view validates or refuses the frame (never a panic); a row of the
/// wrong width is refused as the binding does; `Decoder::plan` agrees with `result_format`
/// and never plans a binary array for text; every value decodes with its column's decoder
/// (scalars through [`check_scalar`] and its oracles, binary arrays after their element
/// type check and text arrays through `nest`) or fails with a clean error; the JSON values
/// of the row, joined as one array, parse to exactly those values.
pub fn codec_datarow(data: &[u8]) {
    if let Some((columns, frame)) = row_input(data) {
        check_row(&columns, frame, types());
    }
}

/// The columns (type, format) and the DataRow body a `codec_datarow` input describes.
/// Column `(type OID, format)` pairs and a DataRow body.
pub type RowInput = (Vec<(u32, i16)>, Vec<u8>);

pub fn row_input(data: &[u8]) -> Option<RowInput> {
    let mut input = Input(data);
    let n = usize::from(input.byte()? % 9);
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let type_oid = pick_oid(&mut input)?;
        let format = match input.byte()? % 4 {
            0 => 0,
            1 => 1,
            2 => result_format(type_oid, types()),
            _ => i16::from(input.byte()? as i8),
        };
        columns.push((type_oid, format));
    }
    let mode = input.byte()?;
    let frame = if mode & 1 == 1 {
        input.rest().to_vec()
    } else {
        let count = n + usize::from(mode & 2 != 0);
        let mut frame = (count as i16).to_be_bytes().to_vec();
        for _ in 0..count {
            match input.byte() {
                Some(0xff) | None => frame.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(len) => {
                    let value = input.take(usize::from(len));
                    frame.extend_from_slice(&(value.len() as i32).to_be_bytes());
                    frame.extend_from_slice(value);
                }
            }
        }
        frame
    };
    Some((columns, frame))
}

/// What a decoded row held, for the replay test: per column, `None` for NULL, else whether
/// the value decoded.
pub type RowReport = Vec<Option<Result<(), DecodeError>>>;

pub fn check_row(columns: &[(u32, i16)], frame: Vec<u8>, types: &Types) -> Option<RowReport> {
    let row = match DataRowBody::new(Bytes::from(frame)) {
        Ok(row) => row,
        Err(e) => {
            assert!(!e.0.is_empty(), "a DataRow error without a message");
            return None;
        }
    };
    if row.len() != columns.len() {
        // The binding refuses the row ("a row has N values for M columns").
        return None;
    }
    let decoders: Vec<Decoder> = columns
        .iter()
        .map(|&(type_oid, format)| check_plan(type_oid, format, types))
        .collect();
    let mut report = Vec::with_capacity(columns.len());
    let mut json: Vec<&[u8]> = Vec::new();
    for (&d, raw) in decoders.iter().zip(row.values()) {
        let Some(raw) = raw else {
            report.push(None);
            continue;
        };
        let result = decode_value(d, raw);
        if let Err(e) = &result {
            check_error(e);
        }
        if let (Ok(()), Decoder::Scalar(s)) = (&result, d) {
            if s.output() == Output::Json {
                json.push(s.decode_json(raw).expect("decoded once").as_bytes());
            }
        }
        report.push(Some(result));
    }
    if !json.is_empty() {
        check_json_join(&json);
    }
    Some(report)
}

/// `Decoder::plan` for a column, checked against `result_format`: a type the codec asks for
/// in binary gets a real binary decoder (bytea only for bytea), one it asks for in text gets
/// its bytes when it arrives in binary anyway; text never plans a binary array; a binary
/// array's element type is the column's.
fn check_plan(type_oid: u32, format: i16, types: &Types) -> Decoder {
    let base = types.base(type_oid);
    let binary = Decoder::plan(type_oid, 1, types);
    let asks_binary = result_format(type_oid, types) == 1;
    assert_eq!(
        asks_binary,
        binary != Decoder::Scalar(Scalar::Bytea) || base == oid::BYTEA,
        "result_format and plan disagree for {type_oid}"
    );
    if let Decoder::Array { elem_oid, .. } = binary {
        assert_eq!(types.array_element(base).map(|(e, _)| e), Some(elem_oid));
    }
    let d = Decoder::plan(type_oid, format, types);
    if format != 1 {
        assert!(
            !matches!(d, Decoder::Array { .. }),
            "a binary array decoder for text"
        );
    }
    d
}

/// One non-NULL value through its decoder, as the JS binding decodes it.
pub fn decode_value(d: Decoder, raw: &[u8]) -> Result<(), DecodeError> {
    match d {
        Decoder::Scalar(s) => check_scalar(s, raw),
        Decoder::Array { elem, elem_oid } => {
            let a = BinaryArray::parse(raw)?;
            check_parsed_binary(&a);
            if a.element_oid() != elem_oid {
                return Err(DecodeError {
                    type_name: "array",
                    message: format!(
                        "element type {} where {elem_oid} was declared",
                        a.element_oid()
                    ),
                });
            }
            a.nest(
                |e| match e {
                    None => Ok(()),
                    Some(raw) => check_scalar(elem, raw),
                },
                |_| Ok(()),
            )
            .map(drop)
        }
        Decoder::TextArray { delim } => {
            check_text_array(raw, delim);
            let a = parse_text_array(raw, delim)?;
            a.nest(|_| Ok(()), |_| Ok(())).map(drop)
        }
    }
}
