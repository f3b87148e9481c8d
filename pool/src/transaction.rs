//! Transactions: an exclusive lease between BEGIN and COMMIT/ROLLBACK.
//!
//! BEGIN goes out with the transaction's first statement, in one write and one Sync group
//! (14+; see [`Pool::begin`] and [`Transaction::query`]), and the node's role comes with
//! that reply; before 14 BEGIN runs in `begin()`, behind the probe. Either way a transaction
//! does not go on on a node it finds fenced before its first statement ran; a fence that
//! lands later is seen by the transaction's statements as 25006.
//! COMMIT is where a write can be in doubt: if the connection fails after COMMIT was sent, or
//! the server reports success while warning that it cancelled the wait for synchronous
//! replication, the commit is reported as `IN_DOUBT`, never as success and never retried.
//! A transaction dropped without COMMIT or ROLLBACK releases its lease mid-transaction, and
//! the pool destroys that connection instead of reusing it.

use crate::cancel::{Cancellation, StopState};
use crate::config::Mode;
use crate::dedicated::{Dedicated, First};
use crate::error::Error;
use crate::pool::{Pool, Streaming};
use crate::role;
use hyperion_wire::{Params, QueryResult, TransactionStatus};

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
    /// `None` once the transaction lost its connection and could not have another
    /// ([`Transaction::move_on`]): it is over.
    conn: Option<Dedicated>,
    /// BEGIN, while it has not run: it goes out with the first statement.
    begin: Option<&'static str>,
    /// A statement failed before BEGIN ran: COMMIT reports the transaction rolled back.
    aborted: bool,
}

/// How many connections a transaction's first statement may try: it runs again on another
/// when the one it ran on broke or turned out unfit (see [`Transaction::query`]).
const FIRST_STATEMENT_TRIES: u32 = 3;

impl Pool {
    /// Checks out a connection exclusively for a transaction, on a node that fits the pool's
    /// mode; waits up to `acquireTimeoutMs` for a connection (then 53300).
    ///
    /// On 14+ BEGIN is not sent yet: it goes out in one write with the first statement, which
    /// saves a round trip per transaction (Npgsql does the same). The fit check BEGIN's reply
    /// made then comes with the first statement's reply. Before 14, BEGIN runs now, behind
    /// the probe that tells the node's role.
    pub async fn begin(&self, isolation: Option<Isolation>) -> Result<Transaction, Error> {
        let sql = Isolation::begin_sql(isolation);
        let (conn, deferred) = self.dedicated(First::Deferred(sql)).await?;
        Ok(Transaction {
            conn: Some(conn),
            begin: deferred.then_some(sql),
            aborted: false,
        })
    }
}

/// The error for a transaction that lost its connection and could not have another.
fn lost() -> Error {
    Error::Wire(hyperion_wire::Error::closed(
        "the transaction lost its connection before BEGIN ran, and no other could be had",
        false,
    ))
}

impl Transaction {
    fn live(&self) -> Result<&Dedicated, Error> {
        self.conn.as_ref().ok_or_else(lost)
    }

    /// Gives the connection up (destroyed if mid-transaction) and checks out another for
    /// the transaction, as [`Pool::begin`] does; says whether BEGIN is still to send.
    async fn move_on(&mut self, first: First<'_>, cancel: &Cancellation) -> Result<bool, Error> {
        let pool = self.live()?.lease.pool().clone();
        // Dropped before the next checkout: with a pool of one it is the only connection.
        self.conn = None;
        let (conn, deferred) = cancel.before_sending(pool.dedicated(first)).await??;
        self.conn = Some(conn);
        Ok(deferred)
    }

    /// The connection, with BEGIN run on it if it has not been yet (for what cannot carry
    /// it: scripts, streams, COPY), within `cancel`'s budget. Like the BEGIN of
    /// [`Pool::dedicated`], it moves to another connection when the one it has broke or
    /// turns out unfit.
    pub async fn begun(&mut self, cancel: &Cancellation) -> Result<&Dedicated, Error> {
        if self.aborted {
            return Err(Error::Aborted);
        }
        if let Some(sql) = self.begin {
            let conn = self.live()?;
            let pool = conn.lease.pool().clone();
            match conn.script(sql, cancel).await {
                Ok(_) if !pool.fenced(conn.lease.client()) => {}
                Ok(_) => {
                    pool.seen_unfit(&conn.lease.conn);
                    self.move_on(First::Now(sql), cancel).await?;
                }
                Err(Error::Wire(e)) if e.is_closed() => {
                    pool.suspect();
                    self.move_on(First::Now(sql), cancel).await?;
                }
                Err(e) => return Err(e),
            }
            self.begin = None;
        }
        self.live()
    }

    /// Runs a statement in the transaction ([`Dedicated::query`]). The first one carries
    /// BEGIN ([`Pool::begin`]). Nothing of the transaction can have been committed before
    /// it, so the statement runs again, BEGIN first, on another connection (its streamed
    /// rows, if any, restarted), as BEGIN itself would have moved:
    /// - when the connection broke before the reply said BEGIN ran (it may have broken
    ///   during the statement: what the statement did in the transaction is rolled back
    ///   with it, but an effect outside it, such as `nextval`, happens again);
    /// - when the reply shows the node unfit by the time BEGIN ran: a fenced primary (the
    ///   statement refused as read-only, 25006, or, for one that succeeded, the transaction
    ///   itself read-only: a statement that only set `default_transaction_read_only` for
    ///   its session is told apart by one `SHOW transaction_read_only`).
    pub async fn query<P: Params + Sync + ?Sized>(
        &mut self,
        sql: &str,
        params: &P,
        streaming: Option<&Streaming>,
        cancel: &Cancellation,
        prepare: Option<bool>,
    ) -> Result<QueryResult, Error> {
        if self.aborted {
            return Err(Error::Aborted);
        }
        let mut tries = 1;
        while let Some(begin) = self.begin {
            let conn = self.conn.as_ref().ok_or_else(lost)?;
            let result = conn
                .query_behind(Some(begin), sql, params, streaming, cancel, prepare)
                .await;
            let pool = conn.lease.pool().clone();
            let client = conn.lease.client();
            let begun = client.state().transaction_status() != TransactionStatus::Idle;
            let fenced = begun && pool.fenced(client) && {
                match &result {
                    Err(Error::Wire(e)) => e.is_read_only(),
                    Err(_) => false,
                    // The session reports read-only after a statement that succeeded: the
                    // node was fenced, or the statement set default_transaction_read_only
                    // itself. Only a fence makes this transaction read-only; one round trip
                    // on this rare path tells them apart.
                    Ok(_) if pool.config().mode == Mode::ReadWrite => {
                        match client.simple_query(role::PROBE_SQL).await {
                            Ok(r) => !role::probe_says_writable(&r),
                            Err(_) => true,
                        }
                    }
                    Ok(_) => true,
                }
            };
            let broke = !begun && matches!(&result, Err(Error::Wire(e)) if e.is_closed());
            if !(fenced || broke) || tries >= FIRST_STATEMENT_TRIES {
                if begun {
                    // Open on this connection, whatever comes next: COMMIT goes here.
                    self.begin = None;
                } else if broke
                    || result.as_ref().err().and_then(Error::as_db).is_some()
                    || matches!(&result, Err(Error::Stopped { state, .. }) if *state != StopState::NotSent)
                {
                    // The server refused it (or BEGIN) before BEGIN ran, the connection is
                    // gone, or the statement was stopped after it was sent (cancelled, or
                    // abandoned with its connection): what follows fails as in an aborted
                    // transaction, and COMMIT reports it rolled back. Without that, the next
                    // statement would begin a new transaction on another connection and
                    // COMMIT would commit it without this one. (A statement that was never
                    // sent, such as one with a parameter that cannot be encoded, or one
                    // stopped while it waited for its connection, leaves it intact.)
                    self.aborted = true;
                }
                return result;
            }
            if fenced {
                pool.seen_unfit(&conn.lease.conn);
            } else {
                pool.suspect();
            }
            tries += 1;
            if let Some(s) = streaming {
                s.sink.restart(tries);
            }
            if !self.move_on(First::Deferred(begin), cancel).await? {
                self.begin = None; // BEGIN ran already (the probe path)
            }
        }
        self.live()?
            .query(sql, params, streaming, cancel, prepare)
            .await
    }

    /// COMMIT. Reports `IN_DOUBT` when the outcome cannot be known. A transaction that ran
    /// nothing never sent BEGIN: there is nothing to commit.
    pub async fn commit(self) -> Result<(), Error> {
        if self.aborted || self.conn.is_none() {
            return Err(Error::RolledBack);
        }
        if self.begin.is_some() {
            return Ok(());
        }
        let conn = self.live()?;
        conn.lease.mark_head();
        let result = conn.lease.client().simple_query("COMMIT").await;
        if matches!(&result, Err(e) if e.is_closed()) {
            conn.lease.pool().suspect();
        }
        match result {
            Ok(results) => {
                let results = crate::error::durable(results, "COMMIT")?;
                if results.last().and_then(|r| r.command_tag.as_deref()) == Some("ROLLBACK") {
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

    /// ROLLBACK. A broken connection needs none: the server rolls back on its own; nor
    /// does a transaction that never sent BEGIN.
    pub async fn rollback(self) -> Result<(), Error> {
        let Some(conn) = self.conn.as_ref().filter(|_| self.begin.is_none()) else {
            return Ok(());
        };
        match conn.lease.client().simple_query("ROLLBACK").await {
            Ok(_) => Ok(()),
            Err(e) if e.is_closed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The backend process id (for diagnostics and tests).
    pub fn process_id(&self) -> Option<i32> {
        self.conn.as_ref().map(Dedicated::process_id)
    }
}
