//! A tower service served over the length-delimited protocol, stopped
//! gracefully by Ctrl-C.
//!
//! ```text
//! cargo run --release -p spargio-service --example rpc_server
//! ```
//!
//! Requests whose first byte is `H` burn about a millisecond of CPU; the
//! server keys routes by that byte, so under `Adaptive` placement only
//! those move to stealable tasks. Every request is answered with its own
//! payload upper-cased (after a status byte, 0 = ok). Try it with the
//! codec's `Client`, or by hand:
//!
//! ```text
//! python3 -c "import socket; s = socket.create_connection(('127.0.0.1', 7879)); \
//!   s.sendall(b'\0\0\0\5hello'); print(s.recv(64))"
//! ```

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spargio_service::codec::LengthDelimited;
use spargio_service::layers::{ConcurrencyLimitLayer, TimeoutLayer};
use spargio_service::{AcceptMode, HandlerPlacement, RouteKey, Server};
use tower_layer::Layer;

fn burn(d: Duration) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        std::hint::black_box(x);
    }
}

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> std::io::Result<()> {
    let server = Server::builder()
        .accept(AcceptMode::RoundRobin)
        .max_connections(10_000)
        .handler_placement(HandlerPlacement::Adaptive)
        .idle_timeout(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_secs(5))
        .bind(&handle, "127.0.0.1:7879")?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
            println!("ctrl-c: shutting down");
        });
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
        "served {} requests on {} connections (per shard {:?}); {} handlers stealable, {} stolen",
        s.requests, s.accepted, s.accepted_per_shard, s.handlers_stealable, s.handler_steals
    );
    println!(
        "shutdown: {} open, {} closed gracefully, {} cut ({} requests)",
        report.open_at_start, report.closed_gracefully, report.cut, report.requests_cut
    );
    Ok(())
}
