//! One registered timer, shared by the `Sleep` that waits on it and the heap
//! that fires it (which may belong to another shard, or to the fallback
//! timer thread, if the waiting task moved).

use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Waker;
use std::time::Instant;

use futures_util::task::AtomicWaker;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// A deadline and the waker to call when it passes.
#[derive(Debug)]
pub(crate) struct TimerEntry {
    pub(crate) deadline: Instant,
    state: AtomicU8,
    waker: AtomicWaker,
}

impl TimerEntry {
    pub(crate) fn new(deadline: Instant, waker: &Waker) -> Self {
        let entry = TimerEntry {
            deadline,
            state: AtomicU8::new(PENDING),
            waker: AtomicWaker::new(),
        };
        entry.waker.register(waker);
        entry
    }

    /// Called by the heap's owner once the deadline has passed; `false`
    /// if the entry was cancelled (or fired) before.
    pub(crate) fn fire(&self) -> bool {
        let won = self
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            self.waker.wake();
        }
        won
    }

    /// Called when the waiting `Sleep` is dropped or reset; the heap drops
    /// the entry lazily.
    pub(crate) fn cancel(&self) {
        let _ =
            self.state
                .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
        drop(self.waker.take());
    }

    /// Cancels the entry and hands back the waker a fire would have
    /// called, if one is registered.
    pub(crate) fn cancel_taking_waker(&self) -> Option<Waker> {
        let _ =
            self.state
                .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
        self.waker.take()
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.state.load(Ordering::Acquire) == FIRED
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }

    /// Updates the waker a later fire will call.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }
}
