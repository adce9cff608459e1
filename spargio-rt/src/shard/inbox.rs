//! A shard's inbox: pinned tasks woken (or spawned) from other threads.
//!
//! Many threads push, only the shard takes, and the shard always takes
//! everything at once, so the inbox is a lock-free stack threaded through
//! the tasks themselves ([`TaskMeta::inbox_next`]): a push is one
//! compare-and-swap on the head, a drain one swap of the head with null,
//! then a walk that puts the tasks back in the order they were pushed.
//! Nothing is allocated, and a cross-shard wake moves two cache lines (the
//! head and the task's own, which the shard reads to run it anyway)
//! instead of the three or more of a general queue (its tail, a slot
//! block, its head).
//!
//! Why the link can live in the task: `async-task` lets a task have at
//! most one [`Runnable`] at a time, and a runnable is in at most one queue,
//! so at most one inbox ever links through a given task, and only while it
//! holds that task's runnable (turned into a raw pointer). No ABA either:
//! single items are never popped, the consumer only swaps out the whole
//! list.
//!
//! Ordering: a push publishes the task (and its link) with a release
//! compare-and-swap; successive pushes are read-modify-writes of the head,
//! so they form one release sequence, and the drain's acquire swap sees
//! every push before it. [`is_empty`](Inbox::is_empty) is one load, used
//! by the park protocol (`park.rs`) after its own fence, as it used the
//! queue's emptiness check before.
//!
//! [`TaskMeta::inbox_next`]: crate::task::TaskMeta

use std::collections::VecDeque;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::task::Runnable;

/// A multi-producer, single-consumer intrusive stack of runnables that is
/// drained whole, in push order.
pub(crate) struct Inbox {
    /// The last runnable pushed (as `Runnable::into_raw`), linked to the
    /// one before it through its `inbox_next`; null when empty.
    head: AtomicPtr<()>,
    /// How many runnables are linked from `head` (for stats): raised after
    /// each push, lowered after each drain, so it can lag a push or a
    /// drain in flight but never drifts. On `head`'s cache line, which
    /// both sides hold exclusively just before they touch it.
    len: AtomicUsize,
}

impl Inbox {
    pub(crate) const fn new() -> Self {
        Inbox {
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// Pushes `task` (any thread).
    pub(crate) fn push(&self, task: Runnable) {
        let link: *const AtomicPtr<()> = &task.metadata().inbox_next;
        let raw = task.into_raw().as_ptr();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `link` points into the task's allocation, which the
            // runnable now held as `raw` keeps alive; until the CAS below
            // succeeds no other thread can reach `raw`, so this thread is
            // the only one touching the link.
            unsafe { (*link).store(head, Ordering::Relaxed) };
            match self
                .head
                .compare_exchange_weak(head, raw, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// How many tasks are queued (for stats; see the field).
    pub(crate) fn len(&self) -> usize {
        // A drain can lower the count before the push that raced it has
        // raised it: read a wrapped value as empty.
        let n = self.len.load(Ordering::Relaxed);
        if n > isize::MAX as usize {
            0
        } else {
            n
        }
    }

    /// Whether nothing is queued (a single load; see the module comment).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::SeqCst).is_null()
    }

    /// Moves every queued task to the back of `into`, oldest first (the
    /// owning shard, or whoever holds the inbox alone).
    pub(crate) fn drain_into(&self, into: &mut VecDeque<Runnable>) {
        if self.is_empty() {
            return;
        }
        let mut newest = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // Reverse the links in place so the walk below goes oldest first.
        let mut oldest = ptr::null_mut();
        while let Some(node) = NonNull::new(newest) {
            // SAFETY: every pointer in the list came from `into_raw` in
            // `push` and, swapped out of the head, is owned by this thread
            // alone; the runnable rebuilt here is turned back into the same
            // raw pointer before the next one is touched.
            let task = unsafe { Runnable::from_raw(node) };
            newest = task.metadata().inbox_next.load(Ordering::Relaxed);
            task.metadata().inbox_next.store(oldest, Ordering::Relaxed);
            oldest = task.into_raw().as_ptr();
        }
        let mut taken = 0;
        while let Some(node) = NonNull::new(oldest) {
            // SAFETY: as above; each pointer is rebuilt into its runnable
            // exactly once, here, and the list is not read again after.
            let task = unsafe { Runnable::from_raw(node) };
            oldest = task.metadata().inbox_next.load(Ordering::Relaxed);
            into.push_back(task);
            taken += 1;
        }
        self.len.fetch_sub(taken, Ordering::Relaxed);
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Tasks still here belong to no running shard (see `dead_letter`).
        // A backstop: a runtime task's scheduler holds the runtime's state,
        // and with it this inbox, so a runtime's inbox is only dropped
        // empty (shards exit once no task is left).
        let mut left = VecDeque::new();
        self.drain_into(&mut left);
        left.into_iter().for_each(crate::scheduler::dead_letter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Home, TaskMeta};
    use std::sync::Arc;

    /// A task that records its number in `out` when it runs.
    fn task(n: usize, out: &Arc<std::sync::Mutex<Vec<usize>>>) -> Runnable {
        let out = Arc::clone(out);
        let (runnable, handle) = async_task::Builder::new()
            .metadata(TaskMeta::new(Home::Stealable, 0))
            .spawn(move |_| async move { out.lock().unwrap().push(n) }, |_| {});
        handle.detach();
        runnable
    }

    #[test]
    fn drains_in_push_order_and_empties() {
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let inbox = Inbox::new();
        assert!(inbox.is_empty());
        for n in 0..5 {
            inbox.push(task(n, &out));
        }
        assert!(!inbox.is_empty());
        let mut taken = VecDeque::new();
        inbox.drain_into(&mut taken);
        assert!(inbox.is_empty());
        taken.into_iter().for_each(|t| {
            t.run();
        });
        assert_eq!(*out.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn concurrent_pushes_are_all_drained_once_each_in_per_thread_order() {
        const THREADS: usize = 4;
        const EACH: usize = 20_000;
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let inbox = Arc::new(Inbox::new());
        let pushers: Vec<_> = (0..THREADS)
            .map(|t| {
                let inbox = Arc::clone(&inbox);
                let out = Arc::clone(&out);
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        inbox.push(task(t * EACH + i, &out));
                    }
                })
            })
            .collect();
        let mut taken = VecDeque::new();
        while pushers.iter().any(|p| !p.is_finished()) {
            inbox.drain_into(&mut taken);
        }
        pushers.into_iter().for_each(|p| p.join().unwrap());
        inbox.drain_into(&mut taken);
        assert_eq!(taken.len(), THREADS * EACH);
        taken.into_iter().for_each(|t| {
            t.run();
        });
        let ran = out.lock().unwrap();
        let mut last = [None::<usize>; THREADS];
        for &n in ran.iter() {
            let (t, i) = (n / EACH, n % EACH);
            assert!(last[t].is_none_or(|l| l < i), "thread {t} out of order");
            last[t] = Some(i);
        }
        assert!(last.iter().all(|l| *l == Some(EACH - 1)));
    }

    #[test]
    fn dropping_an_inbox_drops_the_tasks_left_in_it() {
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let inbox = Inbox::new();
        inbox.push(task(7, &out));
        drop(inbox);
        // The task's future (holding a clone of `out`) is gone with it.
        assert_eq!(Arc::strong_count(&out), 1);
        assert!(out.lock().unwrap().is_empty());
    }
}
