//! A query's result to JS values, in bulk.
//!
//! A result (or, for a large one, each batch of it: see `stream.rs`) crosses column by
//! column: every column's decoder is chosen once from its RowDescription, then all of its
//! values are decoded in place from the DataRow frames into one buffer per column, off the JS
//! thread ([`decode`]); on the JS thread each buffer becomes one JS value:
//!
//! | kind ([`kind::Kind`]) | column of | JS value |
//! |------|-----------|----------|
//! | `b`  | bool | `Uint8Array` of 0/1 |
//! | `i`  | int2, int4 | `Int32Array` |
//! | `f`  | float4/8, oid | `Float64Array` |
//! | `g`  | int8 | `BigInt64Array` |
//! | `d`  | text types and enums while their values repeat | `[Array of strings, Uint8Array]`: the distinct values and an index per row (`rows/strings.rs`) |
//! | `s`  | strings (text types and enums that do not repeat, numeric, uuid, dates and times) | `[string, Uint32Array]`: all values in one string, UTF-16 offsets |
//! | `y`  | bytea | `[Buffer, Uint32Array]`: all values in one Buffer, byte offsets |
//! | `o`  | json, jsonb whose values are all objects of one shape | `{ kinds, names, cols, nulls }`: the members as columns, nested containers as `o` and `a` (`rows/shaped.rs`) |
//! | `a`  | json, jsonb whose values are all arrays of one shape | `{ kinds, names: null, cols, nulls }`: the items as columns |
//! | `j`  | other json, jsonb | one string holding a JSON array of the values (`null` for NULL) |
//! | `v`  | arrays, and anything too large for one string | an `Array` of finished values |
//!
//! plus a `Uint8Array` NULL map per column that has a NULL. `rows.js` turns that into row
//! objects with a function compiled once per shape (column names and kinds), so V8 builds
//! every row from the same object literal. A small result (at most 64 values) skips the
//! columns: its values are decoded on the JS thread and handed, in row order, to a function
//! `rows.js` compiled for its column names, cached per statement ([`Meta`]), which builds
//! the rows from an object literal as well. One object per row built here with
//! `napi_define_properties` lost on large results (see benches/README.md), and on small ones
//! too: it was about 8% of a point query's client CPU.
//!
//! The kinds are defined once, in [`kind::Kind`]; `rows.js` reads their letters from
//! `columnKinds()`. The work is split by what it touches: [`columns`] accumulates values off
//! the JS thread and knows nothing of N-API (it has the unit tests), [`js`] is the N-API
//! toolkit (strings, typed arrays, external strings), and [`format`] lays a chunk out as the
//! object `rows.js` reads.
//!
//! A column's text (`s`, `j`) of 1 KiB or more goes to V8 as an external string (`s`
//! always, as Latin-1 while ASCII, else as UTF-16 made on the decoding thread; `j` when
//! ASCII): V8's young-generation collector copies every object that survives it, twice
//! before it reaches the old generation, and the rows of a large result all survive; an
//! external string's characters stay where Rust put them until its finalizer frees them.

#[macro_use]
mod js;
mod columns;
mod format;
mod kind;
mod meta;
mod shaped;
mod strings;

pub use columns::decode;
pub use format::Chunk;
pub use kind::column_kinds;
pub(crate) use meta::restock;
pub use meta::{set_row_builders, Meta};
