//! What the examples share: Ctrl-C handling, the graceful-shutdown limit
//! and a bind error that names the address. Each example includes this
//! file with `#[path = "support/mod.rs"] mod support;`; cargo builds only
//! `examples/*.rs` (and `examples/*/main.rs`) as examples, so not this.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::time::Duration;

use spargio_rt::signal::{signal, SignalKind};

/// How long a graceful shutdown waits for open connections to finish
/// before it cuts them.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The examples' shutdown signal, for `with_graceful_shutdown`: resolves
/// at the first Ctrl-C, after saying so; a second Ctrl-C ends the process
/// at once with exit status 130 (128 + `SIGINT`).
///
/// Listening starts when this is called. Once spargio-rt listens for
/// `SIGINT`, Ctrl-C no longer ends the process by itself (its handler
/// stays for the life of the process), so the second one is handled here.
/// Poll the returned future on the runtime: the second Ctrl-C is awaited
/// by a task it spawns there.
pub fn ctrl_c() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupts = signal(SignalKind::interrupt())?;
    Ok(async move {
        // `None`: the runtime no longer reads signals, so stop as well.
        if interrupts.recv().await.is_none() {
            return;
        }
        println!("shutting down (Ctrl-C again to exit now)");
        // The server drops this future once it resolves: a detached task
        // keeps listening until the runtime itself stops.
        drop(spargio_rt::spawn(async move {
            if interrupts.recv().await.is_some() {
                eprintln!("second Ctrl-C: exiting without waiting for connections");
                std::process::exit(130);
            }
        }));
    })
}

/// `err`, from binding `addr`, as an error of the same kind that says
/// which address failed and which environment variable `var` picks
/// another.
pub fn listen_error(addr: impl Display, var: &str, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!("cannot listen on {addr}: {err} (set {var}=...)"),
    )
}

/// What an example's `main` returns on failure: any error, reported as
/// its message. A `main` that returns `Err` prints it with `Debug`, which
/// for an `io::Error` made with a message is a struct dump
/// (`Custom { kind: AddrInUse, error: "..." }`); this prints the message
/// itself (`Error: cannot listen on ...`) and exits with status 1.
pub struct Failure(Box<dyn std::error::Error + Send + Sync>);

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure(err.into())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Display::fmt(&self.0, f)
    }
}
