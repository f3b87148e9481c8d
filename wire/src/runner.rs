//! Where a connection's protocol loop runs.
//!
//! By default the loop of every connection is a task on the tokio runtime that opened it.
//! A caller with an event loop of its own (the Node addon's JS thread) can run the loops of
//! plain TCP connections there instead: the socket is handed over once startup is done, as a
//! non-blocking `std` socket, and the caller returns the stream the loop is to read and
//! write, and runs the loop's future. Requests and answers then never change threads.
//! Connections over TLS or a Unix-domain socket stay on the runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A socket stream the protocol loop can read and write.
pub trait LoopStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> LoopStream for T {}

/// A protocol loop's future.
pub type LoopTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Whether the loop is in the middle of a large answer: set once the answer at the head of
/// the line has brought [`Pace::AFTER`] bytes, cleared when it ends. A stream may then wait
/// for its next bytes on a short timer instead of on readiness: a reader asleep on its
/// socket is woken by every write of the server, and on a virtual machine waking a halted
/// CPU is an interrupt that the server pays for in its `send` (measured in benches/README:
/// 10% of a backend's CPU while it streams a large result, against 3% when the reader is
/// busy). Answers that end sooner, and every small query, never see the flag set.
#[derive(Clone, Default, Debug)]
pub struct Pace(Arc<AtomicBool>);

impl Pace {
    /// Bytes of one answer after which the loop counts as in a large one.
    pub const AFTER: usize = 256 * 1024;

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, on: bool) {
        if self.0.load(Ordering::Relaxed) != on {
            self.0.store(on, Ordering::Relaxed);
        }
    }
}

/// Runs protocol loops somewhere other than the tokio runtime (module comment).
pub trait LoopRunner: Send + Sync {
    /// Takes over a connected, non-blocking TCP socket. Called on whatever thread opened
    /// the connection: the stream must not need that thread. `pace` tells the stream when
    /// the loop is in a large answer (see [`Pace`]); a stream may ignore it.
    fn adopt(
        &self,
        socket: std::net::TcpStream,
        pace: Pace,
    ) -> std::io::Result<Box<dyn LoopStream>>;

    /// Runs a protocol loop to its end. Called from any thread.
    fn spawn(&self, task: LoopTask);
}

/// A [`LoopRunner`] in a [`crate::Config`]: compared by identity, printed by name.
#[derive(Clone)]
pub struct Runner(pub Arc<dyn LoopRunner>);

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner")
    }
}
