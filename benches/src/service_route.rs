//! [`RouteByKind`]: the length-delimited protocol with requests keyed by
//! their payload's kind byte, so [`HandlerPlacement::Adaptive`] learns the
//! heavy requests as a route of their own.
//!
//! `LengthDelimited` keys every request with `RouteKey::DEFAULT` and has no
//! way to key them by payload, so under Adaptive one cheap-or-heavy service
//! is one route. This wrapper uses only the public `Protocol` / `Handler`
//! traits: it serves the connection with `LengthDelimited` and rewrites
//! the route key on the way to the server's handler.
//!
//! [`HandlerPlacement::Adaptive`]: spargio_service::HandlerPlacement::Adaptive

use bytes::Bytes;
use spargio_rt::net::SocketStream;
use spargio_service::codec::LengthDelimited;
use spargio_service::{Connection, Handler, HandlerError, Protocol, RouteKey};
use std::future::Future;
use std::io;

/// `LengthDelimited`, with each request's route keyed by `payload[0] + 1`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteByKind(LengthDelimited);

impl RouteByKind {
    /// Over `LengthDelimited::new()`.
    pub fn new() -> RouteByKind {
        RouteByKind(LengthDelimited::new())
    }
}

impl Protocol for RouteByKind {
    type Request = Bytes;
    type Response = Bytes;

    fn serve_connection<H>(
        &self,
        stream: SocketStream,
        handler: H,
        conn: Connection,
    ) -> impl Future<Output = io::Result<()>>
    where
        H: Handler<Bytes, Response = Bytes>,
    {
        self.0.serve_connection(stream, KeyByKind(handler), conn)
    }
}

/// The server's handler, called with the kind byte's route.
struct KeyByKind<H>(H);

impl<H: Handler<Bytes>> Handler<Bytes> for KeyByKind<H> {
    type Response = H::Response;

    fn ready(&mut self) -> impl Future<Output = Result<(), HandlerError>> {
        self.0.ready()
    }

    fn call(
        &mut self,
        _route: RouteKey,
        req: Bytes,
    ) -> impl Future<Output = Result<H::Response, HandlerError>> + 'static {
        // Kind + 1: every request has a route of its own kind, none is
        // `RouteKey::DEFAULT` (the "no route" key).
        let route = RouteKey(u64::from(req.first().copied().unwrap_or(0)) + 1);
        self.0.call(route, req)
    }
}
