//! Runtime counters: what each shard did.
//!
//! Every counter is written by one shard thread only, so it is bumped with a
//! relaxed load and store (no locked instruction on the hot path) and read by
//! anyone with a relaxed load.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter with a single writer (its shard thread).
#[derive(Default, Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning shard thread calls this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Adds one. Only the owning shard thread calls this.
    #[inline]
    pub(crate) fn bump(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A counter that any thread may bump (doorbells sent from foreign threads).
#[derive(Default, Debug)]
pub(crate) struct SharedCounter(AtomicU64);

impl SharedCounter {
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The live counters of one shard.
#[derive(Default, Debug)]
pub(crate) struct ShardCounters {
    pub(crate) tasks_polled: Counter,
    pub(crate) stealable_polled: Counter,
    pub(crate) stolen: Counter,
    pub(crate) steal_attempts: Counter,
    pub(crate) doorbells_sent: SharedCounter,
    pub(crate) doorbells_received: Counter,
    pub(crate) parks: Counter,
    pub(crate) ring_enters: Counter,
    pub(crate) busy_yields: Counter,
    pub(crate) shared_cpu_parks: Counter,
    pub(crate) timers_fired: Counter,
    pub(crate) panics: Counter,
    pub(crate) loop_panics: Counter,
    pub(crate) ops_submitted: Counter,
    pub(crate) ops_inline: Counter,
    pub(crate) ops_inline_done: Counter,
    pub(crate) ops_completed: Counter,
    pub(crate) ops_cancelled: Counter,
    pub(crate) sq_spills: Counter,
    pub(crate) cq_overflows: Counter,
    pub(crate) cqes_lost: Counter,
    pub(crate) submit_busy: Counter,
    pub(crate) stale_cqes: Counter,
    pub(crate) ring_closes: Counter,
}

/// A snapshot of one shard's counters. See [`RuntimeStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Times a task (pinned or stealable) was run on this shard: polled, or
    /// dropped unpolled because it had been aborted.
    pub tasks_polled: u64,
    /// Of those, polls of stealable tasks.
    pub stealable_polled: u64,
    /// Stealable tasks this shard took from another shard's queue.
    pub stolen: u64,
    /// Times this shard tried to take work from another shard that had
    /// some to give (busy, with stealable tasks queued); looks that found
    /// nothing to take are not counted.
    pub steal_attempts: u64,
    /// Doorbells (msg_ring CQEs or eventfd writes) sent *to* this shard by
    /// other threads to wake it for work.
    pub doorbells_sent: u64,
    /// Doorbell completions this shard reaped. Need not match
    /// `doorbells_sent`: eventfd writes that arrive together are reaped as
    /// one, and the runtime's own eventfd rings (shutdown, its last task
    /// ending) are received without being counted sent.
    pub doorbells_received: u64,
    /// Times this shard blocked in `io_uring_enter` with nothing to do.
    pub parks: u64,
    /// `io_uring_enter` system calls this shard made.
    pub ring_enters: u64,
    /// Times this shard, busy for `RuntimeBuilder::busy_yield` without a
    /// break, offered its CPU to other runnable threads.
    pub busy_yields: u64,
    /// Times this shard, out of work, parked at once instead of spinning
    /// because another awake shard was on its CPU (a spin there would only
    /// take turns with the shard it waits for; parked, the wake-up lets the
    /// kernel move it to an idle CPU).
    pub shared_cpu_parks: u64,
    /// Timers that expired on this shard.
    pub timers_fired: u64,
    /// Tasks that panicked while polled on this shard (the shard survived).
    pub panics: u64,
    /// Panics that escaped this shard's event loop itself (from a waker or
    /// an op's destructor the loop ran, not from a task poll); each one
    /// shuts the runtime down.
    pub loop_panics: u64,
    /// I/O ops this shard submitted to its ring.
    pub ops_submitted: u64,
    /// Of those, ops submitted at once from inside their task's poll,
    /// each with an `io_uring_enter` of its own, because the task's
    /// previous op moved data the same way and its completion was the one
    /// the task saw in the same poll (a run of writes, or of reads, awaited
    /// one after another).
    pub ops_inline: u64,
    /// Of those, ops the kernel completed during that enter, so that the
    /// task went on without waiting for a loop turn.
    pub ops_inline_done: u64,
    /// Ops whose final CQE this shard reaped.
    pub ops_completed: u64,
    /// Cancel requests this shard submitted (dropped in-flight ops).
    pub ops_cancelled: u64,
    /// SQEs that waited in the spill queue instead of going straight into
    /// the SQ: it was full, others were waiting there already, or the ring
    /// was in use.
    pub sq_spills: u64,
    /// Reaps that found the kernel holding CQEs back in its overflow list
    /// because the CQ was full (they reach the CQ with a later enter;
    /// nothing is lost). Counts occurrences, not CQEs.
    pub cq_overflows: u64,
    /// CQEs the kernel dropped: the CQ was full and it found no memory to
    /// hold them back (`io_uring_enter` then fails with `EBADR` once,
    /// which the shard counts here and gets over). Should never happen
    /// short of a machine out of memory. An op whose CQE was lost is never
    /// told it completed: its future hangs until dropped, and the shard's
    /// exit gives up on it (its buffers are leaked, not freed).
    pub cqes_lost: u64,
    /// Submissions the kernel refused with `EBUSY` (CQ backed up).
    pub submit_busy: u64,
    /// CQEs whose tag matched no live op (counted, never acted on).
    pub stale_cqes: u64,
    /// Files dropped on this shard and closed through its ring
    /// (`IORING_OP_CLOSE`) instead of a `close(2)` on the shard's thread,
    /// which blocks while a network or FUSE file system flushes.
    pub ring_closes: u64,
    /// Pinned tasks waiting in this shard's queues right now.
    pub pinned_queue_depth: usize,
    /// Stealable tasks waiting in this shard's queues right now (its deque
    /// and its injector; not the one task in its LIFO slot, nor tasks that
    /// yielded and wait for the next turn, nor the runtime-wide queue: see
    /// [`RuntimeStats::global_queue_depth`]).
    pub stealable_queue_depth: usize,
}

/// A snapshot of every shard's counters, from
/// [`RuntimeHandle::stats`](crate::RuntimeHandle::stats).
///
/// ```
/// let rt = spargio_rt::Runtime::builder().shards(2).build().unwrap();
/// let stats = rt.handle().stats();
/// assert_eq!(stats.shards.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardStats>,
    /// Tasks of the shards (stealable and pinned, over all shards) spawned
    /// and not yet finished. Blocking jobs and background tasks are
    /// counted apart: [`live_blocking_tasks`](Self::live_blocking_tasks),
    /// [`live_background_tasks`](Self::live_background_tasks).
    pub live_tasks: usize,
    /// Stealable tasks spawned from outside the runtime (any thread but a
    /// shard's) waiting in the runtime-wide queue for a shard to take them.
    pub global_queue_depth: usize,
    /// Threads in the blocking pool right now.
    pub blocking_threads: usize,
    /// Threads in the background pool right now
    /// ([`RuntimeHandle::spawn_background`](crate::RuntimeHandle::spawn_background)).
    pub background_threads: usize,
    /// Background tasks spawned and not yet finished.
    pub live_background_tasks: usize,
    /// Blocking jobs ([`spawn_blocking`](crate::spawn_blocking)) queued or
    /// running.
    pub live_blocking_tasks: usize,
}

impl RuntimeStats {
    /// Sum of `tasks_polled` over all shards.
    pub fn total_polled(&self) -> u64 {
        self.shards.iter().map(|s| s.tasks_polled).sum()
    }

    /// Sum of `stolen` over all shards.
    pub fn total_stolen(&self) -> u64 {
        self.shards.iter().map(|s| s.stolen).sum()
    }

    /// Sum of `doorbells_received` over all shards.
    pub fn total_doorbells(&self) -> u64 {
        self.shards.iter().map(|s| s.doorbells_received).sum()
    }
}
