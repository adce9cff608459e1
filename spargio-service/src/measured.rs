//! A future wrapper that measures a spawned handler's polls: the longest
//! single poll (what holds a shard up), readable by the connection however
//! the handler ends, and counts the handler in the server's steals the
//! first time it runs away from its connection's shard.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use spargio_rt::ShardId;

use crate::handler::HandlerShared;
use crate::spawned::SpawnedGuard;

/// What an inline call's polls cost so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollReport {
    /// The longest single poll (zero when timing was off).
    pub(crate) longest: Duration,
    /// Whether any poll was timed.
    pub(crate) timed_any: bool,
}

impl PollReport {
    /// Counts one poll that took `elapsed`.
    pub(crate) fn record(&mut self, elapsed: Duration) {
        self.longest = self.longest.max(elapsed);
        self.timed_any = true;
    }
}

/// A spawned handler's poll times, shared between the task (which may run
/// on any shard) and the connection waiting for it. The connection reads
/// it when the call ends, whether the handler answered, failed, panicked,
/// timed out or was dropped: a poll still running then counts for as long
/// as it has run so far (a handler that computes past the request timeout
/// is as heavy as they come).
#[derive(Debug)]
pub(crate) struct PollWatch {
    /// What `running_since` counts from.
    base: Instant,
    /// Nanoseconds of the longest finished poll, plus one; 0: none yet.
    longest: AtomicU64,
    /// When the poll running now started (nanoseconds after `base`, plus
    /// one); 0: no poll running.
    running_since: AtomicU64,
}

impl PollWatch {
    /// A watch with no polls yet.
    pub(crate) fn new() -> Self {
        PollWatch {
            base: Instant::now(),
            longest: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
        }
    }

    /// The longest poll so far, a running one included; `None` before the
    /// first poll started.
    pub(crate) fn longest(&self) -> Option<Duration> {
        let finished = self.longest.load(Ordering::Acquire);
        let since = self.running_since.load(Ordering::Acquire);
        let running = (since != 0).then(|| {
            let started = self.base + Duration::from_nanos(since - 1);
            Instant::now().saturating_duration_since(started)
        });
        let finished = (finished != 0).then(|| Duration::from_nanos(finished - 1));
        finished.max(running)
    }

    /// Times one poll, `f`; recorded even when `f` unwinds.
    fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let since = nanos(started.saturating_duration_since(self.base));
        self.running_since
            .store(since.saturating_add(1), Ordering::Release);
        let _finish = FinishPoll {
            watch: self,
            started,
        };
        f()
    }
}

/// Records the poll started at `started` when dropped (also on unwind).
struct FinishPoll<'a> {
    watch: &'a PollWatch,
    started: Instant,
}

impl Drop for FinishPoll<'_> {
    fn drop(&mut self) {
        let took = nanos(self.started.elapsed()).saturating_add(1);
        self.watch.longest.fetch_max(took, Ordering::AcqRel);
        self.watch.running_since.store(0, Ordering::Release);
    }
}

/// A duration in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

pin_project_lite::pin_project! {
    /// Polls `inner`, timing each poll into `watch` when there is one, and
    /// noting the shard.
    pub(crate) struct Measured<F> {
        #[pin]
        inner: F,
        // Declared after `inner`, so dropped after it.
        _alive: SpawnedGuard,
        home: ShardId,
        watch: Option<Arc<PollWatch>>,
        shared: Arc<HandlerShared>,
        moved: bool,
    }
}

impl<F> Measured<F> {
    /// `watch` turns on poll timing (two clock reads per poll). Each poll's
    /// shard (a thread-local lookup) is compared with `home` until one
    /// differs, which counts in the server's handler steals at once: a
    /// stolen handler that then panics, times out or is dropped was
    /// stolen all the same.
    pub(crate) fn new(
        inner: F,
        home: ShardId,
        watch: Option<Arc<PollWatch>>,
        shared: Arc<HandlerShared>,
    ) -> Self {
        Measured {
            inner,
            _alive: shared.spawned.enter(),
            home,
            watch,
            shared,
            moved: false,
        }
    }
}

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.moved
            && this
                .shared
                .handle
                .current_shard()
                .is_some_and(|s| s != *this.home)
        {
            *this.moved = true;
            this.shared.counters.handler_steals.add(1);
        }
        let inner = this.inner;
        match this.watch {
            Some(watch) => watch.time(|| inner.poll(cx)),
            None => inner.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use super::*;

    #[test]
    fn a_watch_with_no_polls_has_no_longest() {
        assert_eq!(PollWatch::new().longest(), None);
    }

    #[test]
    fn a_finished_poll_is_recorded() {
        let watch = PollWatch::new();
        watch.time(|| std::thread::sleep(Duration::from_millis(2)));
        let longest = watch.longest().expect("a poll was timed");
        assert!(longest >= Duration::from_millis(2), "{longest:?}");
    }

    #[test]
    fn a_poll_that_unwinds_is_recorded() {
        let watch = PollWatch::new();
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| {
            watch.time(|| {
                std::thread::sleep(Duration::from_millis(2));
                panic!("handler panicked");
            })
        }));
        assert!(out.is_err());
        assert!(watch.longest().expect("recorded") >= Duration::from_millis(2));
    }

    #[test]
    fn a_running_poll_counts_for_as_long_as_it_has_run() {
        let watch = PollWatch::new();
        watch.time(|| {
            std::thread::sleep(Duration::from_millis(2));
            let so_far = watch.longest().expect("a poll is running");
            assert!(so_far >= Duration::from_millis(2), "{so_far:?}");
        });
    }
}
