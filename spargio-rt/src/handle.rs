//! `RuntimeHandle`: spawn and inspect from anywhere.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::placement::{ShardId, TaskPlacement};
use crate::scheduler::Inner;
use crate::stats::{RuntimeStats, ShardStats};
use crate::task::JoinHandle;

/// A cheap, cloneable reference to a runtime (`Send + Sync`).
///
/// ```
/// use spargio_rt::{RuntimeHandle, ShardId, TaskPlacement};
/// spargio_rt::run(|handle: RuntimeHandle| async move {
///     // Stealable by default: any idle shard may run it.
///     let a = handle.spawn(async { 1 });
///     // Pinned: always shard 1.
///     let b = handle.spawn_pinned(ShardId(1), async {
///         RuntimeHandle::current().current_shard()
///     });
///     assert_eq!(a.await.unwrap(), 1);
///     assert_eq!(b.await.unwrap(), Some(ShardId(1)));
///     // Sticky: the same key always lands on the same shard.
///     let c = handle.spawn_with_placement(TaskPlacement::Sticky(7), async { 3 });
///     assert_eq!(c.await.unwrap(), 3);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct RuntimeHandle {
    pub(crate) inner: Arc<Inner>,
}

impl RuntimeHandle {
    /// The runtime of the current thread: the shard's own runtime on a shard
    /// thread, or the one a `block_on` on this thread entered.
    ///
    /// # Panics
    /// Outside any runtime; see [`try_current`](Self::try_current).
    pub fn current() -> RuntimeHandle {
        Self::try_current().expect(
            "spargio: no runtime here; call this from a task, from Runtime::block_on, or use a RuntimeHandle",
        )
    }

    /// The current runtime, or `None` outside any runtime.
    pub fn try_current() -> Option<RuntimeHandle> {
        if let Some((inner, _)) = crate::shard::local::current() {
            return Some(RuntimeHandle { inner });
        }
        crate::block_on::entered()
    }

    /// Spawns a stealable task: it starts on the least loaded shard and idle
    /// shards may steal it. The default; same as [`spawn_stealable`](Self::spawn_stealable).
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(TaskPlacement::Stealable, fut)
    }

    /// Spawns a stealable task on the least loaded shard.
    pub fn spawn_stealable<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(TaskPlacement::Stealable, fut)
    }

    /// Spawns a stealable task that starts on `shard`.
    ///
    /// # Panics
    /// If `shard` does not exist.
    pub fn spawn_stealable_on<F>(&self, shard: ShardId, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner
            .spawn(TaskPlacement::StealablePreferred(shard), fut)
    }

    /// Spawns a task that runs on `shard` only.
    ///
    /// # Panics
    /// If `shard` does not exist.
    pub fn spawn_pinned<F>(&self, shard: ShardId, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(TaskPlacement::Pinned(shard), fut)
    }

    /// Spawns a task with an explicit [`TaskPlacement`].
    ///
    /// # Panics
    /// If the placement names a shard that does not exist.
    pub fn spawn_with_placement<F>(&self, placement: TaskPlacement, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(placement, fut)
    }

    /// Spawns a `!Send` future on the current shard; it never moves.
    ///
    /// ```
    /// use std::rc::Rc;
    /// spargio_rt::run(|h| async move {
    ///     let shared = Rc::new(5);
    ///     let s2 = shared.clone();
    ///     let t = h.spawn_local(async move { *s2 + 1 });
    ///     assert_eq!(t.await.unwrap(), 6);
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// If the calling thread is not a shard of this runtime; use
    /// [`spawn_local_on`](Self::spawn_local_on) from elsewhere.
    pub fn spawn_local<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.spawn_local(fut)
    }

    /// Builds a `!Send` future on `shard` (by calling `make` there) and runs
    /// it there; `make` itself must be `Send`.
    ///
    /// # Panics
    /// If `shard` does not exist.
    pub fn spawn_local_on<C, Fut>(&self, shard: ShardId, make: C) -> JoinHandle<Fut::Output>
    where
        C: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.inner.spawn_local_on(shard.0, make)
    }

    /// Runs a blocking closure on the blocking pool (a bounded set of
    /// reused threads), so it does not stall a shard. The closure runs with
    /// this runtime entered: `RuntimeHandle::current()` and the free
    /// `spawn` functions work inside it.
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.inner.spawn_blocking(f)
    }

    /// Runs a CPU-heavy future on the background pool: threads outside the
    /// shards, as many as shards by default, at a lower CPU priority (nice
    /// 5 by default; see [`RuntimeBuilder::background_nice`](crate::RuntimeBuilder::background_nice)).
    ///
    /// A poll that computes for a millisecond holds its shard for that
    /// millisecond, and every task pinned there (a server's connections)
    /// waits with it, even when stealing moves the task to another shard.
    /// On the background pool the kernel time-slices the computation
    /// instead, and runs a shard that has I/O to handle first. The future
    /// can spawn, use timers and do I/O; its I/O is submitted to a shard's
    /// ring from the pool thread (a hop per op), so keep I/O-heavy work on
    /// the shards. Abort and panics work as for [`spawn`](Self::spawn);
    /// shutdown aborts background tasks at their next poll.
    ///
    /// ```
    /// spargio_rt::run(|h| async move {
    ///     let digest = h.spawn_background(async {
    ///         (0..1_000_000u64).fold(0u64, |acc, x| acc.wrapping_mul(31).wrapping_add(x))
    ///     });
    ///     assert_ne!(digest.await.unwrap(), 0);
    /// })
    /// .unwrap();
    /// ```
    pub fn spawn_background<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn_background(fut)
    }

    /// Whether a background task spawned now would start at once: fewer
    /// background tasks are queued or running than the pool has threads.
    /// A hint for callers that can run work elsewhere when the pool is
    /// saturated (spargio-service's adaptive placement keeps a heavy
    /// handler on the shards then, so a saturated pool never builds a
    /// queue of them at a lower priority).
    ///
    /// ```
    /// let rt = spargio_rt::Runtime::builder().shards(1).build().unwrap();
    /// assert!(rt.handle().background_has_room());
    /// ```
    pub fn background_has_room(&self) -> bool {
        self.inner.background.has_room()
    }

    /// Whether no background task is queued or running right now (a hint,
    /// as [`background_has_room`](Self::background_has_room)).
    pub fn background_idle(&self) -> bool {
        self.inner.background.is_idle()
    }

    /// How many shards are out of work right now (spinning before they
    /// park, or parked). A hint, read without synchronisation: a caller
    /// choosing between running work on the shards and elsewhere (the
    /// background pool) can tell a saturated runtime from one with room.
    ///
    /// ```
    /// let rt = spargio_rt::Runtime::builder().shards(2).build().unwrap();
    /// assert!(rt.handle().idle_shards() <= 2);
    /// ```
    pub fn idle_shards(&self) -> usize {
        self.inner
            .shards
            .iter()
            .filter(|s| s.idle.load(std::sync::atomic::Ordering::Relaxed))
            .count()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The shard the calling thread is, if it is one of this runtime's.
    pub fn current_shard(&self) -> Option<ShardId> {
        crate::shard::local::current_index(&self.inner).map(ShardId)
    }

    /// A snapshot of the runtime's counters.
    pub fn stats(&self) -> RuntimeStats {
        let shards = self
            .inner
            .shards
            .iter()
            .map(|s| {
                let c = &s.counters;
                ShardStats {
                    tasks_polled: c.tasks_polled.get(),
                    stealable_polled: c.stealable_polled.get(),
                    stolen: c.stolen.get(),
                    steal_attempts: c.steal_attempts.get(),
                    doorbells_sent: c.doorbells_sent.get(),
                    doorbells_received: c.doorbells_received.get(),
                    parks: c.parks.get(),
                    ring_enters: c.ring_enters.get(),
                    busy_yields: c.busy_yields.get(),
                    shared_cpu_parks: c.shared_cpu_parks.get(),
                    timers_fired: c.timers_fired.get(),
                    panics: c.panics.get(),
                    loop_panics: c.loop_panics.get(),
                    ops_submitted: c.ops_submitted.get(),
                    ops_inline: c.ops_inline.get(),
                    ops_inline_done: c.ops_inline_done.get(),
                    ops_completed: c.ops_completed.get(),
                    ops_cancelled: c.ops_cancelled.get(),
                    sq_spills: c.sq_spills.get(),
                    cq_overflows: c.cq_overflows.get(),
                    cqes_lost: c.cqes_lost.get(),
                    submit_busy: c.submit_busy.get(),
                    stale_cqes: c.stale_cqes.get(),
                    ring_closes: c.ring_closes.get(),
                    pinned_queue_depth: s.pinned_len(),
                    stealable_queue_depth: s.stealable_len(),
                }
            })
            .collect();
        RuntimeStats {
            shards,
            live_tasks: self.inner.registry.live(),
            global_queue_depth: self.inner.global.len(),
            blocking_threads: self.inner.blocking.threads(),
            background_threads: self.inner.background.threads(),
            live_background_tasks: self.inner.background.registry().live(),
            live_blocking_tasks: self.inner.blocking.registry().live(),
        }
    }

    /// Whether both handles refer to the same runtime.
    pub fn ptr_eq(&self, other: &RuntimeHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("shards", &self.shard_count())
            .finish()
    }
}
