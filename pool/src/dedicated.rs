//! A connection held exclusively: by a transaction (`pool.begin()`) or a checkout
//! (`pool.connect()`). What needs a connection to itself lives here, once for both: a
//! statement that can be stopped, a row stream through a portal, COPY, a script.
//!
//! **Streams** read a portal `batch` rows at a time (Execute with a row limit), the way
//! pg-cursor, pgx and postgres.js' `cursor()` do: memory is bounded by one batch (two, with
//! the one being read ahead), and leaving early is a Close of the portal, with no cancel
//! and nothing to drain. A named portal outlives its Sync only inside a transaction block,
//! so a stream on a connection that is not in one runs inside a BEGIN/COMMIT of its own.
//! Socket flow control (one Execute, reading the socket only as fast as the consumer) was
//! the alternative: it saves a round trip per batch, but leaving early then needs a cancel
//! and a drain, and a batch of a few thousand rows makes the round trip small next to the
//! work of building its rows.

use crate::cancel::{Cancellation, Stopper};
use crate::config::Mode;
use crate::error::Error;
use crate::lease::Lease;
use crate::pool::{Pool, Streaming};
use crate::role;
use hyperion_wire::{CopyIn, Flow, Params, QueryResult, Statement, TransactionStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A connection held exclusively until dropped (or, for a transaction, COMMIT/ROLLBACK).
pub struct Dedicated {
    pub(crate) lease: Lease,
    portals: AtomicU32,
}

/// What [`Pool::dedicated`] runs on the connection it checks out.
#[derive(Clone, Copy)]
pub(crate) enum First<'a> {
    /// Nothing (a checkout): before 14, the probe.
    Nothing,
    /// This statement (a BEGIN), now.
    Now(&'a str),
    /// This statement (a BEGIN), in one write with the first statement run on the
    /// connection, where the server reports its role without a probe (14+); before 14, now.
    Deferred(&'a str),
}

impl Pool {
    /// Checks out a connection exclusively, on a node that fits the pool's mode, and runs
    /// `first` on it (BEGIN), through the same fence check as a query: the ParameterStatus
    /// in the reply on 14+, a probe in the same write before 14. Waits up to
    /// `acquireTimeoutMs` for a connection (then 53300). Says whether a deferred `first` is
    /// still to send.
    pub(crate) async fn dedicated(&self, first: First<'_>) -> Result<(Dedicated, bool), Error> {
        let start = Instant::now();
        let deadline = start + self.config().acquire_timeout;
        self.start_monitor();
        loop {
            let lease = self.acquire_exclusive(start, deadline, None).await?;
            lease.mark_head();
            let client = lease.client();
            // Whether `first` is still to send: only a deferred one, where the server
            // reports its role without a probe (the fit check is then on what the session
            // last reported, and again on the first statement's reply).
            let deferred = matches!(first, First::Deferred(_)) && !self.needs_probe(client);
            let fits = match (self.needs_probe(client), first) {
                (true, First::Now(sql) | First::Deferred(sql)) => {
                    role::simple_after_probe(client, sql)
                        .await
                        .map(|(writable, _)| writable)
                }
                (true, First::Nothing) => client
                    .simple_query(role::PROBE_SQL)
                    .await
                    .map(|r| role::probe_says_writable(&r)),
                (false, First::Now(sql)) => client.simple_query(sql).await.map(|_| true),
                (false, First::Nothing | First::Deferred(_)) => Ok(true),
            };
            match fits {
                Ok(true) if !self.fenced(client) => {
                    let conn = Dedicated {
                        lease,
                        portals: AtomicU32::new(0),
                    };
                    return Ok((conn, deferred));
                }
                Ok(_) => {
                    // A read-only node: the connection is closed, and so are the host's idle
                    // ones. (Given back, a connection to a server before 14, which does not
                    // report the fence itself, would be taken and probed again until the
                    // deadline.)
                    self.seen_unfit(&lease.conn);
                    self.evict(&lease);
                    drop(lease);
                    if Instant::now() >= deadline {
                        return Err(match self.config().mode {
                            Mode::ReadWrite => Error::NoPrimary {
                                ms: start.elapsed().as_millis(),
                                last: None,
                            },
                            m => Error::NoHost {
                                mode: m.as_str(),
                                last: None,
                            },
                        });
                    }
                }
                Err(e) => {
                    // BEGIN and the probe change nothing: a broken connection is replaced.
                    if e.is_closed() {
                        self.suspect();
                    }
                    if !(e.is_closed() && Instant::now() < deadline) {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    /// `pool.connect()`: a connection to use alone until [`Session::release`].
    pub async fn connect(&self) -> Result<Session, Error> {
        self.connect_within(&Cancellation::default()).await
    }

    /// [`Pool::connect`] for a call with a timeout or an abort (a stream, a script or a COPY
    /// on a connection of its own): a stop while it waits for the connection fails it as not
    /// sent, as a transaction's wait for its connection does.
    pub async fn connect_within(&self, cancel: &Cancellation) -> Result<Session, Error> {
        let (conn, _) = cancel
            .before_sending(self.dedicated(First::Nothing))
            .await??;
        Ok(Session { conn })
    }
}

impl Dedicated {
    /// Runs a statement. No retries: on a dedicated connection a failure is the caller's
    /// to handle (`transaction(cb)` retries the whole callback). With `streaming`, the rows
    /// go to its sink in batches while they arrive; `prepare` overrides the pool's setting.
    ///
    /// With a timeout or an abort in `cancel`, a stop cancels the statement on the server
    /// (which aborts a transaction, as any error in it does); if the server does not
    /// confirm within the grace period, the connection is closed.
    pub async fn query<P: Params + Sync + ?Sized>(
        &self,
        sql: &str,
        params: &P,
        streaming: Option<&Streaming>,
        cancel: &Cancellation,
        prepare: Option<bool>,
    ) -> Result<QueryResult, Error> {
        self.query_behind(None, sql, params, streaming, cancel, prepare)
            .await
    }

    /// [`Dedicated::query`] with `first` (a deferred BEGIN) ahead of it in the same write and
    /// Sync group ([`hyperion_wire::Client::execute_behind`]).
    pub(crate) async fn query_behind<P: Params + Sync + ?Sized>(
        &self,
        first: Option<&str>,
        sql: &str,
        params: &P,
        streaming: Option<&Streaming>,
        cancel: &Cancellation,
        prepare: Option<bool>,
    ) -> Result<QueryResult, Error> {
        let client = self.lease.client();
        self.lease.mark_head();
        let work = async {
            let types = self.lease.pool().types();
            let mut retried = false;
            loop {
                let idle_before = first.is_none()
                    && client.state().transaction_status() == TransactionStatus::Idle;
                let stmt = self.statement(sql, prepare).await?;
                if let Some(s) = streaming {
                    s.sink.host(self.lease.conn.host);
                }
                let stream = Streaming::row_stream_here(streaming).await;
                match client.execute_behind(first, &stmt, params, stream).await {
                    Ok(result) => {
                        self.check_columns(sql, &stmt, &result);
                        // Outside a transaction block the statement committed at its Sync.
                        return crate::error::durable(result, "the statement");
                    }
                    // Refused at Bind as stale, outside a transaction block: nothing ran.
                    // Inside one the error stands (the transaction is aborted), but the
                    // stale statement is dropped all the same, for the next one.
                    Err(e) if types.stale(client, sql, &stmt, &e, idle_before) && !retried => {
                        retried = true;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.stoppable(cancel, work).await
    }

    /// Several statements in one simple Query (a migration): one result per statement, in
    /// text. The first error stops the rest (in one implicit transaction, unless the script
    /// holds its own BEGIN/COMMIT).
    pub async fn script(
        &self,
        sql: &str,
        cancel: &Cancellation,
    ) -> Result<Vec<QueryResult>, Error> {
        self.lease.mark_head();
        let client = self.lease.client();
        let work = async { crate::error::durable(client.simple_query(sql).await?, "the script") };
        self.stoppable(cancel, work).await
    }

    async fn stoppable<T>(
        &self,
        cancel: &Cancellation,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let Some(stopper) = Stopper::new(cancel, cancel.start()) else {
            return work.await;
        };
        stopper.check()?;
        // Boxed, as in `Pool::query`: inline, the stop path's state machine (a cancel
        // request, its connect and TLS included) made every statement's future several KB
        // (a transaction's 7 KB) that were allocated and moved per statement.
        Box::pin(stopper.run(&self.lease, work, |r: &Result<T, Error>| {
            r.as_ref().err().cloned()
        }))
        .await?
    }

    async fn statement(&self, sql: &str, prepare: Option<bool>) -> Result<Arc<Statement>, Error> {
        let pool = self.lease.pool();
        let named = prepare.unwrap_or(pool.config().prepare);
        Ok(pool
            .types()
            .statement(self.lease.client(), sql, named)
            .await?)
    }

    fn check_columns(&self, sql: &str, stmt: &Statement, result: &QueryResult) {
        self.lease.pool().types().check_unnamed(sql, stmt, result);
    }

    /// Starts `sql` as a stream read `batch` rows at a time ([`Cursor`]): binds a portal
    /// and reads its first batch (after a BEGIN when no transaction is open).
    pub async fn stream<P: Params + Sync + ?Sized>(
        &self,
        sql: &str,
        params: &P,
        batch: u32,
        prepare: Option<bool>,
    ) -> Result<Cursor, Error> {
        let client = self.lease.client();
        self.lease.mark_head();
        let own_tx = client.state().transaction_status() == TransactionStatus::Idle;
        if own_tx {
            client.simple_query("BEGIN").await?;
        }
        let n = self.portals.fetch_add(1, Ordering::Relaxed);
        let portal = format!("hc{n}");
        let batch = i32::try_from(batch.max(1)).unwrap_or(i32::MAX);
        let opened = async {
            let stmt = self.statement(sql, prepare).await?;
            let first = client.open_portal(&stmt, params, &portal, batch).await?;
            self.check_columns(sql, &stmt, &first);
            Ok::<_, Error>((stmt, first))
        }
        .await;
        match opened {
            Ok((_, first)) => Ok(Cursor {
                portal,
                shape: QueryResult {
                    columns: first.columns.clone(),
                    formats: first.formats.clone(),
                    ..QueryResult::default()
                },
                batch,
                own_tx,
                first: Some(first),
                done: false,
            }),
            Err(e) => {
                if own_tx {
                    self.end_own_tx(false).await;
                }
                Err(e)
            }
        }
    }

    async fn end_own_tx(&self, commit: bool) {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        // A failure leaves the connection mid-transaction: it is destroyed on return.
        let _ = self.lease.client().simple_query(sql).await;
    }

    /// Starts `sql`, a `COPY ... FROM STDIN`; the data goes through the returned [`CopyIn`].
    pub async fn copy_in(&self, sql: &str) -> Result<CopyIn, Error> {
        self.lease.mark_head();
        Ok(self.lease.client().copy_in(sql).await?)
    }

    /// Runs `sql`, a `COPY ... TO STDOUT`, handing its data to `sink` while `flow` allows.
    pub async fn copy_out(
        &self,
        sql: &str,
        flow: Arc<Flow>,
        sink: impl FnMut(bytes::Bytes) + Send + 'static,
    ) -> Result<QueryResult, Error> {
        self.lease.mark_head();
        Ok(self.lease.client().copy_out(sql, flow, sink).await?)
    }

    /// Cancels what the connection is running (a COPY TO whose consumer left), waiting up
    /// to the grace period for the server to take the cancel; the connection is destroyed
    /// on return if it could not be delivered.
    pub async fn cancel_running(&self) {
        let token = self.lease.client().cancel_token();
        if token.cancel(crate::cancel::CANCEL_GRACE).await.is_err() {
            self.lease.pool().evict(&self.lease);
        }
    }

    /// The key to cancel what the connection runs.
    pub fn cancel_token(&self) -> hyperion_wire::CancelToken {
        self.lease.client().cancel_token()
    }

    /// The backend process id (for diagnostics and tests).
    pub fn process_id(&self) -> i32 {
        self.lease.client().process_id()
    }

    /// Whether the connection is inside a transaction block (or a failed one).
    pub fn in_transaction(&self) -> bool {
        self.lease.client().state().transaction_status() != TransactionStatus::Idle
    }

    pub fn is_closed(&self) -> bool {
        self.lease.client().is_closed()
    }
}

/// An open stream: a portal read one batch at a time ([`Dedicated::stream`]).
pub struct Cursor {
    portal: String,
    /// The columns and formats of the portal's rows (its first batch's, without rows).
    shape: QueryResult,
    batch: i32,
    own_tx: bool,
    first: Option<QueryResult>,
    done: bool,
}

impl Cursor {
    /// The next batch of rows, `None` after the last. The batch that ends the result
    /// carries its command tag. An error ends the stream (and its own transaction).
    pub async fn next(&mut self, on: &Dedicated) -> Result<Option<QueryResult>, Error> {
        if self.done {
            return Ok(None);
        }
        let batch = match self.first.take() {
            Some(first) => Ok(first),
            None => {
                on.lease.mark_head();
                on.lease
                    .client()
                    .fetch_portal(&self.shape, &self.portal, self.batch)
                    .await
                    .map_err(Error::from)
            }
        };
        match batch {
            Ok(b) => {
                if !b.suspended {
                    self.finish(on, true).await?;
                }
                Ok(Some(b))
            }
            Err(e) => {
                self.done = true;
                if self.own_tx {
                    on.end_own_tx(false).await;
                }
                Err(e)
            }
        }
    }

    /// Ends the stream early: closes the portal (the rest is never produced) and ends its
    /// own transaction. Nothing to do after the last batch.
    pub async fn close(&mut self, on: &Dedicated) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        on.lease.mark_head();
        let closed = on.lease.client().close_portal(&self.portal).await;
        self.done = true;
        if !self.own_tx {
            return closed.map_err(Error::from);
        }
        match closed {
            // What the statement did stands (a data-modifying statement ran whole at its
            // first Execute), as it would have without a stream; its COMMIT's outcome is
            // reported as at the stream's end (a DELETE ... RETURNING left early).
            Ok(()) => Self::end_own_tx(on, true).await,
            Err(e) => {
                on.end_own_tx(false).await;
                Err(e.into())
            }
        }
    }

    async fn finish(&mut self, on: &Dedicated, commit: bool) -> Result<(), Error> {
        self.done = true;
        if !self.own_tx {
            // Inside the caller's transaction: the portal goes at its end; close it now so a
            // long transaction does not keep its resources.
            return on
                .lease
                .client()
                .close_portal(&self.portal)
                .await
                .map_err(Error::from);
        }
        Self::end_own_tx(on, commit).await
    }

    /// Ends the stream's own transaction: COMMIT, whose failure or doubt is the caller's to
    /// know (a statement run as a stream may have written), or ROLLBACK.
    async fn end_own_tx(on: &Dedicated, commit: bool) -> Result<(), Error> {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let results = match on.lease.client().simple_query(sql).await {
            Ok(results) => results,
            // As for a transaction's COMMIT: a statement run as a stream may have written.
            Err(e) if commit && e.is_closed() && !e.safe_to_retry() => {
                on.lease.pool().suspect();
                return Err(Error::InDoubt {
                    reason: "the connection failed while the stream's COMMIT was in flight: its writes may or may not have committed"
                        .into(),
                    cause: Some(e),
                });
            }
            Err(e) => return Err(e.into()),
        };
        crate::error::durable(results, "the stream's COMMIT")?;
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// A connection from `pool.connect()`, exclusive until released. Session state (`SET`,
/// temporary tables, advisory locks) stays with the connection when it goes back, as with
/// node-postgres and pgx; a connection released inside a transaction block, or with
/// [`Session::destroy`], is closed instead.
pub struct Session {
    pub conn: Dedicated,
}

impl Session {
    /// Gives the connection back to the pool.
    pub fn release(self) {}

    /// Closes the connection instead of giving it back (`release(err)`).
    pub fn destroy(self) {
        let lease = &self.conn.lease;
        lease.pool().evict(lease);
    }
}
