//! A connection's queue of requests: callers put requests in, the protocol loop takes them
//! out, in order, at most `capacity` waiting.
//!
//! tokio's bounded `mpsc` did this job at about 1,000 instructions a query (callgrind, W1):
//! its sender takes a permit of a semaphore, its receiver gives it back under the
//! semaphore's mutex, and both walk a lock-free list of blocks and check tokio's task
//! budget. Here one uncontended mutex guards a `VecDeque`; a query's request is one lock to
//! put it in and one to take it out.
//!
//! What the loop and the callers rely on, as with tokio's channel:
//! - [`Receiver::poll_recv`] answers `None` once every [`Sender`] is gone and the queue is
//!   empty (the connection's handles are all dropped: the loop ends);
//! - after [`Receiver::close`] (or its drop) every send fails with the request handed back,
//!   and what was queued before can still be taken with [`Receiver::try_recv`];
//! - a send into a full queue waits ([`Sender::send`]) or is refused
//!   ([`Sender::try_send`]); a send that waits is woken when a request is taken out or the
//!   queue closes.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    senders: usize,
    closed: bool,
    /// The receiver waiting for a request.
    receiver: Option<Waker>,
    /// Senders waiting for room; all are woken when a request is taken out (a full queue is
    /// rare: a COPY FROM filling it), so that a waiter that gave up cannot swallow the wake-up
    /// another needed.
    waiting: Vec<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing here panics while holding the lock, but a poisoned lock must not take the
        // connection down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why [`Sender::try_send`] handed the request back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    Full(T),
    Closed(T),
}

/// The callers' end; cloned freely.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The protocol loop's end.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue that holds at most `capacity` (at least 1) requests.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            senders: 1,
            closed: false,
            receiver: None,
            waiting: Vec::new(),
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Puts `item` in the queue now, or hands it back: the queue is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let wake = {
            let mut s = self.shared.lock();
            if s.closed {
                return Err(TrySendError::Closed(item));
            }
            if s.items.len() >= s.capacity {
                return Err(TrySendError::Full(item));
            }
            s.items.push_back(item);
            s.receiver.take()
        };
        // Outside the lock: a waker may run the receiver's task in place.
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Puts `item` in the queue, waiting for room; hands it back if the queue closes first.
    pub(crate) async fn send(&self, item: T) -> Result<(), T> {
        let mut item = Some(item);
        poll_fn(|cx| {
            let wake = {
                let mut s = self.shared.lock();
                let Some(v) = item.take() else {
                    // Polled again after it finished: nothing left to send.
                    return Poll::Ready(Ok(()));
                };
                if s.closed {
                    return Poll::Ready(Err(v));
                }
                if s.items.len() >= s.capacity {
                    item = Some(v);
                    if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                        s.waiting.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                s.items.push_back(v);
                s.receiver.take()
            };
            if let Some(w) = wake {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let wake = {
            let mut s = self.shared.lock();
            s.senders -= 1;
            if s.senders == 0 {
                s.receiver.take()
            } else {
                None
            }
        };
        // The last one: a receiver waiting for a request learns there will be none.
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next request; `None` once the queue is empty and every sender is gone (or it was
    /// closed and emptied).
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let (item, waiting) = {
            let mut s = self.shared.lock();
            match s.items.pop_front() {
                Some(item) => (item, std::mem::take(&mut s.waiting)),
                None if s.senders == 0 || s.closed => return Poll::Ready(None),
                None => {
                    let old = match &s.receiver {
                        Some(w) if w.will_wake(cx.waker()) => None,
                        _ => s.receiver.replace(cx.waker().clone()),
                    };
                    drop(s);
                    // A waker replaced is dropped outside the lock: dropping the last
                    // reference to a task drops the task, which may hold a sender.
                    drop(old);
                    return Poll::Pending;
                }
            }
        };
        for w in waiting {
            w.wake();
        }
        Poll::Ready(Some(item))
    }

    /// Takes the next request if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let (item, waiting) = {
            let mut s = self.shared.lock();
            let item = s.items.pop_front()?;
            (item, std::mem::take(&mut s.waiting))
        };
        for w in waiting {
            w.wake();
        }
        Some(item)
    }

    /// Refuses every send from now on (what is queued stays, for [`Receiver::try_recv`]),
    /// and wakes the senders waiting for room, whose sends then fail.
    pub(crate) fn close(&mut self) {
        let waiting = {
            let mut s = self.shared.lock();
            s.closed = true;
            std::mem::take(&mut s.waiting)
        };
        for w in waiting {
            w.wake();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // What was queued is dropped with the receiver (the requests' answer channels then
        // tell their callers that the connection is gone), as tokio's channel did.
        let items = std::mem::take(&mut self.shared.lock().items);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn requests_come_out_in_order_and_a_waiting_receiver_is_woken() {
        let (tx, mut rx) = channel(4);
        let (woken, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(1).unwrap();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        tx.try_send(2).unwrap();
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(2)));
        assert!(rx.poll_recv(&mut cx).is_pending());
    }

    #[test]
    fn a_full_queue_refuses_try_send_and_a_waiting_send_goes_in_when_room_is_made() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        let (woken, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut send = Box::pin(tx.send(3));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "room made wakes the sender"
        );
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn the_receiver_ends_when_every_sender_is_gone_and_the_queue_is_empty() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        let (woken, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        tx.try_send(7).unwrap();
        drop(tx);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(7)));
        assert!(rx.poll_recv(&mut cx).is_pending(), "a clone is still alive");
        drop(tx2);
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the last drop wakes the receiver"
        );
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_closed_queue_refuses_sends_keeps_what_it_had_and_fails_waiting_senders() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let (woken, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut send = Box::pin(tx.send(2));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        rx.close();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Err(2)));
        assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn dropping_the_receiver_fails_later_sends_and_drops_what_was_queued() {
        let (tx, rx) = channel(2);
        let item = Arc::new(());
        tx.try_send(item.clone()).unwrap();
        drop(rx);
        assert_eq!(
            Arc::strong_count(&item),
            1,
            "the queued request went with the receiver"
        );
        assert!(matches!(tx.try_send(item), Err(TrySendError::Closed(_))));
    }

    #[test]
    fn senders_on_other_threads_all_get_through_in_each_ones_order() {
        let (tx, mut rx) = channel(8);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        for i in 0..500 {
                            tx.send((t, i)).await.unwrap();
                        }
                    });
                })
            })
            .collect();
        drop(tx);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut got = Vec::new();
            while let Some(v) = poll_fn(|cx| rx.poll_recv(cx)).await {
                got.push(v);
            }
            got
        });
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(got.len(), 2000);
        for t in 0..4 {
            let mine: Vec<_> = got.iter().filter(|v| v.0 == t).map(|v| v.1).collect();
            assert_eq!(mine, (0..500).collect::<Vec<_>>());
        }
    }
}
