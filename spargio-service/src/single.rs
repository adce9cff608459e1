//! [`ServeConnection`]: one connection accepted outside a [`Server`],
//! served by a protocol and a tower service, as hyper's
//! `serve_connection` does.
//!
//! [`Server`]: crate::Server

use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures_util::future::{select, Either};
use futures_util::FutureExt;
use spargio_rt::net::SocketStream;
use spargio_rt::sync::CancellationToken;
use spargio_rt::RuntimeHandle;
use tower_service::Service;

use crate::adaptive::AdaptiveTable;
use crate::builder::DEFAULT_SEND_TIMEOUT;
use crate::conn::take_proxy_header;
use crate::connection::{ConnInfo, Connection};
use crate::error::BoxError;
use crate::handler::{HandlerShared, Local, ServiceHandler};
use crate::placement::HandlerPlacement;
use crate::protocol::Protocol;
use crate::proxy::ProxyProtocol;
use crate::stats::{Counters, StatsHandle};

/// Serves one connection you accepted yourself (your own accept loop, a
/// socket handed over by another process, one end of a socket pair) with
/// a protocol and a tower service, without a [`Server`](crate::Server):
/// the counterpart of hyper's `http1::Builder::serve_connection`.
///
/// The service is called on the connection's task, inline (so it may be
/// `!Send`, `Rc` state and all); a panic in it fails only its request,
/// and a panic anywhere else in serving the connection (a response body
/// that panics) ends only this connection, with an error. Call
/// [`serve`](Self::serve) from a task that stays on its shard (one from
/// `spawn_local`, or `spawn_local_on` to spread connections over the
/// shards, as the second example does), as the server's connection tasks
/// do. Configure it once and clone it per connection: clones share the
/// counters of [`stats`](Self::stats) when it was called before.
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
///     let sc = ServeConnection::new(LengthDelimited::new());
///     let serving = spargio_rt::spawn_local(async move { sc.serve(ours, service).await });
///     let mut client = Client::new(theirs);
///     let reply = client.call(Bytes::from_static(b"hi")).await.unwrap();
///     assert_eq!(reply.unwrap(), Bytes::from_static(b"HI"));
///     drop(client); // the client leaves: the connection ends cleanly
///     serving.await.unwrap().unwrap();
/// })
/// .unwrap();
/// ```
///
/// A custom accept loop that spreads connections over the shards, with a
/// graceful shutdown:
///
/// ```no_run
/// use std::time::Duration;
/// use bytes::Bytes;
/// use spargio_rt::net::TcpListener;
/// use spargio_rt::sync::CancellationToken;
/// use spargio_rt::ShardId;
/// use spargio_service::codec::LengthDelimited;
/// use spargio_service::ServeConnection;
///
/// spargio_rt::run(|handle| async move {
///     let stop = CancellationToken::new();
///     let sc = ServeConnection::new(LengthDelimited::new())
///         .idle_timeout(Duration::from_secs(30))
///         .graceful_shutdown(stop.clone())
///         .shutdown_timeout(Duration::from_secs(10));
///     let listener = TcpListener::bind("127.0.0.1:9000").await.unwrap();
///     let mut turn = 0;
///     loop {
///         let Ok((stream, _peer)) = listener.accept().await else { continue };
///         let shard = ShardId(turn % handle.shard_count());
///         turn += 1;
///         let sc = sc.clone();
///         drop(handle.spawn_local_on(shard, move || async move {
///             let echo = tower::service_fn(|req: Bytes| async move {
///                 Ok::<_, std::convert::Infallible>(req)
///             });
///             let _ = sc.serve(stream, echo).await;
///         }));
///     }
/// })
/// .unwrap();
/// ```
#[must_use = "a ServeConnection does nothing until serve() is called"]
#[derive(Clone)]
pub struct ServeConnection<P> {
    protocol: P,
    idle_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    shutdown_timeout: Option<Duration>,
    closing: CancellationToken,
    counters: Option<Arc<Counters>>,
    proxy: Option<ProxyProtocol>,
}

/// Counters for one connection (or the clones of one `ServeConnection`):
/// a single slot each, as no other shard writes them.
fn single_counters() -> Arc<Counters> {
    // Clones may serve on every shard, of a runtime not known yet.
    Counters::shared()
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
            shutdown_timeout: None,
            closing: CancellationToken::new(),
            counters: None,
            proxy: None,
        }
    }

    /// Reads a PROXY protocol header at the start of the connection before
    /// serving it, as [`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)
    /// does: the protocol sees it in its [`ConnInfo::proxy`] (over HTTP,
    /// with `conn_info(true)`, so do the requests). A malformed, missing
    /// (required), cut or late header makes [`serve`](Self::serve) fail
    /// with what [`read_header`](crate::proxy::read_header) says (counted
    /// in [`ServerStats::proxy_refused`](crate::ServerStats::proxy_refused));
    /// the graceful-shutdown token ends the wait (`Ok`, nothing served).
    pub fn proxy_protocol(mut self, proxy: ProxyProtocol) -> Self {
        self.proxy = Some(proxy);
        self
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
    /// an idle one closes, a busy one answers its current request first;
    /// `serve` returns after the protocol's short linger for the client's
    /// close. A request the client sent that was not yet taken is not
    /// answered. Cancelling `token`'s parent works too, so one token can
    /// close many connections. Nothing bounds how long the request in
    /// progress may take (a handler, or a client that stops in the middle
    /// of one) unless [`shutdown_timeout`](Self::shutdown_timeout) does.
    pub fn graceful_shutdown(mut self, token: CancellationToken) -> Self {
        self.closing = token;
        self
    }

    /// How long the connection may go on once the graceful-shutdown token
    /// is cancelled; then it is cut (closed with whatever was in progress)
    /// and `serve` fails with `TimedOut`. Unset, it waits as long as the
    /// request in progress takes.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = Some(d);
        self
    }

    /// The counters (requests, failures, timeouts...) of the connections
    /// this serves, live while they are served; `accepted` and `active`
    /// stay 0, there being no listener. Clones made after this call count
    /// into the same counters.
    pub fn stats(&mut self) -> StatsHandle {
        StatsHandle(self.counters.get_or_insert_with(single_counters).clone())
    }

    /// Serves `stream` (a [`TcpStream`](spargio_rt::net::TcpStream),
    /// [`UnixStream`](spargio_rt::net::UnixStream) or [`SocketStream`])
    /// with `service` until the connection ends: the peer closes it, the
    /// protocol closes it (after a malformed request, say), a timeout
    /// closes it, or [`graceful_shutdown`](Self::graceful_shutdown)'s
    /// token is cancelled and the request in progress is answered.
    ///
    /// # Errors
    /// `Unsupported` when not called on a shard of a spargio-rt runtime
    /// (the stream is closed); `TimedOut` when the
    /// [`shutdown_timeout`](Self::shutdown_timeout) cut the connection;
    /// an error saying so when serving it panicked (a response body's
    /// panic); otherwise what the protocol returns (I/O errors of the
    /// connection).
    pub async fn serve<S>(&self, stream: impl Into<SocketStream>, service: S) -> io::Result<()>
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
        let counters = self.counters.clone().unwrap_or_else(single_counters);
        // Inline placement never consults the adaptive table, and spawns
        // no handler.
        let shared = Arc::new(HandlerShared {
            placement: HandlerPlacement::Inline,
            adaptive: AdaptiveTable::unused(),
            request_timeout: self.request_timeout,
            counters: counters.clone(),
            handle,
            spawned: Arc::default(),
        });
        let mut stream = stream;
        let mut info = ConnInfo::of_stream(0, shard, &stream, None);
        let taken = take_proxy_header(&mut stream, self.proxy, &mut info, &self.closing, &counters);
        if !taken.await? {
            return Ok(()); // the graceful-shutdown token ended the wait
        }
        let conn = Connection::new(info, self.idle_timeout, self.closing.clone(), counters)
            .with_send_timeout(self.send_timeout);
        let handler = ServiceHandler::<_, Local>::new(service, shard, shared);
        let serving =
            AssertUnwindSafe(self.protocol.serve_connection(stream, handler, conn)).catch_unwind();
        let cut = async {
            self.closing.cancelled().await;
            match self.shutdown_timeout {
                Some(d) => spargio_rt::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        futures_util::pin_mut!(serving, cut);
        match select(serving, cut).await {
            Either::Left((Ok(res), _)) => res,
            Either::Left((Err(_), _)) => Err(io::Error::other(
                "serving the connection panicked (a response body, say); the connection is closed",
            )),
            Either::Right(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was cut at its shutdown timeout",
            )),
        }
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
