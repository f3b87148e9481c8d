//! N-API bindings: the only crate that touches N-API.
//!
//! `client.js` (hand-written) wraps what this exports: `hello`, and the `NativePool` class.
//! Values cross the boundary in bulk: parameters are read once on the JS thread into
//! [`hyperion_codec::Param`]s, and a query's whole result becomes JS values in one pass on
//! the JS thread when its promise resolves ([`rows`]).

mod errors;
mod params;
mod pool;
mod rows;

use napi_derive::napi;

/// The smoke test of the build: `hello('world')`.
#[napi]
pub fn hello(name: String) -> String {
    format!("hello {name} from hyperiondb-client")
}
