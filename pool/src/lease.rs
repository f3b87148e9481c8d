//! Leases: how a query or a transaction gets a connection and gives it back.
//!
//! Connections live in [`Slots`]: `poolSize` places, each governed by one atomic word, so a
//! query or a transaction takes and returns a connection without a lock (see `slots.rs`). A
//! connection is used through a [`Lease`]: *shared* for `pool.query` (many queries
//! pipelined on one socket) or *exclusive* for a transaction (nothing else may run on the
//! session between BEGIN and COMMIT). A pipelined query can never slip into somebody's
//! transaction: a slot grants a shared lease only while it is not held exclusively, and an
//! exclusive one only when it holds no lease at all. Only the slow path locks: exclusive
//! waiters queue in order (a released connection is handed to the first of them directly).
//! A connection returned broken, read-only (on a read-write pool) or inside a transaction is
//! destroyed, never reused.
//!
//! The rules that keep this cancel-safe are types, not comments: a slot reserved for a
//! connection being opened is an [`Opening`] guard (dropped unfinished, the slot is freed),
//! and the waiter counters are [`Counted`] guards (dropped, the count goes down), so a caller
//! whose future is dropped at any await leaves the pool as it found it.

use crate::cancel::Stopper;
use crate::config::Mode;
use crate::error::Error;
use crate::pool::{Pool, NO_HINT};
use crate::role;
use crate::route::{self, RouteError};
use crate::slots::{Reservation, SlotId, SlotLease};
use hyperion_wire::{Client, TransactionStatus};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, Weak};
use std::time::Instant;
use tokio::sync::oneshot;

/// One pooled connection and what the pool tracks of it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    /// Index of its host in the configuration (and the host view).
    pub(crate) host: usize,
    /// When the connection was last seen writable (ms since the pool's epoch).
    pub(crate) validated_at_ms: AtomicU64,
    /// When the statement at the head of its pipeline started, as far as the pool can tell:
    /// when a query took it idle, or when the query before completed (ms since the epoch).
    pub(crate) head_since_ms: AtomicU64,
    /// When it was opened (ms since the pool's epoch).
    pub(crate) opened_ms: u64,
    /// How long it may live: `maxLifetimeMs` less up to a tenth, drawn once.
    pub(crate) lifetime_ms: Option<u64>,
    /// Since when the monitor has seen it idle (ms since the epoch; 0: busy when last seen).
    pub(crate) idle_since_ms: AtomicU64,
}

/// How long the statement at the head of a connection's pipeline may run before the pool
/// stops adding queries behind it. Pipelined statements complete in microseconds to a few
/// milliseconds each under load; one that runs longer than this holds the connection the
/// way a checked-out connection would.
const STALLED_MS: u64 = 100;

impl Conn {
    pub(crate) fn in_flight(&self) -> u32 {
        self.client.state().in_flight()
    }

    /// Busy with one statement for longer than [`STALLED_MS`]: a query joining its pipeline
    /// would wait behind that statement for as long as it runs, so the pool sends it
    /// elsewhere, or makes it wait for a connection (up to `acquireTimeoutMs`).
    fn stalled(&self, shared: u32, now_ms: u64) -> bool {
        (shared > 0 || self.in_flight() > 0)
            && now_ms.saturating_sub(self.head_since_ms.load(Ordering::Relaxed)) > STALLED_MS
    }
}

/// The right to use one connection, shared or exclusive; given back on drop.
pub(crate) struct Lease {
    pool: Pool,
    pub(crate) conn: Arc<Conn>,
    /// `None` for a connection opened for a query that began before `end()`: it never
    /// joined the pool and closes when its last handle goes.
    id: Option<SlotId>,
    pub(crate) exclusive: bool,
}

impl Lease {
    pub(crate) fn client(&self) -> &Client {
        &self.conn.client
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A statement starts at the head of this connection's pipeline now (for an exclusive
    /// lease: the pool's stall watch reads it).
    pub(crate) fn mark_head(&self) {
        self.conn
            .head_since_ms
            .store(self.pool.now_ms(), Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            if self.exclusive {
                self.pool.return_exclusive(id, &self.conn);
            } else {
                self.pool.return_shared(id, &self.conn);
            }
        }
    }
}

/// What a waiter is sent: a connection, or `None` to look again (a slot came free).
/// One count held for as long as the guard lives (the pool's `sleepers` and `waiting`): a
/// caller whose future is dropped at an await still gives its count back.
pub(crate) struct Counted<'a> {
    counter: &'a AtomicUsize,
    order: Ordering,
}

impl<'a> Counted<'a> {
    pub(crate) fn new(counter: &'a AtomicUsize, order: Ordering) -> Counted<'a> {
        counter.fetch_add(1, order);
        Counted { counter, order }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, self.order);
    }
}

/// A place in the line of exclusive waiters (`acquire_exclusive`). Dropped, however the wait
/// ended (its future dropped at an await included), it leaves the line: a connection handed
/// over and not taken goes back to the pool, a "look again" to the next waiter.
struct InLine<'a> {
    pool: &'a Pool,
    rx: oneshot::Receiver<Handoff>,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if let Some((id, conn)) = self.pool.leave_line(&mut self.rx) {
            self.pool.return_exclusive(id, &conn);
        }
    }
}

/// A slot reserved for a connection being opened: installed with the new connection, or
/// freed when the guard is dropped (a failed open, or a caller whose future was dropped
/// mid-connect), and then the pool's waiters look again.
pub(crate) struct Opening<'a> {
    pool: &'a Pool,
    slot: Option<Reservation>,
}

impl<'a> Opening<'a> {
    fn new(pool: &'a Pool, slot: Reservation) -> Opening<'a> {
        Opening {
            pool,
            slot: Some(slot),
        }
    }

    /// Puts `conn` in the reserved slot and leases it.
    fn install(mut self, conn: Arc<Conn>, exclusive: bool) -> Option<SlotLease<Conn>> {
        let slot = self.slot.take()?;
        self.pool.inner.slots.install(slot, conn, exclusive)
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool.inner.slots.cancel(slot);
            self.pool.inner.changed.notify_waiters();
            self.pool.wake_waiter_if_idle();
        }
    }
}

pub(crate) type Handoff = Option<(SlotId, Arc<Conn>)>;

pub(crate) type Waiter = oneshot::Sender<Handoff>;

impl Pool {
    pub(crate) fn waiters(&self) -> MutexGuard<'_, VecDeque<Waiter>> {
        // Every critical section is a push, a pop or a drain: a panic cannot leave the queue
        // inconsistent, so a poisoned lock is still usable.
        self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lease(&self, l: SlotLease<Conn>) -> Lease {
        Lease {
            pool: self.clone(),
            conn: l.item,
            id: Some(l.id),
            exclusive: l.exclusive,
        }
    }

    pub(crate) fn timed_out(&self, start: Instant) -> Error {
        if self.inner.slots.ready() == 0 {
            self.no_node_error(start, None)
        } else {
            Error::AcquireTimeout {
                ms: self.inner.config.acquire_timeout.as_millis(),
            }
        }
    }

    /// Whether new work may go to `conn`: its host was not seen unfit for the mode since.
    pub(crate) fn usable(&self, conn: &Conn) -> bool {
        role::fits(self.inner.config.mode, self.inner.hosts.state(conn.host))
    }

    /// Drops connections whose socket is gone.
    pub(crate) fn purge_closed(&self) {
        for c in self.inner.slots.remove_if(|c| c.client.is_closed()) {
            c.client.close();
        }
    }

    /// A shared lease for a query: an idle connection, else a new one while a slot is free,
    /// else the least loaded connection not held by a transaction (its pipeline provides the
    /// backpressure) whose current statement is not a long one ([`Conn::stalled`]). Waits,
    /// up to `acquireTimeoutMs` (then 53300), only when every connection is exclusive,
    /// stalled or still being opened.
    ///
    /// `now_ms` is the time of the call (ms since the pool's epoch), which the caller read
    /// anyway.
    pub(crate) async fn acquire_shared(
        &self,
        start: Instant,
        deadline: Instant,
        mut now_ms: u64,
    ) -> Result<Lease, Error> {
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            // The common case takes no registration at all.
            if let Some(next) = self.pick_shared(now_ms) {
                return self.take_shared(next, start, deadline).await;
            }
            // Slow path: register as a sleeper, then look again, so that a release that
            // happens after the look sees us and notifies (the fences pair with
            // `notify_sleepers`).
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let sleeping = Counted::new(&self.inner.sleepers, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            self.purge_closed();
            if let Some(next) = self.pick_shared(self.now_ms()) {
                drop(sleeping);
                return self.take_shared(next, start, deadline).await;
            }
            let woke = {
                let _waiting = Counted::new(&self.inner.waiting, Ordering::AcqRel);
                tokio::time::timeout_at(deadline.into(), notified).await
            };
            drop(sleeping);
            if woke.is_err() {
                return Err(self.timed_out(start));
            }
            now_ms = self.now_ms();
        }
    }

    /// An idle connection's shared lease, else a free slot to open one in, else the least
    /// loaded connection not held by a transaction nor stalled; `None` when every connection
    /// is held exclusively, stalled or being opened, and no slot is free.
    fn pick_shared(&self, now: u64) -> Option<Result<SlotLease<Conn>, Opening<'_>>> {
        // Closed connections are skipped here and purged on the slow path; so are stalled
        // ones (a long statement at the head of the pipeline).
        let drain = self.inner.draining.load(Ordering::Relaxed);
        let fits = |c: &Conn, shared: u32| {
            !c.client.is_closed()
                && !c.stalled(shared, now)
                && self.usable(c)
                && (drain == 0 || !std::ptr::eq(c, drain as *const Conn))
        };
        // First by the slot words alone (one connection looked at, not every one): the one
        // with the fewest leases, if it fits and, without leases, is idle. When it holds
        // leases, so does every other: none is idle, and joining the least loaded pipeline is
        // what the full scan would do too. Otherwise the full scan decides.
        let best = self
            .inner
            .slots
            .share_least(|c, shared| fits(c, shared) && (shared > 0 || c.in_flight() == 0))
            .or_else(|| {
                self.inner.slots.share_best(|c, shared| {
                    if !fits(c, shared) {
                        return None;
                    }
                    let load = c.in_flight();
                    Some(if shared == 0 && load == 0 {
                        0
                    } else {
                        u64::from(load) + 1
                    })
                })
            });
        match best {
            // Idle: no request in flight, and no other lease (a query that took the
            // connection an instant ago may not have handed its request to the loop yet:
            // on the JS thread's executor the loop runs after every query of the turn).
            Some(l) if l.item.in_flight() == 0 && self.inner.slots.shared(l.id) <= 1 => {
                // The head starts now.
                l.item.head_since_ms.store(now, Ordering::Relaxed);
                Some(Ok(l))
            }
            // Busy: a free slot (a new connection) beats joining a pipeline.
            Some(l) => match self.inner.slots.reserve() {
                Some(r) => {
                    drop(self.lease(l));
                    Some(Err(Opening::new(self, r)))
                }
                None => Some(Ok(l)),
            },
            None => self
                .inner
                .slots
                .reserve()
                .map(|r| Err(Opening::new(self, r))),
        }
    }

    async fn take_shared(
        &self,
        next: Result<SlotLease<Conn>, Opening<'_>>,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        match next {
            Ok(l) => Ok(self.lease(l)),
            // Boxed: opening a connection (routing, connect, startup) is a large state
            // machine, and inline it made every query's future that large (6.5 KB moved and
            // allocated per query) for a path few queries take.
            Err(r) => Box::pin(self.open(r, false, start, deadline)).await,
        }
    }

    /// An exclusive lease for a query that can be stopped (see `cancel.rs`), unless the stop
    /// fires first. The acquisition runs in a task of its own: opening a connection is not
    /// to be cut short halfway (its slot is reserved), so a stop leaves it to finish, and the
    /// lease it gets then goes straight back to the pool.
    pub(crate) async fn acquire_stoppable(
        &self,
        stopper: &Stopper,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        stopper.check()?;
        let pool = self.clone();
        // Dropped when this returns: a stopped query leaves the line of waiters at once (it
        // is no checkout anyone waits for), but not a connection it is opening.
        let (_stay, leave) = oneshot::channel::<()>();
        let mut acquiring =
            tokio::spawn(async move { pool.acquire_exclusive(start, deadline, Some(leave)).await });
        tokio::select! {
            biased;
            got = &mut acquiring => match got {
                Ok(lease) => lease,
                // The task never panics (no panics in this crate); a runtime shutting down
                // ends it.
                Err(e) => Err(Error::Wire(hyperion_wire::Error::closed(
                    format!("acquiring a connection failed: {e}"),
                    false,
                ))),
            },
            stop = stopper.fired() => Err(Error::not_sent(stop)),
        }
    }

    /// An exclusive lease (for a transaction): an idle connection, else a new one while a
    /// slot is free, else wait in line until one is released, up to `acquireTimeoutMs`
    /// (then 53300).
    ///
    /// With `leave`, waiting in line ends when its sender is dropped (the caller stopped):
    /// then the result is an error nobody reads, and a connection handed over meanwhile goes
    /// back to the pool.
    pub(crate) async fn acquire_exclusive(
        &self,
        start: Instant,
        deadline: Instant,
        mut leave: Option<oneshot::Receiver<()>>,
    ) -> Result<Lease, Error> {
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            self.purge_closed();
            if let Some(l) = self
                .inner
                .slots
                .take_first(|c| c.in_flight() == 0 && self.usable(c))
            {
                return Ok(self.lease(l));
            }
            if let Some(r) = self.inner.slots.reserve() {
                return self
                    .open(Opening::new(self, r), true, start, deadline)
                    .await;
            }
            let (tx, rx) = oneshot::channel();
            {
                // Under the line's lock, as every change of the drain is.
                let mut waiters = self.waiters();
                waiters.push_back(tx);
                self.choose_drain();
            }
            // Whatever ends the wait, this future dropped at an await included (a stop
            // racing it, `before_sending`), leaves the line cleanly: a connection handed
            // over and not taken goes back, a "look again" goes to the next waiter.
            let mut line = InLine { pool: self, rx };
            let rx = &mut line.rx;
            // A connection freed between the look above and the push would have found no
            // waiter: look once more now that we are in line.
            if let Some(l) = self
                .inner
                .slots
                .take_first(|c| c.in_flight() == 0 && self.usable(c))
            {
                // (Handed one as well: `line` gives it back.)
                return Ok(self.lease(l));
            }
            let got = {
                let _waiting = Counted::new(&self.inner.waiting, Ordering::AcqRel);
                match leave.as_mut() {
                    Some(leave) => tokio::select! {
                        biased;
                        got = tokio::time::timeout_at(deadline.into(), &mut *rx) => Some(got),
                        _ = leave => None,
                    },
                    None => Some(tokio::time::timeout_at(deadline.into(), &mut *rx).await),
                }
            };
            let Some(got) = got else {
                // (`line` gives back a connection handed over meanwhile.)
                return Err(self.timed_out(start));
            };
            match got {
                Ok(Ok(Some((id, conn)))) => return Ok(self.handed(id, conn)),
                Ok(Ok(None)) | Ok(Err(_)) => {}
                Err(_) => {
                    // A connection sent just as we gave up is ours after all: taking it
                    // beats leaking it held exclusively.
                    if let Some((id, conn)) = self.leave_line(rx) {
                        return Ok(self.handed(id, conn));
                    }
                    return Err(self.timed_out(start));
                }
            }
        }
    }

    /// Leaves the line of waiters: a connection handed over meanwhile is returned to the
    /// caller, a "look again" (a slot came free) sent meanwhile is passed to the next waiter.
    fn leave_line(&self, rx: &mut oneshot::Receiver<Handoff>) -> Option<(SlotId, Arc<Conn>)> {
        rx.close();
        match rx.try_recv() {
            Ok(Some(handed)) => Some(handed),
            Ok(None) => {
                self.wake_waiter();
                None
            }
            Err(_) => None,
        }
    }

    fn handed(&self, id: SlotId, conn: Arc<Conn>) -> Lease {
        Lease {
            pool: self.clone(),
            conn,
            id: Some(id),
            exclusive: true,
        }
    }

    /// Gives a connection held exclusively to the first live waiter.
    fn hand_off(&self, id: SlotId, conn: &Arc<Conn>) -> bool {
        let mut waiters = self.waiters();
        while let Some(w) = waiters.pop_front() {
            if w.send(Some((id, conn.clone()))).is_ok() {
                // The connection drained for the line may have gone to its first waiter:
                // another one drains for the rest.
                if waiters.is_empty() {
                    self.inner.draining.store(0, Ordering::Relaxed);
                } else {
                    self.choose_drain();
                }
                return true;
            }
        }
        self.inner.draining.store(0, Ordering::Relaxed);
        false
    }

    /// Tells the first live waiter to look again (a slot was freed, so it may open one).
    pub(crate) fn wake_waiter(&self) {
        let mut waiters = self.waiters();
        while let Some(w) = waiters.pop_front() {
            if w.send(None).is_ok() {
                if waiters.is_empty() {
                    self.inner.draining.store(0, Ordering::Relaxed);
                }
                return;
            }
        }
        self.inner.draining.store(0, Ordering::Relaxed);
    }

    /// Picks the connection that stops taking shared queries while exclusive checkouts wait
    /// (called under the line's lock): the least loaded one that serves queries and is not
    /// stalled on a long statement, so that it empties first. Its last query's return hands
    /// it to the line (`return_shared`). None when no connection qualifies (every one held
    /// exclusively: its release hands it over anyway), and none when it would be the last
    /// connection serving queries while queries sleep for one.
    fn choose_drain(&self) {
        let now = self.now_ms();
        let serving: Vec<_> = self
            .inner
            .slots
            .snapshot()
            .into_iter()
            .filter(|v| !v.exclusive && !v.item.client.is_closed() && self.usable(&v.item))
            .collect();
        let sleeping = self.inner.sleepers.load(Ordering::Relaxed) > 0;
        let best = if serving.len() == 1 && sleeping {
            0
        } else {
            serving
                .iter()
                .filter(|v| !v.item.stalled(v.shared, now))
                .min_by_key(|v| v.item.in_flight())
                .map_or(0, |v| Arc::as_ptr(&v.item) as usize)
        };
        self.inner.draining.store(best, Ordering::Relaxed);
    }

    /// Whether a returned connection can serve again.
    pub(crate) fn reusable(&self, id: SlotId, conn: &Conn) -> bool {
        let st = conn.client.state();
        !conn.client.is_closed()
            && st.in_flight() == 0
            && st.transaction_status() == TransactionStatus::Idle
            && !st.client_encoding_changed()
            && !self.fenced(&conn.client)
            && !self.is_closed()
            && self.inner.slots.is_current(id)
    }

    fn notify_sleepers(&self) {
        // Orders the slot release before reading `sleepers` (pairs with the fence in
        // `acquire_shared`): either the sleeper's re-check sees the release, or we see it.
        fence(Ordering::SeqCst);
        if self.inner.sleepers.load(Ordering::SeqCst) > 0 {
            self.inner.changed.notify_waiters();
        }
    }

    fn return_exclusive(&self, id: SlotId, conn: &Arc<Conn>) {
        if !self.reusable(id, conn) {
            // Broken, fenced, mid-transaction or mid-query: destroy it, never reuse it.
            self.remove(id, conn);
            return;
        }
        if self.hand_off(id, conn) {
            return;
        }
        self.inner.slots.release(id, true);
        self.notify_sleepers();
        // A waiter may have queued between hand_off and the release.
        if !self.waiters().is_empty() {
            if let Some(l) = self.inner.slots.try_take(id.index) {
                if !self.hand_off(l.id, &l.item) {
                    self.inner.slots.release(l.id, true);
                }
            }
        }
    }

    fn return_shared(&self, id: SlotId, conn: &Arc<Conn>) {
        // This query's response is complete: the next one in the pipeline is at its head
        // now. A connection that was stalled takes queries again, so sleepers look again.
        let now = self.now_ms();
        let was_stalled =
            now.saturating_sub(conn.head_since_ms.swap(now, Ordering::Relaxed)) > STALLED_MS;
        if self.inner.slots.release(id, false) != Some(0) {
            if was_stalled {
                self.notify_sleepers();
            }
            return;
        }
        // Last user gone: a waiting transaction may have it.
        if conn.in_flight() == 0 && !self.waiters().is_empty() {
            if let Some(l) = self.inner.slots.try_take(id.index) {
                if !(self.reusable(l.id, &l.item) && self.hand_off(l.id, &l.item)) {
                    self.inner.slots.release(l.id, true);
                }
            }
        }
        // Drained for a line that is gone (its waiters served another way): it serves
        // queries again.
        if self.inner.draining.load(Ordering::Relaxed) == Arc::as_ptr(conn) as usize {
            let waiters = self.waiters();
            if waiters.is_empty() {
                self.inner.draining.store(0, Ordering::Relaxed);
            }
        }
        self.notify_sleepers();
    }

    /// Opens a connection for a reserved slot, retrying with backoff while no node fits the
    /// mode (mid-election) until the deadline.
    async fn open(
        &self,
        slot: Opening<'_>,
        exclusive: bool,
        start: Instant,
        deadline: Instant,
    ) -> Result<Lease, Error> {
        let cfg = &self.inner.config;
        let mut attempt = 0;
        // The last connect error of any attempt: later attempts may skip the hosts seen down,
        // and the caller still learns why they are down.
        let mut last_error = None;
        // Counted for `end({ timeoutMs })`, which waits for opens too, and gives them up.
        let _opening = Counted::new(&self.inner.opening, Ordering::AcqRel);
        let opened = loop {
            let hint = self.inner.primary_hint.load(Ordering::Relaxed);
            let hint = (hint != NO_HINT).then_some(hint);
            // Bounded by the caller's deadline too: a host that accepts TCP and never answers
            // (hung) would otherwise hold it for connectTimeoutMs a host tried, past
            // acquireTimeoutMs. (The slot is freed with `slot` if this gives up.)
            let connect = tokio::time::timeout_at(
                deadline.into(),
                route::connect_for(cfg, hint, &self.inner.hosts, || self.open_per_host()),
            );
            let abandoned = async {
                loop {
                    // Made before the flag is read: `notify_waiters` wakes it even unpolled.
                    let signalled = self.inner.abandon.notified();
                    if self.inner.abandoned.load(Ordering::Acquire) {
                        return;
                    }
                    signalled.await;
                }
            };
            let routed = tokio::select! {
                r = connect => r,
                () = abandoned => break Err(Error::Closed),
            };
            let Ok(routed) = routed else {
                self.suspect();
                let waited = hyperion_wire::Error::connect_timeout(format!(
                    "connecting was still under way at acquireTimeoutMs ({} ms)",
                    cfg.acquire_timeout.as_millis()
                ));
                break Err(self.no_node_error(start, Some(waited)));
            };
            match routed {
                Ok((client, host)) => {
                    if cfg.mode == Mode::ReadWrite {
                        self.inner.primary_hint.store(host, Ordering::Relaxed);
                    }
                    let conn = Arc::new(Conn {
                        client,
                        host,
                        // Routing just checked it.
                        validated_at_ms: AtomicU64::new(self.now_ms()),
                        head_since_ms: AtomicU64::new(self.now_ms()),
                        opened_ms: self.now_ms(),
                        lifetime_ms: cfg.max_lifetime.map(|l| {
                            let ms = u64::try_from(l.as_millis()).unwrap_or(u64::MAX);
                            ms - (ms / 10).min((rand::random::<f64>() * (ms / 10) as f64) as u64)
                        }),
                        idle_since_ms: AtomicU64::new(0),
                    });
                    self.register(&conn);
                    break Ok(conn);
                }
                Err(RouteError::Fatal(e)) => break Err(Error::Wire(e)),
                Err(RouteError::NoMatch(last)) => {
                    // No host fits (mid-election, or the hosts seen down): ask them all.
                    self.suspect();
                    if last.is_some() {
                        last_error = last;
                    }
                    let give_up = match cfg.mode {
                        Mode::ReadWrite => false,
                        _ => attempt + 1 >= cfg.retry.max_attempts,
                    };
                    let now = Instant::now();
                    if give_up || now >= deadline || self.is_closed() {
                        break Err(self.no_node_error(start, last_error));
                    }
                    // The last wait ends at the deadline, with one more try: the window is
                    // used to its end, not cut short by the length of a backoff step.
                    tokio::time::sleep(cfg.retry.delay(attempt).min(deadline - now)).await;
                    attempt += 1;
                }
            }
        };
        let result = match opened {
            // A query that began before end() still runs on the connection it opened; after
            // end() that connection does not join the pool, and it sends Terminate when the
            // query drops the last handle to it.
            Ok(conn) if self.is_closed() => {
                drop(slot);
                Ok(Lease {
                    pool: self.clone(),
                    conn,
                    id: None,
                    exclusive,
                })
            }
            Ok(conn) => match slot.install(conn.clone(), exclusive) {
                Some(l) => Ok(self.lease(l)),
                None => {
                    // Unreachable for a reservation from this pool's slots.
                    conn.client.close();
                    Err(Error::Closed)
                }
            },
            // The guard frees the slot.
            Err(e) => Err(e),
        };
        self.inner.changed.notify_waiters();
        self.wake_waiter_if_idle();
        result
    }

    /// After a slot changed hands: if a waiter is queued and a connection is free, move it.
    fn wake_waiter_if_idle(&self) {
        if self.waiters().is_empty() {
            return;
        }
        if let Some(l) = self
            .inner
            .slots
            .take_first(|c| c.in_flight() == 0 && self.usable(c))
        {
            if !self.hand_off(l.id, &l.item) {
                self.inner.slots.release(l.id, true);
            }
        } else if self.inner.slots.ready() + self.inner.slots.reserved()
            < self.inner.config.pool_size
        {
            self.wake_waiter();
        }
    }

    pub(crate) fn remove(&self, id: SlotId, conn: &Arc<Conn>) {
        self.inner.slots.remove(id);
        if self.inner.config.mode == Mode::ReadWrite {
            let _ = self.inner.primary_hint.compare_exchange(
                conn.host,
                NO_HINT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        conn.client.close();
        self.inner.changed.notify_waiters();
        self.wake_waiter();
    }

    pub(crate) fn evict(&self, lease: &Lease) {
        match lease.id {
            Some(id) => self.remove(id, &lease.conn),
            None => lease.conn.client.close(),
        }
    }

    pub(crate) fn register(&self, conn: &Arc<Conn>) {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|w| w.strong_count() > 0);
        conns.push(Arc::downgrade(conn));
    }

    /// How many live connections the pool has to each host, by host index.
    fn open_per_host(&self) -> Vec<usize> {
        let mut open = vec![0; self.inner.config.hosts.len()];
        for c in self.unpooled() {
            if let Some(n) = open.get_mut(c.host).filter(|_| !c.client.is_closed()) {
                *n += 1;
            }
        }
        open
    }

    /// Every live connection the pool opened, pooled or not.
    pub(crate) fn unpooled(&self) -> Vec<Arc<Conn>> {
        let conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.iter().filter_map(Weak::upgrade).collect()
    }
}
