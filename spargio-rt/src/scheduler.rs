//! Runtime-wide scheduling: spawning with a placement, and routing every
//! wake-up to the queue where the task belongs.
//!
//! | task kind | woken on its shard | woken elsewhere |
//! | --- | --- | --- |
//! | pinned / local | pinned queue | that shard's inbox + doorbell if parked |
//! | stealable | LIFO slot (if woken by the running task) or deque | its last shard's injector + doorbell if parked, else one idle shard is told to steal |
//! | blocking | - | the blocking pool's queue |
//! | background | - | the background pool's queue |
//!
//! A stealable task goes back to the shard that last ran it because its
//! in-flight I/O completes on that shard's ring; idle shards take it from
//! there by stealing when that shard is busy.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use io_uring::IoUring;

use async_task::{ScheduleInfo, WithInfo};
use crossbeam_deque::Injector;
use crossbeam_utils::CachePadded;

use crate::builder::{RuntimeBuilder, StealPolicy};
use crate::driver::remote_slots::RemoteSlots;
use crate::placement::TaskPlacement;
use crate::pool::{PoolConfig, ThreadPool};
use crate::shard::local;
use crate::shard::park;
use crate::shard::shared::ShardShared;
use crate::task::adapters::{BuildThere, RunOnce};
use crate::task::ctl::Registry;
use crate::task::guard::{Guard, Outcome};
use crate::task::{Home, JoinHandle, Runnable, TaskMeta};

/// State shared by all shards of one runtime and by its handles.
pub(crate) struct Inner {
    pub(crate) shards: Box<[ShardShared]>,
    /// Stealable tasks spawned from threads outside the runtime.
    pub(crate) global: Injector<Runnable>,
    pub(crate) registry: Registry,
    pub(crate) steal: StealPolicy,
    pub(crate) task_budget: usize,
    /// Per-shard limit of in-flight ops.
    pub(crate) max_ops_in_flight: usize,
    /// Bounds the ops in flight for threads outside the runtime
    /// (`max_ops_in_flight` per shard, beside each shard's own).
    pub(crate) remote_slots: RemoteSlots,
    pub(crate) park_spin: std::time::Duration,
    /// Busy time after which a shard yields its CPU once (zero: never).
    pub(crate) busy_yield: std::time::Duration,
    /// Shards woken to steal that have not yet looked; see `park.rs`.
    /// (These four are written often, each on a cache line of its own so
    /// the read-mostly fields around them stay cached on every shard.)
    pub(crate) searching: CachePadded<AtomicUsize>,
    search_start: CachePadded<AtomicUsize>,
    /// The next shard for `TaskPlacement::RoundRobin`.
    round_robin: CachePadded<AtomicUsize>,
    /// Where placement by load starts looking for a spawn from outside the
    /// runtime (kept apart from `round_robin`, which must go in turn).
    outside_start: CachePadded<AtomicUsize>,
    shutdown: AtomicBool,
    pub(crate) blocking: ThreadPool,
    /// Threads at a lower CPU priority for CPU-heavy futures.
    pub(crate) background: ThreadPool,
    /// Shards that may still submit to their rings (and so send doorbells
    /// to the others'); see [`Inner::done_submitting`].
    submitting: AtomicUsize,
    /// Rings of exited shards, dropped by the thread that joins the shards
    /// (see [`Inner::retire_ring`]) or with this state.
    retired_rings: Mutex<Vec<IoUring>>,
}

impl Inner {
    pub(crate) fn new(b: &RuntimeBuilder, n: usize) -> std::io::Result<Self> {
        let shards = (0..n)
            .map(ShardShared::new)
            .collect::<std::io::Result<Vec<_>>>()?
            .into_boxed_slice();
        Ok(Inner {
            global: Injector::new(),
            registry: Registry::for_shards(n),
            steal: b.steal.clone(),
            task_budget: b.task_budget,
            max_ops_in_flight: b.max_ops_in_flight,
            remote_slots: RemoteSlots::new(b.max_ops_in_flight.saturating_mul(n)),
            park_spin: b.park_spin,
            busy_yield: b.busy_yield,
            searching: CachePadded::new(AtomicUsize::new(0)),
            search_start: CachePadded::new(AtomicUsize::new(0)),
            round_robin: CachePadded::new(AtomicUsize::new(0)),
            outside_start: CachePadded::new(AtomicUsize::new(0)),
            shutdown: AtomicBool::new(false),
            blocking: ThreadPool::new(PoolConfig {
                name: format!("{}-blocking", b.thread_name),
                max_threads: b.max_blocking_threads,
                keep_alive: b.blocking_keep_alive,
                nice: 0,
                runs_futures: false,
            }),
            background: ThreadPool::new(PoolConfig {
                name: format!("{}-background", b.thread_name),
                max_threads: b.background_threads.unwrap_or(n).max(1),
                keep_alive: b.blocking_keep_alive,
                nice: b.background_nice,
                runs_futures: true,
            }),
            submitting: AtomicUsize::new(n),
            retired_rings: Mutex::new(Vec::with_capacity(n)),
            shards,
        })
    }

    /// Called by each exiting shard once it will submit nothing more to
    /// its ring. The last one closes every shard's doorbell target (see
    /// [`ShardShared::set_doorbell_target`]): until then another shard may
    /// still send a `MSG_RING` doorbell to it, and the fd number, closed
    /// and reused by a new file or ring, would take the doorbell somewhere
    /// else. No shard waits for another here.
    pub(crate) fn done_submitting(&self) {
        if self.submitting.fetch_sub(1, Ordering::AcqRel) == 1 {
            for s in self.shards.iter() {
                s.close_doorbell_target();
            }
            // Every shard has stopped: the slots other shards handed back
            // to each go now (see `Registry::reclaim_all`; a runtime
            // dropped from one of its own tasks has no joining thread to
            // do it, and a shard that exited without parking never did).
            self.registry.reclaim_all();
        }
    }

    /// Keeps an exited shard's ring (its ops all reaped) for
    /// [`Inner::drop_retired_rings`]. Unmapping a ring while other threads
    /// of the process run makes the kernel interrupt their CPUs to flush
    /// their TLBs (slow on a VM); shard threads that unmapped their rings
    /// as they exited did that to each other. The thread that joined them
    /// unmaps the rings when it is the only one left running.
    pub(crate) fn retire_ring(&self, ring: IoUring) {
        self.retired_rings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ring);
    }

    /// Drops the rings [`Inner::retire_ring`] kept.
    pub(crate) fn drop_retired_rings(&self) {
        let rings =
            std::mem::take(&mut *self.retired_rings.lock().unwrap_or_else(|p| p.into_inner()));
        drop(rings);
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Starts shutdown and wakes every shard so it notices.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for s in self.shards.iter() {
            s.ring_eventfd();
        }
    }

    /// A rotating start index so idle-shard notifications spread out.
    pub(crate) fn next_search_start(&self) -> usize {
        self.search_start.fetch_add(1, Ordering::Relaxed)
    }

    fn check_shard(&self, shard: usize) -> usize {
        assert!(
            shard < self.shards.len(),
            "spargio: shard {shard} does not exist (the runtime has {} shards)",
            self.shards.len()
        );
        shard
    }

    /// Turns a placement into the task's home and first shard.
    fn resolve(&self, placement: TaskPlacement) -> (Home, usize) {
        let n = self.shards.len();
        match placement {
            TaskPlacement::Pinned(s) => {
                let s = self.check_shard(s.0);
                (Home::Pinned(s), s)
            }
            TaskPlacement::RoundRobin => {
                let s = self.round_robin.fetch_add(1, Ordering::Relaxed) % n;
                (Home::Pinned(s), s)
            }
            TaskPlacement::Sticky(key) => {
                let s = (key % n as u64) as usize;
                (Home::Pinned(s), s)
            }
            TaskPlacement::Stealable => (Home::Stealable, self.least_loaded()),
            TaskPlacement::StealablePreferred(s) => (Home::Stealable, self.check_shard(s.0)),
        }
    }

    /// Submission-time placement: the shard with the fewest queued stealable
    /// tasks; ties go to the current shard (no hop, no doorbell), unless the
    /// current shard is busy with other queued tasks and another is idle.
    ///
    /// One poll places at most one spawn per other shard by load; the rest
    /// of a burst stays queued here, where a thief takes a batch per steal
    /// instead of paying one remote push (and maybe a doorbell) per task.
    fn least_loaded(&self) -> usize {
        let n = self.shards.len();
        let here = local::current_index(self);
        if n == 1 {
            return 0;
        }
        let start = here.unwrap_or_else(|| self.outside_start.fetch_add(1, Ordering::Relaxed) % n);
        if !self.steal.placement_balancing {
            return start;
        }
        // A poll that already placed its share elsewhere keeps the rest
        // (an idle hand-over below is still open to it).
        let may_place_away = here.is_none()
            || local::with_current(|l| l.placement_budget_left(n as u32 - 1)) != Some(false);
        let mut best = start;
        let mut best_load = self.shards[start].stealable_len();
        for i in 1..n {
            if best_load == 0 || !may_place_away {
                break;
            }
            let idx = (start + i) % n;
            let load = self.shards[idx].stealable_len();
            if load < best_load {
                best = idx;
                best_load = load;
            }
        }
        if let Some(here) = here {
            if best != here {
                local::with_current(local::LocalShard::spend_placement_budget);
            }
            if best_load == 0 && best == here {
                // Nothing stealable queued here, but other tasks may be: see
                // `idle_shard_for_spawn`.
                if let Some(idle) = self.idle_shard_for_spawn(here) {
                    return idle;
                }
            }
        }
        best
    }

    /// The schedule function every task of this runtime carries.
    fn scheduler(
        self: &Arc<Self>,
    ) -> WithInfo<impl Fn(Runnable, ScheduleInfo) + Send + Sync + 'static> {
        let inner = self.clone();
        WithInfo(move |task: Runnable, info: ScheduleInfo| {
            if !info.woken_while_running {
                return inner.route(task, true);
            }
            // Woken during its own poll (a cooperative yield): it runs
            // again after this shard has reaped its completions.
            if let Err(task) = local::defer_here(&inner, task) {
                inner.route(task, false);
            }
        })
    }

    /// Spawns a `Send` future with `placement`.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        placement: TaskPlacement,
        fut: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (home, first) = self.resolve(placement);
        let part = local::current_index(self).unwrap_or(self.shards.len());
        let (task, handle) = register(&self.registry, part, fut, |guard| {
            async_task::Builder::new()
                .metadata(TaskMeta::new(home, first))
                .spawn(move |meta: &TaskMeta| guard.of_task(meta), self.scheduler())
        });
        self.start(task, placement == TaskPlacement::Stealable);
        handle
    }

    /// Spawns a future that may be `!Send` onto shard `shard`, built there
    /// by `make` (which is `Send`).
    pub(crate) fn spawn_local_on<C, Fut>(
        self: &Arc<Self>,
        shard: usize,
        make: C,
    ) -> JoinHandle<Fut::Output>
    where
        C: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let shard = self.check_shard(shard);
        // Before its first poll the future holds only `make`, which is
        // `Send`: dropping it unstarted on another thread (shutdown raced
        // the spawn) is fine.
        self.spawn_local_unchecked(shard, BuildThere::new(make), true)
    }

    /// Spawns a `!Send` future on the current shard.
    ///
    /// # Panics
    /// If this thread is not a shard of this runtime.
    pub(crate) fn spawn_local<F>(self: &Arc<Self>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let shard = local::current_index(self)
            .expect("spargio: spawn_local must be called on a shard of this runtime (use spawn_local_on from elsewhere)");
        self.spawn_local_unchecked(shard, fut, false)
    }

    /// Spawns a task that lives on shard `shard` only (`Home::Local`).
    ///
    /// Callers guarantee that `fut` may be dropped on the calling thread
    /// until its first poll (it is `Send` until then, or this is `shard`'s
    /// own thread), and that a `!Send` output is only taken on `shard`'s
    /// thread (true when `F::Output: !Send`, as `JoinHandle` is then `!Send`).
    /// `send_until_started`: `fut` is `Send` until its first poll, so an
    /// unstarted task stranded by shutdown is dropped, not leaked.
    fn spawn_local_unchecked<F>(
        self: &Arc<Self>,
        shard: usize,
        fut: F,
        send_until_started: bool,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let part = local::current_index(self).unwrap_or(self.shards.len());
        // `spawn_unchecked` drops the `Send` and `'static`-output
        // checks of `spawn`. The future may be `!Send`, so once started it
        // must only be polled and dropped on shard `shard`'s thread. It is:
        // its home is `Home::Local(shard)`, every schedule routes it to that
        // shard's queues, only that thread pops them, and the shard drops
        // whatever is left in them on its own thread when it exits; a task
        // woken after its shard exited is leaked, never dropped on the wrong
        // thread (see `dead_letter`). Before the first poll the callers'
        // guarantee above covers a drop elsewhere. The output may be
        // `!Send`: `JoinHandle<T>` is then `!Send` too (async-task's
        // `Task<T>` is `Send` only for `T: Send`), so it is taken out on the
        // shard's thread. The future and its output are `'static`.
        let meta = TaskMeta::new(Home::Local(shard), shard);
        let meta = if send_until_started {
            meta.send_until_started()
        } else {
            meta
        };
        let (task, handle) = register(&self.registry, part, fut, |guard| {
            // SAFETY: the task is only polled and dropped on its own shard,
            // as argued above.
            unsafe {
                async_task::Builder::new()
                    .metadata(meta)
                    .spawn_unchecked(move |meta: &TaskMeta| guard.of_task(meta), self.scheduler())
            }
        });
        self.start(task, false);
        handle
    }

    /// Runs `f` on the blocking pool.
    pub(crate) fn spawn_blocking<R, Fn_>(self: &Arc<Self>, f: Fn_) -> JoinHandle<R>
    where
        Fn_: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        // A file dropped just before is closed before the job can start
        // (see `submit_ring_closes`).
        crate::shard::local::submit_ring_closes();
        self.spawn_on_pool(Home::Blocking, RunOnce(Some(f)))
    }

    /// Spawns a `Send` future on the background pool.
    pub(crate) fn spawn_background<F>(self: &Arc<Self>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on_pool(Home::Background, fut)
    }

    /// Spawns `fut` on the pool of `home` (`Blocking` or `Background`),
    /// registered in that pool's registry; after shutdown began it is
    /// cancelled at once.
    fn spawn_on_pool<F>(self: &Arc<Self>, home: Home, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let pool = self.pool(home);
        let (task, handle) = register(pool.registry(), 0, fut, |guard| {
            async_task::Builder::new()
                .metadata(TaskMeta::new(home, 0))
                .spawn(move |meta: &TaskMeta| guard.of_task(meta), self.scheduler())
        });
        if self.is_shutdown() {
            task.metadata().abort();
        }
        pool.push(task);
        handle
    }

    /// The thread pool of a pool task's `home`.
    fn pool(&self, home: Home) -> &ThreadPool {
        match home {
            Home::Blocking => &self.blocking,
            Home::Background => &self.background,
            Home::Local(_) | Home::Pinned(_) | Home::Stealable => {
                unreachable!("{home:?} tasks run on shards, not on a pool")
            }
        }
    }

    /// First scheduling of a new task. A plain `Stealable` spawn from a
    /// thread outside the runtime goes to the global injector (any shard
    /// takes it); everything else goes where its placement says.
    fn start(self: &Arc<Self>, task: Runnable, anywhere: bool) {
        if self.is_shutdown() {
            // Shutting down: the task never runs. Dropping its runnable
            // cancels it here; that is sound even for a `Local` task, whose
            // future is still only its `Send` builder (`spawn_local_on`) or
            // is on its own shard's thread (`spawn_local`).
            drop(task);
            return;
        }
        if anywhere && self.steal.enabled && local::current_index(self).is_none() {
            let target = task.metadata().last_shard();
            self.global.push(task);
            if !park::wake(self, target) {
                park::notify_idle(self, self.global.len());
            }
            return;
        }
        self.route(task, false);
    }

    /// An idle shard (spinning before it parks, or parked) to take a new
    /// stealable task spawned by a poll on shard `here` while `here` has
    /// other tasks waiting to run. Queued on `here`, the new task would
    /// wait behind them, and a thief would take it only once `here` is
    /// stuck in one long poll with it still queued; a connection task that
    /// spawns its handler and awaits it, then the next connection task
    /// that does the same, never leaves a handler queued that long, so
    /// CPU-heavy handlers would all run on their connections' shard while
    /// the other shard idles. Handing it over at spawn time is
    /// submission-time placement: at most one doorbell (none to a shard
    /// that is still spinning), and the task runs at once. Each idle spell
    /// takes one task; more go there only by stealing.
    fn idle_shard_for_spawn(&self, here: usize) -> Option<usize> {
        let n = self.shards.len();
        // Cheapest test first: with no other shard idle (a busy runtime),
        // a few relaxed loads and nothing else.
        let idle_elsewhere = |i: usize| i != here && self.shards[i].idle.load(Ordering::Relaxed);
        if !(0..n).any(idle_elsewhere) {
            return None;
        }
        let busy_here = local::with_current(|l| l.in_poll() && l.has_local_work())?;
        if !busy_here {
            return None;
        }
        let start = self.next_search_start();
        (0..n).map(|i| (start + i) % n).find(|&i| {
            // Claim the idle shard: one hand-over per idle spell, so a
            // burst of spawns does not pile up on a shard that has not
            // yet noticed the first.
            idle_elsewhere(i) && self.shards[i].idle.swap(false, Ordering::Relaxed)
        })
    }

    /// Routes a woken task to its queue; see the module table. `lifo` asks
    /// for the LIFO slot (the task was woken by another task, not by itself).
    fn route(&self, task: Runnable, lifo: bool) {
        match task.metadata().home {
            Home::Pinned(s) | Home::Local(s) => self.push_pinned(s, task),
            Home::Stealable => {
                let last = task.metadata().last_shard();
                self.push_stealable(last, task, lifo)
            }
            home @ (Home::Blocking | Home::Background) => self.pool(home).push(task),
        }
    }

    fn push_pinned(&self, shard: usize, task: Runnable) {
        let task = match local::push_pinned_here(self, shard, task) {
            Ok(()) => return,
            Err(t) => t,
        };
        match self.shards[shard].push_pinned(task) {
            Ok(()) => {
                park::wake(self, shard);
            }
            Err(task) => dead_letter(task),
        }
    }

    fn push_stealable(&self, shard: usize, task: Runnable, lifo: bool) {
        let task = match local::push_stealable_here(self, shard, task, lifo) {
            Ok(()) => return,
            Err(t) => t,
        };
        self.shards[shard].injector.push(task);
        if !park::wake(self, shard) {
            // The shard is busy: let an idle one come and steal.
            park::notify_idle(self, self.shards[shard].stealable_len());
        }
    }
}

/// A task woken after its shard exited. A started `Local` task's future
/// may be `!Send`, so it is leaked rather than dropped on this thread; any
/// other task (an unstarted `spawn_local_on` one included: its future
/// still only holds the `Send` closure, which may own a socket) is dropped,
/// which cancels it.
pub(crate) fn dead_letter(task: Runnable) {
    if task.metadata().droppable_anywhere() {
        drop(task);
    } else {
        std::mem::forget(task);
    }
}

/// Builds a task around `fut` with `build` (given the future wrapped in its
/// [`Guard`], which holds the task's slot in partition `part` of
/// `registry`), lets the slot keep the task's waker, and returns the task's
/// runnable and its `JoinHandle`. `build` runs under the partition's lock:
/// it only builds the task (see [`Registry::insert`]).
fn register<F: Future>(
    registry: &Registry,
    part: usize,
    fut: F,
    build: impl FnOnce(Guard<F>) -> (Runnable, async_task::Task<Outcome<F::Output>, TaskMeta>),
) -> (Runnable, JoinHandle<F::Output>) {
    let (task, handle) = registry.insert(part, |slot| {
        let (task, handle) = build(Guard::new(fut, slot));
        let waker = task.waker();
        ((task, handle), waker)
    });
    let waker = task.waker();
    (task, JoinHandle::new(handle, waker))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::dead_letter;
    use crate::task::ctl::Registry;
    use crate::task::{Home, Runnable, TaskMeta};

    /// A `Local` task around a future that holds `held` and never ends,
    /// woken as if after its shard exited: its schedule function hands the
    /// runnable to the dead letters.
    fn local_task(meta: TaskMeta, held: Arc<()>) -> Runnable {
        let fut = async move {
            let _held = held;
            std::future::pending::<()>().await;
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn(move |_: &TaskMeta| fut, dead_letter);
        task.detach();
        runnable
    }

    #[test]
    fn a_stranded_local_task_that_never_started_from_a_send_closure_is_dropped() {
        let held = Arc::new(());
        let meta = TaskMeta::new(Home::Local(0), 0).send_until_started();
        dead_letter(local_task(meta, held.clone()));
        assert_eq!(Arc::strong_count(&held), 1, "what it held was leaked");
    }

    #[test]
    fn a_stranded_local_task_that_started_is_leaked() {
        // Once polled, the future may be `!Send`: never dropped elsewhere.
        let held = Arc::new(());
        let meta = TaskMeta::new(Home::Local(0), 0).send_until_started();
        let task = local_task(meta, held.clone());
        let waker = task.waker();
        crate::task::run(task, &Registry::for_pool());
        waker.wake();
        assert_eq!(
            Arc::strong_count(&held),
            2,
            "a started local task was dropped"
        );
        // And one spawned on its own shard (`spawn_local`) never was
        // droppable elsewhere.
        let unmarked = Arc::new(());
        dead_letter(local_task(
            TaskMeta::new(Home::Local(0), 0),
            unmarked.clone(),
        ));
        assert_eq!(Arc::strong_count(&unmarked), 2);
    }
}
