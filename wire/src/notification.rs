//! LISTEN/NOTIFY: what a `NotificationResponse` carries, and the per-connection hook the
//! protocol loop hands it to.
//!
//! A notification is not an answer to any request: the server sends it between messages
//! whenever a transaction that ran `NOTIFY` on a channel this session listens to commits (and
//! the session is not inside a transaction itself). So it never touches the in-flight FIFO:
//! the loop gives it to the hook the connection's owner set, and the result it was
//! interleaved with goes on undisturbed. With no hook set it is dropped, as before.

use std::sync::{Arc, RwLock};

/// One `NotificationResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The backend process that sent the `NOTIFY` (not necessarily this session's).
    pub process_id: i32,
    pub channel: String,
    pub payload: String,
}

/// Where a connection's notifications go. Called on the connection's protocol loop, once
/// per notification and in order: it must not block (hand the value to a channel or a
/// thread-safe function).
pub type NotificationSink = Box<dyn Fn(Notification) + Send + Sync>;

/// The hook as the protocol loop and the client share it.
#[derive(Default)]
pub(crate) struct NotificationHook {
    sink: RwLock<Option<Arc<NotificationSink>>>,
}

impl std::fmt::Debug for NotificationHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.sink.read().map(|s| s.is_some()).unwrap_or(false);
        f.debug_struct("NotificationHook")
            .field("set", &set)
            .finish()
    }
}

impl NotificationHook {
    pub(crate) fn set(&self, sink: Option<NotificationSink>) {
        let mut s = self.sink.write().unwrap_or_else(|p| p.into_inner());
        *s = sink.map(Arc::new);
    }

    /// Hands `n` to the sink, if one is set. The lock is not held while it runs, so the
    /// sink may replace itself.
    pub(crate) fn deliver(&self, n: Notification) {
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink {
            sink(n);
        }
    }
}
