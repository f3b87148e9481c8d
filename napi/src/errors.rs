//! Errors cross to JS as a marker plus JSON in the message; `client.js` turns that into an
//! `Error` whose `.code` is the SQLSTATE (or a client code) and which carries the server's
//! fields. (napi-rs 2 sets `.code` to its own status names, so the fields travel this way.)

/// Prefix `client.js` looks for.
pub const MARKER: &str = "\u{1}hyperion:";

fn json_str(out: &mut String, s: &str) {
    hyperion_codec::encode::json_string(s, out);
}

fn field(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.push(',');
        json_str(out, name);
        out.push(':');
        json_str(out, v);
    }
}

/// Builds the napi error for a pool error.
pub fn to_napi(e: &hyperion_pool::Error) -> napi::Error {
    napi::Error::new(
        napi::Status::GenericFailure,
        encode(e.code(), &e.to_string(), e.as_db()),
    )
}

/// Builds the napi error for a client-side error with a code.
pub fn client_error(code: &str, message: &str) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, encode(code, message, None))
}

fn encode(code: &str, message: &str, db: Option<&hyperion_wire::DbError>) -> String {
    let mut out = String::with_capacity(128);
    out.push_str(MARKER);
    out.push_str("{\"code\":");
    json_str(&mut out, code);
    out.push_str(",\"message\":");
    json_str(&mut out, message);
    if let Some(d) = db {
        field(&mut out, "severity", Some(d.severity()));
        field(&mut out, "detail", d.detail.as_deref());
        field(&mut out, "hint", d.hint.as_deref());
        field(&mut out, "position", d.position.as_deref());
        field(&mut out, "internalPosition", d.internal_position.as_deref());
        field(&mut out, "internalQuery", d.internal_query.as_deref());
        field(&mut out, "where", d.where_.as_deref());
        field(&mut out, "schema", d.schema.as_deref());
        field(&mut out, "table", d.table.as_deref());
        field(&mut out, "column", d.column.as_deref());
        field(&mut out, "dataType", d.data_type.as_deref());
        field(&mut out, "constraint", d.constraint.as_deref());
        field(&mut out, "file", d.file.as_deref());
        field(&mut out, "line", d.line.as_deref());
        field(&mut out, "routine", d.routine.as_deref());
    }
    out.push('}');
    out
}
