//! HTTP/1.1 (and TLS) for spargio: serve any tower `Service` that takes
//! `http::Request<spargio_http::Body>` — an axum `Router`, a stack of
//! tower-http layers, a `service_fn` — on spargio-rt's io_uring shards.
//!
//! The server is [`spargio_service::Server`] (re-exported as [`Server`])
//! with the [`Http`] protocol: connections are accepted round-robin over
//! the shards, each stays on its session shard (all its socket I/O on that
//! shard's ring), and each request's handler runs per the server's
//! [`HandlerPlacement`] — stealable by default, so CPU-heavy requests
//! spread over idle shards.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use spargio_http::{Body, Http, Server};
//!
//! #[spargio_rt::main]
//! async fn main(handle: spargio_rt::RuntimeHandle) -> std::io::Result<()> {
//!     let hello = tower::service_fn(|_req: http::Request<Body>| async {
//!         Ok::<_, Infallible>(http::Response::new(Body::from("hello\n")))
//!     });
//!     let server = Server::builder()
//!         .bind(&handle, "127.0.0.1:8080")?
//!         .with_graceful_shutdown(async {
//!             let _ = spargio_rt::signal::ctrl_c().await;
//!         });
//!     server.serve_service(Http::new(), hello).await?;
//!     Ok(())
//! }
//! ```
//!
//! Modules: [`h1`] is the sans-IO codec (parse and encode, no sockets);
//! [`tls`] wraps rustls (ring provider); [`fs`] serves files from
//! spargio-rt's io_uring file API; [`upgrade`] hands a connection over
//! after `101 Switching Protocols`, and [`ws`] speaks WebSockets over it;
//! [`transport`] is the byte-stream seam under it all.

#![warn(missing_docs)]

mod body;
mod buffered;
pub mod client;
mod coarse_clock;
#[cfg(test)]
mod counting_waker;
pub mod fs;
pub mod h1;
mod server;
pub mod tls;
pub mod transport;
pub mod upgrade;
pub mod ws;

pub use body::{Body, BodyError};
pub use client::{Client, ClientBuilder, ClientError};
pub use server::Http;
pub use spargio_service::{
    serve_connection, AcceptMode, AdaptiveConfig, HandlerPlacement, ServeConnection, Server,
    ServerBuilder, ShutdownHandle, ShutdownReport,
};
