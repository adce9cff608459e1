//! The future every spawned task actually runs: it catches panics, and
//! unregisters the task when it is dropped.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ctl::Slot;
use super::join::JoinError;

/// Wraps a user future. Its output is an [`Outcome`]: the `Result` a
/// `JoinHandle` yields.
pub(crate) struct Guard<F> {
    /// `None` once the future finished, panicked or was aborted.
    fut: Option<F>,
    /// The task's registry slot, released when the guard is dropped.
    slot: Slot,
}

impl<F> Guard<F> {
    pub(crate) fn new(fut: F, slot: Slot) -> Self {
        Guard {
            fut: Some(fut),
            slot,
        }
    }

    /// Drops the inner future now; a panic in its destructor is swallowed
    /// (the task is already ending) rather than taking the shard down.
    fn drop_future(&mut self) {
        drop_quietly(&mut self.fut);
    }
}

/// Empties `slot`, swallowing a panic of what it held's destructor (the
/// payload of that panic is leaked: its own drop could panic too).
fn drop_quietly<T>(slot: &mut Option<T>) {
    if slot.is_some() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| *slot = None)) {
            std::mem::forget(payload);
        }
    }
}

/// A task's result as the task hands it over: dropped where nobody takes
/// it (the `JoinHandle` was dropped before the task ended, so the task
/// itself drops it when it finishes), its destructor's panic is swallowed.
/// Left to unwind there, it would abort the process: the task's
/// bookkeeping drops the output with panics turned into aborts.
pub(crate) struct Outcome<T>(Option<Result<T, JoinError>>);

impl<T> Outcome<T> {
    /// The result, for the `JoinHandle` that awaits it.
    pub(crate) fn take(mut self) -> Result<T, JoinError> {
        self.0.take().expect("an outcome is taken once")
    }
}

impl<T> Drop for Outcome<T> {
    fn drop(&mut self) {
        drop_quietly(&mut self.0);
    }
}

impl<F: Future> Future for Guard<F> {
    type Output = Outcome<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_result(cx).map(|r| Outcome(Some(r)))
    }
}

impl<F: Future> Guard<F> {
    fn poll_result(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<F::Output, JoinError>> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of the
        // `Option` (only dropped in place by assigning `None`), and `Guard`
        // has no `Unpin` impl that would let it move while pinned. The other
        // fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(Err(JoinError::cancelled()));
        };
        // SAFETY: see above; `fut` stays where it is until dropped in place.
        let fut = unsafe { Pin::new_unchecked(fut) };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                this.drop_future();
                Poll::Ready(Ok(out))
            }
            Err(payload) => {
                crate::shard::local::note_panic();
                this.drop_future();
                Poll::Ready(Err(JoinError::panic(payload)))
            }
        }
    }
}

impl<F> Drop for Guard<F> {
    fn drop(&mut self) {
        self.drop_future();
        self.slot.release();
    }
}
