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
//! A sender that finds the queue full (a COPY's data ahead of it, or a burst of more
//! requests than the pipeline holds: the pool shares a connection among any number of
//! queries, and 10,000 started at once on a pool of two wait here) waits in line for room:
//! each pop wakes the first waiting sender, which keeps its place if it finds the room taken.
//! A freed slot still goes to whoever asks first, a `try_send` or a new `send` included, so a
//! waiting sender can be overtaken (and the Terminate that [`crate::Client::close`] queues
//! behind a full queue can follow requests made after it; the pool sends none to a
//! connection it closes). A sender woken for room and dropped before it took it passes the
//! wake-up on to the next in line, so none is lost. One sender's values keep their order (a
//! COPY awaits each chunk's send before the next).
//!
//! Waking every waiting sender at each pop, as this queue first did, was quadratic in a
//! burst: each of them polled again and registered again, looking through the list for its
//! own waker first (20,000 queries on a pool of two: 2.0-2.4 s, 63% of it in that search).

use std::collections::VecDeque;
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
    /// Senders waiting for room, first in line first, by ascending ticket ([`Sending`]).
    waiting: VecDeque<(u64, Waker)>,
    /// The ticket of the next sender to wait.
    next_ticket: u64,
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
            waiting: VecDeque::new(),
            next_ticket: 0,
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
        let wake = self.shared.lock().offer(value)?;
        // Woken outside the lock: the receiver's executor may poll it at once, and it takes
        // the lock itself.
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Queues `value`, waiting in line for room; fails only when the receiver is closed or
    /// gone.
    pub(crate) fn send(&self, value: T) -> Sending<'_, T> {
        Sending {
            sender: self,
            value: Some(value),
            ticket: None,
        }
    }
}

/// [`Sender::send`]'s future. Its ticket is its place in the line of waiting senders, taken
/// the first time it finds the queue full and kept until it has sent.
pub(crate) struct Sending<'a, T> {
    sender: &'a Sender<T>,
    /// The value, until it is queued or given back.
    value: Option<T>,
    ticket: Option<u64>,
}

// Nothing in it is pinned: the value is only ever moved.
impl<T> Unpin for Sending<'_, T> {}

impl<T> State<T> {
    /// Queues `value` if the queue is open and has room; the receiver to wake, if asleep.
    fn offer(&mut self, value: T) -> Result<Option<Waker>, TrySendError<T>> {
        if self.closed {
            return Err(TrySendError::Closed(value));
        }
        if self.items.len() >= self.capacity {
            return Err(TrySendError::Full(value));
        }
        self.items.push_back(value);
        Ok(self.receiver.take())
    }

    /// Where `ticket` waits in line, or where it would go back in.
    fn place(&self, ticket: u64) -> Result<usize, usize> {
        self.waiting.binary_search_by_key(&ticket, |(t, _)| *t)
    }
}

impl<T> std::future::Future for Sending<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(value) = this.value.take() else {
            // Polled again after it finished: cannot happen through `await`.
            return Poll::Ready(Ok(()));
        };
        let wake = {
            let mut s = this.sender.shared.lock();
            // Out of the line while it tries (it is still in it only when polled for another
            // reason than a wake-up); back at the same place if the queue is still full.
            let ticket = this.ticket.take();
            if let Some(Ok(i)) = ticket.map(|t| s.place(t)) {
                s.waiting.remove(i);
            }
            match s.offer(value) {
                Ok(wake) => wake,
                Err(TrySendError::Closed(value)) => return Poll::Ready(Err(SendError(value))),
                Err(TrySendError::Full(value)) => {
                    let t = ticket.unwrap_or_else(|| {
                        s.next_ticket += 1;
                        s.next_ticket - 1
                    });
                    // A woken sender that was overtaken goes back to the front.
                    let at = s.place(t).unwrap_or_else(|i| i);
                    s.waiting.insert(at, (t, cx.waker().clone()));
                    drop(s);
                    this.ticket = Some(t);
                    this.value = Some(value);
                    return Poll::Pending;
                }
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for Sending<'_, T> {
    fn drop(&mut self) {
        let Some(t) = self.ticket else { return };
        let wake = {
            let mut s = self.sender.shared.lock();
            match s.place(t) {
                Ok(i) => {
                    s.waiting.remove(i);
                    None
                }
                // Woken for room and gone without taking it: the next in line gets it.
                Err(_) if s.items.len() < s.capacity => s.waiting.pop_front().map(|(_, w)| w),
                Err(_) => None,
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
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
            // One slot freed: the first in line takes it.
            let next = s.waiting.pop_front();
            drop(s);
            if let Some((_, w)) = next {
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
        for (_, w) in waiting {
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
        for (_, w) in waiting {
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
    fn each_pop_wakes_the_first_sender_in_line_only() {
        let (tx, mut rx) = channel(1);
        assert!(tx.try_send(0).is_ok());
        let waiters: Vec<_> = (1..=3).map(|_| counting()).collect();
        let mut sends: Vec<_> = (1..=3).map(|v| Box::pin(tx.send(v))).collect();
        for (send, (_, w)) in sends.iter_mut().zip(&waiters) {
            assert!(poll_with(send, w).is_pending());
        }
        let (_, rw) = counting();
        let mut rcx = Context::from_waker(&rw);
        for (k, v) in (0..3).enumerate() {
            assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(v)));
            let woken: Vec<usize> = waiters
                .iter()
                .map(|(c, _)| c.0.load(Ordering::SeqCst))
                .collect();
            // Only the first in line, once: the others sleep on.
            let expected: Vec<usize> = (0..3).map(|i| usize::from(i <= k)).collect();
            assert_eq!(woken, expected, "after pop {k}");
            assert!(matches!(
                poll_with(&mut sends[k], &waiters[k].1),
                Poll::Ready(Ok(()))
            ));
        }
        assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(3)));
    }

    /// Two senders waiting in line (values 1 and 2) behind a full queue of one (value 0).
    struct InLine<'a> {
        first: Pin<Box<Sending<'a, i32>>>,
        fw: Waker,
        first_wakes: Arc<Count>,
        second: Pin<Box<Sending<'a, i32>>>,
        sw: Waker,
        second_wakes: Arc<Count>,
    }

    fn two_in_line(tx: &Sender<i32>) -> InLine<'_> {
        assert!(tx.try_send(0).is_ok());
        let ((first_wakes, fw), (second_wakes, sw)) = (counting(), counting());
        let mut first = Box::pin(tx.send(1));
        let mut second = Box::pin(tx.send(2));
        assert!(poll_with(&mut first, &fw).is_pending());
        assert!(poll_with(&mut second, &sw).is_pending());
        InLine {
            first,
            fw,
            first_wakes,
            second,
            sw,
            second_wakes,
        }
    }

    #[test]
    fn a_sender_woken_for_room_and_dropped_passes_the_wake_up_on() {
        let (tx, mut rx) = channel(1);
        let mut l = two_in_line(&tx);
        let (_, rw) = counting();
        assert_eq!(
            rx.poll_recv(&mut Context::from_waker(&rw)),
            Poll::Ready(Some(0))
        );
        assert_eq!(l.first_wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(l.second_wakes.0.load(Ordering::SeqCst), 0);
        drop(l.first);
        assert_eq!(l.second_wakes.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            poll_with(&mut l.second, &l.sw),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(
            rx.poll_recv(&mut Context::from_waker(&rw)),
            Poll::Ready(Some(2))
        );
    }

    #[test]
    fn a_woken_sender_overtaken_keeps_its_place_at_the_front() {
        let (tx, mut rx) = channel(1);
        let mut l = two_in_line(&tx);
        let (_, rw) = counting();
        let mut rcx = Context::from_waker(&rw);
        assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(0)));
        // The freed slot goes to a `try_send` before the woken sender comes for it.
        assert!(tx.try_send(9).is_ok());
        assert!(poll_with(&mut l.first, &l.fw).is_pending());
        assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(9)));
        assert_eq!(l.first_wakes.0.load(Ordering::SeqCst), 2);
        assert_eq!(l.second_wakes.0.load(Ordering::SeqCst), 0);
        assert!(matches!(
            poll_with(&mut l.first, &l.fw),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(1)));
        assert_eq!(l.second_wakes.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            poll_with(&mut l.second, &l.sw),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(rx.poll_recv(&mut rcx), Poll::Ready(Some(2)));
    }

    /// A waker that records its sender's index in a shared list each time it is woken.
    struct Recorded(usize, Arc<std::sync::Mutex<Vec<usize>>>);
    impl Wake for Recorded {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn a_burst_of_waiting_senders_drains_with_one_wake_up_each() {
        // 10,000 senders behind a queue of 4, as a burst of queries behind a full pipeline,
        // each polled again only when woken. Waking every waiting sender at each pop made
        // about n * n / 2 wake-ups (and as many polls); in line it is one each.
        const N: usize = 10_000;
        let (tx, mut rx) = channel(4);
        let woken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let wakers: Vec<Waker> = (0..N)
            .map(|i| Waker::from(Arc::new(Recorded(i, woken.clone()))))
            .collect();
        let mut sends: Vec<_> = (0..N).map(|v| Box::pin(tx.send(v))).collect();
        let mut done = vec![false; N];
        for (i, send) in sends.iter_mut().enumerate() {
            done[i] = poll_with(send, &wakers[i]).is_ready();
        }
        let (_, rw) = counting();
        let mut rcx = Context::from_waker(&rw);
        let (mut seen, mut wake_ups) = (Vec::with_capacity(N), 0);
        while seen.len() < N {
            match rx.poll_recv(&mut rcx) {
                Poll::Ready(Some(v)) => seen.push(v),
                other => panic!("the queue ran dry with senders waiting: {other:?}"),
            }
            let now: Vec<usize> = std::mem::take(&mut *woken.lock().unwrap());
            wake_ups += now.len();
            assert!(
                wake_ups <= N,
                "{wake_ups} wake-ups after {} pops",
                seen.len()
            );
            for i in now {
                if !done[i] {
                    done[i] = poll_with(&mut sends[i], &wakers[i]).is_ready();
                }
            }
        }
        assert!(done.iter().all(|d| *d));
        assert_eq!(seen, (0..N).collect::<Vec<_>>(), "in line, in order");
        assert_eq!(wake_ups, N - 4, "one wake-up for each sender that waited");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn producers_on_four_threads_behind_a_small_queue_all_get_through_in_order() {
        // Waiting senders woken one a pop, on four threads at once, some of them given up
        // midway (a dropped send passes its wake-up on): none may sleep forever, and each
        // producer's values come out in its order.
        const PRODUCERS: usize = 4;
        const EACH: usize = 2_000;
        let (tx, mut rx) = channel::<(usize, usize)>(4);
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    if i % 100 == 99 {
                        // A send abandoned after one poll: it may hold a place in line, or a
                        // wake-up it must pass on.
                        // (Sent after all, it goes in marked: the consumer skips it.)
                        let mut gone = Box::pin(tx.send((p, usize::MAX)));
                        futures_poll_once(&mut gone).await;
                    }
                    tx.send((p, i)).await.expect("the receiver is there");
                }
            }));
        }
        drop(tx);
        let consumer = tokio::spawn(async move {
            let mut next = [0usize; PRODUCERS];
            while let Some((p, i)) = std::future::poll_fn(|cx| rx.poll_recv(cx)).await {
                if i == usize::MAX {
                    continue;
                }
                assert_eq!(i, next[p], "producer {p} out of order");
                next[p] += 1;
                if next.iter().sum::<usize>() % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            next
        });
        let all = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            for t in tasks {
                t.await.unwrap();
            }
            consumer.await.unwrap()
        })
        .await
        .expect("a waiting sender slept forever");
        assert_eq!(all, [EACH; PRODUCERS]);
    }

    /// Polls `f` once.
    async fn futures_poll_once<F: Future + Unpin>(f: &mut F) {
        std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut *f).poll(cx);
            Poll::Ready(())
        })
        .await
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
