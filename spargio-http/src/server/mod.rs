//! [`Http`]: HTTP/1.1 as a [`spargio_service::Protocol`], so a
//! [`spargio_service::Server`] serves tower services over it.

mod config;
mod conn;
mod error_page;
mod feed;
mod panic_safe_body;
mod request_body;
mod respond;
mod ring_recv;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body as HttpBody;
use spargio_rt::net::SocketStream;
use spargio_service::{BoxError, Connection, Handler, Protocol};

use crate::body::Body;
use crate::h1::Limits;
use crate::tls::{ServerTlsStream, TlsAcceptor, TlsError, TlsInfo, ALPN_HTTP_11};
use crate::transport::{Transport, TransportWrite};
use config::HttpConfig;
use ring_recv::RingRecv;

/// The HTTP/1.1 protocol for [`spargio_service::Server`]: parses requests
/// on each connection's session shard, hands them to the tower service as
/// `http::Request<`[`Body`]`>`, and writes its `http::Response<B>` for any
/// body type `B` (axum's, tower-http's, [`Body`], `Full<Bytes>`...).
///
/// Keep-alive, pipelining (answered in order), chunked bodies both ways,
/// trailers, `Expect: 100-continue`, upgrades, and strict framing with a
/// 4xx and a close for anything malformed. `B` is inferred from the
/// service.
///
/// ```no_run
/// use spargio_http::{Body, Http};
/// use spargio_service::Server;
///
/// # fn main() -> std::io::Result<()> {
/// spargio_rt::run(|handle| async move {
///     let service = tower::service_fn(|_req: http::Request<Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("hello\n")))
///     });
///     let server = Server::builder().bind(&handle, "127.0.0.1:8080")?;
///     server.serve_service(Http::new(), service).await?;
///     Ok(())
/// })?
/// # }
/// ```
pub struct Http<B = Body> {
    cfg: Arc<HttpConfig>,
    tls: Option<TlsAcceptor>,
    _body: PhantomData<fn() -> B>,
}

impl<B> Clone for Http<B> {
    fn clone(&self) -> Http<B> {
        Http {
            cfg: self.cfg.clone(),
            tls: self.tls.clone(),
            _body: PhantomData,
        }
    }
}

impl<B> fmt::Debug for Http<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("config", &self.cfg)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl<B> Default for Http<B> {
    fn default() -> Http<B> {
        Http::new()
    }
}

impl<B> Http<B> {
    /// The protocol with default limits: 100 headers, 64 KiB heads, 8 KiB
    /// URIs, a 30 s header-read timeout, no body size limit, keep-alive on.
    pub fn new() -> Http<B> {
        Http {
            cfg: Arc::new(HttpConfig::default()),
            tls: None,
            _body: PhantomData,
        }
    }

    fn cfg_mut(&mut self) -> &mut HttpConfig {
        Arc::make_mut(&mut self.cfg)
    }

    /// The most request headers accepted (default 100); more get `431`.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.cfg_mut().limits.max_headers = n;
        self
    }

    /// The largest request head (request line and headers) accepted, in
    /// bytes (default 64 KiB); larger gets `431`.
    pub fn max_head_bytes(mut self, n: usize) -> Self {
        self.cfg_mut().limits.max_head_bytes = n;
        self
    }

    /// The longest request target accepted (default 8 KiB); longer gets
    /// `414`.
    pub fn max_uri_len(mut self, n: usize) -> Self {
        self.cfg_mut().limits.max_uri_len = n;
        self
    }

    /// Refuses request bodies larger than `n` bytes: `413` when
    /// `Content-Length` says so, a body error (and a close) when a chunked
    /// body grows past it. Off by default.
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.cfg_mut().max_body = Some(n);
        self
    }

    /// All request head limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.cfg_mut().limits = limits;
        self
    }

    /// How long a request head may take to arrive, from accept or from the
    /// previous response (default 30 s). A client that has sent part of a
    /// head gets `408` and a close (`400` if what it sent is already
    /// malformed); an idle one is closed quietly. Body reads that stall this
    /// long fail the body.
    ///
    /// It also bounds how long a response head waits for its body when the
    /// client asked for `100 Continue` and the response body holds the
    /// request body unread (see [`Body`]): if that body has neither read
    /// the request body, dropped it, nor given a frame by then, the head
    /// goes out saying the connection closes, and no `100` follows.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.cfg_mut().header_read_timeout = d;
        self
    }

    /// Keep connections open between requests (default on). Off: every
    /// response says `Connection: close`.
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.cfg_mut().keep_alive = on;
        self
    }

    /// How many unread request body bytes are drained after a response so
    /// the connection can be reused (default 64 KiB); above it the
    /// connection closes instead. The whole drain must end within 2 s.
    ///
    /// A response is sent as soon as it is ready, even while the request
    /// body is still arriving. If the service dropped the body (or failed)
    /// before the client sent all of it, the response says
    /// `Connection: close` and the rest is not waited for. It also says so
    /// when what is left of a `Content-Length` body is over this limit and
    /// the response cannot be what reads it: nothing has asked for any of
    /// the body (the service keeps it unread, and the response's body does
    /// not read it either when first polled), or the service read part of
    /// it and answers with no body or one that came whole when first
    /// polled. The request body is fed only until the response is written:
    /// a task the service handed the body to gets the rest only while the
    /// response goes out, then sees the body end in an error.
    ///
    /// What only turns out after the head went out cannot be in it: a
    /// streaming response body that does not read the rest after all, a
    /// chunked body whose rest proves longer than this limit, a client
    /// that sends the rest too slowly or not at all. The response then
    /// promised keep-alive and arrives whole, and the connection closes
    /// after it, as an idle keep-alive connection may at any time: a
    /// request the client sends on it next fails with the connection
    /// closed, to be retried on a new one.
    pub fn drain_limit(mut self, n: u64) -> Self {
        self.cfg_mut().drain_limit = n;
        self
    }

    /// Serves HTTPS: every connection starts with a TLS handshake through
    /// `acceptor` (ALPN `http/1.1`, SNI through the rustls config's
    /// resolver), bounded by the acceptor's handshake timeout. A failed or
    /// timed-out handshake closes that connection only.
    ///
    /// A connection whose handshake agreed through ALPN on a protocol
    /// other than `http/1.1` (possible when the acceptor's configuration
    /// lists `h2` too) is closed right after it with `close_notify`, and no
    /// HTTP bytes: this server speaks only HTTP/1.1. With `h2` listed first,
    /// rustls picks it for every client that offers it, so list only
    /// `http/1.1` (the default).
    ///
    /// ```no_run
    /// # fn demo(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), spargio_http::tls::TlsError> {
    /// use spargio_http::{tls::TlsAcceptor, Http};
    /// let http: Http = Http::new().tls(TlsAcceptor::from_pem(cert_pem, key_pem)?);
    /// # let _ = http; Ok(())
    /// # }
    /// ```
    pub fn tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Response bytes buffered before they are written (default 64 KiB):
    /// the bound that makes a slow reader hold back the response body.
    pub fn write_buffer(mut self, n: usize) -> Self {
        self.cfg_mut().write_buffer = n.max(1);
        self
    }

    /// Read plain (TCP or Unix socket) connections through one multishot receive each, into
    /// a ring of provided buffers per shard (512 × 4 KiB, shared by every
    /// connection of the shard), instead of one receive per read (default
    /// off). Each arrival is copied into the connection's read buffer and
    /// its ring buffer handed straight back. A connection leaves at most 4
    /// received buffers waiting (beyond that its receive pauses and the data
    /// waits in the socket), and a read that finds the ring dry reads the
    /// socket directly, so connections that stop reading cannot stall the
    /// others. An upgrade hands over every byte already received. TLS
    /// connections always read one receive at a time.
    ///
    /// Off by default: on our 2-core benchmarks it measured within noise of
    /// one receive per read (plaintext at 16 and 256 connections,
    /// pipelined, connection churn), with a lower p99 at 256 connections in
    /// three runs of four.
    pub fn multishot_reads(mut self, on: bool) -> Self {
        self.cfg_mut().multishot_reads = on;
        self
    }

    /// Puts the connection's [`ConnInfo`](spargio_service::ConnInfo) (its
    /// peer, local address, Unix credentials, PROXY header, connection id
    /// and shard) in every request's extensions, where axum's
    /// `Extension<ConnInfo>` extractor (or `req.extensions().get()`) finds
    /// it: axum's `ConnectInfo` without a make-service, and the way a
    /// service under [`Server::serve_local`](spargio_service::Server::serve_local),
    /// which is built per shard and never sees a connection, learns who
    /// it serves. Over TLS, the handshake's [`TlsInfo`] (SNI name, ALPN,
    /// the client's certificates) goes in too. Off by default (it costs an
    /// extensions map per request).
    ///
    /// ```
    /// use axum::{routing::get, Extension, Router};
    /// use spargio_http::Http;
    /// use spargio_service::ConnInfo;
    ///
    /// let app: Router = Router::new().route(
    ///     "/whoami",
    ///     get(|Extension(info): Extension<ConnInfo>| async move {
    ///         format!("{:?}", info.client_addr())
    ///     }),
    /// );
    /// let http: Http<axum::body::Body> = Http::new().conn_info(true);
    /// // server.serve_local(http, move |_shard| app.clone()) on a `Server`
    /// # let _ = (app, http);
    /// ```
    pub fn conn_info(mut self, on: bool) -> Self {
        self.cfg_mut().conn_info = on;
        self
    }
}

impl<B> Protocol for Http<B>
where
    B: HttpBody + 'static,
    B::Error: Into<BoxError>,
{
    type Request = Request<Body>;
    type Response = Response<B>;

    async fn serve_connection<H>(
        &self,
        stream: SocketStream,
        handler: H,
        conn: Connection,
    ) -> std::io::Result<()>
    where
        H: Handler<Request<Body>, Response = Response<B>>,
    {
        match &self.tls {
            None if self.cfg.multishot_reads => {
                conn::serve(RingRecv(stream), handler, &conn, &self.cfg, None).await
            }
            None => conn::serve(stream, handler, &conn, &self.cfg, None).await,
            Some(acceptor) => match conn.idle(acceptor.accept(stream)).await {
                Some(Ok(tls)) if speaks_other_protocol(&tls) => {
                    conn.record_bad_request();
                    let (_, mut writer) = tls.split();
                    let _ = conn.send_watch().bound(writer.shutdown()).await;
                    Ok(())
                }
                Some(Ok(tls)) => {
                    let info = self.cfg.conn_info.then(|| TlsInfo::new(tls.connection()));
                    conn::serve(tls, handler, &conn, &self.cfg, info).await
                }
                // A failed handshake is the client's problem (a scanner, a
                // wrong certificate, a timeout); the server goes on. Only
                // TLS the server refused counts as a bad request: a client
                // that connects and leaves (a TCP health check) or stalls
                // counts as nothing, as on plain HTTP.
                Some(Err(TlsError::Handshake(e))) => {
                    // An alert the client sent (it refused our
                    // certificate, say) is the client's choice, not bad
                    // TLS.
                    if !matches!(e, rustls::Error::AlertReceived(_)) {
                        conn.record_bad_request();
                    }
                    Ok(())
                }
                Some(Err(_)) => Ok(()),
                None => Ok(()),
            },
        }
    }
}

/// Whether the client and server agreed through ALPN on a protocol other
/// than HTTP/1.1 (`h2` listed in the server's configuration, say): HTTP/1.1
/// bytes sent into it would be garbage to the client.
fn speaks_other_protocol(tls: &ServerTlsStream) -> bool {
    tls.alpn_protocol().is_some_and(|p| p != ALPN_HTTP_11)
}
