//! [`LoadShedLayer`] and [`LoadShed`]: reject instead of waiting.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::error::Overloaded;
use crate::BoxError;

/// Wraps services in a [`LoadShed`].
///
/// ```
/// use std::time::Duration;
/// use spargio_service::layers::{ConcurrencyLimitLayer, LoadShedLayer, Overloaded};
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let mut svc = ServiceBuilder::new()
///         .layer(LoadShedLayer::new())
///         .layer(ConcurrencyLimitLayer::new(1))
///         .service_fn(|ms: u64| async move {
///             spargio_rt::time::sleep(Duration::from_millis(ms)).await;
///             Ok::<_, std::convert::Infallible>(ms)
///         });
///     let busy = svc.ready().await.unwrap().call(5); // takes the only permit
///     let err = svc.ready().await.unwrap().call(0).await.unwrap_err();
///     assert!(err.is::<Overloaded>());
///     assert_eq!(busy.await.unwrap(), 5);
///     assert_eq!(svc.ready().await.unwrap().call(0).await.unwrap(), 0);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadShedLayer {
    _priv: (),
}

impl LoadShedLayer {
    /// A load-shedding layer.
    pub fn new() -> LoadShedLayer {
        LoadShedLayer { _priv: () }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> LoadShed<S> {
        LoadShed::new(inner)
    }
}

/// Rejects a request with [`Overloaded`] when the inner service is not
/// ready, instead of waiting for it.
///
/// `poll_ready` always returns `Ready`: it polls the inner service once
/// and remembers whether it was ready. If it was, [`call`](Service::call)
/// calls it; if it was not (`Pending`), `call` returns a future that fails
/// at once with a boxed [`Overloaded`], and the inner service is not
/// called. An error from the inner `poll_ready` is returned from
/// `poll_ready` (boxed). Put it above a layer that waits — a
/// [`ConcurrencyLimit`](super::ConcurrencyLimit), a
/// [`RateLimit`](super::RateLimit), a full buffer — to turn waiting into
/// fast rejections the protocol can answer (HTTP 503, say).
///
/// Errors are [`BoxError`]s: the inner service's errors boxed, or a boxed
/// [`Overloaded`].
///
/// ```
/// use spargio_service::layers::LoadShed;
/// use tower::{service_fn, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
///     assert_eq!(LoadShed::new(echo).oneshot(9).await.unwrap(), 9);
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct LoadShed<S> {
    inner: S,
    /// Whether the last `poll_ready` found the inner service ready.
    inner_ready: bool,
}

impl<S> LoadShed<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> LoadShed<S> {
        LoadShed {
            inner,
            inner_ready: false,
        }
    }

    /// A [`LoadShedLayer`].
    pub fn layer() -> LoadShedLayer {
        LoadShedLayer::new()
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

impl<S: Clone> Clone for LoadShed<S> {
    /// A clone that must poll its own inner service for readiness.
    fn clone(&self) -> Self {
        LoadShed::new(self.inner.clone())
    }
}

impl<S, Req> Service<Req> for LoadShed<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = LoadShedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner_ready = match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.inner_ready = false;
                return Poll::Ready(Err(e.into()));
            }
            Poll::Pending => false,
        };
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if std::mem::take(&mut self.inner_ready) {
            LoadShedFuture {
                state: State::Called {
                    inner: self.inner.call(req),
                },
            }
        } else {
            LoadShedFuture {
                state: State::Overloaded,
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`LoadShed`]: the inner response, or a boxed
    /// [`Overloaded`] at once. `Send` when the inner future is.
    #[must_use = "futures do nothing unless polled"]
    pub struct LoadShedFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called {
            #[pin]
            inner: F,
        },
        Overloaded,
    }
}

impl<F> LoadShedFuture<F> {
    /// Whether the request was shed (this future fails with [`Overloaded`]).
    pub fn is_overloaded(&self) -> bool {
        matches!(self.state, State::Overloaded)
    }
}

impl<F: fmt::Debug> fmt::Debug for LoadShedFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Called { inner } => f.debug_tuple("LoadShedFuture").field(inner).finish(),
            State::Overloaded => f.write_str("LoadShedFuture(Overloaded)"),
        }
    }
}

impl<F, T, E> Future for LoadShedFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { inner } => inner.poll(cx).map_err(Into::into),
            StateProj::Overloaded => Poll::Ready(Err(Overloaded::new().into())),
        }
    }
}
