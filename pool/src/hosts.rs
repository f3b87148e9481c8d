//! One pool-wide view of the cluster's hosts: what each one was last seen to be, and since when.
//!
//! Every connection feeds it (a successful statement confirms its host's role, a `25006` or a
//! read-only ParameterStatus marks it fenced, a broken socket makes it suspect, a failed connect
//! marks it unreachable), and so do discovery probes (`discovery.rs`), which ask each host about
//! itself and never trust one node's view of the others. Routing and checkout read it: no new
//! work goes to a host seen fenced, in recovery (for a read-write pool) or unreachable until it is
//! seen healthy again. This is the shape of Npgsql's per-host state and of AWS's connection
//! tracker: one view, kept without locks on the hot path (a few atomics per host).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where failover events go (the JS `onEvent` hook, or a test's collector).
pub type EventSink = Arc<dyn Fn(HostEvent) + Send + Sync>;

/// What a host was last seen to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Not seen yet.
    Unknown = 0,
    /// Out of recovery and accepting writes.
    Primary = 1,
    /// In recovery (a streaming standby).
    Standby = 2,
    /// Out of recovery but read-only: a demoted primary fenced by the replication manager.
    Fenced = 3,
    /// Did not answer: connect refused or timed out, or a probe got no reply in time.
    Unreachable = 4,
}

impl HostState {
    fn from_u8(v: u8) -> HostState {
        match v {
            1 => HostState::Primary,
            2 => HostState::Standby,
            3 => HostState::Fenced,
            4 => HostState::Unreachable,
            _ => HostState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Unknown => "unknown",
            HostState::Primary => "primary",
            HostState::Standby => "standby",
            HostState::Fenced => "fenced",
            HostState::Unreachable => "unreachable",
        }
    }
}

/// Something operators want to see in a failover, with when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    /// `host-down`, `host-fenced`, `host-standby`, `primary-found`, `host-superseded`,
    /// `connections-evicted`.
    pub kind: &'static str,
    /// The host it is about (`host:port`).
    pub host: String,
    /// For `host-superseded`: the host that is the writable primary now.
    pub by: Option<String>,
    /// For `connections-evicted`: how many.
    pub count: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl HostEvent {
    pub fn new(kind: &'static str, host: String) -> HostEvent {
        HostEvent {
            kind,
            host,
            by: None,
            count: None,
            at_ms: wall_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Default)]
struct Entry {
    state: AtomicU8,
    /// When the state was last confirmed by a connection or a probe (wall ms; 0: never).
    confirmed_ms: AtomicU64,
    /// When the host went unreachable (wall ms; 0: it is not).
    down_since_ms: AtomicU64,
    /// Until when a stall on this host does not start another discovery: a probe just found
    /// it healthy, so the stall is a long statement, not a lost host (wall ms).
    quiet_until_ms: AtomicU64,
    /// A discovery probe of this host is under way.
    probing: AtomicBool,
    /// Connection attempts to this host under way (routing spreads new connections by them).
    opening: AtomicU32,
}

/// An attempt to connect to one host, counted in the view while it lasts.
pub struct OpenAttempt<'a> {
    hosts: &'a Hosts,
    i: usize,
}

impl Drop for OpenAttempt<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.hosts.entries.get(self.i) {
            e.opening.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What `pool.hosts()` reports of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub host: String,
    pub state: HostState,
    /// Wall ms of the last confirmation, if any.
    pub confirmed_at_ms: Option<u64>,
    /// Wall ms since which the host has been unreachable, if it is.
    pub down_since_ms: Option<u64>,
}

/// The view: one entry per configured host, by index.
pub struct Hosts {
    entries: Box<[Entry]>,
    names: Box<[String]>,
    sink: RwLock<Option<EventSink>>,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts").field("names", &self.names).finish()
    }
}

impl Hosts {
    /// A view of the hosts named `names` (`host:port`), all unknown.
    pub fn new(names: Vec<String>) -> Hosts {
        Hosts {
            entries: names.iter().map(|_| Entry::default()).collect(),
            names: names.into(),
            sink: RwLock::new(None),
        }
    }

    /// Sends every later event to `sink`.
    pub fn set_sink(&self, sink: EventSink) {
        if let Ok(mut s) = self.sink.write() {
            *s = Some(sink);
        }
    }

    /// Reports an event, if anyone listens.
    pub fn emit(&self, event: HostEvent) {
        let sink = self.sink.read().ok().and_then(|s| s.clone());
        if let Some(sink) = sink {
            sink(event);
        }
    }

    pub fn name(&self, i: usize) -> String {
        self.names.get(i).cloned().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn state(&self, i: usize) -> HostState {
        self.entries
            .get(i)
            .map(|e| HostState::from_u8(e.state.load(Ordering::Acquire)))
            .unwrap_or(HostState::Unknown)
    }

    /// Records what host `i` was just seen to be, and reports a change as an event; returns
    /// the previous state when it changed.
    pub fn set(&self, i: usize, state: HostState) -> Option<HostState> {
        let changed = self.record(i, state);
        if changed.is_some() {
            let kind = match state {
                HostState::Primary => "primary-found",
                HostState::Standby => "host-standby",
                HostState::Fenced => "host-fenced",
                HostState::Unreachable => "host-down",
                HostState::Unknown => "host-unknown",
            };
            self.emit(HostEvent::new(kind, self.name(i)));
        }
        changed
    }

    fn record(&self, i: usize, state: HostState) -> Option<HostState> {
        let e = self.entries.get(i)?;
        let now = wall_ms();
        e.confirmed_ms.store(now, Ordering::Release);
        if state == HostState::Unreachable {
            let _ = e
                .down_since_ms
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        } else {
            e.down_since_ms.store(0, Ordering::Release);
        }
        // Every successful query confirms its host: a read leaves the common case (no
        // change) without a locked swap.
        if e.state.load(Ordering::Acquire) == state as u8 {
            return None;
        }
        let before = HostState::from_u8(e.state.swap(state as u8, Ordering::AcqRel));
        (before != state).then_some(before)
    }

    /// How long host `i` has been unreachable, in ms (0 when it is not).
    pub fn down_for_ms(&self, i: usize, now_ms: u64) -> u64 {
        match self.entries.get(i) {
            Some(e) => match e.down_since_ms.load(Ordering::Acquire) {
                0 => 0,
                since => now_ms.saturating_sub(since),
            },
            None => 0,
        }
    }

    /// When host `i`'s state was last confirmed (wall ms; 0: never).
    pub fn confirmed_ms(&self, i: usize) -> u64 {
        self.entries
            .get(i)
            .map_or(0, |e| e.confirmed_ms.load(Ordering::Acquire))
    }

    /// Claims the right to probe host `i`; false while another probe of it runs.
    pub fn start_probe(&self, i: usize) -> bool {
        self.entries
            .get(i)
            .is_some_and(|e| !e.probing.swap(true, Ordering::AcqRel))
    }

    pub fn end_probe(&self, i: usize) {
        if let Some(e) = self.entries.get(i) {
            e.probing.store(false, Ordering::Release);
        }
    }

    pub fn quiet(&self, i: usize, now_ms: u64) -> bool {
        self.entries
            .get(i)
            .is_some_and(|e| e.quiet_until_ms.load(Ordering::Acquire) > now_ms)
    }

    pub fn set_quiet_until(&self, i: usize, until_ms: u64) {
        if let Some(e) = self.entries.get(i) {
            e.quiet_until_ms.store(until_ms, Ordering::Release);
        }
    }

    /// Connection attempts to host `i` under way.
    pub fn opening(&self, i: usize) -> u32 {
        self.entries
            .get(i)
            .map_or(0, |e| e.opening.load(Ordering::Acquire))
    }

    /// Counts an attempt to connect to host `i` until the returned guard drops.
    pub fn begin_open(&self, i: usize) -> OpenAttempt<'_> {
        if let Some(e) = self.entries.get(i) {
            e.opening.fetch_add(1, Ordering::AcqRel);
        }
        OpenAttempt { hosts: self, i }
    }

    pub fn info(&self, i: usize) -> HostInfo {
        let e = self.entries.get(i);
        let load = |f: fn(&Entry) -> &AtomicU64| {
            e.map(|e| f(e).load(Ordering::Acquire)).filter(|&v| v != 0)
        };
        HostInfo {
            host: self.name(i),
            state: self.state(i),
            confirmed_at_ms: load(|e| &e.confirmed_ms),
            down_since_ms: load(|e| &e.down_since_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    fn two() -> Hosts {
        Hosts::new(vec!["a:1".into(), "b:2".into()])
    }

    #[test]
    fn states_change_and_report_the_previous_one() {
        let h = two();
        assert_eq!(h.state(0), HostState::Unknown);
        assert_eq!(h.set(0, HostState::Primary), Some(HostState::Unknown));
        assert_eq!(h.set(0, HostState::Primary), None, "no change, no event");
        assert_eq!(h.set(0, HostState::Unreachable), Some(HostState::Primary));
        let since = h.info(0).down_since_ms.unwrap();
        // A second failure keeps the first time it went down.
        h.set(0, HostState::Unreachable);
        assert_eq!(h.info(0).down_since_ms, Some(since));
        assert!(h.down_for_ms(0, since + 50) == 50);
        h.set(0, HostState::Standby);
        assert_eq!(h.info(0).down_since_ms, None);
        assert_eq!(h.down_for_ms(0, since + 50), 0);
        assert_eq!(h.state(1), HostState::Unknown);
        assert_eq!(h.state(7), HostState::Unknown, "out of range is unknown");
        assert_eq!(h.set(7, HostState::Primary), None);
    }

    #[test]
    fn changes_are_events_and_repeats_are_not() {
        let h = two();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        h.set_sink(Arc::new(move |e: HostEvent| {
            s.lock().unwrap().push((e.kind, e.host))
        }));
        h.set(1, HostState::Primary);
        h.set(1, HostState::Primary);
        h.set(1, HostState::Fenced);
        h.set(0, HostState::Unreachable);
        h.set(0, HostState::Standby);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                ("primary-found", "b:2".to_string()),
                ("host-fenced", "b:2".to_string()),
                ("host-down", "a:1".to_string()),
                ("host-standby", "a:1".to_string()),
            ]
        );
    }

    #[test]
    fn one_probe_per_host_at_a_time() {
        let h = two();
        assert!(h.start_probe(0));
        assert!(!h.start_probe(0));
        assert!(h.start_probe(1));
        h.end_probe(0);
        assert!(h.start_probe(0));
        assert!(!h.start_probe(9));
    }

    #[test]
    fn quiet_periods() {
        let h = two();
        assert!(!h.quiet(0, 100));
        h.set_quiet_until(0, 200);
        assert!(h.quiet(0, 100));
        assert!(!h.quiet(0, 200));
    }
}
