//! A tower service served over the length-delimited protocol. Ctrl-C stops
//! it gracefully (open connections get 5 s to finish); a second Ctrl-C
//! exits at once with status 130. If Ctrl-C cannot be listened for, the
//! server does not start.
//!
//! ```text
//! cargo run --release -p spargio-service --example rpc_server              # 127.0.0.1:7879
//! cargo run --release -p spargio-service --example rpc_server -- 0.0.0.0:9000
//! ```
//!
//! Requests whose first byte is `H` burn about a millisecond of CPU; the
//! server keys routes by that byte, so under `Adaptive` placement only
//! that route leaves the connection's task. With the default
//! `AdaptiveConfig` a millisecond is past `background_poll` (500 µs), so
//! once a shard has measured the route its `H` handlers run on the
//! runtime's background pool (counted in `handlers_background`), or as
//! stealable tasks (`handlers_stealable`) while the machine is too busy
//! for the pool to help; every other route stays inline. The counts are
//! printed at exit. Every request is answered with its own payload
//! upper-cased (after a status byte, 0 = ok). Try it with the codec's
//! `Client`, or by hand:
//!
//! ```text
//! python3 -c "import socket; s = socket.create_connection(('127.0.0.1', 7879)); \
//!   s.sendall(b'\0\0\0\5hello'); print(s.recv(64))"
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spargio_rt::signal::{signal, SignalKind};
use spargio_service::codec::LengthDelimited;
use spargio_service::layers::{ConcurrencyLimitLayer, TimeoutLayer};
use spargio_service::{AcceptMode, HandlerPlacement, RouteKey, Server};
use tower_layer::Layer;

/// The shutdown signal, for `with_graceful_shutdown`: resolves at the
/// first Ctrl-C, after saying so; a second Ctrl-C ends the process at once
/// with exit status 130 (128 + `SIGINT`).
///
/// Listening starts when this is called, and a failure to listen is an
/// error here (a server that could not be stopped gracefully is not
/// started). Once the runtime listens for `SIGINT`, Ctrl-C no longer ends
/// the process by itself, so the second one is handled here too, by a task
/// the returned future spawns on the runtime.
fn ctrl_c() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupts = signal(SignalKind::interrupt())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen for Ctrl-C: {e}")))?;
    Ok(async move {
        // `None`: the runtime no longer reads signals, so stop as well.
        if interrupts.recv().await.is_none() {
            return;
        }
        println!("ctrl-c: shutting down (Ctrl-C again to exit now)");
        // The server drops this future once it resolves: a detached task
        // keeps listening until the runtime itself stops.
        drop(spargio_rt::spawn(async move {
            if interrupts.recv().await.is_some() {
                eprintln!("second Ctrl-C: exiting without waiting for connections");
                std::process::exit(130);
            }
        }));
    })
}

/// Keeps the thread busy for `d`: the CPU work of an `H` request.
fn burn(d: Duration) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        std::hint::black_box(x);
    }
}

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> ExitCode {
    match serve(handle).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves on the address given as the first argument until Ctrl-C, then
/// prints the counters.
async fn serve(handle: spargio_rt::RuntimeHandle) -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7879".to_string());
    let server = Server::builder()
        .accept(AcceptMode::RoundRobin)
        .max_connections(10_000)
        .handler_placement(HandlerPlacement::Adaptive)
        .idle_timeout(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_secs(5))
        .bind(&handle, addr.as_str())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?
        .with_graceful_shutdown(ctrl_c()?);
    let stats = server.stats();
    println!(
        "rpc server on {} ({} shards); ctrl-c stops it",
        server.local_addr(),
        handle.shard_count()
    );
    let service = tower::service_fn(|req: Bytes| async move {
        if req.first() == Some(&b'H') {
            burn(Duration::from_millis(1));
        }
        Ok::<_, Infallible>(Bytes::from(req.to_ascii_uppercase()))
    });
    // Runtime-native tower layers around the service.
    let service = TimeoutLayer::new(Duration::from_secs(2))
        .layer(ConcurrencyLimitLayer::new(1024).layer(service));
    let protocol =
        LengthDelimited::new().route_by(|req| RouteKey(req.first().copied().unwrap_or(0).into()));
    let report = server.serve_service(protocol, service).await?;
    let s = stats.snapshot();
    println!(
        "served {} requests on {} connections (per shard {:?}); handlers: {} on the background \
         pool, {} stealable ({} stolen)",
        s.requests,
        s.accepted,
        s.accepted_per_shard,
        s.handlers_background,
        s.handlers_stealable,
        s.handler_steals
    );
    println!(
        "shutdown: {} open, {} closed gracefully, {} cut ({} requests)",
        report.open_at_start, report.closed_gracefully, report.cut, report.requests_cut
    );
    Ok(())
}
