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
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A socket stream the protocol loop can read and write.
pub trait LoopStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> LoopStream for T {}

/// A protocol loop's future.
pub type LoopTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs protocol loops somewhere other than the tokio runtime (module comment).
pub trait LoopRunner: Send + Sync {
    /// Takes over a connected, non-blocking TCP socket. Called on whatever thread opened
    /// the connection: the stream must not need that thread.
    fn adopt(&self, socket: std::net::TcpStream) -> std::io::Result<Box<dyn LoopStream>>;

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
