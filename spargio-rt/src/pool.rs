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
    /// Nice value each thread sets for itself when it starts (0: leave it).
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
}

std::thread_local! {
    /// The pool (its `PoolShared` address) whose thread this is; 0 on
    /// other threads.
    static CURRENT_POOL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Whether this thread belongs to a pool that polls futures.
    static POLLS_FUTURES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    pub(crate) fn new(config: PoolConfig) -> Self {
        ThreadPool {
            shared: Arc::new(PoolShared {
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
        st.queue.push_back(task);
        self.shared.pending_runs.fetch_add(1, Ordering::Relaxed);
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
            if let Err(e) = self.start_thread(id) {
                eprintln!(
                    "spargio: could not start a {} thread: {e}",
                    self.shared.config.name
                );
                let mut st = self.shared.lock();
                st.threads -= 1;
                // A shutdown may be waiting for the count to fall.
                self.shared.exited.notify_all();
                // With no thread at all, nothing would ever take the queue
                // (until a later push started one): cancel what waits, so
                // its `JoinHandle`s report it instead of hanging. Threads
                // that are busy will come back to the queue by themselves.
                if st.threads == 0 {
                    self.cancel_queued(st);
                }
            }
        }
    }

    /// Starts pool thread number `id`. (In unit tests, a pool whose name
    /// ends in `-spawn-fails` fails here, to exercise that path.)
    fn start_thread(&self, id: usize) -> std::io::Result<()> {
        #[cfg(test)]
        if self.shared.config.name.ends_with("-spawn-fails") {
            return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
        }
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(format!("{}-{id}", self.shared.config.name))
            .spawn(move || shared.run())
            .map(drop)
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
        self.cancel_queued(st);
        self.shared.work.notify_all();
    }

    /// Drops every queued job (their `JoinHandle`s report cancellation),
    /// after letting go of the lock `st`: a job's drop may push to this
    /// pool.
    fn cancel_queued(&self, mut st: std::sync::MutexGuard<'_, State>) {
        let queued = std::mem::take(&mut st.queue);
        drop(st);
        self.shared
            .pending_runs
            .fetch_sub(queued.len(), Ordering::Relaxed);
        drop(queued);
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

    fn run(&self) {
        lower_priority(self.config.nice);
        CURRENT_POOL.with(|c| c.set(self as *const PoolShared as usize));
        POLLS_FUTURES.with(|p| p.set(self.config.runs_futures));
        let mut st = self.lock();
        loop {
            if let Some(task) = st.queue.pop_front() {
                drop(st);
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
                self.pending_runs.fetch_sub(1, Ordering::Relaxed);
                st = self.lock();
                continue;
            }
            if st.shutdown {
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

/// Raises the calling thread's nice value to `nice` (a lower CPU priority);
/// nothing for 0. Lowering one's own priority needs no privilege; should it
/// fail anyway, the thread runs at its old priority.
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: `setpriority` only reads its arguments. On Linux the nice
    // value is per thread and `who == 0` names the calling thread, so this
    // changes no other thread of the process.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc != 0 {
        eprintln!(
            "spargio: could not lower a pool thread's priority to nice {nice}: {}",
            std::io::Error::last_os_error()
        );
    }
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
