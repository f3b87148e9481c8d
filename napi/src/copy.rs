//! COPY on a dedicated connection, as JS drives it: `NativeCopyIn` (FROM STDIN: write, end,
//! fail) and `NativeCopyOut` (TO STDOUT: read, close), and how each is closed when left open
//! (`Closer`s for the connection's `Open` slot). `NativeConnection::copy_in` / `copy_out`
//! (`dedicated.rs`) start them.

use crate::dedicated::{Closer, Done, End, Held, Open};
use crate::errors::Failure;
use crate::settle::{Settled, Settler};
use hyperion_wire::{CopyIn, Flow};
use napi::bindgen_prelude::Buffer;
use napi::{Env, JsObject};
use napi_derive::napi;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedMutexGuard};

/// Bytes of COPY TO data JS may have waiting before the connection stops reading.
const COPY_OUT_WINDOW: usize = 1 << 20;
/// COPY TO data crosses to JS in pieces of this size (the last one smaller).
const COPY_OUT_PIECE: usize = 128 * 1024;

/// The connection a running COPY FROM holds, and its place in the connection's `Open` slot.
pub(crate) struct CopyHold {
    pub(crate) guard: OwnedMutexGuard<Option<Held>>,
    pub(crate) open: Open,
    pub(crate) id: u64,
}

impl CopyHold {
    /// The COPY is over: the connection is free for the next call.
    fn release(self) {
        drop(self.guard);
        self.open.clear(self.id);
    }
}

/// Where a COPY FROM STDIN is.
pub(crate) enum CopyInState {
    /// Asked for; the server has not taken it yet.
    Starting,
    /// Taking data.
    Running(CopyIn, CopyHold),
    /// Ended, failed, or closed.
    Over,
}

pub(crate) type CopyInSlot = Arc<tokio::sync::Mutex<CopyInState>>;

impl CopyInState {
    /// The running COPY, taken (the state is `Over` after).
    pub(crate) fn take(&mut self) -> Option<(CopyIn, CopyHold)> {
        match std::mem::replace(self, CopyInState::Over) {
            CopyInState::Running(copy, hold) => Some((copy, hold)),
            _ => None,
        }
    }
}

/// Ends a COPY FROM STDIN that was left open with CopyFail: nothing is copied.
pub(crate) fn copy_in_closer(inner: &CopyInSlot) -> Closer {
    let inner = inner.clone();
    Arc::new(move || {
        let inner = inner.clone();
        Box::pin(async move {
            let running = inner.lock().await.take();
            if let Some((copy, hold)) = running {
                let _ = copy
                    .fail("the COPY was left unfinished: the connection was released")
                    .await;
                hold.release();
            }
        })
    })
}

/// A COPY FROM STDIN in progress.
#[napi]
pub struct NativeCopyIn {
    pub(crate) inner: CopyInSlot,
    pub(crate) settler: Settler,
    pub(crate) query: Arc<str>,
}

impl Settled for NativeCopyIn {
    unsafe fn into_js(self, env: napi::sys::napi_env) -> Result<napi::sys::napi_value, Failure> {
        Ok(<NativeCopyIn as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env, self)?)
    }
}

pub(crate) fn copy_ended() -> Failure {
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
                let mut state = inner.lock().await;
                let CopyInState::Running(copy, ..) = &mut *state else {
                    return Err(copy_ended());
                };
                let sent = copy.send(&data).await;
                if sent.is_err() {
                    // The server refused the data: the COPY is over.
                    if let Some((_, hold)) = state.take() {
                        hold.release();
                    }
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
                let (copy, hold) = inner.lock().await.take().ok_or_else(copy_ended)?;
                let result = copy.finish().await;
                hold.release();
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
            let running = inner.lock().await.take();
            if let Some((copy, hold)) = running {
                // The server's answer is the error CopyFail asked for.
                let _ = copy.fail(&reason).await;
                hold.release();
            }
            Ok(())
        })
    }
}

pub(crate) struct CopyOutShared {
    /// Pieces of at least [`COPY_OUT_PIECE`] bytes (the last one: what was left), in order.
    pub(crate) queue: Mutex<VecDeque<Vec<u8>>>,
    /// The piece being filled. A text COPY sends a CopyData per row: queuing each, and waking
    /// the reader for each, made a read of a few rows at a time (S3 ran at 0.87x
    /// pg-copy-streams).
    pub(crate) filling: Mutex<Vec<u8>>,
    pub(crate) ready: Notify,
    pub(crate) flow: Arc<Flow>,
    /// The COPY's outcome once it is over: the row count, or the error.
    pub(crate) end: Mutex<Option<Result<Option<u64>, Failure>>>,
    /// The reader left before the end: the job stops the COPY.
    pub(crate) stop: Notify,
}

impl CopyOutShared {
    pub(crate) fn new() -> Arc<CopyOutShared> {
        Arc::new(CopyOutShared {
            queue: Mutex::new(VecDeque::new()),
            filling: Mutex::new(Vec::new()),
            ready: Notify::new(),
            flow: Flow::new(COPY_OUT_WINDOW),
            end: Mutex::new(None),
            stop: Notify::new(),
        })
    }

    pub(crate) fn push(&self, data: bytes::Bytes) {
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
    pub(crate) fn flush(&self) {
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

/// Stops a COPY TO whose reader left: what is queued is dropped, the rest is not kept, and
/// the job cancels the COPY (or, inside a transaction, reads it to its end); resolves once
/// the connection is usable again.
async fn close_copy_out(shared: Arc<CopyOutShared>, done: Done) {
    let done = done.lock().ok().and_then(|mut d| d.take());
    shared.flow.close();
    if let Ok(mut q) = shared.queue.lock() {
        q.clear();
    }
    shared.stop.notify_one();
    if let Some(done) = done {
        let _ = done.await;
    }
}

pub(crate) fn copy_out_closer(shared: &Arc<CopyOutShared>, done: &Done) -> Closer {
    let (shared, done) = (shared.clone(), done.clone());
    Arc::new(move || Box::pin(close_copy_out(shared.clone(), done.clone())))
}

/// A COPY TO STDOUT in progress.
#[napi]
pub struct NativeCopyOut {
    pub(crate) shared: Arc<CopyOutShared>,
    pub(crate) done: Done,
    pub(crate) settler: Settler,
    pub(crate) query: Arc<str>,
}

/// A COPY TO whose reader was dropped without `close()` (an iterator left to the garbage
/// collector) is stopped all the same: otherwise it would hold its connection for good once
/// the data waiting for the reader filled the window.
impl Drop for NativeCopyOut {
    fn drop(&mut self) {
        let (shared, done) = (self.shared.clone(), self.done.clone());
        let over = shared.end.lock().map_or(true, |e| e.is_some());
        if !over {
            crate::spawn_detached(close_copy_out(shared, done));
        }
    }
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
                    // Looked at before the queue: the job queues its last piece and then
                    // publishes the end, so an end seen here means the queue is complete.
                    // (Looked at after, an empty queue and then the end could both be seen
                    // with the last piece queued in between, and that piece lost.)
                    let over = shared.end.lock().map_or(true, |e| e.is_some());
                    if let Some(data) = shared.take() {
                        return Ok(CopyRead::Data(data));
                    }
                    if over {
                        let end = shared.end.lock().ok().and_then(|mut e| e.take());
                        return Ok(CopyRead::End(end.unwrap_or(Ok(None))?));
                    }
                    notified.await;
                }
            })
    }

    /// Stops a COPY TO before its end (see `close_copy_out`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: Env) -> napi::Result<JsObject> {
        let (shared, done) = (self.shared.clone(), self.done.clone());
        self.settler.spawn(&env, None, async move {
            close_copy_out(shared, done).await;
            Ok(())
        })
    }
}
