//! The tokio servers, on a multi-thread runtime with [`WORKERS`] workers
//! and `tower_http::services::ServeDir` on `/file`:
//!
//! - `hyper`: hyper 1.x `server::conn::http1` per connection from a plain
//!   accept loop, [`BenchService`] through hyper-util's
//!   `TowerToHyperService`; keep-alive on, `pipeline_flush(true)`,
//!   `TCP_NODELAY`. No timer, so (hyper's default) no header read timeout.
//! - `axum-tokio`: the axum [`router`] through the same hyper setup (not
//!   `axum::serve`, whose hyper default flushes every pipelined response;
//!   see [`run_axum`]).
//!
//! Both stop when the process gets `SIGINT` or `SIGTERM` (their default
//! action: the process ends).

use super::ready;
use super::router::router;
use super::service::{file_dir, BenchService, SharedFiles};
use crate::harness::WORKERS;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::services::ServeDir;

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("http-tokio")
        .enable_all()
        .build()
}

/// Serves [`BenchService`] with hyper on `addr`; prints `ready` once
/// listening. Runs until the process is stopped.
pub fn run_hyper(addr: SocketAddr) -> io::Result<()> {
    let rt = runtime()?;
    // The accept loop runs on a worker, not on this (the main) thread.
    let serving: tokio::task::JoinHandle<io::Result<()>> = rt.spawn(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        // Shared: hyper-util clones the service for every request.
        let service = BenchService::new(SharedFiles::new(ServeDir::new(file_dir())));
        serve_connections(listener, service).await
    });
    rt.block_on(serving).map_err(io::Error::other)?
}

/// The accept loop of both tokio servers: hyper's `http1` per connection,
/// keep-alive on, `pipeline_flush(true)`, `TCP_NODELAY`, `service` through
/// hyper-util's `TowerToHyperService` (which clones it per request).
async fn serve_connections<S, RespBody>(
    listener: tokio::net::TcpListener,
    service: S,
) -> io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<RespBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    RespBody: hyper::body::Body + Send + 'static,
    RespBody::Data: Send,
    RespBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = http1::Builder::new();
    http.keep_alive(true).pipeline_flush(true);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, a connection reset before accept...:
            // back off a little and go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.clone()),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Serves the axum [`router`] on `addr` with the same hyper connection
/// setup as [`run_hyper`]; prints `ready` once listening. Runs until the
/// process is stopped.
///
/// Not `axum::serve`: that runs hyper-util's auto builder with hyper's
/// default `pipeline_flush(false)`, a write per pipelined response, where
/// hyper here and spargio-http batch them; the pipelined row would then
/// measure that setting rather than the runtime (axum-tokio did 337k
/// req/s through `axum::serve` where hyper did 823k).
pub fn run_axum(addr: SocketAddr) -> io::Result<()> {
    let rt = runtime()?;
    let serving: tokio::task::JoinHandle<io::Result<()>> = rt.spawn(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        serve_connections(listener, router(ServeDir::new(file_dir()))).await
    });
    rt.block_on(serving).map_err(io::Error::other)?
}
