//! HTTP/1.1 (and TLS) for spargio: serve any tower `Service` that takes
//! `http::Request<spargio_http::Body>` — an axum `Router`, a stack of
//! tower-http layers, a `service_fn` — on spargio-rt's io_uring shards, and
//! call other services with [`Client`].

#![warn(missing_docs)]

pub mod fs;
pub mod tls;
pub mod transport;
mod body;
pub use body::{Body, BodyError};
pub mod upgrade;
pub mod h1;
mod server;
pub use server::Http;
