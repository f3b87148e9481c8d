//! Accumulating a result's values column by column, off the JS thread: pure Rust, no N-API.
//! Each column's decoder is chosen once from the RowDescription; each row's values are walked
//! once and handed to their columns' accumulators.

use super::kind::Kind;
use super::{shaped, strings};
use crate::errors::{Failure, JsResult};
use hyperion_codec::{DecodeError, Decoder, Format, Int8, Output, Scalar, Types};
use hyperion_wire::backend::DataRowBody;
use hyperion_wire::QueryResult;
use std::sync::Arc;

/// Strings are built per column up to this size; a larger column falls back to one JS string
/// per value (V8 caps a string at about 2^29 characters).
const MAX_COLUMN_STRING: usize = 256 << 20;

pub(super) fn decode_error(e: DecodeError) -> Failure {
    Failure::client("DECODE_ERROR", e.to_string())
}

/// Decoded values, ready to become JS values.
pub enum Body {
    /// A small result: decoded on the JS thread into row objects.
    Objects(QueryResult, Vec<Decoder>),
    Columns(Columns),
}

/// Every value of a batch decoded column by column, off the JS thread.
pub struct Columns {
    pub(super) n: usize,
    pub(super) names: Option<Arc<[hyperion_wire::backend::Field]>>,
    pub(super) builders: Vec<Builder>,
    /// Kept only for columns whose values must be built on the JS thread (arrays, and
    /// columns too large for one string).
    pub(super) frames: Vec<DataRowBody>,
}

pub(super) fn plan(result: &QueryResult, types: &Types, int8: Int8) -> Vec<Decoder> {
    let columns = result.columns.as_deref().unwrap_or(&[]);
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Decoder::for_column(
                c.type_oid,
                Format::from_code(result.formats.get(i).copied().unwrap_or(0)),
                types,
            )
            .with_int8(int8)
        })
        .collect()
}

pub(super) fn check_width(row_len: usize, columns: usize) -> JsResult<()> {
    if row_len != columns {
        return Err(Failure::client(
            "PROTOCOL_ERROR",
            format!("a row has {row_len} values for {columns} columns"),
        ));
    }
    Ok(())
}

/// One column's values, accumulated row by row.
pub(super) enum Column {
    Bool(Vec<u8>),
    I32(Vec<i32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(strings::Joined),
    Bytes {
        data: Vec<u8>,
        offsets: Vec<u32>,
    },
    Json(String),
    /// Text as it came (text types, enums): a table while values repeat (`strings.rs`).
    Strings(strings::Strings),
    /// A json column of documents of one shape, place by place (`shaped.rs`).
    Shaped(shaped::Shaped),
    /// Built value by value on the JS thread from the kept frames.
    Values,
}

impl Column {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Column::Bool(_) => Kind::Bool,
            Column::I32(_) => Kind::Int32,
            Column::F64(_) => Kind::Float64,
            Column::I64(_) => Kind::BigInt64,
            Column::Str(_) => Kind::Text,
            Column::Bytes { .. } => Kind::Bytes,
            Column::Json(_) => Kind::Json,
            Column::Strings(s) => s.kind(),
            Column::Shaped(shaped) => shaped.kind(),
            Column::Values => Kind::Values,
        }
    }
}

pub(super) struct Builder {
    pub(super) decoder: Decoder,
    pub(super) column: Column,
    pub(super) nulls: Option<Vec<u8>>,
}

impl Builder {
    pub(super) fn new(decoder: Decoder, rows: usize) -> Builder {
        let offsets = || {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0);
            offsets
        };
        let column = match decoder {
            Decoder::Scalar(s) => match s.output() {
                Output::Bool => Column::Bool(Vec::with_capacity(rows)),
                Output::I32 => Column::I32(Vec::with_capacity(rows)),
                Output::F64 => Column::F64(Vec::with_capacity(rows)),
                Output::I64 => Column::I64(Vec::with_capacity(rows)),
                Output::Str if s == Scalar::Text => {
                    Column::Strings(strings::Strings::expecting(0, rows))
                }
                Output::Str => Column::Str(strings::Joined::with_capacity(rows)),
                Output::Bytes => Column::Bytes {
                    data: Vec::new(),
                    offsets: offsets(),
                },
                Output::Json => Column::Shaped(shaped::Shaped::default()),
            },
            _ => Column::Values,
        };
        Builder {
            decoder,
            column,
            nulls: None,
        }
    }

    /// Adds row `row`'s value; `Ok(true)` when the column must be redone as JSON text
    /// ([`Builder::redo_as_json`]).
    pub(super) fn push(&mut self, row: usize, raw: Option<&[u8]>) -> JsResult<bool> {
        let Decoder::Scalar(s) = self.decoder else {
            return Ok(false); // built on the JS thread
        };
        let null = raw.is_none();
        if null {
            self.nulls.get_or_insert_with(|| vec![0; row]).push(1);
        } else if let Some(nulls) = &mut self.nulls {
            nulls.push(0);
        }
        let raw = raw.unwrap_or(&[]);
        match &mut self.column {
            Column::Bool(v) => v.push(if null {
                0
            } else {
                u8::from(s.decode_bool(raw).map_err(decode_error)?)
            }),
            Column::I32(v) => v.push(if null {
                0
            } else {
                s.decode_i32(raw).map_err(decode_error)?
            }),
            Column::F64(v) => v.push(if null {
                0.0
            } else {
                s.decode_f64(raw).map_err(decode_error)?
            }),
            Column::I64(v) => v.push(if null {
                0
            } else {
                s.decode_i64(raw).map_err(decode_error)?
            }),
            Column::Str(text) => {
                if null {
                    text.push_null();
                } else if !text
                    .push_written(|out| s.decode_str(raw, out))
                    .map_err(decode_error)?
                {
                    return Err(Failure::client("DECODE_ERROR", "column too large"));
                }
            }
            Column::Bytes { data, offsets } => {
                if !null {
                    data.extend_from_slice(&s.decode_bytes(raw).map_err(decode_error)?);
                }
                offsets.push(
                    u32::try_from(data.len())
                        .map_err(|_| Failure::client("DECODE_ERROR", "column too large"))?,
                );
            }
            Column::Json(text) => {
                if row > 0 {
                    text.push(',');
                }
                if null {
                    text.push_str("null");
                } else {
                    text.push_str(s.decode_json(raw).map_err(decode_error)?);
                }
            }
            Column::Strings(strings) => {
                let (value, ascii) = match null {
                    true => (None, true),
                    false => {
                        let (s, ascii) = strings::text_value(raw).map_err(decode_error)?;
                        (Some(s), ascii)
                    }
                };
                if !strings.push_with(value, ascii) {
                    return Err(Failure::client("DECODE_ERROR", "column too large"));
                }
            }
            Column::Shaped(shaped) => {
                let text = match null {
                    true => None,
                    false => Some(s.json_body(raw).map_err(decode_error)?),
                };
                return Ok(!shaped.push(text));
            }
            Column::Values => {}
        }
        Ok(false)
    }

    /// Turns a column of documents of one shape that met another value into JSON text, from its
    /// values in rows `..=upto` of `rows` (column `index`).
    fn redo_as_json(&mut self, rows: &[DataRowBody], index: usize, upto: usize) -> JsResult<()> {
        self.column = Column::Json(String::from("["));
        self.nulls = None;
        for (r, row) in rows.iter().take(upto + 1).enumerate() {
            self.push(r, row.values().nth(index).flatten())?;
        }
        Ok(())
    }

    /// Whether the column grew too large for one JS string or one Buffer with u32 offsets.
    fn oversized(&self) -> bool {
        match &self.column {
            Column::Str(text) => text.text_len() > MAX_COLUMN_STRING,
            Column::Json(text) => text.len() > MAX_COLUMN_STRING,
            Column::Shaped(shaped) => shaped.text_len() > MAX_COLUMN_STRING,
            Column::Strings(strings) => strings.text_len() > MAX_COLUMN_STRING,
            Column::Bytes { data, .. } => data.len() > u32::MAX as usize / 2,
            _ => false,
        }
    }
}

/// Results of at most this many values come as finished row objects (`Meta::small_rows`):
/// below it, a typed array or string per column costs more than it saves (measured on W2).
const SMALL_RESULT: usize = 64;

/// Decodes `result` into columns, off the JS thread; a result of at most [`SMALL_RESULT`]
/// values is left whole for `Meta::small_rows` unless `columns` is set (every batch of a
/// streamed result has the same form).
pub fn decode(result: QueryResult, types: &Types, int8: Int8, columns: bool) -> JsResult<Body> {
    let decoders = plan(&result, types, int8);
    let n = result.rows.len();
    if !columns && n * decoders.len() <= SMALL_RESULT {
        return Ok(Body::Objects(result, decoders));
    }
    let mut builders: Vec<Builder> = decoders.iter().map(|&d| Builder::new(d, n)).collect();
    for (r, row) in result.rows.iter().enumerate() {
        check_width(row.len(), builders.len())?;
        let mut redo = Vec::new(); // allocates only when a column is redone
        for (i, (b, raw)) in builders.iter_mut().zip(row.values()).enumerate() {
            if b.push(r, raw)? {
                redo.push(i);
            }
        }
        for i in redo {
            builders[i].redo_as_json(&result.rows, i, r)?;
        }
    }
    // Columns too large for one string are built value by value instead.
    for b in &mut builders {
        if b.oversized() {
            b.column = Column::Values;
            b.nulls = None;
        }
    }
    let QueryResult { columns, rows, .. } = result;
    // Every value that could be is decoded: the frames go now (before the JS copies are
    // made, so the two never peak together) unless a column is still to be built from them.
    let keep = builders.iter().any(|b| matches!(b.column, Column::Values));
    Ok(Body::Columns(Columns {
        n,
        names: columns,
        builders,
        frames: if keep { rows } else { Vec::new() },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOL: u32 = 16;
    const INT4: u32 = 23;
    const INT8: u32 = 20;
    const BYTEA: u32 = 17;
    const JSON: u32 = 114;

    fn builder(oid: u32, format: Format, rows: usize) -> Builder {
        Builder::new(Decoder::for_column(oid, format, &Types::new()), rows)
    }

    #[test]
    fn numbers_go_to_a_typed_column_with_a_null_map_from_the_first_null_on() {
        let mut b = builder(INT4, Format::Binary, 3);
        assert!(!b.push(0, Some(&1i32.to_be_bytes())).unwrap());
        assert!(b.nulls.is_none(), "no map while nothing is NULL");
        assert!(!b.push(1, None).unwrap());
        assert!(!b.push(2, Some(&(-3i32).to_be_bytes())).unwrap());
        assert_eq!(b.column.kind(), Kind::Int32);
        assert!(matches!(&b.column, Column::I32(v) if v == &[1, 0, -3]));
        assert_eq!(b.nulls.as_deref(), Some(&[0u8, 1, 0][..]));
    }

    #[test]
    fn int8_and_bool_keep_their_own_kinds() {
        let mut g = builder(INT8, Format::Binary, 1);
        g.push(0, Some(&(i64::MIN).to_be_bytes())).unwrap();
        assert_eq!(g.column.kind(), Kind::BigInt64);
        assert!(matches!(&g.column, Column::I64(v) if v == &[i64::MIN]));
        let mut t = builder(BOOL, Format::Binary, 2);
        t.push(0, Some(&[1])).unwrap();
        t.push(1, Some(&[0])).unwrap();
        assert!(matches!(&t.column, Column::Bool(v) if v == &[1, 0]));
    }

    #[test]
    fn bytes_are_one_buffer_with_byte_offsets_and_a_null_adds_no_bytes() {
        let mut b = builder(BYTEA, Format::Binary, 3);
        b.push(0, Some(b"ab")).unwrap();
        b.push(1, None).unwrap();
        b.push(2, Some(b"cde")).unwrap();
        assert_eq!(b.column.kind(), Kind::Bytes);
        assert!(
            matches!(&b.column, Column::Bytes { data, offsets } if data == b"abcde" && offsets == &[0, 2, 2, 5])
        );
    }

    #[test]
    fn a_json_column_of_one_shape_asks_to_be_redone_when_another_shape_comes() {
        let redo = |values: &[&str]| {
            let mut b = builder(JSON, Format::Text, values.len());
            let mut answers = Vec::new();
            for (i, v) in values.iter().enumerate() {
                answers.push(b.push(i, Some(v.as_bytes())).unwrap());
                if i == 0 {
                    assert_eq!(
                        b.column.kind(),
                        if v.starts_with('[') {
                            Kind::Array
                        } else {
                            Kind::Shaped
                        }
                    );
                }
            }
            answers
        };
        let doc = |i: u32| {
            format!(r#"{{"id":{i},"tags":["t{i}",{i}],"m":{{"a":null,"p":[{{"k":true}}]}}}}"#)
        };
        let (one, two) = (doc(1), doc(2));
        assert_eq!(
            redo(&[
                &one,
                &two,
                r#"{"id":null,"tags":null,"m":{"a":1,"p":null}}"#
            ]),
            [false; 3]
        );
        assert_eq!(redo(&["[1,\"x\"]", "[2,null]"]), [false, false]);
        for other in [
            r#"{"id":3,"tags":["t3",3,4],"m":{"a":null,"p":[{"k":true}]}}"#, // a longer array
            r#"{"id":3,"tags":["t3"],"m":{"a":null,"p":[{"k":true}]}}"#,     // a shorter one
            r#"{"id":3,"tags":["t3",3],"m":{"a":null,"p":[{"j":true}]}}"#,   // another key
            r#"{"id":3,"tags":["t3",3],"m":{"a":null,"p":[{"k":1}]}}"#,      // another kind
            r#"{"id":3,"tags":["t3",3],"m":{"a":null,"p":[[true]]}}"#, // an array for an object
            r#"{"id":"3","tags":["t3",3],"m":{"a":null,"p":[{"k":true}]}}"#, // a string for a number
            "[1]",
            "7",
            "null", // a document that is JSON null (not SQL NULL) goes as JSON text
        ] {
            assert_eq!(redo(&[&one, other]), [false, true], "{other}");
        }
        // Too deep, or too many places, from the first value on.
        let deep = format!("{}1{}", "[".repeat(17), "]".repeat(17));
        assert_eq!(redo(&[&deep]), [true]);
        assert_eq!(
            redo(&[&format!("{}1{}", "[".repeat(16), "]".repeat(16))]),
            [false]
        );
        let wide = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        assert_eq!(redo(&[&wide(256)]), [false]);
        assert_eq!(redo(&[&wide(257)]), [true]);
    }

    #[test]
    fn a_bad_value_is_a_decode_error_not_a_panic() {
        let mut b = builder(INT4, Format::Binary, 1);
        assert!(b.push(0, Some(&[1, 2])).is_err());
    }
}
