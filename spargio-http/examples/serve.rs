//! A static file server over `ServeDir` (io_uring file reads, ranges,
//! conditional requests), stopped gracefully by Ctrl-C.
//!
//! ```text
//! cargo run --release -p spargio-http --example serve -- <dir>
//! curl http://127.0.0.1:8080/
//! ```
//!
//! `ADDR` picks another address (default `127.0.0.1:8080`). Every request
//! is logged with its status and time; the server's counters print at the
//! end.

use std::time::Instant;

use http::Request;
use spargio_http::fs::ServeDir;
use spargio_http::{Body, Http, Server};
use tower::ServiceExt;

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".to_string());
    let root = std::fs::canonicalize(&dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot serve {dir}: {e}")))?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let server = Server::builder()
        .bind(&handle, addr.as_str())?
        .with_graceful_shutdown(async {
            let _ = spargio_rt::signal::ctrl_c().await;
            println!("ctrl-c: shutting down");
        });
    let stats = server.stats();
    println!(
        "serving {} on http://{}/ ({} shards); ctrl-c stops it",
        root.display(),
        server.local_addr(),
        handle.shard_count()
    );
    let files = ServeDir::new(&root);
    let logged = tower::service_fn(move |req: Request<Body>| {
        let files = files.clone();
        async move {
            let start = Instant::now();
            let (method, path) = (req.method().clone(), req.uri().path().to_string());
            let resp = files.oneshot(req).await?;
            println!(
                "{method} {path} -> {} in {:?}",
                resp.status().as_u16(),
                start.elapsed()
            );
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let report = server.serve_service(Http::new(), logged).await?;
    println!("stopped: {report:?}");
    println!("{:#?}", stats.snapshot());
    Ok(())
}
