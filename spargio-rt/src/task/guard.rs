//! The future every spawned task actually runs: it catches panics, and
//! unregisters the task when it is dropped.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ctl::Slot;
use super::join::{JoinError, MetaRef};
use super::TaskMeta;

/// Wraps a user future. Its output is an [`Outcome`]: the `Result` a
/// `JoinHandle` yields.
pub(crate) struct Guard<F> {
    /// `None` once the future finished, panicked or was aborted.
    fut: Option<F>,
    /// The task's registry slot, released when the guard is dropped.
    slot: Slot,
    /// The metadata of the task this guard is the future of (set when the
    /// task is built), whose abort flag each poll checks.
    meta: Option<MetaRef>,
}

impl<F> Guard<F> {
    pub(crate) fn new(fut: F, slot: Slot) -> Self {
        Guard {
            fut: Some(fut),
            slot,
            meta: None,
        }
    }

    /// This guard, as the future of the task whose metadata is `meta`
    /// (called by the task's builder with the task's own metadata).
    ///
    /// The runner checks the abort flag before it runs a task, but an
    /// abort can land between that check and the poll: its wake-up finds
    /// the task still scheduled and does nothing, and the poll would go on
    /// and leave the task waiting for something else (a long sleep) with
    /// nobody to drop it. The poll checks the flag again once the task is
    /// marked running, when a later abort's wake-up schedules it anew.
    pub(crate) fn of_task(mut self, meta: &TaskMeta) -> Self {
        self.meta = Some(MetaRef::new(meta));
        self
    }

    /// Whether the task was aborted, alone or with every task of its
    /// registry (shutdown).
    fn aborted(&self) -> bool {
        let alone = self.meta.as_ref().is_some_and(|m| {
            // SAFETY: the guard is the future of the task `m` points into
            // (`of_task`), so the task's allocation, which holds both,
            // exists while the guard does.
            unsafe { m.get() }.is_aborted()
        });
        alone || self.slot.aborting()
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
        if this.aborted() {
            this.drop_future();
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;
    use crate::task::ctl::Registry;
    use crate::task::Home;

    /// Sets its flag when dropped (also for the pool's tests).
    pub(crate) struct DropFlag(pub(crate) Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A task of `registry` around `fut`, built as the scheduler builds
    /// them, with a schedule function that drops what it is given.
    fn task_in<F: Future + Send + 'static>(
        registry: &Registry,
        fut: F,
    ) -> (
        async_task::Runnable<TaskMeta>,
        async_task::Task<Outcome<F::Output>, TaskMeta>,
    )
    where
        F::Output: Send,
    {
        registry.insert(0, |slot| {
            let guard = Guard::new(fut, slot);
            let (runnable, task) = async_task::Builder::new()
                .metadata(TaskMeta::new(Home::Stealable, 0))
                .spawn(
                    move |meta: &TaskMeta| guard.of_task(meta),
                    |r: async_task::Runnable<TaskMeta>| drop(r),
                );
            let waker = runnable.waker();
            ((runnable, task), waker)
        })
    }

    #[test]
    fn an_abort_that_lands_after_the_runners_check_is_seen_by_the_poll() {
        let registry = Registry::for_pool();
        let dropped = Arc::new(AtomicBool::new(false));
        let polled = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let saw_poll = polled.clone();
        let fut = async move {
            let _flag = flag;
            saw_poll.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        };
        let (runnable, task) = task_in(&registry, fut);
        // The runner looked at the flag (not aborted) and is about to run
        // the task when the abort lands; its wake-up finds the task
        // scheduled and does nothing.
        runnable.metadata().abort();
        runnable.waker().wake();
        runnable.run();
        assert!(
            !polled.load(Ordering::SeqCst),
            "an aborted future was polled"
        );
        assert!(
            dropped.load(Ordering::SeqCst),
            "the aborted future was kept"
        );
        let outcome = task.now_or_never().expect("the task has ended");
        assert!(outcome.take().unwrap_err().is_cancelled());
    }

    #[test]
    fn a_shutdown_that_lands_after_the_runners_check_is_seen_by_the_poll() {
        let registry = Registry::for_pool();
        let polled = Arc::new(AtomicBool::new(false));
        let saw_poll = polled.clone();
        let fut = async move {
            saw_poll.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        };
        let (runnable, task) = task_in(&registry, fut);
        // The runner saw no shutdown; then every task is aborted.
        assert_eq!(registry.abort_all(), 1);
        runnable.run();
        assert!(
            !polled.load(Ordering::SeqCst),
            "an aborted future was polled"
        );
        assert_eq!(registry.live(), 0, "the task's slot was kept");
        let outcome = task.now_or_never().expect("the task has ended");
        assert!(outcome.take().unwrap_err().is_cancelled());
    }
}
