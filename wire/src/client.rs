//! The caller's side of a connection: a cheap [`Client`] handle whose requests go through
//! a bounded channel to the connection's protocol loop (the `driver` module). Its prepared
//! statements (the cache, Describe, Close) are `prepare.rs`'s; opening a connection is
//! `connect.rs`'s.
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
use crate::prepare::Waiter;
use crate::queue::{self, TrySendError};
use crate::response::{Response, RowStream};
use crate::result::{Format, Params, QueryResult, Statement};
use crate::socket::SocketOptions;
use crate::startup::parse_server_version;
use crate::state::ConnectionState;
use crate::statement_cache::StatementCache;
use crate::tls::TlsSetup;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

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

impl Request {
    /// A batch of `syncs` Sync groups, and the receiver of its answer.
    fn batch(
        bytes: Bytes,
        syncs: u32,
        stream: Option<RowStream>,
        copy: Option<CopyHook>,
    ) -> (Request, oneshot::Receiver<Result<Response, Error>>) {
        let (sink, rx) = oneshot::channel();
        let req = Request::Batch {
            bytes,
            syncs,
            sink,
            stream,
            copy,
        };
        (req, rx)
    }
}

type WaitForRoom = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The answer to a request in the connection's queue ([`Client::send`]). The request was
/// queued when it was made: dropping this unawaited discards the answer (and, when the queue
/// was full, the request), so it must be awaited.
#[must_use = "the request's answer (and, with a full queue, the request itself) is lost unless awaited"]
pub(crate) struct Answer {
    state: AnswerState,
}

enum AnswerState {
    /// Queued: the loop answers through this.
    Queued(oneshot::Receiver<Result<Response, Error>>),
    /// The queue was full: waiting for room, then for the answer.
    Waiting(Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>),
    /// Not queued (the connection is closed); taken by the first poll.
    Refused(Option<Error>),
}

impl Future for Answer {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AnswerState::Queued(rx) => Pin::new(rx).poll(cx).map(answered),
            AnswerState::Waiting(wait) => wait.as_mut().poll(cx),
            AnswerState::Refused(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or_else(|| Error::closed("connection is closed", false)))),
        }
    }
}

/// The loop answers every request it took; a dropped sink means the connection died before
/// writing this request.
fn answered(
    r: Result<Result<Response, Error>, oneshot::error::RecvError>,
) -> Result<Response, Error> {
    r.unwrap_or_else(|_| Err(Error::closed("connection is closed", false)))
}

pub(crate) struct ClientInner {
    pub(crate) tx: queue::Sender<Request>,
    state: Arc<ConnectionState>,
    pub(crate) statements: Mutex<StatementCache<Waiter>>,
    pub(crate) next_statement: AtomicU32,
    /// Shared with the protocol loop, which updates it at every ParameterStatus.
    parameters: Arc<Mutex<HashMap<String, String>>>,
    cancel: CancelToken,
    pub(crate) result_format: fn(u32) -> Format,
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
    pub(crate) inner: Arc<ClientInner>,
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
            Err(TrySendError::Full(req)) => {
                // The pipeline is full: queue the Terminate behind it rather than drop it.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let tx = self.inner.tx.clone();
                    rt.spawn(async move {
                        let _ = tx.send(req).await;
                    });
                }
                // Outside a runtime, dropping the last handle closes the connection too.
            }
            Ok(()) | Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Queues a request and returns its answer. The request is in the connection's queue
    /// when this returns (unless the queue is full, below): the returned future only waits.
    ///
    /// Not an `async fn`: every statement's future holds this one across its round trip,
    /// and as a state machine (the queueing inline) it was 430 bytes, copied into each
    /// future that held it (four levels up to the pool's query); [`Answer`] is 24.
    pub(crate) fn send(&self, bytes: Bytes, syncs: u32, stream: Option<RowStream>) -> Answer {
        let (req, rx) = Request::batch(bytes, syncs, stream, None);
        let state = match self.queue(req) {
            Ok(None) => AnswerState::Queued(rx),
            Ok(Some(room)) => AnswerState::Waiting(Box::pin(async move {
                room.await?;
                answered(rx.await)
            })),
            Err(e) => AnswerState::Refused(Some(e)),
        };
        Answer { state }
    }

    /// Queues a request; the receiver gets its response.
    pub(crate) async fn submit(
        &self,
        bytes: Bytes,
        syncs: u32,
        stream: Option<RowStream>,
        copy: Option<CopyHook>,
    ) -> Result<oneshot::Receiver<Result<Response, Error>>, Error> {
        let (req, rx) = Request::batch(bytes, syncs, stream, copy);
        if let Some(room) = self.queue(req)? {
            room.await?;
        }
        Ok(rx)
    }

    /// Puts `req` in the connection's queue now if it has room, which it has unless a COPY
    /// FROM ahead has filled it; else returns the wait for room (boxed, with a handle of
    /// its own on the queue: rare, and kept out of every statement's future).
    fn queue(&self, req: Request) -> Result<Option<WaitForRoom>, Error> {
        match self.inner.tx.try_send(req) {
            Ok(()) => Ok(None),
            Err(TrySendError::Full(req)) => {
                let tx = self.inner.tx.clone();
                Ok(Some(Box::pin(async move {
                    tx.send(req)
                        .await
                        .map_err(|_| Error::closed("connection is closed", false))
                })))
            }
            Err(TrySendError::Closed(_)) => Err(Error::closed("connection is closed", false)),
        }
    }

    pub(crate) fn sender(&self) -> &queue::Sender<Request> {
        &self.inner.tx
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
    ///
    /// [`Client::execute_behind`]'s future itself, not one around it: a level fewer to
    /// poll and to copy in every statement's future.
    pub fn execute_streaming<'a, P: Params + ?Sized>(
        &'a self,
        stmt: &'a Statement,
        params: &'a P,
        stream: Option<RowStream>,
    ) -> impl Future<Output = Result<QueryResult, Error>> + 'a {
        self.execute_behind(None, stmt, params, stream)
    }

    /// [`Client::execute_streaming`] with `first` (a statement without parameters or rows:
    /// a transaction's BEGIN) ahead of it in the same write and the same Sync group: the
    /// server skips `stmt` if `first` fails, and nothing runs outside the transaction. The
    /// result is `stmt`'s; an error is either's.
    pub async fn execute_behind<P: Params + ?Sized>(
        &self,
        first: Option<&str>,
        stmt: &Statement,
        params: &P,
        stream: Option<RowStream>,
    ) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(64);
        if let Some(first) = first {
            frontend::truncate_on_error(&mut buf, |buf| {
                frontend::parse("", first, &[], buf)?;
                frontend::bind("", "", &[], 0, |_, _| Ok(frontend::IsNull::No), &[], buf)?;
                frontend::execute("", 0, buf)
            })?;
        }
        Self::encode_execute(stmt, params, &mut buf)?;
        let stream = stream.map(|s| s.for_statement(stmt));
        let resp = self.send(buf.freeze(), 1, stream).await?.ok()?;
        let mut result = resp.results.into_iter().last().unwrap_or_default();
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
    /// The loop over `stream`; `pace`, when given, is kept up to date for the stream
    /// ([`crate::runner::Pace`]).
    pub(crate) fn into_loop<S>(
        self,
        stream: S,
        read_buf: BytesMut,
        pace: Option<crate::runner::Pace>,
    ) -> Connection<S>
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
            pace,
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
    let (tx, rx) = queue::channel(depth);
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
