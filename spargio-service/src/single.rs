//! [`ServeConnection`]: one connection accepted outside a [`Server`],
//! served by a protocol and a tower service, as hyper's
//! `serve_connection` does.
//!
//! [`Server`]: crate::Server

use std::io;
use std::sync::Arc;
use std::time::Duration;

use spargio_rt::net::SocketStream;
use spargio_rt::sync::CancellationToken;
use spargio_rt::RuntimeHandle;
use tower_service::Service;

use crate::adaptive::AdaptiveTable;
use crate::builder::DEFAULT_SEND_TIMEOUT;
use crate::connection::{ConnInfo, Connection};
use crate::error::BoxError;
use crate::handler::{HandlerShared, Local, ServiceHandler};
use crate::placement::{AdaptiveConfig, HandlerPlacement};
use crate::protocol::Protocol;
use crate::stats::{Counters, StatsHandle};

/// Serves one connection you accepted yourself (your own accept loop, a
/// socket handed over by another process, one end of a socket pair) with
/// a protocol and a tower service, without a [`Server`](crate::Server):
/// the counterpart of hyper's `http1::Builder::serve_connection`.
///
/// The service is called on the connection's task, inline (so it may be
/// `!Send`, `Rc` state and all); a panic in it fails only its request.
/// Call [`serve`](Self::serve) from a task that stays on its shard (one
/// from `spawn_local`), as the server's connection tasks do.
///
/// ```
/// use bytes::Bytes;
/// use spargio_rt::net::UnixStream;
/// use spargio_service::codec::{Client, LengthDelimited};
/// use spargio_service::ServeConnection;
///
/// spargio_rt::run(|_| async {
///     let (ours, theirs) = UnixStream::pair().unwrap();
///     let service = tower::service_fn(|req: Bytes| async move {
///         Ok::<_, std::convert::Infallible>(Bytes::from(req.to_ascii_uppercase()))
///     });
///     let serving = spargio_rt::spawn_local(
///         ServeConnection::new(LengthDelimited::new()).serve(ours, service),
///     );
///     let mut client = Client::new(theirs);
///     let reply = client.call(Bytes::from_static(b"hi")).await.unwrap();
///     assert_eq!(reply.unwrap(), Bytes::from_static(b"HI"));
///     drop(client); // the client leaves: the connection ends cleanly
///     serving.await.unwrap().unwrap();
/// })
/// .unwrap();
/// ```
#[must_use = "a ServeConnection does nothing until serve() is called"]
pub struct ServeConnection<P> {
    protocol: P,
    idle_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    closing: CancellationToken,
    counters: Option<Arc<Counters>>,
}

impl<P: Protocol> ServeConnection<P> {
    /// Serves with `protocol`; no idle or request timeout, the server's
    /// default send timeout (60 s).
    pub fn new(protocol: P) -> Self {
        ServeConnection {
            protocol,
            idle_timeout: None,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            request_timeout: None,
            closing: CancellationToken::new(),
            counters: None,
        }
    }

    /// Closes the connection once it has waited this long for a request
    /// (see [`ServerBuilder::idle_timeout`](crate::ServerBuilder::idle_timeout)).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// The longest one write to the peer may take; `None` turns it off (see
    /// [`ServerBuilder::send_timeout`](crate::ServerBuilder::send_timeout)).
    pub fn send_timeout(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.send_timeout = limit.into();
        self
    }

    /// Drops a request whose handler runs longer than this; the protocol
    /// answers it with its timeout error.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = Some(d);
        self
    }

    /// A token that, once cancelled, asks the connection to close after
    /// the request in progress (a graceful shutdown of this connection):
    /// an idle connection closes at once, a busy one answers its current
    /// request first. Cancelling `token`'s parent works too, so one token
    /// can close many connections.
    pub fn graceful_shutdown(mut self, token: CancellationToken) -> Self {
        self.closing = token;
        self
    }

    /// The connection's counters (requests, failures, timeouts...), live
    /// while it is served; its `accepted`/`active` counts stay 0, there
    /// being no listener.
    pub fn stats(&mut self) -> StatsHandle {
        let shards = RuntimeHandle::try_current().map_or(1, |h| h.shard_count());
        let counters = self
            .counters
            .get_or_insert_with(|| Counters::new(shards))
            .clone();
        StatsHandle(counters)
    }

    /// Serves `stream` (a [`TcpStream`](spargio_rt::net::TcpStream),
    /// [`UnixStream`](spargio_rt::net::UnixStream) or [`SocketStream`])
    /// with `service` until the connection ends: the peer closes it, the
    /// protocol closes it (after a malformed request, say), a timeout
    /// closes it, or [`graceful_shutdown`](Self::graceful_shutdown)'s
    /// token is cancelled and the request in progress is answered.
    ///
    /// # Errors
    /// `Unsupported` when not called on a shard of a spargio-rt runtime;
    /// otherwise what the protocol returns (I/O errors of the connection).
    pub async fn serve<S>(self, stream: impl Into<SocketStream>, service: S) -> io::Result<()>
    where
        S: Service<P::Request, Response = P::Response> + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError> + 'static,
    {
        let stream = stream.into();
        let handle = RuntimeHandle::try_current();
        let Some((handle, shard)) = handle.and_then(|h| h.current_shard().map(|s| (h, s))) else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ServeConnection::serve runs on a spargio-rt shard (spawn_local it)",
            ));
        };
        let shards = handle.shard_count();
        let counters = self.counters.unwrap_or_else(|| Counters::new(shards));
        let shared = Arc::new(HandlerShared {
            placement: HandlerPlacement::Inline,
            adaptive: AdaptiveTable::new(AdaptiveConfig::default(), shards),
            request_timeout: self.request_timeout,
            counters: counters.clone(),
            handle,
        });
        let info = ConnInfo::of_stream(0, shard, &stream, None);
        let conn = Connection::new(info, self.idle_timeout, self.closing, counters)
            .with_send_timeout(self.send_timeout);
        let handler = ServiceHandler::<_, Local>::new(service, shard, shared);
        self.protocol.serve_connection(stream, handler, conn).await
    }
}

/// Serves one connection with `protocol` and `service` using
/// [`ServeConnection`]'s defaults: `ServeConnection::new(protocol).serve(stream, service)`.
pub async fn serve_connection<P, S>(
    protocol: P,
    stream: impl Into<SocketStream>,
    service: S,
) -> io::Result<()>
where
    P: Protocol,
    S: Service<P::Request, Response = P::Response> + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError> + 'static,
{
    ServeConnection::new(protocol).serve(stream, service).await
}
