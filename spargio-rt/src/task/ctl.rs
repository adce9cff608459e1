//! The live-task registry, and abort.
//!
//! A task's abort flag lives in its own allocation ([`TaskMeta`]'s
//! `aborted`); whoever runs tasks (a shard, a pool thread) checks it, and
//! the registry's `aborting` flag, before each poll, and drops an aborted
//! task's runnable instead of polling it: async-task then drops the future
//! there, on the thread that owns it, and the task's `JoinHandle` reports
//! it cancelled. The task's [`Guard`](super::guard::Guard) checks both
//! flags again inside the poll, for an abort that lands after the runner's
//! check (its wake-up found the task still scheduled and did nothing). [`JoinHandle::abort`](super::JoinHandle::abort) sets the
//! flag and wakes the task so that this happens at once.
//!
//! The registry is what lets shutdown reach tasks that nothing would ever
//! wake again (two tasks waiting on each other, say), so nothing leaks: it
//! holds a waker of every live task, in a slot of the partition of the
//! shard that spawned it (one more partition for threads outside the
//! runtime). Shutdown sets `aborting` and wakes them all. A task leaves its
//! slot when its future is dropped (it finished, was aborted or cancelled),
//! through the [`Guard`](super::guard::Guard) around it, which holds its
//! partition and slot. One lock round per spawn and per end, no allocation
//! (freed slots are reused) and no sweep. A partition's lock is its shard's
//! alone: a task that ends on another shard (it was stolen) puts its slot
//! on the partition's `returned` list instead, which the shard takes back
//! in one go when it runs out of free slots or out of work, so a shard
//! spawning tasks that the other shard runs does not fight it for its
//! lock.
//!
//! [`TaskMeta`]: super::TaskMeta

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use crossbeam_utils::CachePadded;

/// The tasks spawned from one shard (or, for the last partition, from
/// threads outside the runtime): a slot per live task, holding its waker.
#[derive(Debug, Default)]
pub(crate) struct Partition {
    /// The shard that spawns into this partition; `None` for the partition
    /// of threads outside the runtime, and for a pool's.
    owner: Option<usize>,
    slots: Mutex<Slots>,
    /// Slots freed on threads other than `owner`'s, still holding their
    /// wakers, to go back to `slots`. On a cache line of its own: other
    /// shards write it while the owner works on `slots`.
    returned: CachePadded<Mutex<Vec<u32>>>,
    /// The registry's `aborting`, copied here for the guards of this
    /// partition's tasks to check inside their polls (see `Slot::aborting`);
    /// read on every poll, so on a line of its own.
    aborting: CachePadded<AtomicBool>,
}

#[derive(Debug, Default)]
struct Slots {
    /// `None`: free, its index is in `free`.
    wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
    live: usize,
}

/// Slot arrays are trimmed back to this many when their partition has no
/// live task left (after a burst of spawns, say).
const KEEP_SLOTS: usize = 1024;

impl Slots {
    /// Trims the arrays back to [`KEEP_SLOTS`] when no slot is held (after
    /// a burst of spawns, ended here or taken back from other shards):
    /// nothing refers to any index then.
    fn trim_if_unused(&mut self) {
        if self.live == 0 && self.wakers.len() > KEEP_SLOTS {
            self.wakers.clear();
            self.wakers.shrink_to(KEEP_SLOTS);
            self.free.clear();
            self.free.shrink_to(KEEP_SLOTS);
        }
    }
}

/// A task's place in the registry, held by its guard.
#[derive(Debug)]
pub(crate) struct Slot {
    part: Arc<CachePadded<Partition>>,
    index: u32,
}

impl Slot {
    /// Whether every task of the registry is being dropped (shutdown):
    /// the task's guard checks it inside each poll, as it does the task's
    /// own abort flag, for a wake-up that found the task still scheduled.
    pub(crate) fn aborting(&self) -> bool {
        self.part.aborting.load(Ordering::Acquire)
    }

    /// Frees the slot; the task is no longer live. Called once, when the
    /// task's future is dropped.
    pub(crate) fn release(&self) {
        let part = &*self.part;
        if part.owner.is_some() && crate::shard::local::with_current(|l| l.index) != part.owner {
            // Another shard's partition: its owner takes the slot back.
            lock(&part.returned).push(self.index);
            return;
        }
        let waker = {
            let mut slots = lock(&part.slots);
            let waker = slots.wakers[self.index as usize].take();
            debug_assert!(waker.is_some(), "a registry slot released twice");
            slots.free.push(self.index);
            slots.live -= 1;
            slots.trim_if_unused();
            waker
        };
        // Outside the lock: a waker's drop may free its task, and with it
        // the runtime handle its scheduler holds.
        drop(waker);
    }
}

impl Partition {
    fn new(owner: Option<usize>) -> Self {
        Partition {
            owner,
            ..Partition::default()
        }
    }

    /// Tasks registered here and not yet finished.
    fn live(&self) -> usize {
        let slots = lock(&self.slots);
        slots.live - lock(&self.returned).len()
    }
}

/// Takes the slots other threads freed back into `slots`; returns their
/// wakers, for the caller to drop once it let go of the lock.
fn take_back(part: &Partition, slots: &mut Slots) -> Vec<Waker> {
    let returned = std::mem::take(&mut *lock(&part.returned));
    let mut wakers = Vec::with_capacity(returned.len());
    for i in returned {
        wakers.extend(slots.wakers[i as usize].take());
        slots.free.push(i);
        slots.live -= 1;
    }
    slots.trim_if_unused();
    wakers
}

/// All live tasks of one runtime (or of one pool), in partitions.
#[derive(Debug)]
pub(crate) struct Registry {
    parts: Box<[Arc<CachePadded<Partition>>]>,
    /// Set by [`abort_all`](Self::abort_all): every task is dropped at its
    /// next scheduling point, whenever it was spawned.
    aborting: AtomicBool,
}

impl Registry {
    /// A registry with a partition for each of `shards` shards, and one
    /// more for threads outside the runtime.
    pub(crate) fn for_shards(shards: usize) -> Self {
        Self::with_partitions((0..=shards).map(|i| (i < shards).then_some(i)))
    }

    /// A registry of one partition, for a pool.
    pub(crate) fn for_pool() -> Self {
        Self::with_partitions([None])
    }

    fn with_partitions(owners: impl IntoIterator<Item = Option<usize>>) -> Self {
        Registry {
            parts: owners
                .into_iter()
                .map(|owner| Arc::new(CachePadded::new(Partition::new(owner))))
                .collect(),
            aborting: AtomicBool::new(false),
        }
    }

    /// Registers a new task in partition `part % parts`: `spawn` gets the
    /// task's slot (for its guard) and returns what it built with the
    /// task's waker, which the slot keeps. `spawn` runs under the
    /// partition's lock: it must only build the task (no wake-up, no
    /// scheduling, nothing that can panic: unwinding would drop the guard
    /// holding the slot, whose release takes the same lock).
    pub(crate) fn insert<R>(&self, part: usize, spawn: impl FnOnce(Slot) -> (R, Waker)) -> R {
        let part = &self.parts[part % self.parts.len()];
        let mut slots = lock(&part.slots);
        let mut finished = Vec::new();
        if slots.free.is_empty() {
            finished = take_back(part, &mut slots);
        }
        let index = match slots.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(slots.wakers.len())
                    .expect("spargio: more than 2^32 live tasks spawned from one shard");
                slots.wakers.push(None);
                i
            }
        };
        let slot = Slot {
            part: part.clone(),
            index,
        };
        let (built, waker) = spawn(slot);
        slots.wakers[index as usize] = Some(waker);
        slots.live += 1;
        drop(slots);
        drop(finished);
        built
    }

    /// Takes back the slots freed off their owner into partition `part`
    /// (a shard's own, called by that shard when it runs out of work), so
    /// the wakers they hold, and with them the allocations of finished
    /// tasks, go now rather than at the owner's next spawn that finds no
    /// free slot, which may never come.
    pub(crate) fn reclaim(&self, part: usize) {
        let part = &self.parts[part % self.parts.len()];
        if lock(&part.returned).is_empty() {
            return;
        }
        let finished = take_back(part, &mut lock(&part.slots));
        // Outside the lock, as in `Slot::release`.
        drop(finished);
    }

    /// Takes back the slots freed off their owner in every partition: at
    /// shutdown, once the shards have stopped, so that no finished task's
    /// waker outlives the runtime. Such a waker keeps its task's
    /// allocation, and through its scheduler the runtime's state, which
    /// holds the registry: a cycle nothing else would break when the
    /// owning shard exited without parking after the slot came back.
    pub(crate) fn reclaim_all(&self) {
        for part in 0..self.parts.len() {
            self.reclaim(part);
        }
    }

    /// Whether every task is being dropped (see [`abort_all`](Self::abort_all)).
    pub(crate) fn aborting(&self) -> bool {
        self.aborting.load(Ordering::Acquire)
    }

    /// Tasks spawned and not yet finished.
    pub(crate) fn live(&self) -> usize {
        self.parts.iter().map(|p| p.live()).sum()
    }

    /// Aborts every task, live now or spawned later: each is dropped at its
    /// next scheduling point, and the live ones are woken so that comes at
    /// once (a finished task in a `returned` slot is woken too, which does
    /// nothing). Returns how many were woken.
    pub(crate) fn abort_all(&self) -> usize {
        self.aborting.store(true, Ordering::Release);
        for part in self.parts.iter() {
            part.aborting.store(true, Ordering::Release);
        }
        let mut n = 0;
        for part in self.parts.iter() {
            // Woken outside the lock: a wake-up can drop the task on this
            // thread (its shard exited), which releases its slot.
            let wakers: Vec<Waker> = lock(&part.slots).wakers.iter().flatten().cloned().collect();
            n += wakers.len();
            for w in wakers {
                w.wake();
            }
        }
        n
    }
}

/// Locks a registry partition; a panic elsewhere never poisons our data
/// (no code of ours panics while holding it), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn register(r: &Registry, part: usize, w: &Arc<Counted>) -> Slot {
        r.insert(part, |slot| (slot, Waker::from(w.clone())))
    }

    #[test]
    fn live_counts_reuse_and_abort_all() {
        let r = Registry::with_partitions([None, None]);
        let w = Arc::new(Counted(AtomicUsize::new(0)));
        let slots: Vec<_> = (0..200).map(|i| register(&r, i, &w)).collect();
        assert_eq!(r.live(), 200);
        for s in &slots[..150] {
            s.release();
        }
        assert_eq!(r.live(), 50);
        // Freed slots are reused: the slot arrays do not grow.
        let more: Vec<_> = (0..150).map(|i| register(&r, i, &w)).collect();
        let len: usize = r.parts.iter().map(|p| lock(&p.slots).wakers.len()).sum();
        assert_eq!(len, 200);
        assert_eq!(r.live(), 200);
        assert!(!r.aborting());
        assert_eq!(r.abort_all(), 200);
        assert!(r.aborting());
        assert_eq!(w.0.load(Ordering::SeqCst), 200);
        for s in slots[150..].iter().chain(&more) {
            s.release();
        }
        assert_eq!(r.live(), 0);
        // The waker clones the registry held are gone.
        assert_eq!(Arc::strong_count(&w), 1);
    }

    #[test]
    fn an_empty_partition_gives_back_its_slots() {
        let r = Registry::for_pool();
        let w = Arc::new(Counted(AtomicUsize::new(0)));
        let slots: Vec<_> = (0..3 * KEEP_SLOTS).map(|_| register(&r, 0, &w)).collect();
        for s in &slots {
            s.release();
        }
        let p = lock(&r.parts[0].slots);
        assert!(p.wakers.is_empty() && p.wakers.capacity() <= KEEP_SLOTS);
    }

    #[test]
    fn a_partition_emptied_through_its_returned_slots_gives_them_back() {
        // Tasks of shard 0's partition that all ended elsewhere (this test
        // thread is no shard): taken back, the slots shrink as if they had
        // ended on their own shard.
        let r = Registry::with_partitions([Some(0)]);
        let w = Arc::new(Counted(AtomicUsize::new(0)));
        let slots: Vec<_> = (0..3 * KEEP_SLOTS).map(|_| register(&r, 0, &w)).collect();
        for s in &slots {
            s.release();
        }
        r.reclaim(0);
        let p = lock(&r.parts[0].slots);
        assert!(p.wakers.is_empty() && p.wakers.capacity() <= KEEP_SLOTS);
        assert!(p.free.capacity() <= KEEP_SLOTS);
    }

    #[test]
    fn slots_freed_off_their_shard_come_back_when_the_free_list_runs_out() {
        // Partition 0 belongs to shard 0; this test thread is no shard, so
        // its releases go to the `returned` list.
        let r = Registry::with_partitions([Some(0)]);
        let w = Arc::new(Counted(AtomicUsize::new(0)));
        let slots: Vec<_> = (0..10).map(|_| register(&r, 0, &w)).collect();
        for s in &slots {
            s.release();
        }
        assert_eq!(r.live(), 0, "returned slots are not live");
        assert_eq!(lock(&r.parts[0].returned).len(), 10);
        assert_eq!(Arc::strong_count(&w), 11, "their wakers wait for the owner");
        // The next spawn finds no free slot and takes the returned ones back.
        let again = register(&r, 0, &w);
        assert!(lock(&r.parts[0].returned).is_empty());
        assert_eq!(Arc::strong_count(&w), 2);
        assert_eq!(r.live(), 1);
        assert_eq!(lock(&r.parts[0].slots).wakers.len(), 10, "no slot added");
        again.release();
    }

    #[test]
    fn reclaim_takes_back_returned_slots_and_drops_their_wakers() {
        let r = Registry::with_partitions([Some(0)]);
        let w = Arc::new(Counted(AtomicUsize::new(0)));
        let slots: Vec<_> = (0..10).map(|_| register(&r, 0, &w)).collect();
        for s in &slots {
            s.release();
        }
        assert_eq!(Arc::strong_count(&w), 11);
        r.reclaim(0);
        assert!(lock(&r.parts[0].returned).is_empty());
        assert_eq!(
            Arc::strong_count(&w),
            1,
            "the finished tasks' wakers are gone"
        );
        assert_eq!(lock(&r.parts[0].slots).free.len(), 10);
        assert_eq!(r.live(), 0);
        // Nothing to take back: a no-op.
        r.reclaim(0);
        assert_eq!(lock(&r.parts[0].slots).free.len(), 10);
    }
}
