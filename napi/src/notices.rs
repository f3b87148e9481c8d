//! The `onNotice` hook: what the server said besides the result (`RAISE NOTICE`, a
//! `WARNING`), as `{ severity, code, message, detail, hint, ... }` (the fields an error
//! carries), delivered on the JS thread just before the query's promise settles.
//!
//! A notice changes nothing about the query's outcome: the "canceling wait for synchronous
//! replication" warning still makes a COMMIT `IN_DOUBT` (the pool reads it from the result),
//! whether or not a hook sees it.

use crate::errors::server_fields;
use hyperion_wire::backend::ErrorFields;
use napi::sys;
use std::ptr;

/// Calls `hook` (null: none) with each notice. What it throws is dropped (`client.js` also
/// wraps the user's hook so).
pub unsafe fn deliver(env: sys::napi_env, hook: sys::napi_value, notices: Vec<ErrorFields>) {
    if hook.is_null() {
        return;
    }
    for n in &notices {
        let Some(object) = notice_object(env, n) else {
            continue;
        };
        let mut this = ptr::null_mut();
        sys::napi_get_undefined(env, &mut this);
        let mut out = ptr::null_mut();
        let status = sys::napi_call_function(env, this, hook, 1, &object, &mut out);
        if status != sys::Status::napi_ok {
            let mut pending = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut pending);
        }
    }
}

unsafe fn notice_object(env: sys::napi_env, n: &ErrorFields) -> Option<sys::napi_value> {
    let mut o = ptr::null_mut();
    if sys::napi_create_object(env, &mut o) != sys::Status::napi_ok {
        return None;
    }
    let set = |name: &std::ffi::CStr, value: &str| {
        let mut v = ptr::null_mut();
        sys::napi_create_string_utf8(env, value.as_ptr().cast(), value.len(), &mut v);
        sys::napi_set_named_property(env, o, name.as_ptr(), v) == sys::Status::napi_ok
    };
    let fields = server_fields(n);
    // severity, code, message first; then the rest as an error has them.
    let (severity, rest) = fields.split_first()?;
    let ok = set(severity.0, severity.1.unwrap_or_default())
        && set(c"code", &n.code)
        && set(c"message", &n.message)
        && rest
            .iter()
            .all(|(name, value)| value.is_none_or(|v| set(name, v)));
    ok.then_some(o)
}
