//! N-API bindings: the only crate that touches N-API.
//!
//! `client.js` (hand-written) wraps what this exports: `hello`, and the `NativePool` class.
//! Values cross the boundary in bulk: parameters are read once on the JS thread into
//! [`hyperion_codec::Param`]s; a query's result is decoded into columns off the JS thread and
//! becomes JS values in one pass per column ([`rows`]), in batches while a large result is
//! still arriving ([`stream`]).

mod errors;
mod params;
mod pool;
mod rows;
mod settle;
mod stream;

use napi_derive::napi;

/// The statement `pool.insert` runs (see `hyperion_pool::insert`).
#[napi]
pub fn insert_sql(
    table: Vec<String>,
    columns: Vec<String>,
    conflict_target: Option<Vec<String>>,
) -> napi::Result<String> {
    hyperion_pool::insert_sql(&table, &columns, conflict_target.as_deref())
        .map_err(|m| errors::client_error("INVALID_ARGUMENT", &m))
}

/// The smoke test of the build: `hello('world')`.
#[napi]
pub fn hello(name: String) -> String {
    format!("hello {name} from hyperiondb-client")
}
