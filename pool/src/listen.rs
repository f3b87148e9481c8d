//! LISTEN/NOTIFY that follows the primary: [`Pool::listen`], [`Listener::stop`],
//! [`Pool::notify`].
//!
//! A pool listens on ONE dedicated connection (the hub's session), never in the slots, so it
//! is never handed to a query: a pipelined statement on a LISTENing session would delay its
//! notifications, and a transaction on it would hold them until COMMIT. It goes to the
//! writable primary whatever the pool's mode: `NOTIFY` only reaches sessions of the server
//! it runs on (the pool's writes go to the primary), and a standby refuses `LISTEN`.
//!
//! The connection is registered with the pool's connections (`lease.rs` `register`), so a
//! host that discovery supersedes or abandons aborts it as it aborts the pool's own. A
//! watcher task looks at it every [`TICK`]: the socket closed, its session turned read-only
//! (a fence reported by ParameterStatus), or its host seen unfit in the host view mean it is
//! lost. An idle session learns of a fence only when it runs something, so every
//! [`CHECK_EVERY`] the watcher asks it `SHOW transaction_read_only`; an answer that says
//! writable is also the moment the session is last *known good*.
//!
//! A lost session is replaced on the writable primary (with the pool's backoff while none is
//! elected), every channel is LISTENed again, and the gap callback gets the window in which
//! notifications may have been missed: from the last moment the old session was known good
//! to the moment the new LISTENs are in place (wall-clock ms).

use crate::config::{Mode, PoolConfig};
use crate::error::Error;
use crate::hosts::{wall_ms, HostState};
use crate::lease::Conn;
use crate::pool::{Inner, Pool, QueryOptions, NO_HINT};
use crate::role;
use crate::route::{self, RouteError};
use hyperion_wire::Notification;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

/// How often the watcher looks at the session's local state.
const TICK: Duration = Duration::from_millis(100);
/// How often the watcher asks the session whether it can still write.
const CHECK_EVERY: Duration = Duration::from_millis(1000);
/// How long that question may take before the session counts as lost (a hung host).
const CHECK_TIMEOUT: Duration = Duration::from_millis(2000);

/// What a listener is called with, for each notification on its channel. It runs on the
/// connection's protocol loop and must not block.
pub type NotificationCallback = Arc<dyn Fn(&Notification) + Send + Sync>;

/// Where the gaps go (the JS `onListenGap` option).
pub type GapSink = Arc<dyn Fn(ListenGap) + Send + Sync>;

/// A window in which notifications may have been missed: the listening session was lost and
/// replaced. Wall-clock ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenGap {
    /// The last moment the old session was known good.
    pub from_ms: u64,
    /// When the new session's LISTENs were all in place.
    pub to_ms: u64,
}

/// `name` as a quoted SQL identifier (`"a""b"`): a channel is matched exactly, case and all.
pub fn quote_identifier(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Who listens to what.
#[derive(Default)]
struct Subscribers {
    by_channel: HashMap<String, Vec<(u64, NotificationCallback)>>,
    next_id: u64,
    /// A watcher task runs.
    watching: bool,
}

/// The listening session.
struct Session {
    conn: Option<Arc<Conn>>,
    /// Channels LISTENed on `conn`.
    listening: HashSet<String>,
    /// When `conn` was last known good (wall ms).
    good_ms: u64,
    /// A session was lost since it was last known good at this moment; reported as a gap
    /// once a new one listens.
    lost_from: Option<u64>,
    /// When `conn` was last asked whether it can write.
    checked: Instant,
}

/// One pool's listening: its subscribers, its session, its gap callback.
pub(crate) struct Hub {
    subs: Mutex<Subscribers>,
    session: tokio::sync::Mutex<Session>,
    gap: RwLock<Option<GapSink>>,
    /// The listening session's backend process id (0: none).
    pid: AtomicI32,
    /// The pool's configuration in read-write mode (see the module comment).
    config: PoolConfig,
}

impl Hub {
    pub(crate) fn new(config: &PoolConfig) -> Hub {
        let mut config = config.clone();
        config.mode = Mode::ReadWrite;
        // The session is watched from the runtime (its health check has a deadline) and its
        // notifications are read as they come: its loop must not wait for a busy JS thread.
        config.runner = None;
        Hub {
            subs: Mutex::new(Subscribers::default()),
            session: tokio::sync::Mutex::new(Session {
                conn: None,
                listening: HashSet::new(),
                good_ms: 0,
                lost_from: None,
                checked: Instant::now(),
            }),
            gap: RwLock::new(None),
            pid: AtomicI32::new(0),
            config,
        }
    }

    fn subs(&self) -> MutexGuard<'_, Subscribers> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a subscriber; whether a watcher must be started for it.
    fn subscribe(&self, channel: &str, callback: NotificationCallback) -> (u64, bool) {
        let mut s = self.subs();
        s.next_id += 1;
        let id = s.next_id;
        s.by_channel
            .entry(channel.to_owned())
            .or_default()
            .push((id, callback));
        let start = !s.watching;
        s.watching = true;
        (id, start)
    }

    fn unsubscribe(&self, channel: &str, id: u64) {
        let mut s = self.subs();
        if let Some(v) = s.by_channel.get_mut(channel) {
            v.retain(|(i, _)| *i != id);
            if v.is_empty() {
                s.by_channel.remove(channel);
            }
        }
    }

    fn channels(&self) -> Vec<String> {
        self.subs().by_channel.keys().cloned().collect()
    }

    fn has(&self, channel: &str) -> bool {
        self.subs().by_channel.contains_key(channel)
    }

    /// Hands a notification to its channel's subscribers (on the protocol loop).
    fn dispatch(&self, n: &Notification) {
        let callbacks: Vec<NotificationCallback> = match self.subs().by_channel.get(&n.channel) {
            Some(v) => v.iter().map(|(_, c)| c.clone()).collect(),
            None => return,
        };
        for c in callbacks {
            c(n);
        }
    }

    fn report_gap(&self, gap: ListenGap) {
        let sink = self.gap.read().ok().and_then(|g| g.clone());
        if let Some(sink) = sink {
            sink(gap);
        }
    }

    /// Whether `conn` can no longer be trusted to receive the primary's notifications.
    fn lost(&self, pool: &Pool, conn: &Conn) -> bool {
        conn.client.is_closed()
            || role::session_unfit(Mode::ReadWrite, conn.client.state())
            || !role::fits(Mode::ReadWrite, pool.inner.hosts.state(conn.host))
    }

    /// Drops the session as lost (it is aborted: it may hang): its window opens.
    fn lose(&self, session: &mut Session, reason: &str) {
        self.pid.store(0, Ordering::Release);
        if let Some(c) = session.conn.take() {
            c.client.on_notification(None);
            c.client.abort(reason);
            session.lost_from.get_or_insert(session.good_ms);
        }
        session.listening.clear();
    }

    /// Makes sure a session to the writable primary LISTENs on every subscribed channel,
    /// replacing a lost one. Waits with the pool's backoff while no primary is elected, up to
    /// `deadline` (none: for as long as anyone listens and the pool is open).
    async fn ensure(self: &Arc<Self>, pool: &Pool, deadline: Option<Instant>) -> Result<(), Error> {
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut last_error = None;
        loop {
            if pool.is_closed() {
                return Err(Error::Closed);
            }
            let mut s = self.session.lock().await;
            if let Some(c) = s.conn.clone() {
                if self.lost(pool, &c) {
                    self.lose(&mut s, "the listening connection was lost");
                    pool.suspect();
                }
            }
            let wanted = self.channels();
            if wanted.is_empty() {
                return Ok(());
            }
            let failure = match self.open_and_listen(pool, &mut s, &wanted).await {
                Ok(()) => {
                    if let Some(from_ms) = s.lost_from.take() {
                        self.report_gap(ListenGap {
                            from_ms,
                            to_ms: wall_ms(),
                        });
                    }
                    return Ok(());
                }
                Err(f) => f,
            };
            drop(s);
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry(e) => {
                    pool.suspect();
                    if e.is_some() {
                        last_error = e;
                    }
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(pool.no_node_error(start, last_error));
            }
            let mut delay = self.config.retry.delay(attempt);
            if let Some(d) = deadline {
                delay = delay.min(d - now);
            }
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: a session if there is none, then LISTEN on the channels it lacks.
    async fn open_and_listen(
        self: &Arc<Self>,
        pool: &Pool,
        s: &mut Session,
        wanted: &[String],
    ) -> Result<(), Failure> {
        let conn = match s.conn.clone() {
            Some(c) => c,
            None => {
                let c = self.open(pool).await?;
                self.pid.store(c.client.process_id(), Ordering::Release);
                s.conn = Some(c.clone());
                s.listening.clear();
                c
            }
        };
        for channel in wanted {
            if s.listening.contains(channel) {
                continue;
            }
            let sql = format!("LISTEN {}", quote_identifier(channel));
            match conn.client.simple_query(&sql).await {
                Ok(_) => {
                    s.listening.insert(channel.clone());
                }
                Err(e) => {
                    // A standby or a fenced node refuses LISTEN (25006): a lost session.
                    if e.is_closed() || self.lost(pool, &conn) || e.code() == "25006" {
                        self.lose(s, "the listening connection was lost");
                        return Err(Failure::Retry(Some(e)));
                    }
                    return Err(Failure::Fatal(Error::Wire(e)));
                }
            }
        }
        s.good_ms = wall_ms();
        s.checked = Instant::now();
        Ok(())
    }

    /// Opens the session on the writable primary (the pool's hint first).
    async fn open(self: &Arc<Self>, pool: &Pool) -> Result<Arc<Conn>, Failure> {
        let hint = pool.inner.primary_hint.load(Ordering::Relaxed);
        let hint = (hint != NO_HINT).then_some(hint);
        let (client, host) =
            match route::connect_for(&self.config, hint, &pool.inner.hosts, Vec::new).await {
                Ok(c) => c,
                Err(RouteError::Fatal(e)) => return Err(Failure::Fatal(Error::Wire(e))),
                Err(RouteError::NoMatch(last)) => return Err(Failure::Retry(last)),
            };
        let hub = Arc::downgrade(self);
        client.on_notification(Some(Box::new(move |n| {
            if let Some(hub) = hub.upgrade() {
                hub.dispatch(&n);
            }
        })));
        let now = pool.now_ms();
        let conn = Arc::new(Conn {
            client,
            host,
            validated_at_ms: AtomicU64::new(now),
            head_since_ms: AtomicU64::new(now),
            opened_ms: now,
            lifetime_ms: None,
            idle_since_ms: AtomicU64::new(0),
        });
        // Reached by supersession and abandonment like the pool's own connections.
        pool.register(&conn);
        Ok(conn)
    }

    /// Asks the session whether it can still write, once per [`CHECK_EVERY`]; a session
    /// that says so is known good as of when the question was sent.
    async fn check(&self, pool: &Pool, s: &mut Session) {
        let Some(conn) = s.conn.clone() else { return };
        if s.checked.elapsed() < CHECK_EVERY {
            return;
        }
        s.checked = Instant::now();
        let sent = wall_ms();
        let asked =
            tokio::time::timeout(CHECK_TIMEOUT, conn.client.simple_query(role::PROBE_SQL)).await;
        match asked {
            Ok(Ok(r))
                if role::probe_says_writable(&r)
                    && !role::session_unfit(Mode::ReadWrite, conn.client.state()) =>
            {
                s.good_ms = sent;
            }
            Ok(Ok(_)) => {
                let st = conn.client.state();
                let state = if st.in_hot_standby() {
                    HostState::Standby
                } else {
                    HostState::Fenced
                };
                pool.inner.hosts.set(conn.host, state);
                self.lose(s, "the listening connection's host is read-only");
                pool.suspect();
            }
            Ok(Err(_)) | Err(_) => {
                self.lose(s, "the listening connection did not answer");
                pool.suspect();
            }
        }
    }

    /// Closes the session: the pool ended (`force`), or nobody listens any more (checked
    /// again under the session's lock: a `listen` since keeps it).
    async fn close(&self, force: bool) {
        let mut s = self.session.lock().await;
        if !force && !self.subs().by_channel.is_empty() {
            return;
        }
        self.pid.store(0, Ordering::Release);
        if let Some(c) = s.conn.take() {
            c.client.on_notification(None);
            c.client.close();
        }
        s.listening.clear();
        s.lost_from = None;
    }
}

enum Failure {
    /// No writable primary now (or the session broke): try again.
    Retry(Option<hyperion_wire::Error>),
    /// Retrying will not help.
    Fatal(Error),
}

/// The watcher (module comment). It ends when nobody listens, or the pool ends or is gone.
async fn watch(pool: Weak<Inner>, hub: Arc<Hub>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(inner) = pool.upgrade() else {
            hub.close(true).await;
            return;
        };
        let pool = Pool { inner };
        if pool.is_closed() {
            hub.close(true).await;
            return;
        }
        let nobody = {
            let mut subs = hub.subs();
            let nobody = subs.by_channel.is_empty();
            if nobody {
                subs.watching = false;
            }
            nobody
        };
        if nobody {
            hub.close(false).await;
            return;
        }
        let mut s = hub.session.lock().await;
        let lost = match s.conn.clone() {
            None => true,
            Some(c) => hub.lost(&pool, &c),
        };
        if !lost {
            hub.check(&pool, &mut s).await;
            if s.conn.is_some() {
                continue;
            }
        }
        drop(s);
        // Until it listens again, or nobody listens, or the pool ends.
        let _ = hub.ensure(&pool, None).await;
    }
}

/// One `pool.listen(channel, callback)`: [`Listener::stop`] ends it.
pub struct Listener {
    hub: Arc<Hub>,
    channel: String,
    id: u64,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channel", &self.channel)
            .finish()
    }
}

impl Listener {
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Stops this listener: its callback gets nothing more. The last listener of a channel
    /// UNLISTENs it; the last of the pool closes the session. Idempotent.
    pub async fn stop(&self) -> Result<(), Error> {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.hub.unsubscribe(&self.channel, self.id);
        let mut s = self.hub.session.lock().await;
        // Under the session's lock: a listen() of the same channel since is not undone.
        if self.hub.has(&self.channel) {
            return Ok(());
        }
        if s.listening.remove(&self.channel) && self.hub.subs().by_channel.is_empty() {
            drop(s);
            self.hub.close(false).await;
            return Ok(());
        }
        if let Some(c) = s.conn.clone() {
            if !c.client.is_closed() {
                let sql = format!("UNLISTEN {}", quote_identifier(&self.channel));
                match c.client.simple_query(&sql).await {
                    Ok(_) => {}
                    // The session is gone, and its LISTENs with it.
                    Err(e) if e.is_closed() => {}
                    Err(e) => return Err(Error::Wire(e)),
                }
            }
        }
        if self.hub.subs().by_channel.is_empty() {
            drop(s);
            self.hub.close(false).await;
        }
        Ok(())
    }
}

impl Pool {
    fn hub(&self) -> Arc<Hub> {
        self.inner
            .listen
            .get_or_init(|| Arc::new(Hub::new(&self.inner.config)))
            .clone()
    }

    /// Sends every later listening gap of this pool to `sink` (see [`ListenGap`]).
    pub fn on_listen_gap(&self, sink: GapSink) {
        if let Ok(mut g) = self.hub().gap.write() {
            *g = Some(sink);
        }
    }

    /// Reports a window in which notifications were lost on their way to the application
    /// (an [`crate::Inbox`] that overflowed), to the same sink as a lost session's.
    pub fn report_listen_gap(&self, gap: ListenGap) {
        self.hub().report_gap(gap);
    }

    /// LISTENs on `channel` (matched exactly: it is quoted) and calls `callback` with each
    /// notification on it, across failovers (module comment). Resolves once the LISTEN is in
    /// place, within `acquireTimeoutMs`.
    pub async fn listen(
        &self,
        channel: &str,
        callback: NotificationCallback,
    ) -> Result<Listener, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if channel.is_empty() || channel.contains('\0') {
            return Err(Error::Config(
                "a channel name must be a non-empty string without NUL characters".into(),
            ));
        }
        self.start_monitor();
        let hub = self.hub();
        let (id, start_watch) = hub.subscribe(channel, callback);
        if start_watch {
            tokio::spawn(watch(Arc::downgrade(&self.inner), hub.clone()));
        }
        let deadline = Instant::now() + self.inner.config.acquire_timeout;
        if let Err(e) = hub.ensure(self, Some(deadline)).await {
            let l = Listener {
                hub,
                channel: channel.to_owned(),
                id,
                stopped: AtomicBool::new(false),
            };
            let _ = l.stop().await;
            return Err(e);
        }
        Ok(Listener {
            hub,
            channel: channel.to_owned(),
            id,
            stopped: AtomicBool::new(false),
        })
    }

    /// `select pg_notify(channel, payload)` through the pool's query path.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), Error> {
        let params = [Some(channel), Some(payload)];
        self.query(
            "select pg_notify($1, $2)",
            &params[..],
            QueryOptions::default(),
            None,
        )
        .await?;
        Ok(())
    }

    /// The process id of the listening session, if one is open (tests, diagnostics).
    pub fn listen_process_id(&self) -> Option<i32> {
        let pid = self.inner.listen.get()?.pid.load(Ordering::Acquire);
        (pid != 0).then_some(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::quote_identifier;

    #[test]
    fn channels_are_quoted_as_identifiers() {
        assert_eq!(quote_identifier("jobs"), "\"jobs\"");
        assert_eq!(quote_identifier("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier(""), "\"\"");
    }
}
