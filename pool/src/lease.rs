//! The lease word of one connection: an exclusive bit plus a count of shared leases, in one
//! atomic. The pool's correctness rests on its rule: a shared lease is granted only while
//! the exclusive bit is clear, an exclusive one only when the word is 0. So a pipelined
//! query never runs inside a transaction's session and a transaction never starts under a
//! pipelined query, without a lock on either path.

use std::sync::atomic::{AtomicU32, Ordering};

const EXCLUSIVE: u32 = 1 << 31;

#[derive(Debug, Default)]
pub struct LeaseWord(AtomicU32);

impl LeaseWord {
    /// Takes a shared lease unless the word is held exclusively.
    pub fn try_share(&self) -> bool {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            // The count cannot reach the exclusive bit: at most one shared lease per caller
            // in flight, far below 2^31.
            if cur & EXCLUSIVE != 0 {
                return false;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Takes the exclusive lease if nobody holds any lease.
    pub fn try_take(&self) -> bool {
        self.0
            .compare_exchange(0, EXCLUSIVE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Returns a shared lease; true when it was the last one.
    pub fn release_shared(&self) -> bool {
        self.0.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Returns the exclusive lease.
    pub fn release_exclusive(&self) {
        self.0.store(0, Ordering::Release);
    }

    pub fn is_free(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    pub fn is_exclusive(&self) -> bool {
        self.0.load(Ordering::Acquire) & EXCLUSIVE != 0
    }

    pub fn shared(&self) -> u32 {
        self.0.load(Ordering::Acquire) & !EXCLUSIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    enum Op {
        Share,
        Take,
        ReleaseShared,
        ReleaseExclusive,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Share),
            Just(Op::Take),
            Just(Op::ReleaseShared),
            Just(Op::ReleaseExclusive),
        ]
    }

    proptest! {
        /// Random sequences of operations against a plain model: the word grants exactly
        /// what the rule allows, and its observable state always matches the model.
        #[test]
        fn matches_the_model(ops in proptest::collection::vec(op(), 0..200)) {
            let w = LeaseWord::default();
            let (mut shared, mut exclusive) = (0u32, false);
            for op in ops {
                match op {
                    Op::Share => {
                        let granted = w.try_share();
                        prop_assert_eq!(granted, !exclusive);
                        if granted { shared += 1; }
                    }
                    Op::Take => {
                        let granted = w.try_take();
                        prop_assert_eq!(granted, !exclusive && shared == 0);
                        if granted { exclusive = true; }
                    }
                    // Only holders release: the model skips releases nobody could make.
                    Op::ReleaseShared if shared > 0 => {
                        let last = w.release_shared();
                        shared -= 1;
                        prop_assert_eq!(last, shared == 0);
                    }
                    Op::ReleaseExclusive if exclusive => {
                        w.release_exclusive();
                        exclusive = false;
                    }
                    _ => {}
                }
                prop_assert_eq!(w.shared(), shared);
                prop_assert_eq!(w.is_exclusive(), exclusive);
                prop_assert_eq!(w.is_free(), shared == 0 && !exclusive);
            }
        }
    }

    /// Threads race shared and exclusive leases on one word; a separate count of holders
    /// checks the rule was never broken (never a shared holder during an exclusive one).
    #[test]
    fn threads_never_overlap_exclusive_and_shared() {
        let w = Arc::new(LeaseWord::default());
        let shared_holders = Arc::new(AtomicUsize::new(0));
        let exclusive_holders = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (w, sh, ex) = (w.clone(), shared_holders.clone(), exclusive_holders.clone());
                std::thread::spawn(move || {
                    let mut takes = 0;
                    for i in 0..20_000 {
                        if (i + t) % 3 == 0 {
                            if w.try_take() {
                                takes += 1;
                                assert_eq!(ex.fetch_add(1, Ordering::SeqCst), 0);
                                assert_eq!(sh.load(Ordering::SeqCst), 0);
                                ex.fetch_sub(1, Ordering::SeqCst);
                                w.release_exclusive();
                            }
                        } else if w.try_share() {
                            sh.fetch_add(1, Ordering::SeqCst);
                            assert_eq!(ex.load(Ordering::SeqCst), 0);
                            sh.fetch_sub(1, Ordering::SeqCst);
                            w.release_shared();
                        }
                    }
                    takes
                })
            })
            .collect();
        let takes: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(takes > 0, "exclusive leases were granted at all");
        assert!(w.is_free());
    }
}
