//! `NativeConnection`: a connection held exclusively, by a transaction (`pool.begin()`) or a
//! checkout (`pool.connect()`), and what runs on one: statements, scripts, row streams
//! (`NativeCursor`) and COPY (`NativeCopyIn`, `NativeCopyOut`).
//!
//! Every operation locks the connection for its whole length (a stream until its last batch
//! or its close, a COPY until its end), so two calls made at once from JS run one after the
//! other and can never interleave their messages on the socket.

use crate::errors::Failure;
use crate::params::JsParams;
use crate::pool::{cancellation, read_params, AbortHandle};
use crate::rows::{decode, Chunk, Meta};
use crate::settle::{Settled, Settler};
use crate::stream;
use hyperion_codec::Int8;
use hyperion_pool::{Cursor, Dedicated, Session, Transaction, TypeCache};
use hyperion_wire::{CopyIn, Flow, QueryResult};
use napi::bindgen_prelude::Buffer;
use napi::{Env, JsObject, JsUnknown};
use napi_derive::napi;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Notify, OwnedMutexGuard};

/// What a `NativeConnection` holds.
pub enum Held {
    Tx(Transaction),
    Session(Session),
}

impl Held {
    fn conn(&self) -> &Dedicated {
        match self {
            Held::Tx(t) => &t.conn,
            Held::Session(s) => &s.conn,
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Held>>>;

/// A dedicated connection. Dropping it (garbage collection) without COMMIT, ROLLBACK or
/// release gives its connection back; one left inside a transaction is destroyed.
#[napi]
pub struct NativeConnection {
    held: Slot,
    types: Arc<TypeCache>,
    int8: Int8,
    settler: Settler,
    /// A transaction's (not a checkout's).
    tx: bool,
}

impl NativeConnection {
    pub fn new(held: Held, types: Arc<TypeCache>, int8: Int8, settler: Settler) -> Self {
        NativeConnection {
            tx: matches!(held, Held::Tx(_)),
            held: Arc::new(tokio::sync::Mutex::new(Some(held))),
            types,
            int8,
            settler,
        }
    }
}

impl Settled for NativeConnection {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        Ok(<NativeConnection as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env, self)?)
    }
}

/// The error for a connection already given back: a transaction's (committed or rolled
/// back) or a checkout's (released).
fn finished(tx: bool) -> Failure {
    if tx {
        Failure::client(
            "TRANSACTION_FINISHED",
            "the transaction is already committed or rolled back",
        )
    } else {
        Failure::client("CONNECTION_RELEASED", "the connection was released")
    }
}

/// The connection under `guard`, or the error for one already given back.
fn conn(guard: &Option<Held>, tx: bool) -> Result<&Dedicated, Failure> {
    guard.as_ref().map(Held::conn).ok_or_else(|| finished(tx))
}

/// Rows a stream reads per batch unless told otherwise.
const DEFAULT_BATCH_ROWS: u32 = 1000;
/// Bytes of COPY TO data JS may have waiting before the connection stops reading.
const COPY_OUT_WINDOW: usize = 1 << 20;
/// COPY TO data crosses to JS in pieces of this size (the last one smaller).
const COPY_OUT_PIECE: usize = 128 * 1024;

#[napi]
impl NativeConnection {
    #[napi(ts_return_type = "Promise<NativeResult>")]
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        env: Env,
        sql: String,
        params: Option<Vec<JsUnknown>>,
        timeout_ms: Option<f64>,
        abort: Option<&AbortHandle>,
        columns: Option<bool>,
        prepare: Option<bool>,
        trace: Option<bool>,
    ) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        let params = read_params(&env, &sql, params, &self.types)?;
        let cancel = cancellation(timeout_ms, abort).map_err(|f| f.with_query(&sql).throw(&env))?;
        let held = self.held.clone();
        let tx = self.tx;
        stream::spawn(
            &env,
            &self.settler,
            self.types.clone(),
            self.int8,
            sql.clone(),
            columns.unwrap_or(false),
            trace.unwrap_or(false),
            move |streaming| {
                Box::pin(async move {
                    let guard = held.lock().await;
                    let c = conn(&guard, tx)?;
                    Ok(c.query(&sql, &params, Some(&streaming), &cancel, prepare)
                        .await?)
                })
            },
        )
    }

    /// Several statements in one simple Query: one result per statement.
    #[napi(ts_return_type = "Promise<NativeResult[]>")]
    pub fn script(
        &self,
        env: Env,
        sql: String,
        timeout_ms: Option<f64>,
        abort: Option<&AbortHandle>,
    ) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        let cancel = cancellation(timeout_ms, abort).map_err(|f| f.with_query(&sql).throw(&env))?;
        let held = self.held.clone();
        let tx = self.tx;
        let types = self.types.clone();
        let int8 = self.int8;
        self.settler.spawn(&env, Some(sql.clone()), async move {
            let guard = held.lock().await;
            let results = conn(&guard, tx)?.script(&sql, &cancel).await?;
            drop(guard);
            let types = types.load();
            let chunks = results
                .into_iter()
                .map(|r| whole(r, &types, int8, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Chunks(chunks))
        })
    }

    /// Starts a row stream read `batchRows` at a time; the first `next()` reports an error
    /// in starting it.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn stream(
        &self,
        env: Env,
        sql: String,
        params: Option<Vec<JsUnknown>>,
        batch_rows: Option<u32>,
        columns: Option<bool>,
        prepare: Option<bool>,
    ) -> napi::Result<NativeCursor> {
        let sql: Arc<str> = sql.into();
        let params = read_params(&env, &sql, params, &self.types)?;
        let (tx, rx) = mpsc::channel(1);
        let (done_tx, done) = oneshot::channel();
        let job = StreamJob {
            held: self.held.clone(),
            types: self.types.clone(),
            int8: self.int8,
            tx: self.tx,
            sql: sql.clone(),
            params,
            batch: batch_rows.unwrap_or(DEFAULT_BATCH_ROWS).max(1),
            columns: columns.unwrap_or(false),
            prepare,
        };
        napi::bindgen_prelude::spawn(async move {
            job.run(tx).await;
            let _ = done_tx.send(());
        });
        Ok(NativeCursor {
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            done: Arc::new(Mutex::new(Some(done))),
            settler: self.settler.clone(),
            query: sql,
        })
    }

    /// Starts a `COPY ... FROM STDIN`; resolves once the server takes data.
    #[napi(ts_return_type = "Promise<NativeCopyIn>")]
    pub fn copy_in(&self, env: Env, sql: String) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        let held = self.held.clone();
        let tx = self.tx;
        let settler = self.settler.clone();
        self.settler.spawn(&env, Some(sql.clone()), async move {
            let guard = held.lock_owned().await;
            let copy = conn(&guard, tx)?.copy_in(&sql).await?;
            Ok(NativeCopyIn {
                inner: Arc::new(tokio::sync::Mutex::new(Some((copy, guard)))),
                settler,
                query: sql,
            })
        })
    }

    /// Starts a `COPY ... TO STDOUT`; `read()` its data.
    #[napi]
    pub fn copy_out(&self, sql: String) -> NativeCopyOut {
        let sql: Arc<str> = sql.into();
        let shared = Arc::new(CopyOutShared {
            queue: Mutex::new(VecDeque::new()),
            filling: Mutex::new(Vec::new()),
            ready: Notify::new(),
            flow: Flow::new(COPY_OUT_WINDOW),
            end: Mutex::new(None),
            cancel: Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        let held = self.held.clone();
        let tx = self.tx;
        let job = shared.clone();
        let query = sql.clone();
        let (done_tx, done) = oneshot::channel();
        napi::bindgen_prelude::spawn(async move {
            let guard = held.lock().await;
            let result = match conn(&guard, tx) {
                // Closed before it started: nothing to run.
                Ok(_) if job.flow.is_closed() => Ok(QueryResult::default()),
                Ok(c) => {
                    if let Ok(mut t) = job.cancel.lock() {
                        *t = Some(c.cancel_token());
                    }
                    let sink = job.clone();
                    c.copy_out(&query, job.flow.clone(), move |data| sink.push(data))
                        .await
                        .map_err(Failure::from)
                }
                Err(f) => Err(f),
            };
            job.finished.store(true, Ordering::Release);
            job.flush();
            drop(guard);
            if let Ok(mut end) = job.end.lock() {
                *end = Some(result.map(|r| r.rows_affected()));
            }
            job.ready.notify_one();
            let _ = done_tx.send(());
        });
        NativeCopyOut {
            shared,
            done: Arc::new(Mutex::new(Some(done))),
            settler: self.settler.clone(),
            query: sql,
        }
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn commit(&self, env: Env) -> napi::Result<JsObject> {
        let held = self.held.clone();
        let tx = self.tx;
        self.settler
            .spawn(&env, Some(Arc::from("COMMIT")), async move {
                match held.lock().await.take() {
                    Some(Held::Tx(t)) => Ok(t.commit().await?),
                    other => Err(not_a_transaction(other, tx)),
                }
            })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn rollback(&self, env: Env) -> napi::Result<JsObject> {
        let held = self.held.clone();
        let tx = self.tx;
        self.settler
            .spawn(&env, Some(Arc::from("ROLLBACK")), async move {
                match held.lock().await.take() {
                    Some(Held::Tx(t)) => Ok(t.rollback().await?),
                    other => Err(not_a_transaction(other, tx)),
                }
            })
    }

    /// Gives a checked-out connection back (`destroy`: closes it instead). Resolves once
    /// whatever still runs on it (a stream being closed) has finished.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn release(&self, env: Env, destroy: Option<bool>) -> napi::Result<JsObject> {
        let held = self.held.clone();
        let tx = self.tx;
        self.settler.spawn(&env, None, async move {
            match held.lock().await.take() {
                Some(Held::Session(s)) if destroy == Some(true) => s.destroy(),
                Some(Held::Session(s)) => s.release(),
                Some(Held::Tx(t)) => {
                    // A transaction given back unfinished: its connection is destroyed.
                    drop(t);
                }
                None => return Err(finished(tx)),
            }
            Ok(())
        })
    }

    /// The backend process id of the connection.
    #[napi]
    pub fn process_id(&self) -> Option<i32> {
        self.held
            .try_lock()
            .ok()?
            .as_ref()
            .map(|h| h.conn().process_id())
    }
}

fn not_a_transaction(other: Option<Held>, tx: bool) -> Failure {
    match other {
        None => finished(tx),
        Some(Held::Session(_)) => {
            // Not ours to end: the connection is given back as it is.
            Failure::client(
                "INVALID_ARGUMENT",
                "commit and rollback are for transactions: run COMMIT on a checked-out connection",
            )
        }
        Some(Held::Tx(_)) => finished(tx),
    }
}

/// One whole result (or stream batch) for JS.
fn whole(
    mut result: QueryResult,
    types: &hyperion_codec::Types,
    int8: Int8,
    columns: bool,
) -> Result<Chunk, Failure> {
    let meta = Meta::take(&mut result);
    Ok(Chunk {
        body: decode(result, types, int8, columns)?,
        attempt: 1,
        last: true,
        rest: None,
        meta: Some(meta),
        external_strings: false,
    })
}

/// Several whole results, as a JS array.
struct Chunks(Vec<Chunk>);

impl Settled for Chunks {
    fn take_notices(&mut self) -> Vec<hyperion_wire::backend::ErrorFields> {
        self.0.iter_mut().flat_map(|c| c.take_notices()).collect()
    }

    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        let mut array = std::ptr::null_mut();
        if napi::sys::napi_create_array_with_length(env, self.0.len(), &mut array)
            != napi::sys::Status::napi_ok
        {
            return Err(napi::Error::from_reason("cannot create an array").into());
        }
        for (i, c) in self.0.into_iter().enumerate() {
            let v = c.into_js(env)?;
            if napi::sys::napi_set_element(env, array, i as u32, v) != napi::sys::Status::napi_ok {
                return Err(napi::Error::from_reason("cannot fill an array").into());
            }
        }
        Ok(array)
    }
}

struct StreamJob {
    tx: bool,
    held: Slot,
    types: Arc<TypeCache>,
    int8: Int8,
    sql: Arc<str>,
    params: JsParams,
    batch: u32,
    columns: bool,
    prepare: Option<bool>,
}

impl StreamJob {
    /// Opens the stream and sends its batches, one read ahead of JS (the channel holds
    /// one); ends when the rows do, on an error, or when JS closes the receiver.
    async fn run(self, tx: mpsc::Sender<Result<Chunk, Failure>>) {
        let guard = self.held.lock().await;
        let c = match conn(&guard, self.tx) {
            Ok(c) => c,
            Err(f) => {
                let _ = tx.send(Err(f)).await;
                return;
            }
        };
        let mut cursor: Cursor = match c
            .stream(&self.sql, &self.params, self.batch, self.prepare)
            .await
        {
            Ok(cursor) => cursor,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        loop {
            let chunk = match cursor.next(c).await {
                Ok(None) => break,
                Ok(Some(batch)) => whole(batch, &self.types.load(), self.int8, self.columns),
                Err(e) => Err(e.into()),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break; // JS closed the stream, or it failed
            }
        }
        if let Err(e) = cursor.close(c).await {
            // Closing failed (the connection broke): JS may still be waiting for a batch.
            let _ = tx.try_send(Err(e.into()));
        }
    }
}

/// A row stream: `next()` resolves to the next batch (a result like a query's) or null.
#[napi]
pub struct NativeCursor {
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Result<Chunk, Failure>>>>,
    done: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    settler: Settler,
    query: Arc<str>,
}

/// `null` for JS.
struct End;

impl Settled for End {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        let mut v = std::ptr::null_mut();
        napi::sys::napi_get_null(env, &mut v);
        Ok(v)
    }
}

/// A batch, or the end.
enum Next {
    Batch(Box<Chunk>),
    End,
}

impl Settled for Next {
    fn take_notices(&mut self) -> Vec<hyperion_wire::backend::ErrorFields> {
        match self {
            Next::Batch(c) => c.take_notices(),
            Next::End => Vec::new(),
        }
    }

    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        match self {
            Next::Batch(c) => (*c).into_js(env),
            Next::End => End.into_js(env),
        }
    }
}

#[napi]
impl NativeCursor {
    #[napi(ts_return_type = "Promise<NativeResult | null>")]
    pub fn next(&self, env: Env) -> napi::Result<JsObject> {
        let rx = self.rx.clone();
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                match rx.lock().await.recv().await {
                    Some(chunk) => Ok(Next::Batch(Box::new(chunk?))),
                    None => Ok(Next::End),
                }
            })
    }

    /// Stops the stream: the portal is closed and the connection free once this resolves.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: Env) -> napi::Result<JsObject> {
        let rx = self.rx.clone();
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        self.settler.spawn(&env, None, async move {
            rx.lock().await.close();
            if let Some(done) = done {
                let _ = done.await;
            }
            Ok(())
        })
    }
}

/// A COPY FROM STDIN in progress.
#[napi]
pub struct NativeCopyIn {
    #[allow(clippy::type_complexity)]
    inner: Arc<tokio::sync::Mutex<Option<(CopyIn, OwnedMutexGuard<Option<Held>>)>>>,
    settler: Settler,
    query: Arc<str>,
}

impl Settled for NativeCopyIn {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        Ok(<NativeCopyIn as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env, self)?)
    }
}

fn copy_ended() -> Failure {
    Failure::client("COPY_ENDED", "the COPY has already ended")
}

/// A row count for JS (`null` when the tag has none).
struct Count(Option<u64>);

impl Settled for Count {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        match self.0 {
            Some(n) => {
                let mut v = std::ptr::null_mut();
                napi::sys::napi_create_double(env, n as f64, &mut v);
                Ok(v)
            }
            None => End.into_js(env),
        }
    }
}

#[napi]
impl NativeCopyIn {
    /// Sends one chunk of data; resolves when the connection has taken it (backpressure).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write(&self, env: Env, data: Buffer) -> napi::Result<JsObject> {
        let data: Vec<u8> = data.to_vec();
        let inner = self.inner.clone();
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                let mut guard = inner.lock().await;
                let (copy, _) = guard.as_mut().ok_or_else(copy_ended)?;
                let sent = copy.send(&data).await;
                if sent.is_err() {
                    guard.take(); // the server refused the data: the COPY is over
                }
                Ok(sent.map_err(hyperion_pool::Error::from)?)
            })
    }

    /// CopyDone: resolves to the number of rows copied.
    #[napi(ts_return_type = "Promise<number | null>")]
    pub fn end(&self, env: Env) -> napi::Result<JsObject> {
        let inner = self.inner.clone();
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                let (copy, conn) = inner.lock().await.take().ok_or_else(copy_ended)?;
                let result = copy.finish().await;
                drop(conn);
                Ok(Count(
                    result.map_err(hyperion_pool::Error::from)?.rows_affected(),
                ))
            })
    }

    /// CopyFail: the server rolls the COPY back; resolves once the connection is usable.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn fail(&self, env: Env, reason: String) -> napi::Result<JsObject> {
        let inner = self.inner.clone();
        self.settler.spawn(&env, None, async move {
            if let Some((copy, conn)) = inner.lock().await.take() {
                // The server's answer is the error CopyFail asked for.
                let _ = copy.fail(&reason).await;
                drop(conn);
            }
            Ok(())
        })
    }
}

struct CopyOutShared {
    /// Pieces of at least [`COPY_OUT_PIECE`] bytes (the last one: what was left), in order.
    queue: Mutex<VecDeque<Vec<u8>>>,
    /// The piece being filled. A text COPY sends a CopyData per row: queuing each, and waking
    /// the reader for each, made a read of a few rows at a time (S3 ran at 0.87x
    /// pg-copy-streams).
    filling: Mutex<Vec<u8>>,
    ready: Notify,
    flow: Arc<Flow>,
    /// The COPY's outcome once it is over: the row count, or the error.
    end: Mutex<Option<Result<Option<u64>, Failure>>>,
    cancel: Mutex<Option<hyperion_wire::CancelToken>>,
    /// The COPY is over on the connection (nothing left to cancel).
    finished: AtomicBool,
}

impl CopyOutShared {
    fn push(&self, data: bytes::Bytes) {
        let full = match self.filling.lock() {
            Ok(mut f) => {
                f.extend_from_slice(&data);
                (f.len() >= COPY_OUT_PIECE)
                    .then(|| std::mem::replace(&mut *f, Vec::with_capacity(COPY_OUT_PIECE)))
            }
            Err(_) => None,
        };
        if let Some(piece) = full {
            self.queue_piece(piece);
        }
    }

    /// The COPY is over: what is left in the piece being filled is queued.
    fn flush(&self) {
        let rest = self
            .filling
            .lock()
            .ok()
            .map(|mut f| std::mem::take(&mut *f));
        if let Some(piece) = rest.filter(|r| !r.is_empty()) {
            self.queue_piece(piece);
        }
    }

    fn queue_piece(&self, piece: Vec<u8>) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(piece);
        }
        self.ready.notify_one();
    }

    /// The next piece, if one is queued.
    fn take(&self) -> Option<Vec<u8>> {
        let piece = self.queue.lock().ok()?.pop_front()?;
        self.flow.consumed(piece.len());
        Some(piece)
    }
}

/// Data read from a COPY TO.
enum CopyRead {
    Data(Vec<u8>),
    End(Option<u64>),
}

impl Settled for CopyRead {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        match self {
            CopyRead::Data(d) => Ok(
                <Buffer as napi::bindgen_prelude::ToNapiValue>::to_napi_value(
                    env,
                    Buffer::from(d),
                )?,
            ),
            // The end: `{ rowCount }`.
            CopyRead::End(n) => {
                let mut obj = std::ptr::null_mut();
                napi::sys::napi_create_object(env, &mut obj);
                let count = Count(n).into_js(env)?;
                let key = c"rowCount";
                napi::sys::napi_set_named_property(env, obj, key.as_ptr(), count);
                Ok(obj)
            }
        }
    }
}

/// A COPY TO STDOUT in progress.
#[napi]
pub struct NativeCopyOut {
    shared: Arc<CopyOutShared>,
    done: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    settler: Settler,
    query: Arc<str>,
}

#[napi]
impl NativeCopyOut {
    /// The next data (a Buffer of one or more CopyData messages' bytes), or at the end
    /// `{ rowCount }`.
    #[napi(ts_return_type = "Promise<Buffer | { rowCount: number | null }>")]
    pub fn read(&self, env: Env) -> napi::Result<JsObject> {
        let shared = self.shared.clone();
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                loop {
                    let notified = shared.ready.notified();
                    if let Some(data) = shared.take() {
                        return Ok(CopyRead::Data(data));
                    }
                    let end = shared.end.lock().ok().and_then(|mut e| e.take());
                    if let Some(end) = end {
                        return Ok(CopyRead::End(end?));
                    }
                    notified.await;
                }
            })
    }

    /// Stops a COPY TO before its end: cancels it on the server and discards the rest;
    /// resolves once the connection is usable again.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: Env) -> napi::Result<JsObject> {
        let shared = self.shared.clone();
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        self.settler.spawn(&env, None, async move {
            shared.flow.close();
            if let Ok(mut q) = shared.queue.lock() {
                q.clear();
            }
            let finished = shared.finished.load(Ordering::Acquire);
            let token = shared.cancel.lock().ok().and_then(|mut t| t.take());
            if let (false, Some(token)) = (finished, token) {
                let _ = token.cancel(hyperion_pool::CANCEL_GRACE).await;
            }
            if let Some(done) = done {
                let _ = done.await;
            }
            Ok(())
        })
    }
}
