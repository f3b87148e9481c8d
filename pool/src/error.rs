//! Errors the pool reports: the connection's own, or a pool policy's.

use crate::cancel::{Stop, StopState, CANCEL_GRACE};
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
    /// BEGIN (or START TRANSACTION) through the pool's own statements, whose connections
    /// other callers share: their statements would run in that transaction, uncommitted. As
    /// postgres.js and Bun SQL, the client refuses it (`pool.transaction`, `pool.begin` and
    /// `pool.connect` are the ways to run one).
    UnsafeTransaction,
    /// A statement in a transaction an earlier failed statement aborted (SQLSTATE 25P02, as
    /// the server says of one): where that statement failed before BEGIN could run (its
    /// deferred BEGIN, see `transaction.rs`), the client says it.
    Aborted,
    /// The query's timeout passed or its caller aborted it (see `cancel.rs`).
    Stopped {
        stop: Stop,
        state: StopState,
        /// The statement's own error, when it ended with one (57014 from the cancel).
        cause: Option<Box<Error>>,
    },
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
            Error::UnsafeTransaction => "UNSAFE_TRANSACTION",
            // in_failed_sql_transaction
            Error::RolledBack | Error::Aborted => "25P02",
            Error::Stopped {
                stop: Stop::Timeout(_),
                ..
            } => "QUERY_TIMEOUT",
            Error::Stopped {
                stop: Stop::Aborted,
                ..
            } => "ABORT_ERR",
        }
    }

    /// A query stopped before anything was sent.
    pub(crate) fn not_sent(stop: Stop) -> Error {
        Error::Stopped {
            stop,
            state: StopState::NotSent,
            cause: None,
        }
    }

    /// The server's error fields, if the server reported this.
    pub fn as_db(&self) -> Option<&hyperion_wire::DbError> {
        match self {
            Error::Wire(e) => e.as_db(),
            _ => None,
        }
    }

    /// Notices the server sent for the failed statement before its error.
    pub fn notices(&self) -> &[hyperion_wire::DbError] {
        match self {
            Error::Wire(e) => e.notices(),
            Error::Stopped {
                cause: Some(cause), ..
            } => cause.notices(),
            _ => &[],
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
            Error::UnsafeTransaction => f.write_str(
                "a transaction cannot be begun with pool.query: the pool's connections are shared, \
                 so other callers' statements would run inside it; use pool.transaction(cb), \
                 pool.begin() or pool.connect()",
            ),
            Error::RolledBack => {
                f.write_str("COMMIT rolled the transaction back: an earlier statement in it failed")
            }
            Error::Aborted => f.write_str(
                "current transaction is aborted: an earlier statement in it failed; roll it back",
            ),
            Error::Stopped { stop, state, cause } => {
                match stop {
                    Stop::Timeout(t) => write!(f, "query timed out after {}ms", t.as_millis())?,
                    Stop::Aborted => f.write_str("the query was aborted")?,
                }
                match state {
                    StopState::NotSent => f.write_str(" while waiting for a connection")?,
                    StopState::Cancelled if cause.is_some() => {
                        f.write_str("; the statement was cancelled")?
                    }
                    // It ended without an error: it completed before the cancel reached it.
                    StopState::Cancelled => f.write_str(
                        "; the statement completed before the cancel reached the server, and \
                         its result was discarded",
                    )?,
                    StopState::Abandoned => write!(
                        f,
                        "; the server did not confirm the cancel within {}ms, so the connection was \
                         closed (a write may or may not have happened)",
                        CANCEL_GRACE.as_millis()
                    )?,
                }
                if let Some(e) = cause {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// `result`, unless the server acknowledged its commit only after cancelling the commit's
/// wait for synchronous replication (`WARNING: canceling wait for synchronous replication`,
/// then the command's tag): the write is then on the primary alone and can be lost on a
/// failover, so it is in doubt. `what` names the commit ("COMMIT", "the statement").
pub(crate) fn durable<T: CommitOutcome>(result: T, what: &str) -> Result<T, Error> {
    if !result.replication_cancelled() {
        return Ok(result);
    }
    Err(Error::InDoubt {
        reason: format!(
            "{what} returned after the server cancelled its wait for synchronous replication: \
             the write is on the primary but may not be on any standby, and can be lost on failover"
        ),
        cause: None,
    })
}

/// What [`durable`] looks at: a statement's result, or a Sync group's results (whose commit's
/// WARNING belongs to the last one, or to any one of a script's).
pub(crate) trait CommitOutcome {
    fn replication_cancelled(&self) -> bool;
}

impl CommitOutcome for hyperion_wire::QueryResult {
    fn replication_cancelled(&self) -> bool {
        self.sync_replication_cancelled
    }
}

impl CommitOutcome for Vec<hyperion_wire::QueryResult> {
    fn replication_cancelled(&self) -> bool {
        self.iter().any(|r| r.sync_replication_cancelled)
    }
}

impl From<hyperion_wire::Error> for Error {
    fn from(e: hyperion_wire::Error) -> Self {
        Error::Wire(e)
    }
}
