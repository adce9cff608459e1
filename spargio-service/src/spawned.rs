//! The handler futures a server has spawned (stealable or on the
//! background pool) that still exist, so that `serve` returns only once
//! they are gone. Dropping a spawned call aborts its task, but the task
//! drops its future only when it next runs (a handler in the middle of a
//! long poll finishes that poll first); until then the future holds what
//! it captured: service clones, permits, handles to other systems.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use event_listener::Event;

/// Counts one server's live spawned handler futures.
#[derive(Default)]
pub(crate) struct SpawnedHandlers {
    live: AtomicUsize,
    /// Notified when the count drops to zero.
    gone: Event,
}

impl SpawnedHandlers {
    /// Counts one more live handler future until the guard is dropped
    /// (keep it in the future, after what it drops first).
    pub(crate) fn enter(self: &Arc<Self>) -> SpawnedGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        SpawnedGuard(self.clone())
    }

    /// How many spawned handler futures exist now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Waits until no spawned handler future exists.
    pub(crate) async fn all_gone(&self) {
        loop {
            if self.live() == 0 {
                return;
            }
            let gone = self.gone.listen();
            if self.live() == 0 {
                return;
            }
            gone.await;
        }
    }
}

/// One live spawned handler future, from [`SpawnedHandlers::enter`].
pub(crate) struct SpawnedGuard(Arc<SpawnedHandlers>);

impl Drop for SpawnedGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.gone.notify(usize::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_gone_waits_for_the_last_guard() {
        let handlers = Arc::new(SpawnedHandlers::default());
        let first = handlers.enter();
        let second = handlers.enter();
        assert_eq!(handlers.live(), 2);
        let dropper = std::thread::spawn(move || {
            drop(first);
            drop(second);
        });
        let runtime = spargio_rt::Runtime::builder().shards(1).build().unwrap();
        runtime.block_on(handlers.all_gone());
        assert_eq!(handlers.live(), 0);
        dropper.join().unwrap();
    }
}
