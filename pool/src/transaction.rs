//! Transactions: an exclusive lease between BEGIN and COMMIT/ROLLBACK.
//!
//! BEGIN goes through the same fence check as a query (the ParameterStatus in its reply on
//! 14+, a probe in the same write before 14), so a transaction never starts on a fenced
//! node; a fence that lands later is seen by the transaction's statements as 25006.
//! COMMIT is where a write can be in doubt: if the connection fails after COMMIT was sent, or
//! the server reports success while warning that it cancelled the wait for synchronous
//! replication, the commit is reported as `IN_DOUBT`, never as success and never retried.
//! A transaction dropped without COMMIT or ROLLBACK releases its lease mid-transaction, and
//! the pool destroys that connection instead of reusing it.

use crate::dedicated::Dedicated;
use crate::error::Error;
use crate::pool::Pool;

/// Isolation level for BEGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    pub fn parse(s: &str) -> Result<Isolation, String> {
        match s {
            "read-committed" => Ok(Isolation::ReadCommitted),
            "repeatable-read" => Ok(Isolation::RepeatableRead),
            "serializable" => Ok(Isolation::Serializable),
            other => Err(format!(
                "isolation must be 'read-committed', 'repeatable-read' or 'serializable', not {other:?}"
            )),
        }
    }

    fn begin_sql(isolation: Option<Isolation>) -> &'static str {
        match isolation {
            None => "BEGIN",
            Some(Isolation::ReadCommitted) => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Some(Isolation::RepeatableRead) => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Some(Isolation::Serializable) => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// An open transaction on one dedicated connection.
pub struct Transaction {
    pub conn: Dedicated,
}

impl Pool {
    /// Checks out a connection exclusively and runs BEGIN on it, on a node that fits the
    /// pool's mode; waits up to `acquireTimeoutMs` for a connection (then 53300).
    pub async fn begin(&self, isolation: Option<Isolation>) -> Result<Transaction, Error> {
        let sql = Isolation::begin_sql(isolation);
        Ok(Transaction {
            conn: self.dedicated(Some(sql)).await?,
        })
    }
}

impl Transaction {
    /// COMMIT. Reports `IN_DOUBT` when the outcome cannot be known.
    pub async fn commit(self) -> Result<(), Error> {
        self.conn.lease.mark_head();
        let result = self.conn.lease.client().simple_query("COMMIT").await;
        if matches!(&result, Err(e) if e.is_closed()) {
            self.conn.lease.pool().suspect();
        }
        match result {
            Ok(results) => {
                let last = results.last();
                if last.is_some_and(|r| r.sync_replication_cancelled) {
                    return Err(Error::InDoubt {
                        reason: "COMMIT returned after the server cancelled its wait for synchronous replication: \
                                 the write is on the primary but may not be on any standby, and can be lost on failover"
                            .into(),
                        cause: None,
                    });
                }
                if last.and_then(|r| r.command_tag.as_deref()) == Some("ROLLBACK") {
                    return Err(Error::RolledBack);
                }
                Ok(())
            }
            Err(e) if e.is_closed() && !e.safe_to_retry() => Err(Error::InDoubt {
                reason: "the connection failed while COMMIT was in flight: the transaction may or may not have committed"
                    .into(),
                cause: Some(e),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// ROLLBACK. A broken connection needs none: the server rolls back on its own.
    pub async fn rollback(self) -> Result<(), Error> {
        match self.conn.lease.client().simple_query("ROLLBACK").await {
            Ok(_) => Ok(()),
            Err(e) if e.is_closed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The backend process id (for diagnostics and tests).
    pub fn process_id(&self) -> i32 {
        self.conn.process_id()
    }
}
