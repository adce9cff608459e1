//! `yield_now`: give the shard back for one turn of its loop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Lets the current task stop for one turn of its shard's loop, so the
/// tasks that are ready on that shard — including the ones whose I/O has
/// completed meanwhile — run before it resumes.
///
/// A task that computes for long stretches without awaiting anything keeps
/// its shard from everything else, in particular from the connections
/// pinned to it. A `yield_now().await` every few hundred microseconds of
/// work bounds that wait.
///
/// It wakes its own task and returns `Pending` once. The shard holds a
/// task that woke itself during its poll until it has reaped its
/// completion queue, so the I/O that finished while the task ran gets its
/// turn first. Any other cooperative yield built the same way (a
/// runtime-agnostic crate's `yield_now`) behaves the same on spargio-rt.
///
/// ```
/// # spargio_rt::run(|_| async {
/// let mut sum = 0u64;
/// for chunk in 0..8u64 {
///     sum += (0..10_000).map(|i| i * chunk).sum::<u64>();
///     spargio_rt::yield_now().await;
/// }
/// assert!(sum > 0);
/// # }).unwrap();
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`]: pending once, then ready.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
