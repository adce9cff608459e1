//! [`ClientBuilder`]: a [`Client`]'s settings.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::pool::Pool;
use super::proxy::{InvalidProxy, Proxy};
use super::proxy_env::proxies_from;
use super::target::{Target, Via};
use super::{Client, Inner};
use crate::h1::Limits;
use crate::tls::TlsConnector;

/// How long connecting (TCP and TLS handshake) may take unless set.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay idle in the pool unless set.
pub(crate) const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How many idle connections per host and shard the pool keeps unless set.
pub(crate) const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 32;
/// How many interim (1xx) responses may come before the final one unless
/// set.
pub(crate) const DEFAULT_MAX_INTERIM_RESPONSES: usize = 32;

/// A client's settings, shared by its clones.
pub(crate) struct Config {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) body_read_timeout: Option<Duration>,
    /// Bounds on response heads and chunked response bodies
    /// (`max_uri_len` is unused: responses have no target).
    pub(crate) limits: Limits,
    /// How many interim (1xx) responses may come before the final one.
    pub(crate) max_interim_responses: usize,
    /// Where every connection goes instead of the URI's host, if set.
    pub(crate) unix_socket: Option<PathBuf>,
    /// The forward proxies, in the order they were added: a request goes
    /// through the first that is for it.
    pub(crate) proxies: Vec<Proxy>,
}

impl Config {
    /// How a request to `target` goes: through which proxy, if any, and
    /// whether through a tunnel (always for `https`; for a plain request
    /// when it asks to `upgrade` the connection, which absolute form to the
    /// proxy would not carry to the server).
    pub(crate) fn route(&self, target: &Target, upgrade: bool) -> Option<Via> {
        let proxy = self.proxies.iter().position(|p| p.is_for(target))?;
        Some(Via {
            proxy,
            tunnel: target.https || upgrade,
        })
    }
}

/// Settings for a [`Client`]; make one with [`Client::builder`].
///
/// ```
/// use std::time::Duration;
/// use spargio_http::Client;
///
/// let client = Client::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(30))
///     .pool_idle_timeout(Duration::from_secs(60))
///     .pool_max_idle_per_host(8)
///     .build();
/// # drop(client);
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct ClientBuilder {
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    body_read_timeout: Option<Duration>,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    tls: Option<TlsConnector>,
    limits: Limits,
    max_interim_responses: usize,
    unix_socket: Option<PathBuf>,
    proxies: Vec<Proxy>,
}

impl ClientBuilder {
    pub(crate) fn new() -> ClientBuilder {
        ClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: None,
            response_timeout: None,
            body_read_timeout: None,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            tls: None,
            limits: Limits::default(),
            max_interim_responses: DEFAULT_MAX_INTERIM_RESPONSES,
            unix_socket: None,
            proxies: Vec::new(),
        }
    }

    /// Sends every request over the Unix socket at `path` instead of
    /// connecting to the URI's host: for a local service that listens on a
    /// socket file (the Docker daemon's `/var/run/docker.sock`, a sidecar,
    /// a spargio server from
    /// [`bind_unix`](spargio_service::ServerBuilder::bind_unix)). URIs stay
    /// absolute (`http://localhost/v1.43/info`): their host is what the
    /// `Host` header says, and keeps idle connections apart in the pool,
    /// but nothing is resolved. An `https` URI runs TLS over the socket,
    /// with the host as the server name. A `path` whose first byte is NUL
    /// names a socket in Linux's abstract namespace.
    ///
    /// A socket that cannot be reached (no file, nobody listening, no
    /// permission) gives [`ClientError::Connect`](super::ClientError::Connect)
    /// with the kernel's error.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), spargio_http::ClientError> {
    /// use http_body_util::BodyExt;
    ///
    /// let docker = spargio_http::Client::builder()
    ///     .unix_socket("/var/run/docker.sock")
    ///     .build();
    /// let resp = docker.get("http://localhost/v1.43/version").await?;
    /// let body = resp.into_body().collect().await.unwrap().to_bytes();
    /// println!("{}", String::from_utf8_lossy(&body));
    /// # Ok(())
    /// # }
    /// ```
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.unix_socket = Some(path.into());
        self
    }

    /// Sends the requests `proxy` is for (all of them, or those of one
    /// scheme, less its [`no_proxy`](Proxy::no_proxy) list) through that
    /// forward proxy. Called more than once, a request goes through the
    /// first proxy added that is for it, and straight to the server if
    /// none is.
    ///
    /// An `http` request goes to the proxy with its whole URI as the
    /// target (the absolute form, RFC 9112 §3.2.2); an `https` request goes
    /// through a tunnel the proxy opens with `CONNECT host:port`, and TLS
    /// runs inside it with the server itself, so the proxy sees only the
    /// server's name. A plain `http` request that asks to upgrade the
    /// connection (`Connection: upgrade` with `Upgrade`, as a `ws://`
    /// WebSocket handshake does) goes through a tunnel too (RFC 6455 §4.1),
    /// since a proxy answering absolute-form requests need not pass the
    /// upgrade on. The proxy's credentials, if its URI has them, go only
    /// to the proxy. A tunnel the proxy refuses gives
    /// [`ClientError::ProxyRefused`](super::ClientError::ProxyRefused) with
    /// its answer's status; a proxy that refuses the connection gives
    /// [`ClientError::Connect`](super::ClientError::Connect) naming the
    /// server, whose error names the proxy (one that does not answer at
    /// all runs into the [connect timeout](Self::connect_timeout)). Idle
    /// connections are pooled per server and route. A tunnel for a plain
    /// request goes to the server's port, often 80: proxies that allow
    /// `CONNECT` to port 443 only (Squid's default) refuse it.
    ///
    /// With [`unix_socket`](ClientBuilder::unix_socket) too, every
    /// connection goes to that socket, proxied or not: the proxy is the
    /// one listening there, and the route only decides how a request is
    /// written (in absolute form, through a tunnel, or as to the server).
    ///
    /// A request whose method is `CONNECT` is routed by its URI
    /// (`http://host:port`) like any plain `http` request: to the first
    /// proxy for it, as it is (its URI naming the tunnel's far end), or,
    /// if no proxy is for it, straight to that host. A 2xx answer hands
    /// the tunnel over as an upgrade ([`upgrade::on`](crate::upgrade::on)).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use spargio_http::client::Proxy;
    ///
    /// let client = spargio_http::Client::builder()
    ///     .proxy(Proxy::new("http://proxy.internal:3128")?)
    ///     .build();
    /// let resp = client.get("https://example.com/").await?;
    /// println!("{}", resp.status());
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> ClientBuilder {
        self.proxies.push(proxy);
        self
    }

    /// Adds the proxies the environment names, by the convention curl,
    /// Go's `net/http` and reqwest share: a proxy for `http` requests from
    /// `http_proxy`, one for `https` from `https_proxy`, one for both from
    /// `all_proxy` (each also in uppercase; the lowercase name wins), all
    /// of them not used for the servers in `no_proxy` (a
    /// [`NoProxy`](super::NoProxy) list, whose entries this reads leniently:
    /// one it cannot read, such as `10.*` or `<local>`, is skipped, as the
    /// others do). A value without a scheme (`proxy.internal:3128`) is an
    /// `http://` URI, port 80 if it has none (curl would take 1080); empty
    /// variables count as unset. As in Go and reqwest (curl never reads
    /// it), `HTTP_PROXY` in uppercase is read too, except when
    /// `REQUEST_METHOD` is set: in a CGI program it can come from a
    /// request's `Proxy:` header ("httpoxy").
    ///
    /// The client reads nothing from the environment unless this is
    /// called. Proxies added before it come first (see
    /// [`proxy`](Self::proxy)).
    ///
    /// ```no_run
    /// // With `https_proxy=http://proxy.internal:3128` and
    /// // `no_proxy=localhost,.internal` in the environment:
    /// let client = spargio_http::Client::builder().proxy_from_env()?.build();
    /// # let _ = client;
    /// # Ok::<(), spargio_http::client::InvalidProxy>(())
    /// ```
    ///
    /// # Errors
    /// [`InvalidProxy`] naming the variable whose value is not a
    /// supported proxy URI (`socks5://...`, an `https://` proxy).
    pub fn proxy_from_env(mut self) -> Result<ClientBuilder, InvalidProxy> {
        let found = proxies_from(|name| std::env::var(name).ok())?;
        self.proxies.extend(found);
        Ok(self)
    }

    /// How long making a connection may take: name resolution, the TCP
    /// connect (or the Unix socket's, with
    /// [`unix_socket`](Self::unix_socket)), the tunnel through a
    /// [proxy](Self::proxy) and, for `https`, the TLS handshake (which also has the
    /// connector's own handshake timeout). 10 seconds by default; running
    /// out gives [`ClientError::Timeout`](super::ClientError::Timeout) with
    /// `connecting: true`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a request may take until its response head has arrived:
    /// getting a connection, writing the request, and waiting for the
    /// answer. No limit by default. The response body is not covered: see
    /// [`body_read_timeout`](Self::body_read_timeout). To bound only the
    /// wait for the answer, whatever the upload takes, see
    /// [`response_timeout`](Self::response_timeout).
    /// Running out gives
    /// [`ClientError::Timeout`](super::ClientError::Timeout) with
    /// `connecting: false` (or `true` if it ran out while connecting).
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .request_timeout(Duration::from_secs(5))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long the server may take to answer once it has the whole
    /// request: the longest wait for the response head after the request
    /// head and body have been completely written. No limit by default.
    /// Running out gives
    /// [`ClientError::ResponseTimeout`](super::ClientError::ResponseTimeout),
    /// and the connection is closed, not reused.
    ///
    /// The clock starts only when the last byte of the request has been
    /// written, that is, handed to the kernel: the time the upload takes up
    /// to then does not count (a whole
    /// exchange is bounded by [`request_timeout`](Self::request_timeout),
    /// a stalled response body by
    /// [`body_read_timeout`](Self::body_read_timeout)). A response head
    /// that arrives before the request is fully written stops the clock
    /// from ever starting. Interim `1xx` responses (`100 Continue`,
    /// `103 Early Hints`) do not restart it: it bounds the wait for the
    /// final response head. The client does not wait for `100 Continue`
    /// before it sends a body (see [`Client::request`](super::Client::request)),
    /// so with `Expect: 100-continue` as without it, the clock starts once
    /// the body has been written.
    ///
    /// "Written" is the local side's view: up to a socket buffer or two of
    /// the request (loopback, or a fast link: hundreds of KiB) may still be
    /// on its way to a server that reads slowly when the clock starts, and
    /// that time counts. Leave room for it, or bound the exchange with
    /// [`request_timeout`](Self::request_timeout) instead. When writing the
    /// request fails, the clock never starts; the failed read that usually
    /// follows ends the request, and otherwise only `request_timeout` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .response_timeout(Duration::from_secs(30))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.response_timeout = Some(timeout);
        self
    }

    /// How long the response body may stall: the longest wait for its next
    /// bytes from the server once the caller asks for more. No limit by
    /// default. Running out fails the body with a
    /// [`BodyError::Io`](crate::BodyError::Io) of kind
    /// [`TimedOut`](std::io::ErrorKind::TimedOut), and the connection is
    /// closed, not reused. A slow reader is never timed out: the clock
    /// starts only when the caller polls the body for its next frame and
    /// nothing is there yet, so a caller that takes its time before it
    /// starts reading the body, or between reads, is not timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .body_read_timeout(Duration::from_secs(10))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn body_read_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.body_read_timeout = Some(timeout);
        self
    }

    /// How long an idle connection is kept for reuse. 90 seconds by
    /// default. While a shard holds idle connections, a task on that
    /// shard closes the expired ones and those the server closed
    /// (checking every half timeout, but at least every 5 s and at most
    /// every 100 ms), whether or not the client is used again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = spargio_http::Client::builder()
    ///     .pool_idle_timeout(Duration::from_secs(15))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host (scheme, host and port,
    /// and the proxy the connection goes through, if any) on each shard.
    /// 32 by default; 0 turns connection reuse off. There is no cap over
    /// all hosts: a client that talks to many hosts keeps up to this many
    /// idle connections to each until they expire
    /// ([`pool_idle_timeout`](Self::pool_idle_timeout)).
    ///
    /// ```
    /// let no_reuse = spargio_http::Client::builder().pool_max_idle_per_host(0).build();
    /// # drop(no_reuse);
    /// ```
    pub fn pool_max_idle_per_host(mut self, max: usize) -> ClientBuilder {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The TLS connector for `https` URIs: to trust other roots than the
    /// Mozilla ones, present a client certificate, or change the handshake
    /// timeout. By default a [`TlsConnector::webpki_roots`] connector is
    /// built on the first `https` request.
    ///
    /// ```
    /// use spargio_http::tls::{root_store_from_pem, TlsConnector};
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let roots = root_store_from_pem(cert.cert.pem().as_bytes()).unwrap();
    /// let client = spargio_http::Client::builder()
    ///     .tls(TlsConnector::with_root_store(roots))
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn tls(mut self, connector: TlsConnector) -> ClientBuilder {
        self.tls = Some(connector);
        self
    }

    /// The most header fields a response head may have. 100 by default. A
    /// response with more fails the request with
    /// [`ClientError::Parse`](super::ClientError::Parse) ("too many header
    /// fields"). It also bounds the trailer fields after a chunked response
    /// body (more fail the body with
    /// [`BodyError::Malformed`](crate::BodyError::Malformed)).
    ///
    /// ```
    /// let client = spargio_http::Client::builder().max_response_headers(50).build();
    /// # drop(client);
    /// ```
    pub fn max_response_headers(mut self, max: usize) -> ClientBuilder {
        self.limits.max_headers = max;
        self
    }

    /// The most bytes a response head may take: the status line, the
    /// header fields and the empty line after them. 64 KiB by default. A
    /// larger head fails the request with
    /// [`ClientError::Parse`](super::ClientError::Parse) ("response head
    /// too large") as soon as this much has arrived without the end of the
    /// head: the client never waits for more than this.
    ///
    /// ```
    /// let client = spargio_http::Client::builder()
    ///     .max_response_head_bytes(16 * 1024)
    ///     .build();
    /// # drop(client);
    /// ```
    pub fn max_response_head_bytes(mut self, max: usize) -> ClientBuilder {
        self.limits.max_head_bytes = max;
        self
    }

    /// The most bytes of chunk extensions (`;name=value` after a chunk
    /// size, with any whitespace before it) accepted over one chunked
    /// response body. 4 KiB by default.
    /// More fail the body with
    /// [`BodyError::Malformed`](crate::BodyError::Malformed).
    ///
    /// ```
    /// let client = spargio_http::Client::builder().max_chunk_ext_bytes(256).build();
    /// # drop(client);
    /// ```
    pub fn max_chunk_ext_bytes(mut self, max: usize) -> ClientBuilder {
        self.limits.max_chunk_ext_bytes = max;
        self
    }

    /// The most bytes the trailer section after a chunked response body
    /// may take. 16 KiB by default. A larger one fails the body with
    /// [`BodyError::Malformed`](crate::BodyError::Malformed).
    ///
    /// ```
    /// let client = spargio_http::Client::builder().max_trailer_bytes(1024).build();
    /// # drop(client);
    /// ```
    pub fn max_trailer_bytes(mut self, max: usize) -> ClientBuilder {
        self.limits.max_trailer_bytes = max;
        self
    }

    /// How many interim responses (`1xx` other than `101`, such as
    /// `100 Continue` or `103 Early Hints`) a request may get before its
    /// final response. 32 by default. One more fails the request with
    /// [`ClientError::Parse`](super::ClientError::Parse) ("too many
    /// interim (1xx) responses").
    ///
    /// ```
    /// let client = spargio_http::Client::builder().max_interim_responses(4).build();
    /// # drop(client);
    /// ```
    pub fn max_interim_responses(mut self, max: usize) -> ClientBuilder {
        self.max_interim_responses = max;
        self
    }

    /// Builds the client. It may be built outside a runtime; requests need
    /// one.
    ///
    /// ```
    /// let client = spargio_http::Client::builder().build();
    /// # drop(client);
    /// ```
    pub fn build(self) -> Client {
        let tls = OnceLock::new();
        if let Some(connector) = self.tls {
            let _ = tls.set(connector);
        }
        Client {
            inner: Arc::new(Inner {
                config: Config {
                    connect_timeout: self.connect_timeout,
                    request_timeout: self.request_timeout,
                    response_timeout: self.response_timeout,
                    body_read_timeout: self.body_read_timeout,
                    limits: self.limits,
                    max_interim_responses: self.max_interim_responses,
                    unix_socket: self.unix_socket,
                    proxies: self.proxies,
                },
                tls,
                pool: Arc::new(Pool::new(
                    self.pool_idle_timeout,
                    self.pool_max_idle_per_host,
                )),
                next_shard: Default::default(),
            }),
            _body: PhantomData,
        }
    }
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("max_interim_responses", &self.max_interim_responses)
            .field("unix_socket", &self.unix_socket)
            .field("proxies", &self.proxies)
            .finish()
    }
}
