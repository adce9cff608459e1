//! Driving a future on a thread that is not a shard.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::handle::RuntimeHandle;

thread_local! {
    /// The runtime a `block_on` on this thread entered.
    static ENTERED: RefCell<Option<RuntimeHandle>> = const { RefCell::new(None) };
}

/// The runtime entered by a `block_on` on this thread, if any.
pub(crate) fn entered() -> Option<RuntimeHandle> {
    ENTERED.with(|e| e.borrow().clone())
}

struct Parker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.thread.unpark();
        }
    }
}

/// Restores the previous entered runtime when `block_on` returns or unwinds.
struct Restore(Option<RuntimeHandle>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        ENTERED.with(|e| *e.borrow_mut() = prev);
    }
}

/// Runs `f` with `rt` as this thread's entered runtime (restored after,
/// even if `f` unwinds): what a pool thread does around each task it runs.
pub(crate) fn with_entered<R>(rt: RuntimeHandle, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(ENTERED.with(|e| e.borrow_mut().replace(rt)));
    f()
}

/// Polls `fut` on this thread, parking the thread between wake-ups.
pub(crate) fn block_on_here<F: Future>(rt: Option<RuntimeHandle>, fut: F) -> F::Output {
    assert!(
        crate::shard::local::current().is_none(),
        "spargio: block_on called on a shard thread; it would stall the shard. \
         Await the future instead."
    );
    assert!(
        !crate::pool::on_future_pool_thread(),
        "spargio: block_on called on a background-pool thread; it would stall \
         the futures queued there (and hang if it waits for one of them). \
         Await the future instead."
    );
    let _restore = match rt {
        Some(h) => Restore(ENTERED.with(|e| e.borrow_mut().replace(h))),
        None => Restore(entered()),
    };
    let parker = Arc::new(Parker {
        thread: thread::current(),
        notified: AtomicBool::new(false),
    });
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        while !parker.notified.swap(false, Ordering::SeqCst) {
            thread::park();
        }
    }
}
