//! The request queue between a connection's [`crate::Client`] handles and its protocol loop:
//! a bounded FIFO behind one mutex, with the loop's waker beside it.
//!
//! It does what tokio's bounded `mpsc` did here (the same calls: `try_send`, an async `send`
//! that waits for room, `poll_recv`, `close`, `try_recv`; the same ends: sends fail once the
//! receiver is closed or gone, the receiver sees the end once every sender is gone) with less
//! work per request. tokio's channel takes a permit from a semaphore, writes the value into a
//! slot of a linked list of 32-slot blocks, and registers the receiver's waker through an
//! `AtomicWaker` at every empty poll; a point query's request took about 880 instructions
//! through it, the largest item of the protocol loop. Here a send and a receive are a lock, a
//! `VecDeque` push or pop and, when the receiver sleeps, one wake. The lock is uncontended
//! when the handles and the loop run on one thread (the JS thread's executor), and held for a
//! few instructions otherwise.
//!
//! A sender that finds the queue full (a COPY's data ahead of it, or a pipeline full of
//! requests) waits for room; every pop that makes room wakes all waiting senders, which try
//! again. Unlike tokio's semaphore this keeps no ticket order: a freed slot goes to whoever
//! asks first, a `try_send` included, so a waiting sender can be overtaken (and the Terminate
//! that [`crate::Client::close`] queues behind a full queue can follow requests made after
//! it; the pool sends none to a connection it closes). In exchange no wake-up is lost to a
//! waiter dropped after it was woken. One sender's values keep their order (a COPY awaits
//! each chunk's send before the next). The queue seldom fills: the pool leases a connection
//! to at most its pipeline depth, and the loop takes requests past a full pipeline into its
//! own held list. A waiting `send` dropped before room came leaves its waker in the list
//! until the next pop or close.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Why [`Sender::try_send`] gave the value back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The queue holds its capacity.
    Full(T),
    /// The receiver is closed or gone.
    Closed(T),
}

/// [`Sender::send`]'s error: the receiver is closed or gone; the value comes back.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub(crate) T);

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// The receiver closed the queue or was dropped: sends fail.
    closed: bool,
    /// Live [`Sender`]s; at zero the receiver sees the end once the queue is empty.
    senders: usize,
    /// The receiver, asleep on an empty queue.
    receiver: Option<Waker>,
    /// Senders waiting for room.
    waiting: Vec<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing here panics while holding the lock; a poisoned one still holds a valid queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queue of at most `capacity` values (at least one).
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            closed: false,
            senders: 1,
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

pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
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
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Queues `value` now, or gives it back.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.offer(value, None)
    }

    /// Queues `value`, waiting for room; fails only when the receiver is closed or gone.
    pub(crate) async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        poll_fn(|cx| {
            let Some(v) = value.take() else {
                // Polled again after it finished: cannot happen through `await`.
                return Poll::Ready(Ok(()));
            };
            match self.offer(v, Some(cx.waker())) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(v)) => Poll::Ready(Err(SendError(v))),
                Err(TrySendError::Full(v)) => {
                    value = Some(v);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Queues `value` if there is room; when full, `waiter` (if any) is woken by the next
    /// pop, registered under the same lock that saw the queue full.
    fn offer(&self, value: T, waiter: Option<&Waker>) -> Result<(), TrySendError<T>> {
        let wake = {
            let mut s = self.shared.lock();
            if s.closed {
                return Err(TrySendError::Closed(value));
            }
            if s.items.len() >= s.capacity {
                if let Some(w) = waiter {
                    if !s.waiting.iter().any(|x| x.will_wake(w)) {
                        s.waiting.push(w.clone());
                    }
                }
                return Err(TrySendError::Full(value));
            }
            s.items.push_back(value);
            s.receiver.take()
        };
        // Woken outside the lock: the receiver's executor may poll it at once, and it takes
        // the lock itself.
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }
}

pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next value; `None` once every sender is gone and the queue is empty, or once the
    /// queue was closed and emptied.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.shared.lock();
        if let Some(v) = s.items.pop_front() {
            let waiting = if s.waiting.is_empty() {
                Vec::new()
            } else {
                std::mem::take(&mut s.waiting)
            };
            drop(s);
            for w in waiting {
                w.wake();
            }
            return Poll::Ready(Some(v));
        }
        if s.senders == 0 || s.closed {
            return Poll::Ready(None);
        }
        match &s.receiver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.receiver = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// A value queued now, if there is one.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.shared.lock().items.pop_front()
    }

    /// No more sends: they fail from now on (values queued stay for `try_recv`), and senders
    /// waiting for room are told so.
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
        let (items, waiting, receiver) = {
            let mut s = self.shared.lock();
            s.closed = true;
            // The loop's own waker too: senders that outlive it do not keep its task.
            (
                std::mem::take(&mut s.items),
                std::mem::take(&mut s.waiting),
                s.receiver.take(),
            )
        };
        drop(receiver);
        // Dropped outside the lock: a value's drop may wake a task (a request's answer
        // channel), which may send here.
        drop(items);
        for w in waiting {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
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

    fn poll_with<F: Future + ?Sized>(f: &mut Pin<Box<F>>, w: &Waker) -> Poll<F::Output> {
        f.as_mut().poll(&mut Context::from_waker(w))
    }

    #[test]
    fn values_come_out_in_order_and_a_full_queue_gives_them_back() {
        let (tx, mut rx) = channel(2);
        let (_, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert!(tx.try_send(3).is_ok());
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(3)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
    }

    #[test]
    fn a_send_wakes_the_receiver_asleep_on_an_empty_queue() {
        let (tx, mut rx) = channel(4);
        let (count, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        assert!(tx.try_send(7).is_ok());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // Woken once: the next send finds no receiver asleep.
        assert!(tx.try_send(8).is_ok());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(7)));
    }

    #[test]
    fn the_receiver_sees_the_end_once_every_sender_is_gone() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        let (count, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert!(tx.try_send(1).is_ok());
        drop(tx);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        drop(tx2);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn sends_fail_after_close_and_after_the_receiver_is_gone() {
        let (tx, mut rx) = channel(4);
        assert!(tx.try_send(1).is_ok());
        rx.close();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), None);
        drop(rx);
        assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
    }

    #[test]
    fn a_sender_waiting_for_room_is_woken_by_the_pop_that_makes_it() {
        let (tx, mut rx) = channel(1);
        assert!(tx.try_send(1).is_ok());
        let (sender_wakes, sw) = counting();
        let mut send = Box::pin(tx.send(2));
        assert!(poll_with(&mut send, &sw).is_pending());
        let (_, rw) = counting();
        assert_eq!(
            rx.poll_recv(&mut Context::from_waker(&rw)),
            Poll::Ready(Some(1))
        );
        assert_eq!(sender_wakes.0.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_with(&mut send, &sw), Poll::Ready(Ok(()))));
        assert_eq!(
            rx.poll_recv(&mut Context::from_waker(&rw)),
            Poll::Ready(Some(2))
        );
    }

    #[test]
    fn a_sender_waiting_for_room_fails_when_the_receiver_goes() {
        let (tx, rx) = channel(1);
        assert!(tx.try_send(1).is_ok());
        let (wakes, w) = counting();
        let mut send = Box::pin(tx.send(2));
        assert!(poll_with(&mut send, &w).is_pending());
        drop(rx);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            poll_with(&mut send, &w),
            Poll::Ready(Err(SendError(2)))
        ));
    }

    #[test]
    fn values_left_in_a_dropped_queue_are_dropped() {
        let (tx, rx) = channel(4);
        let held = Arc::new(());
        assert!(tx.try_send(held.clone()).is_ok());
        assert_eq!(Arc::strong_count(&held), 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
