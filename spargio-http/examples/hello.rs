//! The smallest HTTP server: one `service_fn`, Ctrl-C stops it gracefully.
//!
//! ```text
//! cargo run --release -p spargio-http --example hello
//! curl http://127.0.0.1:8080/
//! ```

use std::convert::Infallible;

use http::{Request, Response};
use spargio_http::{Body, Http, Server};

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let server = Server::builder()
        .bind(&handle, addr.as_str())?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
        });
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
