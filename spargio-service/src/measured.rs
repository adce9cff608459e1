//! A future wrapper that measures a handler's polls: the longest single
//! poll (what holds a shard up) and whether it ran away from its
//! connection's shard.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use spargio_rt::{RuntimeHandle, ShardId};

/// What [`Measured`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PollReport {
    /// The longest single poll (zero when timing was off).
    pub(crate) longest: Duration,
    /// Whether any poll ran on a shard other than the connection's.
    pub(crate) moved: bool,
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
        home: ShardId,
        timed: bool,
        runtime: Option<RuntimeHandle>,
        report: PollReport,
    }
}

impl<F> Measured<F> {
    /// `timed` turns on poll timing (two clock reads per poll); with
    /// `runtime`, each poll's shard (a thread-local lookup) is compared with
    /// `home` until one differs.
    pub(crate) fn new(
        inner: F,
        home: ShardId,
        timed: bool,
        runtime: Option<RuntimeHandle>,
    ) -> Self {
        Measured {
            inner,
            home,
            timed,
            runtime,
            report: PollReport::default(),
        }
    }
}

impl<F: Future> Future for Measured<F> {
    type Output = (F::Output, PollReport);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let (Some(rt), false) = (this.runtime.as_ref(), this.report.moved) {
            if rt.current_shard().is_some_and(|s| s != *this.home) {
                this.report.moved = true;
            }
        }
        let inner = this.inner;
        let out = this.report.time(*this.timed, || inner.poll(cx));
        out.map(|o| (o, *this.report))
    }
}
