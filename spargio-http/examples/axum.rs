//! An axum application on spargio: the `Router` you would hand to
//! `axum::serve`, with tower-http's tracing, CORS and gzip layers, served by
//! `spargio_service::Server` over `spargio_http::Http` on every core.
//!
//! ```text
//! cargo run --release -p spargio-http --example axum
//! PORT=3000 ACCEPT=pinned cargo run --release -p spargio-http --example axum
//!
//! curl http://127.0.0.1:8080/
//! curl http://127.0.0.1:8080/users/7
//! curl -H 'content-type: application/json' -d '{"name":"Ada","email":"ada@example.com"}' \
//!      http://127.0.0.1:8080/users
//! curl --compressed -v http://127.0.0.1:8080/        # content-encoding: gzip
//! # CPU-heavy requests, four per core at once: the handlers queue up
//! # behind each other, and a shard that runs out of work steals the
//! # queued ones, even half-way through their computation.
//! for i in $(seq $(( $(nproc) * 4 ))); do curl -s http://127.0.0.1:8080/hash/50000000 & done; wait
//! curl http://127.0.0.1:8080/stats
//! ```
//!
//! Ctrl-C shuts it down gracefully (open connections get 5 s to finish) and
//! prints the server's counters and the shutdown report; a second Ctrl-C
//! exits at once.
//!
//! Every handler runs as a stealable task: the connection's own reads and
//! writes stay on its shard, and a handler that waits there behind a busy
//! shard can be taken by an idle one. `/hash` computes in slices and yields
//! between them, so it can also be stolen mid-computation; each answer
//! lists the shards that computed it and how often it moved. `/stats` and
//! the report at exit count the handlers that ran on another shard than
//! their connection's. With connections spread evenly over busy shards
//! there is little to steal; `ACCEPT=pinned` serves every connection from
//! shard 0, so the other shards run only stolen handlers and the stealing
//! shows even with a few requests. `ACCEPT` takes `round-robin` (the
//! default) or `pinned`; any other value stops the example at start.
//!
//! `TraceLayer` logs one line per response at `INFO` (method, URI, status,
//! latency) through a `tracing_subscriber::fmt` subscriber on stdout;
//! `QUIET=1` turns the lines off.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spargio_http::Http;
use spargio_rt::{RuntimeHandle, ShardId};
use spargio_service::{AcceptMode, HandlerPlacement, Server, StatsHandle};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

/// What every handler can reach through `State`.
#[derive(Clone)]
struct AppState {
    /// The server's live counters, for `/stats`.
    stats: StatsHandle,
    /// When the application was built, for the uptime in `/stats`.
    started: Instant,
}

/// A user as `/users` answers it (JSON).
#[derive(Serialize)]
struct User {
    /// Its number.
    id: u64,
    /// Its name.
    name: String,
    /// Its e-mail address.
    email: String,
}

/// The JSON body of `POST /users`.
#[derive(Deserialize)]
struct NewUser {
    /// The new user's name.
    name: String,
    /// The new user's e-mail address.
    email: String,
}

/// The most rounds `/hash` accepts (a few hundred ms of CPU).
const MAX_ROUNDS: u64 = 200_000_000;

/// Rounds `/hash` computes between two yields: well under a millisecond
/// of CPU, so the handler goes back to its shard's queue often enough for
/// the shard's other work to run and for an idle shard to steal it.
const SLICE: u64 = 250_000;

/// The shard this code runs on.
fn shard() -> usize {
    RuntimeHandle::current()
        .current_shard()
        .map_or(usize::MAX, |s| s.index())
}

/// `GET /`: the list of routes.
async fn index() -> &'static str {
    "spargio + axum\n\
     GET  /users/{id}\n\
     POST /users        (JSON: {\"name\": ..., \"email\": ...})\n\
     GET  /hash/{rounds} (CPU-heavy)\n\
     GET  /stats\n"
}

/// `GET /users/{id}`: a made-up user with that id.
async fn get_user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user{id}"),
        email: format!("user{id}@example.com"),
    })
}

/// `POST /users`: echoes the new user back with an id, as `201 Created`.
async fn create_user(Json(new): Json<NewUser>) -> impl IntoResponse {
    let id = new.name.len() as u64 * 1000 + new.email.len() as u64;
    (
        StatusCode::CREATED,
        Json(User {
            id,
            name: new.name,
            email: new.email,
        }),
    )
}

/// Mixes the 64-bit state `x` once for each round number in `rounds`: a
/// few ms of pure CPU for a few million rounds, the kind of work that holds
/// its shard. Mixing `0..a` then `a..b` gives what `0..b` gives.
fn mix(mut x: u64, rounds: Range<u64>) -> u64 {
    for i in rounds {
        x ^= i;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    x
}

/// `GET /hash/{rounds}`: a CPU-heavy handler. It mixes `rounds` rounds in
/// slices of [`SLICE`], yielding to its shard between slices, and answers
/// with the digest, the shards that computed it (in the order they first
/// did), how many times it moved between shards, and the time it took.
async fn hash(Path(rounds): Path<u64>) -> Response {
    if rounds > MAX_ROUNDS {
        return (
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_ROUNDS} rounds\n"),
        )
            .into_response();
    }
    let start = Instant::now();
    let mut value = 0x243f_6a88_85a3_08d3u64;
    let mut shards: Vec<usize> = Vec::new();
    let mut moves = 0u32;
    let mut done = 0;
    loop {
        let here = shard();
        if !shards.contains(&here) {
            shards.push(here);
        }
        let end = rounds.min(done + SLICE);
        value = mix(value, done..end);
        done = end;
        if done == rounds {
            break;
        }
        // Back in the shard's queue until the next turn, where an idle
        // shard may steal this handler.
        spargio_rt::yield_now().await;
        if shard() != here {
            moves += 1;
        }
    }
    Json(json!({
        "rounds": rounds,
        "digest": format!("{value:016x}"),
        "shards": shards,
        "moves": moves,
        "micros": start.elapsed().as_micros() as u64,
    }))
    .into_response()
}

/// `GET /stats`: the server's counters, and the shard that answered.
async fn stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    let s = state.stats.snapshot();
    Json(json!({
        "uptime_secs": state.started.elapsed().as_secs(),
        "connections_accepted": s.accepted,
        "connections_open": s.active,
        "accepted_per_shard": s.accepted_per_shard,
        "requests": s.requests,
        "requests_failed": s.requests_failed,
        "handlers_stealable": s.handlers_stealable,
        "handler_steals": s.handler_steals,
        "served_by_shard": shard(),
    }))
}

/// The application: routes, then layers (the last added is outermost).
fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    Router::new()
        .route("/", get(index))
        .route("/users", axum::routing::post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/hash/{rounds}", get(hash))
        .route("/stats", get(stats))
        .with_state(state)
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
}

#[spargio_rt::main]
async fn main(handle: RuntimeHandle) -> Result<(), support::Failure> {
    if std::env::var_os("QUIET").is_none() {
        tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .init();
    }
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT={p:?} is not a port number")))?,
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // Round-robin spreads connections over the shards; ACCEPT=pinned serves
    // them all from shard 0, so only stolen handlers run on the others.
    let accept = match std::env::var_os("ACCEPT") {
        None => AcceptMode::RoundRobin,
        Some(mode) => match mode.to_str() {
            Some("round-robin") => AcceptMode::RoundRobin,
            Some("pinned") => AcceptMode::Pinned(ShardId(0)),
            _ => {
                return Err(std::io::Error::other(format!(
                    "ACCEPT={mode:?} is not an accept mode: use ACCEPT=round-robin \
                     (the default) or ACCEPT=pinned"
                ))
                .into())
            }
        },
    };
    let server = Server::builder()
        .accept(accept)
        // Every handler is a stealable task (the default). `Adaptive` keeps
        // cheap routes inline and moves only the slow ones (here `/hash`).
        .handler_placement(HandlerPlacement::Stealable)
        .idle_timeout(Duration::from_secs(60))
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr)
        .map_err(|e| support::listen_error(addr, "PORT", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    let stats = server.stats();
    let router = app(AppState {
        stats: stats.clone(),
        started: Instant::now(),
    });
    println!(
        "listening on http://{} ({} shards); ctrl-c stops it",
        server.local_addr(),
        handle.shard_count()
    );

    let report = server.serve_service(Http::new(), router).await?;

    let s = stats.snapshot();
    println!(
        "served {} requests ({} failed) on {} connections, per shard {:?}",
        s.requests, s.requests_failed, s.accepted, s.accepted_per_shard
    );
    println!(
        "{} handlers ran stealable, {} of them on another shard than their connection's",
        s.handlers_stealable, s.handler_steals
    );
    println!(
        "shutdown: {} open, {} closed gracefully, {} cut ({} requests cut)",
        report.open_at_start, report.closed_gracefully, report.cut, report.requests_cut
    );
    Ok(())
}
