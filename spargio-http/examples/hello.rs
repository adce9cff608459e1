//! The smallest HTTP server: one `service_fn`. Ctrl-C stops it gracefully
//! (open connections get 5 s to finish); a second Ctrl-C exits at once.
//!
//! ```text
//! cargo run --release -p spargio-http --example hello
//! curl http://127.0.0.1:8080/
//! ```
//!
//! `ADDR` picks another address (default `127.0.0.1:8080`), for example
//! `ADDR=0.0.0.0:3000`.

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;

use http::{Request, Response};
use spargio_http::{Body, Http, Server};

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> Result<(), support::Failure> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let server = Server::builder()
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr.as_str())
        .map_err(|e| support::listen_error(&addr, "ADDR", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    println!(
        "hello: listening on http://{} ({} shards); ctrl-c stops it",
        server.local_addr(),
        handle.shard_count()
    );
    let hello = tower::service_fn(|req: Request<Body>| async move {
        let text = format!("hello from spargio: {} {}\n", req.method(), req.uri());
        Ok::<_, Infallible>(Response::new(Body::from(text)))
    });
    let report = server.serve_service(Http::new(), hello).await?;
    println!("stopped: {report:?}");
    Ok(())
}
