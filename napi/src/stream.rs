//! A large result reaches JS in batches while it is still arriving.
//!
//! The PostgreSQL backend takes about as long to produce a large result as the client takes
//! to turn it into objects, so doing the two one after the other wastes half the time. The
//! protocol loop hands the rows over in batches of [`BATCH_BYTES`] (`RowStream`); a task
//! decodes each batch into columns off the JS thread ([`rows::decode`]) as it comes, and JS
//! builds rows from one batch while the next is decoded and the server produces the rest.
//! A result smaller than one batch crosses once, whole, as before.
//!
//! The pool may retry a read after some of its rows were delivered (the connection failed,
//! or a read-write pool's node turned out fenced): every chunk says which attempt it belongs
//! to, and `client.js` drops the rows of an earlier attempt when a later one starts. Only the
//! chunk marked `last` completes the result; an error rejects the next `next()`.

use crate::errors::Failure;
use crate::rows::{decode, Chunk, Meta};
use crate::settle::{Settled, Settler};
use hyperion_codec::Int8;
use hyperion_pool::{RowSink, Streaming, TypeCache};
use hyperion_wire::QueryResult;
use napi::{Env, JsObject, JsUnknown, NapiValue};
use napi_derive::napi;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Rows are handed over once this many bytes of them have arrived. Large enough that the
/// cost of a crossing (a promise, a task wake-up) is lost in the batch, small enough that
/// the work left after the last row arrives is short.
pub const BATCH_BYTES: usize = 256 * 1024;

enum Event {
    Rows(QueryResult),
    Restart(u32),
}

/// What the pool's side (the protocol loop) and the query's side share: one allocation per
/// query, and nothing more until a batch is actually handed over (most results are small).
///
/// A batch wakes the task that awaits the query: the pool wakes the one that started the
/// attempt (`Streaming::row_stream`), and a [`Feed`] moved to another task since
/// (`forward`) leaves its own waker here.
struct Shared {
    state: Mutex<State>,
    /// `state.events` is not empty: most results never queue one, and are not made to take
    /// the mutex to find that out.
    queued: AtomicBool,
    /// The host the current attempt runs on (configuration index; `usize::MAX`: not known).
    host: AtomicUsize,
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// The reader's, when it reads from another task than the attempt's (`Feed::register`).
    reader: Option<Waker>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            state: Mutex::default(),
            queued: AtomicBool::new(false),
            host: AtomicUsize::new(usize::MAX),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, event: Event) {
        let reader = {
            let mut s = self.state();
            s.events.push_back(event);
            self.queued.store(true, Ordering::Release);
            s.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
    }

    fn pop(&self) -> Option<Event> {
        if !self.queued.load(Ordering::Acquire) {
            return None;
        }
        let mut s = self.state();
        let event = s.events.pop_front();
        if s.events.is_empty() {
            self.queued.store(false, Ordering::Relaxed);
        }
        event
    }

    /// Leaves `waker` to be woken by the next event; false (and nothing left) if one is
    /// queued already.
    fn register(&self, waker: &Waker) -> bool {
        let mut s = self.state();
        if !s.events.is_empty() {
            return false;
        }
        if !s.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.reader = Some(waker.clone());
        }
        true
    }
}

impl RowSink for Shared {
    fn rows(&self, batch: QueryResult) {
        self.push(Event::Rows(batch));
    }

    fn restart(&self, attempt: u32) {
        self.push(Event::Restart(attempt));
    }

    fn host(&self, index: usize) {
        self.host.store(index, Ordering::Relaxed);
    }
}

pub type QueryFuture = Pin<Box<dyn Future<Output = Result<QueryResult, Failure>> + Send>>;

/// What the query produced next.
enum Piece {
    Batch(u32, QueryResult),
    /// The query finished, and every batch before it was taken.
    Done(u32, Result<QueryResult, Failure>),
}

/// A running query and the batches it has produced so far.
struct Feed {
    query: Option<QueryFuture>,
    finished: Option<Result<QueryResult, Failure>>,
    shared: Arc<Shared>,
    attempt: u32,
    /// Read from another task than the one that started the query (`forward`): batches of
    /// an attempt that started before must wake this one through `shared`.
    register: bool,
}

impl Feed {
    /// The host the last attempt ran on, when tracing.
    fn host(&self, trace: bool) -> Option<u32> {
        let h = self.shared.host.load(Ordering::Relaxed);
        (trace && h != usize::MAX).then(|| u32::try_from(h).unwrap_or(u32::MAX))
    }

    async fn next(&mut self) -> Piece {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Batches queued before the result are taken first; a batch that arrives while the
    /// query is pending wakes this task (the pool wakes the attempt's task, `register` this
    /// one).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Piece> {
        loop {
            if let Some(event) = self.shared.pop() {
                match event {
                    Event::Rows(batch) => return Poll::Ready(Piece::Batch(self.attempt, batch)),
                    Event::Restart(attempt) => {
                        self.attempt = attempt;
                        continue;
                    }
                }
            }
            let Some(query) = self.query.as_mut() else {
                let result = self.finished.take().unwrap_or_else(|| {
                    Err(napi::Error::from_reason("the result was already taken").into())
                });
                return Poll::Ready(Piece::Done(self.attempt, result));
            };
            match query.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    // Batches sent before the result may still be queued.
                    self.query = None;
                    self.finished = Some(result);
                }
                Poll::Pending if self.register && !self.shared.register(cx.waker()) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// How a query's result goes to JS.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form {
    /// Always in columns, never as row objects made here (rows as arrays are built by
    /// `rows.js` alone).
    pub columns: bool,
    /// The result says which host ran it (for `diagnostics_channel` subscribers).
    pub trace: bool,
    /// The promise resolves to the finished rows (`rows.js`'s `rowsOf` runs on the first
    /// chunk here): a plain query then needs no async JS around it.
    pub finish: bool,
}

impl Form {
    /// A plain query's: the finished rows, nothing else asked for.
    pub const ROWS: Form = Form {
        columns: false,
        trace: false,
        finish: true,
    };
}

/// Runs `start(streaming)` and resolves to its first chunk: the whole result when it fits in
/// one batch, else the first batch with a `rest` to read the others from (with
/// `form.finish`, to the rows `rowsOf` makes of that chunk). Its errors, and those of the
/// later chunks, carry `query`.
pub fn spawn(
    env: &Env,
    settler: &Settler,
    (types, int8): (Arc<TypeCache>, Int8),
    query: Arc<str>,
    form: Form,
    start: impl FnOnce(Streaming) -> QueryFuture,
) -> napi::Result<JsObject> {
    let Form {
        columns,
        trace,
        finish,
    } = form;
    let shared = Arc::new(Shared::new());
    let streaming = Streaming {
        sink: shared.clone(),
        batch_bytes: BATCH_BYTES,
    };
    let mut feed = Feed {
        query: Some(start(streaming)),
        finished: None,
        shared,
        attempt: 1,
        register: false,
    };
    let rest_settler = settler.clone();
    settler.spawn(env, Some(query.clone()), async move {
        let first = match feed.next().await {
            // The common case: the result fitted in one batch.
            Piece::Done(attempt, result) => {
                let mut result = result?;
                let mut meta = Meta::take(&mut result);
                meta.traced = trace;
                meta.host = feed.host(trace);
                return Ok(Chunk {
                    body: decode(result, &types.load(), int8, columns)?,
                    attempt,
                    last: true,
                    rest: None,
                    meta: Some(meta),
                    external_strings: true,
                    finish,
                });
            }
            batch => batch,
        };
        let (out, mut rest) = unbounded_channel();
        tokio::spawn(forward(feed, first, types, int8, trace, out));
        let mut chunk = rest
            .recv()
            .await
            .unwrap_or_else(|| Err(napi::Error::from_reason("the query task ended").into()))?;
        chunk.finish = finish;
        if !chunk.last {
            chunk.rest = Some(NativeRows {
                rx: Arc::new(tokio::sync::Mutex::new(rest)),
                settler: rest_settler,
                query,
            });
        }
        Ok(chunk)
    })
}

/// Decodes the batches as they arrive, for the first chunk and then `NativeRows::next`.
async fn forward(
    mut feed: Feed,
    first: Piece,
    types: Arc<TypeCache>,
    int8: Int8,
    trace: bool,
    out: UnboundedSender<Result<Chunk, Failure>>,
) {
    // A batch that cannot be decoded fails the query, but only once the query is over: the
    // statement has run to the end (a write may have committed) and a retry may replace it.
    let mut failed: Option<(u32, Failure)> = None;
    let mut piece = Some(first);
    feed.register = true;
    loop {
        let next = match piece.take() {
            Some(p) => p,
            None => feed.next().await,
        };
        let (attempt, result, last) = match next {
            Piece::Batch(attempt, batch) => (attempt, Ok(batch), false),
            Piece::Done(attempt, result) => (attempt, result, true),
        };
        if failed.as_ref().is_some_and(|(a, _)| *a != attempt) {
            failed = None; // a retry started over
        }
        let chunk = match (result, failed.take()) {
            (Err(e), _) => Err(e),
            (Ok(_), Some((_, e))) if last => Err(e),
            (Ok(_), Some(f)) => {
                failed = Some(f);
                continue;
            }
            (Ok(mut rows), None) => {
                let meta = last.then(|| {
                    let mut meta = Meta::take(&mut rows);
                    meta.traced = trace;
                    meta.host = feed.host(trace);
                    meta
                });
                match decode(rows, &types.load(), int8, true) {
                    Ok(body) => Ok(Chunk {
                        body,
                        attempt,
                        last,
                        rest: None,
                        meta,
                        external_strings: true,
                        finish: false,
                    }),
                    Err(e) if !last => {
                        failed = Some((attempt, e));
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let end = last || chunk.is_err();
        // The caller may have stopped listening; the query still runs to its end above.
        let _ = out.send(chunk);
        if end {
            return;
        }
    }
}

/// The chunks of a streamed result after the first (`rest` on the first chunk).
#[napi]
pub struct NativeRows {
    rx: Arc<tokio::sync::Mutex<UnboundedReceiver<Result<Chunk, Failure>>>>,
    settler: Settler,
    query: Arc<str>,
}

#[napi]
impl NativeRows {
    /// The next chunk if it is already decoded, else `null`: JS takes the chunks that
    /// queued up while it was busy without a round trip through the I/O thread and the
    /// event loop for each (`next` waits for one that has not arrived).
    #[napi(ts_return_type = "NativeResult | null")]
    pub fn take(&self, env: Env) -> napi::Result<JsUnknown> {
        let chunk = match self.rx.try_lock() {
            Err(_) => None, // a `next` is waiting on the channel
            Ok(mut rx) => match rx.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => None,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => Some(Err(
                    napi::Error::from_reason("the result is complete").into(),
                )),
            },
        };
        let Some(chunk) = chunk else {
            return Ok(env.get_null()?.into_unknown());
        };
        // SAFETY: a napi method runs on the JS thread with its env.
        match chunk.and_then(|c| unsafe { c.into_js(env.raw()) }) {
            Ok(value) => Ok(unsafe { JsUnknown::from_raw_unchecked(env.raw(), value) }),
            Err(f) => Err(f.with_query(&self.query).throw(&env)),
        }
    }

    /// The next chunk; the one marked `last` completes the result.
    #[napi(ts_return_type = "Promise<NativeResult>")]
    pub fn next(&self, env: Env) -> napi::Result<JsObject> {
        let rx = self.rx.clone();
        self.settler
            .spawn(&env, Some(self.query.clone()), async move {
                match rx.lock().await.recv().await {
                    Some(chunk) => chunk,
                    None => Err(napi::Error::from_reason("the result is complete").into()),
                }
            })
    }
}
