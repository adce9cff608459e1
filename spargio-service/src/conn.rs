//! One connection's life on its session shard: counted open, served by the
//! protocol, cut at the shutdown deadline, counted closed.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_lock::SemaphoreGuardArc;
use futures_util::future::{select, Either};
use futures_util::FutureExt;
use spargio_rt::net::SocketStream;
use spargio_rt::sync::CancellationToken;
use spargio_rt::ShardId;

use crate::conn_end::ConnEnd;
use crate::connection::{ConnInfo, Connection};
use crate::proxy::ProxyProtocol;
use crate::shutdown::ServerState;
use crate::stats::Counters;

/// Holds a connection's place: counted open from accept until dropped
/// (also when its task never got to run), and its `max_connections` permit.
pub(crate) struct ConnGuard {
    state: Arc<ServerState>,
    shard: ShardId,
    _permit: SemaphoreGuardArc,
}

impl ConnGuard {
    pub(crate) fn new(state: Arc<ServerState>, shard: ShardId, permit: SemaphoreGuardArc) -> Self {
        let c = &state.counters;
        c.accepted.add(1);
        c.active.add(1);
        c.per_shard_accepted[shard.0].add(1);
        c.per_shard_active[shard.0].add(1);
        ConnGuard {
            state,
            shard,
            _permit: permit,
        }
    }

    pub(crate) fn shard(&self) -> ShardId {
        self.shard
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if !self.state.closing.is_cancelled() {
            self.state.ended_before_shutdown.add(1);
        }
        let c = &self.state.counters;
        c.per_shard_active[self.shard.0].sub(1);
        c.active.sub(1);
        self.state.conn_ended.notify(usize::MAX);
    }
}

/// What the accept loop hands to the session shard.
pub(crate) struct Accepted {
    pub(crate) stream: SocketStream,
    pub(crate) id: u64,
    pub(crate) guard: ConnGuard,
    /// The connection's local address when the accept loop knows it (its
    /// listener is bound to one IP); `None`: ask the socket.
    pub(crate) local_addr: Option<SocketAddr>,
}

impl Accepted {
    /// The connection's facts, read on the session shard.
    pub(crate) fn info(&self) -> ConnInfo {
        ConnInfo::of_stream(self.id, self.guard.shard(), &self.stream, self.local_addr)
    }
}

/// Reads the connection's PROXY header when `proxy` asks for one, into
/// `info`, and counts it: `Ok(true)` to serve on; `Ok(false)` when
/// `closing` was cancelled while it waited (the connection is closed as an
/// idle one would be); an error (counted in `proxy_refused`) when the
/// header was malformed, missing, cut short or late.
pub(crate) async fn take_proxy_header(
    stream: &mut SocketStream,
    proxy: Option<ProxyProtocol>,
    info: &mut ConnInfo,
    closing: &CancellationToken,
    counters: &Counters,
) -> io::Result<bool> {
    let Some(proxy) = proxy else {
        return Ok(true);
    };
    let read = crate::proxy::read_header(stream, proxy);
    let cancelled = closing.cancelled();
    futures_util::pin_mut!(read, cancelled);
    let Either::Left((read, _)) = select(read, cancelled).await else {
        return Ok(false);
    };
    match read {
        Ok(header) => {
            if header.is_some() {
                counters.proxy_headers.add(1);
            }
            info.proxy = header;
            Ok(true)
        }
        Err(e) => {
            counters.proxy_refused.add(1);
            Err(e)
        }
    }
}

/// Runs `serve` (the protocol on this connection) until it ends, panics or
/// the shutdown deadline cuts it; then releases the connection's place.
///
/// `end` holds the connection's end flags: a connection the deadline ends
/// while it lingers ([`Connection::lingering`]: every reply written, only
/// draining input before its close) is not counted as cut, and one that
/// a send timeout ended during the shutdown is not counted as graceful.
pub(crate) async fn run_connection<F>(
    state: Arc<ServerState>,
    guard: ConnGuard,
    end: Arc<ConnEnd>,
    serve: F,
) where
    F: Future<Output = io::Result<()>>,
{
    let (cut, panicked) = {
        // A panic while serving (in the protocol, or in a response body it
        // polls) ends this connection only; it is counted, not passed on.
        let serve = AssertUnwindSafe(serve).catch_unwind();
        let forced = state.force.cancelled();
        futures_util::pin_mut!(serve, forced);
        match select(serve, forced).await {
            Either::Left((Ok(_), _)) => (false, false),
            Either::Left((Err(_), _)) => (false, true),
            Either::Right(((), _)) => (true, false),
        }
        // `serve` (the socket, the service, its spawned handlers) is
        // dropped here, before the connection's place is given back.
    };
    if panicked {
        state.counters.protocol_panics.add(1);
        if state.closing.is_cancelled() {
            // Not a graceful end of a connection the shutdown waited for.
            state.failed.add(1);
        }
    }
    if !cut && !panicked && end.send_timed_out() && state.closing.is_cancelled() {
        // Its replies were not all delivered.
        state.send_timeouts.add(1);
    }
    if cut {
        if end.is_lingering() {
            state.ended_lingering.add(1);
        } else {
            state.cut.add(1);
        }
    }
    drop(guard);
}

/// The [`Connection`] a protocol gets for `info`; `end` holds the flags [`run_connection`] reads.
pub(crate) fn connection(
    state: &ServerState,
    info: ConnInfo,
    timeouts: ConnTimeouts,
    end: Arc<ConnEnd>,
) -> Connection {
    Connection::new(
        info,
        timeouts.idle,
        state.closing.child_token(),
        state.counters.clone(),
    )
    .with_send_timeout(timeouts.send)
    .with_end_flags(end)
}

/// The timeouts every connection of a server gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnTimeouts {
    /// How long a connection may wait for its next request.
    pub(crate) idle: Option<std::time::Duration>,
    /// How long one write to the peer may take.
    pub(crate) send: Option<std::time::Duration>,
}
