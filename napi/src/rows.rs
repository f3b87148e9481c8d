//! A query's result to JS values, in one pass on the JS thread.
//!
//! Column keys are created once per result; each row is one object filled by a single
//! `napi_define_properties` call; each value is decoded in place from the DataRow frame by
//! the decoder chosen once for its column. (Issue 4 measures this against columnar arrays
//! assembled in JS; see the benchmark notes.)

use crate::errors::client_error;
use hyperion_codec::{decode, Decoder};
use hyperion_wire::QueryResult;
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use std::ptr;

/// A result on its way to JS.
pub struct Rows(pub QueryResult);

macro_rules! check {
    ($e:expr) => {{
        let status = $e;
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                format!("N-API call failed: {}", stringify!($e)),
            ));
        }
    }};
}

fn decode_error(e: decode::DecodeError) -> napi::Error {
    client_error("DECODE_ERROR", &e.to_string())
}

unsafe fn string(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check!(sys::napi_create_string_utf8(
        env,
        s.as_ptr().cast(),
        s.len(),
        &mut out
    ));
    Ok(out)
}

unsafe fn value(
    env: sys::napi_env,
    decoder: Decoder,
    raw: Option<&[u8]>,
) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    let Some(raw) = raw else {
        check!(sys::napi_get_null(env, &mut out));
        return Ok(out);
    };
    match decoder {
        Decoder::Bool => check!(sys::napi_get_boolean(
            env,
            decode::bool_binary(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::BoolText => check!(sys::napi_get_boolean(
            env,
            decode::bool_text(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::Int2 => check!(sys::napi_create_int32(
            env,
            decode::int2(raw).map_err(decode_error)?.into(),
            &mut out
        )),
        Decoder::Int4 => check!(sys::napi_create_int32(
            env,
            decode::int4(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::Oid => check!(sys::napi_create_uint32(
            env,
            decode::oid(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::IntText => check!(sys::napi_create_double(
            env,
            decode::int_text(raw).map_err(decode_error)? as f64,
            &mut out
        )),
        Decoder::Int8 => check!(sys::napi_create_bigint_int64(
            env,
            decode::int8(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::Int8Text => check!(sys::napi_create_bigint_int64(
            env,
            decode::int_text(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::Float4 => check!(sys::napi_create_double(
            env,
            decode::float4(raw).map_err(decode_error)?.into(),
            &mut out
        )),
        Decoder::Float8 => check!(sys::napi_create_double(
            env,
            decode::float8(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::FloatText => check!(sys::napi_create_double(
            env,
            decode::float_text(raw).map_err(decode_error)?,
            &mut out
        )),
        Decoder::Uuid => return string(env, &decode::uuid(raw).map_err(decode_error)?),
        Decoder::Text => return string(env, decode::text(raw).map_err(decode_error)?),
        Decoder::Bytea => {
            let mut data = ptr::null_mut();
            check!(sys::napi_create_buffer_copy(
                env,
                raw.len(),
                raw.as_ptr().cast(),
                &mut data,
                &mut out
            ));
        }
    }
    Ok(out)
}

impl ToNapiValue for Rows {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let result = val.0;
        let columns = result.columns.clone().unwrap_or_else(|| Vec::new().into());
        let decoders: Vec<Decoder> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Decoder::plan(c.type_oid, result.formats.get(i).copied().unwrap_or(0)))
            .collect();
        let mut descriptors = Vec::with_capacity(columns.len());
        for c in columns.iter() {
            descriptors.push(sys::napi_property_descriptor {
                utf8name: ptr::null(),
                name: string(env, &c.name)?,
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
        let mut array = ptr::null_mut();
        check!(sys::napi_create_array_with_length(
            env,
            result.rows.len(),
            &mut array
        ));
        for (i, row) in result.rows.iter().enumerate() {
            if row.len() != descriptors.len() {
                return Err(client_error(
                    "PROTOCOL_ERROR",
                    &format!(
                        "a row has {} values for {} columns",
                        row.len(),
                        descriptors.len()
                    ),
                ));
            }
            for (d, (raw, decoder)) in descriptors.iter_mut().zip(row.values().zip(&decoders)) {
                d.value = value(env, *decoder, raw)?;
            }
            let mut obj = ptr::null_mut();
            check!(sys::napi_create_object(env, &mut obj));
            check!(sys::napi_define_properties(
                env,
                obj,
                descriptors.len(),
                descriptors.as_ptr()
            ));
            check!(sys::napi_set_element(env, array, i as u32, obj));
        }
        Ok(array)
    }
}
