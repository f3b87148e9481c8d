//! The caller's side of a connection: a cheap [`Client`] handle whose requests go through
//! a bounded channel to the connection's protocol loop (the `driver` module), and the
//! statement cache.
//!
//! Each request is a batch of already-encoded messages ending in one or more `Sync`s; the
//! loop appends it to the write buffer (coalescing everything queued into one socket write)
//! and to an in-flight FIFO, and answers it when its last Sync group's ReadyForQuery
//! arrives. So many callers share one socket in flight (pipelining), bounded by
//! `pipeline_depth`: past it the channel fills and callers wait (backpressure).

use crate::cancel::CancelToken;
use crate::config::Config;
use crate::copy::CopyHook;
use crate::driver::{Channels, Connection};
use crate::error::Error;
use crate::frontend::{self, EncodeError, Target};
use crate::notification::NotificationSink;
use crate::response::{Response, RowStream};
use crate::result::{Described, Format, Params, QueryResult, Statement};
use crate::socket::SocketOptions;
use crate::startup::parse_server_version;
use crate::state::ConnectionState;
use crate::statement_cache::StatementCache;
use crate::tls::TlsSetup;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) enum Request {
    /// Encoded messages; `syncs` ReadyForQuery answers complete it.
    Batch {
        bytes: Bytes,
        syncs: u32,
        sink: oneshot::Sender<Result<Response, Error>>,
        stream: Option<RowStream>,
        copy: Option<CopyHook>,
    },
    /// Raw COPY FROM STDIN messages (CopyData; `end`: CopyDone or CopyFail) for the COPY
    /// at the front, which the loop writes only while that COPY takes data.
    CopyData {
        bytes: Bytes,
        end: bool,
    },
    Terminate,
}

/// The outcome of a preparation others wait on: `None` until it is over.
type Prepared = Option<Result<Arc<Statement>, Error>>;
/// What a caller that misses while the same SQL is being prepared waits on.
type Waiter = watch::Receiver<Prepared>;

/// The cached statement for a SQL text, or the duty to prepare it ([`Client::claim`]).
enum Claim {
    Cached(Arc<Statement>),
    Mine(Preparation),
}

/// The one preparation under way of a SQL text on a connection: [`Preparation::describe`]
/// then [`Preparation::install`]. Dropped before it installs (an error, or its caller gave
/// up), the callers waiting on it look again, and the statement it may have parsed is
/// closed with the connection's next access to its cache.
struct Preparation {
    client: Client,
    sql: Box<str>,
    /// Taken when the outcome is known (so the drop has nothing left to do).
    tx: Option<watch::Sender<Prepared>>,
    /// The statement's name once its Parse may have been written, until it is cached.
    name: Option<String>,
}

impl Preparation {
    /// Parses the SQL as a new named statement and describes it (one round trip).
    async fn describe(&mut self) -> Result<Described, Error> {
        let n = self
            .client
            .inner
            .next_statement
            .fetch_add(1, Ordering::Relaxed);
        let name = format!("h{n}");
        self.name = Some(name.clone());
        let d = self.client.describe_as(name, &self.sql).await;
        if d.is_err() {
            // Its Parse failed (or never ran): nothing to close.
            self.name = None;
        }
        d
    }

    /// Caches the described statement with the formats its results are requested in (one
    /// per column; missing entries mean text), and hands it to the callers waiting.
    fn install(mut self, d: Described, result_formats: Vec<i16>) -> Arc<Statement> {
        let stmt = named_statement(d, result_formats);
        let close = {
            let mut cache = self.client.cache();
            cache.finish(&self.sql);
            cache.insert(&self.sql, stmt.clone())
        };
        self.name = None;
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(Ok(stmt.clone())));
        }
        self.client.close_statements(&close);
        stmt
    }

    /// The preparation failed with `e`: the callers waiting get the same error (the same
    /// SQL on the same connection would fail the same way).
    fn fail(mut self, e: &Error) {
        self.client.cache().finish(&self.sql);
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(Err(e.clone())));
        }
    }
}

impl Drop for Preparation {
    fn drop(&mut self) {
        let name = self.name.take();
        if self.tx.is_none() && name.is_none() {
            return;
        }
        let mut cache = self.client.cache();
        if self.tx.is_some() {
            // Before the sender goes: a waiter that wakes to a closed channel must not find
            // this preparation still listed.
            cache.finish(&self.sql);
        }
        if let Some(name) = name {
            cache.orphan(name);
        }
    }
}

fn named_statement(d: Described, mut result_formats: Vec<i16>) -> Arc<Statement> {
    result_formats.resize(d.columns.len(), 0);
    Arc::new(Statement {
        name: d.name,
        param_types: d.param_types,
        columns: d.columns,
        result_formats: result_formats.into(),
        unnamed_sql: None,
    })
}

struct ClientInner {
    tx: mpsc::Sender<Request>,
    state: Arc<ConnectionState>,
    statements: Mutex<StatementCache<Waiter>>,
    next_statement: AtomicU32,
    /// Shared with the protocol loop, which updates it at every ParameterStatus.
    parameters: Arc<Mutex<HashMap<String, String>>>,
    cancel: CancelToken,
    result_format: fn(u32) -> Format,
    server_version_num: u32,
    /// The protocol's minor version the session runs (0 or 2).
    protocol_minor: i32,
    /// Taken (once) by [`Client::abort`]; the loop polls the other end before anything else.
    abort: Mutex<Option<oneshot::Sender<String>>>,
}

/// A handle to one connection. Clones share the connection; requests from all of them are
/// pipelined on its socket.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.cancel.host)
            .field("pid", &self.inner.cancel.process_id)
            .finish()
    }
}

impl Client {
    pub fn state(&self) -> &ConnectionState {
        &self.inner.state
    }

    pub fn is_closed(&self) -> bool {
        self.inner.state.is_closed()
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.inner.cancel.clone()
    }

    pub fn process_id(&self) -> i32 {
        self.inner.cancel.process_id
    }

    /// `server_version_num` as a number (e.g. 170007), from the startup `server_version`.
    pub fn server_version_num(&self) -> u32 {
        self.inner.server_version_num
    }

    /// The protocol version the session runs: `(3, 0)` or `(3, 2)`.
    pub fn protocol_version(&self) -> (i32, i32) {
        (3, self.inner.protocol_minor)
    }

    /// A server parameter as last reported by ParameterStatus.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.inner.parameters.lock().ok()?.get(name).cloned()
    }

    /// Ends the connection at once, without waiting for the server: requests already
    /// written fail with `Error::closed(reason, true)`, requests not yet written with
    /// `Error::closed(reason, false)` (safe to retry), and the socket is dropped. Works when
    /// the socket is blocked (a hung peer, dropped packets) since the loop checks for an abort
    /// before it touches the socket. Idempotent; callable from any thread.
    pub fn abort(&self, reason: &str) {
        self.inner.state.closed.store(true, Ordering::Release);
        let tx = self.inner.abort.lock().ok().and_then(|mut a| a.take());
        if let Some(tx) = tx {
            // An error means the loop has already ended: nothing left to abort.
            let _ = tx.send(reason.to_owned());
        }
    }

    /// Sends this connection's LISTEN notifications to `sink` from now on (`None`: drop
    /// them, the default). The sink runs on the protocol loop, in order, and must not block.
    pub fn on_notification(&self, sink: Option<NotificationSink>) {
        self.inner.state.notifications.set(sink);
    }

    /// Asks the connection to send Terminate and close once in-flight requests finish.
    pub fn close(&self) {
        match self.inner.tx.try_send(Request::Terminate) {
            Err(mpsc::error::TrySendError::Full(req)) => {
                // The pipeline is full: queue the Terminate behind it rather than drop it.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let tx = self.inner.tx.clone();
                    rt.spawn(async move {
                        let _ = tx.send(req).await;
                    });
                }
                // Outside a runtime, dropping the last handle closes the connection too.
            }
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    async fn send(
        &self,
        bytes: Bytes,
        syncs: u32,
        stream: Option<RowStream>,
    ) -> Result<Response, Error> {
        let rx = self.submit(bytes, syncs, stream, None).await?;
        // The loop answers every request it took; a dropped sink means the connection died
        // before writing this request.
        rx.await
            .unwrap_or_else(|_| Err(Error::closed("connection is closed", false)))
    }

    /// Queues a request; the receiver gets its response.
    pub(crate) async fn submit(
        &self,
        bytes: Bytes,
        syncs: u32,
        stream: Option<RowStream>,
        copy: Option<CopyHook>,
    ) -> Result<oneshot::Receiver<Result<Response, Error>>, Error> {
        let (sink, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Request::Batch {
                bytes,
                syncs,
                sink,
                stream,
                copy,
            })
            .await
            .map_err(|_| Error::closed("connection is closed", false))?;
        Ok(rx)
    }

    pub(crate) fn sender(&self) -> &mpsc::Sender<Request> {
        &self.inner.tx
    }

    /// Returns the cached statement for `sql`, preparing it on a miss with result formats
    /// from the connection's `result_format` ([`Client::prepare_with`]).
    pub async fn prepare(&self, sql: &str) -> Result<Arc<Statement>, Error> {
        let result_format = self.inner.result_format;
        self.prepare_with(sql, |d| async move {
            let formats = d
                .columns
                .iter()
                .map(|c| result_format(c.type_oid) as i16)
                .collect();
            Ok((d, formats))
        })
        .await
    }

    /// Returns the cached statement for `sql`, or prepares it: parsed as a new named
    /// statement and described (one round trip), then `formats` chooses the format of each
    /// result column (it may look types up on this connection first), then it is cached.
    ///
    /// One preparation per SQL text at a time ([`Client::claim`]): a caller that misses while
    /// another prepares the same SQL waits for it and shares its outcome.
    pub async fn prepare_with<F, Fut>(&self, sql: &str, formats: F) -> Result<Arc<Statement>, Error>
    where
        F: FnOnce(Described) -> Fut,
        Fut: std::future::Future<Output = Result<(Described, Vec<i16>), Error>>,
    {
        let mut prep = match self.claim(sql).await? {
            Claim::Cached(s) => return Ok(s),
            Claim::Mine(p) => p,
        };
        let described = match prep.describe().await {
            Ok(d) => formats(d).await,
            Err(e) => Err(e),
        };
        match described {
            Ok((d, f)) => Ok(prep.install(d, f)),
            Err(e) => {
                prep.fail(&e);
                Err(e)
            }
        }
    }

    /// The cached statement for `sql`, without waiting: the common case of
    /// [`Client::prepare_with`], for callers that keep the preparation off their hot path.
    /// Statements due to be closed are queued first, as there.
    pub fn cached(&self, sql: &str) -> Option<Arc<Statement>> {
        let (hit, close) = {
            let mut cache = self.cache();
            let close = cache.settle();
            (cache.get(sql), close)
        };
        self.close_statements(&close);
        hit
    }

    /// The cached statement for `sql`, or the duty to prepare it. One preparation per SQL
    /// text at a time: concurrent first runs each parsing their own statement would leave
    /// all but one prepared on the server. A caller that misses while another prepares the
    /// same SQL waits for that preparation and shares its outcome (or, if it was given up,
    /// looks again).
    ///
    /// Statements due to be closed (evicted, replaced or stale, and no longer in use) are
    /// queued for Close here, ahead of the request the caller is about to send: its answer
    /// then comes after theirs, so when the caller gives the connection back nothing of the
    /// connection's own is still in flight.
    async fn claim(&self, sql: &str) -> Result<Claim, Error> {
        enum Found {
            Hit(Arc<Statement>),
            Wait(Waiter),
            Mine(watch::Sender<Prepared>),
        }
        loop {
            let (found, close) = {
                let mut cache = self.cache();
                let close = cache.settle();
                let found = if let Some(s) = cache.get(sql) {
                    Found::Hit(s)
                } else if let Some(rx) = cache.preparing(sql) {
                    Found::Wait(rx.clone())
                } else {
                    let (tx, rx) = watch::channel(None);
                    cache.start(sql, rx);
                    Found::Mine(tx)
                };
                (found, close)
            };
            self.close_statements(&close);
            match found {
                Found::Hit(s) => return Ok(Claim::Cached(s)),
                Found::Mine(tx) => {
                    return Ok(Claim::Mine(Preparation {
                        client: self.clone(),
                        sql: sql.into(),
                        tx: Some(tx),
                        name: None,
                    }))
                }
                Found::Wait(mut rx) => {
                    let outcome = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| (*v).clone());
                    match outcome {
                        Some(Ok(s)) => return Ok(Claim::Cached(s)),
                        Some(Err(e)) => return Err(e),
                        // Given up without an outcome (its caller stopped): look again.
                        None => continue,
                    }
                }
            }
        }
    }

    /// Drops `stmt` from the cache when it is still what `sql` maps to: the server refused
    /// it as stale (its result type changed), and the next use prepares it again. It is
    /// closed once no query holds it, ahead of a later request.
    pub fn forget(&self, sql: &str, stmt: &Arc<Statement>) {
        self.cache().remove(sql, stmt);
    }

    /// The statement cache; a panic elsewhere while it was locked leaves nothing
    /// inconsistent in it (each operation completes under the lock), so poisoning is
    /// ignored.
    fn cache(&self) -> MutexGuard<'_, StatementCache<Waiter>> {
        self.inner
            .statements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parses `sql` as a new named statement and describes it (one round trip), without
    /// caching it: for callers that must look at the types before choosing result formats
    /// (then [`Client::install`]).
    pub async fn describe(&self, sql: &str) -> Result<Described, Error> {
        let n = self.inner.next_statement.fetch_add(1, Ordering::Relaxed);
        self.describe_as(format!("h{n}"), sql).await
    }

    /// Describes `sql` as the unnamed statement, which the next Parse replaces: nothing
    /// stays prepared on the server (see [`Client::unnamed`]).
    pub async fn describe_unnamed(&self, sql: &str) -> Result<Described, Error> {
        self.describe_as(String::new(), sql).await
    }

    async fn describe_as(&self, name: String, sql: &str) -> Result<Described, Error> {
        let mut buf = BytesMut::with_capacity(sql.len() + 32);
        frontend::parse(&name, sql, &[], &mut buf)?;
        frontend::describe(Target::Statement, &name, &mut buf)?;
        frontend::sync(&mut buf);
        let resp = self.send(buf.freeze(), 1, None).await?.ok()?;
        Ok(Described {
            name,
            param_types: resp.param_types.unwrap_or_default(),
            columns: resp.row_description.unwrap_or_default().into(),
        })
    }

    /// Caches a described statement with the formats its results are requested in (one per
    /// column; missing entries mean text). Prefer [`Client::claim`], which also keeps
    /// concurrent callers from preparing the same SQL twice; a statement this replaces is
    /// closed once nobody holds it.
    pub fn install(&self, sql: &str, d: Described, result_formats: Vec<i16>) -> Arc<Statement> {
        let stmt = named_statement(d, result_formats);
        let close = self.cache().insert(sql, stmt.clone());
        self.close_statements(&close);
        stmt
    }

    /// A described statement that each execution parses again as the unnamed statement, in
    /// the same write as its Bind, Describe and Execute: one round trip, nothing kept on the
    /// server, so it works behind a pooler that moves sessions between server connections
    /// (PgBouncer's transaction mode). Not cached here: the caller keeps it.
    pub fn unnamed(sql: &str, d: Described, mut result_formats: Vec<i16>) -> Arc<Statement> {
        result_formats.resize(d.columns.len(), 0);
        Arc::new(Statement {
            name: String::new(),
            param_types: d.param_types,
            columns: d.columns,
            result_formats: result_formats.into(),
            unnamed_sql: Some(sql.into()),
        })
    }

    /// How many statements this connection holds prepared.
    pub fn cached_statements(&self) -> usize {
        self.cache().len()
    }

    /// Closes evicted statements on the server, in a request of their own that nobody waits
    /// for (Close + Sync; an error there only means the statement is gone already).
    fn close_statements(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let mut buf = BytesMut::new();
        for name in names {
            if frontend::close(Target::Statement, name, &mut buf).is_err() {
                return;
            }
        }
        frontend::sync(&mut buf);
        // Queued now, ahead of the request of the caller that evicted them: its response
        // then comes after the Close's, so when that caller gives the connection back nothing
        // of the connection's own is still in flight (a spawned send could land later, and
        // the connection would become idle with no lease coming back to say so).
        let (sink, rx) = oneshot::channel();
        let req = Request::Batch {
            bytes: buf.freeze(),
            syncs: 1,
            sink,
            stream: None,
            copy: None,
        };
        let queued = match self.inner.tx.try_send(req) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(req)) => Some(req),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tx = self.inner.tx.clone();
        rt.spawn(async move {
            // A full pipeline: the Close waits its turn (nobody waits for its answer).
            if let Some(req) = queued {
                let _ = tx.send(req).await;
            }
            // The loop skips a request whose receiver is gone: hold it until answered.
            let _ = rx.await;
        });
    }

    /// Prepares (cached) and executes `sql` with `params`.
    pub async fn query<P: Params + ?Sized>(
        &self,
        sql: &str,
        params: &P,
    ) -> Result<QueryResult, Error> {
        let stmt = self.prepare(sql).await?;
        self.execute(&stmt, params).await
    }

    /// Encodes Bind/Execute/Sync for a prepared statement; nothing is sent if a parameter
    /// fails to encode.
    pub fn encode_execute<P: Params + ?Sized>(
        stmt: &Statement,
        params: &P,
        buf: &mut BytesMut,
    ) -> Result<(), Error> {
        Self::encode_portal(stmt, params, "", 0, buf)
    }

    /// Encodes Bind into `portal` and Execute of its first `max_rows` rows (0: all), then
    /// Sync; with an unnamed statement, its Parse first and a Describe of the portal.
    pub fn encode_portal<P: Params + ?Sized>(
        stmt: &Statement,
        params: &P,
        portal: &str,
        max_rows: i32,
        buf: &mut BytesMut,
    ) -> Result<(), Error> {
        let types = &stmt.param_types;
        if params.count() != types.len() {
            return Err(Error::encode(EncodeError::Param {
                index: params.count().min(types.len()),
                message: format!(
                    "the statement takes {} parameter(s), {} given",
                    types.len(),
                    params.count()
                ),
            }));
        }
        let formats: smallvec::SmallVec<[i16; 16]> = types
            .iter()
            .enumerate()
            .map(|(i, &oid)| params.format(i, oid) as i16)
            .collect();
        frontend::truncate_on_error(buf, |buf| {
            if let Some(sql) = stmt.unnamed_sql.as_deref() {
                frontend::parse("", sql, types, buf)?;
            }
            frontend::bind(
                portal,
                &stmt.name,
                &formats,
                types.len(),
                |i, buf| {
                    let oid = types.get(i).copied().unwrap_or(0);
                    params
                        .encode(i, oid, buf)
                        .map_err(|message| EncodeError::Param { index: i, message })
                },
                &stmt.result_formats,
                buf,
            )?;
            if stmt.unnamed_sql.is_some() {
                // The columns as they are now: the description the caller keeps may be
                // older than a schema change.
                frontend::describe(Target::Portal, portal, buf)?;
            }
            frontend::execute(portal, max_rows, buf)?;
            frontend::sync(buf);
            Ok(())
        })?;
        Ok(())
    }

    /// Executes a prepared statement.
    pub async fn execute<P: Params + ?Sized>(
        &self,
        stmt: &Statement,
        params: &P,
    ) -> Result<QueryResult, Error> {
        self.execute_streaming(stmt, params, None).await
    }

    /// Executes a prepared statement, handing its rows to `stream` in batches while they
    /// arrive (see [`RowStream`]); the result holds the rows after the last batch.
    pub async fn execute_streaming<P: Params + ?Sized>(
        &self,
        stmt: &Statement,
        params: &P,
        stream: Option<RowStream>,
    ) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(64);
        Self::encode_execute(stmt, params, &mut buf)?;
        let stream = stream.map(|s| s.for_statement(stmt));
        let resp = self.send(buf.freeze(), 1, stream).await?.ok()?;
        let mut result = resp.results.into_iter().next().unwrap_or_default();
        stmt.fill(&mut result);
        Ok(result)
    }

    /// Binds `stmt` into the named `portal` and reads its first `max_rows` rows; the result
    /// is `suspended` when more remain ([`Client::fetch_portal`]). A named portal outlives
    /// the Sync only inside a transaction block: the caller runs BEGIN first if none is open.
    pub async fn open_portal<P: Params + ?Sized>(
        &self,
        stmt: &Statement,
        params: &P,
        portal: &str,
        max_rows: i32,
    ) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(64);
        Self::encode_portal(stmt, params, portal, max_rows, &mut buf)?;
        let resp = self.send(buf.freeze(), 1, None).await?.ok()?;
        let mut result = resp.results.into_iter().next().unwrap_or_default();
        stmt.fill(&mut result);
        Ok(result)
    }

    /// The next `max_rows` rows of an open portal, whose first batch ([`Client::
    /// open_portal`]) was `first`: its rows have that batch's columns and formats (an
    /// unnamed statement's cached description may be older than the portal).
    pub async fn fetch_portal(
        &self,
        first: &QueryResult,
        portal: &str,
        max_rows: i32,
    ) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(portal.len() + 16);
        frontend::execute(portal, max_rows, &mut buf)?;
        frontend::sync(&mut buf);
        let resp = self.send(buf.freeze(), 1, None).await?.ok()?;
        let mut result = resp.results.into_iter().next().unwrap_or_default();
        result.columns = first.columns.clone();
        result.formats = first.formats.clone();
        Ok(result)
    }

    /// Closes a portal (its rows not read are dropped, the server's work on it stops).
    pub async fn close_portal(&self, portal: &str) -> Result<(), Error> {
        let mut buf = BytesMut::with_capacity(portal.len() + 16);
        frontend::close(Target::Portal, portal, &mut buf)?;
        frontend::sync(&mut buf);
        self.send(buf.freeze(), 1, None).await?.ok()?;
        Ok(())
    }

    /// Runs already-encoded messages holding `syncs` Sync groups (all in one write) and
    /// returns each group's outcome: its results, or the error that failed it. The outer
    /// error is for the connection failing.
    ///
    /// Every group must hold a message the server answers before its ReadyForQuery (a bare
    /// Sync does not): the loop checks each answer against the request (see
    /// [`crate::plan`]), and refuses, unsent, a batch it could not follow.
    pub async fn send_batch(
        &self,
        bytes: Bytes,
        syncs: u32,
    ) -> Result<Vec<Result<Vec<QueryResult>, Error>>, Error> {
        Ok(self.send(bytes, syncs, None).await?.into_groups())
    }

    /// Runs the simple query `probe` and then `stmt` in one write, as two Sync groups, and
    /// returns both outcomes. The statement's result is only handed out once the probe's
    /// answer is in, since responses come back in order: a validation probe (`SHOW
    /// transaction_read_only`) that costs no extra round trip. Rows `stream`ed before the
    /// probe's verdict is known are the caller's to discard if it says so.
    pub async fn execute_after<P: Params + ?Sized>(
        &self,
        probe: &str,
        stmt: &Statement,
        params: &P,
        stream: Option<RowStream>,
    ) -> Result<(Result<Vec<QueryResult>, Error>, Result<QueryResult, Error>), Error> {
        let mut buf = BytesMut::with_capacity(probe.len() + 64);
        frontend::query(probe, &mut buf)?;
        Self::encode_execute(stmt, params, &mut buf)?;
        let stream = stream.map(|s| s.for_statement(stmt));
        let mut groups = self
            .send(buf.freeze(), 2, stream)
            .await?
            .into_groups()
            .into_iter();
        let probed = groups
            .next()
            .unwrap_or_else(|| Err(Error::closed("connection is closed", true)));
        let executed = groups
            .next()
            .unwrap_or_else(|| Err(Error::closed("connection is closed", true)))
            .map(|results| {
                let mut r = results.into_iter().next().unwrap_or_default();
                stmt.fill(&mut r);
                r
            });
        Ok((probed, executed))
    }

    /// The simple query protocol: one or more statements, text results, no parameters.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<QueryResult>, Error> {
        let mut buf = BytesMut::with_capacity(sql.len() + 6);
        frontend::query(sql, &mut buf)?;
        Ok(self.send(buf.freeze(), 1, None).await?.ok()?.results)
    }
}

/// What a protocol loop needs besides its stream and the bytes read past startup.
pub(crate) struct LoopParts {
    channels: Channels,
    depth: usize,
    max_message_len: usize,
    parameter_bytes: usize,
}

impl LoopParts {
    pub(crate) fn into_loop<S>(self, stream: S, read_buf: BytesMut) -> Connection<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        Connection::new(
            stream,
            read_buf,
            self.channels,
            self.depth,
            self.max_message_len,
            self.parameter_bytes,
        )
    }
}

/// The client of a connection whose startup is done, and the parts of its loop.
pub(crate) fn assemble(
    config: &Config,
    info: crate::startup::StartupInfo,
    tls: Option<Arc<TlsSetup>>,
) -> (Client, LoopParts) {
    let state = Arc::new(ConnectionState::default());
    for (k, v) in &info.parameters {
        state.apply_parameter(k, v);
    }
    let server_version_num = info
        .parameters
        .get("server_version")
        .map(|v| parse_server_version(v))
        .unwrap_or(0);
    let parameters = Arc::new(Mutex::new(info.parameters));
    let depth = config.pipeline_depth.max(1);
    let (tx, rx) = mpsc::channel(depth);
    let (abort_tx, abort_rx) = oneshot::channel();
    let parts = LoopParts {
        channels: Channels {
            rx,
            abort: abort_rx,
            state: state.clone(),
            parameters: parameters.clone(),
        },
        depth,
        max_message_len: config.max_message_len,
        parameter_bytes: info.parameter_bytes,
    };
    let client = Client {
        inner: Arc::new(ClientInner {
            tx,
            state,
            statements: Mutex::new(StatementCache::new(config.statement_cache_size)),
            next_statement: AtomicU32::new(0),
            parameters,
            cancel: CancelToken {
                host: config.host.clone(),
                process_id: info.process_id,
                secret_key: info.secret_key,
                socket: SocketOptions::from_config(config),
                tls,
            },
            result_format: config.result_format,
            server_version_num,
            protocol_minor: info.protocol_minor,
            abort: Mutex::new(Some(abort_tx)),
        }),
    };
    (client, parts)
}
