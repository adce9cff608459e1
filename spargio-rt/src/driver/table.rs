//! A shard's table of in-flight ops: a slab indexed by the slot in each
//! op's `user_data`, with a generation per slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;

use super::cell::Completion;
use super::user_data;
use super::Cqe;

struct Slot {
    gen: u32,
    op: Option<Arc<dyn Completion>>,
    /// The op came from outside the runtime and holds one of the
    /// runtime's `RemoteSlots`, given back at its last CQE.
    remote: bool,
}

/// What a CQE's tag named in the table.
pub(crate) struct Found {
    pub(crate) op: Arc<dyn Completion>,
    /// The CQE ends the op (its slot is free again).
    pub(crate) last: bool,
    /// The op holds one of the runtime's `RemoteSlots` (it came from outside
    /// the runtime); with `last`, the caller gives it back.
    pub(crate) remote: bool,
}

/// Ops a table set a slot aside for, to be woken after the table's borrow
/// ends.
#[must_use = "the ops given slots must be woken"]
pub(crate) struct SlotWakeups(Vec<Arc<dyn Completion>>);

impl SlotWakeups {
    /// Wakes each op's task, oldest first.
    pub(crate) fn wake(self) {
        for op in self.0 {
            op.op_tag().slot_waker.wake();
        }
    }
}

/// Where ids of queues for a slot come from (op tables, `RemoteSlots`):
/// each queue gets its own, never reused.
static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a queue of ops waiting for a slot (never 0).
pub(crate) fn new_queue_id() -> u64 {
    NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed)
}

/// The smallest queue of ops waiting for a slot that is swept for dead
/// entries (see `OpTable::sweep_at`).
pub(crate) const MIN_SWEEP_AT: usize = 64;

/// In-flight ops of one shard. Only the shard's thread touches it.
pub(crate) struct OpTable {
    /// This table's id (never 0), which an op waiting in its queue records
    /// in `OpTag::slot_queue`.
    id: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    limit: usize,
    /// Ops waiting for a free slot (backpressure when the table is full),
    /// each queued once however often its future is polled here. Weak, so
    /// that an op whose future is dropped while it waits releases its
    /// buffers and fd at once; its entry stays behind, dead, until it
    /// comes up. An entry is live only while its op's `slot_queue` names
    /// this table (see `OpTag::slot_queue`); others are skipped.
    waiting: VecDeque<Weak<dyn Completion>>,
    /// Ops woken from `waiting` with a slot set aside for each: until
    /// they come back for it (or are gone, or wait elsewhere), fresh ops
    /// do not take those slots, so a task that keeps submitting cannot
    /// starve the ops queued before it (it would take each slot freed
    /// before the woken op ran).
    claimed: Vec<Weak<dyn Completion>>,
    /// `waiting`'s length at which its dead entries are swept out: while
    /// the table stays full nothing comes up, and ops that wait and are
    /// dropped (connections closed before their read got a slot) would
    /// otherwise pile up for as long. Twice the live entries left by the
    /// last sweep (at least [`MIN_SWEEP_AT`]), so sweeps cost O(1) per
    /// entry queued.
    sweep_at: usize,
    /// CQEs whose tag matched no live op (counted, never acted on).
    pub(crate) stale: u64,
}

impl OpTable {
    pub(crate) fn new(limit: usize) -> Self {
        OpTable {
            id: new_queue_id(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            limit: limit.max(1),
            waiting: VecDeque::new(),
            claimed: Vec::new(),
            sweep_at: MIN_SWEEP_AT,
            stale: 0,
        }
    }

    /// Ops in flight.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Registers `op`; returns its `user_data`, or `None` when the table is
    /// full (then `waker` is woken when a slot frees up; see
    /// [`hand_out_free_slots`](Self::hand_out_free_slots)).
    ///
    /// An op already waiting in another table's queue (its future moved
    /// here from another shard) queues here too, and from then on waits
    /// for this table's slots only.
    ///
    /// Slots are handed out in queue order: an op woken for a slot finds
    /// it set aside, and a fresh op takes only slots no woken op is owed.
    pub(crate) fn insert(&mut self, op: Arc<dyn Completion>, waker: &Waker) -> Option<u64> {
        if self.take_claim(&op) {
            return Some(self.insert_unbounded(op, false));
        }
        if self.live + self.claimed.len() >= self.limit {
            if op.op_tag().wait_in(self.id, waker) {
                self.waiting.push_back(Arc::downgrade(&op));
                if self.waiting.len() >= self.sweep_at {
                    self.sweep_waiting();
                }
            }
            return None;
        }
        Some(self.insert_unbounded(op, false))
    }

    /// Whether ops are queued for a slot, or woken ops owed one.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty() || !self.claimed.is_empty()
    }

    /// Takes the slot set aside for `op`, if there is one.
    fn take_claim(&mut self, op: &Arc<dyn Completion>) -> bool {
        if self.claimed.is_empty() || !op.op_tag().holds_claim(self.id) {
            return false;
        }
        let at = self
            .claimed
            .iter()
            .position(|c| std::ptr::addr_eq(c.as_ptr(), Arc::as_ptr(op)));
        match at {
            Some(i) => {
                self.claimed.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Gives back the slots set aside for ops that will not come for them:
    /// gone (their future was dropped), waiting in another queue (stolen
    /// to another shard), or placed elsewhere.
    fn release_stale_claims(&mut self) {
        let id = self.id;
        self.claimed
            .retain(|c| c.upgrade().is_some_and(|op| op.op_tag().holds_claim(id)));
    }

    /// Sets free slots aside for queued ops, one each, oldest first, and
    /// returns them to be woken once the table is no longer borrowed (a
    /// waker is arbitrary code, which may submit an op of its own). An
    /// entry whose op is gone (its future was dropped while it waited) or
    /// no longer waits here (it moved to another shard's queue, or got a
    /// slot meanwhile) leaves the queue without taking a slot from a live
    /// one.
    ///
    /// Called whenever a slot frees and on every loop turn while ops wait,
    /// so a woken op that never came back for its slot (its task was
    /// aborted before it ran) does not strand the ones behind it.
    #[must_use = "the ops given slots must be woken"]
    pub(crate) fn hand_out_free_slots(&mut self) -> SlotWakeups {
        let mut woken = SlotWakeups(Vec::new());
        if !self.claimed.is_empty() {
            self.release_stale_claims();
        }
        let mut free = self.limit.saturating_sub(self.live + self.claimed.len());
        while free > 0 {
            let Some(entry) = self.waiting.pop_front() else {
                break;
            };
            if let Some(op) = self.take_entry(&entry) {
                self.claimed.push(entry);
                woken.0.push(op);
                free -= 1;
            }
        }
        woken
    }

    /// Whether slots are set aside for ops that have not come for them
    /// yet. A claim goes stale without this table hearing of it when its
    /// op is dropped, or polled, on another thread: the shard looks again
    /// while it sleeps (see `worker::park_or_spin`).
    pub(crate) fn has_claims(&self) -> bool {
        !self.claimed.is_empty()
    }

    /// Drops the queue's dead entries (ops gone, or waiting elsewhere or no
    /// longer), keeping the order of the rest.
    fn sweep_waiting(&mut self) {
        let id = self.id;
        self.waiting
            .retain(|entry| entry.upgrade().is_some_and(|op| op.op_tag().waits_in(id)));
        self.sweep_at = (2 * self.waiting.len()).max(MIN_SWEEP_AT);
    }

    /// The op of a queue entry taken off the queue, if the entry is live:
    /// the op exists and waits in this table's queue (which it then no
    /// longer does: a slot is set aside for it instead).
    fn take_entry(&self, entry: &Weak<dyn Completion>) -> Option<Arc<dyn Completion>> {
        let op = entry.upgrade()?;
        op.op_tag().claim(self.id).then_some(op)
    }

    /// Registers `op` even past the limit: `remote`, an op from outside
    /// the runtime, which waited for one of the runtime's `RemoteSlots`
    /// instead (see [`Found::remote`]).
    pub(crate) fn insert_unbounded(&mut self, op: Arc<dyn Completion>, remote: bool) -> u64 {
        // The op waits in no queue any more: an entry left in one is stale.
        let queued = &op.op_tag().slot_queue;
        if queued.load(Ordering::Relaxed) != 0 {
            queued.store(0, Ordering::Release);
        }
        self.live += 1;
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    op: None,
                    remote: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        slot.gen = user_data::next_gen(slot.gen);
        slot.op = Some(op);
        slot.remote = remote;
        user_data::encode(slot.gen, idx)
    }

    /// Frees the slot of an op whose SQE was never queued (building it
    /// panicked), so it does not hold a slot for good. Returns the ops
    /// given a slot to wake, as [`hand_out_free_slots`](Self::hand_out_free_slots).
    #[must_use = "the ops given slots must be woken"]
    pub(crate) fn release_unsubmitted(&mut self, ud: u64) -> SlotWakeups {
        let Some((gen, idx)) = user_data::decode(ud) else {
            return SlotWakeups(Vec::new());
        };
        match self
            .slots
            .get_mut(idx as usize)
            .filter(|s| s.gen == gen && s.op.is_some())
        {
            Some(slot) => {
                slot.op = None;
                self.free.push(idx);
                self.live -= 1;
                self.hand_out_free_slots()
            }
            None => SlotWakeups(Vec::new()),
        }
    }

    /// Whether `ud` names `op` itself (live, same slot generation): a tag
    /// taken elsewhere may be stale and name another op.
    pub(crate) fn holds(&self, ud: u64, op: &Arc<dyn Completion>) -> bool {
        let Some((gen, idx)) = user_data::decode(ud) else {
            return false;
        };
        self.slots
            .get(idx as usize)
            .filter(|s| s.gen == gen)
            .and_then(|s| s.op.as_ref())
            .is_some_and(|held| Arc::ptr_eq(held, op))
    }

    /// Looks up the op a CQE belongs to. When the CQE ends it, the slot is
    /// freed (the caller holds the last driver-side reference), and the
    /// caller wakes a waiter for it with
    /// [`hand_out_free_slots`](Self::hand_out_free_slots) once the op is
    /// completed: a waiter's waker is arbitrary code, and if it panicked
    /// before the op's completion, that completion would be lost with the
    /// unwinding. `None` for a stale tag.
    pub(crate) fn lookup(&mut self, ud: u64, cqe: Cqe) -> Option<Found> {
        let (gen, idx) = user_data::decode(ud)?;
        let found = self
            .slots
            .get_mut(idx as usize)
            .filter(|s| s.gen == gen && s.op.is_some());
        let Some(slot) = found else {
            self.stale += 1;
            return None;
        };
        let last = !cqe.more();
        let remote = slot.remote;
        let op = if last {
            let op = slot.op.take().expect("checked");
            self.free.push(idx);
            self.live -= 1;
            op
        } else {
            slot.op.clone().expect("checked")
        };
        Some(Found { op, last, remote })
    }

    /// Every live op's `user_data` (shutdown cancels them all).
    pub(crate) fn live_tags(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.op.is_some())
            .map(|(i, s)| user_data::encode(s.gen, i as u32))
            .collect()
    }

    /// Forgets every live op without freeing it (their CQEs never came, so
    /// the kernel may still hold their buffers: leak rather than free).
    pub(crate) fn leak_all(&mut self) {
        for s in self.slots.iter_mut() {
            if let Some(op) = s.op.take() {
                std::mem::forget(op);
            }
        }
        self.live = 0;
    }

    /// Wakes everyone waiting for a slot here (shutdown).
    pub(crate) fn wake_waiting(&mut self) {
        for entry in std::mem::take(&mut self.waiting) {
            if let Some(op) = self.take_entry(&entry) {
                op.op_tag().slot_waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize, super::super::cell::OpTag);
    impl Completion for Count {
        fn complete(&self, _: Cqe) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
        fn op_tag(&self) -> &super::super::cell::OpTag {
            &self.1
        }
    }

    fn noop_waker() -> Waker {
        futures_util::task::noop_waker()
    }

    #[test]
    fn ops_dropped_while_the_table_is_full_do_not_pile_up_in_its_queue() {
        let mut t = OpTable::new(1);
        let new_op =
            || -> Arc<dyn Completion> { Arc::new(Count(AtomicUsize::new(0), Default::default())) };
        let held = new_op();
        t.insert(held.clone(), &noop_waker()).unwrap();
        let waiting = new_op();
        assert!(t.insert(waiting.clone(), &noop_waker()).is_none());
        for _ in 0..10_000 {
            let gone = new_op();
            assert!(t.insert(gone.clone(), &noop_waker()).is_none());
        }
        assert!(
            t.waiting.len() <= MIN_SWEEP_AT,
            "{} entries",
            t.waiting.len()
        );
        // The op still waiting keeps its place at the front.
        let front = t.waiting.front().and_then(Weak::upgrade).unwrap();
        assert!(Arc::ptr_eq(&front, &waiting));
    }

    #[test]
    fn a_reused_slot_rejects_the_old_tag() {
        let mut t = OpTable::new(4);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let first = t.insert(op.clone(), &noop_waker()).unwrap();
        let done = Cqe { res: 0, flags: 0 };
        assert!(t.lookup(first, done).is_some());
        let second = t.insert(op, &noop_waker()).unwrap();
        assert_ne!(first, second);
        assert!(t.lookup(first, done).is_none(), "stale tag must not match");
        assert_eq!(t.stale, 1);
        assert!(t.lookup(second, done).is_some());
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_full_table_gives_backpressure() {
        let mut t = OpTable::new(1);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let a = t.insert(op.clone(), &noop_waker()).unwrap();
        assert!(t.insert(op.clone(), &noop_waker()).is_none());
        end(&mut t, a);
        assert!(t.insert(op, &noop_waker()).is_some());
    }

    /// Ends op `ud` as the shard does: its final CQE, then a wake-up for
    /// the slot it freed.
    fn end(t: &mut OpTable, ud: u64) {
        assert!(t.lookup(ud, Cqe { res: 0, flags: 0 }).is_some());
        t.hand_out_free_slots().wake();
    }

    /// A waker that counts its wake-ups.
    struct Wakes(AtomicUsize);
    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (Arc<Wakes>, Waker) {
        let w = Arc::new(Wakes(AtomicUsize::new(0)));
        (w.clone(), Waker::from(w))
    }

    fn count_op() -> Arc<dyn Completion> {
        Arc::new(Count(AtomicUsize::new(0), Default::default()))
    }

    #[test]
    fn a_waiter_whose_future_is_gone_does_not_take_the_free_slot() {
        let mut t = OpTable::new(1);
        let a = t.insert(count_op(), &noop_waker()).unwrap();
        // B waits, then its future is dropped (the table holds the last
        // reference); C waits behind it.
        assert!(t.insert(count_op(), &noop_waker()).is_none());
        let c = count_op();
        let (c_wakes, c_waker) = counting_waker();
        assert!(t.insert(c.clone(), &c_waker).is_none());
        end(&mut t, a);
        assert_eq!(
            c_wakes.0.load(Ordering::SeqCst),
            1,
            "C gets the slot B left"
        );
        assert!(t.insert(c, &c_waker).is_some());
    }

    #[test]
    fn a_waiter_polled_again_is_queued_once_and_woken_through_its_last_waker() {
        let mut t = OpTable::new(1);
        let a = t.insert(count_op(), &noop_waker()).unwrap();
        let b = count_op();
        let (first, first_waker) = counting_waker();
        let (last, last_waker) = counting_waker();
        assert!(t.insert(b.clone(), &first_waker).is_none());
        assert!(t.insert(b.clone(), &last_waker).is_none());
        assert_eq!(t.waiting.len(), 1);
        end(&mut t, a);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(last.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn waiters_woken_for_a_slot_they_never_took_are_followed_by_the_next() {
        let mut t = OpTable::new(1);
        let a = t.insert(count_op(), &noop_waker()).unwrap();
        let b = count_op();
        let c = count_op();
        let (b_wakes, b_waker) = counting_waker();
        let (c_wakes, c_waker) = counting_waker();
        assert!(t.insert(b.clone(), &b_waker).is_none());
        assert!(t.insert(c.clone(), &c_waker).is_none());
        end(&mut t, a);
        assert_eq!(b_wakes.0.load(Ordering::SeqCst), 1);
        // B's task was aborted after its wake-up, before it polled: no op
        // completes again, but the next turn's check hands the slot on.
        drop(b);
        assert_eq!(c_wakes.0.load(Ordering::SeqCst), 0);
        t.hand_out_free_slots().wake();
        assert_eq!(c_wakes.0.load(Ordering::SeqCst), 1);
        assert!(t.insert(c, &c_waker).is_some());
        assert!(!t.has_waiting());
    }

    #[test]
    fn an_op_that_moves_to_a_second_full_table_waits_for_that_tables_slot() {
        let mut first = OpTable::new(1);
        let mut second = OpTable::new(1);
        let a = first.insert(count_op(), &noop_waker()).unwrap();
        let b = second.insert(count_op(), &noop_waker()).unwrap();
        let op = count_op();
        let (wakes, waker) = counting_waker();
        // Queued on the first shard, then polled on the second (its task
        // was stolen): it queues there as well.
        assert!(first.insert(op.clone(), &waker).is_none());
        assert!(second.insert(op.clone(), &waker).is_none());
        assert!(second.has_waiting());
        // A later waiter on the first shard.
        let c = count_op();
        let (c_wakes, c_waker) = counting_waker();
        assert!(first.insert(c.clone(), &c_waker).is_none());

        end(&mut second, b);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the second shard's slot");
        assert!(second.insert(op.clone(), &waker).is_some());

        // The entry left on the first shard is stale: the first shard's
        // free slot goes to the op still waiting there.
        end(&mut first, a);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(c_wakes.0.load(Ordering::SeqCst), 1);
        assert!(first.insert(c, &c_waker).is_some());
        assert!(!first.has_waiting());
    }

    #[test]
    fn the_queue_does_not_keep_a_dropped_waiter_alive() {
        struct Dropped(
            Arc<std::sync::atomic::AtomicBool>,
            super::super::cell::OpTag,
        );
        impl Completion for Dropped {
            fn complete(&self, _: Cqe) -> bool {
                true
            }
            fn op_tag(&self) -> &super::super::cell::OpTag {
                &self.1
            }
        }
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let mut t = OpTable::new(1);
        t.insert(count_op(), &noop_waker()).unwrap();
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let op: Arc<dyn Completion> = Arc::new(Dropped(gone.clone(), Default::default()));
        assert!(t.insert(op.clone(), &noop_waker()).is_none());
        drop(op);
        assert!(gone.load(Ordering::SeqCst), "dropped while it waits");
        assert!(t.has_waiting(), "its (dead) entry is still queued");
    }

    #[test]
    fn multishot_cqes_keep_the_slot_until_the_last() {
        let mut t = OpTable::new(2);
        let op: Arc<dyn Completion> = Arc::new(Count(AtomicUsize::new(0), Default::default()));
        let ud = t.insert(op, &noop_waker()).unwrap();
        let more = Cqe {
            res: 5,
            flags: 1 << 1, // IORING_CQE_F_MORE
        };
        assert!(matches!(
            t.lookup(ud, more),
            Some(Found { last: false, .. })
        ));
        assert_eq!(t.live(), 1);
        assert!(matches!(
            t.lookup(ud, Cqe { res: 0, flags: 0 }),
            Some(Found { last: true, .. })
        ));
        assert_eq!(t.live(), 0);
    }
}
