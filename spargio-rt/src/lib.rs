//! # spargio-rt
//!
//! A work-stealing async runtime on io_uring. It runs N *shards*: each is a
//! thread with its own io_uring ring. **I/O is ring-affine, CPU work is
//! stealable**:
//!
//! - *pinned* tasks ([`spawn_local`], [`RuntimeHandle::spawn_pinned`]) stay
//!   on one shard for life and may be `!Send`;
//! - *stealable* tasks ([`spawn`]) start on the least loaded shard and are
//!   stolen by idle shards, even after they first ran.
//!
//! Shards wake each other with `IORING_OP_MSG_RING` doorbells and park in
//! `io_uring_enter` with their nearest timer as the timeout, so an idle
//! runtime uses no CPU.
//!
//! ```
//! use std::time::Duration;
//!
//! #[spargio_rt::main(shards = 2)]
//! async fn main(handle: spargio_rt::RuntimeHandle) {
//!     let jobs: Vec<_> = (0..8u64)
//!         .map(|i| handle.spawn(async move { (0..1000u64).map(|x| x * i).sum::<u64>() }))
//!         .collect();
//!     let mut total = 0;
//!     for j in jobs {
//!         total += j.await.unwrap();
//!     }
//!     spargio_rt::time::sleep(Duration::from_micros(100)).await;
//!     assert_eq!(total, 28 * 499_500);
//! }
//! ```
//!
//! Channels: spargio-rt does not ship its own. Any runtime-agnostic channel
//! works on it; we use and recommend [`async-channel`](https://docs.rs/async-channel)
//! (bounded and unbounded MPMC) and `futures-channel`'s `oneshot`.
//! `tokio::sync` needs no tokio runtime either; its single-consumer `mpsc`
//! wakes a task on another shard more cheaply (see the book's Channels
//! section).
//! [`boundary`] wraps them into a request/reply channel for services that
//! run tokio beside spargio.
#![warn(missing_docs)]

mod block_on;
pub mod boundary;
mod builder;
mod deadline_wait;
mod driver;
mod explained;
pub mod fs;
mod handle;
pub mod io;
pub mod net;
mod placement;
mod pool;
pub mod process;
mod queue;
mod runtime;
mod scheduler;
mod shard;
pub mod signal;
mod stats;
pub mod sync;
mod task;
mod thread_join;
pub mod time;
pub mod uring;
mod warn;

use std::future::Future;

pub use builder::{RuntimeBuilder, StealPolicy, ThreadAffinity};
pub use handle::RuntimeHandle;
pub use placement::{ShardId, TaskPlacement};
pub use runtime::Runtime;
pub use stats::{RuntimeStats, ShardStats};
pub use task::yield_now::{yield_now, YieldNow};
pub use task::{JoinError, JoinHandle};

#[cfg(feature = "macros")]
pub use spargio_rt_macros::{main, test};

/// Spawns a stealable task on the current runtime.
///
/// # Panics
/// Outside a runtime (see [`RuntimeHandle::current`]).
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    RuntimeHandle::current().spawn(fut)
}

/// Spawns a `!Send` task on the current shard.
///
/// # Panics
/// Off a shard thread.
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    RuntimeHandle::current().spawn_local(fut)
}

/// Runs a blocking closure on the current runtime's blocking pool.
///
/// # Panics
/// Outside a runtime.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    RuntimeHandle::current().spawn_blocking(f)
}

/// Runs a CPU-heavy future on the current runtime's background pool; see
/// [`RuntimeHandle::spawn_background`].
///
/// # Panics
/// Outside a runtime.
pub fn spawn_background<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    RuntimeHandle::current().spawn_background(fut)
}

/// Drives `fut` to completion on the calling thread, outside any runtime,
/// parking the thread between wake-ups (like `futures::executor::block_on`).
///
/// For plain threads that need to wait on a [`JoinHandle`], a
/// [`boundary`] call or a channel. Timers work (a shared timer thread serves
/// them); `RuntimeHandle::current()` is whatever this thread already had.
///
/// ```
/// let rt = spargio_rt::Runtime::builder().shards(1).build().unwrap();
/// let task = rt.handle().spawn(async { 2 + 2 });
/// assert_eq!(spargio_rt::block_on(task).unwrap(), 4);
/// ```
///
/// # Panics
/// On a shard thread (it would stall the shard) or a background-pool
/// thread (it would stall the futures queued there). A
/// [`spawn_blocking`] closure may call it.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    block_on::block_on_here(None, fut)
}

/// Starts a runtime with default settings, runs `entry`'s future on shard 0
/// (it may be `!Send`), and shuts the runtime down when it finishes.
///
/// A panic in the future is resumed on the caller; an error means the
/// runtime could not start (io_uring unavailable, say), or shut down
/// before the future finished (a shard's event loop failed: the error
/// says so).
///
/// # Panics
/// On a shard thread (a task of another runtime, or of this one): waiting
/// for a whole runtime there would stall that shard. Nothing is started.
///
/// ```
/// let n = spargio_rt::run(|handle| async move { handle.shard_count() }).unwrap();
/// assert!(n >= 1);
/// ```
pub fn run<F, Fut, T>(entry: F) -> std::io::Result<T>
where
    F: FnOnce(RuntimeHandle) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    run_with(Runtime::builder(), entry)
}

/// [`run`] with a configured builder.
///
/// ```
/// let rt = spargio_rt::Runtime::builder().shards(3);
/// let n = spargio_rt::run_with(rt, |handle| async move { handle.shard_count() }).unwrap();
/// assert_eq!(n, 3);
/// ```
pub fn run_with<F, Fut, T>(builder: RuntimeBuilder, entry: F) -> std::io::Result<T>
where
    F: FnOnce(RuntimeHandle) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    assert!(
        shard::local::current().is_none(),
        "spargio: run called on a shard thread (a #[spargio_rt::main] or \
         #[spargio_rt::test] function called from a task?); it would stall the \
         shard. Await the function's body instead, or run it on spawn_blocking."
    );
    let rt = builder.build()?;
    let handle = rt.handle();
    let task = rt
        .handle()
        .spawn_local_on(ShardId(0), move || entry(handle));
    let out = rt.block_on(task);
    drop(rt);
    match out {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(std::io::Error::other(
            "spargio: the runtime shut down before the entry future finished \
             (a shard's event loop failed; see its message on stderr)",
        )),
    }
}
