//! Errors on their way to JS, made into `Error` objects here, where the rejection (or the
//! throw) is created: `.code` is the SQLSTATE or a client code, the server's fields are set
//! when the server sent them, and the query text is attached as a non-enumerable `.query`
//! (README, Errors). `client.js` passes them on untouched.
//!
//! Promises are rejected with [`Failure::into_js`] (settle.rs). A synchronous throw must go
//! through napi-rs's `napi::Error`: [`Failure::into_napi`] wraps the finished JS object in
//! one, the only conversion between the two.

use napi::{sys, Env, JsUnknown, NapiValue};
use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;

/// What conversions to JS return (an error of ours, or napi-rs's).
pub type JsResult<T> = Result<T, Failure>;

/// An error for JS, with the query it belongs to (if any).
pub struct Failure(Box<Inner>);

struct Inner {
    cause: Cause,
    query: Option<Arc<str>>,
}

enum Cause {
    /// The pool's, the connection's or the server's.
    Pool(hyperion_pool::Error),
    /// One of this crate's client codes (`INVALID_PARAMETER`, `DECODE_ERROR`, ...).
    Client { code: &'static str, message: String },
    /// napi-rs's own (a failed N-API call or conversion): crosses as napi-rs makes it, with
    /// no code or query of ours, as it always has.
    Napi(napi::Error),
}

impl Failure {
    /// Notices the server sent for the failed statement before its error (`onNotice`).
    pub fn notices(&self) -> Vec<hyperion_wire::backend::ErrorFields> {
        match &self.0.cause {
            Cause::Pool(e) => e.notices().to_vec(),
            _ => Vec::new(),
        }
    }

    /// A client-side error with a code.
    pub fn client(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(Cause::Client {
            code,
            message: message.into(),
        })
    }

    fn new(cause: Cause) -> Failure {
        Failure(Box::new(Inner { cause, query: None }))
    }

    /// Attaches the query text, unless one is attached already.
    pub fn with_query(mut self, query: &Arc<str>) -> Failure {
        if self.0.query.is_none() {
            self.0.query = Some(query.clone());
        }
        self
    }

    /// The JS `Error`. On the JS thread only, with its env.
    pub unsafe fn into_js(self, env: sys::napi_env) -> napi::Result<sys::napi_value> {
        let Inner { cause, query } = *self.0;
        match cause {
            Cause::Napi(e) => Ok(napi::JsError::from(e).into_value(env)),
            Cause::Pool(e) => error(env, e.code(), &e.to_string(), e.as_db(), query),
            Cause::Client { code, message } => error(env, code, &message, None, query),
        }
    }

    /// For a synchronous throw from a napi-rs function: the JS `Error` inside a
    /// `napi::Error`, which napi-rs throws as it is.
    pub fn throw(self, env: &Env) -> napi::Error {
        // SAFETY: an `Env` is only handed to code running on the JS thread.
        unsafe { self.into_napi(env.raw()) }
    }

    /// [`Failure::throw`] with a raw env, on the JS thread only.
    pub unsafe fn into_napi(self, env: sys::napi_env) -> napi::Error {
        match self.into_js(env) {
            Ok(value) => napi::Error::from(JsUnknown::from_raw_unchecked(env, value)),
            Err(e) => e,
        }
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.cause {
            Cause::Pool(e) => write!(f, "{}: {e}", e.code()),
            Cause::Client { code, message } => write!(f, "{code}: {message}"),
            Cause::Napi(e) => write!(f, "{e}"),
        }
    }
}

impl From<hyperion_pool::Error> for Failure {
    fn from(e: hyperion_pool::Error) -> Failure {
        Failure::new(Cause::Pool(e))
    }
}

impl From<napi::Error> for Failure {
    fn from(e: napi::Error) -> Failure {
        Failure::new(Cause::Napi(e))
    }
}

/// `new Error(message)` with `.code`, the server's fields and the query (module comment).
unsafe fn error(
    env: sys::napi_env,
    code: &str,
    message: &str,
    db: Option<&hyperion_wire::DbError>,
    query: Option<Arc<str>>,
) -> napi::Result<sys::napi_value> {
    let js = JsBuilder { env };
    let mut error = ptr::null_mut();
    check(sys::napi_create_error(
        env,
        ptr::null_mut(),
        js.string(message)?,
        &mut error,
    ))?;
    // Set in this order, enumerable, as `client.js` once set them on a `new Error`.
    js.set(error, c"code", code)?;
    if let Some(d) = db {
        for (name, value) in server_fields(d) {
            if let Some(v) = value {
                js.set(error, name, v)?;
            }
        }
        if let Some(hint) = pooler_hint(d) {
            js.set(error, c"hint", hint)?;
        }
    }
    if let Some(q) = query {
        // Non-enumerable, read-only, not configurable, as `Object.defineProperty(err,
        // 'query', { value })` made it.
        let descriptor = sys::napi_property_descriptor {
            utf8name: c"query".as_ptr(),
            name: ptr::null_mut(),
            method: None,
            getter: None,
            setter: None,
            value: js.string(&q)?,
            attributes: sys::PropertyAttributes::default,
            data: ptr::null_mut(),
        };
        check(sys::napi_define_properties(env, error, 1, &descriptor))?;
    }
    Ok(error)
}

/// Our own hint for a prepared statement of ours that the server does not have, or has
/// twice: what a pooler in transaction mode (PgBouncer) does to named statements, since it
/// hands each transaction whichever server connection is free.
fn pooler_hint(d: &hyperion_wire::DbError) -> Option<&'static str> {
    let ours = d.message.starts_with("prepared statement \"h");
    (d.hint.is_none() && ours && matches!(d.code.as_str(), "26000" | "42P05")).then_some(
        "the server connection's prepared statements are not this client's: behind a pooler in transaction mode (PgBouncer), use prepare: false",
    )
}

/// The server's fields of an error or notice as JS property names and values, in the order
/// they are set (after `code`).
pub(crate) fn server_fields(d: &hyperion_wire::DbError) -> [(&'static CStr, Option<&str>); 15] {
    [
        (c"severity", Some(d.severity())),
        (c"detail", d.detail.as_deref()),
        (c"hint", d.hint.as_deref()),
        (c"position", d.position.as_deref()),
        (c"internalPosition", d.internal_position.as_deref()),
        (c"internalQuery", d.internal_query.as_deref()),
        (c"where", d.where_.as_deref()),
        (c"schema", d.schema.as_deref()),
        (c"table", d.table.as_deref()),
        (c"column", d.column.as_deref()),
        (c"dataType", d.data_type.as_deref()),
        (c"constraint", d.constraint.as_deref()),
        (c"file", d.file.as_deref()),
        (c"line", d.line.as_deref()),
        (c"routine", d.routine.as_deref()),
    ]
}

fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::from(status),
            "cannot create the error object",
        ))
    }
}

struct JsBuilder {
    env: sys::napi_env,
}

impl JsBuilder {
    unsafe fn string(&self, s: &str) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        check(sys::napi_create_string_utf8(
            self.env,
            s.as_ptr().cast(),
            s.len(),
            &mut out,
        ))?;
        Ok(out)
    }

    unsafe fn set(&self, object: sys::napi_value, name: &CStr, value: &str) -> napi::Result<()> {
        let value = self.string(value)?;
        check(sys::napi_set_named_property(
            self.env,
            object,
            name.as_ptr(),
            value,
        ))
    }
}
