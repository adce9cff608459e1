//! [`TimeoutLayer`] and [`Timeout`]: fail calls that run too long.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use super::error::Elapsed;
use crate::BoxError;

/// Wraps services in a [`Timeout`] of `timeout`.
///
/// ```
/// use std::time::Duration;
/// use spargio_service::layers::{Elapsed, TimeoutLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let svc = ServiceBuilder::new()
///         .layer(TimeoutLayer::new(Duration::from_millis(5)))
///         .service_fn(|slow: bool| async move {
///             if slow {
///                 spargio_rt::time::sleep(Duration::from_secs(10)).await;
///             }
///             Ok::<_, std::convert::Infallible>("done")
///         });
///     assert_eq!(svc.clone().oneshot(false).await.unwrap(), "done");
///     let err = svc.oneshot(true).await.unwrap_err();
///     assert!(err.is::<Elapsed>());
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// A layer whose services give each call at most `timeout`, counted from
    /// [`call`](Service::call).
    pub fn new(timeout: Duration) -> TimeoutLayer {
        TimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout::new(inner, self.timeout)
    }
}

/// Fails a call with [`Elapsed`] when the inner service's response future
/// has not finished `timeout` after [`call`](Service::call). The inner
/// future is dropped (cancelled) when the [`TimeoutFuture`] is, as with
/// tower's: drop it once it gave `Elapsed` to free what the inner future
/// holds (a permit of a concurrency limit below it, say); the servers
/// here do.
///
/// The timer is spargio-rt's ([`spargio_rt::time`]): on a shard it lives in
/// the shard's timer heap and costs no submission, and it never fires
/// early. A response that is ready at the deadline still wins. Readiness is
/// the inner service's; the timeout covers the call only.
///
/// Errors are [`BoxError`]s: the inner service's errors boxed, or a boxed
/// [`Elapsed`].
///
/// ```
/// use std::time::Duration;
/// use spargio_service::layers::Timeout;
/// use tower::{service_fn, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
///     let svc = Timeout::new(echo, Duration::from_secs(5));
///     assert_eq!(svc.oneshot(7).await.unwrap(), 7);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// Wraps `inner`, giving each call at most `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Timeout<S> {
        Timeout { inner, timeout }
    }

    /// A [`TimeoutLayer`] of `timeout`.
    pub fn layer(timeout: Duration) -> TimeoutLayer {
        TimeoutLayer::new(timeout)
    }

    /// The time each call gets.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture {
            inner: spargio_rt::time::timeout(self.timeout, self.inner.call(req)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Timeout`]: the inner response, or a boxed
    /// [`Elapsed`] once the deadline passes. `Send` when the inner future is.
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: spargio_rt::time::Timeout<F>,
    }
}

impl<F> TimeoutFuture<F> {
    /// When the call times out.
    pub fn deadline(&self) -> std::time::Instant {
        self.inner.deadline()
    }
}

impl<F: fmt::Debug> fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutFuture")
            .field("inner", self.inner.get_ref())
            .field("deadline", &self.inner.deadline())
            .finish()
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(response))) => Poll::Ready(Ok(response)),
            Poll::Ready(Ok(Err(e))) => Poll::Ready(Err(e.into())),
            Poll::Ready(Err(_)) => Poll::Ready(Err(Elapsed::new().into())),
        }
    }
}
