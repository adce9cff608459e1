//! Timers: [`sleep`], [`timeout`], [`interval`].
//!
//! Each shard keeps its timers in a heap; the nearest deadline becomes the
//! timeout of the shard's blocking `io_uring_enter`, so waiting costs no SQE
//! and resolution is the kernel's high-resolution timer (microseconds, where
//! tokio rounds to milliseconds). A timer never fires before its deadline.
//! Futures polled off the runtime's shards (inside `Runtime::block_on`, on a
//! tokio thread) use one shared fallback timer thread instead. That thread
//! starts when the first such timer is polled; if the process cannot start
//! a thread then (`RLIMIT_NPROC` or a cgroup's `pids.max` reached), that
//! poll panics with `spargio: could not start the fallback timer thread`,
//! as tokio's `spawn_blocking` does when it cannot start a thread, and a
//! later poll tries again.

mod entry;
pub(crate) mod fallback;
pub(crate) mod heap;
mod interval;
mod sleep;
pub(crate) use sleep::{far_add, FAR};
mod timeout;

use std::sync::Arc;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior, DELAY_TOLERANCE};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};

pub(crate) use entry::TimerEntry;

/// Hands a new timer to the current shard's heap, or to the fallback
/// thread; returns the id of the heap that took it.
fn register(entry: Arc<TimerEntry>) -> u64 {
    match crate::shard::local::register_timer(entry) {
        Ok(heap) => heap,
        Err(entry) => {
            fallback::register(entry);
            crate::shard::local::FALLBACK_TIMER_HEAP
        }
    }
}

/// The id of the heap a timer registered now, from this thread, would go
/// to: the current shard's, or the fallback thread's.
fn current_heap() -> u64 {
    crate::shard::local::current_timer_heap()
}
