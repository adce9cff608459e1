//! A shard's thread: start-up, the event loop, and exit.
//!
//! One loop turn:
//! 1. reap completions (doorbells, eventfd, failed sends, I/O ops, ring
//!    closes) and take ops handed over from other threads;
//! 2. fire due timers;
//! 3. take pinned tasks woken from elsewhere out of the inbox;
//! 4. run up to `task_budget` tasks (LIFO slot, pinned queue, deque,
//!    injectors), flushing any doorbell a poll queued right after that poll
//!    and submitting queued SQEs every 16 polls (a task's op that moves
//!    data the same way as its previous one, completed in the same poll,
//!    is submitted, and reaped if the kernel completed it, inside the
//!    poll: see `inline.rs`);
//! 5. if nothing ran, try to steal from busy shards;
//! 6. submit new SQEs with one `io_uring_enter` (or none if there are none),
//!    or, with nothing to do at all, park in `io_uring_enter` until a CQE or
//!    the nearest timer (see `park.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use io_uring::IoUring;
use std::time::{Duration, Instant};

use crate::builder::ThreadAffinity;
use crate::scheduler::Inner;
use crate::shard::local::LocalShard;
use crate::shard::park;
use crate::shard::ring;

/// Everything a shard thread needs to start.
pub(crate) struct ShardStart {
    pub(crate) inner: Arc<Inner>,
    pub(crate) index: usize,
    /// The shard's ring, created disabled by `Runtime::build`.
    pub(crate) ring: IoUring,
    pub(crate) go: Arc<Gate>,
}

/// Holds shard threads until all of them are spawned (and bound to their
/// CPUs); then lets them run, or tells them to exit because the runtime is
/// not being built after all.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<Option<bool>>,
    opened: Condvar,
}

impl Gate {
    /// Releases the waiting shards; `run` says whether they should start.
    pub(crate) fn open(&self, run: bool) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
        self.opened.notify_all();
    }

    /// Waits for [`open`](Self::open); returns its `run`.
    fn wait(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(run) = *st {
                return run;
            }
            st = self.opened.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Enables the shard's ring on its own thread (which becomes the ring's
/// single issuer). In unit tests, a shard whose thread name ends in
/// `-enable-fails-1` fails here instead, to exercise that path, and every
/// shard of a runtime whose thread names contain `-enable-fails-late-`
/// fails after 100 ms (work spawned right after the build is queued by
/// then).
fn enable(ring: &IoUring) -> std::io::Result<()> {
    #[cfg(test)]
    if let Some(name) = std::thread::current().name() {
        let late = name.contains("-enable-fails-late-");
        if late {
            std::thread::sleep(Duration::from_millis(100));
        }
        if late || name.ends_with("-enable-fails-1") {
            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    ring::enable(ring)
}

/// Stands in for a shard that cannot use its ring while the runtime shuts
/// down: fails every op request and drops every task sent to it (on this,
/// their home thread), and those spawned from outside the runtime into the
/// global injector (`Send`: any thread may drop them; with every shard
/// failed, nothing else would), until no task of the runtime is left.
fn drop_work_until_shutdown(inner: &Inner, index: usize) {
    let shared = &inner.shards[index];
    // Others ring the eventfd instead of a ring that will never look.
    shared.close_doorbell_target();
    shared.close_remote();
    loop {
        shared.fail_stranded_remote(Some(&inner.remote_slots));
        let mut tasks = VecDeque::new();
        shared.drain_inbox(&mut tasks);
        while let Some(t) = crate::queue::take(&shared.injector) {
            tasks.push_back(t);
        }
        while let Some(t) = crate::queue::take(&inner.global) {
            tasks.push_back(t);
        }
        let dropped = !tasks.is_empty();
        drop(tasks);
        if !dropped && inner.registry.live() == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The CPU shard `index` is bound to, if any. `allowed`: the CPUs the
/// building thread may run on ([`allowed_cpus`]), which
/// [`ThreadAffinity::PerShard`] deals out.
pub(crate) fn cpu_for(affinity: &ThreadAffinity, index: usize, allowed: &[usize]) -> Option<usize> {
    match affinity {
        ThreadAffinity::None => None,
        ThreadAffinity::PerShard => {
            if allowed.is_empty() {
                // The mask could not be read: the first CPUs, as many as
                // the process may use.
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some(index % cpus)
            } else {
                Some(allowed[index % allowed.len()])
            }
        }
        // (An empty list is refused by `build`.)
        ThreadAffinity::Cpus(list) if list.is_empty() => None,
        ThreadAffinity::Cpus(list) => Some(list[index % list.len()]),
    }
}

/// The CPUs the calling thread may run on, in order (empty if the kernel
/// would not say). In a container or under `taskset` these need not be
/// the first ones.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a zeroed cpu_set_t on the stack that the kernel
    // fills (its size is passed); CPU_ISSET reads inside it, below
    // CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Binds the (already spawned) thread `thread` to `cpu`.
pub(crate) fn bind_to_cpu(thread: &std::thread::JoinHandle<()>, cpu: usize) -> std::io::Result<()> {
    use std::os::unix::thread::JoinHandleExt;
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `set` is a plain bit set on the stack and CPU_SET writes
    // inside it (cpu < CPU_SETSIZE, checked above); the pthread handle is
    // valid while its `JoinHandle` lives, which the caller holds.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::pthread_setaffinity_np(
            thread.as_pthread_t(),
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// A failure to bind shard `index` to `cpu`, saying which (the kernel's
/// error is the [`source`](std::error::Error::source)).
pub(crate) fn bind_error(index: usize, cpu: usize, e: std::io::Error) -> std::io::Error {
    crate::explained::explained(
        format!("spargio: could not bind shard {index} to CPU {cpu} (thread_affinity): {e}"),
        e,
    )
}

/// Body of a shard thread.
pub(crate) fn main(start: ShardStart) {
    let ShardStart {
        inner,
        index,
        ring,
        go,
    } = start;
    if !go.wait() {
        // The runtime is not being built (another thread failed to spawn).
        return;
    }
    if let Err(e) = enable(&ring) {
        // Should not happen with a ring from `ring::create` (a seccomp
        // policy that lets io_uring_setup through but not
        // io_uring_register could do it). The runtime cannot run without
        // this shard: say so, shut it down, and drop whatever is sent here
        // meanwhile so no task is stranded (`build` does not wait for the
        // shards to come up, so this cannot fail it).
        crate::warn::warn_stderr!(
            "spargio: shard {index} could not enable its io_uring ring: {e}; shutting the runtime down"
        );
        inner.begin_shutdown();
        drop_work_until_shutdown(&inner, index);
        inner.done_submitting();
        drop(ring);
        return;
    }
    let local = LocalShard::new(index, inner.clone(), ring);
    let entered = local.enter();
    local.arm_eventfd();
    run_to_exit(&local);
    // From here on an unwind would tear the ring down (and free buffers)
    // while the kernel may still write into them: abort instead.
    let no_unwind = AbortOnUnwind(index);
    // Drop what is still queued here, on this thread, until nothing comes
    // back (a dropped task's destructor may wake another).
    local.drop_queued();
    local.retire_ops();
    local.quiesce();
    local.settle_closes();
    drop(entered);
    // Nothing more goes to the ring from here on (its doorbells
    // included), so the last shard to get here may close the doorbell
    // targets; this one's ring lives on through its own until then.
    inner.done_submitting();
    drop(local);
    std::mem::forget(no_unwind);
}

/// How many panics escaping the event loop a shard survives (each one
/// followed by the loop again, shutting down) before it gives up.
const LOOP_PANICS_BEFORE_ABORT: u32 = 3;

/// Runs the event loop until it returns at shutdown.
///
/// Task polls catch their own panics; a panic that reaches this far came
/// from code the loop itself runs, such as a waker (a timer's, or an op's)
/// or a destructor of an op's data. The shard's state is whole again once
/// the panic has unwound out of the loop (no borrow is held across turns),
/// but completions reaped in the same turn and not yet acted on are lost,
/// so the tasks waiting on them would wait for ever: the runtime shuts
/// down, and the loop runs again to cancel this shard's tasks and let them
/// go the way a normal shutdown does. A shard that keeps panicking while
/// it shuts down aborts the process, since unwinding past its ring with
/// ops in flight would free memory the kernel still writes to.
fn run_to_exit(local: &LocalShard) {
    let mut panics = 0;
    loop {
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(local)));
        if turn.is_ok() {
            return;
        }
        panics += 1;
        local.shared().counters.loop_panics.bump();
        if panics >= LOOP_PANICS_BEFORE_ABORT {
            crate::warn::warn_stderr!(
                "spargio: shard {}'s event loop panicked {panics} times while shutting down; aborting",
                local.index
            );
            std::process::abort();
        }
        crate::warn::warn_stderr!(
            "spargio: shard {}'s event loop panicked outside any task (see the message above); \
             shutting the runtime down",
            local.index
        );
        local.inner.begin_shutdown();
    }
}

/// Aborts the process if dropped while unwinding (see its use in [`main`]).
struct AbortOnUnwind(usize);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        crate::warn::warn_stderr!(
            "spargio: shard {} panicked while retiring its io_uring ops; aborting, since the \
             kernel may still write into their buffers",
            self.0
        );
        std::process::abort();
    }
}

/// The event loop; returns when the runtime shuts down and no task is left.
fn run(local: &LocalShard) {
    let inner = local.inner.clone();
    let shared = local.shared();
    let mut aborted_at_shutdown = false;
    let mut busy = BusyClock::new(inner.busy_yield);
    // The last time read: the end of the last batch, or of the last park.
    // Timers fire against it (at most one loop turn late, never early),
    // which saves a clock read per turn.
    let mut now = Instant::now();
    loop {
        if !aborted_at_shutdown && inner.is_shutdown() {
            // Checked every turn, not only on idle ones: a shard whose tasks
            // keep it busy (each yields and is runnable again) never has
            // an idle turn, and its tasks must be cancelled all the same.
            aborted_at_shutdown = true;
            inner.registry.abort_all();
        }
        local.reap();
        local.drain_remote();
        local.take_declined();
        local.fire_timers(now);
        local.drain_inbox();
        // Tasks that yielded go behind the ones the reap above woke.
        local.wake_deferred();
        local.publish_depth();
        if shared.woken_to_search.load(Ordering::Relaxed) {
            // Woken to steal: searching only until this first look is over,
            // not through the batch it finds (up to `task_budget` polls,
            // during which no other idle shard would be woken).
            let found = local.has_local_work() || local.steal();
            park::end_search(&inner, local.index);
            // More queued than this shard takes on: its own deque's first
            // task is what it runs next.
            let more_queued = inner
                .shards
                .iter()
                .any(|s| s.stealable_len() > usize::from(s.index == local.index));
            if found && more_queued {
                // Bring one more helper.
                park::notify_idle(&inner, usize::MAX);
            }
        }
        let (ran, mut ended) = local.run_batch(inner.task_budget);
        if ran == 0 && local.steal() {
            ended = local.run_batch(inner.task_budget).1;
        }
        if let Some(ended) = ended {
            // The batch began after `now` (the last time read).
            let began = now;
            now = ended;
            local.idle_rounds.set(0);
            local.submit_if_needed();
            if let Some(after_yield) = busy.ran(began, ended) {
                shared.counters.busy_yields.bump();
                now = after_yield;
            }
            continue;
        }
        busy.idle();
        if aborted_at_shutdown && inner.registry.live() == 0 && !local.has_work() {
            // The last task may have ended here: the shards still waiting
            // for that (parked with a backed-off timeout) leave now.
            for s in inner.shards.iter().filter(|s| s.index != local.index) {
                s.ring_eventfd();
            }
            return;
        }
        // `now` is the end of the last batch (or park): only this empty
        // turn has run since, so it stands in for the time of entering.
        now = park(local, inner.is_shutdown(), now);
    }
}

/// Blocks until a CQE arrives or the next timer is due, unless the re-check
/// finds work (steps 1-5 of the protocol in `park.rs`).
/// The time from `entered` to leaving is recorded as an idle gap for the
/// spin policy (see `spin.rs`). Returns when it left.
fn park(local: &LocalShard, shutting_down: bool, entered: Instant) -> Instant {
    let idle = &local.shared().idle;
    idle.store(true, Ordering::Relaxed);
    park_or_spin(local, shutting_down, entered);
    idle.store(false, Ordering::Relaxed);
    // Nothing runs while parked, so queued tasks now came from elsewhere
    // (other shards, or threads outside the runtime); I/O completions
    // only turn into tasks when they are reaped, after this.
    let left = Instant::now();
    local.spin.record(left - entered, local.has_local_work());
    left
}

fn park_or_spin(local: &LocalShard, shutting_down: bool, entered: Instant) {
    let shared = local.shared();
    // Doorbells queued outside a poll (by a timer or a completion that woke
    // a task on another shard) go out now, not after the spin.
    local.submit_if_needed();
    // Spin only when the last sleep ended with work to do (a shard that
    // keeps waking to find nothing, see `idle_rounds`, goes straight to
    // sleep), recent idle gaps say a spin is likely to pay off, and no other
    // awake shard shares this CPU.
    if local.idle_rounds.get() == 0
        && local.spin.should_spin()
        && !shares_cpu_with_awake_shard(local)
        && spin_for_work(local, entered, shutting_down)
    {
        return;
    }
    local.publish_depth();
    // Out of work: let go of finished stolen tasks (see `Registry::reclaim`).
    local.inner.registry.reclaim(local.index);
    local.arm_eventfd();
    shared.sleeping.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if local.has_work() {
        shared.sleeping.store(false, Ordering::SeqCst);
        local.submit_if_needed();
        return;
    }
    let now = Instant::now();
    let mut timeout = local
        .timers
        .borrow_mut()
        .next_deadline()
        .map(|d| d.saturating_duration_since(now));
    let recheck = local.take_declined();
    if recheck {
        // Another shard has one task queued behind a poll that may turn out
        // long: look again when it would qualify for stealing, backing off
        // (up to 64x) while every look comes back empty-handed.
        let rounds = local.idle_rounds.get().min(6);
        let again = local
            .inner
            .steal
            .min_victim_busy
            .max(Duration::from_micros(1))
            .saturating_mul(1u32 << rounds);
        timeout = Some(timeout.map_or(again, |t| t.min(again)));
        local.idle_rounds.set(rounds + 1);
    }
    if local.ops.borrow().has_claims() {
        // Op-table slots are set aside for woken ops that have not come for
        // them. If such an op is dropped, or polled, on another thread
        // meanwhile, the claim goes stale without this shard hearing of
        // it, and the ops queued behind it would wait for whatever next
        // wakes this shard: look again (each loop turn releases stale
        // claims), backing off (up to 128x) while claims stay.
        let rounds = local.claim_rechecks.get().min(7);
        let again = CLAIM_RECHECK.saturating_mul(1 << rounds);
        timeout = Some(timeout.map_or(again, |t| t.min(again)));
        local.claim_rechecks.set(rounds + 1);
    } else {
        local.claim_rechecks.set(0);
    }
    if shutting_down {
        // Tasks are finishing on other shards; look again soon. The shard
        // that sees the last one go rings the others, so this is only a
        // safety net: it backs off (up to 64x) while a task never ends.
        let polls = local.shutdown_polls.get();
        local.shutdown_polls.set(polls.saturating_add(1));
        let again = SHUTDOWN_POLL.saturating_mul(1 << polls.min(6));
        timeout = Some(timeout.map_or(again, |t| t.min(again)));
    }
    if timeout == Some(Duration::ZERO) {
        shared.sleeping.store(false, Ordering::SeqCst);
        local.submit_if_needed();
        return;
    }
    shared.counters.parks.bump();
    // Set only for the sleep that has the re-check timeout, and cleared
    // right after it: a shard still marked after leaving this way (a timer
    // already due above, say) would later sleep without a timeout yet make
    // `notify_idle` believe it will look again by itself, so a single
    // stealable task would wake nobody.
    if recheck {
        shared.rechecking.store(true, Ordering::Relaxed);
    }
    local.submit(true, timeout);
    shared.sleeping.store(false, Ordering::SeqCst);
    shared.rechecking.store(false, Ordering::Relaxed);
}

/// Publishes the CPU this shard is on and says whether another shard that
/// is not asleep is on the same one.
///
/// Two shards the kernel started on one CPU (it happens to a fresh
/// runtime: a new thread goes where its parent left room, and the load
/// balancer leaves a thread that has just run where it is) would spin in
/// turns: each cross-shard hand-off waits for the other's spin to yield,
/// about ten times a hand-off across CPUs. A shard that finds itself
/// sharing parks instead; the hand-off then rings its doorbell, and the
/// kernel places the woken thread on an idle CPU if there is one.
fn shares_cpu_with_awake_shard(local: &LocalShard) -> bool {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling
    // thread's CPU number (from rseq or the vDSO).
    let cpu = unsafe { libc::sched_getcpu() };
    let Ok(cpu) = u32::try_from(cpu) else {
        return false;
    };
    let me = local.shared();
    // Written only when it changes: other shards read it on every park.
    if me.cpu.load(Ordering::Relaxed) != cpu {
        me.cpu.store(cpu, Ordering::Relaxed);
    }
    let shared = local.inner.shards.iter().any(|s| {
        s.index != me.index
            && s.cpu.load(Ordering::Relaxed) == cpu
            && !s.sleeping.load(Ordering::Relaxed)
    });
    if shared {
        me.counters.shared_cpu_parks.bump();
    }
    shared
}

/// Looks for work for up to the spin budget (`park_spin`) from `entered`
/// before the shard blocks, yielding the CPU between rounds. While it spins the shard is not marked
/// sleeping, so wakers send no doorbells: they only queue, and the spin sees
/// the queue. While `shutting_down`, the end of the runtime's last task
/// counts as work (the loop then exits). Returns whether work showed up.
fn spin_for_work(local: &LocalShard, entered: Instant, shutting_down: bool) -> bool {
    let until = entered + local.spin.budget();
    loop {
        // Own queues and completions every turn; other shards' queues only
        // once per round, so a spinning shard does not keep pulling the
        // busy shard's cache lines away from it.
        for _ in 0..64 {
            if local.has_local_work() || local.has_completions() {
                return true;
            }
            std::hint::spin_loop();
        }
        if local.has_work() {
            return true;
        }
        if shutting_down && local.inner.registry.live() == 0 {
            // The runtime's last task ended on another shard, which rang
            // this one's eventfd; the ring shows that only after an enter.
            return true;
        }
        let now = Instant::now();
        if now >= until || local.timer_due() {
            return local.timer_due();
        }
        // Past the first few microseconds, let any thread that is runnable
        // on this CPU go first: a spin that holds the CPU while the shard it
        // waits on (or a load generator, or the blocking pool) sits
        // runnable behind it only delays the work it waits for. With
        // nothing else runnable this returns at once. Two shards that the
        // kernel put on one CPU would otherwise take turns spinning out
        // their whole budget on every round trip. Short gaps (a stream of
        // messages from a shard on another CPU) end before the first yield
        // and do not pay its system call.
        if now - entered >= YIELD_AFTER {
            // SAFETY: sched_yield takes no arguments and has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }
}

/// Times a shard's unbroken stretches of running tasks and yields the CPU
/// once per `after` of them (see `RuntimeBuilder::busy_yield`).
struct BusyClock {
    after: Duration,
    /// When the current busy stretch began (`None` between stretches).
    since: Option<Instant>,
}

impl BusyClock {
    fn new(after: Duration) -> BusyClock {
        BusyClock { after, since: None }
    }

    /// A loop turn ran tasks from about `began` to `ended`; if the stretch
    /// has lasted `after`, yields the CPU and returns the time after the
    /// yield.
    fn ran(&mut self, began: Instant, ended: Instant) -> Option<Instant> {
        if self.after.is_zero() {
            return None;
        }
        let since = *self.since.get_or_insert(began);
        if ended - since < self.after {
            return None;
        }
        // SAFETY: sched_yield takes no arguments and has no preconditions.
        unsafe { libc::sched_yield() };
        let now = Instant::now();
        self.since = Some(now);
        Some(now)
    }

    /// A loop turn found nothing to run: the busy stretch is over.
    fn idle(&mut self) {
        self.since = None;
    }
}

/// How long a spin goes before it starts yielding the CPU between rounds.
const YIELD_AFTER: Duration = Duration::from_micros(3);

const SHUTDOWN_POLL: Duration = Duration::from_micros(20);

/// The first re-check timeout of a shard sleeping with op-table slots set
/// aside for ops that have not come for them.
const CLAIM_RECHECK: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RuntimeBuilder;
    use crate::time::TimerEntry;

    /// A shard that cannot enable its ring shuts the runtime down, and
    /// what was sent to it meanwhile is cancelled rather than stranded:
    /// the tasks' handles resolve and dropping the runtime returns.
    #[test]
    fn a_shard_that_cannot_enable_its_ring_strands_nothing() {
        let rt = RuntimeBuilder::new()
            .shards(2)
            .thread_name("spargio-enable-fails")
            .build()
            .expect("build does not wait for the shards");
        let h = rt.handle();
        let pinned = h.spawn_pinned(crate::ShardId(1), std::future::pending::<()>());
        let stealable = h.spawn_stealable_on(crate::ShardId(1), std::future::pending::<()>());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = (crate::block_on(pinned), crate::block_on(stealable));
            drop(rt);
            let _ = tx.send(outcome);
        });
        let (pinned, stealable) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the tasks sent to the failed shard were stranded");
        assert!(pinned.unwrap_err().is_cancelled());
        assert!(stealable.unwrap_err().is_cancelled());
    }

    /// With every shard unable to enable its ring, a task spawned from
    /// outside the runtime before they gave up (it waits in the global
    /// injector) is cancelled, and dropping the runtime returns.
    #[test]
    fn an_outside_spawn_is_not_stranded_when_every_shard_fails() {
        let rt = RuntimeBuilder::new()
            .shards(1)
            .thread_name("spargio-enable-fails-late")
            .build()
            .expect("build does not wait for the shards");
        let task = rt.handle().spawn(std::future::pending::<()>());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = crate::block_on(task);
            drop(rt);
            let _ = tx.send(outcome);
        });
        let outcome = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the task in the global injector was stranded");
        assert!(outcome.unwrap_err().is_cancelled());
    }

    /// A park that declined a steal but found a timer already due leaves at
    /// once; it must not leave the shard marked as re-checking, or its next
    /// sleep (with no timeout) would swallow `notify_idle`'s wake-up.
    #[test]
    fn early_return_with_a_due_timer_clears_rechecking() {
        let b = RuntimeBuilder::new();
        let inner = Arc::new(Inner::new(&b, 2).expect("shard state"));
        let ring = ring::create(8, 64, false).expect("io_uring works on this machine");
        ring::enable(&ring).expect("enable the ring");
        let local = LocalShard::new(0, inner.clone(), ring);
        // No pre-park spin, so the park goes straight to the timeout logic.
        local.idle_rounds.set(1);
        local.declined.set(true);
        let due = Arc::new(TimerEntry::new(Instant::now(), std::task::Waker::noop()));
        local.timers.borrow_mut().insert(due);

        park_or_spin(&local, false, Instant::now());

        let me = &inner.shards[0];
        assert!(!me.sleeping.load(Ordering::SeqCst));
        assert!(
            !me.rechecking.load(Ordering::Relaxed),
            "a park that never slept left the shard marked as re-checking"
        );

        // The shard's next sleep has no timeout. A single stealable task
        // queued elsewhere must wake it.
        me.sleeping.store(true, Ordering::SeqCst);
        park::notify_idle(&inner, 1);
        assert!(
            !me.sleeping.load(Ordering::SeqCst),
            "notify_idle woke nobody"
        );
        assert_eq!(inner.searching.load(Ordering::SeqCst), 1);

        local.quiesce();
    }
}
