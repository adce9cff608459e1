//! The bound on ops a runtime runs for threads outside it
//! (`Runtime::block_on`, the background pool): they cannot reach a
//! shard's op table, so they count here, in an atomic, and wait in a queue
//! of their own when the count is at its limit.
//!
//! Each op is queued once, weakly, and its entry is live only while the
//! op's `OpTag::slot_queue` names this queue's id (as in `OpTable`); the
//! op's `slot_waker` is whom to wake. A freed slot wakes every live entry:
//! they race for it, and the losers queue again. Waking only one would
//! strand the rest if that one's future were dropped before it came back
//! (nothing would free a slot again); a shard's table avoids that with a
//! look at its queue on every loop turn, which threads outside the runtime
//! do not have. Waiting here is the exception (it needs `max_ops_in_flight`
//! ops in flight from outside the runtime), so the herd is cheap.
//!
//! Entries of ops that are gone (a future polled once, queued, then
//! dropped) or wait no more are swept out once the queue has doubled since
//! the last sweep, as in `OpTable`: a loop that keeps starting and
//! dropping ops while every slot stays taken would otherwise grow the queue,
//! and keep each dropped op's allocation alive through its `Weak`, until a
//! slot freed.
//!
//! No lost wake-up: a submitter that finds the count at its limit queues
//! itself under the lock and then tries once more; a slot is freed by a
//! decrement followed by a look at the queue. Either the retry sees the
//! freed slot, or the freeing side finds the entry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use super::cell::Completion;
use super::table::MIN_SWEEP_AT;

/// Slots for ops submitted to a runtime's shards from outside it.
pub(crate) struct RemoteSlots {
    id: u64,
    in_flight: AtomicUsize,
    limit: usize,
    /// Entries in `waiting`, live or not (read without the lock).
    queued: AtomicUsize,
    waiting: Mutex<Waiting>,
}

/// The queue of ops waiting for a slot.
struct Waiting {
    entries: VecDeque<Weak<dyn Completion>>,
    /// The length at which the next push sweeps out dead entries: twice
    /// the live ones after the last sweep (at least [`MIN_SWEEP_AT`]), so
    /// sweeps cost O(1) a push.
    sweep_at: usize,
}

impl RemoteSlots {
    /// At most `limit` ops (at least 1) at a time.
    pub(crate) fn new(limit: usize) -> Self {
        RemoteSlots {
            id: super::table::new_queue_id(),
            in_flight: AtomicUsize::new(0),
            limit: limit.max(1),
            queued: AtomicUsize::new(0),
            waiting: Mutex::new(Waiting {
                entries: VecDeque::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
        }
    }

    /// Ops holding a slot.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn try_acquire(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a slot for `op`, or queues it: then `waker` is woken when a
    /// slot frees up (or a shard exits), and the op tries again.
    pub(crate) fn acquire(&self, op: &Arc<dyn Completion>, waker: &Waker) -> bool {
        if self.try_acquire() {
            return true;
        }
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if op.op_tag().wait_in(self.id, waker) {
                if waiting.entries.len() >= waiting.sweep_at {
                    self.sweep(&mut waiting);
                }
                waiting.entries.push_back(Arc::downgrade(op));
                self.queued.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Got one after all: the entry left behind is stale (the caller
        // clears `slot_queue`).
        self.try_acquire()
    }

    /// Drops the entries of ops that are gone or no longer wait here,
    /// keeping the order of the rest.
    fn sweep(&self, waiting: &mut Waiting) {
        let id = self.id;
        let before = waiting.entries.len();
        waiting
            .entries
            .retain(|entry| entry.upgrade().is_some_and(|op| op.op_tag().waits_in(id)));
        self.queued
            .fetch_sub(before - waiting.entries.len(), Ordering::SeqCst);
        waiting.sweep_at = (2 * waiting.entries.len()).max(MIN_SWEEP_AT);
    }

    /// Gives a slot back and wakes the ops waiting for one.
    pub(crate) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) != 0 {
            self.wake_all();
        }
    }

    /// Wakes every live queued op.
    pub(crate) fn wake_all(&self) {
        let taken = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            self.queued
                .fetch_sub(waiting.entries.len(), Ordering::SeqCst);
            waiting.sweep_at = MIN_SWEEP_AT;
            std::mem::take(&mut waiting.entries)
        };
        for entry in taken {
            let Some(op) = entry.upgrade() else {
                continue; // its future was dropped while it waited
            };
            if op.op_tag().leave(self.id) {
                op.op_tag().slot_waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::cell::OpTag;
    use crate::driver::Cqe;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    struct Op(OpTag);
    impl Completion for Op {
        fn complete(&self, _: Cqe) -> bool {
            true
        }
        fn op_tag(&self) -> &OpTag {
            &self.0
        }
    }

    fn op() -> Arc<dyn Completion> {
        Arc::new(Op(OpTag::default()))
    }

    #[derive(Default)]
    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Flag>, Waker) {
        let f = Arc::new(Flag::default());
        (f.clone(), Waker::from(f))
    }

    #[test]
    fn ops_past_the_limit_wait_and_a_freed_slot_wakes_them() {
        let slots = RemoteSlots::new(2);
        let (a, b, c, d) = (op(), op(), op(), op());
        let (_, w) = waker();
        assert!(slots.acquire(&a, &w));
        assert!(slots.acquire(&b, &w));
        let (woken_c, wc) = waker();
        let (woken_d, wd) = waker();
        assert!(!slots.acquire(&c, &wc));
        assert!(!slots.acquire(&d, &wd));
        // Polled again while it waits: queued once.
        assert!(!slots.acquire(&c, &wc));
        assert_eq!(slots.queued.load(Ordering::SeqCst), 2);
        assert_eq!(slots.in_flight(), 2);

        slots.release();
        assert!(woken_c.0.load(Ordering::SeqCst));
        assert!(woken_d.0.load(Ordering::SeqCst));
        assert_eq!(slots.queued.load(Ordering::SeqCst), 0);
        // One of them gets the slot, the other queues again.
        assert!(slots.acquire(&d, &wd));
        assert!(!slots.acquire(&c, &wc));
        assert_eq!(slots.in_flight(), 2);
    }

    #[test]
    fn a_waiter_dropped_after_its_wake_up_strands_nobody() {
        let slots = RemoteSlots::new(1);
        let (_, w) = waker();
        let a = op();
        assert!(slots.acquire(&a, &w));
        let gone = op();
        assert!(!slots.acquire(&gone, &w));
        let live = op();
        let (woken, wl) = waker();
        assert!(!slots.acquire(&live, &wl));
        slots.release();
        // `gone` was woken too, and is dropped without coming back.
        drop(gone);
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(slots.acquire(&live, &wl));
    }

    #[test]
    fn ops_dropped_while_they_wait_do_not_pile_up() {
        let slots = RemoteSlots::new(1);
        let (_, w) = waker();
        let held = op();
        assert!(slots.acquire(&held, &w));
        let live = op();
        let (woken, wl) = waker();
        assert!(!slots.acquire(&live, &wl));
        // A loop that starts an op, finds every slot taken, and drops it.
        for _ in 0..10_000 {
            let o = op();
            assert!(!slots.acquire(&o, &w));
        }
        let queued = slots.waiting.lock().unwrap().entries.len();
        assert!(queued <= 2 * MIN_SWEEP_AT, "{queued} entries kept");
        assert_eq!(slots.queued.load(Ordering::SeqCst), queued);
        // The live waiter kept its place.
        slots.release();
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(slots.acquire(&live, &wl));
    }

    #[test]
    fn wake_all_wakes_every_waiter() {
        let slots = RemoteSlots::new(1);
        let (_, w) = waker();
        let a = op();
        assert!(slots.acquire(&a, &w));
        let waiters: Vec<_> = (0..3).map(|_| (op(), waker())).collect();
        for (o, (_, w)) in &waiters {
            assert!(!slots.acquire(o, w));
        }
        slots.wake_all();
        assert!(waiters.iter().all(|(_, (f, _))| f.0.load(Ordering::SeqCst)));
    }

    #[test]
    fn no_wake_up_is_lost_between_threads() {
        // Two threads take and free slots of a 1-slot queue many times;
        // each waits for a wake-up when it cannot get one. A lost wake-up
        // would leave one stuck (the test would hang, and fail by timeout).
        let slots = Arc::new(RemoteSlots::new(1));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    let me = op();
                    let th = std::thread::current();
                    struct Unpark(std::thread::Thread);
                    impl Wake for Unpark {
                        fn wake(self: Arc<Self>) {
                            self.0.unpark();
                        }
                    }
                    let w = Waker::from(Arc::new(Unpark(th)));
                    for _ in 0..20_000 {
                        while !slots.acquire(&me, &w) {
                            std::thread::park();
                        }
                        slots.release();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        assert_eq!(slots.in_flight(), 0);
    }
}
