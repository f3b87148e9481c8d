//! A chunk of a result laid out as the object `rows.js` reads (the module comment of
//! `rows.rs`), made on the JS thread; a small result as finished row objects.

use super::columns::{check_width, Body, Builder, Column};
use super::js::{typed, Ctx};
use super::meta::Meta;
use crate::errors::JsResult;
use hyperion_codec::Decoder;
use hyperion_wire::backend::DataRowBody;
use hyperion_wire::QueryResult;
use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use smallvec::SmallVec;
use std::ptr;

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
    /// The command tag, columns and notices, on the last chunk.
    pub meta: Option<Meta>,
    /// Large texts may become external strings: they pay off for results that live long
    /// (a query's), not for a stream's batches, which die young: V8 frees external strings
    /// only in its major collections, so a long stream would hold them by the hundred.
    pub external_strings: bool,
    /// Becomes the finished rows in JS (see `stream::Form::finish`): a small result is that
    /// already; a chunk in columns goes through `rows.js`'s `rowsOf`.
    pub finish: bool,
}

/// One column's JS value and NULL map. A `Values` column's array was filled by
/// [`values_columns`] and comes in as `values`.
unsafe fn finish(
    ctx: &Ctx,
    b: Builder,
    values: Option<sys::napi_value>,
) -> JsResult<(sys::napi_value, sys::napi_value)> {
    let nulls = match &b.nulls {
        Some(n) => typed(ctx.env, sys::TypedarrayType::uint8_array, n, 1)?,
        None => ctx.null()?,
    };
    let env = ctx.env;
    let value = match b.column {
        Column::Bool(v) => typed(env, sys::TypedarrayType::uint8_array, &v, 1)?,
        Column::I32(v) => typed(env, sys::TypedarrayType::int32_array, &v, 4)?,
        Column::F64(v) => typed(env, sys::TypedarrayType::float64_array, &v, 8)?,
        Column::I64(v) => typed(env, sys::TypedarrayType::bigint64_array, &v, 8)?,
        Column::Str(text) => text.finish(ctx)?,
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
        Column::Values => match values {
            Some(v) => v,
            None => ctx.array(0)?,
        },
    };
    Ok((value, nulls))
}

/// The arrays of the columns built value by value (`Values`), filled in one walk over each
/// kept row: every value goes to its column's array as the row's values are read.
unsafe fn values_columns(
    ctx: &Ctx,
    builders: &[Builder],
    frames: &[DataRowBody],
) -> JsResult<Vec<Option<sys::napi_value>>> {
    let mut arrays = Vec::with_capacity(builders.len());
    for b in builders {
        arrays.push(match b.column {
            Column::Values => Some(ctx.array(frames.len())?),
            _ => None,
        });
    }
    if arrays.iter().all(Option::is_none) {
        return Ok(arrays);
    }
    for (r, row) in frames.iter().enumerate() {
        for ((array, b), raw) in arrays.iter().zip(builders).zip(row.values()) {
            if let Some(array) = *array {
                ctx.set(array, r, ctx.value(b.decoder, raw)?)?;
            }
        }
    }
    Ok(arrays)
}

impl crate::settle::Settled for Chunk {
    fn take_notices(&mut self) -> Vec<hyperion_wire::backend::ErrorFields> {
        self.meta
            .as_mut()
            .map(|m| std::mem::take(&mut m.notices))
            .unwrap_or_default()
    }

    /// `{ n, kinds, names, cols, nulls, attempt, last, rest }` plus, on the last chunk,
    /// `command`, `rowCount` and `fields` (see the module comment), or for a small result
    /// `[row objects, command, rowCount, fields]`.
    unsafe fn into_js(self, env: sys::napi_env) -> JsResult<sys::napi_value> {
        let val = self;
        let mut ctx = Ctx::new(env);
        ctx.external = val.external_strings;
        let c = match val.body {
            Body::Objects(mut result, decoders) => {
                let (n, values) = small_values(&ctx, &result, &decoders)?;
                let meta = match val.meta {
                    Some(meta) => meta,
                    None => Meta::take(&mut result),
                };
                return meta.small_rows(&ctx, n, &values);
            }
            Body::Columns(c) => c,
        };
        let columns = c.names.as_deref().unwrap_or(&[]);
        let kinds: String = c
            .builders
            .iter()
            .map(|b| b.column.kind().letter())
            .collect();
        let names = ctx.array(columns.len())?;
        for (i, col) in columns.iter().enumerate() {
            ctx.set(names, i, ctx.string(&col.name)?)?;
        }
        let cols = ctx.array(c.builders.len())?;
        let nulls = ctx.array(c.builders.len())?;
        let values = values_columns(&ctx, &c.builders, &c.frames)?;
        drop(c.frames);
        for (i, (b, values)) in c.builders.into_iter().zip(values).enumerate() {
            let (v, z) = finish(&ctx, b, values)?;
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
        if let Some(meta) = &val.meta {
            let [command, count, fields] = meta.values(&ctx)?;
            for (name, v) in [
                (c"command", command),
                (c"rowCount", count),
                (c"fields", fields),
            ] {
                check!(sys::napi_set_named_property(env, obj, name.as_ptr(), v));
            }
            if let Some(h) = meta.host {
                check!(sys::napi_set_named_property(
                    env,
                    obj,
                    c"host".as_ptr(),
                    ctx.uint(h)?
                ));
            }
        }
        if val.finish {
            return super::meta::rows_of(&ctx, obj);
        }
        Ok(obj)
    }
}

/// A small result's row count and its values in row order, for [`Meta::small_rows`].
unsafe fn small_values(
    ctx: &Ctx,
    result: &QueryResult,
    decoders: &[Decoder],
) -> JsResult<(usize, SmallVec<[sys::napi_value; 64]>)> {
    let mut values = SmallVec::with_capacity(result.rows.len() * decoders.len());
    for row in result.rows.iter() {
        check_width(row.len(), decoders.len())?;
        for (raw, decoder) in row.values().zip(decoders) {
            values.push(ctx.value(*decoder, raw)?);
        }
    }
    Ok((result.rows.len(), values))
}
