//! [`ConcurrencyLimitLayer`] and [`ConcurrencyLimit`]: at most N calls in
//! flight.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::EventListener;

use super::permits::{Permit, Permits};
use tower_layer::Layer;
use tower_service::Service;

/// Refuses a limit of no calls at all: every request would wait for ever.
fn assert_max(max: usize) {
    assert!(max > 0, "ConcurrencyLimit: max must be at least 1");
}

/// Wraps services in a [`ConcurrencyLimit`] of `max` calls in flight.
///
/// Each service the layer wraps gets its own limit; clones of that service
/// share it.
///
/// ```
/// use spargio_service::layers::ConcurrencyLimitLayer;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let svc = ServiceBuilder::new()
///         .layer(ConcurrencyLimitLayer::new(2))
///         .service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x * 2) });
///     assert_eq!(svc.available_permits(), 2);
///     assert_eq!(svc.oneshot(21).await.unwrap(), 42);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ConcurrencyLimitLayer {
    max: usize,
}

impl ConcurrencyLimitLayer {
    /// A layer allowing `max` calls in flight per wrapped service.
    ///
    /// # Panics
    ///
    /// If `max` is 0 (a service that is never ready).
    pub fn new(max: usize) -> ConcurrencyLimitLayer {
        assert_max(max);
        ConcurrencyLimitLayer { max }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit::new(inner, self.max)
    }
}

/// Keeps at most `max` calls of the inner service in flight.
///
/// `poll_ready` waits (`Pending`, woken when a permit is released — no
/// timer, no spin) for a permit, then polls the inner
/// service; if that is not ready, the permit is released before
/// `Pending` is returned, so a service that waits (or that a `LoadShed`
/// gives up on) holds none. [`call`](Service::call) moves the permit into the response
/// future, which releases it when the response is ready or when the future
/// is dropped unfinished. A service dropped while holding an unused permit
/// releases it too.
///
/// Permits are not handed out in FIFO order: a freed permit goes to
/// whichever clone asks first after it is freed (a woken waiter, or a
/// caller that finds it free), not to the longest waiter. That is on
/// purpose: a FIFO semaphore assigns a freed permit to the first queued
/// waiter even if that waiter's caller has given up (a `LoadShed` that
/// shed the request, a connection gone idle), and the permit then sits
/// unused until that caller polls again. The price is that under steady
/// contention one caller can be served out of turn. Each release wakes
/// one more waiter than are already awake, so a waiter whose caller gave
/// up can absorb at most the wake-up it was sent, never the later ones.
///
/// That wake-up is still lost, though: waiters are woken in the order
/// they began to wait, so each clone whose caller gave up while it waited
/// (its service kept alive, say behind a `LoadShed`, or after
/// `timeout(.., svc.ready())`) and that is ahead of a live waiter takes
/// one release's wake-up: with `k` of them ahead, the live waiter sleeps,
/// with permits free, through `k` releases, or until any caller asks (and
/// gets a free permit). A woken waiter that finds the permit taken by a
/// caller that asked first listens again, behind those that began to wait
/// after it. Waking
/// every waiter on each release would close that gap at the cost of a
/// thundering herd (every waiting connection polled per released permit);
/// we chose not to. Drop a clone you stop polling (its place in line goes
/// to the next waiter) or poll it again.
///
/// Clones share the limit: every clone draws from the same permits, so a
/// server that clones the service per connection limits the whole server.
/// A clone starts without a permit of its own.
///
/// The inner service's errors pass through unchanged.
///
/// # Panics
///
/// [`call`](Service::call) panics unless `poll_ready` returned `Ready(Ok)`
/// since the last call, as the `Service` contract requires.
///
/// ```
/// use spargio_service::layers::ConcurrencyLimit;
/// use tower::{service_fn, Service, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
///     let mut svc = ConcurrencyLimit::new(echo, 1);
///     let response = svc.ready().await.unwrap().call(5);
///     assert_eq!(svc.available_permits(), 0); // held by `response`
///     assert_eq!(response.await.unwrap(), 5);
///     assert_eq!(svc.available_permits(), 1);
/// })
/// .unwrap();
/// ```
pub struct ConcurrencyLimit<S> {
    inner: S,
    max: usize,
    permits: Arc<Permits>,
    /// The permit `poll_ready` got, for the next call.
    permit: Option<Permit>,
    /// Registered to hear of a released permit while waiting for one.
    listener: Option<EventListener>,
}

impl<S> ConcurrencyLimit<S> {
    /// Wraps `inner`, allowing `max` calls in flight.
    ///
    /// # Panics
    ///
    /// If `max` is 0 (a service that is never ready).
    pub fn new(inner: S, max: usize) -> ConcurrencyLimit<S> {
        assert_max(max);
        ConcurrencyLimit {
            inner,
            max,
            permits: Permits::new(max),
            permit: None,
            listener: None,
        }
    }

    /// A [`ConcurrencyLimitLayer`] of `max`.
    ///
    /// # Panics
    ///
    /// If `max` is 0.
    pub fn layer(max: usize) -> ConcurrencyLimitLayer {
        ConcurrencyLimitLayer::new(max)
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Permits free right now, across all clones (neither held by a ready
    /// service nor by a response in flight).
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service (releasing an unused permit).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    /// A clone sharing this service's permits; it holds none of its own.
    fn clone(&self) -> Self {
        ConcurrencyLimit {
            inner: self.inner.clone(),
            max: self.max,
            permits: self.permits.clone(),
            permit: None,
            listener: None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ConcurrencyLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("max", &self.max)
            .field("available_permits", &self.permits.available())
            .field("has_permit", &self.permit.is_some())
            .finish()
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ConcurrencyLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while self.permit.is_none() {
            // Uncontended: no listener, no allocation.
            if let Some(permit) = self.permits.try_acquire() {
                self.permit = Some(permit);
                if let Some(mut listener) = self.listener.take() {
                    // The wake-up a release sent this waiter is used up
                    // with the permit: a listener dropped with it unread
                    // hands it to the next waiter, which would find no
                    // permit and listen again behind every later waiter
                    // (two wake-ups per hand-off, and the second in line
                    // sent to the back each time). Read, it is not passed
                    // on.
                    let _ = Pin::new(&mut listener).poll(cx);
                }
                break;
            }
            match &mut self.listener {
                // Listen, then try again: a release in between is seen.
                None => self.listener = Some(self.permits.listen()),
                Some(listener) => {
                    std::task::ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
        let ready = self.inner.poll_ready(cx);
        if ready.is_pending() {
            // Never wait holding a permit: a caller that gives up on a
            // service that is not ready (`LoadShed`, an idle connection)
            // would keep it from the others.
            self.permit = None;
        }
        ready
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let permit = self.permit.take().expect(
            "ConcurrencyLimit::call without a permit: poll_ready must return Ready(Ok) before each call",
        );
        ConcurrencyLimitFuture {
            inner: self.inner.call(req),
            permit: Some(permit),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ConcurrencyLimit`]. Holds a permit until the
    /// response is ready or the future is dropped. `Send` when the inner
    /// future is.
    #[must_use = "futures do nothing unless polled"]
    pub struct ConcurrencyLimitFuture<F> {
        #[pin]
        inner: F,
        permit: Option<Permit>,
    }
}

impl<F: fmt::Debug> fmt::Debug for ConcurrencyLimitFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitFuture")
            .field("inner", &self.inner)
            .field("holds_permit", &self.permit.is_some())
            .finish()
    }
}

impl<F: Future> Future for ConcurrencyLimitFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        // Release the permit as soon as the response is ready, not when the
        // finished future is eventually dropped.
        *this.permit = None;
        Poll::Ready(out)
    }
}
