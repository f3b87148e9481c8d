//! A query's result to JS values, in bulk.
//!
//! A result (or, for a large one, each batch of it: see `stream.rs`) crosses column by
//! column: every column's decoder is chosen once from its RowDescription, then all of its
//! values are decoded in place from the DataRow frames into one buffer per column, off the JS
//! thread ([`decode`]); on the JS thread each buffer becomes one JS value:
//!
//! | kind | column of | JS value |
//! |------|-----------|----------|
//! | `b`  | bool | `Uint8Array` of 0/1 |
//! | `i`  | int2, int4 | `Int32Array` |
//! | `f`  | float4/8, oid | `Float64Array` |
//! | `g`  | int8 | `BigInt64Array` |
//! | `d`  | text types and enums while their values repeat | `[Array of strings, Uint8Array]`: the distinct values and an index per row (`rows/strings.rs`) |
//! | `s`  | strings (text types and enums that do not repeat, numeric, uuid, dates and times) | `[string, Uint32Array]`: all values in one string, UTF-16 offsets |
//! | `y`  | bytea | `[Buffer, Uint32Array]`: all values in one Buffer, byte offsets |
//! | `o`  | json, jsonb whose values are all flat objects of one shape | `{ kinds, names, cols, nulls }`: the members as columns (`rows/shaped.rs`) |
//! | `j`  | other json, jsonb | one string holding a JSON array of the values (`null` for NULL) |
//! | `v`  | arrays, and anything too large for one string | an `Array` of finished values |
//!
//! plus a `Uint8Array` NULL map per column that has a NULL. `client.js` turns that into row
//! objects with a function compiled once per shape (column names and kinds), so V8 builds
//! every row from the same object literal. The alternative measured against it (one object
//! per row built here with `napi_define_properties`, [`objects`]) lost on large results (see
//! the benchmark notes in the README) and serves only small ones.
//!
//! A column's text (`s`, `j`) of 1 KiB or more that is ASCII goes to V8 as an external
//! string: V8's young-generation collector copies every object that survives it, twice
//! before it reaches the old generation, and the rows of a large result all survive; an
//! external string's characters stay where Rust put them until its finalizer frees them.

use crate::errors::{Failure, JsResult};
use hyperion_codec::array::{parse_text_array, BinaryArray};
use hyperion_codec::{DecodeError, Decoder, Output, Scalar, Types};
use hyperion_wire::backend::DataRowBody;
use hyperion_wire::QueryResult;
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

/// A piece of a result on its way to JS: the whole result, or one batch of a result that
/// is still arriving (see `stream.rs`).
pub struct Chunk {
    pub body: Body,
    /// Which attempt of the query the rows belong to (1 unless the pool retried it); rows of
    /// an earlier attempt are void.
    pub attempt: u32,
    /// The result is complete with this chunk.
    pub last: bool,
    /// Where the following chunks come from, on the first chunk of a streamed result.
    pub rest: Option<crate::stream::NativeRows>,
}

/// Decoded values, ready to become JS values.
pub enum Body {
    /// A small result: decoded on the JS thread into row objects.
    Objects(QueryResult, Vec<Decoder>),
    Columns(Columns),
}

/// Every value of a batch decoded column by column, off the JS thread.
pub struct Columns {
    n: usize,
    names: Option<Arc<[hyperion_wire::backend::Field]>>,
    builders: Vec<Builder>,
    /// Kept only for columns whose values must be built on the JS thread (arrays, and
    /// columns too large for one string).
    frames: Vec<DataRowBody>,
}

/// Column texts from this size on become external strings ([`Ctx::owned_string`]); a
/// smaller one is cheaper to copy than to track.
const EXTERNAL_MIN: usize = 1024;

type CreateExternalLatin1 = unsafe extern "C" fn(
    sys::napi_env,
    *mut std::os::raw::c_char,
    usize,
    sys::napi_finalize,
    *mut std::os::raw::c_void,
    *mut sys::napi_value,
    *mut bool,
) -> sys::napi_status;

/// `node_api_create_external_string_latin1` when the host has it (Node 18.18, 20.4 and
/// later). Looked up at run time rather than linked: the addon must still load on a Node
/// without it, and then copies.
fn external_latin1() -> Option<CreateExternalLatin1> {
    use std::sync::OnceLock;
    static SYMBOL: OnceLock<Option<CreateExternalLatin1>> = OnceLock::new();
    *SYMBOL.get_or_init(|| {
        extern "C" {
            fn dlsym(
                handle: *mut std::os::raw::c_void,
                symbol: *const std::os::raw::c_char,
            ) -> *mut std::os::raw::c_void;
        }
        #[cfg(target_os = "macos")]
        const RTLD_DEFAULT: *mut std::os::raw::c_void = -2isize as *mut std::os::raw::c_void;
        #[cfg(not(target_os = "macos"))]
        const RTLD_DEFAULT: *mut std::os::raw::c_void = ptr::null_mut();
        // SAFETY: dlsym with RTLD_DEFAULT only looks a name up in the loaded objects; the
        // symbol, when present, has the signature of `CreateExternalLatin1` (js_native_api.h).
        unsafe {
            let f = dlsym(
                RTLD_DEFAULT,
                c"node_api_create_external_string_latin1".as_ptr(),
            );
            (!f.is_null())
                .then(|| std::mem::transmute::<*mut std::os::raw::c_void, CreateExternalLatin1>(f))
        }
    })
}

/// Finalizer of an external string: frees the text [`Ctx::owned_string`] handed over.
unsafe extern "C" fn free_text(
    _env: sys::napi_env,
    _data: *mut std::os::raw::c_void,
    hint: *mut std::os::raw::c_void,
) {
    // SAFETY: `hint` is the `Box<Vec<u8>>` leaked by `owned_string`, finalized once.
    drop(Box::from_raw(hint.cast::<Vec<u8>>()));
}

/// Strings are built per column up to this size; a larger column falls back to one JS string
/// per value (V8 caps a string at about 2^29 characters).
const MAX_COLUMN_STRING: usize = 256 << 20;

macro_rules! check {
    ($e:expr) => {{
        let status = $e;
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                format!("N-API call failed: {}", stringify!($e)),
            )
            .into());
        }
    }};
}

mod shaped;
mod strings;

fn decode_error(e: DecodeError) -> Failure {
    Failure::client("DECODE_ERROR", e.to_string())
}

/// The N-API environment plus what conversion needs more than once.
struct Ctx {
    env: sys::napi_env,
    json_parse: Cell<Option<(sys::napi_value, sys::napi_value)>>,
    scratch: Cell<String>,
}

impl Ctx {
    fn new(env: sys::napi_env) -> Ctx {
        Ctx {
            env,
            json_parse: Cell::new(None),
            scratch: Cell::new(String::new()),
        }
    }

    unsafe fn null(&self) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_get_null(self.env, &mut out));
        Ok(out)
    }

    unsafe fn string(&self, s: &str) -> JsResult<sys::napi_value> {
        self.string_ascii(s, s.is_ascii())
    }

    /// [`Ctx::string`] when the caller already knows whether `s` is ASCII.
    unsafe fn string_ascii(&self, s: &str, ascii: bool) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        if ascii {
            check!(sys::napi_create_string_latin1(
                self.env,
                s.as_ptr().cast(),
                s.len(),
                &mut out
            ));
        } else {
            check!(sys::napi_create_string_utf8(
                self.env,
                s.as_ptr().cast(),
                s.len(),
                &mut out
            ));
        }
        Ok(out)
    }

    /// A string that takes `text` over (`ascii`: whether it is, as the caller knows): an
    /// ASCII text of at least [`EXTERNAL_MIN`] bytes becomes an external string whose
    /// characters stay in this allocation (V8's garbage collector then moves a small header
    /// instead of copying the characters), anything else is copied as by [`Ctx::string`].
    unsafe fn owned_string(&self, text: String, ascii: bool) -> JsResult<sys::napi_value> {
        let create = match external_latin1() {
            Some(create) if ascii && text.len() >= EXTERNAL_MIN => create,
            _ => return self.string_ascii(&text, ascii),
        };
        let bytes = Box::new(text.into_bytes());
        let (data, len) = (bytes.as_ptr().cast_mut(), bytes.len());
        let hint = Box::into_raw(bytes);
        let mut out = ptr::null_mut();
        let mut copied = false;
        let status = create(
            self.env,
            data.cast(),
            len,
            Some(free_text),
            hint.cast(),
            &mut out,
            &mut copied,
        );
        if status != sys::Status::napi_ok {
            // Not taken over: the text is still ours.
            drop(Box::from_raw(hint));
            return Err(napi::Error::new(
                napi::Status::from(status),
                "N-API call failed: node_api_create_external_string_latin1".to_string(),
            )
            .into());
        }
        // `copied`: Node made its own copy and has already called `free_text`.
        Ok(out)
    }

    unsafe fn buffer(&self, bytes: &[u8]) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        let mut data = ptr::null_mut();
        check!(sys::napi_create_buffer_copy(
            self.env,
            bytes.len(),
            bytes.as_ptr().cast(),
            &mut data,
            &mut out
        ));
        Ok(out)
    }

    unsafe fn array(&self, len: usize) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_create_array_with_length(self.env, len, &mut out));
        Ok(out)
    }

    unsafe fn set(&self, array: sys::napi_value, i: usize, v: sys::napi_value) -> JsResult<()> {
        let i =
            u32::try_from(i).map_err(|_| Failure::client("DECODE_ERROR", "result too large"))?;
        check!(sys::napi_set_element(self.env, array, i, v));
        Ok(())
    }

    /// `JSON.parse(text)`; a syntax error becomes DECODE_ERROR.
    unsafe fn parse_json(&self, text: &str) -> JsResult<sys::napi_value> {
        let (json, parse) = match self.json_parse.get() {
            Some(p) => p,
            None => {
                let mut global = ptr::null_mut();
                check!(sys::napi_get_global(self.env, &mut global));
                let mut json = ptr::null_mut();
                check!(sys::napi_get_named_property(
                    self.env,
                    global,
                    c"JSON".as_ptr(),
                    &mut json
                ));
                let mut parse = ptr::null_mut();
                check!(sys::napi_get_named_property(
                    self.env,
                    json,
                    c"parse".as_ptr(),
                    &mut parse
                ));
                self.json_parse.set(Some((json, parse)));
                (json, parse)
            }
        };
        let arg = self.string(text)?;
        let mut out = ptr::null_mut();
        let status = sys::napi_call_function(self.env, json, parse, 1, &arg, &mut out);
        if status != sys::Status::napi_ok {
            // Clear the pending SyntaxError; report ours.
            let mut pending = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(self.env, &mut pending);
            return Err(Failure::client("DECODE_ERROR", "cannot decode json value"));
        }
        Ok(out)
    }

    /// One scalar value as its own JS value.
    unsafe fn scalar(&self, s: Scalar, raw: &[u8]) -> JsResult<sys::napi_value> {
        let env = self.env;
        let mut out = ptr::null_mut();
        match s.output() {
            Output::Bool => check!(sys::napi_get_boolean(
                env,
                s.decode_bool(raw).map_err(decode_error)?,
                &mut out
            )),
            Output::I32 => check!(sys::napi_create_int32(
                env,
                s.decode_i32(raw).map_err(decode_error)?,
                &mut out
            )),
            Output::F64 => check!(sys::napi_create_double(
                env,
                s.decode_f64(raw).map_err(decode_error)?,
                &mut out
            )),
            Output::I64 => check!(sys::napi_create_bigint_int64(
                env,
                s.decode_i64(raw).map_err(decode_error)?,
                &mut out
            )),
            Output::Str => {
                let mut buf = self.scratch.take();
                buf.clear();
                let r = s.decode_str(raw, &mut buf).map_err(decode_error);
                let v = r.and_then(|()| self.string(&buf));
                self.scratch.set(buf);
                return v;
            }
            Output::Bytes => return self.buffer(&s.decode_bytes(raw).map_err(decode_error)?),
            Output::Json => {
                let text = s.decode_json(raw).map_err(decode_error)?;
                return self.parse_json(text);
            }
        }
        Ok(out)
    }

    /// One value of any column as its own JS value (`v` columns, array elements, and the
    /// row-object design).
    unsafe fn value(&self, d: Decoder, raw: Option<&[u8]>) -> JsResult<sys::napi_value> {
        let Some(raw) = raw else {
            return self.null();
        };
        match d {
            Decoder::Scalar(s) => self.scalar(s, raw),
            Decoder::Array { elem, elem_oid } => {
                let a = BinaryArray::parse(raw).map_err(decode_error)?;
                if a.element_oid() != elem_oid {
                    return Err(Failure::client(
                        "DECODE_ERROR",
                        format!(
                            "cannot decode array: element type {} where {elem_oid} was declared",
                            a.element_oid()
                        ),
                    ));
                }
                let outer = a.nest(
                    |e| match e {
                        None => self.null(),
                        Some(raw) => self.scalar(elem, raw),
                    },
                    |children| self.js_array(&children),
                )?;
                self.js_array(&outer)
            }
            Decoder::TextArray { delim } => {
                let a = parse_text_array(raw, delim).map_err(decode_error)?;
                let outer = a.nest(
                    |e| match e {
                        None => self.null(),
                        Some(s) => self.string(s),
                    },
                    |children| self.js_array(&children),
                )?;
                self.js_array(&outer)
            }
        }
    }

    unsafe fn js_array(&self, values: &[sys::napi_value]) -> JsResult<sys::napi_value> {
        let a = self.array(values.len())?;
        for (i, v) in values.iter().enumerate() {
            self.set(a, i, *v)?;
        }
        Ok(a)
    }
}

fn plan(result: &QueryResult, types: &Types) -> Vec<Decoder> {
    let columns = result.columns.as_deref().unwrap_or(&[]);
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Decoder::plan(
                c.type_oid,
                result.formats.get(i).copied().unwrap_or(0),
                types,
            )
        })
        .collect()
}

fn check_width(row_len: usize, columns: usize) -> JsResult<()> {
    if row_len != columns {
        return Err(Failure::client(
            "PROTOCOL_ERROR",
            format!("a row has {row_len} values for {columns} columns"),
        ));
    }
    Ok(())
}

/// One column's values, accumulated row by row.
enum Column {
    Bool(Vec<u8>),
    I32(Vec<i32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str {
        text: String,
        offsets: Vec<u32>,
        units: u32,
    },
    Bytes {
        data: Vec<u8>,
        offsets: Vec<u32>,
    },
    Json(String),
    /// Text as it came (text types, enums): a table while values repeat (`strings.rs`).
    Strings(strings::Strings),
    /// A json column of flat objects, member by member (`shaped.rs`).
    Shaped(shaped::Shaped),
    /// Built value by value on the JS thread from the kept frames.
    Values,
}

impl Column {
    fn kind(&self) -> u8 {
        match self {
            Column::Bool(_) => b'b',
            Column::I32(_) => b'i',
            Column::F64(_) => b'f',
            Column::I64(_) => b'g',
            Column::Str { .. } => b's',
            Column::Bytes { .. } => b'y',
            Column::Json(_) => b'j',
            Column::Strings(s) => s.kind(),
            Column::Shaped(_) => b'o',
            Column::Values => b'v',
        }
    }
}

/// UTF-16 code units of a UTF-8 string (what JS string offsets count).
fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.bytes()
        .map(|b| match b {
            0x80..=0xbf => 0, // continuation
            0xf0..=0xff => 2, // four bytes: a surrogate pair
            _ => 1,
        })
        .sum()
}

struct Builder {
    decoder: Decoder,
    column: Column,
    nulls: Option<Vec<u8>>,
}

impl Builder {
    fn new(decoder: Decoder, rows: usize) -> Builder {
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
                Output::Str if s == Scalar::Text => Column::Strings(strings::Strings::table(0)),
                Output::Str => Column::Str {
                    text: String::new(),
                    offsets: offsets(),
                    units: 0,
                },
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
    fn push(&mut self, row: usize, raw: Option<&[u8]>) -> JsResult<bool> {
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
            Column::Str {
                text,
                offsets,
                units,
            } => {
                if !null {
                    let start = text.len();
                    s.decode_str(raw, text).map_err(decode_error)?;
                    if !strings::add_units(units, text.get(start..).unwrap_or("")) {
                        return Err(Failure::client("DECODE_ERROR", "column too large"));
                    }
                }
                offsets.push(*units);
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
                let value = match null {
                    true => None,
                    false => Some(hyperion_codec::decode::text(raw).map_err(decode_error)?),
                };
                if !strings.push(value) {
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

    /// Turns a column of flat objects that met another value into JSON text, from its
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
            Column::Str { text, .. } | Column::Json(text) => text.len() > MAX_COLUMN_STRING,
            Column::Shaped(shaped) => shaped.text_len() > MAX_COLUMN_STRING,
            Column::Strings(strings) => strings.text_len() > MAX_COLUMN_STRING,
            Column::Bytes { data, .. } => data.len() > u32::MAX as usize / 2,
            _ => false,
        }
    }

    unsafe fn finish(
        self,
        ctx: &Ctx,
        index: usize,
        frames: &[DataRowBody],
    ) -> JsResult<(sys::napi_value, sys::napi_value)> {
        let nulls = match &self.nulls {
            Some(n) => typed(ctx.env, sys::TypedarrayType::uint8_array, n, 1)?,
            None => ctx.null()?,
        };
        let env = ctx.env;
        let value = match self.column {
            Column::Bool(v) => typed(env, sys::TypedarrayType::uint8_array, &v, 1)?,
            Column::I32(v) => typed(env, sys::TypedarrayType::int32_array, &v, 4)?,
            Column::F64(v) => typed(env, sys::TypedarrayType::float64_array, &v, 8)?,
            Column::I64(v) => typed(env, sys::TypedarrayType::bigint64_array, &v, 8)?,
            Column::Str {
                text,
                offsets,
                units,
            } => strings::text_pair(ctx, text, &offsets, units)?,
            Column::Bytes { data, offsets } => {
                let pair = ctx.array(2)?;
                ctx.set(pair, 0, ctx.buffer(&data)?)?;
                drop(data);
                ctx.set(
                    pair,
                    1,
                    typed(env, sys::TypedarrayType::uint32_array, &offsets, 4)?,
                )?;
                pair
            }
            Column::Json(mut text) => {
                text.push(']');
                let ascii = text.is_ascii();
                ctx.owned_string(text, ascii)?
            }
            Column::Shaped(shaped) => shaped.finish(ctx)?,
            Column::Strings(strings) => strings.finish(ctx)?,
            Column::Values => {
                let values = ctx.array(frames.len())?;
                for (i, row) in frames.iter().enumerate() {
                    let v = ctx.value(self.decoder, row.values().nth(index).flatten())?;
                    ctx.set(values, i, v)?;
                }
                values
            }
        };
        Ok((value, nulls))
    }
}

/// A typed array over a copy of `values` (`size` bytes each).
unsafe fn typed<T: Copy>(
    env: sys::napi_env,
    kind: sys::napi_typedarray_type,
    values: &[T],
    size: usize,
) -> JsResult<sys::napi_value> {
    debug_assert_eq!(std::mem::size_of::<T>(), size);
    let bytes = std::mem::size_of_val(values);
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    check!(sys::napi_create_arraybuffer(
        env,
        bytes,
        &mut data,
        &mut buffer
    ));
    if bytes > 0 {
        // SAFETY: `data` points to `bytes` writable bytes just allocated by V8, and `values`
        // is `bytes` long; they cannot overlap.
        ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
    }
    let mut out = ptr::null_mut();
    check!(sys::napi_create_typedarray(
        env,
        kind,
        values.len(),
        buffer,
        0,
        &mut out
    ));
    Ok(out)
}

/// Results of at most this many values come as finished row objects ([`objects`]): below
/// it, a typed array or string per column costs more than it saves (measured on W2).
const SMALL_RESULT: usize = 64;

/// Decodes `result` into columns, off the JS thread; a result of at most [`SMALL_RESULT`]
/// values is left for [`objects`] unless `columns` is set (every batch of a streamed result
/// has the same form).
pub fn decode(result: QueryResult, types: &Types, columns: bool) -> JsResult<Body> {
    let decoders = plan(&result, types);
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

impl crate::settle::Settled for Chunk {
    /// `{ n, kinds, names, cols, nulls, attempt, last, rest }` (see the module comment), or
    /// for a small result the array of row objects itself.
    unsafe fn into_js(self, env: sys::napi_env) -> JsResult<sys::napi_value> {
        let val = self;
        let ctx = Ctx::new(env);
        let c = match val.body {
            Body::Objects(result, decoders) => return objects(&ctx, &result, &decoders),
            Body::Columns(c) => c,
        };
        let columns = c.names.as_deref().unwrap_or(&[]);
        let kinds: String = c
            .builders
            .iter()
            .map(|b| char::from(b.column.kind()))
            .collect();
        let names = ctx.array(columns.len())?;
        for (i, col) in columns.iter().enumerate() {
            ctx.set(names, i, ctx.string(&col.name)?)?;
        }
        let cols = ctx.array(c.builders.len())?;
        let nulls = ctx.array(c.builders.len())?;
        for (i, b) in c.builders.into_iter().enumerate() {
            let (v, z) = b.finish(&ctx, i, &c.frames)?;
            ctx.set(cols, i, v)?;
            ctx.set(nulls, i, z)?;
        }
        let mut obj = ptr::null_mut();
        check!(sys::napi_create_object(env, &mut obj));
        let uint = |v: usize| -> JsResult<sys::napi_value> {
            let mut out = ptr::null_mut();
            check!(sys::napi_create_uint32(
                env,
                u32::try_from(v).unwrap_or(u32::MAX),
                &mut out
            ));
            Ok(out)
        };
        let mut last = ptr::null_mut();
        check!(sys::napi_get_boolean(env, val.last, &mut last));
        let rest = match val.rest {
            Some(r) => ToNapiValue::to_napi_value(env, r)?,
            None => ctx.null()?,
        };
        let props = [
            (c"n", uint(c.n)?),
            (c"kinds", ctx.string(&kinds)?),
            (c"names", names),
            (c"cols", cols),
            (c"nulls", nulls),
            (c"attempt", uint(val.attempt as usize)?),
            (c"last", last),
            (c"rest", rest),
        ];
        for (name, v) in props {
            check!(sys::napi_set_named_property(env, obj, name.as_ptr(), v));
        }
        Ok(obj)
    }
}

/// An array of row objects: one `napi_define_properties` per row, keys created once.
unsafe fn objects(
    ctx: &Ctx,
    result: &QueryResult,
    decoders: &[Decoder],
) -> JsResult<sys::napi_value> {
    let columns = result.columns.as_deref().unwrap_or(&[]);
    let mut descriptors = Vec::with_capacity(columns.len());
    for c in columns.iter() {
        descriptors.push(sys::napi_property_descriptor {
            utf8name: ptr::null(),
            name: ctx.string(&c.name)?,
            method: None,
            getter: None,
            setter: None,
            value: ptr::null_mut(),
            attributes: sys::PropertyAttributes::writable
                | sys::PropertyAttributes::enumerable
                | sys::PropertyAttributes::configurable,
            data: ptr::null_mut(),
        });
    }
    let array = ctx.array(result.rows.len())?;
    for (i, row) in result.rows.iter().enumerate() {
        check_width(row.len(), descriptors.len())?;
        for (d, (raw, decoder)) in descriptors.iter_mut().zip(row.values().zip(decoders)) {
            d.value = ctx.value(*decoder, raw)?;
        }
        let mut obj = ptr::null_mut();
        check!(sys::napi_create_object(ctx.env, &mut obj));
        check!(sys::napi_define_properties(
            ctx.env,
            obj,
            descriptors.len(),
            descriptors.as_ptr()
        ));
        ctx.set(array, i, obj)?;
    }
    Ok(array)
}
