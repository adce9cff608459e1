//! The blocking pool: a bounded set of reusable threads for closures that
//! would stall a shard (blocking syscalls, CPU work that must not share a
//! shard, libraries without async APIs).
//!
//! Threads are started on demand up to the builder's limit and exit after
//! sitting idle for the keep-alive time. Jobs beyond the limit wait in a FIFO
//! queue. On shutdown, queued jobs that never started are cancelled; running
//! ones are waited for up to the shutdown deadline.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::task::ctl::Registry;
use crate::task::Runnable;

pub(crate) struct BlockingPool {
    shared: Arc<PoolShared>,
    registry: Arc<Registry>,
}

struct PoolShared {
    state: Mutex<State>,
    work: Condvar,
    exited: Condvar,
    name: String,
    max_threads: usize,
    keep_alive: Duration,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Runnable>,
    threads: usize,
    idle: usize,
    shutdown: bool,
    spawned: usize,
}

impl BlockingPool {
    pub(crate) fn new(name: String, max_threads: usize, keep_alive: Duration) -> Self {
        BlockingPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                exited: Condvar::new(),
                name,
                max_threads,
                keep_alive,
            }),
            registry: Arc::new(Registry::new(1)),
        }
    }

    /// Live blocking tasks are tracked apart from shard tasks: shards do not
    /// wait for them at shutdown.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    pub(crate) fn push(&self, task: Runnable) {
        let mut st = self.shared.lock();
        if st.shutdown {
            drop(st);
            drop(task); // cancels it; its JoinHandle reports cancellation
            return;
        }
        st.queue.push_back(task);
        if st.idle > 0 {
            drop(st);
            self.shared.work.notify_one();
            return;
        }
        if st.threads < self.shared.max_threads {
            st.threads += 1;
            st.spawned += 1;
            let id = st.spawned;
            drop(st);
            let shared = self.shared.clone();
            let started = std::thread::Builder::new()
                .name(format!("{}-{id}", self.shared.name))
                .spawn(move || shared.run());
            if let Err(e) = started {
                self.shared.lock().threads -= 1;
                eprintln!("spargio: could not start a blocking-pool thread: {e}");
            }
        }
    }

    /// Cancels queued jobs and waits until `deadline` for running ones.
    /// Returns whether every thread exited.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.shared.lock();
        st.shutdown = true;
        let queued = std::mem::take(&mut st.queue);
        drop(st);
        drop(queued);
        self.shared.work.notify_all();
        let st = self.shared.lock();
        crate::deadline_wait::wait_until(&self.shared.exited, st, deadline, |st| st.threads == 0).1
    }
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            if let Some(task) = st.queue.pop_front() {
                drop(st);
                task.run();
                st = self.lock();
                continue;
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            let (guard, waited) = self
                .work
                .wait_timeout(st, self.keep_alive)
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
