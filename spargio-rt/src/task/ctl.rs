//! Abort control and the live-task registry.
//!
//! Every spawned task registers a [`TaskCtl`]. `JoinHandle::abort` and
//! runtime shutdown set its `aborted` flag and wake the task; the task's
//! [`Guard`](super::guard::Guard) sees the flag at its next poll, drops the
//! future on the thread that owns it, and completes as cancelled. The
//! registry is what lets shutdown reach tasks that nothing would ever wake
//! again (two tasks waiting on each other, say), so nothing leaks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;
use futures_util::task::AtomicWaker;
use slab::Slab;

/// Abort state shared by a task, its join handle and the registry.
#[derive(Debug)]
pub(crate) struct TaskCtl {
    aborted: AtomicBool,
    waker: AtomicWaker,
    part: usize,
    key: usize,
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

    /// Remembers the waker of the task's current poll (cheap when unchanged).
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Drops the stored waker; the task holds no reference to itself after this.
    pub(crate) fn clear_waker(&self) {
        drop(self.waker.take());
    }
}

/// One partition of the registry: the live tasks spawned from one shard.
type Partition = CachePadded<Mutex<Slab<Arc<TaskCtl>>>>;

/// All live tasks of one runtime, in partitions (one per shard plus one for
/// spawns from other threads) so spawns on different shards don't contend.
#[derive(Debug)]
pub(crate) struct Registry {
    parts: Box<[Partition]>,
    live: AtomicUsize,
}

impl Registry {
    pub(crate) fn new(parts: usize) -> Self {
        Registry {
            parts: (0..parts)
                .map(|_| CachePadded::new(Mutex::new(Slab::new())))
                .collect(),
            live: AtomicUsize::new(0),
        }
    }

    /// Registers a new task in partition `part % parts`.
    pub(crate) fn insert(&self, part: usize) -> Arc<TaskCtl> {
        let part = part % self.parts.len();
        let mut slab = lock(&self.parts[part]);
        let entry = slab.vacant_entry();
        let ctl = Arc::new(TaskCtl {
            aborted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            part,
            key: entry.key(),
        });
        entry.insert(ctl.clone());
        self.live.fetch_add(1, Ordering::SeqCst);
        ctl
    }

    /// Forgets a finished task.
    pub(crate) fn remove(&self, ctl: &TaskCtl) {
        let mut slab = lock(&self.parts[ctl.part]);
        if slab.try_remove(ctl.key).is_some() {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Tasks spawned and not yet finished.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Aborts every live task. Returns how many were asked to stop.
    pub(crate) fn abort_all(&self) -> usize {
        let mut n = 0;
        for part in self.parts.iter() {
            let ctls: Vec<Arc<TaskCtl>> = lock(part).iter().map(|(_, c)| c.clone()).collect();
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
/// (we only insert and remove), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
