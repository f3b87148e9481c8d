//! COPY FROM STDIN and COPY TO STDOUT on a connection nobody else is using.
//!
//! Both run as a simple Query whose request carries a [`CopyHook`]:
//! - **in**: at CopyInResponse the loop tells the caller ([`CopyIn`]), which then sends the
//!   data as CopyData messages through the request channel (so a slow socket holds the
//!   caller back: the channel is bounded and the loop stops taking from it above its write
//!   high-water mark), and ends with CopyDone, or CopyFail to abandon it. The server answers
//!   CommandComplete (the row count) or an ErrorResponse, then ReadyForQuery.
//! - **out**: every CopyData's bytes go to the hook's sink, counted in a [`Flow`]; while the
//!   consumer holds more than the flow's limit, the loop stops reading the socket, so the
//!   server is held back by TCP flow control and memory stays bounded.
//!
//! The connection must be exclusive for the duration: while the server is in copy-in mode
//! it swallows every message but CopyData, CopyDone, CopyFail, Flush and Sync, so nothing
//! else may be pipelined behind the COPY (the pool's dedicated connections guarantee it).

use crate::client::{Client, Request};
use crate::error::Error;
use crate::frontend;
use crate::response::Response;
use crate::result::QueryResult;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use tokio::sync::oneshot;

/// Bytes the consumer of a COPY TO holds, and the limit past which the loop stops reading.
#[derive(Debug)]
pub struct Flow {
    buffered: AtomicUsize,
    limit: usize,
    /// The consumer is gone: nothing holds the loop back any more (the rest is discarded).
    closed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Flow {
    pub fn new(limit: usize) -> Arc<Flow> {
        Arc::new(Flow {
            buffered: AtomicUsize::new(0),
            limit: limit.max(1),
            closed: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    /// The consumer took `n` bytes: the loop may read again once below the limit.
    pub fn consumed(&self, n: usize) {
        let before = self.buffered.fetch_sub(n, Ordering::AcqRel);
        if before.saturating_sub(n) < self.limit {
            self.wake();
        }
    }

    /// The consumer is gone: the loop reads (and the sink discards) to the end.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn wake(&self) {
        if let Some(w) = self.waker.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
    }

    pub(crate) fn added(&self, n: usize) {
        self.buffered.fetch_add(n, Ordering::AcqRel);
    }

    /// Whether the loop must stop reading; registers the loop's waker when it must.
    pub(crate) fn full(&self, cx: &Context<'_>) -> bool {
        if self.is_closed() || self.buffered.load(Ordering::Acquire) < self.limit {
            return false;
        }
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(cx.waker().clone());
        }
        // The consumer may have drained between the check and the registration.
        !self.is_closed() && self.buffered.load(Ordering::Acquire) >= self.limit
    }
}

/// What a request does with a COPY its statement starts.
pub(crate) enum CopyHook {
    /// COPY FROM STDIN: told when the server is ready for data.
    In(Option<oneshot::Sender<()>>),
    /// COPY TO STDOUT: the data, chunk by chunk.
    Out {
        sink: Box<dyn FnMut(Bytes) + Send>,
        flow: Arc<Flow>,
    },
}

impl std::fmt::Debug for CopyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyHook::In(_) => f.write_str("CopyHook::In"),
            CopyHook::Out { .. } => f.write_str("CopyHook::Out"),
        }
    }
}

/// CopyData messages are cut at this size, whatever the caller hands over.
const MAX_CHUNK: usize = 256 * 1024;

/// A COPY FROM STDIN the server is ready for: [`CopyIn::send`] the data, then
/// [`CopyIn::finish`] (or [`CopyIn::fail`]). Dropped unfinished, it sends CopyFail, so the
/// connection comes back out of copy mode with an error instead of waiting for data.
pub struct CopyIn {
    client: Client,
    response: Option<oneshot::Receiver<Result<Response, Error>>>,
    ended: bool,
}

impl CopyIn {
    /// Sends one chunk of the data (any split: rows may span chunks). Fails with the
    /// server's error when it already refused the data.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(rx) = self.response.as_mut() {
            // The server answers before CopyDone only with an error.
            if let Ok(r) = rx.try_recv() {
                self.response = None;
                self.ended = true;
                return Err(match r.and_then(Response::ok) {
                    Err(e) => e,
                    Ok(_) => {
                        Error::unsupported("the server ended a COPY FROM STDIN before its data")
                    }
                });
            }
        }
        for chunk in data.chunks(MAX_CHUNK) {
            let mut buf = BytesMut::with_capacity(chunk.len() + 5);
            frontend::copy_data(chunk, &mut buf)?;
            self.client.send_copy(buf.freeze(), false).await?;
        }
        Ok(())
    }

    /// CopyDone: resolves to the COPY's result (its tag holds the row count).
    pub async fn finish(mut self) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(5);
        frontend::copy_done(&mut buf);
        self.end(buf.freeze()).await
    }

    /// CopyFail with `reason`: the server rolls the COPY back and answers with an error,
    /// which this returns (the connection stays usable).
    pub async fn fail(mut self, reason: &str) -> Result<QueryResult, Error> {
        let mut buf = BytesMut::with_capacity(reason.len() + 6);
        frontend::copy_fail(reason, &mut buf)?;
        self.end(buf.freeze()).await
    }

    async fn end(&mut self, bytes: Bytes) -> Result<QueryResult, Error> {
        self.ended = true;
        let Some(rx) = self.response.take() else {
            return Err(Error::closed("the COPY already ended", true));
        };
        // A send error: the connection is gone, and `rx` says how.
        let _ = self.client.send_copy(bytes, true).await;
        let resp = rx
            .await
            .unwrap_or_else(|_| Err(Error::closed("connection is closed", true)))?
            .ok()?;
        Ok(resp.results.into_iter().last().unwrap_or_default())
    }
}

/// The reason of the CopyFail that ends a COPY FROM STDIN its caller left.
pub(crate) const ABANDONED: &str = "the client abandoned the COPY";

impl Drop for CopyIn {
    fn drop(&mut self) {
        if !self.ended {
            self.client.abandon_copy();
        }
    }
}

/// See [`Client::copy_in`].
struct Abandoned<'a>(Option<&'a Client>);

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.0 {
            client.abandon_copy();
        }
    }
}

impl Client {
    /// Starts `sql`, a `COPY ... FROM STDIN`, and returns once the server is ready for the
    /// data. Only on a connection nobody else uses (see the module's documentation).
    pub async fn copy_in(&self, sql: &str) -> Result<CopyIn, Error> {
        crate::sql_text::single_copy(sql).map_err(Error::unsupported)?;
        let mut buf = BytesMut::with_capacity(sql.len() + 6);
        frontend::query(sql, &mut buf)?;
        let (ready_tx, ready) = oneshot::channel();
        let mut response = self
            .submit(buf.freeze(), 1, None, Some(CopyHook::In(Some(ready_tx))))
            .await?;
        // Dropped before it returns (the caller gave up) after the loop said the server was
        // ready, but before a `CopyIn` was made to fail the COPY when dropped: a CopyFail then
        // ends it. (Dropped earlier, the loop sends its own when the server gets ready; and
        // it drops the CopyFail of a COPY that is not under way.)
        let mut abandoned = Abandoned(Some(self));
        let out = tokio::select! {
            biased;
            r = ready => match r {
                Ok(()) => Ok(CopyIn { client: self.clone(), response: Some(response), ended: false }),
                // The loop dropped the hook without firing it: the response says why.
                Err(_) => Err(Self::not_copy_in(response.await)),
            },
            r = &mut response => Err(Self::not_copy_in(r)),
        };
        abandoned.0 = None;
        out
    }

    fn not_copy_in(r: Result<Result<Response, Error>, oneshot::error::RecvError>) -> Error {
        match r {
            Ok(Ok(resp)) => match resp.ok() {
                Err(e) => e,
                Ok(_) => Error::unsupported("copyFrom takes a COPY ... FROM STDIN statement"),
            },
            Ok(Err(e)) => e,
            Err(_) => Error::closed("connection is closed", true),
        }
    }

    /// Runs `sql`, a `COPY ... TO STDOUT`, handing its data to `sink` chunk by chunk while
    /// `flow` says the consumer keeps up; resolves to the COPY's result once it is whole.
    pub async fn copy_out(
        &self,
        sql: &str,
        flow: Arc<Flow>,
        sink: impl FnMut(Bytes) + Send + 'static,
    ) -> Result<QueryResult, Error> {
        crate::sql_text::single_copy(sql).map_err(Error::unsupported)?;
        let mut buf = BytesMut::with_capacity(sql.len() + 6);
        frontend::query(sql, &mut buf)?;
        let hook = CopyHook::Out {
            sink: Box::new(sink),
            flow,
        };
        let response = self.submit(buf.freeze(), 1, None, Some(hook)).await?;
        let resp = response
            .await
            .unwrap_or_else(|_| Err(Error::closed("connection is closed", true)))?
            .ok()?;
        let result = resp.results.into_iter().last().unwrap_or_default();
        if result
            .command_tag
            .as_deref()
            .is_some_and(|t| t.starts_with("COPY"))
        {
            Ok(result)
        } else {
            Err(Error::unsupported(
                "copyTo takes a COPY ... TO STDOUT statement",
            ))
        }
    }

    pub(crate) async fn send_copy(&self, bytes: Bytes, end: bool) -> Result<(), Error> {
        self.sender()
            .send(Request::CopyData { bytes, end })
            .await
            .map_err(|_| Error::closed("connection is closed", true))
    }

    /// Ends the COPY FROM STDIN under way with CopyFail ([`ABANDONED`]); the loop drops it
    /// when none is.
    fn abandon_copy(&self) {
        let mut buf = BytesMut::new();
        if frontend::copy_fail(ABANDONED, &mut buf).is_ok() {
            self.try_send_copy(buf.freeze());
        }
    }

    pub(crate) fn try_send_copy(&self, bytes: Bytes) {
        let req = Request::CopyData { bytes, end: true };
        if let Err(crate::queue::TrySendError::Full(req)) = self.sender().try_send(req) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let tx = self.sender().clone();
                rt.spawn(async move {
                    let _ = tx.send(req).await;
                });
            }
        }
    }
}
