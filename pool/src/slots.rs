//! The pool's fixed slots: `poolSize` places for connections, each governed by one atomic
//! word, so taking and returning a connection never takes a lock.
//!
//! The word of a slot packs, from the top: a 32-bit generation, a 2-bit phase (`EMPTY`,
//! `RESERVED` while a connection is being opened for it, `READY`, `REMOVING`), the exclusive
//! bit and a 29-bit count of shared leases. The rules:
//!
//! * a shared lease is granted only on a `READY` slot whose exclusive bit is clear; an
//!   exclusive lease only on a `READY` slot with no lease at all;
//! * removing a connection moves the slot `READY -> REMOVING` (no new leases), takes the
//!   connection out, then `EMPTY` with the generation bumped;
//! * every lease remembers the generation it was granted under, and releasing it is a no-op
//!   once the generation moved on. So a handle from before a removal can never change the
//!   counts of the connection that reuses the slot (the role of sharded-slab's generation
//!   and of crossbeam's `ArrayQueue` stamps).
//!
//! The connection itself sits in an `ArcSwapOption`: a lease holder loads it after its CAS
//! and checks the generation again, so it either gets the connection its lease is for or
//! gives the lease back. arc-swap makes that load safe against a concurrent removal dropping
//! the last reference, which a bare `AtomicPtr` cannot do without hazard pointers of our own.

use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SHARED_MASK: u64 = (1 << 29) - 1;
const EXCLUSIVE: u64 = 1 << 29;
const PHASE_SHIFT: u32 = 30;
const PHASE_MASK: u64 = 0b11 << PHASE_SHIFT;
const GEN_SHIFT: u32 = 32;

const EMPTY: u64 = 0;
const RESERVED: u64 = 1;
const READY: u64 = 2;
const REMOVING: u64 = 3;

fn phase(w: u64) -> u64 {
    (w & PHASE_MASK) >> PHASE_SHIFT
}

fn generation(w: u64) -> u32 {
    (w >> GEN_SHIFT) as u32
}

fn word(gen: u32, ph: u64, exclusive: bool, shared: u64) -> u64 {
    (u64::from(gen) << GEN_SHIFT)
        | (ph << PHASE_SHIFT)
        | if exclusive { EXCLUSIVE } else { 0 }
        | (shared & SHARED_MASK)
}

struct Slot<T> {
    word: AtomicU64,
    item: ArcSwapOption<T>,
}

/// A fixed set of slots.
pub struct Slots<T> {
    slots: Box<[Slot<T>]>,
}

/// Which slot and which incarnation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId {
    pub index: usize,
    pub generation: u32,
}

/// An empty slot set aside for a connection being opened. Give it back with
/// [`Slots::install`] or [`Slots::cancel`].
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    index: usize,
}

impl Reservation {
    pub fn index(&self) -> usize {
        self.index
    }
}

/// A granted lease: the item, and the slot incarnation it belongs to.
#[derive(Debug)]
pub struct SlotLease<T> {
    pub id: SlotId,
    pub item: Arc<T>,
    pub exclusive: bool,
}

/// What [`Slots::snapshot`] reports of one ready slot.
pub struct SlotView<T> {
    pub id: SlotId,
    pub item: Arc<T>,
    pub shared: u32,
    pub exclusive: bool,
}

impl<T> Slots<T> {
    pub fn new(capacity: usize) -> Self {
        Slots {
            slots: (0..capacity)
                .map(|_| Slot {
                    word: AtomicU64::new(0),
                    item: ArcSwapOption::empty(),
                })
                .collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Sets aside an empty slot, if there is one.
    pub fn reserve(&self) -> Option<Reservation> {
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) == EMPTY
                && slot
                    .word
                    .compare_exchange(
                        w,
                        word(generation(w), RESERVED, false, 0),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                return Some(Reservation { index });
            }
        }
        None
    }

    /// Gives a reserved slot back unused.
    pub fn cancel(&self, r: Reservation) {
        if let Some(slot) = self.slots.get(r.index) {
            let w = slot.word.load(Ordering::Acquire);
            slot.word
                .store(word(generation(w), EMPTY, false, 0), Ordering::Release);
        }
    }

    /// Puts `item` in a reserved slot and grants the installer its lease in the same store
    /// (exclusive, or the first shared one), so nobody can take the new connection between
    /// its installation and its first use.
    pub fn install(&self, r: Reservation, item: Arc<T>, exclusive: bool) -> Option<SlotLease<T>> {
        let slot = self.slots.get(r.index)?;
        slot.item.store(Some(item.clone()));
        let gen = generation(slot.word.load(Ordering::Acquire));
        let shared = if exclusive { 0 } else { 1 };
        slot.word
            .store(word(gen, READY, exclusive, shared), Ordering::Release);
        Some(SlotLease {
            id: SlotId {
                index: r.index,
                generation: gen,
            },
            item,
            exclusive,
        })
    }

    /// After a successful CAS on the word: load the item and make sure it is the one the
    /// lease was granted for; otherwise give the lease back.
    fn confirm(&self, index: usize, gen: u32, exclusive: bool) -> Option<SlotLease<T>> {
        let slot = self.slots.get(index)?;
        let item = slot.item.load_full();
        let still = generation(slot.word.load(Ordering::Acquire)) == gen;
        let id = SlotId {
            index,
            generation: gen,
        };
        match item {
            Some(item) if still => Some(SlotLease {
                id,
                item,
                exclusive,
            }),
            _ => {
                self.release(id, exclusive);
                None
            }
        }
    }

    /// How many shared leases slot `id` holds now (0 once its item is gone).
    pub fn shared(&self, id: SlotId) -> u32 {
        let Some(slot) = self.slots.get(id.index) else {
            return 0;
        };
        let w = slot.word.load(Ordering::Acquire);
        if generation(w) != id.generation || phase(w) != READY {
            return 0;
        }
        (w & SHARED_MASK) as u32
    }

    /// A shared lease on slot `index`, if it is ready and not held exclusively.
    pub fn try_share(&self, index: usize) -> Option<SlotLease<T>> {
        let slot = self.slots.get(index)?;
        let mut w = slot.word.load(Ordering::Acquire);
        loop {
            if phase(w) != READY || w & EXCLUSIVE != 0 || w & SHARED_MASK == SHARED_MASK {
                return None;
            }
            match slot
                .word
                .compare_exchange_weak(w, w + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return self.confirm(index, generation(w), false),
                Err(now) => w = now,
            }
        }
    }

    /// The exclusive lease on slot `index`, if it is ready and nobody holds a lease on it.
    pub fn try_take(&self, index: usize) -> Option<SlotLease<T>> {
        let slot = self.slots.get(index)?;
        let w = slot.word.load(Ordering::Acquire);
        if phase(w) != READY || w & (EXCLUSIVE | SHARED_MASK) != 0 {
            return None;
        }
        let gen = generation(w);
        slot.word
            .compare_exchange(
                w,
                word(gen, READY, true, 0),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        self.confirm(index, gen, true)
    }

    /// Gives a lease back. Returns the number of leases left on that incarnation (0 means
    /// the connection is now free), or `None` when the slot has moved on (the lease was
    /// from before a removal: nothing to do).
    pub fn release(&self, id: SlotId, exclusive: bool) -> Option<u32> {
        let slot = self.slots.get(id.index)?;
        let mut w = slot.word.load(Ordering::Acquire);
        loop {
            if generation(w) != id.generation || !matches!(phase(w), READY | REMOVING) {
                return None;
            }
            let next = if exclusive {
                if w & EXCLUSIVE == 0 {
                    return None;
                }
                w & !EXCLUSIVE
            } else {
                if w & SHARED_MASK == 0 {
                    return None;
                }
                w - 1
            };
            match slot
                .word
                .compare_exchange_weak(w, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some((next & SHARED_MASK) as u32 + u32::from(next & EXCLUSIVE != 0))
                }
                Err(now) => w = now,
            }
        }
    }

    /// Whether `id` is still the slot's live incarnation (a lease from before a removal is
    /// not): what makes handing an exclusive lease to a waiter, without releasing it, safe.
    pub fn is_current(&self, id: SlotId) -> bool {
        self.slots
            .get(id.index)
            .map(|s| s.word.load(Ordering::Acquire))
            .is_some_and(|w| generation(w) == id.generation && phase(w) == READY)
    }

    /// Takes the connection of incarnation `id` out of the pool. Leases still held on it
    /// stay usable by their holders (they own an `Arc`); their release becomes a no-op.
    pub fn remove(&self, id: SlotId) -> Option<Arc<T>> {
        self.remove_held(id).map(|(item, _)| item)
    }

    /// [`Slots::remove`], also saying whether a lease was held on it at that moment (read
    /// in the same atomic step that took it out, so no lease can be taken after it).
    pub fn remove_held(&self, id: SlotId) -> Option<(Arc<T>, bool)> {
        self.remove_when(id, false)
    }

    /// [`Slots::remove`] only if no lease is held on it, in the same atomic step: an idle
    /// connection retired or closed by the pool is never one that a checkout took an
    /// instant after it was seen idle. `None` (and the slot as it was) otherwise.
    pub fn remove_unheld(&self, id: SlotId) -> Option<Arc<T>> {
        self.remove_when(id, true).map(|(item, _)| item)
    }

    fn remove_when(&self, id: SlotId, unheld_only: bool) -> Option<(Arc<T>, bool)> {
        let slot = self.slots.get(id.index)?;
        let mut w = slot.word.load(Ordering::Acquire);
        loop {
            if generation(w) != id.generation || phase(w) != READY {
                return None;
            }
            if unheld_only && w & (SHARED_MASK | EXCLUSIVE) != 0 {
                return None;
            }
            let removing = (w & !PHASE_MASK) | (REMOVING << PHASE_SHIFT);
            match slot
                .word
                .compare_exchange_weak(w, removing, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        let held = w & (SHARED_MASK | EXCLUSIVE) != 0;
        let item = slot.item.swap(None);
        slot.word.store(
            word(id.generation.wrapping_add(1), EMPTY, false, 0),
            Ordering::Release,
        );
        item.map(|item| (item, held))
    }

    /// A shared lease on the ready, non-exclusive slot whose item `score` rates lowest
    /// (`None` skips it; 0 is taken at once). Scans without allocating; returns `None` when
    /// nothing qualifies or a race took the chosen slot (the caller looks again).
    pub fn share_best(&self, score: impl Fn(&T, u32) -> Option<u64>) -> Option<SlotLease<T>> {
        let mut best: Option<(usize, u64)> = None;
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) != READY || w & EXCLUSIVE != 0 {
                continue;
            }
            let guard = slot.item.load();
            let Some(item) = guard.as_ref() else { continue };
            let Some(s) = score(item, (w & SHARED_MASK) as u32) else {
                continue;
            };
            if s == 0 {
                return self.try_share(index);
            }
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((index, s));
            }
        }
        self.try_share(best?.0)
    }

    /// [`Slots::share_best`] for the usual case, with the load read from the slot words
    /// alone: a shared lease on the ready, non-exclusive slot holding the fewest shared
    /// leases (the first without any), when its item passes `ok` (given that count). One item
    /// is loaded instead of every slot's. `None` when no slot is ready, the chosen one fails
    /// `ok`, or a race took it: the caller then scans with `share_best`.
    pub fn share_least(&self, ok: impl Fn(&T, u32) -> bool) -> Option<SlotLease<T>> {
        let mut best: Option<(usize, u64)> = None;
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) != READY || w & EXCLUSIVE != 0 {
                continue;
            }
            let shared = w & SHARED_MASK;
            if best.is_none_or(|(_, b)| shared < b) {
                best = Some((index, shared));
                if shared == 0 {
                    break;
                }
            }
        }
        let (index, shared) = best?;
        let fits = self.slots[index]
            .item
            .load()
            .as_ref()
            .is_some_and(|item| ok(item, shared as u32));
        if fits {
            self.try_share(index)
        } else {
            None
        }
    }

    /// The exclusive lease on the first free ready slot whose item passes `ok`.
    pub fn take_first(&self, ok: impl Fn(&T) -> bool) -> Option<SlotLease<T>> {
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) != READY || w & (EXCLUSIVE | SHARED_MASK) != 0 {
                continue;
            }
            if slot.item.load().as_ref().is_some_and(|item| ok(item)) {
                if let Some(l) = self.try_take(index) {
                    return Some(l);
                }
            }
        }
        None
    }

    /// Removes every ready slot whose item matches `pred`; returns the removed items.
    pub fn remove_if(&self, pred: impl Fn(&T) -> bool) -> Vec<Arc<T>> {
        let mut out = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) != READY || !slot.item.load().as_ref().is_some_and(|item| pred(item)) {
                continue;
            }
            out.extend(self.remove(SlotId {
                index,
                generation: generation(w),
            }));
        }
        out
    }

    /// Every ready slot, as it is now.
    pub fn snapshot(&self) -> Vec<SlotView<T>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for (index, slot) in self.slots.iter().enumerate() {
            let w = slot.word.load(Ordering::Acquire);
            if phase(w) != READY {
                continue;
            }
            if let Some(item) = slot.item.load_full() {
                if generation(slot.word.load(Ordering::Acquire)) == generation(w) {
                    out.push(SlotView {
                        id: SlotId {
                            index,
                            generation: generation(w),
                        },
                        item,
                        shared: (w & SHARED_MASK) as u32,
                        exclusive: w & EXCLUSIVE != 0,
                    });
                }
            }
        }
        out
    }

    /// Slots reserved for connections being opened.
    pub fn reserved(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| phase(s.word.load(Ordering::Acquire)) == RESERVED)
            .count()
    }

    /// Slots holding a connection.
    pub fn ready(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| phase(s.word.load(Ordering::Acquire)) == READY)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn remove_unheld_leaves_a_slot_with_a_lease_alone() {
        let slots: Slots<u32> = Slots::new(1);
        let r = slots.reserve().unwrap();
        let first = slots.install(r, Arc::new(7), false).unwrap(); // the opener's lease
        let id = first.id;
        assert!(slots.remove_unheld(id).is_none());
        slots.release(first.id, false);
        // Seen idle, then checked out before the removal: left in place.
        let lease = slots.try_take(0).unwrap();
        assert!(slots.remove_unheld(id).is_none());
        assert!(slots.is_current(id));
        slots.release(lease.id, true);
        let shared = slots.try_share(0).unwrap();
        assert!(slots.remove_unheld(id).is_none());
        slots.release(shared.id, false);
        // Idle: removed.
        assert_eq!(slots.remove_unheld(id).as_deref(), Some(&7));
        assert!(!slots.is_current(id));
    }

    /// One slot as the model sees it.
    #[derive(Debug, Clone, PartialEq, Default)]
    enum Model {
        #[default]
        Empty,
        Reserved,
        Ready {
            item: u32,
            shared: u32,
            exclusive: bool,
        },
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve,
        Install(usize, bool),
        Cancel(usize),
        Share(usize),
        Take(usize),
        Release(usize),
        Remove(usize),
        StaleRelease(usize),
        /// `share_least` with an `ok` that passes items of this parity.
        ShareLeast(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Reserve),
            (0..8usize, any::<bool>()).prop_map(|(i, e)| Op::Install(i, e)),
            (0..8usize).prop_map(Op::Cancel),
            (0..4usize).prop_map(Op::Share),
            (0..4usize).prop_map(Op::Take),
            (0..16usize).prop_map(Op::Release),
            (0..4usize).prop_map(Op::Remove),
            (0..16usize).prop_map(Op::StaleRelease),
            (0..2u32).prop_map(Op::ShareLeast),
        ]
    }

    proptest! {
        /// Random sequences of reserve / install / cancel / share / take / release / remove
        /// (and releases of leases from before a removal) on 4 slots, against a plain model.
        #[test]
        fn matches_the_model(ops in proptest::collection::vec(op(), 0..300)) {
            let slots: Slots<u32> = Slots::new(4);
            let mut model = vec![Model::Empty; 4];
            let mut reservations: Vec<Reservation> = vec![];
            let mut leases: Vec<SlotLease<u32>> = vec![];
            let mut stale: Vec<SlotLease<u32>> = vec![];
            let mut next_item = 0u32;
            for op in ops {
                match op {
                    Op::Reserve => {
                        let want = model.iter().position(|m| *m == Model::Empty);
                        let got = slots.reserve();
                        prop_assert_eq!(got.as_ref().map(|r| r.index), want);
                        if let Some(r) = got {
                            model[r.index] = Model::Reserved;
                            reservations.push(r);
                        }
                    }
                    Op::Install(k, exclusive) if k < reservations.len() => {
                        let r = reservations.remove(k);
                        let index = r.index;
                        next_item += 1;
                        let lease = slots.install(r, Arc::new(next_item), exclusive);
                        let lease = lease.expect("installing into a reservation grants a lease");
                        prop_assert_eq!((lease.exclusive, *lease.item), (exclusive, next_item));
                        model[index] = Model::Ready { item: next_item, shared: u32::from(!exclusive), exclusive };
                        leases.push(lease);
                    }
                    Op::Cancel(k) if k < reservations.len() => {
                        let r = reservations.remove(k);
                        model[r.index] = Model::Empty;
                        slots.cancel(r);
                    }
                    Op::Share(i) => {
                        let got = slots.try_share(i);
                        match &mut model[i] {
                            Model::Ready { item, shared, exclusive: false } => {
                                let l = got.expect("a ready, non-exclusive slot grants a shared lease");
                                prop_assert_eq!(*l.item, *item);
                                *shared += 1;
                                leases.push(l);
                            }
                            _ => prop_assert!(got.is_none()),
                        }
                    }
                    Op::ShareLeast(parity) => {
                        let got = slots.share_least(|item, _| item % 2 == parity);
                        let mut best: Option<(usize, u32)> = None;
                        for (i, m) in model.iter().enumerate() {
                            if let Model::Ready { shared, exclusive: false, .. } = m {
                                if best.is_none_or(|(_, b)| *shared < b) {
                                    best = Some((i, *shared));
                                }
                            }
                        }
                        match best.map(|(i, _)| (i, &mut model[i])) {
                            Some((i, Model::Ready { item, shared, .. })) if *item % 2 == parity => {
                                let l = got.expect("the slot with the fewest leases, when it passes");
                                prop_assert_eq!(l.id.index, i);
                                prop_assert_eq!(*l.item, *item);
                                *shared += 1;
                                leases.push(l);
                            }
                            _ => prop_assert!(got.is_none()),
                        }
                    }
                    Op::Take(i) => {
                        let got = slots.try_take(i);
                        match &mut model[i] {
                            Model::Ready { item, shared: 0, exclusive } if !*exclusive => {
                                let l = got.expect("a free ready slot grants the exclusive lease");
                                prop_assert_eq!(*l.item, *item);
                                *exclusive = true;
                                leases.push(l);
                            }
                            _ => prop_assert!(got.is_none()),
                        }
                    }
                    Op::Release(k) if k < leases.len() => {
                        let l = leases.remove(k);
                        let left = slots.release(l.id, l.exclusive);
                        match &mut model[l.id.index] {
                            Model::Ready { shared, exclusive, .. } => {
                                if l.exclusive { *exclusive = false } else { *shared -= 1 }
                                prop_assert_eq!(left, Some(*shared + u32::from(*exclusive)));
                            }
                            _ => prop_assert!(false, "a live lease on a slot that is not ready"),
                        }
                    }
                    Op::Remove(i) => {
                        let id = slots.snapshot().into_iter().find(|v| v.id.index == i).map(|v| v.id);
                        match (&model[i], id) {
                            (Model::Ready { item, .. }, Some(id)) => {
                                let removed = slots.remove(id);
                                prop_assert_eq!(removed.map(|a| *a), Some(*item));
                                // Leases on it go stale: their holders keep the item.
                                let (gone, keep): (Vec<_>, Vec<_>) = leases.drain(..).partition(|l| l.id == id);
                                leases = keep;
                                stale.extend(gone);
                                model[i] = Model::Empty;
                            }
                            (Model::Ready { .. }, None) => prop_assert!(false, "snapshot misses a ready slot"),
                            (_, found) => prop_assert!(found.is_none()),
                        }
                    }
                    Op::StaleRelease(k) if k < stale.len() => {
                        let l = stale.remove(k);
                        // Whatever now lives in the slot is untouched.
                        prop_assert_eq!(slots.release(l.id, l.exclusive), None);
                    }
                    _ => {}
                }
                // The whole observable state matches the model after every step.
                let view = slots.snapshot();
                for (i, m) in model.iter().enumerate() {
                    let v = view.iter().find(|v| v.id.index == i);
                    match (m, v) {
                        (Model::Ready { item, shared, exclusive }, Some(v)) => {
                            prop_assert_eq!((*v.item, v.shared, v.exclusive), (*item, *shared, *exclusive));
                        }
                        (Model::Ready { .. }, None) => prop_assert!(false, "slot {} should be ready", i),
                        (_, v) => prop_assert!(v.is_none(), "slot {} should not be ready", i),
                    }
                }
                prop_assert_eq!(slots.reserved(), model.iter().filter(|m| **m == Model::Reserved).count());
            }
        }
    }

    /// Threads share, take, release, remove and refill 2 slots at once. Each item counts its
    /// own holders: an exclusive holder must never see a shared one on the same item, and
    /// a removed item is never handed out again.
    #[test]
    fn concurrent_leases_removals_and_refills_keep_the_rules() {
        struct Item {
            shared: AtomicUsize,
            exclusive: AtomicUsize,
            removed: std::sync::atomic::AtomicBool,
        }
        let slots: Arc<Slots<Item>> = Arc::new(Slots::new(2));
        let new_item = || {
            Arc::new(Item {
                shared: AtomicUsize::new(0),
                exclusive: AtomicUsize::new(0),
                removed: std::sync::atomic::AtomicBool::new(false),
            })
        };
        for _ in 0..2 {
            let r = slots.reserve().unwrap();
            let l = slots.install(r, new_item(), false).unwrap();
            slots.release(l.id, false);
        }
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    let mut granted = 0;
                    for i in 0..20_000usize {
                        let index = (i + t) % 2;
                        match (i * 7 + t) % 11 {
                            0 => {
                                if let Some(v) =
                                    slots.snapshot().into_iter().find(|v| v.id.index == index)
                                {
                                    if let Some(item) = slots.remove(v.id) {
                                        item.removed.store(true, Ordering::SeqCst);
                                    }
                                }
                                if let Some(r) = slots.reserve() {
                                    if let Some(l) = slots.install(r, new_item(), false) {
                                        slots.release(l.id, false);
                                    }
                                }
                            }
                            1..=3 => {
                                if let Some(l) = slots.try_take(index) {
                                    granted += 1;
                                    assert!(
                                        !l.item.removed.load(Ordering::SeqCst)
                                            || !slots.is_current(l.id)
                                    );
                                    assert_eq!(l.item.exclusive.fetch_add(1, Ordering::SeqCst), 0);
                                    assert_eq!(l.item.shared.load(Ordering::SeqCst), 0);
                                    l.item.exclusive.fetch_sub(1, Ordering::SeqCst);
                                    slots.release(l.id, true);
                                }
                            }
                            _ => {
                                if let Some(l) = slots.try_share(index) {
                                    granted += 1;
                                    l.item.shared.fetch_add(1, Ordering::SeqCst);
                                    assert_eq!(l.item.exclusive.load(Ordering::SeqCst), 0);
                                    l.item.shared.fetch_sub(1, Ordering::SeqCst);
                                    slots.release(l.id, false);
                                }
                            }
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted > 1000, "leases were granted ({granted})");
        for v in slots.snapshot() {
            assert_eq!(
                (v.shared, v.exclusive),
                (0, false),
                "every lease was returned"
            );
        }
    }
}
