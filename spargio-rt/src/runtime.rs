//! `Runtime`: owns the shard threads; starts them, and stops them on drop.

use std::future::Future;
use std::io;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::block_on::block_on_here;
use crate::builder::RuntimeBuilder;
use crate::handle::RuntimeHandle;
use crate::scheduler::Inner;
use crate::shard::worker::{self, Gate, ShardStart};

/// A running set of shards.
///
/// Dropping it shuts it down: every task still alive is cancelled (dropped
/// on the shard that owns it), timers are cleared, shard threads are joined
/// and the blocking pool waits for its running closures.
///
/// ```
/// use spargio_rt::Runtime;
/// let rt = Runtime::builder().shards(2).build().unwrap();
/// let answer = rt.block_on(async {
///     let h = spargio_rt::RuntimeHandle::current();
///     h.spawn(async { 40 + 2 }).await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct Runtime {
    handle: RuntimeHandle,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Runtime {
    /// A builder with default settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    /// A runtime with default settings (one shard per CPU).
    pub fn new() -> io::Result<Runtime> {
        RuntimeBuilder::new().build()
    }

    pub(crate) fn start(b: RuntimeBuilder) -> io::Result<Runtime> {
        let inner = Arc::new(Inner::new(&b)?);
        let n = b.shards;
        let (ready_tx, ready_rx) = mpsc::channel();
        let go = Arc::new(Gate::default());
        let mut threads = Vec::with_capacity(n);
        let mut first_err = None;
        for index in 0..n {
            let start = ShardStart {
                inner: inner.clone(),
                index,
                ring_entries: b.ring_entries,
                defer_taskrun: b.defer_taskrun,
                cpu: worker::cpu_for(&b.affinity, index),
                ready: ready_tx.clone(),
                go: go.clone(),
            };
            let spawned = thread::Builder::new()
                .name(format!("{}-{index}", b.thread_name))
                .spawn(move || worker::main(start));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    first_err = Some(e);
                    break;
                }
            }
        }
        drop(ready_tx);
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((_, Err(e))) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert_with(|| {
                        io::Error::other("spargio: a shard thread died during start-up")
                    });
                }
            }
        }
        if let Some(e) = first_err {
            go.open(false);
            for t in threads {
                let _ = t.join();
            }
            return Err(e);
        }
        go.open(true);
        Ok(Runtime {
            handle: RuntimeHandle { inner },
            threads,
        })
    }

    /// A cloneable handle for spawning from anywhere.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Runs `fut` to completion on the calling thread, with this runtime as
    /// the current one (so `spawn`, `RuntimeHandle::current` and timers
    /// work inside). The future may be `!Send`; tasks it spawns run on the
    /// shards.
    ///
    /// # Panics
    /// When called on one of the runtime's own shard threads (it would stall
    /// the shard).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        block_on_here(Some(self.handle.clone()), fut)
    }

    /// Shuts down, waiting at most `timeout` for tasks to be dropped and
    /// blocking closures to return; threads still busy after that are left
    /// to finish on their own.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(Instant::now() + timeout));
    }

    /// Shuts down without waiting for anything; like `shutdown_timeout(0)`.
    pub fn shutdown_background(mut self) {
        self.shutdown(Some(Instant::now()));
    }

    fn shutdown(&mut self, deadline: Option<Instant>) {
        let inner = &self.handle.inner;
        inner.begin_shutdown();
        let on_own_shard = crate::shard::local::current_index(inner).is_some();
        let threads = std::mem::take(&mut self.threads);
        if on_own_shard {
            // Dropped from inside one of its own tasks: joining would wait
            // for ourselves. The shards finish on their own.
            return;
        }
        for t in threads {
            match deadline {
                None => {
                    let _ = t.join();
                }
                Some(d) => {
                    while !t.is_finished() && Instant::now() < d {
                        thread::sleep(Duration::from_micros(200));
                    }
                    if t.is_finished() {
                        let _ = t.join();
                    }
                }
            }
        }
        inner.blocking.shutdown(deadline);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown(None);
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.handle.shard_count())
            .finish()
    }
}
