//! `Runtime`: owns the shard threads; starts them, and stops them on drop.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::block_on::block_on_here;
use crate::builder::RuntimeBuilder;
use crate::handle::RuntimeHandle;
use crate::scheduler::Inner;
use crate::shard::ring;
use crate::shard::worker::{self, Gate, ShardStart};
use crate::ThreadAffinity;

/// A running set of shards.
///
/// Dropping it shuts it down: every task still alive is cancelled (dropped
/// on the shard that owns it), timers are cleared, shard threads are joined
/// and the blocking pool waits for its running closures. Blocking closures
/// still queued (not started) are cancelled. Dropped inside one of its own
/// tasks, it cancels the same but waits for nothing: the shards and running
/// closures finish on their own.
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

    /// Starts `n` shards (`n` ≥ 1, resolved by the builder).
    pub(crate) fn start(b: RuntimeBuilder, n: usize) -> io::Result<Runtime> {
        // Here rather than at the first timer off the shards; see
        // `ensure_started`.
        crate::time::fallback::ensure_started()?;
        let inner = Arc::new(Inner::new(&b, n)?);
        inner.blocking.set_runtime(Arc::downgrade(&inner));
        inner.background.set_runtime(Arc::downgrade(&inner));
        // Every ring is made here, disabled, so a setup error is returned
        // from `build` and every shard's ring fd is known (for `MSG_RING`
        // doorbells) before any shard runs. Nothing waits for the threads
        // to come up: each enables its own ring when the gate opens.
        let mut rings = Vec::with_capacity(n);
        for index in 0..n {
            let ring = ring::create(b.ring_entries, b.max_ops_in_flight, b.defer_taskrun)?;
            inner.shards[index].set_doorbell_target(ring::fd(&ring))?;
            rings.push(ring);
        }
        let go = Arc::new(Gate::default());
        let allowed = match b.affinity {
            ThreadAffinity::PerShard => worker::allowed_cpus(),
            ThreadAffinity::None | ThreadAffinity::Cpus(_) => Vec::new(),
        };
        let mut threads = Vec::with_capacity(n);
        let mut failure = None;
        for (index, ring) in rings.into_iter().enumerate() {
            let start = ShardStart {
                inner: inner.clone(),
                index,
                ring,
                go: go.clone(),
            };
            let spawned = thread::Builder::new()
                .name(format!("{}-{index}", b.thread_name))
                .spawn(move || worker::main(start));
            let bound = spawned.and_then(|t| {
                let res = worker::cpu_for(&b.affinity, index, &allowed).map_or(Ok(()), |cpu| {
                    worker::bind_to_cpu(&t, cpu).map_err(|e| worker::bind_error(index, cpu, e))
                });
                threads.push(t);
                res
            });
            if let Err(e) = bound {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            // The threads that did start exit at the gate without touching
            // their rings.
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
    /// When called on a shard thread of any spargio runtime (it would stall
    /// the shard) or on a background-pool thread (it would stall the
    /// futures queued there).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        block_on_here(Some(self.handle.clone()), fut)
    }

    /// Shuts down, waiting at most `timeout` for tasks to be dropped and
    /// blocking closures to return; threads still busy after that are left
    /// to finish on their own.
    /// A timeout past what the clock can express (`Duration::MAX`) waits
    /// as long as dropping the runtime does.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Instant::now().checked_add(timeout));
    }

    /// Shuts down without waiting for anything; like `shutdown_timeout(0)`.
    pub fn shutdown_background(mut self) {
        self.shutdown(Some(Instant::now()));
    }

    /// Shuts down with this runtime entered on the calling thread: queued
    /// jobs and tasks are dropped here, and a destructor of theirs that
    /// spawns (cancelled at once) or asks for the current runtime must
    /// find this one, not panic for want of any.
    fn shutdown(&mut self, deadline: Option<Instant>) {
        let handle = self.handle.clone();
        crate::block_on::with_entered(handle, || self.shutdown_entered(deadline));
    }

    fn shutdown_entered(&mut self, deadline: Option<Instant>) {
        let inner = &self.handle.inner;
        inner.begin_shutdown();
        // Background tasks are dropped at their next poll, on a pool
        // thread, while the shards still run: their in-flight I/O is
        // cancelled on rings that are still there.
        inner.background.abort_all();
        // Blocking jobs not yet started are cancelled now, and any pushed
        // from now on: a pool thread that frees up while the shards are
        // being joined must not start one.
        inner.blocking.close();
        let on_own_shard = crate::shard::local::current_index(inner).is_some();
        let threads = std::mem::take(&mut self.threads);
        if on_own_shard {
            // Dropped from inside one of its own tasks: joining would wait
            // for ourselves. The shards finish on their own. The running
            // blocking jobs are not waited for (one may be waiting for this
            // very shard). The background pool stays open: its jobs were
            // all aborted above (each is dropped at its next turn, on a
            // pool thread), whereas a closed pool would drop a background
            // task woken by the shards' exit on the waking shard's thread.
            return;
        }
        let mut all_joined = true;
        for t in threads {
            all_joined &= crate::thread_join::join_by(t, deadline);
        }
        if all_joined {
            // Alone now: unmapping needs no other CPU's TLB flushed (see
            // `Inner::retire_ring`). Otherwise they go with the state.
            inner.drop_retired_rings();
        }
        inner.background.shutdown(deadline);
        inner.blocking.shutdown(deadline);
        // Tasks dropped on the pools' threads since the shards stopped
        // handed their slots back to shards that are gone: their wakers
        // would keep the runtime's state alive for ever.
        inner.registry.reclaim_all();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShardId;

    #[test]
    fn the_runtime_state_is_freed_after_a_task_ends_off_its_spawning_shard() {
        let rt = Runtime::builder().shards(2).build().unwrap();
        let h = rt.handle();
        let state = Arc::downgrade(&h.inner);
        // Shard 0 always has work, so it never parks (where it would take
        // back the slots other shards freed in its partition).
        let spinner = h.spawn_pinned(ShardId(0), async {
            loop {
                crate::yield_now().await;
            }
        });
        // Spawned from shard 0 (its registry partition), finished on
        // shard 1: the slot is handed back to shard 0 with the task's
        // waker (and through it the runtime's state) still in it.
        let spawned_there = h.spawn_pinned(ShardId(0), async {
            RuntimeHandle::current()
                .spawn_pinned(ShardId(1), async {})
                .await
                .unwrap();
        });
        rt.block_on(spawned_there).unwrap();
        drop(rt);
        drop((spinner, h));
        assert!(
            state.upgrade().is_none(),
            "the runtime's state outlived it (a finished task's slot kept it)"
        );
    }
}
