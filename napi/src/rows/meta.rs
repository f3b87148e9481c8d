//! What a result says besides its rows: the command tag (`command`, `rowCount`) and the
//! columns (`fields`), which `client.js` shows as non-enumerable properties of the rows
//! array, and the notices the server sent while running the statement.
//!
//! `fields` is the same frozen array for every result of one prepared statement: its
//! columns are one `Arc` per statement and connection, and the array made for it is cached
//! under that `Arc` (held, so its address cannot be reused while cached). Building a fresh
//! array of objects per query costs more than the rest of a point query's conversion.

use super::js::Ctx;
use crate::errors::JsResult;
use hyperion_wire::backend::{ErrorFields, Field};
use hyperion_wire::QueryResult;
use napi::sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;

/// A result's tag, columns and notices, taken out of it before its rows are decoded.
pub struct Meta {
    tag: Option<String>,
    columns: Option<Arc<[Field]>>,
    formats: Arc<[i16]>,
    pub(crate) notices: Vec<ErrorFields>,
    /// The configuration index of the host that ran it, when the caller traces.
    pub host: Option<u32>,
}

impl Meta {
    pub fn take(result: &mut QueryResult) -> Meta {
        Meta {
            tag: result.command_tag.take(),
            columns: result.columns.clone(),
            formats: result.formats.clone(),
            notices: std::mem::take(&mut result.notices),
            host: None,
        }
    }

    /// The command (`UPDATE`) and the row count (`UPDATE 5` -> 5; `INSERT 0 5` -> 5); the
    /// count is `None` for a tag without one (`CREATE TABLE`).
    fn command(&self) -> (Option<&str>, Option<f64>) {
        let Some(tag) = self.tag.as_deref() else {
            return (None, None);
        };
        let command = tag.split(' ').next().unwrap_or(tag);
        let count = tag
            .rsplit_once(' ')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .map(|n| n as f64);
        (Some(command), count)
    }

    /// `[command, rowCount, fields]` as JS values.
    pub(super) unsafe fn values(&self, ctx: &Ctx) -> JsResult<[sys::napi_value; 3]> {
        let (command, count) = self.command();
        let command = match command {
            Some(c) => ctx.string(c)?,
            None => ctx.null()?,
        };
        let count = match count {
            Some(n) => {
                let mut out = ptr::null_mut();
                check!(sys::napi_create_double(ctx.env, n, &mut out));
                out
            }
            None => ctx.null()?,
        };
        Ok([command, count, self.fields(ctx)?])
    }

    unsafe fn fields(&self, ctx: &Ctx) -> JsResult<sys::napi_value> {
        let Some(columns) = &self.columns else {
            return ctx.array(0);
        };
        let key = (
            ctx.env as usize,
            Arc::as_ptr(columns) as *const Field as usize,
        );
        let cached = FIELDS.with(|f| {
            f.borrow()
                .get(&key)
                .filter(|c| c.formats == self.formats)
                .map(|c| c.array)
        });
        if let Some(r) = cached {
            let mut out = ptr::null_mut();
            check!(sys::napi_get_reference_value(ctx.env, r, &mut out));
            if !out.is_null() {
                return Ok(out);
            }
        }
        let array = self.make_fields(ctx, columns)?;
        let mut r = ptr::null_mut();
        check!(sys::napi_create_reference(ctx.env, array, 1, &mut r));
        FIELDS.with(|f| {
            let mut f = f.borrow_mut();
            if f.len() >= MAX_CACHED {
                for (_, old) in f.drain() {
                    // SAFETY: JS thread; every cached reference belongs to its env (the key).
                    sys::napi_delete_reference(old.env, old.array);
                }
            }
            if let Some(old) = f.insert(
                key,
                Cached {
                    _columns: columns.clone(),
                    formats: self.formats.clone(),
                    env: ctx.env,
                    array: r,
                },
            ) {
                sys::napi_delete_reference(old.env, old.array);
            }
        });
        Ok(array)
    }

    /// `[{ name, typeOid, format }]`, frozen (the array is shared by later results).
    unsafe fn make_fields(&self, ctx: &Ctx, columns: &[Field]) -> JsResult<sys::napi_value> {
        let array = ctx.array(columns.len())?;
        let (text, binary) = (ctx.string("text")?, ctx.string("binary")?);
        for (i, c) in columns.iter().enumerate() {
            let mut oid = ptr::null_mut();
            check!(sys::napi_create_uint32(ctx.env, c.type_oid, &mut oid));
            let format = if self.formats.get(i).copied().unwrap_or(0) == 1 {
                binary
            } else {
                text
            };
            let mut o = ptr::null_mut();
            check!(sys::napi_create_object(ctx.env, &mut o));
            for (name, v) in [
                (c"name", ctx.string(&c.name)?),
                (c"typeOid", oid),
                (c"format", format),
            ] {
                check!(sys::napi_set_named_property(ctx.env, o, name.as_ptr(), v));
            }
            check!(sys::napi_object_freeze(ctx.env, o));
            ctx.set(array, i, o)?;
        }
        check!(sys::napi_object_freeze(ctx.env, array));
        Ok(array)
    }
}

/// Cached `fields` arrays at most; past it the cache starts over.
const MAX_CACHED: usize = 512;

struct Cached {
    /// Held so that the key's address stays this statement's.
    _columns: Arc<[Field]>,
    formats: Arc<[i16]>,
    env: sys::napi_env,
    array: sys::napi_ref,
}

thread_local! {
    /// Per JS thread: an env and its references are only used on their own thread.
    static FIELDS: RefCell<HashMap<(usize, usize), Cached>> = RefCell::new(HashMap::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tag: &str) -> Meta {
        Meta {
            tag: Some(tag.into()),
            columns: None,
            formats: Arc::from([]),
            notices: Vec::new(),
            host: None,
        }
    }

    #[test]
    fn command_and_count_come_from_the_tag() {
        assert_eq!(meta("UPDATE 5").command(), (Some("UPDATE"), Some(5.0)));
        assert_eq!(meta("INSERT 0 3").command(), (Some("INSERT"), Some(3.0)));
        assert_eq!(meta("SELECT 0").command(), (Some("SELECT"), Some(0.0)));
        assert_eq!(meta("CREATE TABLE").command(), (Some("CREATE"), None));
        assert_eq!(meta("BEGIN").command(), (Some("BEGIN"), None));
    }
}
