//! `hyperion-codec`: PostgreSQL values to and from bytes, as pure functions.
//!
//! Nothing here knows about sockets or JavaScript. The built-in types are one table
//! ([`builtin`]) that everything else derives from. Decoding: [`Decoder::for_column`] picks one
//! decoder per result column when its RowDescription arrives (so the per-row loop is an
//! indexed call with no type switch on the OID), and the `decode_*` functions read a value in
//! place with exact length checks. Encoding: [`encode_value`] writes a [`Param`] for the type
//! the server declared for it, refusing anything that would not round-trip (a fractional
//! number for an int4, an out-of-range BigInt) instead of truncating.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod array;
pub mod builtin;
pub mod datetime;
pub mod decode;
pub mod encode;
pub mod json;
pub mod numeric;
pub mod oid;
pub mod types;

pub use builtin::{BuiltinType, Format, BUILTINS};
pub use decode::{column_format, DecodeError, Decoder, Int8, Output, Scalar};
pub use encode::{bind_format, encode_value, EncodeError, IsNull, Param};
// The bool / 0-1 forms, for callers not yet moved (see each one's doc).
pub use decode::result_format;
pub use encode::{encode_param, param_format};
pub use types::{Kind, Types};
