//! The runtime's thread pools outside the shards, both run by [`ThreadPool`]:
//!
//! - the **blocking pool**, for closures that would stall a shard (blocking
//!   syscalls, libraries without async APIs), many threads;
//! - the **background pool**, for CPU-heavy futures
//!   (`RuntimeHandle::spawn_background`): as many threads as shards, at a
//!   lower CPU priority (a higher nice value), so the kernel runs a shard
//!   that has I/O to handle before a long computation.
//!
//! Threads are started on demand up to the pool's limit and exit after
//! sitting idle for the keep-alive time. Tasks beyond the limit wait in a
//! FIFO queue. Each task runs with the runtime entered (as in
//! `Runtime::block_on`), so it can spawn, use timers and do I/O, which it
//! submits to a shard's ring. On shutdown, queued tasks that never started
//! are cancelled; running ones are waited for up to the shutdown deadline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::scheduler::Inner;
use crate::task::ctl::Registry;
use crate::task::Runnable;

/// How a [`ThreadPool`]'s threads are named, counted and prioritised.
pub(crate) struct PoolConfig {
    /// Thread name prefix; threads are `{name}-{n}`.
    pub(crate) name: String,
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    /// How much higher than the building thread's nice value each thread
    /// runs (0: the same).
    pub(crate) nice: i32,
    /// Whether the pool polls futures (the background pool), which a
    /// `block_on` on its thread would stall; the blocking pool runs
    /// closures, which may block.
    pub(crate) runs_futures: bool,
}

pub(crate) struct ThreadPool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    /// The pool's live tasks.
    registry: Registry,
    state: Mutex<State>,
    work: Condvar,
    exited: Condvar,
    config: PoolConfig,
    /// The runtime each task runs in (set once the runtime is built; weak,
    /// so idle threads do not keep it alive).
    runtime: OnceLock<Weak<Inner>>,
    /// Task runs queued or running right now (a hint for callers deciding
    /// whether to use the pool; read without the lock).
    pending_runs: AtomicUsize,
    /// The nice value the pool's threads run at: the building thread's
    /// plus `config.nice`, at most 19.
    target_nice: i32,
}

std::thread_local! {
    /// The pool (its `PoolShared` address) whose thread this is; 0 on
    /// other threads.
    static CURRENT_POOL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Whether this thread belongs to a pool that polls futures.
    static POLLS_FUTURES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The task this pool thread is running (its metadata's address); 0
    /// between tasks.
    static RUNNING_TASK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether this thread is a thread of a pool that polls futures (the
/// background pool): blocking it stalls the futures queued there.
pub(crate) fn on_future_pool_thread() -> bool {
    POLLS_FUTURES.with(|p| p.get())
}

#[derive(Default)]
struct State {
    queue: VecDeque<Runnable>,
    threads: usize,
    idle: usize,
    shutdown: bool,
    spawned: usize,
}

impl ThreadPool {
    /// A pool whose threads run `config.nice` above the calling thread's
    /// nice value (the runtime's builder: normally the shards' own).
    pub(crate) fn new(config: PoolConfig) -> Self {
        let base = thread_nice().unwrap_or(0);
        let target_nice = base.saturating_add(config.nice.max(0)).min(MAX_NICE);
        ThreadPool {
            shared: Arc::new(PoolShared {
                target_nice,
                registry: Registry::for_pool(),
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                exited: Condvar::new(),
                config,
                runtime: OnceLock::new(),
                pending_runs: AtomicUsize::new(0),
            }),
        }
    }

    /// Names the runtime the pool's tasks run in.
    pub(crate) fn set_runtime(&self, inner: Weak<Inner>) {
        let _ = self.shared.runtime.set(inner);
    }

    /// A pool's live tasks are tracked apart from shard tasks: shards do not
    /// wait for them at shutdown.
    pub(crate) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    pub(crate) fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Whether no task is queued or running (a hint, as [`has_room`](Self::has_room)).
    pub(crate) fn is_idle(&self) -> bool {
        self.shared.pending_runs.load(Ordering::Relaxed) == 0
    }

    /// Whether a task pushed now would run at once: fewer runs are queued
    /// or running than the pool has threads (started or not). A hint: it
    /// reads one counter without the lock.
    pub(crate) fn has_room(&self) -> bool {
        self.shared.pending_runs.load(Ordering::Relaxed) < self.shared.config.max_threads
    }

    pub(crate) fn push(&self, task: Runnable) {
        let mut st = self.shared.lock();
        if st.shutdown {
            drop(st);
            drop(task); // cancels it; its JoinHandle reports cancellation
            return;
        }
        // A task woken during its own run on one of this pool's threads
        // (a yield, or I/O that completed meanwhile): that thread takes it
        // again as soon as the poll returns, so it needs no other thread.
        let self_wake = CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(&self.shared) as usize
            && RUNNING_TASK.with(|r| r.get()) == task_id(&task);
        st.queue.push_back(task);
        self.shared.pending_runs.fetch_add(1, Ordering::Relaxed);
        if self_wake {
            return;
        }
        // Each queued task needs an idle thread of its own: a thread that
        // was notified stays counted idle until it takes the lock again,
        // so a second push before then must not count it a second time.
        if st.queue.len() <= st.idle {
            drop(st);
            self.shared.work.notify_one();
            return;
        }
        if st.idle > 0 {
            self.shared.work.notify_one();
        }
        if st.threads < self.shared.config.max_threads {
            st.threads += 1;
            st.spawned += 1;
            let id = st.spawned;
            drop(st);
            self.shared.start_for(id);
        }
    }

    /// Asks every live task of the pool to stop (each is dropped at its
    /// next poll, on a pool thread). Returns how many were asked.
    pub(crate) fn abort_all(&self) -> usize {
        self.shared.registry.abort_all()
    }

    /// Closes the pool without waiting for anything: cancels queued jobs
    /// (dropped here, their `JoinHandle`s report cancellation), cancels
    /// jobs pushed from now on, and tells idle threads to exit. Running
    /// jobs go on; their threads exit when they return.
    pub(crate) fn close(&self) {
        let mut st = self.shared.lock();
        st.shutdown = true;
        self.shared.cancel_queued(st);
        self.shared.work.notify_all();
    }

    /// [`close`](Self::close)s the pool and waits until `deadline` for
    /// running jobs. Returns whether every thread exited.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        self.close();
        // Shut down from one of this pool's own threads (a blocking
        // closure dropped the runtime): that thread cannot exit while it
        // waits here, so wait for the others only.
        let own = CURRENT_POOL.with(|c| c.get()) == Arc::as_ptr(&self.shared) as usize;
        let floor = usize::from(own);
        let st = self.shared.lock();
        crate::deadline_wait::wait_until(&self.shared.exited, st, deadline, |st| {
            st.threads <= floor
        })
        .1
    }
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts thread number `id`, already counted in `threads`. A thread
    /// inherits its creator's nice value and could not raise it back: when
    /// the calling thread runs at a lower priority than this pool's (a
    /// background future that needs a blocking thread), a shard starts it
    /// instead.
    fn start_for(self: &Arc<Self>, id: usize) {
        let start = StartThread {
            shared: self.clone(),
            id: Some(id),
        };
        if thread_nice().is_some_and(|now| now > self.target_nice) {
            if let Some(inner) = self.runtime.get().and_then(Weak::upgrade) {
                // Dropped unrun (the runtime is shutting down), it starts
                // the thread where it is dropped.
                drop(inner.spawn(crate::TaskPlacement::Stealable, async move {
                    start.now();
                }));
                return;
            }
        }
        start.now();
    }

    /// Starts thread number `id`, already counted in `threads`; on failure
    /// takes it off the count again. (In unit tests, a pool whose name
    /// ends in `-spawn-fails` fails here, to exercise that path.)
    fn start_counted(self: &Arc<Self>, id: usize) {
        let started = if cfg!(test) && self.config.name.ends_with("-spawn-fails") {
            Err(std::io::Error::from_raw_os_error(libc::EAGAIN))
        } else {
            let shared = self.clone();
            std::thread::Builder::new()
                .name(format!("{}-{id}", self.config.name))
                .spawn(move || shared.run())
                .map(drop)
        };
        let Err(e) = started else {
            return;
        };
        crate::warn::warn_stderr!(
            "spargio: could not start a {} thread: {e}",
            self.config.name
        );
        let mut st = self.lock();
        st.threads -= 1;
        // A shutdown may be waiting for the count to fall.
        self.exited.notify_all();
        // With no thread at all, nothing would ever take the queue (until a
        // later push started one): cancel what waits, so its `JoinHandle`s
        // report it instead of hanging. Threads that are busy will come
        // back to the queue by themselves.
        if st.threads == 0 {
            self.cancel_queued(st);
        }
    }

    /// Drops every queued job (their `JoinHandle`s report cancellation),
    /// after letting go of the lock `st`: a job's drop may push to this
    /// pool.
    fn cancel_queued(&self, mut st: MutexGuard<'_, State>) {
        let queued = std::mem::take(&mut st.queue);
        drop(st);
        self.pending_runs.fetch_sub(queued.len(), Ordering::Relaxed);
        drop(queued);
    }

    fn run(&self) {
        // A thread started from one at a lower priority (a background
        // future that needed a blocking thread) inherits it, and cannot
        // raise it back without privilege: it serves the jobs queued now
        // and exits, rather than serving everyone's at that priority for
        // its keep-alive time.
        let inherited_lower = !settle_priority(self.target_nice);
        CURRENT_POOL.with(|c| c.set(self as *const PoolShared as usize));
        POLLS_FUTURES.with(|p| p.set(self.config.runs_futures));
        let mut st = self.lock();
        loop {
            if let Some(task) = st.queue.pop_front() {
                drop(st);
                RUNNING_TASK.with(|r| r.set(task_id(&task)));
                match self.runtime.get().and_then(Weak::upgrade) {
                    Some(inner) => {
                        crate::block_on::with_entered(crate::RuntimeHandle { inner }, || {
                            crate::task::run(task, &self.registry)
                        });
                    }
                    None => {
                        crate::task::run(task, &self.registry);
                    }
                }
                RUNNING_TASK.with(|r| r.set(0));
                self.pending_runs.fetch_sub(1, Ordering::Relaxed);
                st = self.lock();
                continue;
            }
            if st.shutdown || inherited_lower {
                break;
            }
            st.idle += 1;
            let (guard, waited) = self
                .work
                .wait_timeout(st, self.config.keep_alive)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.idle -= 1;
            if waited.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
        drop(st);
        self.exited.notify_all();
    }
}

/// A counted pool thread to start, once: by [`now`](Self::now), or when
/// dropped without that (a start handed to a shard that never ran).
struct StartThread {
    shared: Arc<PoolShared>,
    id: Option<usize>,
}

impl StartThread {
    /// Starts the thread here (what the drop does).
    fn now(self) {
        drop(self);
    }
}

impl Drop for StartThread {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.shared.start_counted(id);
        }
    }
}

/// A task's identity while it exists: the address of its metadata.
fn task_id(task: &Runnable) -> usize {
    task.metadata() as *const crate::task::TaskMeta as usize
}

/// The highest nice value (the lowest priority).
const MAX_NICE: i32 = 19;

/// The calling thread's nice value (on Linux each thread has its own).
fn thread_nice() -> Option<i32> {
    // SAFETY: `errno` is this thread's; `getpriority` only reads its
    // arguments, and `who == 0` names the calling thread. It can return -1
    // as a value, so errno is cleared first to tell that from a failure.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        (nice != -1 || *libc::__errno_location() == 0).then_some(nice)
    }
}

/// Moves the calling thread to nice value `target` if that lowers its
/// priority (which needs no privilege). Returns whether the thread now
/// runs at `target` or above it in priority; `false` when it inherited a
/// higher nice value than `target`, which only a privileged thread could
/// undo.
fn settle_priority(target: i32) -> bool {
    let Some(now) = thread_nice() else {
        return true;
    };
    if now >= target {
        return now == target;
    }
    // SAFETY: as in `thread_nice`; this changes no other thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) };
    if rc != 0 {
        crate::warn::warn_stderr!(
            "spargio: could not lower a pool thread's priority to nice {target}: {}",
            std::io::Error::last_os_error()
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::guard::tests::DropFlag;
    use crate::task::{Home, TaskMeta};
    use std::sync::atomic::AtomicBool;

    /// A job whose every thread fails to start is cancelled at once
    /// instead of waiting in a queue that no thread will ever take.
    #[test]
    fn a_job_no_thread_can_take_is_cancelled() {
        let pool = ThreadPool::new(PoolConfig {
            name: "spargio-test-spawn-fails".into(),
            max_threads: 2,
            keep_alive: Duration::from_secs(1),
            nice: 0,
            runs_futures: false,
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(Home::Blocking, 0))
            .spawn(
                move |_| async move {
                    let _flag = flag;
                },
                |_| {},
            );
        pool.push(runnable);
        assert!(dropped.load(Ordering::SeqCst), "the job is still queued");
        assert_eq!(pool.threads(), 0);
        assert!(pool.is_idle());
        // Its task reports the cancellation.
        assert!(poll_until_ready(task.fallible()).is_none());
    }

    /// Polls `fut` on this thread until it is ready.
    fn poll_until_ready<F: std::future::Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    }
}
