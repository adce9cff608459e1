//! A handler's response future as the connection's task polls it: the
//! request timeout, panic containment, adaptive timing and the request
//! counters in one hand-written future.
//!
//! Written as nested `async` wrappers (a timeout around `catch_unwind`
//! around a timing wrapper around the service's future), every layer moves
//! the response on its way out, and an HTTP response with its header map
//! is a few hundred bytes: at hundreds of thousands of pipelined requests a
//! second those copies were a sixth of the server's CPU. Here the response
//! is moved once.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use spargio_rt::time::Sleep;

use crate::error::{BoxError, HandlerError};
use crate::handler::{Timing, Tracked};
use crate::measured::PollReport;
use crate::protocol::RouteKey;

pin_project_lite::pin_project! {
    /// Polls a service's response future inline; see the module docs.
    pub(crate) struct InlineCall<F> {
        // `None` once it finished (or when `call` itself failed).
        #[pin]
        fut: Option<F>,
        // Why `call` failed, until reported.
        failed: Option<HandlerError>,
        tracked: Tracked,
        route: RouteKey,
        // Whether (and for what) adaptive placement wants this request's
        // poll times.
        timing: Timing,
        report: PollReport,
        deadline: Option<Sleep>,
    }

    impl<F> PinnedDrop for InlineCall<F> {
        // Dropped before it finished (its connection failed or was cut):
        // the polls it had are learned all the same, or a route whose
        // calls all end this way would stay inline for ever.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.fut.is_some() && this.timing.timed() && this.report.timed_any {
                let to_route = *this.timing == Timing::Route;
                this.tracked
                    .shared
                    .learn(*this.route, this.report.longest, to_route);
            }
        }
    }
}

impl<F> InlineCall<F> {
    /// Polls `started` (the service's future, or why `call` failed) under
    /// the request timeout `limit`, timing its polls as `timing` says.
    pub(crate) fn new(
        started: Result<F, HandlerError>,
        tracked: Tracked,
        route: RouteKey,
        timing: Timing,
        limit: Option<Duration>,
    ) -> Self {
        let (fut, failed) = match started {
            Ok(fut) => (Some(fut), None),
            Err(e) => (None, Some(e)),
        };
        InlineCall {
            fut,
            failed,
            tracked,
            route,
            timing,
            report: PollReport::default(),
            deadline: limit.map(spargio_rt::time::sleep),
        }
    }
}

impl<F, T, E> Future for InlineCall<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, HandlerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            let e = this
                .failed
                .take()
                .expect("InlineCall polled after it finished");
            return Poll::Ready(this.tracked.finished(Err(e)));
        };
        // Timed here rather than through `PollReport::time`: one closure
        // less for the response to be copied out of.
        let started = this.timing.timed().then(Instant::now);
        let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        if let Some(started) = started {
            this.report.record(started.elapsed());
        }
        let timed_out = matches!(polled, Ok(Poll::Pending))
            && this
                .deadline
                .as_mut()
                .is_some_and(|sleep| Pin::new(sleep).poll(cx).is_ready());
        if matches!(polled, Ok(Poll::Pending)) && !timed_out {
            return Poll::Pending;
        }
        // The call is over, however it ended: what its polls cost is
        // learned even when it timed out or panicked (a route whose calls
        // run past the request timeout is as heavy as they come).
        if this.timing.timed() {
            let to_route = *this.timing == Timing::Route;
            this.tracked
                .shared
                .learn(*this.route, this.report.longest, to_route);
        }
        let failed = match polled {
            Ok(Poll::Ready(Ok(out))) => {
                // The answer goes straight out (every hand-over on the way
                // is a copy of the whole response).
                this.fut.set(None);
                return Poll::Ready(Ok(out));
            }
            Ok(Poll::Ready(Err(e))) => HandlerError::Service(e.into()),
            Ok(Poll::Pending) => HandlerError::TimedOut,
            Err(payload) => HandlerError::from_panic(&*payload),
        };
        // Failed, timed out or panicked: the future is dropped now and
        // never polled again.
        this.fut.set(None);
        Poll::Ready(this.tracked.finished(Err(failed)))
    }
}

pin_project_lite::pin_project! {
    /// A `Placed` handler's call: inline, or waiting for a spawned task
    /// (stealable, or on the background pool).
    #[project = CallProj]
    pub(crate) enum Call<F, S> {
        /// Polled on the connection's task.
        Inline { #[pin] call: InlineCall<F> },
        /// Spawned; this waits for it.
        Spawned { #[pin] call: S },
    }
}

impl<F, S, T, E> Future for Call<F, S>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    S: Future<Output = Result<T, HandlerError>>,
{
    type Output = Result<T, HandlerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CallProj::Inline { call } => call.poll(cx),
            CallProj::Spawned { call } => call.poll(cx),
        }
    }
}
