//! A waker that counts its wake-ups, for unit tests of wake-up protocols.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// How often the waker made with it was woken.
pub(crate) struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fresh counter and the waker that counts into it.
pub(crate) fn counting_waker() -> (Arc<Counter>, Waker) {
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// How often `counter`'s waker was woken so far.
pub(crate) fn woken(counter: &Counter) -> usize {
    counter.0.load(Ordering::SeqCst)
}
