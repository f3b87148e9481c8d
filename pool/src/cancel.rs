//! Stopping a statement: after a timeout (`timeoutMs`), on the caller's abort (an
//! `AbortSignal`), or both.
//!
//! A statement that is already running is stopped on the server, with a CancelRequest on a
//! separate socket (the connection's cancel key). PostgreSQL cancels whatever the session is
//! running when the request arrives, so a query that can be stopped never shares its
//! connection: it takes it exclusively, as a transaction does, and no one else's statement
//! can be in the pipeline behind it.
//!
//! After a stop the connection goes back to the pool only when both the statement's
//! response and the CancelRequest's delivery (the server closes the cancel socket once it has
//! signalled the backend) came within [`CANCEL_GRACE`]: then no cancel is left in the air to
//! hit the next statement, and a signal that reaches an idle session is dropped by the
//! server. Otherwise (the node is unreachable mid-partition, say) the connection is
//! destroyed, and the call still returns after the grace period.

use crate::error::Error;
use crate::lease::Lease;
use hyperion_wire::ErrorKind;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a stopped statement may take to end, and its CancelRequest to be delivered,
/// before its connection is given up.
pub const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// The caller's side of an abort: `abort()` stops every query it was given to.
#[derive(Debug, Clone, Default)]
pub struct Abort(Arc<AbortInner>);

#[derive(Debug, Default)]
struct AbortInner {
    aborted: AtomicBool,
    notify: Notify,
}

impl Abort {
    pub fn new() -> Abort {
        Abort::default()
    }

    pub fn abort(&self) {
        self.0.aborted.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_aborted(&self) -> bool {
        self.0.aborted.load(Ordering::SeqCst)
    }

    async fn aborted(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the look, so an abort between the two is not missed.
            notified.as_mut().enable();
            if self.is_aborted() {
                return;
            }
            notified.await;
        }
    }
}

/// When a query is to be stopped, if ever.
#[derive(Debug, Clone, Default)]
pub struct Cancellation {
    /// Stop the query this long after it was called (connection wait included).
    pub timeout: Option<Duration>,
    pub abort: Option<Abort>,
    /// When the call was made, if not when the pool starts on it: a call on a dedicated
    /// connection may first wait for the connection's turn (another statement, a stream).
    pub called: Option<Instant>,
}

impl Cancellation {
    pub fn is_none(&self) -> bool {
        self.timeout.is_none() && self.abort.is_none()
    }

    /// Where the timeout counts from, for work that starts now.
    pub(crate) fn start(&self) -> Instant {
        self.called.unwrap_or_else(Instant::now)
    }

    /// Waits for `ready` (a wait before anything is sent, such as a dedicated connection's
    /// turn) unless the stop fires first: then fails with the stop, as not sent.
    pub async fn before_sending<T>(&self, ready: impl Future<Output = T>) -> Result<T, Error> {
        let Some(stopper) = Stopper::new(self, self.start()) else {
            return Ok(ready.await);
        };
        stopper.check()?;
        tokio::select! {
            biased;
            out = ready => Ok(out),
            stop = stopper.fired() => Err(Error::not_sent(stop)),
        }
    }
}

/// Why a query was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Timeout(Duration),
    Aborted,
}

/// Where the statement was when it was stopped, and how that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopState {
    /// Nothing was sent: the query was still waiting for a connection.
    NotSent,
    /// The statement ended within the grace period (the server cancelled it, or it ended on
    /// its own first) and no cancel is left in the air: the connection is fine.
    Cancelled,
    /// The statement or the cancel did not end within [`CANCEL_GRACE`]; the connection was
    /// destroyed. A write may or may not have happened.
    Abandoned,
}

/// A query's stop condition, armed when the query was called.
pub(crate) struct Stopper {
    deadline: Option<Instant>,
    timeout: Duration,
    abort: Option<Abort>,
}

impl Stopper {
    pub(crate) fn new(c: &Cancellation, start: Instant) -> Option<Stopper> {
        if c.is_none() {
            return None;
        }
        Some(Stopper {
            deadline: c.timeout.map(|t| start + t),
            timeout: c.timeout.unwrap_or_default(),
            abort: c.abort.clone(),
        })
    }

    /// Resolves when the query is to stop.
    pub(crate) async fn fired(&self) -> Stop {
        let timer = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let abort = async {
            match &self.abort {
                Some(a) => a.aborted().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = abort => Stop::Aborted,
            () = timer => Stop::Timeout(self.timeout),
        }
    }

    /// Fails with the stop if it has fired already (checked before anything is sent).
    pub(crate) fn check(&self) -> Result<(), Error> {
        let stop = if self.abort.as_ref().is_some_and(Abort::is_aborted) {
            Stop::Aborted
        } else {
            match self.deadline {
                Some(d) if Instant::now() >= d => Stop::Timeout(self.timeout),
                _ => return Ok(()),
            }
        };
        Err(Error::not_sent(stop))
    }

    /// Runs `work`, a statement on the lease's connection, to its end, unless the stop
    /// fires first: then cancels it on the server and waits up to [`CANCEL_GRACE`] for the
    /// statement's response and the cancel's delivery; if either does not come, the
    /// connection is evicted. The stop's error carries `error_of` the statement's outcome
    /// when it ended with an error (57014 from the cancel, usually).
    pub(crate) async fn run<T, F>(
        &self,
        lease: &Lease,
        work: F,
        error_of: impl Fn(&T) -> Option<Error>,
    ) -> Result<T, Error>
    where
        F: Future<Output = T>,
    {
        tokio::pin!(work);
        let stop = tokio::select! {
            biased;
            out = &mut work => return Ok(out),
            stop = self.fired() => stop,
        };
        let until = Instant::now() + CANCEL_GRACE;
        let token = lease.client().cancel_token();
        let (ended, delivered) = tokio::join!(
            tokio::time::timeout_at(until.into(), &mut work),
            token.cancel(CANCEL_GRACE)
        );
        let cause = ended.as_ref().ok().and_then(&error_of);
        // A cancel that timed out may still arrive and hit the next statement; one that
        // could not even be sent never will.
        let in_the_air = matches!(&delivered, Err(e) if e.kind() == ErrorKind::ConnectTimeout);
        let state = if ended.is_ok() && !in_the_air {
            StopState::Cancelled
        } else {
            lease.pool().evict(lease);
            StopState::Abandoned
        };
        Err(Error::Stopped {
            stop,
            state,
            cause: cause.map(Box::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(stop: Stop, state: StopState, cause: Option<Error>) -> String {
        Error::Stopped {
            stop,
            state,
            cause: cause.map(Box::new),
        }
        .to_string()
    }

    #[test]
    fn the_message_says_what_happened_to_the_statement() {
        let t = Stop::Timeout(Duration::from_millis(2000));
        assert_eq!(
            stopped(t, StopState::NotSent, None),
            "query timed out after 2000ms while waiting for a connection"
        );
        let cancelled = Error::Wire(hyperion_wire::Error::closed("gone", true));
        assert!(
            stopped(Stop::Aborted, StopState::Cancelled, Some(cancelled))
                .starts_with("the query was aborted; the statement was cancelled (")
        );
        assert!(stopped(t, StopState::Cancelled, None)
            .contains("completed before the cancel reached the server"));
        assert!(stopped(t, StopState::Abandoned, None)
            .contains("did not confirm the cancel within 1000ms, so the connection was closed"));
        let codes = [Stop::Aborted, t].map(|s| {
            Error::Stopped {
                stop: s,
                state: StopState::NotSent,
                cause: None,
            }
            .code()
            .to_string()
        });
        assert_eq!(codes, ["ABORT_ERR", "QUERY_TIMEOUT"]);
    }

    #[tokio::test]
    async fn an_abort_wakes_every_waiter_and_one_before_waiting_is_not_missed() {
        let a = Abort::new();
        a.abort();
        a.aborted().await;
        let b = Abort::new();
        let s = Stopper::new(
            &Cancellation {
                timeout: None,
                abort: Some(b.clone()),
                called: None,
            },
            Instant::now(),
        )
        .unwrap();
        let waiting = tokio::spawn(async move { s.fired().await });
        tokio::task::yield_now().await;
        b.abort();
        assert_eq!(waiting.await.unwrap(), Stop::Aborted);
    }
}
