//! The tokio servers, on a multi-thread runtime with [`WORKERS`] workers
//! and `tower_http::services::ServeDir` on `/file`:
//!
//! - `hyper`: hyper 1.x `server::conn::http1` per connection from a plain
//!   accept loop, [`BenchService`] through hyper-util's
//!   `TowerToHyperService`; keep-alive on, `pipeline_flush(true)`,
//!   `TCP_NODELAY`. No timer, so (hyper's default) no header read timeout.
//! - `axum-tokio`: the axum [`router`] through `axum::serve`, with
//!   `TCP_NODELAY` set by `tap_io`.
//!
//! Both stop when the process gets `SIGINT` or `SIGTERM` (their default
//! action: the process ends).

use super::ready;
use super::router::router;
use super::service::{file_dir, BenchService};
use crate::harness::WORKERS;
use axum::serve::ListenerExt;
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
        let service = BenchService::new(ServeDir::new(file_dir()));
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
    });
    rt.block_on(serving).map_err(io::Error::other)?
}

/// Serves the axum [`router`] with `axum::serve` on `addr`; prints `ready`
/// once listening. Runs until the process is stopped.
pub fn run_axum(addr: SocketAddr) -> io::Result<()> {
    let rt = runtime()?;
    let serving = rt.spawn(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router(ServeDir::new(file_dir()))).await
    });
    rt.block_on(serving).map_err(io::Error::other)?
}
