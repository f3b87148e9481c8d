//! The N-API side of a result: creating strings (external ones for large column texts), typed
//! arrays, arrays and single values on the JS thread.

use super::columns::decode_error;
use crate::errors::{Failure, JsResult};
use hyperion_codec::array::{parse_text_array, BinaryArray};
use hyperion_codec::{Decoder, Output, Scalar};
use napi::sys;
use std::cell::Cell;
use std::ptr;

/// Returns napi-rs's error for a failed N-API call.
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

/// Column texts of this many bytes or more become external strings ([`Ctx::owned_string`],
/// [`Ctx::owned_utf16`]); a smaller one is cheaper to copy than to track.
const EXTERNAL_MIN: usize = 1024;

/// `node_api_create_external_string_latin1` and `_utf16` (js_native_api.h): the same
/// signature but for the type of a character (`char`, here `u8`: the same in the C ABI).
type CreateExternal<C> = unsafe extern "C" fn(
    sys::napi_env,
    *mut C,
    usize,
    sys::napi_finalize,
    *mut std::os::raw::c_void,
    *mut sys::napi_value,
    *mut bool,
) -> sys::napi_status;

/// A symbol of the host, when it has it. `node_api_create_external_string_latin1` and
/// `_utf16` came in Node 18.18, 20.4 and later: looked up at run time rather than linked, so
/// that the addon still loads on a Node without them, and then copies.
fn host_symbol(name: &std::ffi::CStr) -> *mut std::os::raw::c_void {
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
    // SAFETY: dlsym with RTLD_DEFAULT only looks a name up in the loaded objects.
    unsafe { dlsym(RTLD_DEFAULT, name.as_ptr()) }
}

fn external_latin1() -> Option<CreateExternal<u8>> {
    use std::sync::OnceLock;
    static SYMBOL: OnceLock<Option<CreateExternal<u8>>> = OnceLock::new();
    *SYMBOL.get_or_init(|| {
        let f = host_symbol(c"node_api_create_external_string_latin1");
        // SAFETY: the symbol, when present, has this signature (js_native_api.h).
        (!f.is_null()).then(|| unsafe { std::mem::transmute(f) })
    })
}

fn external_utf16() -> Option<CreateExternal<u16>> {
    use std::sync::OnceLock;
    static SYMBOL: OnceLock<Option<CreateExternal<u16>>> = OnceLock::new();
    *SYMBOL.get_or_init(|| {
        let f = host_symbol(c"node_api_create_external_string_utf16");
        // SAFETY: the symbol, when present, has this signature (js_native_api.h).
        (!f.is_null()).then(|| unsafe { std::mem::transmute(f) })
    })
}

/// Finalizer of an external string: frees the text ([`Ctx::owned_string`],
/// [`Ctx::owned_utf16`]) handed over.
unsafe extern "C" fn free_text<C>(
    _env: sys::napi_env,
    _data: *mut std::os::raw::c_void,
    hint: *mut std::os::raw::c_void,
) {
    // SAFETY: `hint` is the `Box<Vec<C>>` leaked by `external`, finalized once.
    drop(Box::from_raw(hint.cast::<Vec<C>>()));
}

/// `text` handed to V8 as an external string by `create` (the N-API function `name`); if
/// the call fails, the text is dropped here.
unsafe fn external<C>(
    env: sys::napi_env,
    (create, name): (CreateExternal<C>, &str),
    text: Vec<C>,
) -> JsResult<sys::napi_value> {
    let text = Box::new(text);
    let (data, len) = (text.as_ptr().cast_mut(), text.len());
    let hint = Box::into_raw(text);
    let mut out = ptr::null_mut();
    let mut copied = false;
    let status = create(
        env,
        data,
        len,
        Some(free_text::<C>),
        hint.cast(),
        &mut out,
        &mut copied,
    );
    if status != sys::Status::napi_ok {
        // Not taken over: the text is still ours.
        drop(Box::from_raw(hint));
        return Err(napi::Error::new(
            napi::Status::from(status),
            format!("N-API call failed: {name}"),
        )
        .into());
    }
    // `copied`: Node made its own copy and has already called `free_text`.
    Ok(out)
}

/// The N-API environment plus what conversion needs more than once.
pub(super) struct Ctx {
    pub(super) env: sys::napi_env,
    /// Large ASCII texts may become external strings ([`Ctx::owned_string`]).
    pub(super) external: bool,
    json_parse: Cell<Option<(sys::napi_value, sys::napi_value)>>,
}

thread_local! {
    /// The text of one value on its way to a JS string ([`Ctx::scalar`]), kept across
    /// results: a point query's timestamp grew a fresh buffer three times (8, 16, 32 bytes).
    static SCRATCH: Cell<String> = const { Cell::new(String::new()) };
}

/// A scratch buffer larger than this (one long value) is not kept for the next value.
const SCRATCH_KEEP: usize = 4096;

impl Ctx {
    pub(super) fn new(env: sys::napi_env) -> Ctx {
        Ctx {
            env,
            external: true,
            json_parse: Cell::new(None),
        }
    }

    pub(super) unsafe fn uint(&self, v: u32) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_create_uint32(self.env, v, &mut out));
        Ok(out)
    }

    pub(super) unsafe fn null(&self) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_get_null(self.env, &mut out));
        Ok(out)
    }

    pub(super) unsafe fn string(&self, s: &str) -> JsResult<sys::napi_value> {
        self.string_ascii(s, s.is_ascii())
    }

    /// [`Ctx::string`] when the caller already knows whether `s` is ASCII.
    pub(super) unsafe fn string_ascii(&self, s: &str, ascii: bool) -> JsResult<sys::napi_value> {
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
    pub(super) unsafe fn owned_string(
        &self,
        text: String,
        ascii: bool,
    ) -> JsResult<sys::napi_value> {
        let create = match external_latin1() {
            Some(create) if self.external && ascii && text.len() >= EXTERNAL_MIN => create,
            _ => return self.string_ascii(&text, ascii),
        };
        external(
            self.env,
            (create, "node_api_create_external_string_latin1"),
            text.into_bytes(),
        )
    }

    /// A string that takes UTF-16 `text` over: external, as by [`Ctx::owned_string`], from
    /// [`EXTERNAL_MIN`] bytes on, else copied (V8 then decodes nothing).
    pub(super) unsafe fn owned_utf16(&self, text: Vec<u16>) -> JsResult<sys::napi_value> {
        match external_utf16() {
            Some(create) if self.external && text.len() * 2 >= EXTERNAL_MIN => external(
                self.env,
                (create, "node_api_create_external_string_utf16"),
                text,
            ),
            _ => {
                let mut out = ptr::null_mut();
                check!(sys::napi_create_string_utf16(
                    self.env,
                    text.as_ptr(),
                    text.len(),
                    &mut out
                ));
                Ok(out)
            }
        }
    }

    pub(super) unsafe fn buffer(&self, bytes: &[u8]) -> JsResult<sys::napi_value> {
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

    pub(super) unsafe fn undefined(&self) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_get_undefined(self.env, &mut out));
        Ok(out)
    }

    /// `f(...args)` with `this` undefined; a JS exception it throws is left pending (the
    /// settle path rejects the promise with it).
    pub(super) unsafe fn call(
        &self,
        f: sys::napi_value,
        args: &[sys::napi_value],
    ) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_call_function(
            self.env,
            self.undefined()?,
            f,
            args.len(),
            args.as_ptr(),
            &mut out
        ));
        Ok(out)
    }

    /// A strong reference to `value`, for a cache that outlives this call.
    pub(super) unsafe fn reference(&self, value: sys::napi_value) -> JsResult<sys::napi_ref> {
        let mut out = ptr::null_mut();
        check!(sys::napi_create_reference(self.env, value, 1, &mut out));
        Ok(out)
    }

    /// The value a strong reference made by [`Ctx::reference`] holds.
    pub(super) unsafe fn reference_value(&self, r: sys::napi_ref) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_get_reference_value(self.env, r, &mut out));
        if out.is_null() {
            return Err(napi::Error::from_reason("a cached value is gone").into());
        }
        Ok(out)
    }

    pub(super) unsafe fn array(&self, len: usize) -> JsResult<sys::napi_value> {
        let mut out = ptr::null_mut();
        check!(sys::napi_create_array_with_length(self.env, len, &mut out));
        Ok(out)
    }

    pub(super) unsafe fn set(
        &self,
        array: sys::napi_value,
        i: usize,
        v: sys::napi_value,
    ) -> JsResult<()> {
        let i =
            u32::try_from(i).map_err(|_| Failure::client("DECODE_ERROR", "result too large"))?;
        check!(sys::napi_set_element(self.env, array, i, v));
        Ok(())
    }

    /// `JSON.parse(text)`; a syntax error becomes DECODE_ERROR.
    pub(super) unsafe fn parse_json(&self, text: &str) -> JsResult<sys::napi_value> {
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
    pub(super) unsafe fn scalar(&self, s: Scalar, raw: &[u8]) -> JsResult<sys::napi_value> {
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
                let mut buf = SCRATCH.take();
                buf.clear();
                let r = s.decode_str(raw, &mut buf).map_err(decode_error);
                let v = r.and_then(|()| self.string(&buf));
                if buf.capacity() <= SCRATCH_KEEP {
                    SCRATCH.set(buf);
                }
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
    pub(super) unsafe fn value(&self, d: Decoder, raw: Option<&[u8]>) -> JsResult<sys::napi_value> {
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

    pub(super) unsafe fn js_array(&self, values: &[sys::napi_value]) -> JsResult<sys::napi_value> {
        let a = self.array(values.len())?;
        for (i, v) in values.iter().enumerate() {
            self.set(a, i, *v)?;
        }
        Ok(a)
    }
}

/// A typed array over a copy of `values` (`size` bytes each).
pub(super) unsafe fn typed<T: Copy>(
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
