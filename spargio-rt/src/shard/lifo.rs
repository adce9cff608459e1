//! The LIFO slot: the stealable task woken by the task a shard is polling,
//! run next (it will likely want the data it was just sent).
//!
//! Only the owning shard puts a task in; the owner takes it out to run it,
//! and other shards take it out to steal it when the owner is stuck in a
//! long poll (the same `StealPolicy::min_victim_busy` rule as a single task
//! in the deque). Whoever swaps a task out owns it, so the slot needs no
//! lock: one atomic pointer, written with a plain store when it is empty
//! (only the owner ever fills it) and swapped otherwise.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::task::Runnable;

/// One stealable task, or none.
pub(crate) struct LifoSlot {
    /// A pointer from `Runnable::into_raw`, or null.
    task: AtomicPtr<()>,
}

impl LifoSlot {
    pub(crate) fn new() -> LifoSlot {
        LifoSlot {
            task: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Puts `task` in (owning shard only); returns the task it displaced.
    pub(crate) fn put(&self, task: Runnable) -> Option<Runnable> {
        let new = task.into_raw().as_ptr();
        if self.task.load(Ordering::Relaxed).is_null() {
            // Only the owner fills the slot, and it is the caller: nobody
            // can fill it between the load and this store (stealers only
            // empty it). Release publishes the task to a stealer's swap.
            self.task.store(new, Ordering::Release);
            None
        } else {
            let old = self.task.swap(new, Ordering::AcqRel);
            // SAFETY: `old` is null or came from `into_raw` in an earlier
            // `put`; the swap took it out of the slot, so this is the only
            // `from_raw` for it.
            NonNull::new(old).map(|p| unsafe { Runnable::from_raw(p) })
        }
    }

    /// Takes the task out, if any (the owner to run it, another shard to
    /// steal it).
    pub(crate) fn take(&self) -> Option<Runnable> {
        if self.task.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let old = self.task.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: as in `put`: `old` is null (a stealer was first) or a
        // pointer from `into_raw` that this swap alone took out.
        NonNull::new(old).map(|p| unsafe { Runnable::from_raw(p) })
    }

    /// Whether a task is in the slot (a hint: it may be taken at once).
    pub(crate) fn is_occupied(&self) -> bool {
        !self.task.load(Ordering::Relaxed).is_null()
    }
}

impl Drop for LifoSlot {
    fn drop(&mut self) {
        // Only stealable (`Send`) tasks enter the slot; dropping one
        // cancels it.
        if let Some(task) = self.take() {
            crate::scheduler::dead_letter(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Home, TaskMeta};
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Arc;

    /// A detached stealable task that counts its runs in `runs`.
    fn counting_task(runs: &Arc<AtomicUsize>) -> Runnable {
        let runs = runs.clone();
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(Home::Stealable, 0))
            .spawn(
                move |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                },
                |_| {},
            );
        task.detach();
        runnable
    }

    #[test]
    fn a_task_is_taken_once_and_a_displaced_one_comes_back() {
        let runs = Arc::new(AtomicUsize::new(0));
        let slot = LifoSlot::new();
        assert!(slot.take().is_none());
        assert!(slot.put(counting_task(&runs)).is_none());
        assert!(slot.is_occupied());
        let displaced = slot.put(counting_task(&runs)).expect("the first task");
        displaced.run();
        slot.take().expect("the second task").run();
        assert!(!slot.is_occupied());
        assert!(slot.take().is_none());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn owner_and_thief_racing_run_every_task_exactly_once() {
        let runs = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(LifoSlot::new());
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = 20_000;
        let thief = {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut stolen = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    if let Some(t) = slot.take() {
                        t.run();
                        stolen += 1;
                    }
                }
                stolen
            })
        };
        for i in 0..rounds {
            if let Some(prev) = slot.put(counting_task(&runs)) {
                prev.run();
            }
            if i % 2 == 0 {
                if let Some(t) = slot.take() {
                    t.run();
                }
            }
        }
        // Whatever neither took yet is still in the slot.
        if let Some(t) = slot.take() {
            t.run();
        }
        stop.store(true, Ordering::SeqCst);
        thief.join().unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            rounds,
            "a task lost or run twice"
        );
        assert!(slot.take().is_none());
    }

    #[test]
    fn a_task_left_in_the_slot_is_cancelled_when_the_slot_goes() {
        let slot = LifoSlot::new();
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(Home::Stealable, 0))
            .spawn(|_| async { 7 }, |_| {});
        assert!(slot.put(runnable).is_none());
        drop(slot);
        // The runnable was dropped unrun: the task reports cancellation.
        let mut task = std::pin::pin!(task.fallible());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(task.as_mut().poll(&mut cx), std::task::Poll::Ready(None));
    }
}
