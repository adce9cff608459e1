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
//! # CPU-heavy requests, several at once: idle shards steal their handlers.
//! for i in $(seq 8); do curl -s http://127.0.0.1:8080/hash/20000000 & done; wait
//! curl http://127.0.0.1:8080/stats
//! ```
//!
//! Ctrl-C shuts it down gracefully and prints the server's counters and the
//! shutdown report.
//!
//! Every handler runs as a stealable task: the connection's own reads and
//! writes stay on its shard, and a handler that waits there behind a busy
//! shard can be taken by an idle one. Each `/hash` answer says which shard
//! ran it; `/stats` and the report at exit count the handlers that ran on
//! another shard than their connection's. With connections spread evenly
//! over busy shards there is little to steal; `ACCEPT=pinned` serves every
//! connection from shard 0 so the other shards only run stolen handlers.
//!
//! `TraceLayer` logs through `tracing`; install a subscriber (for example
//! `tracing_subscriber::fmt::init()`) to see its lines.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spargio_http::Http;
use spargio_rt::{RuntimeHandle, ShardId};
use spargio_service::{AcceptMode, HandlerPlacement, Server, StatsHandle};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach through `State`.
#[derive(Clone)]
struct AppState {
    stats: StatsHandle,
    started: Instant,
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    email: String,
}

/// The most rounds `/hash` accepts (a few hundred ms of CPU).
const MAX_ROUNDS: u64 = 200_000_000;

/// The shard this code runs on.
fn shard() -> usize {
    RuntimeHandle::current()
        .current_shard()
        .map_or(usize::MAX, |s| s.index())
}

async fn index() -> &'static str {
    "spargio + axum\n\
     GET  /users/{id}\n\
     POST /users        (JSON: {\"name\": ..., \"email\": ...})\n\
     GET  /hash/{rounds} (CPU-heavy)\n\
     GET  /stats\n"
}

async fn get_user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user{id}"),
        email: format!("user{id}@example.com"),
    })
}

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

/// Mixes a 64-bit state `rounds` times: a few ms of pure CPU for a few
/// million rounds, the kind of handler that holds its shard.
fn digest(rounds: u64) -> u64 {
    let mut x = 0x243f_6a88_85a3_08d3u64;
    for i in 0..rounds {
        x ^= i;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    x
}

async fn hash(Path(rounds): Path<u64>) -> impl IntoResponse {
    if rounds > MAX_ROUNDS {
        return (
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_ROUNDS} rounds\n"),
        )
            .into_response();
    }
    let start = Instant::now();
    let value = digest(rounds);
    Json(json!({
        "rounds": rounds,
        "digest": format!("{value:016x}"),
        "shard": shard(),
        "micros": start.elapsed().as_micros() as u64,
    }))
    .into_response()
}

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
        .layer(TraceLayer::new_for_http())
}

#[spargio_rt::main]
async fn main(handle: RuntimeHandle) -> std::io::Result<()> {
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT={p:?} is not a port number")))?,
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // Round-robin spreads connections over the shards; ACCEPT=pinned serves
    // them all from shard 0, so only stolen handlers run on the others.
    let accept = match std::env::var("ACCEPT").as_deref() {
        Ok("pinned") => AcceptMode::Pinned(ShardId(0)),
        _ => AcceptMode::RoundRobin,
    };
    let server = Server::builder()
        .accept(accept)
        // Every handler is a stealable task (the default). `Adaptive` keeps
        // cheap routes inline and moves only the slow ones (here `/hash`).
        .handler_placement(HandlerPlacement::Stealable)
        .idle_timeout(Duration::from_secs(60))
        .shutdown_timeout(Duration::from_secs(5))
        .bind(&handle, addr)?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
            println!("ctrl-c: shutting down");
        });
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
