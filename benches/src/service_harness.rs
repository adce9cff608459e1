//! Long-lived service harnesses, one per (row, peer): the server under test
//! serving [`WorkService`] on the length-delimited protocol, and the load
//! generator (`service_load.rs`) connected to it.
//!
//! The spargio-service peers run on spargio-rt with [`WORKERS`] shards and
//! differ only in handler placement (or `serve_local`); the tokio peer is
//! `service_tokio.rs` on [`WORKERS`] workers. Every peer is driven by the
//! same load generator on its own thread.

use crate::harness::WORKERS;
use crate::service_load::{LoadCmd, LoadGen, LoadRun};
use crate::service_route::RouteByKind;
use crate::service_tokio::TokioServer;
use crate::service_workload::{ServiceRow, WorkService, CONNECTIONS};
use spargio_rt::{Runtime, ShardId};
use spargio_service::codec::LengthDelimited;
use spargio_service::{HandlerPlacement, Server, ServerStats, StatsHandle};
use std::net::SocketAddr;
use std::time::Duration;

/// Warm-up of a freshly built harness: at least this many iterations ...
const WARMUP_ITERS: u32 = 2;
/// ... and this long.
const WARMUP_TIME: Duration = Duration::from_millis(300);

/// The servers a service row is run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServicePeer {
    /// spargio-service, `HandlerPlacement::Inline`.
    Inline,
    /// spargio-service, `HandlerPlacement::Stealable`.
    Stealable,
    /// spargio-service, `HandlerPlacement::Adaptive`, the codec's one route.
    Adaptive,
    /// spargio-service, `HandlerPlacement::Adaptive`, requests keyed by
    /// payload kind ([`RouteByKind`]).
    AdaptiveRouted,
    /// spargio-service, `HandlerPlacement::Background`: every handler on
    /// the runtime's background pool.
    Background,
    /// spargio-service `serve_local` (thread-per-core, handlers inline).
    ServeLocal,
    /// tokio multi-thread, a task per connection calling the service
    /// inline.
    Tokio,
}

impl ServicePeer {
    /// Every peer, ours first.
    pub const ALL: [ServicePeer; 7] = [
        ServicePeer::Inline,
        ServicePeer::Stealable,
        ServicePeer::Adaptive,
        ServicePeer::AdaptiveRouted,
        ServicePeer::Background,
        ServicePeer::ServeLocal,
        ServicePeer::Tokio,
    ];

    /// The criterion function name / table label.
    pub fn name(self) -> &'static str {
        match self {
            ServicePeer::Inline => "spargio_inline",
            ServicePeer::Stealable => "spargio_stealable",
            ServicePeer::Adaptive => "spargio_adaptive",
            ServicePeer::AdaptiveRouted => "spargio_adaptive_routed",
            ServicePeer::Background => "spargio_background",
            ServicePeer::ServeLocal => "spargio_serve_local",
            ServicePeer::Tokio => "tokio_mt_2",
        }
    }

    fn start(self) -> ServerUnderTest {
        match self {
            ServicePeer::Inline => spargio(self, HandlerPlacement::Inline),
            ServicePeer::Stealable => spargio(self, HandlerPlacement::Stealable),
            ServicePeer::Background => spargio(self, HandlerPlacement::Background),
            ServicePeer::Adaptive | ServicePeer::AdaptiveRouted => {
                spargio(self, HandlerPlacement::Adaptive)
            }
            ServicePeer::ServeLocal => spargio(self, HandlerPlacement::Inline),
            ServicePeer::Tokio => {
                let server = TokioServer::start(WorkService);
                ServerUnderTest {
                    addr: server.addr(),
                    stats: None,
                    stop: Some(Box::new(move || drop(server))),
                }
            }
        }
    }
}

/// A running server: where it listens, its counters (spargio-service
/// only), and how to stop it.
struct ServerUnderTest {
    addr: SocketAddr,
    stats: Option<StatsHandle>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// spargio-service on a 2-shard spargio-rt, round-robin accept on shard 0.
fn spargio(peer: ServicePeer, placement: HandlerPlacement) -> ServerUnderTest {
    // As io_harness.rs: `SPARGIO_BENCH_PARK_SPIN_US` overrides the shards'
    // pre-park spin (default 50 µs); as the HTTP bench,
    // `SPARGIO_BENCH_BACKGROUND_NICE` the background pool's nice value
    // (default 5) and `SPARGIO_BENCH_BACKGROUND_THREADS` its size.
    let env_u64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let spin = env_u64("SPARGIO_BENCH_PARK_SPIN_US").unwrap_or(50);
    let mut builder = Runtime::builder()
        .shards(WORKERS)
        .park_spin(Duration::from_micros(spin))
        .background_nice(env_u64("SPARGIO_BENCH_BACKGROUND_NICE").map_or(5, |n| n as i32));
    if let Some(n) = env_u64("SPARGIO_BENCH_BACKGROUND_THREADS") {
        builder = builder.background_threads(n as usize);
    }
    let rt = builder
        .thread_name("bench-svc-spargio")
        .build()
        .expect("build spargio-rt runtime");
    let handle = rt.handle();
    let server = Server::builder()
        .handler_placement(placement)
        .shutdown_timeout(Duration::from_secs(5))
        .bind(&handle, "127.0.0.1:0")
        .expect("bind spargio-service");
    let addr = server.local_addr();
    let stats = server.stats();
    let stop = server.shutdown_handle();
    let serving = match peer {
        ServicePeer::ServeLocal => handle.spawn_local_on(ShardId(0), move || {
            server.serve_local(LengthDelimited::new(), |_shard| WorkService)
        }),
        ServicePeer::AdaptiveRouted => handle.spawn_local_on(ShardId(0), move || {
            server.serve_service(RouteByKind::new(), WorkService)
        }),
        _ => handle.spawn_local_on(ShardId(0), move || {
            server.serve_service(LengthDelimited::new(), WorkService)
        }),
    };
    let name = peer.name();
    ServerUnderTest {
        addr,
        stats: Some(stats),
        stop: Some(Box::new(move || {
            stop.shutdown();
            let report = rt.block_on(serving);
            if !std::thread::panicking() {
                let report = report
                    .expect("serve task")
                    .unwrap_or_else(|e| panic!("{name}: serve failed: {e}"));
                assert_eq!(report.cut, 0, "{name}: connections cut at shutdown");
            }
            rt.shutdown_timeout(Duration::from_secs(5));
        })),
    }
}

/// A warmed-up long-lived harness for `peer` running `row`.
pub struct ServiceRunner {
    row: ServiceRow,
    // Dropped first: the client closes its connections before the server
    // shuts down, so shutdown has nothing to wait for.
    load: LoadGen,
    server: ServerUnderTest,
}

impl ServiceRunner {
    /// Builds the server and the load generator, connects, warms up.
    pub fn new(peer: ServicePeer, row: ServiceRow) -> ServiceRunner {
        // The burn's loop is calibrated once per process, before any
        // server or load runs.
        crate::spin::steps_per_sec();
        let server = peer.start();
        let mut load = LoadGen::start(server.addr);
        load.run(LoadCmd {
            row,
            min_iters: WARMUP_ITERS,
            min_time: WARMUP_TIME,
            record: false,
            rate: None,
        });
        let runner = ServiceRunner { row, load, server };
        if let Some(stats) = runner.stats() {
            // Round-robin accept: connection c on shard c % 2, which the
            // hot-rotation row relies on.
            let even = (CONNECTIONS / WORKERS) as u64;
            assert_eq!(
                stats.accepted_per_shard,
                vec![even; WORKERS],
                "{}: connections not spread evenly",
                peer.name()
            );
        }
        runner
    }

    /// One timed iteration ([`REQUESTS_PER_ITER`] requests, no latency
    /// recording); returns the requests answered.
    ///
    /// [`REQUESTS_PER_ITER`]: crate::service_workload::REQUESTS_PER_ITER
    pub fn iter(&mut self) -> u64 {
        self.load
            .run(LoadCmd {
                row: self.row,
                min_iters: 1,
                min_time: Duration::ZERO,
                record: false,
                rate: None,
            })
            .requests
    }

    /// Whole iterations for at least `time`, recording every latency:
    /// closed loop when `rate` is `None`, else open loop offering `rate`
    /// requests per second.
    pub fn run_for(&mut self, time: Duration, rate: Option<f64>) -> LoadRun {
        self.load.run(LoadCmd {
            row: self.row,
            min_iters: 1,
            min_time: time,
            record: true,
            rate,
        })
    }

    /// The server's counters (spargio-service peers only).
    pub fn stats(&self) -> Option<ServerStats> {
        self.server.stats.as_ref().map(StatsHandle::snapshot)
    }
}
