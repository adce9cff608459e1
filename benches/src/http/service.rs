//! The one tower service every HTTP server under test runs (the axum rows
//! wrap the same functions in a `Router`, see `router.rs`).
//!
//! | path | response |
//! |---|---|
//! | `/plaintext` | `Hello, World!`, `text/plain` |
//! | `/json` | `{"message":"Hello, World!"}`, serialized with serde_json per request |
//! | `/burn` | about 1 ms of CPU ([`burn_cpu`]), then `burned` |
//! | `/file` | the file `file` in `$BENCH_FILE_DIR` (1 MiB in `run.sh`), through the stack's own `ServeDir` |
//! | anything else | `404` |
//!
//! [`BenchService`] is generic over the request body type and over the
//! file service, so the same code serves `spargio_http::Body` requests with
//! `spargio_http::fs::ServeDir` and `hyper::body::Incoming` requests with
//! `tower_http::services::ServeDir`. The work of a route is done when its
//! future is first polled, not in `call`: a handler placement that moves
//! futures to another shard (spargio-service's stealable and adaptive
//! placements) moves the work with it.

use bytes::Bytes;
use futures::future::{Either, MapOk, TryFutureExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// The `/plaintext` body.
pub const HELLO: &str = "Hello, World!";

/// How much CPU a `/burn` request costs.
pub const BURN: Duration = Duration::from_millis(1);

/// The environment variable naming the directory `/file` is served from
/// (the current directory when unset).
pub const FILE_DIR_ENV: &str = "BENCH_FILE_DIR";

/// The directory `/file` is served from: `$BENCH_FILE_DIR`, else `.`.
pub fn file_dir() -> PathBuf {
    std::env::var_os(FILE_DIR_ENV).map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The `/json` payload.
#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// A response with a fixed, in-memory body.
pub type FixedResponse = Response<Full<Bytes>>;

fn fixed(content_type: &'static str, body: impl Into<Bytes>) -> FixedResponse {
    let mut resp = Response::new(Full::new(body.into()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `/plaintext`.
pub fn plaintext() -> FixedResponse {
    fixed("text/plain", Bytes::from_static(HELLO.as_bytes()))
}

/// `/json`: serializes the message afresh every time.
pub fn json() -> FixedResponse {
    let body = serde_json::to_vec(&Message { message: HELLO }).expect("serialize a static struct");
    fixed("application/json", body)
}

/// `/burn`: [`burn_cpu`], then a short text body.
pub fn burn() -> FixedResponse {
    burn_cpu();
    fixed("text/plain", Bytes::from_static(b"burned"))
}

/// Any other path.
pub fn not_found() -> FixedResponse {
    let mut resp = fixed("text/plain", Bytes::from_static(b"not found"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Spins for about [`BURN`] of CPU time: a fixed number of loop steps
/// (see [`crate::spin`]), so a thread preempted mid-request (wrk shares the
/// cores) still does the same work rather than the same wall time. The
/// servers calibrate before they print `ready`.
pub fn burn_cpu() {
    crate::spin::burn(BURN);
}

/// The routes answered from memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixed {
    Plaintext,
    Json,
    Burn,
    NotFound,
}

/// The future of a route answered from memory: does the route's work on
/// its first poll. `FB` is the file body type it shares a response type
/// with.
#[derive(Debug)]
pub struct FixedFuture<FB> {
    route: Option<Fixed>,
    _body: PhantomData<fn() -> FB>,
}

impl<FB> Future for FixedFuture<FB> {
    type Output = Result<Response<BenchBody<FB>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let route = self.route.take();
        let resp = match route.expect("FixedFuture polled after completion") {
            Fixed::Plaintext => plaintext(),
            Fixed::Json => json(),
            Fixed::Burn => burn(),
            Fixed::NotFound => not_found(),
        };
        Poll::Ready(Ok(resp.map(http_body_util::Either::Left)))
    }
}

/// The response body: a fixed body, or the file service's.
pub type BenchBody<FB> = http_body_util::Either<Full<Bytes>, FB>;

/// Wraps a file response's body in [`BenchBody`].
type IntoBench<FB> = fn(Response<FB>) -> Response<BenchBody<FB>>;

/// [`BenchService`]'s future.
pub type BenchFuture<FF, FB> = Either<FixedFuture<FB>, MapOk<FF, IntoBench<FB>>>;

/// The bench service: the four routes over any request body type `B`, with
/// `F` (a `ServeDir`) answering `/file`.
#[derive(Clone, Debug)]
pub struct BenchService<F> {
    files: F,
}

impl<F> BenchService<F> {
    /// The service with `files` serving `/file`.
    pub fn new(files: F) -> BenchService<F> {
        BenchService { files }
    }
}

impl<B, F, FB> Service<Request<B>> for BenchService<F>
where
    F: Service<Request<B>, Response = Response<FB>, Error = Infallible>,
{
    type Response = Response<BenchBody<FB>>;
    type Error = Infallible;
    type Future = BenchFuture<F::Future, FB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.files.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = match req.uri().path() {
            "/plaintext" => Fixed::Plaintext,
            "/json" => Fixed::Json,
            "/burn" => Fixed::Burn,
            "/file" => {
                let into_bench: IntoBench<FB> = |resp| resp.map(http_body_util::Either::Right);
                return Either::Right(self.files.call(req).map_ok(into_bench));
            }
            _ => Fixed::NotFound,
        };
        Either::Left(FixedFuture {
            route: Some(route),
            _body: PhantomData,
        })
    }
}

/// A file service shared by `Arc`, for a server that clones its service
/// per request (hyper-util's `TowerToHyperService` does): the clone costs
/// a reference count instead of a copy of the `ServeDir` (whose root
/// `PathBuf` would be allocated on every request, `/plaintext` included).
/// `/file` clones the inner service once, drives it to ready, and calls it.
#[derive(Debug)]
pub struct SharedFiles<F>(Arc<F>);

impl<F> SharedFiles<F> {
    /// Shares `files`.
    pub fn new(files: F) -> SharedFiles<F> {
        SharedFiles(Arc::new(files))
    }
}

impl<F> Clone for SharedFiles<F> {
    fn clone(&self) -> Self {
        SharedFiles(Arc::clone(&self.0))
    }
}

/// [`SharedFiles`]'s future.
pub type SharedFilesFuture<R> = Pin<Box<dyn Future<Output = Result<R, Infallible>> + Send>>;

impl<B, F> Service<Request<B>> for SharedFiles<F>
where
    B: Send + 'static,
    F: Service<Request<B>, Error = Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send,
    F::Response: Send + 'static,
{
    type Response = F::Response;
    type Error = Infallible;
    type Future = SharedFilesFuture<F::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the clone's, checked in the future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut files = F::clone(&self.0);
        Box::pin(async move {
            std::future::poll_fn(|cx| files.poll_ready(cx)).await?;
            files.call(req).await
        })
    }
}
