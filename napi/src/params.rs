//! JS parameter values to [`Param`]s, read on the JS thread before the query is spawned.

use crate::errors::{Failure, JsResult};
use hyperion_codec::{bind_format, encode_value, Param};
use hyperion_pool::TypeCache;
use hyperion_wire::{Format, IsNull, Params};
use napi::{
    Env, JsBigInt, JsBoolean, JsBuffer, JsDate, JsFunction, JsNumber, JsObject, JsString,
    JsUnknown, ValueType,
};
use std::sync::Arc;

/// The parameters of one query, and the pool's types to encode them for (a domain binds as
/// its base type, a JS array as a PostgreSQL array when the target is one).
pub struct JsParams {
    pub values: Vec<Param>,
    pub types: Arc<TypeCache>,
}

impl Params for JsParams {
    fn count(&self) -> usize {
        self.values.len()
    }

    fn format(&self, index: usize, type_oid: u32) -> Format {
        match self.values.get(index) {
            Some(p) => match self
                .types
                .with_for(type_oid, |t| bind_format(p, type_oid, t))
            {
                hyperion_codec::Format::Binary => Format::Binary,
                hyperion_codec::Format::Text => Format::Text,
            },
            None => Format::Text,
        }
    }

    fn encode(
        &self,
        index: usize,
        type_oid: u32,
        buf: &mut bytes::BytesMut,
    ) -> Result<IsNull, String> {
        let p = self.values.get(index).unwrap_or(&Param::Null);
        match self
            .types
            .with_for(type_oid, |t| encode_value(p, type_oid, t, buf))
        {
            Ok(hyperion_codec::IsNull::Yes) => Ok(IsNull::Yes),
            Ok(hyperion_codec::IsNull::No) => Ok(IsNull::No),
            Err(e) => Err(e.0),
        }
    }
}

fn bigint_to_i128(mut b: JsBigInt) -> JsResult<i128> {
    let (negative, words) = b.get_words()?;
    let too_big = || {
        Failure::client(
            "INVALID_PARAMETER",
            "BigInt parameter does not fit in 128 bits",
        )
    };
    if words.len() > 2 {
        return Err(too_big());
    }
    let lo = u128::from(words.first().copied().unwrap_or(0));
    let hi = u128::from(words.get(1).copied().unwrap_or(0));
    let magnitude = lo | (hi << 64);
    if negative {
        if magnitude > i128::MAX as u128 + 1 {
            return Err(too_big());
        }
        Ok((magnitude as i128).wrapping_neg())
    } else {
        i128::try_from(magnitude).map_err(|_| too_big())
    }
}

/// JS arrays nest at most this deep (PostgreSQL arrays have at most 6 dimensions; JSON gets
/// more room). Bounds the recursion, so an array that contains itself is an error, not a
/// stack overflow.
const MAX_NESTING: usize = 64;

/// The most array elements one parameter may hold, its nested arrays' included: PostgreSQL's
/// own limit for an array (`MaxArraySize`). A sparse `new Array(2 ** 32 - 1)` costs nothing
/// in JS; read element by element it held the JS thread for minutes and took all memory.
const MAX_ELEMENTS: u64 = 134_217_727;

/// Reads one JS value.
pub fn from_js(env: &Env, index: usize, v: JsUnknown) -> JsResult<Param> {
    let mut left = MAX_ELEMENTS;
    read(env, index, v, 0, &mut left)
}

fn read(env: &Env, index: usize, v: JsUnknown, depth: usize, left: &mut u64) -> JsResult<Param> {
    Ok(match v.get_type()? {
        ValueType::Undefined | ValueType::Null => Param::Null,
        ValueType::Boolean => Param::Bool(unsafe { v.cast::<JsBoolean>() }.get_value()?),
        ValueType::Number => Param::Number(unsafe { v.cast::<JsNumber>() }.get_double()?),
        ValueType::BigInt => Param::BigInt(bigint_to_i128(unsafe { v.cast::<JsBigInt>() })?),
        ValueType::String => Param::Text(with_utf8(env, &unsafe { v.cast::<JsString>() }, |s| {
            s.to_owned()
        })?),
        ValueType::Object => {
            if v.is_buffer()? {
                Param::Bytes(unsafe { v.cast::<JsBuffer>() }.into_value()?.to_vec())
            } else if v.is_date()? {
                Param::Date(unsafe { v.cast::<JsDate>() }.value_of()?)
            } else if v.is_array()? {
                let obj = unsafe { v.cast::<JsObject>() };
                if depth >= MAX_NESTING {
                    return Err(Failure::client(
                        "INVALID_PARAMETER",
                        format!(
                            "parameter ${} nests arrays more than {MAX_NESTING} deep",
                            index + 1
                        ),
                    ));
                }
                let len = obj.get_array_length()?;
                *left = left.checked_sub(u64::from(len)).ok_or_else(|| {
                    Failure::client(
                        "INVALID_PARAMETER",
                        format!(
                            "parameter ${} holds more than {MAX_ELEMENTS} array elements \
                             (PostgreSQL's limit for an array)",
                            index + 1
                        ),
                    )
                })?;
                // The length is the caller's (a sparse `new Array(1e9)` is cheap in JS), so
                // nothing is reserved up front beyond a small amount.
                let mut items = Vec::with_capacity((len as usize).min(1024));
                for i in 0..len {
                    items.push(read(
                        env,
                        index,
                        obj.get_element::<JsUnknown>(i)?,
                        depth + 1,
                        left,
                    )?);
                }
                Param::Array(items)
            } else {
                // Plain objects are JSON.
                let json: JsObject = env.get_global()?.get_named_property("JSON")?;
                let stringify: JsFunction = json.get_named_property("stringify")?;
                // JSON.stringify throws for a BigInt or a cycle: that is a bad parameter
                // (the exception is cleared and replaced by ours).
                let s = stringify.call(Some(&json), &[v]).map_err(|e| {
                    let mut pending = std::ptr::null_mut();
                    // SAFETY: a valid env on the JS thread; the out pointer is ours.
                    unsafe {
                        napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut pending)
                    };
                    Failure::client(
                        "INVALID_PARAMETER",
                        format!(
                            "parameter ${} cannot be serialized as JSON: {}",
                            index + 1,
                            e.reason
                        ),
                    )
                })?;
                if s.get_type()? != ValueType::String {
                    return Err(Failure::client(
                        "INVALID_PARAMETER",
                        format!("parameter ${} cannot be serialized as JSON", index + 1),
                    ));
                }
                Param::Json(unsafe { s.cast::<JsString>() }.into_utf8()?.into_owned()?)
            }
        }
        other => {
            return Err(Failure::client(
                "INVALID_PARAMETER",
                format!("parameter ${} has unsupported type {other}", index + 1),
            ))
        }
    })
}

thread_local! {
    /// Where [`with_utf8`] has V8 write a string of up to 4 KB.
    static UTF8_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 4096]);
}

/// `f` on a JS string's UTF-8, read in one pass when it fits the thread's buffer. napi-rs's
/// conversions measure the string, then copy it into a fresh allocation (and a statement's
/// text was copied once more into its `Arc<str>`): about 1% of a point query's time.
fn with_utf8<R>(env: &Env, s: &JsString, f: impl FnOnce(&str) -> R) -> napi::Result<R> {
    use napi::NapiRaw;
    // SAFETY: the raw handle of a live JS value, used on this thread during this call.
    let (env, value) = (env.raw(), unsafe { s.raw() });
    let write = |buf: &mut Vec<u8>, len: &mut usize| {
        // SAFETY: JS thread, live env and value; `buf` has `buf.len()` writable bytes.
        let status = unsafe {
            napi::sys::napi_get_value_string_utf8(
                env,
                value,
                buf.as_mut_ptr().cast(),
                buf.len(),
                len,
            )
        };
        napi::check_status!(status, "expected a string")
    };
    UTF8_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut len = 0usize;
        write(&mut buf, &mut len)?;
        // V8 writes whole characters only, up to `buf.len() - 1` bytes: within a
        // character's length of the end, the text may have been cut.
        if len + 4 < buf.len() {
            return Ok(f(utf8(&buf[..len])?));
        }
        // Longer: measured, then read into a buffer of its own (the thread's stays 4 KB:
        // one large parameter does not keep its size for the life of the thread).
        // SAFETY: as above; a null buffer asks for the length.
        let status = unsafe {
            napi::sys::napi_get_value_string_utf8(env, value, std::ptr::null_mut(), 0, &mut len)
        };
        napi::check_status!(status, "expected a string")?;
        let mut long = vec![0u8; len + 1];
        write(&mut long, &mut len)?;
        Ok(f(utf8(&long[..len])?))
    })
}

/// What V8 wrote: valid UTF-8 (it replaces a lone surrogate while writing).
fn utf8(buf: &[u8]) -> napi::Result<&str> {
    std::str::from_utf8(buf).map_err(|_| napi::Error::from_reason("a string is not valid UTF-8"))
}

/// A statement's text (see [`with_utf8`]).
pub fn read_sql(env: &Env, sql: &JsString) -> napi::Result<Arc<str>> {
    with_utf8(env, sql, |s| {
        RECENT_SQL.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(i) = recent.iter().position(|r| **r == *s) {
                // Most recent first: a service's few hot statements stay at the front.
                recent[..=i].rotate_right(1);
                return recent[0].clone();
            }
            let text: Arc<str> = Arc::from(s);
            if s.len() <= RECENT_SQL_MAX_LEN {
                if recent.len() == RECENT_SQL_KEPT {
                    recent.pop();
                }
                recent.insert(0, text.clone());
            }
            text
        })
    })
}

/// How many statement texts [`read_sql`] keeps, and the longest it keeps.
const RECENT_SQL_KEPT: usize = 8;
const RECENT_SQL_MAX_LEN: usize = 1024;

thread_local! {
    /// The texts of the last statements read, most recent first: a text read again is the
    /// same `Arc` (a reference count) rather than an allocation and a copy per query.
    static RECENT_SQL: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
}
