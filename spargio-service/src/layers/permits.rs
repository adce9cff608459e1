//! The counted permits behind [`ConcurrencyLimit`](super::ConcurrencyLimit).
//!
//! A plain counter and an [`event_listener::Event`]. A released permit
//! wakes one waiter *more* than are already woken (`notify_additional`),
//! not "at least one": a waiter that was woken but whose caller gave up
//! and never polls again (a shed request whose connection keeps its
//! service clone) would otherwise count as the woken one for every later
//! release, and the callers still waiting would sleep with permits free.
//! Each such waiter still takes the one wake-up it was sent (see
//! [`ConcurrencyLimit`](super::ConcurrencyLimit)'s docs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use event_listener::{Event, EventListener, IntoNotification};

/// A shared pool of permits.
pub(crate) struct Permits {
    free: AtomicUsize,
    released: Event,
}

impl Permits {
    /// `n` permits, all free.
    pub(crate) fn new(n: usize) -> Arc<Permits> {
        Arc::new(Permits {
            free: AtomicUsize::new(n),
            released: Event::new(),
        })
    }

    /// Permits free right now.
    pub(crate) fn available(&self) -> usize {
        self.free.load(Ordering::Acquire)
    }

    /// Takes a permit if one is free.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut free = self.free.load(Ordering::Acquire);
        while free > 0 {
            match self.free.compare_exchange_weak(
                free,
                free - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Permit(self.clone())),
                Err(now) => free = now,
            }
        }
        None
    }

    /// A listener woken when a permit is released after this call; try
    /// [`try_acquire`](Self::try_acquire) again after creating it, so a
    /// release in between is not missed.
    pub(crate) fn listen(&self) -> EventListener {
        self.released.listen()
    }
}

/// One permit; released (and a waiter woken) when dropped.
pub(crate) struct Permit(Arc<Permits>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.free.fetch_add(1, Ordering::AcqRel);
        self.0.released.notify(1.additional());
    }
}
