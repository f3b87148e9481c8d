//! Notifications on their way to an application that takes them on a thread of its own (the
//! JS thread), in batches: [`Inbox`].
//!
//! The listening session reads its socket on the runtime whatever the application does, so
//! that it answers the watcher's checks while the JS thread is busy (`listen.rs`). What it
//! reads waits here for the application. Without a bound, a channel busier than the
//! application, or a server that floods it, would grow this without end; past the bound,
//! notifications are dropped, and the window in which they were dropped is a listening gap
//! (as for a lost session: the application learns that it may have missed some, and when),
//! reported once the application has taken what was kept.

use crate::hosts::wall_ms;
use crate::listen::ListenGap;
use hyperion_wire::Notification;
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many notifications may wait for the application...
const MAX_ITEMS: usize = 65_536;
/// ...and how many bytes (payload and channel, plus [`ITEM_OVERHEAD`] each). A payload is at
/// most 8,000 bytes (PostgreSQL's limit), so this holds at least 4,000 of the largest.
const MAX_BYTES: usize = 32 << 20;
/// What keeping one costs besides its text (the struct, the queue's slot).
const ITEM_OVERHEAD: usize = 64;

/// See the module's documentation.
pub struct Inbox {
    state: Mutex<State>,
    max_items: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Notification>,
    bytes: usize,
    /// The application has been asked to take (and has not yet).
    asked: bool,
    /// The first notification dropped since the last take (wall-clock ms).
    dropped_from: Option<u64>,
}

impl Default for Inbox {
    fn default() -> Inbox {
        Inbox::with_limits(MAX_ITEMS, MAX_BYTES)
    }
}

impl Inbox {
    fn with_limits(max_items: usize, max_bytes: usize) -> Inbox {
        Inbox {
            state: Mutex::new(State::default()),
            max_items,
            max_bytes,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `n` for the next [`Inbox::take`], or drops it when the inbox is full. True when
    /// the caller must ask the application to take (nobody has since the last take): once
    /// per batch, and also for a first drop, so that its gap is reported.
    pub fn push(&self, n: &Notification) -> bool {
        let size = n.payload.len() + n.channel.len() + ITEM_OVERHEAD;
        let mut s = self.state();
        if s.items.len() >= self.max_items || s.bytes + size > self.max_bytes {
            s.dropped_from.get_or_insert_with(wall_ms);
        } else {
            s.bytes += size;
            s.items.push_back(n.clone());
        }
        !std::mem::replace(&mut s.asked, true)
    }

    /// Everything kept, in the order it came, and the window in which notifications were
    /// dropped since the last take (it ends now: the application has caught up).
    pub fn take(&self) -> (Vec<Notification>, Option<ListenGap>) {
        let mut s = self.state();
        s.asked = false;
        s.bytes = 0;
        let items = Vec::from(std::mem::take(&mut s.items));
        let gap = s.dropped_from.take().map(|from_ms| ListenGap {
            from_ms,
            to_ms: wall_ms().max(from_ms),
        });
        (items, gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(i: i32, payload: &str) -> Notification {
        Notification {
            process_id: i,
            channel: "c".into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn asks_once_per_batch_and_keeps_the_order() {
        let inbox = Inbox::default();
        assert!(inbox.push(&note(1, "a")));
        assert!(!inbox.push(&note(2, "b")));
        let (items, gap) = inbox.take();
        assert_eq!(
            items.iter().map(|n| n.process_id).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(gap, None);
        assert!(inbox.push(&note(3, "c")), "a new batch asks again");
    }

    #[test]
    fn past_the_bound_drops_and_reports_the_window_once() {
        let inbox = Inbox::with_limits(3, 1 << 20);
        let before = wall_ms();
        for i in 0..10 {
            inbox.push(&note(i, "x"));
        }
        let (items, gap) = inbox.take();
        assert_eq!(items.len(), 3, "the first ones are kept");
        let gap = gap.expect("a gap");
        assert!(before <= gap.from_ms && gap.from_ms <= gap.to_ms && gap.to_ms <= wall_ms());
        inbox.push(&note(10, "x"));
        assert_eq!(
            inbox.take(),
            (vec![note(10, "x")], None),
            "one report per window"
        );
    }

    #[test]
    fn bytes_are_bounded_too_and_a_lone_drop_still_asks() {
        let inbox = Inbox::with_limits(1000, 10_000);
        let big = "y".repeat(8000);
        assert!(inbox.push(&note(1, &big)));
        assert!(
            !inbox.push(&note(2, &big)),
            "dropped: 16 kB would pass the bound"
        );
        let (items, gap) = inbox.take();
        assert_eq!(items.len(), 1);
        assert!(gap.is_some());
        // Too large for an empty inbox: dropped, and the application is still asked, so the
        // gap is reported.
        let tiny = Inbox::with_limits(1000, 100);
        assert!(tiny.push(&note(1, &big)));
        let (items, gap) = tiny.take();
        assert!(items.is_empty() && gap.is_some());
    }
}
