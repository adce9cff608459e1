//! A future wrapper that measures a handler's polls: the longest single
//! poll (what holds a shard up), and counts the handler in the server's
//! steals the first time it runs away from its connection's shard.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use spargio_rt::ShardId;

use crate::handler::HandlerShared;
use crate::spawned::SpawnedGuard;

/// What [`Measured`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollReport {
    /// The longest single poll (zero when timing was off).
    pub(crate) longest: Duration,
}

impl PollReport {
    /// Runs one poll, `f`, counting its time towards `longest` when
    /// `timed` (two clock reads; none when not timed).
    pub(crate) fn time<R>(&mut self, timed: bool, f: impl FnOnce() -> R) -> R {
        let start = timed.then(Instant::now);
        let out = f();
        if let Some(start) = start {
            self.record(start.elapsed());
        }
        out
    }

    /// Counts one poll that took `elapsed`.
    pub(crate) fn record(&mut self, elapsed: Duration) {
        self.longest = self.longest.max(elapsed);
    }
}

pin_project_lite::pin_project! {
    /// Polls `inner`, timing each poll when `timed`, and noting the shard.
    pub(crate) struct Measured<F> {
        #[pin]
        inner: F,
        // Declared after `inner`, so dropped after it.
        _alive: SpawnedGuard,
        home: ShardId,
        timed: bool,
        shared: Arc<HandlerShared>,
        moved: bool,
        report: PollReport,
    }
}

impl<F> Measured<F> {
    /// `timed` turns on poll timing (two clock reads per poll). Each poll's
    /// shard (a thread-local lookup) is compared with `home` until one
    /// differs, which counts in the server's handler steals at once: a
    /// stolen handler that then panics, times out or is dropped was
    /// stolen all the same.
    pub(crate) fn new(inner: F, home: ShardId, timed: bool, shared: Arc<HandlerShared>) -> Self {
        Measured {
            inner,
            _alive: shared.spawned.enter(),
            home,
            timed,
            shared,
            moved: false,
            report: PollReport::default(),
        }
    }
}

impl<F: Future> Future for Measured<F> {
    type Output = (F::Output, PollReport);

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
        let out = this.report.time(*this.timed, || inner.poll(cx));
        out.map(|o| (o, *this.report))
    }
}
