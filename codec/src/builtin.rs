//! The built-in type table: every PostgreSQL type the codec handles without asking the
//! catalog, one row each (values from PostgreSQL's `pg_type.dat`).
//!
//! This is the only place a built-in OID is written. The `oid::*` constants, the array types
//! and their elements ([`crate::types::Types::kind`]), the decoders picked for a column
//! ([`crate::Decoder::for_column`]), the result format asked for, the parameters bound in
//! binary and the names in error messages are all read from these rows. Lookups by OID are
//! generated `match`es (no search), as fast as the hand-written ones they replace.

use crate::decode::{Output, Scalar};

/// The wire format of one value (PostgreSQL's format codes: 0 text, 1 binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Binary,
}

impl Format {
    /// The format code on the wire.
    pub fn code(self) -> i16 {
        match self {
            Format::Text => 0,
            Format::Binary => 1,
        }
    }

    /// The format a code names. Only 1 is binary; any other code reads as text, as the
    /// codec has always treated it (a RowDescription is the server's, not ours to reject).
    pub fn from_code(code: i16) -> Format {
        if code == 1 {
            Format::Binary
        } else {
            Format::Text
        }
    }
}

/// One built-in type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinType {
    pub oid: u32,
    /// `pg_type.typname`, as error messages name it.
    pub name: &'static str,
    /// The OID of the array of this type (its element is this row).
    pub array_oid: u32,
    /// The decoder for a value in binary.
    pub binary: Scalar,
    /// The decoder for a value in text.
    pub text: Scalar,
    /// The format to request for a result column of this type (and of arrays of it).
    pub result_format: Format,
    /// What a value becomes in JavaScript. A parameter binds in binary exactly when its JS
    /// kind is this one (a number to an integer or float type, a boolean to bool, a Buffer
    /// to bytea); otherwise it goes as text for the server to parse.
    pub js: Output,
}

/// Defines the table once and derives from it the OID constants (re-exported by
/// [`crate::oid`]), [`BUILTINS`], and the by-OID lookups [`builtin`] and [`builtin_array`].
macro_rules! builtin_types {
    ($(
        $konst:ident = $oid:literal $name:literal,
        $array_konst:ident = $array_oid:literal,
        $binary:ident / $text:ident, $format:ident, $js:ident;
    )*) => {
        /// Type OIDs of the table, scalar and array.
        pub mod oids {
            $(
                pub const $konst: u32 = $oid;
                pub const $array_konst: u32 = $array_oid;
            )*
        }

        mod rows {
            use super::*;
            $(
                pub const $konst: BuiltinType = BuiltinType {
                    oid: $oid,
                    name: $name,
                    array_oid: $array_oid,
                    binary: Scalar::$binary,
                    text: Scalar::$text,
                    result_format: Format::$format,
                    js: Output::$js,
                };
            )*
        }

        /// Every row of the table, in `pg_type` order.
        pub const BUILTINS: &[BuiltinType] = &[$(rows::$konst),*];

        /// The row of a built-in scalar type.
        #[inline]
        pub fn builtin(type_oid: u32) -> Option<&'static BuiltinType> {
            match type_oid {
                $($oid => Some(&rows::$konst),)*
                _ => None,
            }
        }

        /// The row of the element of a built-in array type.
        #[inline]
        pub fn builtin_array(type_oid: u32) -> Option<&'static BuiltinType> {
            match type_oid {
                $($array_oid => Some(&rows::$konst),)*
                _ => None,
            }
        }
    };
}

builtin_types! {
    BOOL = 16 "bool",               BOOL_ARRAY = 1000,        Bool / BoolText, Binary, Bool;
    BYTEA = 17 "bytea",             BYTEA_ARRAY = 1001,       Bytea / ByteaText, Binary, Bytes;
    NAME = 19 "name",               NAME_ARRAY = 1003,        Text / Text, Binary, Str;
    INT8 = 20 "int8",               INT8_ARRAY = 1016,        Int8 / Int8Text, Binary, I64;
    INT2 = 21 "int2",               INT2_ARRAY = 1005,        Int2 / IntText, Binary, I32;
    INT4 = 23 "int4",               INT4_ARRAY = 1007,        Int4 / IntText, Binary, I32;
    TEXT = 25 "text",               TEXT_ARRAY = 1009,        Text / Text, Binary, Str;
    OID = 26 "oid",                 OID_ARRAY = 1028,         Oid / IntText, Binary, F64;
    JSON = 114 "json",              JSON_ARRAY = 199,         Json / Json, Binary, Json;
    FLOAT4 = 700 "float4",          FLOAT4_ARRAY = 1021,      Float4 / FloatText, Binary, F64;
    FLOAT8 = 701 "float8",          FLOAT8_ARRAY = 1022,      Float8 / FloatText, Binary, F64;
    BPCHAR = 1042 "bpchar",         BPCHAR_ARRAY = 1014,      Text / Text, Binary, Str;
    VARCHAR = 1043 "varchar",       VARCHAR_ARRAY = 1015,     Text / Text, Binary, Str;
    DATE = 1082 "date",             DATE_ARRAY = 1182,        Date / Text, Binary, Str;
    TIME = 1083 "time",             TIME_ARRAY = 1183,        Time / Text, Binary, Str;
    TIMESTAMP = 1114 "timestamp",   TIMESTAMP_ARRAY = 1115,   Timestamp / Text, Binary, Str;
    TIMESTAMPTZ = 1184 "timestamptz", TIMESTAMPTZ_ARRAY = 1185, Timestamptz / Text, Binary, Str;
    NUMERIC = 1700 "numeric",       NUMERIC_ARRAY = 1231,     Numeric / Text, Binary, Str;
    UUID = 2950 "uuid",             UUID_ARRAY = 2951,        Uuid / Text, Binary, Str;
    JSONB = 3802 "jsonb",           JSONB_ARRAY = 3807,       Jsonb / Json, Binary, Json;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rows_are_consistent() {
        let mut seen = HashSet::new();
        for t in BUILTINS {
            assert!(seen.insert(t.oid), "{} twice", t.oid);
            assert!(seen.insert(t.array_oid), "{} twice", t.array_oid);
            assert_eq!(builtin(t.oid), Some(t));
            assert_eq!(builtin_array(t.array_oid), Some(t));
            assert_eq!(builtin(t.array_oid), None);
            // What the binary decoder emits is what the row says JS gets.
            assert_eq!(t.binary.output(), t.js, "{}", t.name);
            // The text decoder emits the same kind, but for the integers text gives as
            // numbers (int2/int4 text is read as a double, then is an integer in JS anyway).
            if !matches!(t.oid, oids::INT2 | oids::INT4) {
                assert_eq!(t.text.output(), t.js, "{}", t.name);
            }
        }
        assert_eq!(BUILTINS.len(), 20);
    }

    #[test]
    fn format_codes() {
        assert_eq!(Format::from_code(1), Format::Binary);
        assert_eq!(Format::from_code(0), Format::Text);
        assert_eq!(Format::from_code(2), Format::Text);
        assert_eq!(Format::from_code(-1), Format::Text);
        assert_eq!(Format::Binary.code(), 1);
        assert_eq!(Format::Text.code(), 0);
    }
}
