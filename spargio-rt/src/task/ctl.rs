//! Abort control and the live-task registry.
//!
//! Every spawned task registers a [`TaskCtl`] holding its waker.
//! `JoinHandle::abort` and runtime shutdown set its `aborted` flag and wake
//! the task; the task's [`Guard`](super::guard::Guard) sees the flag at its
//! next poll, drops the future on the thread that owns it, and completes as
//! cancelled. The
//! registry is what lets shutdown reach tasks that nothing would ever wake
//! again (two tasks waiting on each other, say), so nothing leaks.
//!
//! The registry is off the hot path's contended lines: each shard appends
//! the tasks it spawns to its own partition (one lock, taken by that shard
//! only, except at shutdown), and a finishing task only sets a flag and bumps
//! the finished count of the partition of the thread it ends on — no lock,
//! and no line of the spawning shard's, wherever it finishes. The
//! owner drops finished entries in sweeps, amortised over its spawns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;
use futures_util::task::AtomicWaker;

/// Abort state shared by a task, its join handle and the registry.
#[derive(Debug)]
pub(crate) struct TaskCtl {
    aborted: AtomicBool,
    finished: AtomicBool,
    waker: AtomicWaker,
}

impl TaskCtl {
    /// Marks the task aborted and wakes it so it notices.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Remembers the task's own waker, once, when it is spawned: every
    /// poll of an `async-task` task gets a waker for the same task, so
    /// there is nothing to refresh per poll. [`clear_waker`](Self::clear_waker)
    /// drops it when the task ends, so the task holds no reference to itself.
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Drops the stored waker; the task holds no reference to itself after this.
    pub(crate) fn clear_waker(&self) {
        drop(self.waker.take());
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// The tasks spawned from one shard (or, for the last partition, from
/// threads outside the runtime).
#[derive(Debug, Default)]
struct Partition {
    tasks: Mutex<Tasks>,
    /// Tasks ever registered here.
    inserted: AtomicU64,
    /// Of those, tasks that finished.
    finished: AtomicU64,
}

#[derive(Debug, Default)]
struct Tasks {
    list: Vec<Arc<TaskCtl>>,
    /// Length after the last sweep of finished entries.
    swept_len: usize,
}

/// All live tasks of one runtime, in partitions.
#[derive(Debug)]
pub(crate) struct Registry {
    parts: Box<[CachePadded<Partition>]>,
}

/// Partitions shorter than this are never swept.
const SWEEP_FLOOR: usize = 64;

impl Registry {
    pub(crate) fn new(parts: usize) -> Self {
        Registry {
            parts: (0..parts.max(1))
                .map(|_| CachePadded::new(Partition::default()))
                .collect(),
        }
    }

    /// Registers a new task in partition `part % parts`.
    pub(crate) fn insert(&self, part: usize) -> Arc<TaskCtl> {
        let part = part % self.parts.len();
        let p = &self.parts[part];
        let ctl = Arc::new(TaskCtl {
            aborted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let mut tasks = lock(&p.tasks);
        if tasks.list.len() >= (2 * tasks.swept_len).max(SWEEP_FLOOR) {
            tasks.list.retain(|c| !c.is_finished());
            tasks.swept_len = tasks.list.len();
        }
        tasks.list.push(ctl.clone());
        drop(tasks);
        p.inserted.fetch_add(1, Ordering::SeqCst);
        ctl
    }

    /// Marks a task finished; a later sweep forgets it.
    ///
    /// The count goes to the partition of the thread the task ends on (only
    /// the sum over partitions means anything), so a task stolen away from
    /// the shard that spawned it does not touch that shard's cache lines.
    pub(crate) fn remove(&self, ctl: &TaskCtl) {
        if !ctl.finished.swap(true, Ordering::AcqRel) {
            let part = crate::shard::local::with_current(|l| l.index).unwrap_or(usize::MAX);
            self.parts[part % self.parts.len()]
                .finished
                .fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Tasks spawned and not yet finished.
    ///
    /// Finished counts are read before inserted counts, so a concurrent
    /// spawn can only make the result too high, never a false zero.
    pub(crate) fn live(&self) -> usize {
        let finished: u64 = self
            .parts
            .iter()
            .map(|p| p.finished.load(Ordering::SeqCst))
            .sum();
        let inserted: u64 = self
            .parts
            .iter()
            .map(|p| p.inserted.load(Ordering::SeqCst))
            .sum();
        inserted.saturating_sub(finished) as usize
    }

    /// Aborts every live task. Returns how many were asked to stop.
    pub(crate) fn abort_all(&self) -> usize {
        let mut n = 0;
        for part in self.parts.iter() {
            let ctls: Vec<Arc<TaskCtl>> = lock(&part.tasks)
                .list
                .iter()
                .filter(|c| !c.is_finished())
                .cloned()
                .collect();
            for c in ctls {
                if !c.is_aborted() {
                    c.abort();
                    n += 1;
                }
            }
        }
        n
    }
}

/// Locks a registry partition; a panic elsewhere never poisons our data
/// (we only push and retain), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_counts_and_sweeps() {
        let r = Registry::new(2);
        let ctls: Vec<_> = (0..200).map(|i| r.insert(i)).collect();
        assert_eq!(r.live(), 200);
        for c in &ctls[..150] {
            r.remove(c);
            r.remove(c); // twice is harmless
        }
        assert_eq!(r.live(), 50);
        // More spawns sweep the finished entries out of the lists.
        let more: Vec<_> = (0..200).map(|i| r.insert(i)).collect();
        let listed: usize = r.parts.iter().map(|p| lock(&p.tasks).list.len()).sum();
        assert!(listed < 400, "{listed}");
        assert_eq!(r.live(), 250);
        assert_eq!(r.abort_all(), 250);
        assert!(more.iter().all(|c| c.is_aborted()));
        assert!(!ctls[0].is_aborted(), "finished tasks are not aborted");
    }
}
