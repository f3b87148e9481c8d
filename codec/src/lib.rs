//! `hyperion-codec`: PostgreSQL values to and from bytes, as pure functions.
//!
//! Nothing here knows about sockets or JavaScript. Decoding: [`Decoder::plan`] picks one
//! decoder per result column when its RowDescription arrives (so the per-row loop is an
//! indexed call with no type switch on the OID), and the `decode_*` functions read a value in
//! place with exact length checks. Encoding: [`encode_param`] writes a [`Param`] for the type
//! the server declared for it, refusing anything that would not round-trip (a fractional
//! number for an int4, an out-of-range BigInt) instead of truncating.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod array;
pub mod datetime;
pub mod decode;
pub mod encode;
pub mod json;
pub mod numeric;
pub mod oid;
pub mod types;

pub use decode::{result_format, DecodeError, Decoder, Output, Scalar};
pub use encode::{encode_param, param_format, EncodeError, Param};
pub use types::{Kind, Types};
