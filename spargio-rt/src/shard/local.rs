//! The part of a shard only its own thread touches: the ring, the pinned
//! queue, the stealable deque's owner end and the timer heap (the LIFO
//! slot, which thieves may empty, is in `ShardShared`).
//!
//! A pointer to the running shard's `LocalShard` sits in a thread-local so
//! wakers, spawns and timers issued on a shard thread find it. Every borrow
//! of a `RefCell` here is short and never spans a task poll or a waker call,
//! so re-entry from a waker (a task woken while the ring's CQEs are being
//! dispatched, say) is always sound.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_deque::Worker;

use super::steal::Victim;
use io_uring::{opcode, types, IoUring};

use crate::driver::remote::OwnerShard;
use crate::driver::table::OpTable;
use crate::scheduler::Inner;
use crate::shard::ring_fd::RingFd;
use crate::shard::shared::ShardShared;
use crate::shard::spin::SpinPolicy;
use crate::shard::{park, ring};
use crate::task::{Home, Runnable};
use crate::time::heap::TimerHeap;
use crate::time::TimerEntry;

thread_local! {
    static CURRENT: Cell<*const LocalShard> = const { Cell::new(ptr::null()) };
}

/// Thread-local state of a running shard.
pub(crate) struct LocalShard {
    pub(crate) index: usize,
    pub(crate) inner: Arc<Inner>,
    /// What this shard's ops hold to reach it (see `driver::remote::Owner`).
    pub(crate) owner: Arc<OwnerShard>,
    /// The shard's ring; handed to [`Inner::retire_ring`] when the shard
    /// is dropped (hence `ManuallyDrop`).
    pub(crate) ring: RefCell<ManuallyDrop<IoUring>>,
    /// How this thread names `ring` to `io_uring_enter` (a registered
    /// ring fd when the kernel takes one).
    pub(crate) ring_fd: RingFd,
    pub(super) pinned: RefCell<VecDeque<Runnable>>,
    pub(super) worker: Worker<Runnable>,
    /// Polls in a row taken from the LIFO slot (`ShardShared::lifo`).
    pub(super) lifo_streak: Cell<usize>,
    pub(super) in_poll: Cell<bool>,
    /// Stealable spawns this poll has placed on other shards.
    pub(super) placed_away: Cell<u32>,
    /// Ops this poll may still submit and reap inline (see `inline.rs`).
    pub(super) inline_left: Cell<u32>,
    /// The metadata of the task being polled (null between polls).
    pub(super) polled_task: Cell<*const crate::task::TaskMeta>,
    /// Counts task polls, to tell this poll from earlier ones.
    pub(super) poll_seq: Cell<u32>,
    /// An inline reap is under way: tasks it wakes are queued as the
    /// loop's reap queues them, not put in the LIFO slot.
    pub(super) inline_reap: Cell<bool>,
    /// A panic out of an inline reap, resumed once the poll returns.
    pub(super) inline_panic: Cell<Option<Box<dyn std::any::Any + Send>>>,
    /// The backlog this poll last announced to idle shards (0: none yet).
    announced: Cell<usize>,
    pub(crate) timers: RefCell<TimerHeap>,
    /// Due timers taken out of `timers`, fired once its borrow has ended
    /// (kept between turns so its allocation is reused).
    due_timers: Cell<Vec<Arc<TimerEntry>>>,
    /// Tells this shard's timer heap from every other heap in the process
    /// (see [`current_timer_heap`]).
    timer_heap_id: u64,
    pub(super) doorbell_queued: Cell<bool>,
    /// A stealable task was queued outside a poll without waking a helper
    /// (this shard meant to run it next); see `push_stealable_here`.
    unannounced: Cell<bool>,
    /// Landing place of the armed eventfd read: a heap cell with a stable
    /// address, freed in `Drop` only when no read is in flight.
    pub(super) eventfd_buf: *mut u64,
    pub(super) eventfd_armed: Cell<bool>,
    pub(super) tick: Cell<u64>,
    /// Reused buffer of reaped CQEs: (user_data, result).
    pub(super) cqes: RefCell<Vec<(u64, i32, u32)>>,
    /// CQEs taken off the ring by a reap that a panic cut short; the next
    /// reap acts on them first.
    pub(super) unreaped: RefCell<Vec<(u64, i32, u32)>>,
    /// Per other shard: its poll count and when we first saw it, to tell a
    /// shard stuck in one poll from one that is moving along.
    pub(super) seen_polls: RefCell<Vec<(u64, Instant)>>,
    /// Set when a look for work declined to steal from a shard that may soon
    /// qualify; the shard then parks with a short timeout to look again.
    pub(super) declined: Cell<bool>,
    /// Sleeps in a row that ended by a steal re-check timeout with nothing
    /// found; resets when a task runs. Non-zero skips the pre-park spin and
    /// lengthens the re-check timeout.
    pub(crate) idle_rounds: Cell<u32>,
    /// Parks during shutdown so far (their timeout backs off).
    pub(crate) shutdown_polls: Cell<u32>,
    /// Sleeps in a row with op-table slots set aside for ops that did not
    /// come for them (their timeout backs off; see `worker::park_or_spin`).
    pub(crate) claim_rechecks: Cell<u32>,
    /// Whether to spin before parking, from recent idle gaps.
    pub(crate) spin: SpinPolicy,
    /// In-flight ops (see `driver`).
    pub(crate) ops: RefCell<OpTable>,
    /// SQEs that did not fit in the SQ; moved in after the next enter.
    pub(crate) spill: RefCell<VecDeque<io_uring::squeue::Entry>>,
    /// The CQ overflow count last seen, to count new overflows.
    pub(crate) cq_overflow_seen: Cell<u32>,
    /// Tasks that woke themselves while running here (a cooperative yield,
    /// such as `yield_now`), queued at the top of the next loop turn, after
    /// the completion queue has been reaped.
    deferred: RefCell<Vec<Runnable>>,
    /// Whether fds dropped on this thread are closed through the ring
    /// (cleared at shard exit, once the last ones have been).
    ring_closes_open: Cell<bool>,
    /// Ring closes submitted (or queued) whose CQE has not been reaped.
    pub(super) closes_in_flight: Cell<u64>,
    /// A ring close was queued since the last submission.
    pub(super) closes_unsubmitted: Cell<bool>,
}

/// How many task polls may queue SQEs before they are submitted mid-batch:
/// a batch of up to `task_budget` polls would otherwise hold the first
/// poll's I/O back until the last poll is done (a latency of the whole
/// batch), while submitting after every poll would pay an
/// `io_uring_enter` per op.
const SUBMIT_EVERY: usize = 16;

/// How often (in picks that do not come from the LIFO slot) a shard looks
/// at the injectors before its own deque, so tasks woken or spawned from
/// other threads run even while the deque never runs empty. Odd, so the
/// pick falls in turn on the ticks that put pinned tasks first and on
/// those that put stealable ones first.
const INJECTED_FIRST_EVERY: u64 = 31;

/// Runs `f` with the current thread's shard, if it belongs to `inner`'s runtime.
#[inline]
fn with_local<R>(inner: Option<&Inner>, f: impl FnOnce(&LocalShard) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: `CURRENT` is non-null only while `LocalShard::enter`'s guard
    // is alive on this thread, and the `LocalShard` it points to outlives
    // that guard (it is dropped after the guard resets the pointer).
    let local = unsafe { &*p };
    match inner {
        Some(i) if !ptr::eq(Arc::as_ptr(&local.inner), i) => None,
        _ => Some(f(local)),
    }
}

/// Runs `f` with the current thread's shard (of any runtime), if any.
pub(crate) fn with_current<R>(f: impl FnOnce(&LocalShard) -> R) -> Option<R> {
    with_local(None, f)
}

/// The current shard's runtime and index, if this is a shard thread.
pub(crate) fn current() -> Option<(Arc<Inner>, usize)> {
    with_local(None, |l| (l.inner.clone(), l.index))
}

/// The current shard's index, if this thread is a shard of `inner`.
pub(crate) fn current_index(inner: &Inner) -> Option<usize> {
    with_local(Some(inner), |l| l.index)
}

/// Puts a pinned task on the current shard's queue, if this thread is shard
/// `shard` of `inner`; gives the task back otherwise.
pub(crate) fn push_pinned_here(
    inner: &Inner,
    shard: usize,
    task: Runnable,
) -> Result<(), Runnable> {
    let mut task = Some(task);
    let done = with_local(Some(inner), |l| {
        if l.index == shard {
            l.pinned.borrow_mut().push_back(task.take().expect("once"));
            true
        } else {
            false
        }
    });
    match (done, task) {
        (Some(true), _) => Ok(()),
        (_, Some(t)) => Err(t),
        (_, None) => unreachable!("task consumed without being queued"),
    }
}

/// Holds back a task that woke itself while this thread's shard polled it
/// (a cooperative yield) until the shard's next loop turn, so the I/O that
/// completed meanwhile runs first; a plain re-queue would run it again in
/// the same batch, before the shard looks at its completions. Gives the
/// task back when this thread is not a shard of `inner`, or the task
/// cannot run here (pinned elsewhere, or a blocking-pool closure).
pub(crate) fn defer_here(inner: &Inner, task: Runnable) -> Result<(), Runnable> {
    let mut task = Some(task);
    let done = with_local(Some(inner), |l| {
        let t = task.as_ref().expect("once");
        let runs_here = match t.metadata().home {
            Home::Pinned(s) | Home::Local(s) => s == l.index,
            Home::Stealable => l.in_poll.get(),
            Home::Blocking | Home::Background => false,
        };
        if runs_here {
            l.deferred.borrow_mut().push(task.take().expect("once"));
        }
        runs_here
    });
    match (done, task) {
        (Some(true), _) => Ok(()),
        (_, Some(t)) => Err(t),
        (_, None) => unreachable!("task consumed without being queued"),
    }
}

/// Puts a stealable task on the current shard, if this thread is shard
/// `shard` of `inner`. `lifo` asks for the LIFO slot (a task woken by the
/// task now running, which will likely want it next).
pub(crate) fn push_stealable_here(
    inner: &Inner,
    shard: usize,
    task: Runnable,
    lifo: bool,
) -> Result<(), Runnable> {
    let mut task = Some(task);
    let done = with_local(Some(inner), |l| {
        if l.index != shard {
            return false;
        }
        let t = task.take().expect("once");
        if lifo && l.in_poll.get() && !l.inline_reap.get() && l.inner.steal.lifo_cap > 0 {
            let shared = l.shared();
            if let Some(prev) = shared.lifo.put(t) {
                l.worker.push(prev);
                l.announce(l.worker.len() + 1);
            } else if shared.poll_cost.worth_a_helper(1) {
                // The slot's task waits for the rest of this poll. Where
                // polls are usually long that may be a while: let an idle
                // shard know, so it can take the task once the poll has
                // run for `min_victim_busy`. Where they are quick (two
                // tasks passing messages) the poll is about to end, and a
                // helper woken per message would cost more than it saves;
                // an awake helper (spinning, searching, or re-checking a
                // busy shard) still sees the slot.
                l.announce(1);
            }
        } else {
            l.worker.push(t);
            // Outside a poll (reaping completions, firing timers) this shard
            // runs its queue next: one task there needs no helper, and
            // waking one would only cost a core's worth of wake-ups while
            // a single I/O-bound task bounces between its ring and the
            // queue. A second queued task is work for another shard, unless
            // the backlog is of quick polls (I/O-bound tasks their
            // completions woke) that this shard runs sooner than a helper
            // would wake up: see `poll_cost`. `run_task` announces a
            // backlog that is worth it after all if another task is polled
            // first. The price: tasks queued behind a poll that turns out
            // long, on a shard whose polls are usually quick, wait for it
            // (stealing them needs a woken helper).
            let queued = l.worker.len();
            if l.in_poll.get() || (queued >= 2 && l.shared().poll_cost.worth_a_helper(queued)) {
                l.announce(queued);
            } else {
                l.unannounced.set(true);
            }
        }
        true
    });
    match (done, task) {
        (Some(true), _) => Ok(()),
        (_, Some(t)) => Err(t),
        (_, None) => unreachable!("task consumed without being queued"),
    }
}

/// Queues a `MSG_RING` doorbell for shard `target` on the current shard's
/// ring (submitted at once when rung from inside a task's poll, else with
/// the shard's next enter); false when this thread is not a shard of
/// `inner` (use the eventfd).
pub(crate) fn queue_doorbell(inner: &Inner, target: usize) -> bool {
    with_local(Some(inner), |l| {
        if l.index == target {
            // Waking ourselves: we are running, nothing to ring.
            return true;
        }
        let fd = inner.shards[target]
            .ring_fd
            .load(std::sync::atomic::Ordering::Acquire);
        if fd < 0 {
            return false;
        }
        l.push_sqe(ring::doorbell_entry(fd, target));
        if l.in_poll.get() {
            // Rung from inside a task's poll (a wake-up, a spawn handed to
            // a parked shard): out now. Held until the poll returns, it
            // would keep the target asleep for as long as the poll goes on
            // computing, with its task claimed for it and no one else to
            // run it. The enter the poll's end would make is made here.
            l.submit(false, None);
        } else {
            l.doorbell_queued.set(true);
        }
        true
    })
    .unwrap_or(false)
}

/// The id of the fallback timer thread's heap, the heap of every thread
/// that is not a shard. Shard heaps get ids above it.
pub(crate) const FALLBACK_TIMER_HEAP: u64 = 0;

/// A process-wide unique id for a new shard's timer heap (never reused, so
/// a timer left in the heap of a shard that has exited is never mistaken
/// for one in a live heap).
fn next_timer_heap_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(FALLBACK_TIMER_HEAP + 1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The id of the heap a timer registered by this thread goes to.
pub(crate) fn current_timer_heap() -> u64 {
    with_local(None, |l| l.timer_heap_id).unwrap_or(FALLBACK_TIMER_HEAP)
}

/// Adds a timer to the current shard's heap and returns the heap's id;
/// gives it back off-shard.
pub(crate) fn register_timer(entry: Arc<TimerEntry>) -> Result<u64, Arc<TimerEntry>> {
    let mut entry = Some(entry);
    let id = with_local(None, |l| {
        l.timers.borrow_mut().insert(entry.take().expect("once"));
        l.timer_heap_id
    });
    match id {
        Some(id) => Ok(id),
        None => Err(entry.expect("not taken off-shard")),
    }
}

/// Closes `fd` through the current shard's ring, if this is a shard
/// thread; gives it back otherwise (the caller closes it at once).
pub(crate) fn close_on_ring(fd: OwnedFd) -> Result<(), OwnedFd> {
    let mut fd = Some(fd);
    with_local(None, |l| {
        if l.ring_closes_open.get() {
            l.queue_close(fd.take().expect("once"));
        }
    });
    fd.map_or(Ok(()), Err)
}

/// Submits the ring closes the current shard has queued (no-op off a
/// shard, or with none queued): before a process is spawned or a blocking
/// job is queued, so a file just written and dropped is no longer open
/// for writing when it is run (`ETXTBSY`), the child does not inherit it,
/// and a job sees it closed. A close completes during the submission
/// when its file system has no flush step (ext4, xfs, tmpfs, btrfs); on
/// one that has (overlayfs — a container's usual `/tmp` —, NFS, FUSE) it
/// may still be running in a kernel worker.
pub(crate) fn submit_ring_closes() {
    with_local(None, |l| {
        if l.closes_unsubmitted.get() {
            l.submit(false, None);
        }
    });
}

/// Counts a task panic on the current shard.
pub(crate) fn note_panic() {
    with_local(None, |l| l.shared().counters.panics.bump());
}

/// Resets `CURRENT` when the shard loop ends, even by unwinding.
pub(crate) struct EnterGuard;

impl Drop for EnterGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(ptr::null()));
    }
}

impl LocalShard {
    pub(crate) fn new(index: usize, inner: Arc<Inner>, ring: IoUring) -> Self {
        let n = inner.shards.len();
        let worker = Worker::new_fifo();
        let inner_ops_limit = inner.max_ops_in_flight;
        let _ = inner.shards[index].stealer.set(worker.stealer());
        let spin = SpinPolicy::new(inner.park_spin);
        LocalShard {
            index,
            owner: OwnerShard::new(inner.clone(), index),
            inner,
            ring_fd: RingFd::register(&ring),
            ring: RefCell::new(ManuallyDrop::new(ring)),
            pinned: RefCell::new(VecDeque::new()),
            worker,
            lifo_streak: Cell::new(0),
            in_poll: Cell::new(false),
            placed_away: Cell::new(0),
            inline_left: Cell::new(0),
            polled_task: Cell::new(ptr::null()),
            poll_seq: Cell::new(0),
            inline_reap: Cell::new(false),
            inline_panic: Cell::new(None),
            announced: Cell::new(0),
            timers: RefCell::new(TimerHeap::default()),
            due_timers: Cell::new(Vec::new()),
            timer_heap_id: next_timer_heap_id(),
            doorbell_queued: Cell::new(false),
            unannounced: Cell::new(false),
            eventfd_buf: Box::into_raw(Box::new(0u64)),
            eventfd_armed: Cell::new(false),
            tick: Cell::new(0),
            cqes: RefCell::new(Vec::with_capacity(64)),
            unreaped: RefCell::new(Vec::new()),
            seen_polls: RefCell::new(vec![(u64::MAX, Instant::now()); n]),
            declined: Cell::new(false),
            idle_rounds: Cell::new(0),
            shutdown_polls: Cell::new(0),
            claim_rechecks: Cell::new(0),
            spin,
            ops: RefCell::new(OpTable::new(inner_ops_limit)),
            spill: RefCell::new(VecDeque::new()),
            cq_overflow_seen: Cell::new(0),
            deferred: RefCell::new(Vec::new()),
            ring_closes_open: Cell::new(true),
            closes_in_flight: Cell::new(0),
            closes_unsubmitted: Cell::new(false),
        }
    }

    /// Makes this the current thread's shard until the guard drops.
    pub(crate) fn enter(&self) -> EnterGuard {
        CURRENT.with(|c| c.set(self as *const LocalShard));
        EnterGuard
    }

    pub(crate) fn shared(&self) -> &ShardShared {
        &self.inner.shards[self.index]
    }

    /// Whether the nearest timer is due.
    pub(crate) fn timer_due(&self) -> bool {
        self.timers
            .borrow_mut()
            .next_deadline()
            .is_some_and(|d| d <= std::time::Instant::now())
    }

    /// Fires the timers due at `now`; returns how many. `now` may be a
    /// little in the past (the loop reuses the time it last read): a
    /// timer then fires a turn later, never early.
    pub(crate) fn fire_timers(&self, now: Instant) -> u64 {
        let mut due = self.due_timers.take();
        self.timers.borrow_mut().take_due(now, &mut due);
        // Fired outside the heap's borrow: a waker may set a timer itself.
        let mut firing = Refire {
            shard: self,
            due,
            next: 0,
        };
        let mut fired = 0;
        while let Some(entry) = firing.due.get(firing.next) {
            firing.next += 1;
            if entry.fire() {
                fired += 1;
            }
        }
        if fired > 0 {
            self.shared().counters.timers_fired.add(fired);
        }
        fired
    }

    /// Moves pinned tasks woken elsewhere into the local queue.
    pub(crate) fn drain_inbox(&self) {
        self.shared().drain_inbox(&mut self.pinned.borrow_mut());
    }

    /// The next task to run, or `None` when every local queue is empty.
    fn next_local(&self) -> Option<(Runnable, bool)> {
        let cap = self.inner.steal.lifo_cap;
        let lifo = &self.shared().lifo;
        if self.lifo_streak.get() < cap {
            if let Some(t) = lifo.take() {
                self.lifo_streak.set(self.lifo_streak.get() + 1);
                return Some((t, true));
            }
        } else if let Some(t) = lifo.take() {
            // Streak over: the LIFO task goes behind the queue.
            self.worker.push(t);
        }
        self.lifo_streak.set(0);
        let tick = self.tick.get();
        self.tick.set(tick.wrapping_add(1));
        if tick.is_multiple_of(INJECTED_FIRST_EVERY) {
            // Tasks woken or spawned from other threads wait in the
            // injectors, behind a deque that two tasks waking each other
            // can keep from ever running empty. Which injector goes first
            // alternates: wake-ups from other threads keep the own one
            // busy, and outside spawns wait in the global one.
            let global_first = (tick / INJECTED_FIRST_EVERY) % 2 == 1;
            if let Some(t) = self.pop_injected(global_first) {
                return Some((t, true));
            }
        }
        // Alternate which kind goes first so neither starves the other.
        let pinned_first = tick.is_multiple_of(2);
        let pop_pinned = || self.pop_pinned().map(|t| (t, false));
        let pop_stealable = || self.pop_stealable().map(|t| (t, true));
        if pinned_first {
            pop_pinned().or_else(pop_stealable)
        } else {
            pop_stealable().or_else(pop_pinned)
        }
    }

    /// From the own deque, then the injectors.
    fn pop_stealable(&self) -> Option<Runnable> {
        self.worker.pop().or_else(|| self.pop_injected(false))
    }

    /// From the own injector, then the global one (the other way round if
    /// `global_first`), taking a batch into the deque with the task.
    fn pop_injected(&self, global_first: bool) -> Option<Runnable> {
        let batch = self.inner.steal.batch;
        let (own, global) = (&self.shared().injector, &self.inner.global);
        let order = if global_first {
            [global, own]
        } else {
            [own, global]
        };
        order.into_iter().find_map(|inj| {
            crate::queue::steal_batch(inj, |q| {
                q.steal_batch_with_limit_and_pop(&self.worker, batch)
            })
            .success()
        })
    }

    /// Tells idle shards that `queued` stealable tasks wait here
    /// ([`park::notify_idle`], a `SeqCst` fence and a look at every shard's
    /// flags). Inside a poll that queues many (a task spawning a burst),
    /// only a backlog that has doubled since the poll's last announcement
    /// is announced again (1, 2, 4, 8, ...): the helper woken by the first
    /// keeps stealing while work is queued, and a shard that goes to sleep
    /// meanwhile re-checks the queues after publishing that it sleeps, so
    /// it sees the backlog itself. Outside a poll every call announces.
    fn announce(&self, queued: usize) {
        if self.in_poll.get() {
            let last = self.announced.get();
            if last != 0 && queued < last.saturating_mul(2) {
                return;
            }
            self.announced.set(queued.max(1));
        }
        park::notify_idle(&self.inner, queued);
    }

    /// Queues the tasks that yielded since the last call, in the order
    /// they yielded (see [`defer_here`]).
    pub(crate) fn wake_deferred(&self) {
        if self.deferred.borrow().is_empty() {
            return;
        }
        let mut tasks = std::mem::take(&mut *self.deferred.borrow_mut());
        for task in tasks.drain(..) {
            match task.metadata().home {
                Home::Pinned(_) | Home::Local(_) => self.pinned.borrow_mut().push_back(task),
                Home::Stealable => {
                    if let Err(task) = push_stealable_here(&self.inner, self.index, task, false) {
                        unreachable!("shard {} is this thread: {task:?}", self.index);
                    }
                }
                Home::Blocking | Home::Background => {
                    unreachable!("defer_here never holds a pool task")
                }
            }
        }
        // Keep the list's buffer for the next turn's yields.
        let mut deferred = self.deferred.borrow_mut();
        if deferred.is_empty() {
            *deferred = tasks;
        }
    }

    /// Runs up to `budget` tasks; returns how many ran, and when the batch
    /// ended if any did.
    pub(crate) fn run_batch(&self, budget: usize) -> (usize, Option<Instant>) {
        if budget == 0 {
            return (0, None);
        }
        let Some(mut next) = self.next_local() else {
            return (0, None);
        };
        let started = Instant::now();
        let mut ran = 0;
        loop {
            let (task, stealable) = next;
            self.run_task(task, stealable);
            ran += 1;
            if ran % SUBMIT_EVERY == 0 {
                // Ops queued by the tasks so far (a response's send, say)
                // go to the kernel now rather than after the whole batch.
                self.submit_if_needed();
            }
            if ran >= budget {
                break;
            }
            match self.next_local() {
                Some(t) => next = t,
                None => break,
            }
        }
        let ended = Instant::now();
        self.shared().poll_cost.record(ended - started, ran);
        (ran, Some(ended))
    }

    fn run_task(&self, task: Runnable, stealable: bool) {
        let shared = self.shared();
        if stealable {
            task.metadata().set_last_shard(self.index);
            shared.counters.stealable_polled.bump();
        }
        shared.counters.tasks_polled.bump();
        if self.unannounced.replace(false)
            && !self.worker.is_empty()
            && self.shared().poll_cost.worth_a_helper(self.worker.len())
        {
            // A task queued without a helper still waits behind this poll.
            park::notify_idle(&self.inner, self.worker.len());
        }
        // Doorbells queued between polls (that one, or by a reap or a
        // timer) go out before this poll, however long it turns out.
        self.flush_doorbells();
        shared
            .polling
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.in_poll.set(true);
        self.placed_away.set(0);
        self.announced.set(0);
        self.inline_left
            .set(crate::shard::inline::INLINE_OPS_PER_POLL);
        self.poll_seq.set(self.poll_seq.get().wrapping_add(1));
        self.polled_task.set(task.metadata());
        {
            // Ends the poll's state however `run` returns (it can unwind
            // out of a schedule function).
            let _scope = PollScope(self);
            crate::task::run(task, &self.inner.registry);
        }
        if let Some(payload) = self.inline_panic.take() {
            // A waker or an op's destructor panicked in an inline reap
            // during the poll: the loop's panic, not the task's.
            std::panic::resume_unwind(payload);
        }
        // Doorbells rung during the poll went out at once
        // (`queue_doorbell`); nothing is left here unless one was queued
        // another way, and then it goes out now, not after the batch.
        self.flush_doorbells();
    }

    /// Whether anything is runnable here or stealable elsewhere; the
    /// re-check of the parking protocol (step 3 in `park.rs`).
    pub(crate) fn has_work(&self) -> bool {
        if self.has_local_work() {
            return true;
        }
        if self.inner.steal.enabled {
            for v in self.inner.shards.iter() {
                if v.index == self.index {
                    continue;
                }
                match self.look_at(v) {
                    Victim::Ready => return true,
                    Victim::NotYet => self.declined.set(true),
                    Victim::Nothing => {}
                }
            }
        }
        false
    }

    /// Whether this poll may still place a spawn on another shard by load
    /// (outside a poll there is no limit); see `Inner::least_loaded`.
    pub(crate) fn placement_budget_left(&self, budget: u32) -> bool {
        !self.in_poll.get() || self.placed_away.get() < budget
    }

    /// Counts a spawn this poll placed on another shard.
    pub(crate) fn spend_placement_budget(&self) {
        self.placed_away
            .set(self.placed_away.get().saturating_add(1));
    }

    /// Whether a task poll is running on this shard right now.
    pub(crate) fn in_poll(&self) -> bool {
        self.in_poll.get()
    }

    /// Whether anything is runnable on this shard without stealing.
    pub(crate) fn has_local_work(&self) -> bool {
        let shared = self.shared();
        !self.pinned.borrow().is_empty()
            || !self.deferred.borrow().is_empty()
            || !self.worker.is_empty()
            || shared.has_inbox()
            || !shared.injector.is_empty()
            || !self.inner.global.is_empty()
            || shared.has_remote()
            || shared.lifo.is_occupied()
    }

    /// Takes the next pinned task off the queue, publishing the depth left.
    fn pop_pinned(&self) -> Option<Runnable> {
        let task = self.pinned.borrow_mut().pop_front();
        if task.is_some() {
            self.publish_depth();
        }
        task
    }

    /// Publishes how many pinned tasks this shard has queued (for stats;
    /// the inbox, filled by other threads, is counted apart). Called every
    /// loop turn and every pinned pop, so it stores only when the number
    /// changed.
    pub(crate) fn publish_depth(&self) {
        let n = self.pinned.borrow().len();
        let depth = &self.shared().pinned_depth;
        if depth.load(std::sync::atomic::Ordering::Relaxed) != n {
            depth.store(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Queues an `IORING_OP_CLOSE` of a dropped file's `fd`: it goes out
    /// with the shard's next submission, so it costs no `close(2)` of its
    /// own, and a close that blocks (a file on NFS or FUSE flushing its
    /// data) blocks a kernel worker, not the shard.
    fn queue_close(&self, fd: OwnedFd) {
        let raw = fd.into_raw_fd();
        self.push_sqe(
            opcode::Close::new(types::Fd(raw))
                .build()
                .user_data(ring::UD_CLOSE),
        );
        self.closes_in_flight.set(self.closes_in_flight.get() + 1);
        self.closes_unsubmitted.set(true);
        self.shared().counters.ring_closes.bump();
    }

    /// Shard exit: submits the ring closes still queued and reaps them, so
    /// no fd outlives the ring that was to close it. From here on, fds
    /// dropped on this thread are closed at once.
    pub(crate) fn settle_closes(&self) {
        self.ring_closes_open.set(false);
        for _ in 0..1000 {
            if self.closes_in_flight.get() == 0 {
                return;
            }
            self.submit(true, Some(std::time::Duration::from_millis(10)));
            self.reap();
        }
        crate::warn::warn_stderr!(
            "spargio: shard {} exits with {} ring closes the kernel never completed",
            self.index,
            self.closes_in_flight.get()
        );
    }

    /// Drops every queued task and timer (shard exit), again and again
    /// until a pass finds nothing (a dropped future's destructor may wake
    /// another task of this shard). Runs on the shard's own thread, so
    /// pinned `!Send` futures are dropped where they live.
    pub(crate) fn drop_queued(&self) {
        loop {
            let lifo = self.shared().lifo.take();
            let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
            let inbox = self.shared().close_inbox();
            let pinned = std::mem::take(&mut *self.pinned.borrow_mut());
            let mut found = lifo.is_some() || !deferred.is_empty();
            found |= !inbox.is_empty() || !pinned.is_empty();
            drop((lifo, deferred, inbox, pinned));
            while let Some(t) = self.worker.pop() {
                found = true;
                drop(t);
            }
            let timers = self.timers.borrow_mut().take_all();
            found |= !timers.is_empty();
            drop(timers);
            if !found {
                return;
            }
        }
    }
}

impl Drop for LocalShard {
    fn drop(&mut self) {
        if !self.eventfd_armed.get() {
            // SAFETY: the pointer came from `Box::into_raw` in `new` and is
            // freed only here; no read is in flight (`quiesce` reaped it), so
            // the kernel holds no reference to it.
            drop(unsafe { Box::from_raw(self.eventfd_buf) });
        }
        // SAFETY: the ring is taken out once, here, and the field is not
        // touched again (the shard is being dropped).
        let ring = unsafe { ManuallyDrop::take(self.ring.get_mut()) };
        // On this shard's thread, which made the registration.
        self.ring_fd.unregister(&ring);
        self.inner.retire_ring(ring);
    }
}

/// The due timers a shard is firing. If a waker panics, its drop puts the
/// ones not fired yet back into the heap (still due, they fire next turn)
/// instead of losing them with the unwinding; either way it gives the
/// emptied list back for reuse.
struct Refire<'a> {
    shard: &'a LocalShard,
    due: Vec<Arc<TimerEntry>>,
    next: usize,
}

impl Drop for Refire<'_> {
    fn drop(&mut self) {
        if self.next < self.due.len() {
            let mut heap = self.shard.timers.borrow_mut();
            for entry in self.due.drain(self.next..) {
                heap.insert(entry);
            }
        }
        self.due.clear();
        // The batch buffer is reused; a burst's worth of room is not kept.
        self.due.shrink_to(DUE_TIMERS_KEPT);
        self.shard.due_timers.set(std::mem::take(&mut self.due));
    }
}

/// How many due timers' room the firing buffer keeps between turns.
const DUE_TIMERS_KEPT: usize = 1024;

/// Clears a shard's in-poll state when a task poll ends, also by unwinding.
struct PollScope<'a>(&'a LocalShard);

impl Drop for PollScope<'_> {
    fn drop(&mut self) {
        let l = self.0;
        l.polled_task.set(ptr::null());
        l.in_poll.set(false);
        l.shared()
            .polling
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
