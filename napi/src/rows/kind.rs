//! The kinds of column a result crosses as, defined once: `rows.js` reads their letters from
//! `columnKinds()` instead of spelling them again.

use napi::{Env, JsObject};
use napi_derive::napi;

/// How a column's values cross to JS (the table in `rows.rs`'s module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int32,
    Float64,
    BigInt64,
    /// Repeated strings: the distinct values and an index per row.
    Table,
    Text,
    Bytes,
    /// A json column (or a place in one) of objects of one shape, place by place.
    Shaped,
    /// A json column (or a place in one) of arrays of one shape, item by item.
    Array,
    Json,
    /// Finished values built one by one on the JS thread.
    Values,
    /// A place in a shaped column that was null in every row so far.
    Null,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Bool,
        Kind::Int32,
        Kind::Float64,
        Kind::BigInt64,
        Kind::Table,
        Kind::Text,
        Kind::Bytes,
        Kind::Shaped,
        Kind::Array,
        Kind::Json,
        Kind::Values,
        Kind::Null,
    ];

    /// The letter a chunk's `kinds` string holds for the column (one per column, so the
    /// string doubles as part of the shape's cache key in `rows.js`).
    pub fn letter(self) -> char {
        match self {
            Kind::Bool => 'b',
            Kind::Int32 => 'i',
            Kind::Float64 => 'f',
            Kind::BigInt64 => 'g',
            Kind::Table => 'd',
            Kind::Text => 's',
            Kind::Bytes => 'y',
            Kind::Shaped => 'o',
            Kind::Array => 'a',
            Kind::Json => 'j',
            Kind::Values => 'v',
            Kind::Null => 'n',
        }
    }

    /// The name `rows.js` knows the kind by.
    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int32 => "int32",
            Kind::Float64 => "float64",
            Kind::BigInt64 => "bigint64",
            Kind::Table => "table",
            Kind::Text => "text",
            Kind::Bytes => "bytes",
            Kind::Shaped => "shaped",
            Kind::Array => "array",
            Kind::Json => "json",
            Kind::Values => "values",
            Kind::Null => "null",
        }
    }
}

/// `{ bool: 'b', int32: 'i', ... }`: the letter of each column kind, by name.
#[napi(
    ts_return_type = "Readonly<Record<'bool' | 'int32' | 'float64' | 'bigint64' | 'table' | 'text' | 'bytes' | 'shaped' | 'array' | 'json' | 'values' | 'null', string>>"
)]
pub fn column_kinds(env: Env) -> napi::Result<JsObject> {
    let mut kinds = env.create_object()?;
    for k in Kind::ALL {
        kinds.set_named_property(k.name(), env.create_string(&k.letter().to_string())?)?;
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_letter_and_name() {
        let mut letters: Vec<char> = Kind::ALL.iter().map(|k| k.letter()).collect();
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        letters.sort_unstable();
        letters.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!(letters.len(), Kind::ALL.len());
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
