//! The axum rows: a `Router` with the same four routes as
//! [`BenchService`](super::service::BenchService), its handlers calling the
//! same functions. The file service is a parameter, as for the plain
//! service: tower-http's `ServeDir` on tokio, spargio-http's on spargio.

use super::service;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::convert::Infallible;
use tower_service::Service;

async fn plaintext() -> service::FixedResponse {
    service::plaintext()
}

async fn json() -> service::FixedResponse {
    service::json()
}

async fn burn() -> service::FixedResponse {
    service::burn()
}

/// The bench routes as an axum `Router`, `files` serving `/file`.
pub fn router<F>(files: F) -> Router
where
    F: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    F::Response: IntoResponse,
    F::Future: Send + 'static,
{
    Router::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/burn", get(burn))
        .route_service("/file", files)
        // Turns the handlers into routes once, here, instead of on every
        // request (what `axum::serve` does for its router too).
        .with_state(())
}
