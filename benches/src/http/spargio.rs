//! The spargio servers: spargio-http's [`Http`] on a
//! [`spargio_service::Server`] over a [`WORKERS`]-shard spargio-rt runtime,
//! serving either [`BenchService`] or the axum [`router`], with
//! `spargio_http::fs::ServeDir` on `/file`.

use super::ready;
use super::router::router;
use super::service::{file_dir, BenchService};
use crate::harness::WORKERS;
use futures::future::select;
use spargio_http::fs::ServeDir;
use spargio_http::{AcceptMode, AdaptiveConfig, HandlerPlacement, Http, Server};
use spargio_rt::signal::{signal, SignalKind};
use spargio_rt::Runtime;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

/// What the spargio server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// [`BenchService`] itself.
    Service,
    /// The axum [`router`].
    Axum,
}

/// Serves `app` on `addr` with handlers placed per `placement` until
/// `SIGINT` or `SIGTERM`; prints `ready` once listening.
pub fn run(addr: SocketAddr, app: App, placement: HandlerPlacement) -> io::Result<()> {
    // As the other spargio bench harnesses: `SPARGIO_BENCH_PARK_SPIN_US`
    // overrides the shards' pre-park spin (default 50 µs).
    let spin = env_u64("SPARGIO_BENCH_PARK_SPIN_US").unwrap_or(50);
    // `SPARGIO_BENCH_AFFINITY=1` pins shard i to CPU i (default: unpinned),
    // for A/B runs of how shards and the load generator share the cores.
    let builder = Runtime::builder()
        .shards(WORKERS)
        .park_spin(Duration::from_micros(spin))
        .busy_yield(Duration::from_micros(busy_yield_us()))
        .background_nice(env_u64("SPARGIO_BENCH_BACKGROUND_NICE").map_or(5, |n| n as i32))
        .thread_affinity(env_u64("SPARGIO_BENCH_AFFINITY") == Some(1))
        .thread_name("http-spargio");
    spargio_rt::run_with(builder, move |handle| async move {
        // Handlers first, so a signal sent right after `ready` stops the
        // server instead of being lost.
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let stop = async move {
            let _ = select(pin!(int.recv()), pin!(term.recv())).await;
        };
        // `SPARGIO_BENCH_ACCEPT=reuseport` gives each shard its own
        // listener instead of the default round-robin hand-off.
        let accept = match std::env::var("SPARGIO_BENCH_ACCEPT").as_deref() {
            Ok("reuseport") => AcceptMode::ReusePort,
            _ => AcceptMode::RoundRobin,
        };
        let server = Server::builder()
            .accept(accept)
            .handler_placement(placement)
            .adaptive(adaptive_config())
            .shutdown_timeout(Duration::from_secs(2))
            .bind(&handle, addr)?
            .with_graceful_shutdown(stop);
        ready(server.local_addr());
        let server_stats = server.stats();
        let files = ServeDir::new(file_dir());
        match app {
            App::Service => {
                server
                    .serve_service(http(), BenchService::new(files))
                    .await?
            }
            App::Axum => server.serve_service(http(), router(files)).await?,
        };
        if std::env::var_os("SPARGIO_BENCH_STATS").is_some() {
            print_stats(&handle, server_stats.snapshot().requests);
        }
        Ok(())
    })?
}

/// Adaptive placement's settings: the defaults, except that
/// `SPARGIO_BENCH_BACKGROUND_POLL_US=N` sets the background threshold (0
/// keeps every handler on the shards), for A/B runs.
fn adaptive_config() -> AdaptiveConfig {
    let mut cfg = AdaptiveConfig::default();
    if let Some(us) = env_u64("SPARGIO_BENCH_BACKGROUND_POLL_US") {
        cfg.background_poll = (us > 0).then(|| Duration::from_micros(us));
    }
    cfg
}

/// An environment variable read as a number.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `SPARGIO_BENCH_BUSY_YIELD_US=N`: the shards' `busy_yield` (default
/// the runtime's, 1000 µs; 0 turns it off), for A/B runs.
fn busy_yield_us() -> u64 {
    env_u64("SPARGIO_BENCH_BUSY_YIELD_US").unwrap_or(1000)
}

/// The HTTP protocol settings; `SPARGIO_BENCH_MULTISHOT=1` reads plain-TCP
/// connections through a multishot receive instead of one receive at a
/// time (for A/B runs).
fn http<B>() -> Http<B> {
    let multishot = std::env::var("SPARGIO_BENCH_MULTISHOT").is_ok_and(|v| v == "1");
    Http::new().multishot_reads(multishot)
}

/// `SPARGIO_BENCH_STATS=1`: per-shard counters per request served, on
/// stderr at exit (for profiling: polls, parks and ring enters per request).
fn print_stats(handle: &spargio_rt::RuntimeHandle, requests: u64) {
    let per = |n: u64| n as f64 / requests.max(1) as f64;
    eprintln!("requests {requests}");
    for (i, s) in handle.stats().shards.iter().enumerate() {
        eprintln!(
            "shard {i}: polls/req {:.2} parks/req {:.2} enters/req {:.2} ops/req {:.2} inline/req {:.2} (done {:.2}) doorbells/req {:.2}",
            per(s.tasks_polled),
            per(s.parks),
            per(s.ring_enters),
            per(s.ops_submitted),
            per(s.ops_inline),
            per(s.ops_inline_done),
            per(s.doorbells_received),
        );
    }
}
