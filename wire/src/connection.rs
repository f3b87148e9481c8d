//! The connection driver: startup and authentication, then one protocol loop per socket.
//!
//! Callers hold a cheap [`Client`] handle. Each request is a batch of already-encoded
//! messages ending in one or more `Sync`s; it goes through a bounded channel to the
//! connection task, which appends it to the write buffer (coalescing everything queued into
//! one socket write) and to an in-flight FIFO. Responses arrive in request order; each
//! `ReadyForQuery` closes one Sync group, and when a request's last group is closed its
//! caller gets the result. So many callers share one socket in flight (pipelining), bounded
//! by `pipeline_depth`: past it the channel fills and callers wait (backpressure).
//!
//! The loop is one hand-written future that reads and writes in the same poll (the shape of
//! tokio-postgres' `Connection`), so it cannot deadlock with both socket buffers full.
//!
//! It also watches every message for what the pool needs: `ParameterStatus` values
//! (`default_transaction_read_only`, `in_hot_standby`), a `25006` error, and fatal errors;
//! they set the [`ConnectionState`] the pool reads.

use crate::auth::{md5::md5_password, scram};
use crate::backend::{self, auth_method_name, DataRowBody, ErrorFields, Field, Message};
use crate::config::Config;
use crate::error::Error;
use crate::frontend::{self, EncodeError, Target};
use crate::plan::{self, Expect, Plan};
use crate::socket::SocketOptions;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub use crate::frontend::IsNull;

/// Wire format of a parameter or result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text = 0,
    Binary = 1,
}

/// Parameters for `Bind`, encoded by the caller for the types the server declared.
pub trait Params {
    fn count(&self) -> usize;
    /// The format parameter `index` will be sent in, given its declared type.
    fn format(&self, index: usize, type_oid: u32) -> Format;
    /// Appends parameter `index`'s bytes; an error aborts the whole request before sending.
    fn encode(&self, index: usize, type_oid: u32, buf: &mut BytesMut) -> Result<IsNull, String>;
}

/// Text parameters, for tests and simple callers.
impl<S: AsRef<str>> Params for [Option<S>] {
    fn count(&self) -> usize {
        self.len()
    }
    fn format(&self, _: usize, _: u32) -> Format {
        Format::Text
    }
    fn encode(&self, index: usize, _: u32, buf: &mut BytesMut) -> Result<IsNull, String> {
        match self.get(index) {
            Some(Some(s)) => {
                buf.put_slice(s.as_ref().as_bytes());
                Ok(IsNull::No)
            }
            _ => Ok(IsNull::Yes),
        }
    }
}

/// A statement prepared on one connection.
#[derive(Debug)]
pub struct Statement {
    name: String,
    param_types: Vec<u32>,
    columns: Arc<[Field]>,
    result_formats: Arc<[i16]>,
}

impl Statement {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn param_types(&self) -> &[u32] {
        &self.param_types
    }
    pub fn columns(&self) -> &Arc<[Field]> {
        &self.columns
    }
    /// The format each result column is requested in.
    pub fn result_formats(&self) -> &[i16] {
        &self.result_formats
    }
}

/// A statement parsed and described on a connection, not yet cached.
#[derive(Debug)]
pub struct Described {
    name: String,
    pub param_types: Vec<u32>,
    pub columns: Arc<[Field]>,
}

/// The result of one statement: its columns, rows (views into received frames) and tag.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Option<Arc<[Field]>>,
    /// Format of each column's values (from the Bind for extended queries; text for simple).
    pub formats: Arc<[i16]>,
    pub rows: Vec<DataRowBody>,
    pub command_tag: Option<String>,
    /// Warnings and notices the server sent while running it.
    pub notices: Vec<ErrorFields>,
    /// The server cancelled waiting for synchronous replication (`WARNING: canceling wait
    /// for synchronous replication`): a COMMIT that reports success may not be durable on a
    /// standby. The pool reports such a commit as in doubt.
    pub sync_replication_cancelled: bool,
}

impl QueryResult {
    /// Rows affected, from the command tag (`INSERT 0 5` -> 5).
    pub fn rows_affected(&self) -> Option<u64> {
        self.command_tag
            .as_deref()?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    }
}

/// Transaction status from the last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

/// What the protocol loop knows about the session, shared with the pool lock-free.
#[derive(Debug, Default)]
pub struct ConnectionState {
    closed: AtomicBool,
    read_only_error: AtomicBool,
    default_transaction_read_only: AtomicBool,
    in_hot_standby: AtomicBool,
    /// Whether the server reports `default_transaction_read_only` as a ParameterStatus
    /// (PostgreSQL 14+); if not, read-only-ness must be probed with SQL.
    reports_read_only: AtomicBool,
    tx_status: AtomicU8,
    in_flight: AtomicU32,
}

impl ConnectionState {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    /// The session cannot write: a `25006` was seen, or the server reported
    /// `default_transaction_read_only=on` or `in_hot_standby=on`.
    pub fn is_read_only(&self) -> bool {
        self.read_only_error.load(Ordering::Acquire)
            || self.default_transaction_read_only.load(Ordering::Acquire)
            || self.in_hot_standby.load(Ordering::Acquire)
    }
    pub fn in_hot_standby(&self) -> bool {
        self.in_hot_standby.load(Ordering::Acquire)
    }
    pub fn default_transaction_read_only(&self) -> bool {
        self.default_transaction_read_only.load(Ordering::Acquire)
    }
    pub fn saw_read_only_error(&self) -> bool {
        self.read_only_error.load(Ordering::Acquire)
    }
    /// True when ParameterStatus reports read-only-ness (PostgreSQL 14+).
    pub fn reports_read_only(&self) -> bool {
        self.reports_read_only.load(Ordering::Acquire)
    }
    pub fn transaction_status(&self) -> TransactionStatus {
        match self.tx_status.load(Ordering::Acquire) {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        }
    }
    /// Requests written and not yet answered.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    fn apply_parameter(&self, name: &str, value: &str) {
        let on = value == "on";
        match name {
            "default_transaction_read_only" => {
                self.reports_read_only.store(true, Ordering::Release);
                self.default_transaction_read_only
                    .store(on, Ordering::Release);
            }
            "in_hot_standby" => self.in_hot_standby.store(on, Ordering::Release),
            _ => {}
        }
    }
}

/// Sends a CancelRequest for this connection's backend on a separate socket.
#[derive(Debug, Clone)]
pub struct CancelToken {
    host: crate::config::Host,
    process_id: i32,
    secret_key: Bytes,
    /// The connection's socket options: the cancel request's socket needs the same bound on
    /// a vanished host as the session's.
    socket: SocketOptions,
}

impl CancelToken {
    /// The host the connection is to.
    pub fn host(&self) -> &crate::config::Host {
        &self.host
    }

    /// The socket options the token applies to its own socket.
    pub fn socket_options(&self) -> SocketOptions {
        self.socket
    }

    /// Asks the server to cancel whatever the session is running. Returns once the request is
    /// delivered (the server closes the socket); it does not wait for the query to stop.
    pub async fn cancel(&self, timeout: Duration) -> Result<(), Error> {
        let fut = async {
            let mut s = TcpStream::connect((self.host.host.as_str(), self.host.port))
                .await
                .map_err(|e| Error::connect(format!("cancel: connect to {}: {e}", self.host)))?;
            self.socket
                .apply(&s)
                .map_err(|e| Error::config(format!("cancel: socket options: {e}")))?;
            let mut buf = BytesMut::new();
            frontend::cancel_request(self.process_id, &self.secret_key, &mut buf)?;
            s.write_all(&buf)
                .await
                .map_err(|e| Error::closed(format!("cancel: {e}"), true))?;
            let mut sink = [0u8; 16];
            let _ = s.read(&mut sink).await;
            Ok(())
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::connect_timeout(format!("cancel to {} timed out", self.host)))?
    }
}

/// Takes a statement's rows in batches while its result is still arriving, so the caller can
/// work on the first rows while the server is still producing the rest.
///
/// The loop hands over a batch each time `batch_bytes` of row data are buffered; whatever
/// is left when the statement completes stays in the returned [`QueryResult`]. A result
/// smaller than `batch_bytes` is never batched. Only the request's last Sync group streams
/// (the statement of [`Client::execute_after`], not the probe ahead of it).
pub struct RowStream {
    sink: Box<dyn FnMut(QueryResult) + Send>,
    batch_bytes: usize,
    buffered: usize,
    columns: Option<Arc<[Field]>>,
    formats: Arc<[i16]>,
}

impl RowStream {
    /// `sink` receives each batch as a [`QueryResult`] holding the statement's columns and
    /// formats and the batch's rows (no tag: the statement is still running).
    pub fn new(batch_bytes: usize, sink: impl FnMut(QueryResult) + Send + 'static) -> RowStream {
        RowStream {
            sink: Box::new(sink),
            batch_bytes: batch_bytes.max(1),
            buffered: 0,
            columns: None,
            formats: Arc::from([]),
        }
    }

    fn for_statement(mut self, stmt: &Statement) -> RowStream {
        self.columns = Some(stmt.columns.clone());
        self.formats = stmt.result_formats.clone();
        self
    }

    /// Counts a row in; hands the buffered rows over once there are enough.
    fn row_added(&mut self, bytes: usize, rows: &mut Vec<DataRowBody>) {
        self.buffered += bytes;
        if self.buffered < self.batch_bytes {
            return;
        }
        self.buffered = 0;
        let batch = std::mem::replace(rows, Vec::with_capacity(rows.len()));
        (self.sink)(QueryResult {
            columns: self.columns.clone(),
            formats: self.formats.clone(),
            rows: batch,
            ..QueryResult::default()
        });
    }
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("batch_bytes", &self.batch_bytes)
            .finish_non_exhaustive()
    }
}

enum Request {
    /// Encoded messages; `syncs` ReadyForQuery answers complete it.
    Batch {
        bytes: Bytes,
        syncs: u32,
        sink: oneshot::Sender<Result<Response, Error>>,
        stream: Option<RowStream>,
    },
    Terminate,
}

/// Everything the loop collected for one request.
#[derive(Debug, Default)]
struct Response {
    results: Vec<QueryResult>,
    /// One entry per Sync group, in order: where its results end in `results`, and the
    /// error that failed it. Each group succeeds or fails on its own (the server skips to
    /// the group's Sync after an error), so a batch reports them separately.
    groups: Vec<GroupEnd>,
    param_types: Option<Vec<u32>>,
    row_description: Option<Vec<Field>>,
}

#[derive(Debug)]
struct GroupEnd {
    end: usize,
    error: Option<Error>,
}

impl Response {
    /// For single-group requests: the group's error, if any, fails the request.
    fn ok(mut self) -> Result<Response, Error> {
        match self.groups.iter_mut().find_map(|g| g.error.take()) {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// Splits the results by Sync group.
    fn into_groups(self) -> Vec<Result<Vec<QueryResult>, Error>> {
        let mut results = self.results.into_iter();
        let mut start = 0;
        let mut out = Vec::with_capacity(self.groups.len());
        for g in self.groups {
            let n = g.end.saturating_sub(start);
            start = g.end;
            let group: Vec<QueryResult> = results.by_ref().take(n).collect();
            out.push(match g.error {
                Some(e) => Err(e),
                None => Ok(group),
            });
        }
        out
    }
}

struct ClientInner {
    tx: mpsc::Sender<Request>,
    state: Arc<ConnectionState>,
    statements: Mutex<HashMap<Box<str>, Arc<Statement>>>,
    next_statement: AtomicU32,
    /// Shared with the protocol loop, which updates it at every ParameterStatus.
    parameters: Arc<Mutex<HashMap<String, String>>>,
    cancel: CancelToken,
    result_format: fn(u32) -> Format,
    server_version_num: u32,
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
        let (sink, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Request::Batch {
                bytes,
                syncs,
                sink,
                stream,
            })
            .await
            .map_err(|_| Error::closed("connection is closed", false))?;
        // The loop answers every request it took; a dropped sink means the connection died
        // before writing this request.
        rx.await
            .unwrap_or_else(|_| Err(Error::closed("connection is closed", false)))
    }

    /// Returns the cached statement for `sql`, preparing it (Parse + Describe) on a miss,
    /// with result formats from the connection's `result_format`.
    pub async fn prepare(&self, sql: &str) -> Result<Arc<Statement>, Error> {
        if let Some(s) = self.cached(sql) {
            return Ok(s);
        }
        let d = self.describe(sql).await?;
        let formats = d
            .columns
            .iter()
            .map(|c| (self.inner.result_format)(c.type_oid) as i16)
            .collect();
        Ok(self.install(sql, d, formats))
    }

    /// Parses `sql` as a new named statement and describes it (one round trip), without
    /// caching it: for callers that must look at the types before choosing result formats
    /// (then [`Client::install`]).
    pub async fn describe(&self, sql: &str) -> Result<Described, Error> {
        let n = self.inner.next_statement.fetch_add(1, Ordering::Relaxed);
        let name = format!("h{n}");
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
    /// column; missing entries mean text).
    pub fn install(&self, sql: &str, d: Described, mut result_formats: Vec<i16>) -> Arc<Statement> {
        result_formats.resize(d.columns.len(), 0);
        let stmt = Arc::new(Statement {
            name: d.name,
            param_types: d.param_types,
            columns: d.columns,
            result_formats: result_formats.into(),
        });
        if let Ok(mut cache) = self.inner.statements.lock() {
            cache.insert(sql.into(), stmt.clone());
        }
        stmt
    }

    /// The cached statement for `sql`, if this connection prepared it.
    pub fn cached(&self, sql: &str) -> Option<Arc<Statement>> {
        self.inner.statements.lock().ok()?.get(sql).cloned()
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
            frontend::bind(
                "",
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
            frontend::execute("", 0, buf)?;
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
        result.columns = Some(stmt.columns.clone());
        result.formats = stmt.result_formats.clone();
        Ok(result)
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
                r.columns = Some(stmt.columns.clone());
                r.formats = stmt.result_formats.clone();
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

/// Connects, authenticates, and starts the protocol loop on the current tokio runtime.
pub async fn connect(config: &Config) -> Result<Client, Error> {
    match config.connect_timeout {
        Some(t) => tokio::time::timeout(t, connect_inner(config))
            .await
            .map_err(|_| {
                Error::connect_timeout(format!(
                    "connecting to {} timed out after {}ms",
                    config.host,
                    t.as_millis()
                ))
            })?,
        None => connect_inner(config).await,
    }
}

async fn connect_inner(config: &Config) -> Result<Client, Error> {
    let host = &config.host;
    let stream = TcpStream::connect((host.host.as_str(), host.port))
        .await
        .map_err(|e| Error::connect(format!("connecting to {host}: {e}")))?;
    SocketOptions::from_config(config)
        .apply(&stream)
        .map_err(|e| Error::config(format!("socket options for {host}: {e}")))?;
    connect_stream(stream, config).await
}

/// `"17.7"` -> 170007, `"9.6.24"` -> 90624, `"15devel"` -> 150000.
pub fn parse_server_version(v: &str) -> u32 {
    let mut nums = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let major = nums.next().unwrap_or(0);
    let second = nums.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + second
    } else {
        major * 10_000 + second * 100 + nums.next().unwrap_or(0)
    }
}

struct StartupInfo {
    parameters: HashMap<String, String>,
    parameter_bytes: usize,
    process_id: i32,
    secret_key: Bytes,
}

/// Reads one message during startup, with the small startup cap.
async fn read_message<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Message, Error> {
    loop {
        if let Some((tag, body)) = backend::split_frame(buf, max)? {
            return Ok(Message::decode(tag, body)?);
        }
        buf.reserve(4096);
        let n = s
            .read_buf(buf)
            .await
            .map_err(|e| Error::closed(format!("during startup: {e}"), true))?;
        if n == 0 {
            return Err(Error::closed(
                "the server closed the connection during startup",
                true,
            ));
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(s: &mut S, buf: &mut BytesMut) -> Result<(), Error> {
    s.write_all(buf)
        .await
        .map_err(|e| Error::closed(format!("during startup: {e}"), true))?;
    buf.clear();
    Ok(())
}

/// StartupMessage, authentication, then parameters and the cancel key up to ReadyForQuery.
/// Generic over the stream so a scripted backend can drive it in tests.
async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    config: &Config,
) -> Result<(S, BytesMut, StartupInfo), Error> {
    let mut wbuf = BytesMut::with_capacity(256);
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let timeout_ms = config.statement_timeout.map(|t| t.as_millis().to_string());
    let mut params: Vec<(&str, &str)> = vec![
        ("user", &config.user),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("application_name", &config.application_name),
    ];
    if let Some(db) = &config.database {
        params.push(("database", db));
    }
    if let Some(ms) = &timeout_ms {
        params.push(("statement_timeout", ms));
    }
    frontend::startup(&params, &mut wbuf)?;
    write_all(&mut stream, &mut wbuf).await?;

    let max = backend::STARTUP_MAX_MESSAGE_LEN;
    let password = || {
        config.password.as_deref().ok_or_else(|| {
            Error::auth(format!(
                "the server asked for a password for user {:?} and none was given",
                config.user
            ))
        })
    };
    loop {
        match read_message(&mut stream, &mut rbuf, max).await? {
            Message::AuthenticationOk => break,
            Message::AuthenticationCleartextPassword => {
                frontend::password(password()?, &mut wbuf)?;
                write_all(&mut stream, &mut wbuf).await?;
            }
            Message::AuthenticationMd5Password { salt } => {
                let hashed = md5_password(config.user.as_bytes(), password()?, salt);
                frontend::password(hashed.as_bytes(), &mut wbuf)?;
                write_all(&mut stream, &mut wbuf).await?;
            }
            Message::AuthenticationSasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == scram::MECHANISM) {
                    return Err(Error::unsupported(format!(
                        "the server offers SASL mechanism(s) {} and this client supports only {} (no TLS channel binding yet)",
                        mechanisms.join(", "),
                        scram::MECHANISM
                    )));
                }
                let mut exchange = scram::ScramSha256::new(password()?);
                frontend::sasl_initial_response(
                    scram::MECHANISM,
                    &exchange.client_first(),
                    &mut wbuf,
                )?;
                write_all(&mut stream, &mut wbuf).await?;
                let server_first = match read_message(&mut stream, &mut rbuf, max).await? {
                    Message::AuthenticationSaslContinue(b) => b,
                    Message::ErrorResponse(e) => return Err(Error::db(e)),
                    other => return Err(unexpected("SASL continue", &other)),
                };
                // The key derivation runs the server's iteration count of PBKDF2 (a million
                // takes about a second): off the I/O thread, so a slow handshake never stalls
                // the other connections sharing it.
                let (returned, client_final) = tokio::task::spawn_blocking(move || {
                    let out = exchange.handle_server_first(&server_first);
                    (exchange, out)
                })
                .await
                .map_err(|e| Error::auth(format!("SCRAM key derivation failed: {e}")))?;
                exchange = returned;
                let client_final = client_final.map_err(|e| Error::auth(e.to_string()))?;
                frontend::sasl_response(&client_final, &mut wbuf)?;
                write_all(&mut stream, &mut wbuf).await?;
                let server_final = match read_message(&mut stream, &mut rbuf, max).await? {
                    Message::AuthenticationSaslFinal(b) => b,
                    Message::ErrorResponse(e) => return Err(Error::db(e)),
                    other => return Err(unexpected("SASL final", &other)),
                };
                exchange
                    .handle_server_final(&server_final)
                    .map_err(|e| Error::auth(e.to_string()))?;
                // AuthenticationOk follows.
            }
            Message::AuthenticationUnsupported { code } => {
                return Err(Error::unsupported(format!(
                    "the server requires {} authentication, which this client does not support",
                    auth_method_name(code)
                )))
            }
            Message::ErrorResponse(e) => return Err(Error::db(e)),
            Message::NegotiateProtocolVersion { .. } | Message::NoticeResponse(_) => {}
            other => return Err(unexpected("authentication", &other)),
        }
    }

    let mut info = StartupInfo {
        parameters: HashMap::new(),
        parameter_bytes: 0,
        process_id: 0,
        secret_key: Bytes::new(),
    };
    loop {
        match read_message(&mut stream, &mut rbuf, max).await? {
            Message::ParameterStatus { name, value } => {
                admit_parameter(&info.parameters, &mut info.parameter_bytes, &name, &value)?;
                info.parameters.insert(name, value);
            }
            Message::BackendKeyData {
                process_id,
                secret_key,
            } => {
                info.process_id = process_id;
                info.secret_key = secret_key;
            }
            Message::ReadyForQuery { .. } => break,
            Message::ErrorResponse(e) => return Err(Error::db(e)),
            Message::NoticeResponse(_) | Message::NegotiateProtocolVersion { .. } => {}
            other => return Err(unexpected("startup", &other)),
        }
    }
    Ok((stream, rbuf, info))
}

fn unexpected(during: &str, msg: &Message) -> Error {
    let name = message_name(msg);
    Error::protocol(backend::ProtocolError(format!(
        "unexpected {name} during {during}"
    )))
}

/// The message's type, for errors.
fn message_name(msg: &Message) -> String {
    let name = format!("{msg:?}");
    name.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("message")
        .to_owned()
}

/// One request in flight.
struct Pending {
    sink: Option<oneshot::Sender<Result<Response, Error>>>,
    /// Where the request's bytes start in the connection's output (see `Connection::written`):
    /// until `written` passes it, no byte of the request reached the socket.
    start: u64,
    stream: Option<RowStream>,
    syncs_left: u32,
    response: Response,
    error: Option<Error>,
    /// The answers the server owes this request, and the next one due.
    plan: Plan,
    step: usize,
    /// An ErrorResponse (or a refused COPY) ended the current group early: nothing but
    /// ReadyForQuery may follow.
    skipping: bool,
    /// The current simple Query got an answer (a ReadyForQuery before one is a protocol
    /// error: it belongs to no group we sent).
    answered: bool,
    /// Results the current group created, and bytes kept for the whole request (row
    /// descriptions, command tags, results): caps on what a server can make us hold.
    group_results: usize,
    retained: usize,
    /// A result is open (rows may still arrive for it).
    open: bool,
    /// Notices that arrived while no result was open. They belong to the next result if one
    /// starts before ReadyForQuery, else to the last one: with the extended protocol an
    /// autocommit statement commits at Sync, so its commit's WARNING (e.g. "canceling wait
    /// for synchronous replication") comes after its CommandComplete.
    loose_notices: Vec<ErrorFields>,
    /// A loose notice (kept or dropped past the cap) said sync replication was cancelled.
    loose_sync_cancelled: bool,
    /// Notices kept for the whole request (count and bytes); past the caps they are dropped.
    notices_kept: usize,
    notice_bytes: usize,
}

impl Pending {
    fn new(
        sink: oneshot::Sender<Result<Response, Error>>,
        start: u64,
        stream: Option<RowStream>,
        syncs: u32,
        plan: Plan,
    ) -> Pending {
        Pending {
            sink: Some(sink),
            start,
            stream,
            syncs_left: syncs,
            response: Response::default(),
            error: None,
            plan,
            step: 0,
            skipping: false,
            answered: false,
            group_results: 0,
            retained: 0,
            open: false,
            loose_notices: Vec::new(),
            loose_sync_cancelled: false,
            notices_kept: 0,
            notice_bytes: 0,
        }
    }

    fn current(&mut self) -> &mut QueryResult {
        if !self.open || self.response.results.is_empty() {
            let mut result = QueryResult {
                sync_replication_cancelled: std::mem::take(&mut self.loose_sync_cancelled),
                ..QueryResult::default()
            };
            result.notices.append(&mut self.loose_notices);
            self.response.results.push(result);
            self.group_results += 1;
            self.retained += std::mem::size_of::<QueryResult>();
            self.open = true;
        }
        let last = self.response.results.len() - 1;
        // `last` is in bounds: the vector was just made non-empty.
        &mut self.response.results[last]
    }

    fn notice(&mut self, fields: ErrorFields) {
        let cancelled = fields
            .message
            .contains("canceling wait for synchronous replication");
        let size = notice_size(&fields);
        let keep = self.notices_kept < MAX_NOTICES && self.notice_bytes + size <= MAX_NOTICE_BYTES;
        if keep {
            self.notices_kept += 1;
            self.notice_bytes += size;
        }
        if self.open {
            let r = self.current();
            r.sync_replication_cancelled |= cancelled;
            if keep {
                r.notices.push(fields);
            }
        } else {
            self.loose_sync_cancelled |= cancelled;
            if keep {
                self.loose_notices.push(fields);
            }
        }
    }

    /// At ReadyForQuery: notices still loose belong to the group's last result.
    fn settle_notices(&mut self) {
        if self.loose_notices.is_empty() && !self.loose_sync_cancelled {
            return;
        }
        if self.response.results.is_empty() {
            self.current();
            return;
        }
        let mut notices = std::mem::take(&mut self.loose_notices);
        let cancelled = std::mem::take(&mut self.loose_sync_cancelled);
        if let Some(last) = self.response.results.last_mut() {
            last.notices.append(&mut notices);
            last.sync_replication_cancelled |= cancelled;
        }
    }

    /// The plan step at which the current group ends (its Sync or Query).
    fn group_end(&self) -> usize {
        let mut i = self.step;
        while let Some(e) = self.plan.get(i) {
            if e.ends_group() {
                return i;
            }
            i += 1;
        }
        i
    }
}

/// Roughly what a notice costs to keep.
fn notice_size(f: &ErrorFields) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    std::mem::size_of::<ErrorFields>()
        + f.severity.len()
        + f.code.len()
        + f.message.len()
        + opt(&f.detail)
        + opt(&f.hint)
        + opt(&f.where_)
        + opt(&f.internal_query)
        + opt(&f.file)
        + opt(&f.routine)
}

/// The server broke the protocol: `what` arrived where the plan says `due`.
fn out_of_step(what: &str, due: Option<Expect>) -> Error {
    let due = match due {
        Some(e) => format!("{e:?}"),
        None => "nothing (no request in flight)".into(),
    };
    Error::protocol(backend::ProtocolError(format!(
        "the server sent {what} where {due} was due; the connection is closed so that no \
         response reaches the wrong caller"
    )))
}

/// Checks a ParameterStatus against the caps before it is stored: at most
/// [`MAX_PARAMETERS`] names and [`MAX_PARAMETER_BYTES`] in total, during startup too. A
/// server sends a few dozen; past the caps it is broken or hostile.
fn admit_parameter(
    map: &HashMap<String, String>,
    bytes: &mut usize,
    name: &str,
    value: &str,
) -> Result<(), Error> {
    let old = map.get(name).map(|v| name.len() + v.len());
    if old.is_none() && map.len() >= MAX_PARAMETERS {
        return Err(Error::protocol(backend::ProtocolError(format!(
            "the server reported more than {MAX_PARAMETERS} parameters"
        ))));
    }
    let total = (*bytes - old.unwrap_or(0)) + name.len() + value.len();
    if total > MAX_PARAMETER_BYTES {
        return Err(Error::protocol(backend::ProtocolError(format!(
            "the server's parameters exceed {MAX_PARAMETER_BYTES} bytes"
        ))));
    }
    *bytes = total;
    Ok(())
}

/// Above this many buffered bytes the loop stops taking requests until the socket drains.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Notices kept per request (count and bytes); more are dropped, not an error: a loop of
/// `RAISE NOTICE` is legitimate.
const MAX_NOTICES: usize = 64;
const MAX_NOTICE_BYTES: usize = 256 * 1024;
/// Results one Sync group may create (a simple Query of many statements); a flood of
/// EmptyQueryResponse or RowDescription past it is a protocol error.
const MAX_RESULTS_PER_GROUP: usize = 4096;
/// Bytes of results, descriptions and tags one request may make us keep (rows excluded:
/// the caller asked for them).
const MAX_RETAINED_PER_REQUEST: usize = 16 << 20;
/// Server parameters kept (ParameterStatus names, and name + value bytes in total).
const MAX_PARAMETERS: usize = 256;
const MAX_PARAMETER_BYTES: usize = 64 * 1024;

/// The protocol loop of one connection (a future run as its own task).
struct Connection<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    rx: mpsc::Receiver<Request>,
    rx_done: bool,
    terminate_queued: bool,
    pending: VecDeque<Pending>,
    depth: usize,
    state: Arc<ConnectionState>,
    parameters: Arc<Mutex<HashMap<String, String>>>,
    max_message_len: usize,
    copy_out: bool,
    /// Requests were taken in the previous poll and the write was put off by one turn of
    /// the scheduler (see `poll_loop`).
    corked: bool,
    /// Bytes handed to the socket so far; with `write_buf.len()`, where each request starts.
    written: u64,
    /// [`Client::abort`]'s signal; `None` once it fired or every client is gone.
    abort: Option<oneshot::Receiver<String>>,
    /// Name + value bytes of the stored server parameters (see `admit_parameter`).
    parameter_bytes: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Connection<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.poll_loop(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.shut_down(result.err());
                Poll::Ready(())
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn poll_loop(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // 0. An abort comes first: it must win even when the socket never becomes ready.
        if let Some(rx) = self.abort.as_mut() {
            match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(reason)) => {
                    self.abort = None;
                    return Poll::Ready(Err(Error::closed(reason, true)));
                }
                // Every client handle is gone: no abort can come any more.
                Poll::Ready(Err(_)) => self.abort = None,
                Poll::Pending => {}
            }
        }
        loop {
            let mut progress = false;
            let mut took = false;
            let busy = !self.pending.is_empty();

            // 1. Take queued requests while the pipeline has room.
            // After a FATAL error the server is closing the session: requests still queued
            // are never written, so they fail as unsent (safe to retry) at shutdown.
            while !self.rx_done
                && !self.terminate_queued
                && !self.state.closed.load(Ordering::Acquire)
                && self.pending.len() < self.depth
                && self.write_buf.len() < WRITE_HIGH_WATER
            {
                match self.rx.poll_recv(cx) {
                    Poll::Ready(Some(Request::Batch {
                        bytes,
                        syncs,
                        sink,
                        stream,
                    })) => {
                        if sink.is_closed() {
                            continue; // the caller gave up before anything was written
                        }
                        let plan = match plan::plan(&bytes, syncs) {
                            Ok(plan) => plan,
                            Err(why) => {
                                // Nothing written: the loop could not keep in step with it.
                                let _ = sink.send(Err(Error::encode(EncodeError::Request(why))));
                                continue;
                            }
                        };
                        let start = self.written + self.write_buf.len() as u64;
                        self.write_buf.extend_from_slice(&bytes);
                        self.pending
                            .push_back(Pending::new(sink, start, stream, syncs, plan));
                        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
                        progress = true;
                        took = true;
                    }
                    Poll::Ready(Some(Request::Terminate)) | Poll::Ready(None) => {
                        self.rx_done = true;
                        progress = true;
                    }
                    Poll::Pending => break,
                }
            }
            if self.rx_done && !self.terminate_queued && self.pending.is_empty() {
                frontend::terminate(&mut self.write_buf);
                self.terminate_queued = true;
            }
            // Cork: on a connection that already has queries in flight, new requests are
            // written one scheduler turn later. Callers woken by the same burst (results
            // settled together) queue theirs in that turn, and they all go out in one write:
            // one system call and one wake-up of the server for many queries. A request to
            // an idle connection goes out at once (a lone query waits for nothing).
            if took && busy && !self.corked && !self.terminate_queued {
                self.corked = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.corked = false;

            // 2. Write what we have.
            while !self.write_buf.is_empty() {
                match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Error::closed(
                            "the server closed the connection",
                            true,
                        )))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.write_buf.advance(n);
                        self.written += n as u64;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Err(Error::closed(format!("write failed: {e}"), true)))
                    }
                    Poll::Pending => break,
                }
            }
            if self.write_buf.is_empty() {
                // TCP flush is a no-op, but respect streams that buffer.
                if let Poll::Ready(Err(e)) = Pin::new(&mut self.stream).poll_flush(cx) {
                    return Poll::Ready(Err(Error::closed(format!("flush failed: {e}"), true)));
                }
                if self.terminate_queued {
                    let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
                    return Poll::Ready(Ok(()));
                }
            }

            // 3. Read what arrived and handle every whole message.
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(Error::closed(
                        "the server closed the connection",
                        true,
                    )))
                }
                Poll::Ready(Ok(_)) => progress = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            while let Some((tag, body)) =
                backend::split_frame(&mut self.read_buf, self.max_message_len)?
            {
                let msg = Message::decode(tag, body)?;
                self.handle(msg)?;
                progress = true;
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        // Grow by what the frame at the front still needs (capped), never by its declared
        // length alone: an untrusted length cannot make us reserve a gigabyte.
        let want = backend::frame_len(&self.read_buf)
            .map(|total| total.saturating_sub(self.read_buf.len()))
            .unwrap_or(0)
            .clamp(16 * 1024, 1024 * 1024);
        if self.read_buf.capacity() - self.read_buf.len() < 4096 {
            self.read_buf.reserve(want);
        }
        let dst = self.read_buf.spare_capacity_mut();
        let mut rb = ReadBuf::uninit(dst);
        match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
                unsafe { self.read_buf.set_len(self.read_buf.len() + n) };
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                Poll::Ready(Err(Error::closed(format!("read failed: {e}"), true)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn handle(&mut self, msg: Message) -> Result<(), Error> {
        // Messages the server may send at any time, whoever is waiting.
        let msg = match msg {
            Message::NoticeResponse(fields) => {
                // With no request in flight there is nobody to hand it to: dropped.
                if let Some(p) = self.pending.front_mut() {
                    p.notice(fields);
                }
                return Ok(());
            }
            Message::ParameterStatus { name, value } => {
                if let Ok(mut map) = self.parameters.lock() {
                    admit_parameter(&map, &mut self.parameter_bytes, &name, &value)?;
                    self.state.apply_parameter(&name, &value);
                    map.insert(name, value);
                }
                return Ok(());
            }
            Message::NotificationResponse { .. } => {
                // LISTEN/NOTIFY is not supported yet; notifications are dropped.
                return Ok(());
            }
            Message::ErrorResponse(fields) => {
                if fields.code == crate::sqlstate::READ_ONLY_SQL_TRANSACTION {
                    self.state.read_only_error.store(true, Ordering::Release);
                }
                let fatal = matches!(fields.severity(), "FATAL" | "PANIC");
                self.copy_out = false;
                let Some(p) = self.pending.front_mut() else {
                    return Err(Error::db(fields));
                };
                if p.error.is_none() {
                    p.error = Some(Error::db(fields));
                }
                // The server skips to the group's Sync (or the Query's end).
                p.skipping = true;
                p.answered = true;
                p.open = false;
                if fatal {
                    // The server closes the socket next; the front request gets this
                    // error, the rest a closed-connection error.
                    self.state.closed.store(true, Ordering::Release);
                }
                return Ok(());
            }
            other => other,
        };

        // Everything else answers the front request, at the step its plan is on.
        let alone = self.pending.len() == 1;
        let Some(p) = self.pending.front_mut() else {
            return Err(out_of_step(&message_name(&msg), None));
        };
        let due = if p.skipping {
            None
        } else {
            p.plan.get(p.step).copied()
        };
        let row_result_open = p.open
            && p.response
                .results
                .last()
                .is_some_and(|r| r.columns.is_some());
        match (msg, due) {
            (Message::ReadyForQuery { status }, _)
                if p.skipping
                    || due == Some(Expect::Sync)
                    || (due == Some(Expect::Query) && p.answered) =>
            {
                self.state.tx_status.store(status, Ordering::Release);
                self.copy_out = false;
                p.step = p.group_end() + 1;
                p.skipping = false;
                p.answered = false;
                p.group_results = 0;
                p.settle_notices();
                p.open = false;
                p.syncs_left = p.syncs_left.saturating_sub(1);
                let end = p.response.results.len();
                let error = p.error.take();
                p.response.groups.push(GroupEnd { end, error });
                if p.syncs_left == 0 {
                    if let Some(p) = self.pending.pop_front() {
                        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
                        if let Some(sink) = p.sink {
                            // The caller may have gone: its response is drained and dropped.
                            let _ = sink.send(Ok(p.response));
                        }
                    }
                }
                return Ok(());
            }
            (Message::DataRow(row), Some(Expect::Execute))
            | (Message::DataRow(row), Some(Expect::Query))
                if !self.copy_out && (due == Some(Expect::Execute) || row_result_open) =>
            {
                p.current();
                let streaming = p.syncs_left == 1;
                let bytes = row.frame().len();
                if let Some(r) = p.response.results.last_mut() {
                    r.rows.push(row);
                    if let Some(s) = p.stream.as_mut().filter(|_| streaming) {
                        s.row_added(bytes, &mut r.rows);
                    }
                }
            }
            (Message::CommandComplete { tag }, Some(e @ (Expect::Execute | Expect::Query))) => {
                self.copy_out = false;
                p.retained += tag.len();
                let r = p.current();
                r.command_tag = Some(String::from_utf8_lossy(&tag).into_owned());
                p.open = false;
                p.answered = true;
                if e == Expect::Execute {
                    p.step += 1;
                }
            }
            (Message::EmptyQueryResponse, Some(e @ (Expect::Execute | Expect::Query)))
                if !self.copy_out =>
            {
                p.current();
                p.open = false;
                p.answered = true;
                if e == Expect::Execute {
                    p.step += 1;
                }
            }
            (Message::PortalSuspended, Some(Expect::Execute)) if !self.copy_out => {
                p.open = false;
                p.step += 1;
            }
            (Message::RowDescription(fields), Some(Expect::RowDescription)) => {
                p.retained += fields.iter().map(|f| f.name.len() + 32).sum::<usize>();
                let of_statement =
                    p.step > 0 && p.plan.get(p.step - 1) == Some(&Expect::ParameterDescription);
                if of_statement {
                    p.response.row_description = Some(fields);
                } else {
                    // Describe of a portal: the columns of the result that follows.
                    p.open = false;
                    let n = fields.len();
                    let r = p.current();
                    r.columns = Some(fields.into());
                    r.formats = vec![0i16; n].into();
                }
                p.step += 1;
            }
            (Message::RowDescription(fields), Some(Expect::Query)) if !self.copy_out => {
                p.retained += fields.iter().map(|f| f.name.len() + 32).sum::<usize>();
                p.open = false;
                p.answered = true;
                let n = fields.len();
                let r = p.current();
                r.columns = Some(fields.into());
                r.formats = vec![0i16; n].into();
            }
            (Message::NoData, Some(Expect::RowDescription))
            | (Message::ParseComplete, Some(Expect::ParseComplete))
            | (Message::BindComplete, Some(Expect::BindComplete))
            | (Message::CloseComplete, Some(Expect::CloseComplete)) => p.step += 1,
            (Message::ParameterDescription(types), Some(Expect::ParameterDescription)) => {
                p.retained += types.len() * 4;
                p.response.param_types = Some(types);
                p.step += 1;
            }
            (Message::CopyInResponse, Some(e @ (Expect::Execute | Expect::Query)))
                if !self.copy_out =>
            {
                p.error.get_or_insert_with(copy_unsupported);
                p.answered = true;
                // In copy-in mode the server swallows every message but CopyData, CopyDone,
                // CopyFail, Flush and Sync: whatever was pipelined behind the COPY (another
                // group, another caller's request) would be consumed, and the answers would
                // shift. Only a COPY with nothing behind it can be refused in place.
                let group_end = p.group_end();
                let nothing_behind = alone
                    && group_end + 1 == p.plan.len()
                    && (e == Expect::Query || group_end == p.step + 1);
                if !nothing_behind {
                    return Err(Error::protocol(backend::ProtocolError(
                        "COPY FROM STDIN is not supported, and the requests pipelined behind it \
                         were consumed by the server's copy mode; the connection is closed"
                            .into(),
                    )));
                }
                frontend::copy_fail(
                    "COPY FROM STDIN is not supported by hyperiondb-client yet",
                    &mut self.write_buf,
                )?;
                if e == Expect::Execute {
                    // The Sync sent with the request was swallowed in copy mode, and after
                    // the CopyFail the server discards up to the next Sync: this one.
                    frontend::sync(&mut self.write_buf);
                }
                // The server answers an ErrorResponse, then ReadyForQuery.
                p.skipping = true;
            }
            (Message::CopyOutResponse, Some(Expect::Execute | Expect::Query)) if !self.copy_out => {
                self.copy_out = true;
                p.answered = true;
                p.error.get_or_insert_with(copy_unsupported);
            }
            (Message::CopyData(_) | Message::CopyDone, _) if self.copy_out => {}
            (Message::CopyBothResponse, _) => {
                return Err(Error::unsupported(
                    "replication (CopyBoth) is not supported",
                ));
            }
            (msg, due) => return Err(out_of_step(&message_name(&msg), due)),
        }
        if p.group_results > MAX_RESULTS_PER_GROUP {
            return Err(Error::protocol(backend::ProtocolError(format!(
                "the server sent more than {MAX_RESULTS_PER_GROUP} results for one Sync group"
            ))));
        }
        if p.retained > MAX_RETAINED_PER_REQUEST {
            return Err(Error::protocol(backend::ProtocolError(format!(
                "the server's answer to one request holds more than {MAX_RETAINED_PER_REQUEST} \
                 bytes of descriptions and tags"
            ))));
        }
        Ok(())
    }

    /// The connection is done: fail every request in flight or queued, exactly once each.
    fn shut_down(&mut self, error: Option<Error>) {
        self.state.closed.store(true, Ordering::Release);
        let error = error.unwrap_or_else(|| Error::closed("connection is closed", true));
        for p in self.pending.drain(..) {
            self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
            if let Some(sink) = p.sink {
                // A request that already got an ErrorResponse reports it (a FATAL error tells
                // the caller more than "closed").
                let sent = self.written > p.start;
                let e = p.error.unwrap_or_else(|| error.with_sent(sent));
                let _ = sink.send(Err(e));
            }
        }
        self.rx.close();
        while let Ok(req) = self.rx.try_recv() {
            if let Request::Batch { sink, .. } = req {
                let _ = sink.send(Err(error.with_sent(false)));
            }
        }
    }
}

fn copy_unsupported() -> Error {
    Error::db(ErrorFields {
        severity: "ERROR".into(),
        severity_nonlocalized: Some("ERROR".into()),
        code: crate::sqlstate::FEATURE_NOT_SUPPORTED.into(),
        message: "COPY is not supported by hyperiondb-client yet".into(),
        ..Default::default()
    })
}

/// Starts a protocol loop over any stream (an in-memory duplex or a scripted backend), after
/// running startup on it. Used by tests and by callers with their own transport.
pub async fn connect_stream<S>(stream: S, config: &Config) -> Result<Client, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, read_buf, info) = startup(stream, config).await.map_err(|e| e.at_startup())?;
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
    let info = StartupInfo {
        parameters: HashMap::new(),
        ..info
    };
    let depth = config.pipeline_depth.max(1);
    let (tx, rx) = mpsc::channel(depth);
    let (abort_tx, abort_rx) = oneshot::channel();
    tokio::spawn(Connection {
        stream,
        read_buf,
        write_buf: BytesMut::new(),
        rx,
        rx_done: false,
        terminate_queued: false,
        pending: VecDeque::new(),
        depth,
        state: state.clone(),
        parameters: parameters.clone(),
        max_message_len: config.max_message_len,
        copy_out: false,
        corked: false,
        written: 0,
        abort: Some(abort_rx),
        parameter_bytes: info.parameter_bytes,
    });
    Ok(Client {
        inner: Arc::new(ClientInner {
            tx,
            state,
            statements: Mutex::new(HashMap::new()),
            next_statement: AtomicU32::new(0),
            parameters,
            cancel: CancelToken {
                host: config.host.clone(),
                process_id: info.process_id,
                secret_key: info.secret_key,
                socket: SocketOptions::from_config(config),
            },
            result_format: config.result_format,
            server_version_num,
            abort: Mutex::new(Some(abort_tx)),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("17.7"), 170007);
        assert_eq!(parse_server_version("13.22 (Debian)"), 130022);
        assert_eq!(parse_server_version("9.6.24"), 90624);
        assert_eq!(parse_server_version("18devel"), 180000);
        assert_eq!(parse_server_version(""), 0);
    }

    #[test]
    fn rows_affected_from_tag() {
        let r = QueryResult {
            command_tag: Some("INSERT 0 5".into()),
            ..Default::default()
        };
        assert_eq!(r.rows_affected(), Some(5));
    }
}
