//! The protocol loop of one connection: a hand-written future, run as its own task, that
//! reads and writes in the same poll (the shape of tokio-postgres' `Connection`), so it
//! cannot deadlock with both socket buffers full.
//!
//! Each poll: an abort comes first; then requests are taken from the channel while the
//! pipeline has room (appended to the write buffer and to the in-flight FIFO); then the
//! buffer is written; then every whole message read is routed. Messages the server may send
//! at any time (ParameterStatus, notices, ErrorResponse) are handled here, since they touch
//! the shared [`ConnectionState`]; the rest answer the front request ([`Pending::answer`]).

use crate::backend::{self, Message, ProtocolErrorKind};
use crate::client::Request;
use crate::error::Error;
use crate::frontend;
use crate::frontend::EncodeError;
use crate::notification::Notification;
use crate::plan;
use crate::queue;
use crate::response::{Answered, Pending};
use crate::runner::Pace;
use crate::state::{admit_parameter, ConnectionState};
use bytes::{Buf, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Above this many buffered bytes the loop stops taking requests until the socket drains.
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// The room a read is given at first, and again once the socket stops filling it.
const READ_MIN: usize = 16 * 1024;

/// The most room a read is given when every read fills what it was given (a large result
/// streaming in): W3 strings' 50,000 rows (10 MB) took about 950 reads a query with 16 KB,
/// about 300 with this (`strace -f -c`). 128 KB is mimalloc's largest medium size.
const READ_MAX: usize = 128 * 1024;

/// The room for the read after one that got `n` bytes into `room`, when this one had `size`.
/// Fewer, larger reads while a large answer streams in (each read is a system call); back
/// to small ones after it, so that the rows of a small result, which keep the buffer they
/// were read into alive, do not keep a large one.
fn next_read_size(size: usize, room: usize, n: usize) -> usize {
    if n == room {
        (size * 2).min(READ_MAX)
    } else if n < room / 4 {
        (size / 2).max(READ_MIN)
    } else {
        size
    }
}

/// Requests held while the pipeline is full ([`Connection::held`]); past it the channel's
/// own bound holds the senders back.
const MAX_HELD: usize = 16;

/// Where the loop is in the connection's life. [`Phase::on`] holds every transition.
///
/// A FATAL error or [`crate::Client::abort`] is not a phase: it is the shared
/// `ConnectionState::closed` flag (set from any thread), which stops the loop taking
/// requests; the loop then reads until the server closes the socket or the abort arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking requests, writing, reading.
    Open,
    /// Requests were taken while others were in flight, and their write was put off by one
    /// turn of the scheduler (the cork, see [`Connection::poll_loop`]); the next poll writes.
    Corked,
    /// The request channel ended ([`crate::Client::close`], or every handle dropped): the
    /// requests in flight finish, no new ones are taken.
    Draining,
    /// Nothing is in flight and Terminate is in the write buffer: once it is written the
    /// socket is shut down and the loop ends.
    Terminating,
}

/// What moves the loop from one [`Phase`] to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// Requests were taken while others were in flight.
    Cork,
    /// The poll after a cork.
    Uncork,
    /// The request channel ended.
    ChannelEnded,
    /// Draining, and the last request in flight was answered; Terminate was queued.
    Drained,
}

impl Phase {
    fn on(self, event: Event) -> Phase {
        match (self, event) {
            (Phase::Open, Event::Cork) => Phase::Corked,
            (Phase::Corked, Event::Uncork) => Phase::Open,
            (Phase::Open | Phase::Corked, Event::ChannelEnded) => Phase::Draining,
            (Phase::Draining, Event::Drained) => Phase::Terminating,
            // A connection being closed is never corked: nobody can join the batch.
            (phase, _) => phase,
        }
    }

    /// Requests may be taken from the channel.
    fn takes_requests(self) -> bool {
        matches!(self, Phase::Open | Phase::Corked)
    }
}

/// The protocol loop of one connection (a future run as its own task).
pub(crate) struct Connection<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    rx: queue::Receiver<Request>,
    phase: Phase,
    pending: VecDeque<Pending>,
    depth: usize,
    state: Arc<ConnectionState>,
    parameters: Arc<Mutex<HashMap<String, String>>>,
    max_message_len: usize,
    /// Bytes handed to the socket so far; with `write_buf.len()`, where each request starts.
    written: u64,
    /// [`crate::Client::abort`]'s signal; `None` once it fired or every client is gone.
    abort: Option<oneshot::Receiver<String>>,
    /// Name + value bytes of the stored server parameters (see `admit_parameter`).
    parameter_bytes: usize,
    /// Requests taken from the channel while the pipeline was full, taken first later (at
    /// most [`MAX_HELD`]). The channel is read past a full pipeline because it also carries a
    /// COPY's data, which the request filling the pipeline (the COPY itself, at depth 1)
    /// waits for.
    held: VecDeque<Request>,
    /// Kept up to date for the stream when it wants it: whether the answer at the head of
    /// the line is a large one ([`Pace`]).
    pace: Option<Pace>,
    /// Bytes read since the head request became the head (its answer, and what follows it).
    head_bytes: usize,
    /// The room the next read is given ([`READ_MIN`]..=[`READ_MAX`]): doubled after a read
    /// that filled its room (more was waiting), halved after one that used under a quarter.
    read_size: usize,
}

/// What [`Connection::new`] needs besides the stream.
pub(crate) struct Channels {
    pub(crate) rx: queue::Receiver<Request>,
    pub(crate) abort: oneshot::Receiver<String>,
    pub(crate) state: Arc<ConnectionState>,
    pub(crate) parameters: Arc<Mutex<HashMap<String, String>>>,
}

impl<S> Connection<S> {
    /// A loop over a stream that finished startup; `read_buf` holds what was read past the
    /// startup's ReadyForQuery.
    pub(crate) fn new(
        stream: S,
        read_buf: BytesMut,
        channels: Channels,
        depth: usize,
        max_message_len: usize,
        parameter_bytes: usize,
        pace: Option<Pace>,
    ) -> Self {
        Connection {
            stream,
            read_buf,
            write_buf: BytesMut::new(),
            rx: channels.rx,
            phase: Phase::Open,
            pending: VecDeque::new(),
            depth,
            state: channels.state,
            parameters: channels.parameters,
            max_message_len,
            written: 0,
            abort: Some(channels.abort),
            parameter_bytes,
            held: VecDeque::new(),
            pace,
            head_bytes: 0,
            read_size: READ_MIN,
        }
    }
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
        if let Err(e) = self.poll_abort(cx) {
            return Poll::Ready(Err(e));
        }
        loop {
            let busy = !self.pending.is_empty();

            // 1. Take queued requests while the pipeline has room.
            let (took, mut progress) = self.take_requests(cx);
            if self.phase == Phase::Draining && self.pending.is_empty() {
                frontend::terminate(&mut self.write_buf);
                self.phase = self.phase.on(Event::Drained);
            }
            // Cork: on a connection that already has queries in flight, new requests are
            // written one scheduler turn later. Callers woken by the same burst (results
            // settled together) queue theirs in that turn, and they all go out in one write:
            // one system call and one wake-up of the server for many queries. A request to
            // an idle connection goes out at once (a lone query waits for nothing).
            if took && busy && self.phase == Phase::Open {
                self.phase = self.phase.on(Event::Cork);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.phase = self.phase.on(Event::Uncork);

            // 2. Write what we have.
            progress |= self.write_buffered(cx)?;
            if self.write_buf.is_empty() {
                // TCP flush is a no-op, but respect streams that buffer.
                if let Poll::Ready(Err(e)) = Pin::new(&mut self.stream).poll_flush(cx) {
                    return Poll::Ready(Err(Error::closed(format!("flush failed: {e}"), true)));
                }
                if self.phase == Phase::Terminating {
                    let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
                    return Poll::Ready(Ok(()));
                }
            }

            // 3. Read what arrived and handle every whole message; not while the consumer
            // of a COPY TO holds too much (TCP flow control then holds the server back).
            let paused = self
                .pending
                .front()
                .and_then(Pending::flow)
                .is_some_and(|f| f.full(cx));
            let read = if paused {
                Poll::Pending
            } else {
                self.poll_read(cx)
            };
            match read {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(Error::closed(
                        "the server closed the connection",
                        true,
                    )))
                }
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    self.head_bytes = self.head_bytes.saturating_add(n);
                }
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
            // Before the next read, which may be the one that waits.
            if self.pending.is_empty() {
                self.head_bytes = 0;
            }
            if let Some(pace) = &self.pace {
                pace.set(self.head_bytes >= Pace::AFTER);
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// An error when [`crate::Client::abort`] fired.
    fn poll_abort(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        if let Some(rx) = self.abort.as_mut() {
            match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(reason)) => {
                    self.abort = None;
                    return Err(Error::closed(reason, true));
                }
                // Every client handle is gone: no abort can come any more.
                Poll::Ready(Err(_)) => self.abort = None,
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Takes requests from the channel while the pipeline and the write buffer have room.
    /// Returns whether a request was taken, and whether anything happened.
    fn take_requests(&mut self, cx: &mut Context<'_>) -> (bool, bool) {
        let (mut took, mut progress) = (false, false);
        // After a FATAL error the server is closing the session: requests still queued are
        // never written, so they fail as unsent (safe to retry) at shutdown.
        while self.phase.takes_requests()
            && !self.state.closed.load(Ordering::Acquire)
            && self.write_buf.len() < WRITE_HIGH_WATER
        {
            let full = self.pending.len() >= self.depth;
            let next = match self.held.pop_front() {
                Some(r) if !full => Poll::Ready(Some(r)),
                held => {
                    if let Some(r) = held {
                        self.held.push_front(r);
                    }
                    if self.held.len() >= MAX_HELD {
                        break;
                    }
                    self.rx.poll_recv(cx)
                }
            };
            match next {
                Poll::Ready(Some(r @ Request::Batch { .. })) if full => {
                    self.held.push_back(r);
                }
                Poll::Ready(Some(Request::Batch {
                    bytes,
                    syncs,
                    sink,
                    stream,
                    copy,
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
                        .push_back(Pending::new(sink, start, stream, copy, syncs, plan));
                    self.state.in_flight.fetch_add(1, Ordering::AcqRel);
                    progress = true;
                    took = true;
                }
                Poll::Ready(Some(Request::CopyData { bytes, end })) => {
                    // Written only while the COPY at the front takes data: after the server
                    // refused it (or before it started), the bytes would be read as
                    // messages of the protocol. The server would drop them anyway.
                    if self
                        .pending
                        .front_mut()
                        .is_some_and(|p| p.takes_copy_data(end))
                    {
                        self.write_buf.extend_from_slice(&bytes);
                    }
                    progress = true;
                }
                Poll::Ready(Some(Request::Terminate)) | Poll::Ready(None) => {
                    self.phase = self.phase.on(Event::ChannelEnded);
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        (took, progress)
    }

    /// Writes the buffer until it is empty or the socket is full; whether bytes went out.
    fn write_buffered(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut progress = false;
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    return Err(Error::closed("the server closed the connection", true))
                }
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
                    self.written += n as u64;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    return Err(Error::closed(format!("write failed: {e}"), true))
                }
                Poll::Pending => break,
            }
        }
        Ok(progress)
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        // Grow by what the frame at the front still needs (capped), never by its declared
        // length alone: an untrusted length cannot make us reserve a gigabyte.
        let want = backend::frame_len(&self.read_buf)
            .map(|total| total.saturating_sub(self.read_buf.len()))
            .unwrap_or(0)
            .clamp(self.read_size, 1024 * 1024);
        if self.read_buf.capacity() - self.read_buf.len() < 4096 {
            self.read_buf.reserve(want);
        }
        let dst = self.read_buf.spare_capacity_mut();
        let room = dst.len();
        let mut rb = ReadBuf::uninit(dst);
        match Pin::new(&mut self.stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
                unsafe { self.read_buf.set_len(self.read_buf.len() + n) };
                self.read_size = next_read_size(self.read_size, room, n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                Poll::Ready(Err(Error::closed(format!("read failed: {e}"), true)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Routes one message: the ones the server may send at any time are handled here,
    /// whoever is waiting; everything else answers the front request.
    fn handle(&mut self, msg: Message) -> Result<(), Error> {
        match msg {
            Message::NoticeResponse(fields) => {
                // With no request in flight there is nobody to hand it to: dropped.
                if let Some(p) = self.pending.front_mut() {
                    p.notice(*fields);
                }
            }
            Message::ParameterStatus { name, value } => {
                if let Ok(mut map) = self.parameters.lock() {
                    admit_parameter(&map, &mut self.parameter_bytes, &name, &value)?;
                    self.state.apply_parameter(&name, &value);
                    map.insert(name, value);
                }
            }
            Message::NotificationResponse {
                process_id,
                channel,
                payload,
            } => {
                // Not an answer to any request: it goes to the owner's hook, never to the
                // request at the head of the line.
                self.state.notifications.deliver(Notification {
                    process_id,
                    channel,
                    payload,
                });
            }
            Message::ErrorResponse(fields) => {
                if fields.code == crate::sqlstate::READ_ONLY_SQL_TRANSACTION {
                    self.state.read_only_error.store(true, Ordering::Release);
                }
                let fatal = matches!(fields.severity(), "FATAL" | "PANIC");
                let Some(p) = self.pending.front_mut() else {
                    return Err(Error::db(*fields));
                };
                let severity = fatal.then(|| fields.severity().to_owned());
                p.error_response(Error::db(*fields));
                if let Some(severity) = severity {
                    // The session is over. The server closes the socket next, but the loop
                    // does not wait for it: a server (or a proxy) that kept the socket open
                    // would leave the front request without the error it already has, the
                    // requests behind it unanswered, and the loop and its socket alive after
                    // every handle is gone. The front request gets this error, the rest a
                    // closed-connection error.
                    return Err(Error::closed(
                        format!("the server ended the session with a {severity} error"),
                        true,
                    ));
                }
            }
            msg => {
                let alone = self.pending.len() == 1;
                let Some(p) = self.pending.front_mut() else {
                    return Err(ProtocolErrorKind::OutOfStep {
                        message: msg.name(),
                        due: None,
                    }
                    .into());
                };
                if let Answered::GroupEnd { status, done } =
                    p.answer(msg, alone, &mut self.write_buf)?
                {
                    self.state.tx_status.store(status, Ordering::Release);
                    if done {
                        self.settle_front();
                    }
                }
            }
        }
        Ok(())
    }

    /// The front request got its last ReadyForQuery: its caller gets the response.
    fn settle_front(&mut self) {
        self.head_bytes = 0;
        if let Some(p) = self.pending.pop_front() {
            self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
            if let Some(sink) = p.sink {
                // The caller may have gone: its response is drained and dropped.
                let _ = sink.send(Ok(p.response));
            }
        }
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
        let queued = std::iter::from_fn(|| self.rx.try_recv());
        for req in self.held.drain(..).chain(queued) {
            if let Request::Batch { sink, .. } = req {
                let _ = sink.send(Err(error.with_sent(false)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_size_grows_while_reads_fill_and_shrinks_after() {
        let mut size = READ_MIN;
        let mut seen = vec![size];
        // A large answer: every read fills its room.
        for _ in 0..10 {
            size = next_read_size(size, size, size);
            seen.push(size);
        }
        assert_eq!(
            &seen[..5],
            &[READ_MIN, 2 * READ_MIN, 4 * READ_MIN, READ_MAX, READ_MAX]
        );
        assert_eq!(size, READ_MAX);
        // A read that used most of its room keeps the size.
        assert_eq!(next_read_size(size, size, size / 2), READ_MAX);
        // Small answers again: back down to the minimum, and never below.
        for _ in 0..10 {
            size = next_read_size(size, size, 40);
        }
        assert_eq!(size, READ_MIN);
        assert_eq!(next_read_size(READ_MIN, 20_000, 40), READ_MIN);
    }

    #[test]
    fn phase_transitions() {
        use Event::*;
        use Phase::*;
        assert_eq!(Open.on(Cork), Corked);
        assert_eq!(Corked.on(Uncork), Open);
        assert_eq!(Open.on(Uncork), Open);
        assert_eq!(Open.on(ChannelEnded), Draining);
        assert_eq!(Corked.on(ChannelEnded), Draining);
        // A closing connection is never corked, and ends only through Terminating.
        assert_eq!(Draining.on(Cork), Draining);
        assert_eq!(Draining.on(Drained), Terminating);
        assert_eq!(Open.on(Drained), Open);
        assert_eq!(Terminating.on(ChannelEnded), Terminating);
        assert!(!Draining.takes_requests() && !Terminating.takes_requests());
        assert!(Open.takes_requests() && Corked.takes_requests());
    }
}
