//! Errors the pool reports: the connection's own, or a pool policy's.

use hyperion_wire::sqlstate;
use std::fmt;

#[derive(Debug, Clone)]
pub enum Error {
    /// From a connection or the server.
    Wire(hyperion_wire::Error),
    /// `end()` was called.
    Closed,
    /// No connection could be had within `acquireTimeoutMs` (SQLSTATE 53300).
    AcquireTimeout { ms: u128 },
    /// A read-write pool found no writable primary within `acquireTimeoutMs`.
    NoPrimary {
        ms: u128,
        last: Option<hyperion_wire::Error>,
    },
    /// A read-only pool found no standby (or any mode found no host at all).
    NoHost {
        mode: &'static str,
        last: Option<hyperion_wire::Error>,
    },
    /// Bad options.
    Config(String),
    /// A COMMIT whose outcome cannot be known: handle it idempotently, never retry blindly.
    InDoubt {
        reason: String,
        cause: Option<hyperion_wire::Error>,
    },
    /// COMMIT found the transaction aborted by an earlier error; it was rolled back.
    RolledBack,
}

impl Error {
    /// SQLSTATE for server errors and 53300; a stable client code for the rest.
    pub fn code(&self) -> &str {
        match self {
            Error::Wire(e) => e.code(),
            Error::Closed => "POOL_CLOSED",
            Error::AcquireTimeout { .. } => sqlstate::TOO_MANY_CONNECTIONS,
            // sqlclient_unable_to_establish_sqlconnection
            Error::NoPrimary { .. } | Error::NoHost { .. } => "08001",
            Error::Config(_) => "INVALID_CONFIG",
            Error::InDoubt { .. } => "IN_DOUBT",
            // in_failed_sql_transaction
            Error::RolledBack => "25P02",
        }
    }

    /// The server's error fields, if the server reported this.
    pub fn as_db(&self) -> Option<&hyperion_wire::DbError> {
        match self {
            Error::Wire(e) => e.as_db(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wire(e) => write!(f, "{e}"),
            Error::Closed => f.write_str("pool is closed"),
            Error::AcquireTimeout { ms } => write!(
                f,
                "timed out after {ms}ms waiting for a connection: all connections are busy"
            ),
            Error::NoPrimary { ms, last } => {
                write!(f, "no writable primary available after {ms}ms")?;
                if let Some(e) = last {
                    write!(f, " (last error: {e})")?;
                }
                Ok(())
            }
            Error::NoHost { mode, last } => {
                write!(f, "no host matching mode '{mode}' is reachable")?;
                if let Some(e) = last {
                    write!(f, " (last error: {e})")?;
                }
                Ok(())
            }
            Error::Config(m) => f.write_str(m),
            Error::InDoubt { reason, cause } => {
                write!(f, "commit in doubt: {reason}")?;
                if let Some(e) = cause {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            Error::RolledBack => {
                f.write_str("COMMIT rolled the transaction back: an earlier statement in it failed")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<hyperion_wire::Error> for Error {
    fn from(e: hyperion_wire::Error) -> Self {
        Error::Wire(e)
    }
}
