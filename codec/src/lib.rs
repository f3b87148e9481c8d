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

pub mod decode;
pub mod encode;
pub mod oid;

pub use decode::{DecodeError, Decoder};
pub use encode::{encode_param, param_format, EncodeError, Param};

/// Whether results of type `oid` are requested in binary. Binary where it is exact and
/// cheaper to decode than text; text for the rest (and for types we do not know).
pub fn prefers_binary(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::BOOL
            | oid::INT2
            | oid::INT4
            | oid::INT8
            | oid::OID
            | oid::FLOAT4
            | oid::FLOAT8
            | oid::BYTEA
            | oid::UUID
    )
}
