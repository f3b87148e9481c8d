//! Finding the primary again when a host is lost, hung or replaced.
//!
//! A host that loses power or is partitioned away sends nothing, and a hung one (stopped,
//! swapping) still has its kernel acknowledge TCP: neither breaks a socket for a long time.
//! What the pool can see is work that waits. So:
//!
//! * **Suspicion.** A monitor task looks at the connections every [`TICK`]: a statement at
//!   the head of a pipeline for longer than [`SUSPECT_MS`] makes its host suspect. So does a
//!   broken connection, or a failed connect (reported by the query paths).
//! * **Discovery.** Suspicion asks every host, in parallel and on fresh connections with a
//!   short timeout, what it is ([`route::probe_host`]). Each host speaks only for itself. The
//!   answers update the host view (`hosts.rs`) as they arrive.
//! * **Supersession.** In a read-write pool, as soon as a host other than the ones the pool's
//!   connections use answers "writable primary" (and none of those was confirmed writable
//!   meanwhile), the old hosts are superseded: their connections are abandoned
//!   ([`hyperion_wire::Client::abort`]), not waited for. Their callers settle at once: what provably never reached the server and what may
//!   safely run twice run again on the new primary; a write that may have reached the old host
//!   is reported `IN_DOUBT` (`pool.rs`).
//! * **Down hosts.** Idle connections to a host seen fenced, in recovery (read-write pool) or
//!   unreachable are closed at once, and checkout skips that host until it is seen healthy
//!   again. Work stuck for half of `acquireTimeoutMs` on a host that a probe found
//!   unreachable is abandoned too (the other half is for running it again elsewhere), so
//!   nothing waits for the kernel to give up on a hung host.
//!
//! A stall whose host answers the probe as healthy is a long statement, not a lost host: that
//! host is not probed again for a stall for [`QUIET_MS`].

use crate::config::Mode;
use crate::hosts::{wall_ms, HostEvent, HostState};
use crate::lease::Conn;
use crate::pool::Pool;
use crate::role;
use crate::route::{self, probe_host};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the monitor looks at the connections.
const TICK: Duration = Duration::from_millis(100);
/// How long a statement may sit at the head of a pipeline before its host is suspect. Long
/// enough that a busy healthy server rarely trips it; a tripped one costs one probe round.
pub(crate) const SUSPECT_MS: u64 = 500;
/// Least time between two discovery rounds.
const SPACING_MS: u64 = 200;
/// A host that answered a probe healthy is not probed again for a stall for this long.
const QUIET_MS: u64 = 3000;
/// The longest a probe waits for a host (shorter when `connectTimeoutMs` is).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

impl Pool {
    /// Starts the monitor task once, on the current runtime (from the first checkout: the
    /// pool itself may be made outside any runtime). It ends when the pool is closed or gone.
    pub(crate) fn start_monitor(&self) {
        // Called by every query: a read, not a locked write, once the monitor runs.
        if self.inner.monitor_started.load(Ordering::Acquire)
            || self.inner.monitor_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.monitor_started.store(false, Ordering::Release);
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let Some(inner) = weak.upgrade() else { return };
                let pool = Pool { inner };
                if pool.is_closed() {
                    return;
                }
                pool.watch();
            }
        });
    }

    /// One look at the connections: suspect the hosts of stalled ones, abandon work stuck for
    /// half of `acquireTimeoutMs` on a host that a probe found unreachable.
    fn watch(&self) {
        let now = self.now_ms();
        let wall = wall_ms();
        let hosts = &self.inner.hosts;
        // Half the budget: running the abandoned work again elsewhere needs the other half.
        let give_up_ms =
            u64::try_from(self.inner.config.acquire_timeout.as_millis() / 2).unwrap_or(u64::MAX);
        let mut suspect = false;
        for v in self.inner.slots.snapshot() {
            let c = &v.item;
            if c.client.is_closed() || c.in_flight() == 0 {
                continue;
            }
            let stalled_for = now.saturating_sub(c.head_since_ms.load(Ordering::Relaxed));
            if stalled_for > SUSPECT_MS && !hosts.quiet(c.host, wall) {
                suspect = true;
            }
            if hosts.state(c.host) == HostState::Unreachable && stalled_for >= give_up_ms {
                self.abandon_host(
                    c.host,
                    &format!(
                        "{} answers no probe and its statement has waited {stalled_for}ms: \
                         the connection was abandoned",
                        hosts.name(c.host)
                    ),
                    true,
                );
            }
        }
        if suspect {
            self.suspect();
        }
        self.retire(now);
    }

    /// Closes idle connections past `idleTimeoutMs` (above `min_connections`) or past their
    /// lifetime. Only idle ones: a connection in use finishes its work first, and is looked
    /// at again on a later tick.
    fn retire(&self, now: u64) {
        let cfg = &self.inner.config;
        let idle_ms = cfg
            .idle_timeout
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let view = self.inner.slots.snapshot();
        let mut size = view.len();
        let mut retired = 0u64;
        for v in view {
            let c = &v.item;
            let idle = v.shared == 0 && !v.exclusive && c.in_flight() == 0;
            if !idle {
                c.idle_since_ms.store(0, Ordering::Relaxed);
                continue;
            }
            let since = match c.idle_since_ms.load(Ordering::Relaxed) {
                0 => {
                    c.idle_since_ms.store(now.max(1), Ordering::Relaxed);
                    now
                }
                t => t,
            };
            let too_old = c
                .lifetime_ms
                .is_some_and(|l| now.saturating_sub(c.opened_ms) >= l);
            let idle_too_long = idle_ms.is_some_and(|l| now.saturating_sub(since) >= l)
                && size > cfg.min_connections;
            if (too_old || idle_too_long) && self.inner.slots.remove_unheld(v.id).is_some() {
                c.client.close();
                size -= 1;
                retired += 1;
            }
        }
        if retired > 0 {
            self.inner.changed.notify_waiters();
            self.wake_waiter();
        }
    }

    /// Something looks wrong (a stall, a broken connection, a failed connect): ask every
    /// host what it is, at most once per [`SPACING_MS`]. Each host has at most one probe
    /// under way: a probe waiting out a dead host's timeout does not hold back the next
    /// look at the others, so a promotion is seen within a spacing of when it happens.
    pub(crate) fn suspect(&self) {
        let now = self.now_ms().max(1);
        let last = self.inner.last_discovery_ms.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < SPACING_MS {
            return;
        }
        if self
            .inner
            .last_discovery_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another caller started this round
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let round = wall_ms();
        for i in 0..self.inner.config.hosts.len() {
            if self.inner.hosts.start_probe(i) {
                let pool = self.clone();
                rt.spawn(async move {
                    pool.probe(i, round).await;
                    pool.inner.hosts.end_probe(i);
                });
            }
        }
    }

    /// Asks host `i` what it is and acts on the answer (see the module comment).
    async fn probe(&self, i: usize, round: u64) {
        let cfg = &self.inner.config;
        let hosts = &self.inner.hosts;
        let timeout = PROBE_TIMEOUT.min(cfg.connect_timeout);
        match probe_host(cfg, i, timeout).await {
            Ok(role) => {
                hosts.set(i, role.state());
                if !self.fits(role.state()) {
                    self.close_idle(i);
                } else {
                    // Healthy: a stall on it is a long statement, not a lost host.
                    hosts.set_quiet_until(i, wall_ms() + QUIET_MS);
                }
                if role.writable() && cfg.mode == Mode::ReadWrite {
                    self.supersede(i, round);
                }
            }
            Err(e) if route::unreachable(&e) => {
                hosts.set(i, HostState::Unreachable);
                self.close_idle(i);
            }
            // It answered, with a refusal (a wrong password, a protocol error): it is up, and
            // the pool's own connects will report why.
            Err(_) => {}
        }
    }

    /// Host `primary` answered "writable primary": every other host the pool's connections
    /// use is superseded (its connections abandoned, the primary hint moved), unless it too
    /// was confirmed writable since the round began (two writable hosts: nothing is certain,
    /// so nothing is abandoned).
    fn supersede(&self, primary: usize, round: u64) {
        let hosts = &self.inner.hosts;
        let mut old: Vec<usize> = self
            .inner
            .slots
            .snapshot()
            .iter()
            .map(|v| v.item.host)
            .filter(|&h| h != primary)
            .collect();
        old.sort_unstable();
        old.dedup();
        let confirmed_writable =
            |h: usize| hosts.state(h) == HostState::Primary && hosts.confirmed_ms(h) >= round;
        if old.iter().any(|&h| confirmed_writable(h)) {
            return;
        }
        self.inner.primary_hint.store(primary, Ordering::Release);
        for h in old {
            let n = self.abandon_host(
                h,
                &format!(
                    "{} was superseded by {} as the writable primary: the connection was abandoned",
                    hosts.name(h),
                    hosts.name(primary)
                ),
                false,
            );
            if n > 0 {
                let mut e = HostEvent::new("host-superseded", hosts.name(h));
                e.by = Some(hosts.name(primary));
                hosts.emit(e);
            }
        }
    }

    fn fits(&self, state: HostState) -> bool {
        role::fits(self.inner.config.mode, state)
    }

    /// Closes the idle connections to host `i` (none in use: a transaction open on a fenced
    /// node stays writable, and finishes).
    pub(crate) fn close_idle(&self, i: usize) {
        let mut n = 0;
        for v in self.inner.slots.snapshot() {
            if v.item.host == i && v.shared == 0 && !v.exclusive && v.item.in_flight() == 0 {
                if let Some(c) = self.inner.slots.remove_unheld(v.id) {
                    c.client.close();
                    n += 1;
                }
            }
        }
        self.evicted(i, n);
    }

    /// Abandons every connection to host `i` (or, with `stalled_only`, those with work in
    /// flight): their requests fail at once as lost connections, and the slots are freed.
    /// Returns how many.
    pub(crate) fn abandon_host(&self, i: usize, reason: &str, stalled_only: bool) -> u64 {
        let mut n = 0;
        for v in self.inner.slots.snapshot() {
            let c: &Arc<Conn> = &v.item;
            if c.host != i || (stalled_only && c.in_flight() == 0) {
                continue;
            }
            c.client.abort(reason);
            self.inner.slots.remove(v.id);
            n += 1;
        }
        for c in self.unpooled() {
            if c.host == i {
                c.client.abort(reason);
            }
        }
        self.evicted(i, n);
        n
    }

    fn evicted(&self, i: usize, n: u64) {
        if n == 0 {
            return;
        }
        let mut e = HostEvent::new("connections-evicted", self.inner.hosts.name(i));
        e.count = Some(n);
        self.inner.hosts.emit(e);
        self.inner.changed.notify_waiters();
        self.wake_waiter();
    }
}
