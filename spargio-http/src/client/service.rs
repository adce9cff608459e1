//! [`Client`] as a tower [`Service`], so client-side middleware (tower's
//! `ServiceBuilder` layers, tower-http's `FollowRedirect`, `Decompression`,
//! `SetRequestHeader`, `Trace`, ...) wraps it unchanged.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body as HttpBody;
use spargio_service::BoxError;
use tower_service::Service;

use super::{Client, ClientError};
use crate::body::Body;

/// The boxed request future inside [`ResponseFuture`].
type Pending = Pin<Box<dyn Future<Output = Result<Response<Body>, ClientError>> + Send>>;

/// The future of a request sent through the client's [`Service`]
/// implementation: what [`Client::request`] returns, boxed so that the
/// type can be named (tower layers name their inner service's future).
/// `Send`, so it may be awaited in a stealable task or behind layers that
/// need it (`tower::buffer`).
pub struct ResponseFuture {
    inner: Pending,
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Sends each request as [`Client::request`] does (see there for framing,
/// pooling, retries and errors). The body type is `B`: [`Body`] for a
/// client made by [`Client::new`] or [`ClientBuilder::build`](super::ClientBuilder::build), another
/// through [`Client::with_body_type`]. The client is always ready: it has no
/// limit of its own on requests in flight (each waits for a pooled or new
/// connection), so put `tower`'s `ConcurrencyLimitLayer` or
/// spargio-service's in front of it to bound them. Such a limit holds its
/// permit until the future resolves, at the response head: a response
/// body still streaming after that keeps its connection busy without a
/// permit, so the limit bounds requests waiting for an answer, not open
/// connections. tower's `RetryLayer` needs a request body it can clone:
/// use [`Client::with_body_type`] with one (`Full<Bytes>`, say); tower's
/// own `TimeoutLayer` needs a tokio runtime, spargio-service's does not.
///
/// ```no_run
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use spargio_http::{Body, Client};
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// spargio_rt::run(|_| async {
///     // At most 8 requests waiting for their response heads.
///     let mut client = ServiceBuilder::new()
///         .concurrency_limit(8)
///         .service(Client::new());
///     let req = Request::get("http://127.0.0.1:8080/").body(Body::empty()).unwrap();
///     let response = client.ready().await?.call(req).await?;
///     println!("{}", response.status());
///
///     // Requests with another body type.
///     let full = Client::new().with_body_type::<Full<Bytes>>();
///     let req = Request::post("http://127.0.0.1:8080/items")
///         .body(Full::new(Bytes::from_static(b"{}")))
///         .unwrap();
///     let response = full.oneshot(req).await?;
///     println!("{}", response.status());
///     Ok::<_, spargio_http::ClientError>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
impl<B> Service<Request<B>> for Client<B>
where
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = ClientError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        ResponseFuture {
            inner: Box::pin(self.request(req)),
        }
    }
}
