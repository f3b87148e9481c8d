//! The pool: its state, what it reports, the query retry loop and `end()`.
//!
//! How a query gets and gives back a connection is `lease.rs`; which nodes fit the pool's
//! mode is `role.rs`; the view of the hosts and failover are `hosts.rs` and `discovery.rs`.
//! One `pool.query` walks: [`Pool::query`] (retry loop) -> `acquire_shared` (a lease) ->
//! [`Pool::run`] (the statement, with the fence check) -> the lease's drop (given back, or
//! the connection destroyed when it no longer fits).

use crate::cancel::{Cancellation, Stopper};
use crate::config::{Mode, PoolConfig};
use crate::error::Error;
use crate::hosts::{HostInfo, HostState, Hosts};
use crate::lease::{Conn, Waiter};
use crate::role;
use crate::slots::Slots;
use crate::statement_text::{reads_only, refused, Refused};
use crate::types::TypeCache;
use hyperion_wire::{Client, Params, QueryResult, RowStream, TransactionStatus};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Per-query options.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Retry this query on a connection failure even if it may have reached the server
    /// (opt-in for reads on read-write pools; the default for read-only and prefer-standby
    /// pools, whose queries are all reads).
    pub retry: Option<bool>,
    /// A timeout and/or an abort that stop the query (see `cancel.rs`). A query that can be
    /// stopped takes its connection exclusively.
    pub cancel: Cancellation,
    /// Prepare the statement (named, cached); `None`: the pool's `prepare` setting.
    pub prepare: Option<bool>,
}

/// Takes a query's rows in batches while they arrive ([`Pool::query`]).
///
/// A query the pool retries runs again from its first row: `restart` says so before the
/// attempt starts, and every batch taken before it is void. The rows after the last batch
/// come with the query's result.
pub trait RowSink: Send + Sync {
    /// The next batch of the current attempt, in order. Called on the connection's side;
    /// the pool then wakes the task that was awaiting the query when the attempt started
    /// (a sink read by another task must wake that one itself).
    fn rows(&self, batch: QueryResult);
    /// Attempt `attempt` (2, 3, ...) starts: drop what the earlier ones delivered.
    fn restart(&self, attempt: u32);
    /// The attempt runs on a connection to host `index` (in configuration order), for
    /// tracing.
    fn host(&self, _index: usize) {}
}

/// Where a streamed query's batches go, and how large they are.
#[derive(Clone)]
pub struct Streaming {
    pub sink: Arc<dyn RowSink>,
    /// A batch is handed over once this many bytes of rows have arrived.
    pub batch_bytes: usize,
}

impl Streaming {
    /// The stream of one attempt: each batch goes to the sink, then wakes `reader` (the
    /// task awaiting the query, which reads the sink between polls of the query). Waking
    /// that task directly spares every query, most of which never stream, a wait on the
    /// sink registered and dropped around each poll.
    pub(crate) fn row_stream(&self, reader: Waker) -> RowStream {
        let sink = self.sink.clone();
        RowStream::new(self.batch_bytes, move |batch| {
            sink.rows(batch);
            reader.wake_by_ref();
        })
    }

    /// [`Streaming::row_stream`] for the task polling the caller; none without streaming.
    pub(crate) async fn row_stream_here(streaming: Option<&Streaming>) -> Option<RowStream> {
        let s = streaming?;
        let reader = std::future::poll_fn(|cx| std::task::Poll::Ready(cx.waker().clone())).await;
        Some(s.row_stream(reader))
    }
}

/// A snapshot of the pool, as `pool.status()` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub in_use: usize,
    pub waiting: usize,
}

/// Whether a statement that succeeded may have written: anything but a plain read by its
/// command tag. (A SELECT that calls a writing function cannot be told from one that does
/// not; it counts as a read.)
fn may_have_written(result: &QueryResult) -> bool {
    let verb = result
        .command_tag
        .as_deref()
        .and_then(|t| t.split(' ').next());
    !matches!(verb, Some("SELECT" | "SHOW" | "FETCH"))
}

/// How one attempt of a query ended.
enum Outcome {
    Done(Result<QueryResult, hyperion_wire::Error>),
    /// The node turned out read-only (fenced, or a standby) with this very response, and the
    /// statement failed or was a read: it did not write and can run again on the primary.
    /// For a read-only pool: the standby was promoted; the read runs again on a standby.
    Fenced,
}

/// What the pool knows about one of its connections (`pool.connections()`, for diagnostics
/// and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub host: String,
    pub process_id: i32,
    pub server_version_num: u32,
    pub in_flight: u32,
    /// The session cannot write (25006 seen, or read-only reported by ParameterStatus).
    pub read_only: bool,
    pub in_hot_standby: bool,
    pub default_transaction_read_only: bool,
    pub saw_read_only_error: bool,
}

pub(crate) struct Inner {
    pub(crate) config: PoolConfig,
    /// User-defined types learnt from `pg_type`, shared by every connection.
    pub(crate) types: Arc<TypeCache>,
    pub(crate) slots: Slots<Conn>,
    /// What each host was last seen to be (`hosts.rs`).
    pub(crate) hosts: Hosts,
    /// Every connection opened and not yet dropped, pooled or not: what `end({ timeoutMs })`
    /// and a superseded host's abandonment reach beyond the slots.
    pub(crate) conns: Mutex<Vec<Weak<Conn>>>,
    /// The failover monitor runs (`discovery.rs`).
    pub(crate) monitor_started: AtomicBool,
    /// When the last discovery round started (ms since the epoch; 0: never).
    pub(crate) last_discovery_ms: AtomicU64,
    /// Exclusive checkouts waiting for a connection, oldest first. A released connection is
    /// sent to the first live one, still held exclusively; `None` asks it to look again.
    pub(crate) waiters: Mutex<VecDeque<Waiter>>,
    /// Shared acquirers about to sleep on `changed` (gates the notify on the release path).
    pub(crate) sleepers: AtomicUsize,
    /// The connection (its address) that takes no new shared queries while exclusive
    /// checkouts wait, so that its pipeline empties and it can be handed over; 0: none. Under
    /// steady load every pipeline always holds a query, and a waiting transaction would
    /// otherwise never get a connection (`lease.rs`, `choose_drain`).
    pub(crate) draining: AtomicUsize,
    pub(crate) closed: AtomicBool,
    /// Connections being opened (`lease.rs` `open`): `end({ timeoutMs })` waits for them
    /// too, and past its grace gives them up (`abandoned`, then `abandon` signalled).
    pub(crate) opening: AtomicUsize,
    pub(crate) abandoned: AtomicBool,
    pub(crate) abandon: Notify,
    /// Signalled whenever a connection opens, fails to open, is evicted or freed.
    pub(crate) changed: Notify,
    pub(crate) waiting: AtomicUsize,
    /// The host that last accepted a read-write connection (or that discovery found to be
    /// the writable primary): tried first next time.
    pub(crate) primary_hint: AtomicUsize,
    pub(crate) epoch: Instant,
    /// LISTEN/NOTIFY's session and subscribers, made on the first `listen` (`listen.rs`).
    pub(crate) listen: OnceLock<Arc<crate::listen::Hub>>,
}

/// A pool over a cluster's nodes. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
}

/// The largest `poolSize`: far above any server's `max_connections`, and small enough that
/// the slots of a pool are never a large allocation.
pub const MAX_POOL_SIZE: usize = 10_000;

pub(crate) const NO_HINT: usize = usize::MAX;

impl Pool {
    pub fn new(config: PoolConfig) -> Result<Pool, Error> {
        if config.hosts.is_empty() {
            return Err(Error::Config("hosts must list at least one host".into()));
        }
        if config.pool_size == 0 || config.pool_size > MAX_POOL_SIZE {
            return Err(Error::Config(format!(
                "poolSize must be from 1 to {MAX_POOL_SIZE}, not {}",
                config.pool_size
            )));
        }
        // The startup packet is NUL-separated: such a value cannot be sent, on any host.
        for (name, value) in [
            ("user", Some(config.user.as_str())),
            ("database", config.database.as_deref()),
            ("applicationName", Some(config.application_name.as_str())),
            ("password", config.password.as_deref()),
        ] {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(Error::Config(format!(
                    "{name} cannot contain a NUL character"
                )));
            }
        }
        if config.retry.max_attempts == 0 {
            return Err(Error::Config("retry.maxAttempts must be at least 1".into()));
        }
        Ok(Pool {
            inner: Arc::new(Inner {
                slots: Slots::new(config.pool_size),
                hosts: Hosts::new(config.hosts.iter().map(|h| h.to_string()).collect()),
                conns: Mutex::new(Vec::new()),
                monitor_started: AtomicBool::new(false),
                last_discovery_ms: AtomicU64::new(0),
                config,
                types: Arc::new(TypeCache::new()),
                waiters: Mutex::new(VecDeque::new()),
                sleepers: AtomicUsize::new(0),
                draining: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                opening: AtomicUsize::new(0),
                abandoned: AtomicBool::new(false),
                abandon: Notify::new(),
                changed: Notify::new(),
                waiting: AtomicUsize::new(0),
                primary_hint: AtomicUsize::new(NO_HINT),
                epoch: Instant::now(),
                listen: OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// The types this pool has learnt (what decoding its results needs).
    pub fn types(&self) -> &Arc<TypeCache> {
        &self.inner.types
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn status(&self) -> Status {
        let view = self.inner.slots.snapshot();
        let size = view.len();
        let available = view
            .iter()
            .filter(|v| v.shared == 0 && !v.exclusive && v.item.in_flight() == 0)
            .count();
        // Queries pipelined behind another statement have not started either: each shared
        // lease but the one at the head of its connection waits.
        let queued: usize = view
            .iter()
            .map(|v| v.shared.saturating_sub(1) as usize)
            .sum();
        Status {
            max_size: self.inner.config.pool_size,
            size,
            available,
            in_use: size - available,
            waiting: self.inner.waiting.load(Ordering::Acquire) + queued,
        }
    }

    /// What each host was last seen to be (`pool.hosts()`), in configuration order.
    pub fn hosts(&self) -> Vec<HostInfo> {
        (0..self.inner.hosts.len())
            .map(|i| self.inner.hosts.info(i))
            .collect()
    }

    /// The host view, for setting where its events go.
    pub fn host_view(&self) -> &Hosts {
        &self.inner.hosts
    }

    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.inner
            .slots
            .snapshot()
            .iter()
            .map(|v| {
                let c = &v.item;
                let st = c.client.state();
                ConnectionInfo {
                    host: self
                        .inner
                        .config
                        .hosts
                        .get(c.host)
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    process_id: c.client.process_id(),
                    server_version_num: c.client.server_version_num(),
                    in_flight: st.in_flight(),
                    read_only: st.is_read_only(),
                    in_hot_standby: st.in_hot_standby(),
                    default_transaction_read_only: st.default_transaction_read_only(),
                    saw_read_only_error: st.saw_read_only_error(),
                }
            })
            .collect()
    }

    /// Runs one statement with parameters, on a connection that fits the pool's mode,
    /// retrying what is safe to retry within `acquireTimeoutMs`. With `streaming`, the rows
    /// go to its sink in batches while they arrive (see [`RowSink`]) and the result holds
    /// the rows after the last batch.
    pub async fn query<P: Params + Sync + ?Sized>(
        &self,
        sql: &str,
        params: &P,
        opts: QueryOptions,
        streaming: Option<&Streaming>,
    ) -> Result<QueryResult, Error> {
        match refused(sql) {
            None => {}
            Some(Refused::Transaction) => return Err(Error::UnsafeTransaction),
            Some(Refused::Encoding) => {
                return Err(hyperion_wire::Error::unsupported(
                    "client_encoding cannot be changed through pool.query: the client reads and \
                     writes text as UTF-8, and statements other callers pipelined on the same \
                     connection would run under the new encoding",
                )
                .into())
            }
        }
        let cfg = &self.inner.config;
        let start = Instant::now();
        let deadline = start + cfg.acquire_timeout;
        // The mode's default retries reads only: a write that may have run is never run
        // again unless the caller asked (a prefer-standby pool with no standby writes on
        // the primary).
        // (Read only once a query failed: reading the statement's text costs every query.)
        let retry_reads = || {
            opts.retry.unwrap_or(
                matches!(cfg.mode, Mode::ReadOnly | Mode::PreferStandby) && reads_only(sql),
            )
        };
        let mut read_retries = 0;
        let mut attempt = 0;
        let stopper = Stopper::new(&opts.cancel, start);
        self.start_monitor();
        loop {
            let lease = match &stopper {
                // The first attempt's clock read is `start`'s; a retry reads it again.
                None => {
                    let now = if attempt == 0 {
                        self.ms_at(start)
                    } else {
                        self.now_ms()
                    };
                    self.acquire_shared(start, deadline, now).await?
                }
                // The paths a query that can be stopped takes are boxed, here and below:
                // inline, their state machines made every query's future several KB that
                // were allocated and copied per query (6.5 KB in all).
                Some(s) => Box::pin(self.acquire_stoppable(s, start, deadline)).await?,
            };
            if lease.exclusive {
                lease.mark_head();
            }
            attempt += 1;
            if attempt > 1 {
                if let Some(s) = streaming {
                    s.sink.restart(attempt);
                }
            }
            if let Some(s) = streaming {
                s.sink.host(lease.conn.host);
            }
            let named = opts.prepare.unwrap_or(cfg.prepare);
            let work = self.run(&lease.conn, sql, params, streaming, named);
            let outcome = match &stopper {
                None => work.await,
                Some(s) => {
                    Box::pin(s.run(&lease, work, |o| match o {
                        Outcome::Done(Err(e)) => Some(Error::Wire(e.clone())),
                        _ => None,
                    }))
                    .await?
                }
            };
            match outcome {
                Outcome::Done(Ok(result)) => {
                    if lease.conn.client.state().transaction_status() != TransactionStatus::Idle {
                        return Err(self.left_in_transaction(sql, &lease));
                    }
                    if self.fenced(&lease.conn.client) {
                        // A write returned as the fence (or promotion) came: its host is not
                        // confirmed in the role it no longer has, and its connection goes.
                        self.seen_unfit(&lease.conn);
                        self.evict(&lease);
                    } else {
                        self.confirm(&lease.conn);
                        if lease.conn.client.state().client_encoding_changed() {
                            // `SET client_encoding` through a shared connection: its text
                            // would no longer read as UTF-8 for the next caller.
                            self.evict(&lease);
                        }
                    }
                    return crate::error::durable(result, "the statement");
                }
                Outcome::Fenced => {
                    self.seen_unfit(&lease.conn);
                    self.evict(&lease);
                    if Instant::now() < deadline {
                        continue;
                    }
                    return Err(self.no_node_error(start, None));
                }
                Outcome::Done(Err(e)) => {
                    if e.is_closed() {
                        self.evict(&lease);
                        self.suspect();
                    }
                    // An unsent request did not run: it goes again at once. A read that may
                    // have run runs again when the caller allows it, up to the retry
                    // policy's maxAttempts executions in all, after its backoff.
                    if e.is_closed() && e.safe_to_retry() && Instant::now() < deadline {
                        continue;
                    }
                    if e.is_closed() && read_retries + 1 < cfg.retry.max_attempts && retry_reads() {
                        let now = Instant::now();
                        if now < deadline {
                            let delay = cfg.retry.delay(read_retries).min(deadline - now);
                            read_retries += 1;
                            if let Some(s) = &stopper {
                                tokio::select! {
                                    biased;
                                    stop = s.fired() => return Err(Error::not_sent(stop)),
                                    () = tokio::time::sleep(delay) => {}
                                }
                            } else {
                                tokio::time::sleep(delay).await;
                            }
                            continue;
                        }
                    }
                    return Err(self.settle_lost(sql, &lease.conn, e));
                }
            }
        }
    }

    /// A statement through the pool's own connections left its session inside a transaction
    /// block (a BEGIN that `refused` did not see, behind a nested comment say).
    /// No one else's statement may join that transaction: the session is closed, which rolls
    /// it back, and statements pipelined behind this one fail as on a lost connection. A write
    /// may have been committed by a COMMIT pipelined behind it, so it is in doubt.
    fn left_in_transaction(&self, sql: &str, lease: &crate::lease::Lease) -> Error {
        lease
            .conn
            .client
            .abort("a statement left a shared connection inside a transaction block");
        self.evict(lease);
        if reads_only(sql) {
            return Error::UnsafeTransaction;
        }
        Error::InDoubt {
            reason: "the statement ran inside a transaction block left open on a shared connection; \
                     the connection was closed, which rolls it back unless a COMMIT sent on it ran first"
                .into(),
            cause: None,
        }
    }

    /// The error a query reports when it fails for good. A connection lost (with no word
    /// from the server, or with a FATAL one) after the statement was written leaves a write
    /// in doubt: it may have committed on that host. A plain read is not in doubt: it reports the lost connection.
    fn settle_lost(&self, sql: &str, conn: &Conn, e: hyperion_wire::Error) -> Error {
        // A FATAL error (an administrator's shutdown, a crash of another backend) ends the
        // session as surely as a lost socket, and a write's commit may have been flushed
        // before it: in doubt as well. (A protocol error, a server breaking the protocol,
        // reports itself: PROTOCOL_ERROR.)
        let lost = e.kind() == hyperion_wire::ErrorKind::Closed || e.as_db().is_some();
        if lost && e.is_closed() && !e.safe_to_retry() && !reads_only(sql) {
            let host = self.inner.hosts.name(conn.host);
            let reason = match e.as_db() {
                Some(db) => format!(
                    "the server {host} ended the session ({}) while the statement was in \
                     flight: it may or may not have run there",
                    db.code
                ),
                None => format!(
                    "the connection to {host} was lost while the statement was in flight: it \
                     may or may not have run there"
                ),
            };
            return Error::InDoubt {
                reason,
                cause: Some(e),
            };
        }
        e.into()
    }

    /// A statement succeeded on `conn`: its host is confirmed in the role the mode needs.
    fn confirm(&self, conn: &Conn) {
        let state = match self.inner.config.mode {
            Mode::ReadWrite => HostState::Primary,
            Mode::ReadOnly => HostState::Standby,
            Mode::PreferStandby | Mode::Any => return,
        };
        self.inner.hosts.set(conn.host, state);
    }

    /// `conn` turned out not to fit the mode (a fence, a standby, a promotion): its host is
    /// marked so, and the host's idle connections go with it. One fenced write does not
    /// become one per pooled connection.
    pub(crate) fn seen_unfit(&self, conn: &Conn) {
        let mut state = role::session_state(conn.client.state());
        // A session of a server before 14 does not report read-only-ness, so its own
        // reports say "primary": the probe that found it read-only is the evidence (a fence
        // or a standby; either way not this read-write pool's node).
        if self.inner.config.mode == Mode::ReadWrite && state == HostState::Primary {
            state = HostState::Fenced;
        }
        self.inner.hosts.set(conn.host, state);
        self.close_idle(conn.host);
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// `at` in ms since the pool's epoch (a query passes the instant it started, one clock
    /// read fewer on its path).
    pub(crate) fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.inner.epoch).as_millis())
            .unwrap_or(u64::MAX)
    }

    /// One attempt of a query on `conn`, with the read-write pool's fence check.
    ///
    /// PostgreSQL applies a fence (`default_transaction_read_only=on` + reload) when a
    /// session reads its next message, before running it. From 14 on, the server then
    /// reports the new value as a ParameterStatus in the same response, before
    /// ReadyForQuery; since results are handed out only at ReadyForQuery, checking the
    /// connection's state afterwards is a validation that costs nothing. Older servers do not
    /// report it, so a `SHOW transaction_read_only` travels in the same write, ahead of the
    /// query, unless the connection was validated within `validationIntervalMs`.
    async fn run<P: Params + Sync + ?Sized>(
        &self,
        conn: &Conn,
        sql: &str,
        params: &P,
        streaming: Option<&Streaming>,
        named: bool,
    ) -> Outcome {
        let cfg = &self.inner.config;
        let state = conn.client.state();
        let interval = u64::try_from(cfg.validation_interval.as_millis()).unwrap_or(u64::MAX);
        // Only a server before 14 is validated by a probe, and only it reads the time of
        // the last validation: a clock read fewer per query on the others.
        let probing = role::needs_probe(cfg.mode, state);
        let now = if probing { self.now_ms() } else { 0 };
        let probe = probing
            && (interval == 0
                || now.saturating_sub(conn.validated_at_ms.load(Ordering::Relaxed)) >= interval);
        let types = &self.inner.types;
        let mut retried = false;
        let result = loop {
            let idle_before = state.transaction_status() == TransactionStatus::Idle;
            // A cached statement without an await; preparing one (a round trip, type
            // lookups) is boxed, so its state machine is not part of every query's future.
            let cached = types.cached(&conn.client, sql, named);
            let stmt = match cached {
                Some(s) => Ok(s),
                None => Box::pin(types.statement(&conn.client, sql, named)).await,
            };
            let stmt = match stmt {
                Ok(s) => s,
                // Preparing (Parse, Describe, type lookups) runs nothing of the statement: a
                // connection lost meanwhile leaves no write in doubt, and it goes again.
                Err(e) if e.is_closed() => return Outcome::Done(Err(e.ran_nothing())),
                Err(e) => return Outcome::Done(Err(e)),
            };
            let stream = Streaming::row_stream_here(streaming).await;
            // The probe goes with the first attempt; a second one (below) follows its answer.
            let r = if probe && !retried {
                match Box::pin(
                    conn.client
                        .execute_after(role::PROBE_SQL, &stmt, params, stream),
                )
                .await
                {
                    Err(e) => return Outcome::Done(Err(e)),
                    Ok((Err(e), _)) => return Outcome::Done(Err(e)),
                    Ok((Ok(probed), executed)) => {
                        if !role::probe_says_writable(&probed) {
                            return Outcome::Fenced;
                        }
                        executed
                    }
                }
            } else {
                conn.client.execute_streaming(&stmt, params, stream).await
            };
            match &r {
                Ok(result) => types.check_unnamed(sql, &stmt, result),
                // Refused at Bind as stale: nothing ran (no row was streamed either); once
                // described again it runs.
                Err(e) if types.stale(&conn.client, sql, &stmt, e, idle_before) && !retried => {
                    retried = true;
                    continue;
                }
                Err(_) => {}
            }
            break r;
        };
        if self.fenced(&conn.client) {
            // A fence can reach the session after its statement's transaction began:
            // PostgreSQL applies a reload before any message it reads, Execute included,
            // but fixes a transaction's read-only-ness when it starts (at Parse or Bind). A
            // write that succeeded ran writable and committed; running it again would apply
            // it twice. (A fence applied before the transaction makes every write fail with
            // 25006.) The connection is evicted with its next statement.
            // A statement that may hold a write though its tag says SELECT (a `WITH` whose
            // member inserts) counts as a write here too.
            // So does a write that succeeded on a read-only pool's standby as it was
            // promoted (writing there is a misuse, but it ran, and ran once).
            if matches!(&result, Ok(r) if may_have_written(r) || !reads_only(sql)) {
                return Outcome::Done(result);
            }
            return Outcome::Fenced;
        }
        if probing && !matches!(&result, Err(e) if e.is_closed()) {
            conn.validated_at_ms.store(now, Ordering::Relaxed);
        }
        Outcome::Done(result)
    }

    pub(crate) fn no_node_error(
        &self,
        start: Instant,
        last: Option<hyperion_wire::Error>,
    ) -> Error {
        match self.inner.config.mode {
            Mode::ReadWrite => Error::NoPrimary {
                ms: start.elapsed().as_millis(),
                last,
            },
            m => Error::NoHost {
                mode: m.as_str(),
                last,
            },
        }
    }

    /// Whether a connection no longer fits the pool's mode ([`role::session_unfit`]).
    #[inline]
    pub(crate) fn fenced(&self, client: &Client) -> bool {
        role::session_unfit(self.inner.config.mode, client.state())
    }

    /// Whether the next statement on `client` needs the pre-14 probe (see [`Pool::run`]).
    pub(crate) fn needs_probe(&self, client: &Client) -> bool {
        role::needs_probe(self.inner.config.mode, client.state())
    }

    /// Closes the pool: new queries fail with "pool is closed" at once; queries in flight
    /// finish on their connections, which then send Terminate and close.
    ///
    /// With `grace`, whatever is still in flight when it has passed (a statement on a hung
    /// host, an open transaction) is abandoned: its caller gets a lost-connection error (a
    /// write `IN_DOUBT`), and every socket is closed, so a process can always exit.
    pub async fn end(&self, grace: Option<Duration>) {
        self.inner.closed.store(true, Ordering::Release);
        for v in self.inner.slots.snapshot() {
            // A connection a query or transaction holds is left to it: closed now, a
            // statement not yet written on it would fail, although it began before end().
            // It closes (Terminate) when its last holder lets go of it.
            if let Some((conn, false)) = self.inner.slots.remove_held(v.id) {
                conn.client.close();
            }
        }
        self.inner.changed.notify_waiters();
        for w in self.waiters().drain(..) {
            let _ = w.send(None);
        }
        let Some(grace) = grace else { return };
        let deadline = Instant::now() + grace;
        loop {
            let open = self.unpooled();
            if open.iter().all(|c| c.client.is_closed())
                && self.inner.opening.load(Ordering::Acquire) == 0
            {
                return;
            }
            if Instant::now() >= deadline {
                let reason = format!(
                    "the pool was ended and its {}ms grace passed: the connection was closed",
                    grace.as_millis()
                );
                // Connections still being opened are given up too (their callers get
                // POOL_CLOSED: nothing was sent), so that no socket outlives the grace.
                self.inner.abandoned.store(true, Ordering::Release);
                self.inner.abandon.notify_waiters();
                for c in open {
                    c.client.abort(&reason);
                }
                return;
            }
            drop(open);
            tokio::time::sleep(Duration::from_millis(10).min(grace)).await;
        }
    }
}
