//! The seam between a wire protocol and the server: [`Protocol`] serves one
//! connection, handing each decoded request to a [`Handler`].

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;

use spargio_rt::net::SocketStream;

use crate::connection::Connection;
use crate::error::HandlerError;

/// Which measurements a request counts towards under
/// [`HandlerPlacement::Adaptive`](crate::HandlerPlacement::Adaptive): a
/// protocol keys requests by route (HTTP: the path's first segments), or
/// uses [`RouteKey::DEFAULT`] to treat the whole service as one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RouteKey(pub u64);

impl RouteKey {
    /// The one route of a service that does not key its requests.
    pub const DEFAULT: RouteKey = RouteKey(0);

    /// A key from any hashable value (a path, a method name, a message type).
    ///
    /// ```
    /// use spargio_service::RouteKey;
    /// assert_eq!(RouteKey::of("/users"), RouteKey::of("/users"));
    /// assert_ne!(RouteKey::of("/users"), RouteKey::of("/orders"));
    /// ```
    pub fn of<T: Hash + ?Sized>(value: &T) -> RouteKey {
        let mut h = Fnv1a::default();
        value.hash(&mut h);
        RouteKey(h.finish())
    }
}

/// FNV-1a: keys are computed on every request from short route names,
/// where SipHash costs more than the rest of the lookup. The names may be
/// a client's (an HTTP path's first segment); the adaptive table picks a
/// key's slots with a hash keyed per server and tags each slot with its
/// route, so a client gains nothing from FNV's known constants short of
/// a full 64-bit match with a route's key.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The server's service as a protocol sees it: readiness, then calls.
///
/// The server builds one per connection around the user's tower `Service`,
/// adding handler placement (inline, stealable or adaptive), the request
/// timeout, panic containment and the request counters. Protocols are
/// written once against this trait and work under both
/// [`Server::serve`](crate::Server::serve) and
/// [`Server::serve_local`](crate::Server::serve_local).
pub trait Handler<Req>: 'static {
    /// The service's response.
    type Response: 'static;

    /// Waits until the service accepts a request (`poll_ready`). A protocol
    /// calls it once a request has arrived and before it reads further, so
    /// a service that is not ready stops the connection from reading:
    /// backpressure reaches the client through TCP instead of piling up in
    /// buffers. Not before a request arrives: an idle keep-alive connection
    /// would then hold what `poll_ready` reserves (a concurrency permit, a
    /// rate-limit slot) for as long as it stays idle. (Both the
    /// length-delimited codec and HTTP ask once a request is here.) An error (or a contained panic) fails the request that
    /// waits: the server's handler counts it as a request and a failed one
    /// in [`ServerStats`](crate::ServerStats).
    fn ready(&mut self) -> impl Future<Output = Result<(), HandlerError>>;

    /// Calls the service with `req` (after [`ready`](Self::ready)). The
    /// returned future does not borrow the handler, so a pipelining protocol
    /// may keep several in flight.
    fn call(
        &mut self,
        route: RouteKey,
        req: Req,
    ) -> impl Future<Output = Result<Self::Response, HandlerError>> + 'static;
}

/// A wire protocol: reads requests from a connection, hands them to the
/// handler, writes the responses.
///
/// The future runs on the connection's session shard, pinned: every read
/// and write of `stream` stays on that shard's ring. `stream` is a TCP or
/// a Unix socket connection, as the server listens
/// ([`SocketStream::is_unix`] tells; reads and writes are the same
/// either way). It should call
/// [`Connection::idle`] around the wait for a new request (so idle timeouts
/// and graceful shutdown close it), call [`Handler::ready`] once a request
/// has arrived and before reading further, and stop after the current response once
/// [`Connection::is_closing`] is true. Malformed input gets the protocol's
/// error reply and either a clean close or a sound connection, never a
/// panic.
pub trait Protocol: Clone + Send + Sync + 'static {
    /// A decoded request.
    type Request: 'static;
    /// What the service answers with.
    type Response: 'static;

    /// Serves one connection until it closes.
    fn serve_connection<H>(
        &self,
        stream: SocketStream,
        handler: H,
        conn: Connection,
    ) -> impl Future<Output = io::Result<()>>
    where
        H: Handler<Self::Request, Response = Self::Response>;
}
