//! The pool: connections in fixed slots, leases, eviction and the query retry loop.
//!
//! Connections live in [`Slots`]: `poolSize` places, each governed by one atomic word, so a
//! query or a transaction takes and returns a connection without a lock (see `slots.rs`). A
//! connection is used through a [`Lease`]: *shared* for `pool.query` (many queries
//! pipelined on one socket) or *exclusive* for a transaction (nothing else may run on the
//! session between BEGIN and COMMIT). A pipelined query can never slip into somebody's
//! transaction: a slot grants a shared lease only while it is not held exclusively, and an
//! exclusive one only when it holds no lease at all. Only the slow path locks: exclusive
//! waiters queue in order (a released connection is handed to the first of them directly).
//! A connection returned broken, read-only (on a read-write pool) or inside a transaction is
//! destroyed, never reused.

use crate::cancel::{Cancellation, Stopper};
use crate::config::{Mode, PoolConfig};
use crate::error::Error;
use crate::hosts::{HostInfo, HostState, Hosts};
use crate::route::{self, RouteError};
use crate::slots::{Reservation, SlotId, SlotLease, Slots};
use crate::types::TypeCache;
use hyperion_wire::{Client, Params, QueryResult, RowStream, TransactionStatus};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

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
}

/// Takes a query's rows in batches while they arrive ([`Pool::query`]).
///
/// A query the pool retries runs again from its first row: `restart` says so before the
/// attempt starts, and every batch taken before it is void. The rows after the last batch
/// come with the query's result.
pub trait RowSink: Send + Sync {
    /// The next batch of the current attempt, in order.
    fn rows(&self, batch: QueryResult);
    /// Attempt `attempt` (2, 3, ...) starts: drop what the earlier ones delivered.
    fn restart(&self, attempt: u32);
}

/// Where a streamed query's batches go, and how large they are.
#[derive(Clone)]
pub struct Streaming {
    pub sink: Arc<dyn RowSink>,
    /// A batch is handed over once this many bytes of rows have arrived.
    pub batch_bytes: usize,
}

impl Streaming {
    pub(crate) fn row_stream(&self) -> RowStream {
        let sink = self.sink.clone();
        RowStream::new(self.batch_bytes, move |batch| sink.rows(batch))
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

pub(crate) struct Conn {
    pub(crate) client: Client,
    /// Index of its host in the configuration (and the host view).
    pub(crate) host: usize,
    /// When the connection was last seen writable (ms since the pool's epoch).
    validated_at_ms: AtomicU64,
    /// When the statement at the head of its pipeline started, as far as the pool can tell:
    /// when a query took it idle, or when the query before completed (ms since the epoch).
    pub(crate) head_since_ms: AtomicU64,
}

impl Conn {
    pub(crate) fn in_flight(&self) -> u32 {
        self.client.state().in_flight()
    }

    /// Busy with one statement for longer than [`STALLED_MS`]: a query joining its pipeline
    /// would wait behind that statement for as long as it runs, so the pool sends it
    /// elsewhere, or makes it wait for a connection (up to `acquireTimeoutMs`).
    fn stalled(&self, shared: u32, now_ms: u64) -> bool {
        (shared > 0 || self.in_flight() > 0)
            && now_ms.saturating_sub(self.head_since_ms.load(Ordering::Relaxed)) > STALLED_MS
    }
}

/// How long the statement at the head of a connection's pipeline may run before the pool
/// stops adding queries behind it. Pipelined statements complete in microseconds to a few
/// milliseconds each under load; one that runs longer than this holds the connection the
/// way a checked-out connection would.
const STALLED_MS: u64 = 100;

/// The right to use one connection, shared or exclusive; given back on drop.
pub(crate) struct Lease {
    pool: Pool,
    pub(crate) conn: Arc<Conn>,
    /// `None` for a connection opened for a query that began before `end()`: it never
    /// joined the pool and closes when its last handle goes.
    id: Option<SlotId>,
    exclusive: bool,
}

impl Lease {
    pub(crate) fn client(&self) -> &Client {
        &self.conn.client
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A statement starts at the head of this connection's pipeline now (for an exclusive
    /// lease: the pool's stall watch reads it).
    pub(crate) fn mark_head(&self) {
        self.conn
            .head_since_ms
            .store(self.pool.now_ms(), Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            if self.exclusive {
                self.pool.return_exclusive(id, &self.conn);
            } else {
                self.pool.return_shared(id, &self.conn);
            }
        }
    }
}

/// Validation probe for servers that do not report `default_transaction_read_only`
/// (before PostgreSQL 14).
const PROBE_SQL: &str = "SHOW transaction_read_only";

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

/// Whether `sql` can only read: it starts with SELECT, SHOW, VALUES or TABLE (a `WITH` may
/// hold a write, and a SELECT that calls a writing function cannot be told from one that
/// does not: it counts as a read, as in [`may_have_written`]).
fn reads_only(sql: &str) -> bool {
    let mut s = sql.trim_start();
    // Leading comments and parentheses.
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest.trim_start();
        } else {
            break;
        }
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    matches!(word.as_str(), "SELECT" | "SHOW" | "VALUES" | "TABLE")
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

/// What a waiter is sent: a connection, or `None` to look again (a slot came free).
type Handoff = Option<(SlotId, Arc<Conn>)>;
type Waiter = oneshot::Sender<Handoff>;

pub(crate) struct Inner {
    pub(crate) config: PoolConfig,
    /// User-defined types learnt from `pg_type`, shared by every connection.
    types: Arc<TypeCache>,
    pub(crate) slots: Slots<Conn>,
    /// What each host was last seen to be (`hosts.rs`).
    pub(crate) hosts: Hosts,
    /// Every connection opened and not yet dropped, pooled or not: what `end({ timeoutMs })`
    /// and a superseded host's abandonment reach beyond the slots.
    conns: Mutex<Vec<Weak<Conn>>>,
    /// The failover monitor runs (`discovery.rs`).
    pub(crate) monitor_started: AtomicBool,
    /// When the last discovery round started (ms since the epoch; 0: never).
    pub(crate) last_discovery_ms: AtomicU64,
    /// Exclusive checkouts waiting for a connection, oldest first. A released connection is
    /// sent to the first live one, still held exclusively; `None` asks it to look again.
    waiters: Mutex<VecDeque<Waiter>>,
    /// Shared acquirers about to sleep on `changed` (gates the notify on the release path).
    sleepers: AtomicUsize,
    closed: AtomicBool,
    /// Signalled whenever a connection opens, fails to open, is evicted or freed.
    pub(crate) changed: Notify,
    waiting: AtomicUsize,
    /// The host that last accepted a read-write connection (or that discovery found to be
    /// the writable primary): tried first next time.
    pub(crate) primary_hint: AtomicUsize,
    epoch: Instant,
}

/// A pool over a cluster's nodes. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
}

/// The largest `poolSize`: far above any server's `max_connections`, and small enough that
/// the slots of a pool are never a large allocation.
pub const MAX_POOL_SIZE: usize = 10_000;

const NO_HINT: usize = usize::MAX;

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
                closed: AtomicBool::new(false),
                changed: Notify::new(),
                waiting: AtomicUsize::new(0),
                primary_hint: AtomicUsize::new(NO_HINT),
                epoch: Instant::now(),
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

    fn waiters(&self) -> MutexGuard<'_, VecDeque<Waiter>> {
        // Every critical section is a push, a pop or a drain: a panic cannot leave the queue
        // inconsistent, so a poisoned lock is still usable.
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Every live connection the pool opened, pooled or not.
    pub(crate) fn unpooled(&self) -> Vec<Arc<Conn>> {
        let conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.iter().filter_map(Weak::upgrade).collect()
    }

    fn register(&self, conn: &Arc<Conn>) {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|w| w.strong_count() > 0);
        conns.push(Arc::downgrade(conn));
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
        let cfg = &self.inner.config;
        let start = Instant::now();
        let deadline = start + cfg.acquire_timeout;
        let retry_reads = opts
            .retry
            .unwrap_or(matches!(cfg.mode, Mode::ReadOnly | Mode::PreferStandby));
        let mut read_retries = 0;
        let mut attempt = 0;
        let stopper = Stopper::new(&opts.cancel, start);
        self.start_monitor();
        loop {
            let lease = match &stopper {
                None => self.acquire_shared(start, deadline).await?,
                Some(s) => self.acquire_stoppable(s, start, deadline).await?,
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
            let stream = streaming.map(Streaming::row_stream);
            let work = self.run(&lease.conn, sql, params, stream);
            let outcome = match &stopper {
                None => work.await,
                Some(s) => {
                    s.run(&lease, work, |o| match o {
                        Outcome::Done(Err(e)) => Some(Error::Wire(e.clone())),
                        _ => None,
                    })
                    .await?
                }
            };
            match outcome {
                Outcome::Done(Ok(result)) => {
                    self.confirm(&lease.conn);
                    return Ok(result);
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
                    if e.is_closed() && retry_reads && read_retries + 1 < cfg.retry.max_attempts {
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

    /// The error a query reports when it fails for good. A connection lost (with no word
    /// from the server) after the statement was written leaves a write in doubt: it may have
    /// committed on that host. A plain read is not in doubt: it reports the lost connection.
    fn settle_lost(&self, sql: &str, conn: &Conn, e: hyperion_wire::Error) -> Error {
        if e.kind() == hyperion_wire::ErrorKind::Closed && !e.safe_to_retry() && !reads_only(sql) {
            return Error::InDoubt {
                reason: format!(
                    "the connection to {} was lost while the statement was in flight: it may or \
                     may not have run there",
                    self.inner.hosts.name(conn.host)
                ),
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
        let st = conn.client.state();
        let state = if st.in_hot_standby() {
            HostState::Standby
        } else if st.is_read_only() {
            HostState::Fenced
        } else {
            HostState::Primary
        };
        self.inner.hosts.set(conn.host, state);
        self.close_idle(conn.host);
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
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
        stream: Option<RowStream>,
    ) -> Outcome {
        let cfg = &self.inner.config;
        let read_write = cfg.mode == Mode::ReadWrite;
        let state = conn.client.state();
        let interval = u64::try_from(cfg.validation_interval.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        let probe = read_write
            && !state.reports_read_only()
            && (interval == 0
                || now.saturating_sub(conn.validated_at_ms.load(Ordering::Relaxed)) >= interval);
        let result = if probe {
            let stmt = match self.inner.types.prepare(&conn.client, sql).await {
                Ok(s) => s,
                Err(e) => return Outcome::Done(Err(e)),
            };
            match conn
                .client
                .execute_after(PROBE_SQL, &stmt, params, stream)
                .await
            {
                Err(e) => return Outcome::Done(Err(e)),
                Ok((Err(e), _)) => return Outcome::Done(Err(e)),
                Ok((Ok(probed), executed)) => {
                    let writable = probed
                        .first()
                        .and_then(|r| r.rows.first())
                        .and_then(|row| row.values().next().flatten())
                        == Some(&b"off"[..]);
                    if !writable {
                        return Outcome::Fenced;
                    }
                    executed
                }
            }
        } else {
            match self.inner.types.prepare(&conn.client, sql).await {
                Ok(stmt) => conn.client.execute_streaming(&stmt, params, stream).await,
                Err(e) => Err(e),
            }
        };
        if self.fenced(&conn.client) {
            // A fence can reach the session after its statement's transaction began:
            // PostgreSQL applies a reload before any message it reads, Execute included,
            // but fixes a transaction's read-only-ness when it starts (at Parse or Bind). A
            // write that succeeded ran writable and committed; running it again would apply
            // it twice. (A fence applied before the transaction makes every write fail with
            // 25006.) The connection is evicted with its next statement.
            if read_write && matches!(&result, Ok(r) if may_have_written(r)) {
                return Outcome::Done(result);
            }
            return Outcome::Fenced;
        }
        if read_write && !matches!(&result, Err(e) if e.is_closed()) {
            conn.validated_at_ms.store(now, Ordering::Relaxed);
        }
        Outcome::Done(result)
    }

    fn no_node_error(&self, start: Instant, last: Option<hyperion_wire::Error>) -> Error {
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

    fn lease(&self, l: SlotLease<Conn>) -> Lease {
        Lease {
            pool: self.clone(),
            conn: l.item,
            id: Some(l.id),
            exclusive: l.exclusive,
        }
    }

    /// Whether a connection no longer fits the pool's mode: a read-write pool's node turned
    /// read-only (fenced, or a standby), or a read-only pool's standby was promoted. A
    /// promoted server reports `in_hot_standby = off` at each session's next ReadyForQuery
    /// (PostgreSQL 14 on; older servers do not tell, and their standbys are not rechecked).
    pub(crate) fn fenced(&self, client: &Client) -> bool {
        let st = client.state();
        match self.inner.config.mode {
            Mode::ReadWrite => st.is_read_only(),
            Mode::ReadOnly => st.reports_read_only() && !st.in_hot_standby(),
            Mode::PreferStandby | Mode::Any => false,
        }
    }

    /// Whether the next statement on `conn` needs the pre-14 probe (see [`Pool::run`]).
    pub(crate) fn needs_probe(&self, client: &Client) -> bool {
        self.inner.config.mode == Mode::ReadWrite && !client.state().reports_read_only()
    }

    pub(crate) fn probe_sql() -> &'static str {
        PROBE_SQL
    }

    fn timed_out(&self, start: Instant) -> Error {
        if self.inner.slots.ready() == 0 {
            self.no_node_error(start, None)
        } else {
            Error::AcquireTimeout {
                ms: self.inner.config.acquire_timeout.as_millis(),
            }
        }
    }

    /// Whether new work may go to `conn`: its host was not seen unfit for the mode since.
    fn usable(&self, conn: &Conn) -> bool {
        route::fits(self.inner.config.mode, self.inner.hosts.state(conn.host))
    }

    /// Drops connections whose socket is gone.
    fn purge_closed(&self) {
        for c in self.inner.slots.remove_if(|c| c.client.is_closed()) {
            c.client.close();
        }
    }

    /// A shared lease for a query: an idle connection, else a new one while a slot is free,
    /// else the least loaded connection not held by a transaction (its pipeline provides the
    /// backpressure) whose current statement is not a long one ([`Conn::stalled`]). Waits,
    /// up to `acquireTimeoutMs` (then 53300), only when every connection is exclusive,
    /// stalled or still being opened.
    async fn acquire_shared(&self, start: Instant, deadline: Instant) -> Result<Lease, Error> {
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            // The common case takes no registration at all.
            if let Some(next) = self.pick_shared() {
                return self.take_shared(next, start, deadline).await;
            }
            // Slow path: register as a sleeper, then look again, so that a release that
            // happens after the look sees us and notifies (the fences pair with
            // `notify_sleepers`).
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.inner.sleepers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            self.purge_closed();
            if let Some(next) = self.pick_shared() {
                self.inner.sleepers.fetch_sub(1, Ordering::SeqCst);
                return self.take_shared(next, start, deadline).await;
            }
            self.inner.waiting.fetch_add(1, Ordering::AcqRel);
            let woke = tokio::time::timeout_at(deadline.into(), notified).await;
            self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
            self.inner.sleepers.fetch_sub(1, Ordering::SeqCst);
            if woke.is_err() {
                return Err(self.timed_out(start));
            }
        }
    }

    /// An idle connection's shared lease, else a free slot to open one in, else the least
    /// loaded connection not held by a transaction nor stalled; `None` when every connection
    /// is held exclusively, stalled or being opened, and no slot is free.
    fn pick_shared(&self) -> Option<Result<SlotLease<Conn>, Reservation>> {
        // Closed connections are skipped here and purged on the slow path; so are stalled
        // ones (a long statement at the head of the pipeline).
        let now = self.now_ms();
        let best = self.inner.slots.share_best(|c, shared| {
            if c.client.is_closed() || c.stalled(shared, now) || !self.usable(c) {
                return None;
            }
            let load = c.in_flight();
            Some(if shared == 0 && load == 0 {
                0
            } else {
                u64::from(load) + 1
            })
        });
        match best {
            Some(l) if l.item.in_flight() == 0 => {
                // Idle (or joined in the same instant as another query): the head starts now.
                l.item.head_since_ms.store(now, Ordering::Relaxed);
                Some(Ok(l))
            }
            // Busy: a free slot (a new connection) beats joining a pipeline.
            Some(l) => match self.inner.slots.reserve() {
                Some(r) => {
                    drop(self.lease(l));
                    Some(Err(r))
                }
                None => Some(Ok(l)),
            },
            None => self.inner.slots.reserve().map(Err),
        }
    }

    async fn take_shared(
        &self,
        next: Result<SlotLease<Conn>, Reservation>,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        match next {
            Ok(l) => Ok(self.lease(l)),
            Err(r) => self.open(r, false, start, deadline).await,
        }
    }

    /// An exclusive lease for a query that can be stopped (see `cancel.rs`), unless the stop
    /// fires first. The acquisition runs in a task of its own: opening a connection is not
    /// to be cut short halfway (its slot is reserved), so a stop leaves it to finish, and the
    /// lease it gets then goes straight back to the pool.
    async fn acquire_stoppable(
        &self,
        stopper: &Stopper,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        stopper.check()?;
        let pool = self.clone();
        // Dropped when this returns: a stopped query leaves the line of waiters at once (it
        // is no checkout anyone waits for), but not a connection it is opening.
        let (_stay, leave) = oneshot::channel::<()>();
        let mut acquiring =
            tokio::spawn(async move { pool.acquire_exclusive(start, deadline, Some(leave)).await });
        tokio::select! {
            biased;
            got = &mut acquiring => match got {
                Ok(lease) => lease,
                // The task never panics (no panics in this crate); a runtime shutting down
                // ends it.
                Err(e) => Err(Error::Wire(hyperion_wire::Error::closed(
                    format!("acquiring a connection failed: {e}"),
                    false,
                ))),
            },
            stop = stopper.fired() => Err(Error::not_sent(stop)),
        }
    }

    /// An exclusive lease (for a transaction): an idle connection, else a new one while a
    /// slot is free, else wait in line until one is released, up to `acquireTimeoutMs`
    /// (then 53300).
    ///
    /// With `leave`, waiting in line ends when its sender is dropped (the caller stopped):
    /// then the result is an error nobody reads, and a connection handed over meanwhile goes
    /// back to the pool.
    pub(crate) async fn acquire_exclusive(
        &self,
        start: Instant,
        deadline: Instant,
        mut leave: Option<oneshot::Receiver<()>>,
    ) -> Result<Lease, Error> {
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            self.purge_closed();
            if let Some(l) = self
                .inner
                .slots
                .take_first(|c| c.in_flight() == 0 && self.usable(c))
            {
                return Ok(self.lease(l));
            }
            if let Some(r) = self.inner.slots.reserve() {
                return self.open(r, true, start, deadline).await;
            }
            let (tx, mut rx) = oneshot::channel();
            self.waiters().push_back(tx);
            // A connection freed between the look above and the push would have found no
            // waiter: look once more now that we are in line.
            if let Some(l) = self
                .inner
                .slots
                .take_first(|c| c.in_flight() == 0 && self.usable(c))
            {
                rx.close();
                if let Ok(Some((id, conn))) = rx.try_recv() {
                    // Handed one as well: keep the first, give the other back.
                    self.return_exclusive(id, &conn);
                }
                return Ok(self.lease(l));
            }
            self.inner.waiting.fetch_add(1, Ordering::AcqRel);
            let got = match leave.as_mut() {
                Some(leave) => tokio::select! {
                    biased;
                    got = tokio::time::timeout_at(deadline.into(), &mut rx) => Some(got),
                    _ = leave => None,
                },
                None => Some(tokio::time::timeout_at(deadline.into(), &mut rx).await),
            };
            self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
            let Some(got) = got else {
                if let Some((id, conn)) = self.leave_line(&mut rx) {
                    self.return_exclusive(id, &conn);
                }
                return Err(self.timed_out(start));
            };
            match got {
                Ok(Ok(Some((id, conn)))) => return Ok(self.handed(id, conn)),
                Ok(Ok(None)) | Ok(Err(_)) => {}
                Err(_) => {
                    // A connection sent just as we gave up is ours after all: taking it
                    // beats leaking it held exclusively.
                    if let Some((id, conn)) = self.leave_line(&mut rx) {
                        return Ok(self.handed(id, conn));
                    }
                    return Err(self.timed_out(start));
                }
            }
        }
    }

    /// Leaves the line of waiters: a connection handed over meanwhile is returned to the
    /// caller, a "look again" (a slot came free) sent meanwhile is passed to the next waiter.
    fn leave_line(&self, rx: &mut oneshot::Receiver<Handoff>) -> Option<(SlotId, Arc<Conn>)> {
        rx.close();
        match rx.try_recv() {
            Ok(Some(handed)) => Some(handed),
            Ok(None) => {
                self.wake_waiter();
                None
            }
            Err(_) => None,
        }
    }

    fn handed(&self, id: SlotId, conn: Arc<Conn>) -> Lease {
        Lease {
            pool: self.clone(),
            conn,
            id: Some(id),
            exclusive: true,
        }
    }

    /// Gives a connection held exclusively to the first live waiter.
    fn hand_off(&self, id: SlotId, conn: &Arc<Conn>) -> bool {
        let mut waiters = self.waiters();
        while let Some(w) = waiters.pop_front() {
            if w.send(Some((id, conn.clone()))).is_ok() {
                return true;
            }
        }
        false
    }

    /// Tells the first live waiter to look again (a slot was freed, so it may open one).
    pub(crate) fn wake_waiter(&self) {
        let mut waiters = self.waiters();
        while let Some(w) = waiters.pop_front() {
            if w.send(None).is_ok() {
                return;
            }
        }
    }

    /// Whether a returned connection can serve again.
    fn reusable(&self, id: SlotId, conn: &Conn) -> bool {
        let st = conn.client.state();
        !conn.client.is_closed()
            && st.in_flight() == 0
            && st.transaction_status() == TransactionStatus::Idle
            && !self.fenced(&conn.client)
            && !self.is_closed()
            && self.inner.slots.is_current(id)
    }

    fn notify_sleepers(&self) {
        // Orders the slot release before reading `sleepers` (pairs with the fence in
        // `acquire_shared`): either the sleeper's re-check sees the release, or we see it.
        fence(Ordering::SeqCst);
        if self.inner.sleepers.load(Ordering::SeqCst) > 0 {
            self.inner.changed.notify_waiters();
        }
    }

    fn return_exclusive(&self, id: SlotId, conn: &Arc<Conn>) {
        if !self.reusable(id, conn) {
            // Broken, fenced, mid-transaction or mid-query: destroy it, never reuse it.
            self.remove(id, conn);
            return;
        }
        if self.hand_off(id, conn) {
            return;
        }
        self.inner.slots.release(id, true);
        self.notify_sleepers();
        // A waiter may have queued between hand_off and the release.
        if !self.waiters().is_empty() {
            if let Some(l) = self.inner.slots.try_take(id.index) {
                if !self.hand_off(l.id, &l.item) {
                    self.inner.slots.release(l.id, true);
                }
            }
        }
    }

    fn return_shared(&self, id: SlotId, conn: &Arc<Conn>) {
        // This query's response is complete: the next one in the pipeline is at its head
        // now. A connection that was stalled takes queries again, so sleepers look again.
        let now = self.now_ms();
        let was_stalled =
            now.saturating_sub(conn.head_since_ms.swap(now, Ordering::Relaxed)) > STALLED_MS;
        if self.inner.slots.release(id, false) != Some(0) {
            if was_stalled {
                self.notify_sleepers();
            }
            return;
        }
        // Last user gone: a waiting transaction may have it.
        if conn.in_flight() == 0 && !self.waiters().is_empty() {
            if let Some(l) = self.inner.slots.try_take(id.index) {
                if !(self.reusable(l.id, &l.item) && self.hand_off(l.id, &l.item)) {
                    self.inner.slots.release(l.id, true);
                }
            }
        }
        self.notify_sleepers();
    }

    /// Opens a connection for a reserved slot, retrying with backoff while no node fits the
    /// mode (mid-election) until the deadline.
    async fn open(
        &self,
        slot: Reservation,
        exclusive: bool,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        let cfg = &self.inner.config;
        let mut attempt = 0;
        // The last connect error of any attempt: later attempts may skip the hosts seen down,
        // and the caller still learns why they are down.
        let mut last_error = None;
        let opened = loop {
            let hint = self.inner.primary_hint.load(Ordering::Relaxed);
            let hint = (hint != NO_HINT).then_some(hint);
            match route::connect_for(cfg, hint, &self.inner.hosts).await {
                Ok((client, host)) => {
                    if cfg.mode == Mode::ReadWrite {
                        self.inner.primary_hint.store(host, Ordering::Relaxed);
                    }
                    let conn = Arc::new(Conn {
                        client,
                        host,
                        // Routing just checked it.
                        validated_at_ms: AtomicU64::new(self.now_ms()),
                        head_since_ms: AtomicU64::new(self.now_ms()),
                    });
                    self.register(&conn);
                    break Ok(conn);
                }
                Err(RouteError::Fatal(e)) => break Err(Error::Wire(e)),
                Err(RouteError::NoMatch(last)) => {
                    // No host fits (mid-election, or the hosts seen down): ask them all.
                    self.suspect();
                    if last.is_some() {
                        last_error = last;
                    }
                    let give_up = match cfg.mode {
                        Mode::ReadWrite => false,
                        _ => attempt + 1 >= cfg.retry.max_attempts,
                    };
                    let now = Instant::now();
                    if give_up || now >= deadline || self.is_closed() {
                        break Err(self.no_node_error(start, last_error));
                    }
                    // The last wait ends at the deadline, with one more try: the window is
                    // used to its end, not cut short by the length of a backoff step.
                    tokio::time::sleep(cfg.retry.delay(attempt).min(deadline - now)).await;
                    attempt += 1;
                }
            }
        };
        let result = match opened {
            // A query that began before end() still runs on the connection it opened; after
            // end() that connection does not join the pool, and it sends Terminate when the
            // query drops the last handle to it.
            Ok(conn) if self.is_closed() => {
                self.inner.slots.cancel(slot);
                Ok(Lease {
                    pool: self.clone(),
                    conn,
                    id: None,
                    exclusive,
                })
            }
            Ok(conn) => match self.inner.slots.install(slot, conn.clone(), exclusive) {
                Some(l) => Ok(self.lease(l)),
                None => {
                    // Unreachable for a reservation from this pool's slots.
                    conn.client.close();
                    Err(Error::Closed)
                }
            },
            Err(e) => {
                self.inner.slots.cancel(slot);
                Err(e)
            }
        };
        self.inner.changed.notify_waiters();
        self.wake_waiter_if_idle();
        result
    }

    /// After a slot changed hands: if a waiter is queued and a connection is free, move it.
    fn wake_waiter_if_idle(&self) {
        if self.waiters().is_empty() {
            return;
        }
        if let Some(l) = self
            .inner
            .slots
            .take_first(|c| c.in_flight() == 0 && self.usable(c))
        {
            if !self.hand_off(l.id, &l.item) {
                self.inner.slots.release(l.id, true);
            }
        } else if self.inner.slots.ready() + self.inner.slots.reserved()
            < self.inner.config.pool_size
        {
            self.wake_waiter();
        }
    }

    fn remove(&self, id: SlotId, conn: &Arc<Conn>) {
        self.inner.slots.remove(id);
        if self.inner.config.mode == Mode::ReadWrite {
            let _ = self.inner.primary_hint.compare_exchange(
                conn.host,
                NO_HINT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        conn.client.close();
        self.inner.changed.notify_waiters();
        self.wake_waiter();
    }

    pub(crate) fn evict(&self, lease: &Lease) {
        match lease.id {
            Some(id) => self.remove(id, &lease.conn),
            None => lease.conn.client.close(),
        }
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
            self.inner.slots.remove(v.id);
            v.item.client.close();
        }
        self.inner.changed.notify_waiters();
        for w in self.waiters().drain(..) {
            let _ = w.send(None);
        }
        let Some(grace) = grace else { return };
        let deadline = Instant::now() + grace;
        loop {
            let open = self.unpooled();
            if open.iter().all(|c| c.client.is_closed()) {
                return;
            }
            if Instant::now() >= deadline {
                let reason = format!(
                    "the pool was ended and its {}ms grace passed: the connection was closed",
                    grace.as_millis()
                );
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
