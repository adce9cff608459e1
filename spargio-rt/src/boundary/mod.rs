//! A bounded request/reply channel between spargio and the rest of the
//! process.
//!
//! Services often run tokio (or another executor, or plain threads) beside
//! spargio. [`channel`] gives a [`BoundaryClient`] and a [`BoundaryServer`]:
//! either side may live anywhere. Client futures are runtime-agnostic (they
//! work when awaited on tokio, on a `futures` executor or inside spargio),
//! [`BoundaryClient::call_blocking`] serves plain threads, and the server is
//! usually a few spargio tasks calling [`BoundaryServer::recv`].
//!
//! - **Bounded**: at most `capacity` requests wait in the queue.
//!   [`call`](BoundaryClient::call) waits for room,
//!   [`try_call`](BoundaryClient::try_call) fails fast with
//!   [`BoundaryError::Overloaded`].
//! - **Deadlines**: [`call_with_timeout`](BoundaryClient::call_with_timeout)
//!   bounds queueing plus the reply, and the request carries the deadline
//!   ([`BoundaryRequest::deadline`]); the server skips requests that expired
//!   while queued and counts them ([`BoundaryServer::expired_count`]).
//! - **Never hangs, never leaks**: a caller whose request is dropped
//!   unanswered gets [`BoundaryError::Canceled`]; a caller that stops
//!   waiting (drops its future) is seen by the server as
//!   [`BoundaryRequest::is_cancelled`]; requests still queued when the last
//!   server goes away are answered with [`BoundaryError::Closed`].
//!
//! ```
//! use spargio_rt::boundary::{self, BoundaryError};
//!
//! let rt = spargio_rt::Runtime::new().unwrap();
//! let (client, server) = boundary::channel::<String, usize>(64);
//! // The service side: a spargio task.
//! rt.handle().spawn(async move {
//!     while let Ok(req) = server.recv().await {
//!         let len = req.request().len();
//!         let _ = req.respond(len);
//!     }
//! });
//! // The calling side: any thread (or a tokio task using `call(..).await`).
//! assert_eq!(client.call_blocking("hello".to_string()), Ok(5));
//! drop(client); // the server's `recv` now returns `Closed`
//! ```

mod client;
mod error;
mod server;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Instant;

use futures_channel::oneshot;

pub use client::{BoundaryClient, BoundaryTicket};
pub use error::BoundaryError;
pub use server::{BoundaryRequest, BoundaryResponder, BoundaryServer};

/// The reply slot of one call.
type Reply<Resp> = oneshot::Sender<Result<Resp, BoundaryError>>;

/// One queued call.
struct Envelope<Req, Resp> {
    req: Req,
    deadline: Option<Instant>,
    reply: Reply<Resp>,
}

/// State shared by every client and server of one channel.
#[derive(Debug, Default)]
struct Shared {
    /// Live `BoundaryServer` clones; the last one to go drains the queue.
    servers: AtomicUsize,
    /// Requests skipped because their deadline had passed when received.
    expired: AtomicU64,
    /// Requests skipped because their caller had stopped waiting.
    abandoned: AtomicU64,
}

/// Creates a request/reply channel whose queue holds at most `capacity`
/// requests. Both halves are `Clone`, and `Send + Sync` when `Req` and
/// `Resp` are `Send`: clone the client for
/// more callers and the server for more workers (each request goes to one
/// server).
///
/// # Panics
/// If `capacity` is 0.
pub fn channel<Req, Resp>(
    capacity: usize,
) -> (BoundaryClient<Req, Resp>, BoundaryServer<Req, Resp>) {
    assert!(
        capacity > 0,
        "boundary::channel capacity must be at least 1"
    );
    let (tx, rx) = async_channel::bounded(capacity);
    let shared = Arc::new(Shared::default());
    (BoundaryClient::new(tx), BoundaryServer::new(rx, shared))
}
