//! A static file server over `ServeDir` (io_uring file reads, ranges,
//! conditional requests; directories without an `index.html` are listed;
//! dotfiles are not served). Ctrl-C stops it gracefully (open connections get
//! 5 s to finish); a second Ctrl-C exits at once.
//!
//! ```text
//! cargo run --release -p spargio-http --example serve -- <dir>
//! curl -i http://127.0.0.1:8080/README.md     # with <dir> the checkout
//! ```
//!
//! `<dir>` is the directory to serve; without it, the current directory
//! (`.`). `ADDR` picks another address (default `127.0.0.1:8080`). Every
//! request is logged with its status and time; the server's counters print
//! at the end.

#[path = "support/mod.rs"]
mod support;

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use http::Request;
use spargio_http::fs::ServeDir;
use spargio_http::{Body, Http, Server};
use tower::ServiceExt;

#[spargio_rt::main]
async fn main(handle: spargio_rt::RuntimeHandle) -> Result<(), support::Failure> {
    // `args_os`: a directory name need not be UTF-8.
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let root = std::fs::canonicalize(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot serve {}: {e}", dir.display())))?;
    if !root.is_dir() {
        return Err(format!("cannot serve {}: not a directory", dir.display()).into());
    }
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let server = Server::builder()
        .shutdown_timeout(support::SHUTDOWN_TIMEOUT)
        .bind(&handle, addr.as_str())
        .map_err(|e| support::listen_error(&addr, "ADDR", e))?
        .with_graceful_shutdown(support::ctrl_c()?);
    let stats = server.stats();
    println!(
        "serving {} on http://{}/ ({} shards); ctrl-c stops it",
        root.display(),
        server.local_addr(),
        handle.shard_count()
    );
    // Dotfiles (a checkout's `.git/`, an `.env`) are not served.
    let files = ServeDir::new(&root)
        .list_directories(true)
        .serve_hidden(false);
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
