//! The SQLSTATE codes the client acts on. (Errors are passed through with whatever code the
//! server sent; only these drive decisions.)

/// A write in a read-only transaction: a standby, or a primary fenced read-only.
pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
/// The database named at startup does not exist.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// Wrong password.
pub const INVALID_PASSWORD: &str = "28P01";
/// Serialization failure and deadlock: a transaction may be retried.
pub const T_R_SERIALIZATION_FAILURE: &str = "40001";
pub const T_R_DEADLOCK_DETECTED: &str = "40P01";
/// Statement cancelled (statement_timeout, or a CancelRequest).
pub const QUERY_CANCELED: &str = "57014";
/// Server shutting down (admin shutdown, crash shutdown, cannot connect now).
pub const ADMIN_SHUTDOWN: &str = "57P01";
pub const CRASH_SHUTDOWN: &str = "57P02";
pub const CANNOT_CONNECT_NOW: &str = "57P03";
/// Too many connections; also what the pool raises when checkout waits past its bound.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// A feature we do not support (COPY through this client).
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// An internal error: what a server error without a SQLSTATE is reported as.
pub const INTERNAL_ERROR: &str = "XX000";
