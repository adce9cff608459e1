//! A one-value channel from the exchange task to the caller's future.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_gone: bool,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // Every update is a plain assignment: a poisoned lock is consistent.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends the one value.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Resolves to the value, or `None` if the sender was dropped without
/// sending.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A connected pair.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            value: None,
            waker: None,
            sender_gone: false,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Hands `value` over and wakes the receiver.
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut slot = self.shared.lock();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        // Drop marks the sender gone; the value is already there.
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.shared.lock();
            slot.sender_gone = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.shared.lock();
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Some(v));
        }
        if slot.sender_gone {
            return Poll::Ready(None);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
