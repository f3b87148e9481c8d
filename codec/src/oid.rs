//! Type OIDs (from PostgreSQL's `pg_type.dat`). Those of the built-in type table are
//! defined by its rows ([`crate::builtin`]); the few here are types the codec names but does
//! not handle itself (they are looked up in the catalog and decode as text).

pub use crate::builtin::oids::*;

/// `"char"`: a one-byte internal type, learnt from the catalog like any type outside the table.
pub const CHAR: u32 = 18;
/// The type of an untyped literal.
pub const UNKNOWN: u32 = 705;
