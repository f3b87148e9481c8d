//! `NativeConnection`: a connection held exclusively, by a transaction (`pool.begin()`) or a
//! checkout (`pool.connect()`), and what runs on one: statements, scripts, row streams
//! (`NativeCursor`) and COPY (started here; `NativeCopyIn` and `NativeCopyOut` are in
//! `copy.rs`).
//!
//! Every operation locks the connection for its whole length (a stream until its last batch
//! or its close, a COPY until its end), so two calls made at once from JS run one after the
//! other and can never interleave their messages on the socket.
//!
//! A stream or a COPY stays open between calls, so a call made while one is open would wait
//! for it, and the loop that reads the stream would wait for the call: that call fails at
//! once with `CONNECTION_BUSY` instead. COMMIT, ROLLBACK and release close what is open
//! first (the `Open` slot), so they never wait on a loop that was left without closing.

use crate::copy::{
    copy_ended, copy_in_closer, copy_out_closer, CopyHold, CopyInSlot, CopyInState, CopyOutShared,
    NativeCopyIn, NativeCopyOut,
};
use crate::errors::Failure;
use crate::params::JsParams;
use crate::pool::{cancellation, read_params, read_params_with, AbortHandle};
use crate::rows::{decode, Chunk, Meta};
use crate::settle::{Settled, Settler};
use crate::stream;
use hyperion_codec::Int8;
use hyperion_pool::cancel::Cancellation;
use hyperion_pool::{Cursor, Dedicated, Session, Transaction, TypeCache};
use hyperion_wire::QueryResult;
use napi::bindgen_prelude::Array;
use napi::{Env, JsObject, JsString, JsUnknown};
use napi_derive::napi;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Notify};

/// What a `NativeConnection` holds.
pub enum Held {
    Tx(Transaction),
    Session(Session),
}

impl Held {
    fn process_id(&self) -> Option<i32> {
        match self {
            Held::Tx(t) => t.process_id(),
            Held::Session(s) => Some(s.conn.process_id()),
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Held>>>;

/// Closes the stream or COPY open on a connection.
pub(crate) type Closer = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What is open on a connection between calls (a stream or a COPY), by a number of its own.
#[derive(Clone, Default)]
pub(crate) struct Open {
    slot: Arc<Mutex<Option<(u64, Closer)>>>,
    next: Arc<AtomicU64>,
}

impl Open {
    /// Fails when something is open already.
    fn check(&self) -> Result<(), Failure> {
        match self.slot.lock() {
            Ok(s) if s.is_some() => Err(Failure::client(
                "CONNECTION_BUSY",
                "a stream or COPY is open on this connection: read it to its end or leave its loop first",
            )),
            _ => Ok(()),
        }
    }

    /// Records what is now open; the number to `clear` it with.
    fn set(&self, close: Closer) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.slot.lock() {
            *s = Some((id, close));
        }
        id
    }

    /// `id` is over.
    pub(crate) fn clear(&self, id: u64) {
        if let Ok(mut s) = self.slot.lock() {
            if s.as_ref().is_some_and(|(open, _)| *open == id) {
                *s = None;
            }
        }
    }

    /// Closes whatever is open, and waits until it is.
    async fn close(&self) {
        let close = self
            .slot
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|(_, c)| c.clone()));
        if let Some(close) = close {
            close().await;
        }
    }
}

/// A dedicated connection. Dropping it (garbage collection) without COMMIT, ROLLBACK or
/// release gives its connection back; one left inside a transaction is destroyed.
#[napi]
pub struct NativeConnection {
    held: Slot,
    open: Open,
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
            open: Open::default(),
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

/// The connection under `guard`, in its transaction if it holds one (BEGIN sent, see
/// `Transaction::begun`), or the error for one already given back.
async fn ready<'a>(
    guard: &'a mut Option<Held>,
    tx: bool,
    cancel: &Cancellation,
) -> Result<&'a Dedicated, Failure> {
    match guard.as_mut() {
        Some(Held::Tx(t)) => Ok(t.begun(cancel).await?),
        Some(Held::Session(s)) => Ok(&s.conn),
        None => Err(finished(tx)),
    }
}

/// Rows a stream reads per batch unless told otherwise.
const DEFAULT_BATCH_ROWS: u32 = 1000;

#[napi]
impl NativeConnection {
    #[napi(ts_return_type = "Promise<NativeResult>")]
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        env: Env,
        sql: String,
        params: Option<Array>,
        timeout_ms: Option<f64>,
        abort: Option<&AbortHandle>,
        columns: Option<bool>,
        prepare: Option<bool>,
        trace: Option<bool>,
    ) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        let cancel = cancellation(timeout_ms, abort).map_err(|f| f.with_query(&sql).throw(&env))?;
        let form = stream::Form {
            columns: columns.unwrap_or(false),
            trace: trace.unwrap_or(false),
            finish: false,
        };
        self.spawn_query(env, sql, params, cancel, prepare, form)
    }

    /// A statement with every option at its default, resolving to the finished rows
    /// (`dedicated.js` returns this promise as it is), its first parameters also as
    /// arguments, as for [`crate::pool::query_rows`].
    #[napi(ts_return_type = "Promise<Record<string, unknown>[]>")]
    #[allow(clippy::too_many_arguments)]
    pub fn query_rows(
        &self,
        env: Env,
        sql: JsString,
        params: Option<Array>,
        p0: JsUnknown,
        p1: JsUnknown,
        p2: JsUnknown,
        p3: JsUnknown,
    ) -> napi::Result<JsObject> {
        let sql = crate::params::read_sql(&env, &sql)?;
        self.open
            .check()
            .map_err(|f| f.with_query(&sql).throw(&env))?;
        let params = read_params_with(&env, &sql, params, Some([p0, p1, p2, p3]), &self.types)?;
        self.spawn_read(
            env,
            sql,
            params,
            Cancellation::default(),
            None,
            stream::Form::ROWS,
        )
    }

    fn spawn_query(
        &self,
        env: Env,
        sql: Arc<str>,
        params: Option<Array>,
        cancel: Cancellation,
        prepare: Option<bool>,
        form: stream::Form,
    ) -> napi::Result<JsObject> {
        self.open
            .check()
            .map_err(|f| f.with_query(&sql).throw(&env))?;
        let params = read_params(&env, &sql, params, &self.types)?;
        self.spawn_read(env, sql, params, cancel, prepare, form)
    }

    /// Spawns a statement whose parameters are read.
    fn spawn_read(
        &self,
        env: Env,
        sql: Arc<str>,
        params: JsParams,
        cancel: Cancellation,
        prepare: Option<bool>,
        form: stream::Form,
    ) -> napi::Result<JsObject> {
        let held = self.held.clone();
        let tx = self.tx;
        stream::spawn(
            &env,
            &self.settler,
            (self.types.clone(), self.int8),
            sql.clone(),
            form,
            move |streaming| {
                Box::pin(async move {
                    // The timeout and the signal count from the call: waiting for the
                    // connection's turn (another statement) is included.
                    let mut guard = cancel.before_sending(held.lock()).await?;
                    let streaming = Some(&streaming);
                    Ok(match guard.as_mut() {
                        Some(Held::Tx(t)) => {
                            t.query(&sql, &params, streaming, &cancel, prepare).await?
                        }
                        Some(Held::Session(s)) => {
                            s.conn
                                .query(&sql, &params, streaming, &cancel, prepare)
                                .await?
                        }
                        None => return Err(finished(tx)),
                    })
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
        self.open
            .check()
            .map_err(|f| f.with_query(&sql).throw(&env))?;
        let cancel = cancellation(timeout_ms, abort).map_err(|f| f.with_query(&sql).throw(&env))?;
        let held = self.held.clone();
        let tx = self.tx;
        let types = self.types.clone();
        let int8 = self.int8;
        self.settler.spawn(&env, Some(sql.clone()), async move {
            let mut guard = cancel.before_sending(held.lock()).await?;
            let results = ready(&mut guard, tx, &cancel)
                .await?
                .script(&sql, &cancel)
                .await?;
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
        params: Option<Array>,
        batch_rows: Option<u32>,
        columns: Option<bool>,
        prepare: Option<bool>,
    ) -> napi::Result<NativeCursor> {
        let sql: Arc<str> = sql.into();
        self.open
            .check()
            .map_err(|f| f.with_query(&sql).throw(&env))?;
        let params = read_params(&env, &sql, params, &self.types)?;
        let (tx, rx) = mpsc::channel(1);
        let (done_tx, done) = oneshot::channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let done = Arc::new(Mutex::new(Some(done)));
        let abort = Arc::new(Notify::new());
        let id = self.open.set(stream_closer(&rx, &done));
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
            abort: abort.clone(),
        };
        let open = self.open.clone();
        napi::bindgen_prelude::spawn(async move {
            let late = job.run(&tx).await;
            // Over before JS can see the end (the channel closing), so the next call on the
            // connection does not find it busy.
            open.clear(id);
            drop(tx);
            let _ = done_tx.send(late);
        });
        Ok(NativeCursor {
            rx,
            done,
            abort,
            settler: self.settler.clone(),
            query: sql,
        })
    }

    /// Starts a `COPY ... FROM STDIN`; resolves once the server takes data.
    #[napi(ts_return_type = "Promise<NativeCopyIn>")]
    pub fn copy_in(&self, env: Env, sql: String) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        self.check_copy(&env, &sql)?;
        let held = self.held.clone();
        let tx = self.tx;
        let settler = self.settler.clone();
        let inner: CopyInSlot = Arc::new(tokio::sync::Mutex::new(CopyInState::Starting));
        let id = self.open.set(copy_in_closer(&inner));
        let open = self.open.clone();
        self.settler.spawn(&env, Some(sql.clone()), async move {
            let mut guard = held.lock_owned().await;
            let started = match ready(&mut guard, tx, &Cancellation::default()).await {
                Ok(c) => c.copy_in(&sql).await.map_err(Failure::from),
                Err(f) => Err(f),
            };
            let mut state = inner.lock().await;
            match (started, &*state) {
                (Ok(copy), CopyInState::Starting) => {
                    *state = CopyInState::Running(copy, CopyHold { guard, open, id });
                }
                (Ok(copy), _) => {
                    // Closed while it started (COMMIT, ROLLBACK or release came first).
                    let _ = copy.fail("the connection was released").await;
                    open.clear(id);
                    return Err(copy_ended());
                }
                (Err(f), _) => {
                    *state = CopyInState::Over;
                    open.clear(id);
                    return Err(f);
                }
            }
            drop(state);
            Ok(NativeCopyIn {
                inner,
                settler,
                query: sql,
            })
        })
    }

    /// Starts a `COPY ... TO STDOUT`; `read()` its data.
    #[napi]
    pub fn copy_out(&self, env: Env, sql: String) -> napi::Result<NativeCopyOut> {
        let sql: Arc<str> = sql.into();
        self.check_copy(&env, &sql)?;
        let shared = CopyOutShared::new();
        let (done_tx, done) = oneshot::channel();
        let done: Done = Arc::new(Mutex::new(Some(done)));
        let id = self.open.set(copy_out_closer(&shared, &done));
        let open = self.open.clone();
        let held = self.held.clone();
        let tx = self.tx;
        let job = shared.clone();
        let query = sql.clone();
        napi::bindgen_prelude::spawn(async move {
            let mut guard = held.lock().await;
            let result = match ready(&mut guard, tx, &Cancellation::default()).await {
                // Closed before it started: nothing to run.
                Ok(_) if job.flow.is_closed() => Ok(QueryResult::default()),
                Ok(c) => {
                    let sink = job.clone();
                    let copy = c.copy_out(&query, job.flow.clone(), move |data| sink.push(data));
                    tokio::pin!(copy);
                    let result = tokio::select! {
                        biased;
                        r = &mut copy => r,
                        () = job.stop.notified() => {
                            // The reader left. Outside a transaction block the COPY is
                            // cancelled (the connection is destroyed if the cancel cannot be
                            // delivered); inside one, its rest is read and dropped, since a
                            // cancel would abort the caller's transaction.
                            if !c.in_transaction() {
                                c.cancel_running().await;
                            }
                            copy.await
                        }
                    };
                    result.map_err(Failure::from)
                }
                Err(f) => Err(f),
            };
            job.flush();
            drop(guard);
            // Free before the end is published, so that a statement JS runs once it has read
            // the end does not find the connection busy (as a stream's job does).
            open.clear(id);
            if let Ok(mut end) = job.end.lock() {
                *end = Some(result.map(|r| r.rows_affected()));
            }
            job.ready.notify_one();
            let _ = done_tx.send(());
        });
        Ok(NativeCopyOut {
            shared,
            done,
            settler: self.settler.clone(),
            query: sql,
        })
    }

    /// Refuses, before anything is sent, a COPY the simple Query would run as something else
    /// (another statement, or more than one), and a COPY while another is open.
    fn check_copy(&self, env: &Env, sql: &Arc<str>) -> napi::Result<()> {
        crate::copy_text(sql).map_err(|f| f.with_query(sql).throw(env))?;
        self.open.check().map_err(|f| f.with_query(sql).throw(env))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn commit(&self, env: Env) -> napi::Result<JsObject> {
        let held = self.held.clone();
        let tx = self.tx;
        let open = self.open.clone();
        self.settler
            .spawn(&env, Some(Arc::from("COMMIT")), async move {
                open.close().await;
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
        let open = self.open.clone();
        self.settler
            .spawn(&env, Some(Arc::from("ROLLBACK")), async move {
                open.close().await;
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
        let open = self.open.clone();
        self.settler.spawn(&env, None, async move {
            open.close().await;
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
            .and_then(Held::process_id)
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
        finish: false,
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
    abort: Arc<Notify>,
}

impl StreamJob {
    /// Opens the stream and sends its batches, one read ahead of JS (the channel holds
    /// one); ends when the rows do, on an error, or when JS closes the receiver.
    async fn run(self, tx: &mpsc::Sender<Result<Chunk, Failure>>) -> Option<Failure> {
        let mut guard = self.held.lock().await;
        let c = match ready(&mut guard, self.tx, &Cancellation::default()).await {
            Ok(c) => c,
            Err(f) => {
                let _ = tx.send(Err(f)).await;
                return None;
            }
        };
        // Cancelling is for a stream in a transaction of its own (see `NativeCursor::abort`).
        let own_tx = !c.in_transaction();
        let mut aborted = false;
        let start = c.stream(&self.sql, &self.params, self.batch, self.prepare);
        tokio::pin!(start);
        let started = tokio::select! {
            biased;
            s = &mut start => s,
            () = self.abort.notified(), if own_tx => {
                aborted = true;
                c.cancel_running().await;
                start.await
            }
        };
        let mut cursor: Cursor = match started {
            Ok(cursor) => cursor,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return None;
            }
        };
        loop {
            let next = cursor.next(c);
            tokio::pin!(next);
            let batch = tokio::select! {
                biased;
                b = &mut next => b,
                () = self.abort.notified(), if own_tx && !aborted => {
                    aborted = true;
                    c.cancel_running().await;
                    next.await
                }
            };
            let chunk = match batch {
                Ok(None) => break,
                Ok(Some(batch)) => whole(batch, &self.types.load(), self.int8, self.columns),
                Err(e) => Err(e.into()),
            };
            let failed = chunk.is_err();
            match tx.send(chunk).await {
                Ok(()) if !failed => {}
                Ok(()) => break, // it failed: JS has the error
                // JS left, and this was a failure (the stream's own COMMIT, run with its last
                // batch, failed or is in doubt): its `close()` reports it.
                Err(mpsc::error::SendError(Err(f))) => return Some(f),
                Err(_) => break, // JS left
            }
        }
        if let Err(e) = cursor.close(c).await {
            // Closing failed (the connection broke, or the stream's own COMMIT failed or is
            // in doubt): JS may still be waiting for a batch; if it left, its `close()`
            // reports it.
            if let Err(mpsc::error::SendError(Err(f))) = tx.send(Err(e.into())).await {
                return Some(f);
            }
        }
        None
    }
}

type Batches = Arc<tokio::sync::Mutex<mpsc::Receiver<Result<Chunk, Failure>>>>;
pub(crate) type Done = Arc<Mutex<Option<oneshot::Receiver<()>>>>;
/// A stream job's end, with what closing it failed with when JS had already left.
type StreamDone = Arc<Mutex<Option<oneshot::Receiver<Option<Failure>>>>>;

/// Closes a stream: no more batches are taken, and the job closes the portal.
fn stream_closer(rx: &Batches, done: &StreamDone) -> Closer {
    let (rx, done) = (rx.clone(), done.clone());
    Arc::new(move || {
        let (rx, done) = (rx.clone(), done.clone());
        Box::pin(async move {
            close_stream(rx, done).await;
        })
    })
}

/// Closes a stream and waits for its job; what closing it failed with (the stream's own
/// COMMIT), if anything.
async fn close_stream(rx: Batches, done: StreamDone) -> Option<Failure> {
    // Taken before waiting for the receiver, which a `next()` may hold until its batch comes.
    let done = done.lock().ok().and_then(|mut d| d.take());
    // A failure already waiting in the channel, unread (the COMMIT that ran with the last
    // batch, which the job fetched ahead of JS), is what closing reports too.
    let mut unread = None;
    {
        let mut rx = rx.lock().await;
        rx.close();
        while let Ok(item) = rx.try_recv() {
            if let Err(f) = item {
                unread.get_or_insert(f);
            }
        }
    }
    let late = match done {
        Some(done) => done.await.ok().flatten(),
        None => None,
    };
    late.or(unread)
}

/// A row stream: `next()` resolves to the next batch (a result like a query's) or null.
#[napi]
pub struct NativeCursor {
    rx: Batches,
    done: StreamDone,
    /// Stops the batch being read (`abort()`).
    abort: Arc<Notify>,
    settler: Settler,
    query: Arc<str>,
}

/// A stream whose iterator was dropped without `return()` (left to the garbage collector
/// after its first rows) is closed all the same, as a COPY TO's is: otherwise its job, one
/// batch ahead, would wait for room in the channel for good, holding the connection, and the
/// server's session would stay inside the stream's transaction.
impl Drop for NativeCursor {
    fn drop(&mut self) {
        let open = self.done.lock().is_ok_and(|d| d.is_some());
        if open {
            let (rx, done) = (self.rx.clone(), self.done.clone());
            crate::spawn_detached(async move {
                close_stream(rx, done).await;
            });
        }
    }
}

/// `null` for JS.
pub(crate) struct End;

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
        let (rx, done) = (self.rx.clone(), self.done.clone());
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                match close_stream(rx, done).await {
                    Some(f) => Err(f),
                    None => Ok(()),
                }
            })
    }

    /// The caller's signal fired: a batch being read in the stream's own transaction is
    /// cancelled on the server rather than waited for (inside the caller's transaction it is
    /// waited for: a cancel would abort that transaction). `close()` still follows.
    #[napi]
    pub fn abort(&self) {
        self.abort.notify_one();
    }
}
