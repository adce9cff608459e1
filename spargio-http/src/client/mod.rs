//! [`Client`]: HTTP/1.1 requests over TCP and TLS, with keep-alive
//! connections pooled per shard.
//!
//! Each request runs as a task pinned to the shard that made it (the shard
//! whose thread first polls the request future): that task owns the
//! connection, so its reads and writes go through one ring, and it takes
//! and returns idle connections from that shard's own pool. The future
//! [`Client::request`] returns only waits for that task's answer, so it is
//! `Send` and can be awaited in a stealable task (an axum handler, say),
//! whatever shard it moves to.
//!
//! [`Client`] is also a tower `Service<Request<B>>` ([`ResponseFuture`]), so
//! client-side middleware (tower's concurrency limit, spargio-service's
//! runtime-native layers, tower-http's `FollowRedirect`, `Decompression`,
//! `SetRequestHeader`, `Trace`) wraps it unchanged.

mod builder;
mod connect;
mod error;
mod exchange;
mod no_proxy;
mod oneshot;
mod pool;
mod proxy;
mod proxy_env;
mod service;
mod switch;
mod target;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use http::{Request, Response, Uri};
use http_body::Body as HttpBody;
use spargio_rt::{JoinHandle, RuntimeHandle, ShardId};
use spargio_service::BoxError;

use crate::body::Body;
use crate::h1::connection_has_token;
use crate::tls::TlsConnector;
pub use builder::ClientBuilder;
use builder::Config;
pub use error::ClientError;
pub use no_proxy::NoProxy;
use pool::Pool;
pub use proxy::{InvalidProxy, Proxy};
pub use service::ResponseFuture;
use target::Target;

/// An HTTP/1.1 client for `http://` and `https://` URIs.
///
/// Cheap to clone (clones share settings and idle connections) and
/// `Send + Sync`. Connections are kept alive and reused per shard and per
/// server (scheme, host, port); `https` uses rustls with the Mozilla roots
/// unless [`ClientBuilder::tls`] says otherwise. Requests need a spargio
/// runtime; the client itself may be made anywhere.
///
/// ```no_run
/// use http_body_util::BodyExt;
/// use spargio_http::Client;
///
/// spargio_rt::run(|_| async {
///     let client = Client::new();
///     let response = client.get("http://example.com/").await?;
///     println!("{}", response.status());
///     let body = response.into_body().collect().await?.to_bytes();
///     println!("{} bytes", body.len());
///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
///
/// The type parameter is the request body type the client takes as a
/// tower [`Service`](tower_service::Service) (`Service<Request<B>>`, see
/// [`ResponseFuture`]); it is [`Body`] unless
/// [`with_body_type`](Client::with_body_type) says otherwise.
/// [`request`](Client::request) takes any body type whatever it is.
pub struct Client<B = Body> {
    inner: Arc<Inner>,
    /// The body type of the `Service` impl only; `fn(B)` keeps the client
    /// `Send + Sync` whatever `B` is.
    _body: PhantomData<fn(B)>,
}

impl<B> Clone for Client<B> {
    fn clone(&self) -> Client<B> {
        Client {
            inner: self.inner.clone(),
            _body: PhantomData,
        }
    }
}

/// What the clones of a client share.
pub(crate) struct Inner {
    config: Config,
    /// The TLS connector, made on first `https` use unless given.
    tls: OnceLock<TlsConnector>,
    pool: Arc<Pool>,
    /// Round-robin shard choice for requests made off the shards.
    next_shard: AtomicUsize,
}

impl Inner {
    fn tls_connector(&self) -> &TlsConnector {
        self.tls.get_or_init(TlsConnector::webpki_roots)
    }
}

impl Client {
    /// A client with the default settings: 10 s connect timeout, no
    /// request timeout, idle connections kept 90 s (at most 32 per host and
    /// shard), TLS trusting the Mozilla roots.
    ///
    /// ```
    /// let client = spargio_http::Client::new();
    /// # drop(client);
    /// ```
    pub fn new() -> Client {
        ClientBuilder::new().build()
    }

    /// A builder for a client with other settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .request_timeout(Duration::from_secs(10))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl<B> Client<B> {
    /// This client (the same settings and idle connections) as a tower
    /// `Service<Request<T>>`, for middleware whose requests have body type
    /// `T` rather than [`Body`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use spargio_http::Client;
    ///
    /// let client: Client<Full<Bytes>> = Client::new().with_body_type();
    /// # drop(client);
    /// ```
    pub fn with_body_type<T>(&self) -> Client<T> {
        Client {
            inner: self.inner.clone(),
            _body: PhantomData,
        }
    }

    /// Sends `req` and resolves to the response once its head has arrived;
    /// the body then streams in as the returned [`Body`] is read.
    ///
    /// - The URI must be absolute, `http` or `https`, with a host (else
    ///   [`ClientError::InvalidUri`]); the port defaults to 80 or 443. The
    ///   request goes out as HTTP/1.1 in origin form (`GET /path?q
    ///   HTTP/1.1`; in absolute form to a [proxy](ClientBuilder::proxy)
    ///   for `http`, unless it upgrades the connection; `CONNECT
    ///   host:port`, which needs the port in the URI)
    ///   whatever `req.version()` says, with a `Host` header from the URI
    ///   unless `req` has one.
    /// - The body is sent with `Content-Length` when its size hint is
    ///   exact; else, if `req` has a valid `Content-Length` header, with
    ///   that length (a stream whose length the caller knows: many servers
    ///   refuse chunked uploads); else chunked (trailers included). An
    ///   empty body is not sent at all (`content-length: 0` for POST, PUT
    ///   and PATCH). `req`'s own `Content-Length` and `Transfer-Encoding`
    ///   headers are replaced by this framing (an exact size hint wins
    ///   over the header). A body that yields more or fewer bytes than its
    ///   `Content-Length` fails the request with [`ClientError::Body`]
    ///   while the response head has not arrived. The body keeps streaming
    ///   while the response comes in. A response that is whole before the
    ///   body is sent ends the upload (and the connection), unless it is a
    ///   success (2xx) and the server keeps the connection: then the rest
    ///   goes out after the response is handed over, under the request
    ///   timeout if one is set, and a failure of the upload from then on
    ///   (the body's error, a write error, the timeout) only closes the
    ///   connection instead of returning it to the pool: the response was
    ///   already handed over and is not changed. A server that answers
    ///   early and then stops reading holds the connection and the task
    ///   writing to it (not the caller) until the request timeout; set one
    ///   if that matters.
    /// - `Expect: 100-continue` is not waited on: the body is sent at once,
    ///   and interim `1xx` responses are skipped.
    /// - A `101 Switching Protocols` response comes with an empty body
    ///   and the connection's upgrade in its extensions:
    ///   [`upgrade::on`](crate::upgrade::on)`(&mut response)` resolves to
    ///   the connection (with any bytes the server sent after the head)
    ///   once the whole request is written. It never goes back to the
    ///   pool; a switch nobody takes closes it. The request must ask for
    ///   the upgrade itself (`Connection: upgrade` and `Upgrade`);
    ///   [`ws::connect`](crate::ws::connect) does that for WebSockets.
    ///   A 2xx response to a `CONNECT` request is handed over the same
    ///   way: the connection is then a tunnel (RFC 9110 §9.3.6) to the
    ///   `host:port` of the request's `http://` URI (sent to that address
    ///   itself, or to the client's [proxy](ClientBuilder::proxy)).
    /// - The response body is [`Body`], framed by `Content-Length`, chunked
    ///   (trailers arrive as a trailers frame) or the closing of the
    ///   connection, and empty for HEAD, 204, 304. A connection that fails
    ///   or closes before the body is complete makes the body yield
    ///   [`BodyError::Io`](crate::BodyError::Io), never a clean end.
    ///
    /// The connection goes back to the pool when the response body has been
    /// read to its end (or dropped with the rest already received), the
    /// whole request was sent, and neither side asked to close it. A
    /// pooled connection that turns out to have been closed by the server
    /// (nothing came back on it, or only a `408 Request Timeout` with
    /// `Connection: close`: its idle timeout fired as the request went
    /// out) is replaced by a fresh one, once, for a
    /// request with an empty body and an idempotent method (GET, HEAD,
    /// PUT, DELETE, OPTIONS, TRACE). If that new connection cannot be made,
    /// its error is returned (a [`ClientError::is_connect`] one), although
    /// the request was written once on the closed connection.
    ///
    /// The returned future is `Send` and `'static`. Dropping it before the
    /// response arrives abandons the request and closes its connection.
    ///
    /// Redirects are not followed: a 3xx response is returned as it is, and
    /// the caller decides whether to send a new request to its `Location`.
    ///
    /// ```no_run
    /// use http::Request;
    /// use spargio_http::{Body, Client};
    ///
    /// spargio_rt::run(|_| async {
    ///     let req = Request::post("http://127.0.0.1:8080/items")
    ///         .header("content-type", "application/json")
    ///         .body(Body::from(r#"{"name":"spargio"}"#))
    ///         .unwrap();
    ///     let response = Client::new().request(req).await?;
    ///     assert!(response.status().is_success());
    ///     Ok::<_, spargio_http::ClientError>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    /// See [`ClientError`].
    ///
    /// # Panics
    /// When polled outside a spargio runtime.
    pub fn request<T>(
        &self,
        req: Request<T>,
    ) -> impl Future<Output = Result<Response<Body>, ClientError>> + Send + 'static
    where
        T: HttpBody + Send + 'static,
        T::Error: Into<BoxError>,
    {
        let inner = self.inner.clone();
        async move {
            let mut target = Target::from_uri(req.uri())?;
            // A caller's own `CONNECT` goes to the proxy as it is.
            let upgrade = req.method() != http::Method::CONNECT && asks_to_upgrade(req.headers());
            target.via = inner.config.route(&target, upgrade);
            let host = target.authority.clone();
            let handle = RuntimeHandle::current();
            let (reply, answer) = oneshot::channel();
            let task = match handle.current_shard() {
                Some(ShardId(shard)) => {
                    handle.spawn_local(exchange::run(inner, shard, target, req, reply))
                }
                None => {
                    let shard =
                        inner.next_shard.fetch_add(1, Ordering::Relaxed) % handle.shard_count();
                    handle.spawn_local_on(ShardId(shard), move || {
                        exchange::run(inner, shard, target, req, reply)
                    })
                }
            };
            let mut task = AbortOnDrop(Some(task));
            match answer.await {
                Some(result) => {
                    // The task goes on feeding the body.
                    task.detach();
                    result
                }
                None => match task.take().await {
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    _ => Err(ClientError::Io {
                        host,
                        source: io::Error::other(
                            "the request was cancelled: the runtime is shutting down",
                        ),
                    }),
                },
            }
        }
    }

    /// Sends a `GET` request for `uri` (see [`request`](Self::request)).
    ///
    /// ```no_run
    /// use spargio_http::Client;
    ///
    /// spargio_rt::run(|_| async {
    ///     let response = Client::new().get("https://example.com/").await?;
    ///     println!("{:?}", response.headers());
    ///     Ok::<_, spargio_http::ClientError>(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    /// [`ClientError::InvalidUri`] if `uri` is not a valid URI, and the
    /// errors of [`request`](Self::request).
    pub fn get<U>(
        &self,
        uri: U,
    ) -> impl Future<Output = Result<Response<Body>, ClientError>> + Send + 'static
    where
        U: TryInto<Uri> + fmt::Display,
    {
        let text = uri.to_string();
        let req = uri.try_into().map(|uri| {
            let mut req = Request::new(Body::empty());
            *req.uri_mut() = uri;
            req
        });
        let sent = req.ok().map(|req| self.request(req));
        async move {
            match sent {
                Some(sent) => sent.await,
                None => Err(ClientError::InvalidUri {
                    uri: text,
                    reason: "not a valid URI",
                }),
            }
        }
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl<B> fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("Client")
            .field("connect_timeout", &c.connect_timeout)
            .field("request_timeout", &c.request_timeout)
            .field("response_timeout", &c.response_timeout)
            .field("body_read_timeout", &c.body_read_timeout)
            .field("unix_socket", &c.unix_socket)
            .finish_non_exhaustive()
    }
}

/// Aborts the request task if the caller gives up before the response.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    /// Lets the task run on by itself.
    fn detach(&mut self) {
        self.0 = None;
    }

    /// The task, no longer aborted on drop.
    fn take(&mut self) -> JoinHandle<()> {
        self.0.take().expect("the task is taken once")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Whether a request with `headers` asks to switch protocols: an `Upgrade`
/// field that `Connection` names (RFC 9110 §7.8; without it a server must
/// ignore the field, so a `101` answer is not one the request asked for).
pub(crate) fn asks_to_upgrade(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE) && connection_has_token(headers, "upgrade")
}
