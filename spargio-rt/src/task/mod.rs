//! Tasks: the metadata every task carries, the abort/shutdown control, the
//! guard that catches panics, and join handles.
//!
//! Task cells themselves are `async-task` allocations (one allocation holding
//! the future, its output slot and [`TaskMeta`]); this module adds what a
//! runtime needs on top: where a task belongs, abort, panic capture, and a
//! registry so shutdown can cancel every task, even ones nobody will wake.
//!
//! Whoever polls tasks calls [`run`] rather than `Runnable::run`: it drops an
//! aborted task instead of polling it.

pub(crate) mod adapters;
pub(crate) mod ctl;
pub(crate) mod guard;
pub(crate) mod join;
pub(crate) mod yield_now;

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

pub use join::{JoinError, JoinHandle};

/// A scheduled task, ready to be polled once.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// Where a task belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// Only ever polled on this shard; the future may be `!Send`, so it must
    /// also be dropped there.
    Local(usize),
    /// Only ever polled on this shard; the future is `Send`.
    Pinned(usize),
    /// Polled wherever it was last queued; may be stolen.
    Stealable,
    /// A closure for the blocking pool.
    Blocking,
    /// A future for the background pool.
    Background,
}

/// Per-task data stored inline in the task allocation.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) home: Home,
    /// The shard that last polled (or was chosen for) a stealable task; its
    /// wake-ups are sent there, because its in-flight I/O lives on that ring.
    pub(crate) last_shard: AtomicUsize,
    /// The direction of the last op the task submitted on a shard
    /// (`driver::cell::Direction` as a byte), for inline submission (see
    /// `shard::inline`). Only the thread polling the task touches it.
    pub(crate) last_op: AtomicU8,
    /// The shard's poll count (`LocalShard::poll_seq`) when the task last
    /// saw an op in `last_op`'s direction complete.
    pub(crate) op_done_in: AtomicU32,
    /// How many such completions it saw in that poll since its last op
    /// (saturating).
    pub(crate) ops_done: AtomicU8,
    /// Set by `JoinHandle::abort`: the task is dropped instead of polled
    /// (see [`ctl`]).
    aborted: AtomicBool,
    /// The task queued before this one in a shard's inbox, while this
    /// task's runnable is in it (see `shard::inbox`).
    pub(crate) inbox_next: AtomicPtr<()>,
    /// A `Local` task whose future is `Send` until its first poll (built
    /// by `spawn_local_on` from a `Send` closure) and has not been polled
    /// yet: it may be dropped on any thread (see `scheduler::dead_letter`).
    /// Cleared by [`run`] before the first poll.
    send_until_started: AtomicBool,
}

/// Polls `task` once, or drops it if it was aborted, alone or with every
/// task of `registry` (shutdown). Dropping the runnable drops the future
/// here, on the thread that polls the task, and its `JoinHandle` reports
/// cancellation.
pub(crate) fn run(task: Runnable, registry: &ctl::Registry) {
    let meta = task.metadata();
    if meta.is_aborted() || registry.aborting() {
        drop(task);
    } else {
        if meta.send_until_started.load(Ordering::Relaxed) {
            meta.send_until_started.store(false, Ordering::Relaxed);
        }
        task.run();
    }
}

impl TaskMeta {
    pub(crate) fn new(home: Home, shard: usize) -> Self {
        TaskMeta {
            home,
            last_shard: AtomicUsize::new(shard),
            last_op: AtomicU8::new(0),
            op_done_in: AtomicU32::new(0),
            ops_done: AtomicU8::new(0),
            aborted: AtomicBool::new(false),
            inbox_next: AtomicPtr::new(std::ptr::null_mut()),
            send_until_started: AtomicBool::new(false),
        }
    }

    /// Marks a `Local` task whose future is `Send` until its first poll.
    pub(crate) fn send_until_started(self) -> Self {
        self.send_until_started.store(true, Ordering::Relaxed);
        self
    }

    /// Whether the task may be dropped on any thread: it is not `Local`,
    /// or it is one whose future is still `Send` (never polled). The
    /// runnable's hand-off through a queue orders this read after the
    /// last poll's write.
    pub(crate) fn droppable_anywhere(&self) -> bool {
        !matches!(self.home, Home::Local(_)) || self.send_until_started.load(Ordering::Relaxed)
    }

    /// Asks for the task to be dropped at its next scheduling point.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether [`abort`](Self::abort) was called.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    pub(crate) fn last_shard(&self) -> usize {
        self.last_shard.load(Ordering::Relaxed)
    }

    pub(crate) fn set_last_shard(&self, shard: usize) {
        if self.last_shard.load(Ordering::Relaxed) != shard {
            self.last_shard.store(shard, Ordering::Relaxed);
        }
    }
}
