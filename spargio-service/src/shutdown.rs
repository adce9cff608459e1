//! Graceful shutdown: the signals a server's tasks watch, and the report
//! `serve` returns.

use std::sync::Arc;

use event_listener::Event;
use spargio_rt::sync::CancellationToken;

use crate::spawned::SpawnedHandlers;
use crate::stats::{Counter, Counters};

/// State every task of one running server shares.
pub(crate) struct ServerState {
    /// Cancelled when shutdown starts: accept loops stop, idle connections
    /// close, busy ones close after their current response.
    pub(crate) closing: CancellationToken,
    /// Cancelled at the shutdown deadline: connections still open are cut.
    pub(crate) force: CancellationToken,
    /// Connections cut at the deadline.
    pub(crate) cut: Counter,
    /// Connections the deadline ended while they only lingered.
    pub(crate) ended_lingering: Counter,
    /// Connections whose serving panicked after shutdown started.
    pub(crate) failed: Counter,
    /// Connections a send timeout ended after shutdown started.
    pub(crate) send_timeouts: Counter,
    /// Connections that ended before shutdown started.
    pub(crate) ended_before_shutdown: Counter,
    /// Notified whenever a connection ends.
    pub(crate) conn_ended: Event,
    /// The server's spawned handler futures that still exist: `serve`
    /// returns once they are gone too.
    pub(crate) spawned: Arc<SpawnedHandlers>,
    pub(crate) counters: Arc<Counters>,
}

impl ServerState {
    pub(crate) fn new(closing: CancellationToken, counters: Arc<Counters>) -> Arc<ServerState> {
        Arc::new(ServerState {
            closing,
            force: CancellationToken::new(),
            cut: Counter::default(),
            ended_lingering: Counter::default(),
            failed: Counter::default(),
            send_timeouts: Counter::default(),
            ended_before_shutdown: Counter::default(),
            conn_ended: Event::new(),
            spawned: Arc::default(),
            counters,
        })
    }

    /// Whether the shutdown deadline already cut the connections (or the
    /// serve future was dropped); if so, counts one more connection cut
    /// before its task ran, which then builds no service for it.
    pub(crate) fn cut_before_start(&self) -> bool {
        let forced = self.force.is_cancelled();
        if forced {
            self.cut.add(1);
        }
        forced
    }
}

/// Starts a server's graceful shutdown from anywhere
/// ([`Server::shutdown_handle`](crate::Server::shutdown_handle)).
#[derive(Clone, Debug)]
pub struct ShutdownHandle(pub(crate) CancellationToken);

impl ShutdownHandle {
    /// Stops accepting, lets in-flight requests finish and closes idle
    /// connections; connections still open at the shutdown timeout are cut.
    pub fn shutdown(&self) {
        self.0.cancel();
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// How a server's shutdown went, returned by `serve` when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when shutdown started.
    pub open_at_start: u64,
    /// Of those, connections whose work ended before the deadline: closed
    /// by themselves (idle ones, and busy ones after their last response),
    /// or ended by the deadline while only lingering (every reply written;
    /// see [`Connection::lingering`](crate::Connection::lingering)). The
    /// rest are in [`cut`](Self::cut), [`failed`](Self::failed) and
    /// [`send_timeouts`](Self::send_timeouts).
    pub closed_gracefully: u64,
    /// Of those, connections the deadline ended while they lingered: every
    /// reply written, only draining what the client still sent before the
    /// close (so that it reads its replies rather than a reset).
    pub ended_lingering: u64,
    /// Connections still at work at the deadline, closed by force.
    pub cut: u64,
    /// Connections that ended during the shutdown because serving them
    /// panicked (the protocol, or a response body it was sending): neither
    /// graceful nor cut. Also counted in
    /// [`ServerStats::protocol_panics`](crate::ServerStats::protocol_panics).
    pub failed: u64,
    /// Connections that ended during the shutdown because the client took
    /// no data for the send timeout, so replies went undelivered: neither
    /// graceful nor cut. Also counted in
    /// [`ServerStats::send_timeouts`](crate::ServerStats::send_timeouts).
    pub send_timeouts: u64,
    /// Requests in flight on the cut connections: handed to the service,
    /// or arrived and waiting for it to be ready. A request whose
    /// service has answered is no longer counted, even while its reply is
    /// still being written when the cut comes (the connection is in
    /// [`cut`](Self::cut)).
    pub requests_cut: u64,
}
