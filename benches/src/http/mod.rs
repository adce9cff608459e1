//! The HTTP servers compared by `benches/http/run.sh` (wrk as the load
//! generator), each started by name by the `http_server` binary:
//!
//! | name | stack |
//! |---|---|
//! | `spargio` | spargio-http `Http` on `spargio_service::Server`, `HandlerPlacement::Adaptive` |
//! | `spargio-inline` | the same, `HandlerPlacement::Inline` |
//! | `spargio-stealable` | the same, `HandlerPlacement::Stealable` |
//! | `spargio-background` | the same, `HandlerPlacement::Background` |
//! | `hyper` | hyper 1.x `http1` on tokio, the same service through `TowerToHyperService` |
//! | `axum-tokio` | an axum `Router` with the same routes, through the same hyper setup as `hyper` on tokio |
//! | `axum-spargio` | the same `Router` on spargio-http (adaptive placement) |
//! | `limit` | a hand-written io_uring loop answering `/plaintext` bytes ([`limit`]) |
//!
//! Every server uses [`WORKERS`](crate::harness::WORKERS) shards or worker
//! threads, prints `ready <addr>` once it listens, and stops on `SIGINT` or
//! `SIGTERM`. The routes are in [`service`].

pub mod limit;
pub mod open_load;
pub mod router;
pub mod service;
pub mod spargio;
pub mod tokio;

use spargio_service::HandlerPlacement;
use std::io::{self, Write};
use std::net::SocketAddr;

/// A server the `http_server` binary can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// spargio-http serving [`service::BenchService`] with this placement.
    Spargio(HandlerPlacement),
    /// hyper 1.x on tokio serving [`service::BenchService`].
    Hyper,
    /// The axum router on tokio (hyper `http1`, as `Hyper`).
    AxumTokio,
    /// The axum router on spargio-http.
    AxumSpargio,
    /// The hand-written io_uring server.
    Limit,
}

impl ServerKind {
    /// Every server, by name.
    pub const ALL: [(&'static str, ServerKind); 8] = [
        ("spargio", ServerKind::Spargio(HandlerPlacement::Adaptive)),
        (
            "spargio-inline",
            ServerKind::Spargio(HandlerPlacement::Inline),
        ),
        (
            "spargio-stealable",
            ServerKind::Spargio(HandlerPlacement::Stealable),
        ),
        (
            "spargio-background",
            ServerKind::Spargio(HandlerPlacement::Background),
        ),
        ("hyper", ServerKind::Hyper),
        ("axum-tokio", ServerKind::AxumTokio),
        ("axum-spargio", ServerKind::AxumSpargio),
        ("limit", ServerKind::Limit),
    ];

    /// The server called `name`.
    pub fn from_name(name: &str) -> Option<ServerKind> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, kind)| kind)
    }

    /// Serves on `addr` until the process is told to stop.
    pub fn run(self, addr: SocketAddr) -> io::Result<()> {
        match self {
            ServerKind::Spargio(placement) => spargio::run(addr, spargio::App::Service, placement),
            ServerKind::AxumSpargio => {
                spargio::run(addr, spargio::App::Axum, HandlerPlacement::Adaptive)
            }
            ServerKind::Hyper => tokio::run_hyper(addr),
            ServerKind::AxumTokio => tokio::run_axum(addr),
            ServerKind::Limit => limit::run(addr),
        }
    }
}

/// Announces that the server listens; the driver waits for this line.
fn ready(addr: SocketAddr) {
    // `/burn`'s loop is calibrated here, before any load arrives, and the
    // same way in every server process.
    let rate = crate::spin::steps_per_sec();
    eprintln!("burn calibration: {rate:.0} loop steps per second");
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "ready {addr}");
    let _ = out.flush();
}
