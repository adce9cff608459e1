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
//! request is logged with its status and time, by a thread of its own (a
//! shard never waits on a slow terminal or a full pipe: when the log falls
//! behind, lines are dropped and counted); the server's counters print at
//! the end.

#[path = "support/mod.rs"]
mod support;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
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
    // Dotfiles (a checkout's `.git/`, an `.env`) are not served. The
    // directory goes in as given, not canonicalized: `ServeDir` follows a
    // root that is a symlink re-pointed at a new release.
    let files = ServeDir::new(&dir)
        .list_directories(true)
        .serve_hidden(false);
    let log = RequestLog::start();
    let logged = tower::service_fn({
        let log = log.clone();
        move |req: Request<Body>| {
            let (files, log) = (files.clone(), log.clone());
            async move {
                let start = Instant::now();
                let (method, path) = (req.method().clone(), req.uri().path().to_string());
                let resp = files.oneshot(req).await?;
                log.line(format!(
                    "{method} {path} -> {} in {:?}",
                    resp.status().as_u16(),
                    start.elapsed()
                ));
                Ok::<_, std::convert::Infallible>(resp)
            }
        }
    });
    let report = server.serve_service(Http::new(), logged).await?;
    let dropped = log.dropped();
    if dropped > 0 {
        println!("{dropped} log lines dropped (the output fell behind)");
    }
    println!("stopped: {report:?}");
    println!("{:#?}", stats.snapshot());
    Ok(())
}

/// Request log lines, written to stdout by a thread of their own: a
/// `println!` on a shard would block it (and, through stdout's lock, every
/// other shard) whenever the terminal or pipe is slow or full.
#[derive(Clone)]
struct RequestLog {
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl RequestLog {
    /// Lines the log holds before it drops new ones.
    const BACKLOG: usize = 4096;

    fn start() -> RequestLog {
        let (lines, rx) = sync_channel(Self::BACKLOG);
        std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || write_lines(rx))
            .expect("the request log's thread starts");
        RequestLog {
            lines,
            dropped: Arc::default(),
        }
    }

    /// Queues `line`, never waiting: dropped (and counted) when the log
    /// is full.
    fn line(&self, line: String) {
        if self.lines.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes each line to stdout until every sender is gone (or stdout
/// fails: a closed pipe ends the log, not the server).
fn write_lines(rx: Receiver<String>) {
    let stdout = io::stdout();
    for line in rx {
        if writeln!(stdout.lock(), "{line}").is_err() {
            return;
        }
    }
}
