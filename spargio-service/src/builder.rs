//! `Server::builder()`: how the server accepts, limits and places work.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use spargio_rt::net::{TcpListener, UnixListener};
use spargio_rt::{RuntimeHandle, ShardId};

use crate::placement::{AdaptiveConfig, HandlerPlacement};
use crate::proxy::ProxyProtocol;
use crate::server::Server;

/// How long one write to a peer may take by default (see
/// [`ServerBuilder::send_timeout`]).
pub(crate) const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How connections are accepted and which shard serves each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AcceptMode {
    /// One listening socket with a multishot accept on one shard (shard 0
    /// unless [`ServerBuilder::accept_shard`] says otherwise); each
    /// connection goes to the next shard in turn. Even spread whatever the
    /// kernel's hashing does; one hop (a doorbell) per connection.
    #[default]
    RoundRobin,
    /// One `SO_REUSEPORT` listener per shard; the kernel spreads connections
    /// by hashing their addresses and each shard serves what it accepts. No
    /// hop; the spread is only as even as the hash.
    ReusePort,
    /// One listener on one shard, which also serves every connection (the
    /// other shards only run stealable handlers).
    Pinned(ShardId),
}

/// Settings shared by a server's tasks.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) accept: AcceptMode,
    pub(crate) accept_shard: ShardId,
    pub(crate) max_connections: usize,
    pub(crate) placement: HandlerPlacement,
    pub(crate) adaptive: AdaptiveConfig,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) backlog: i32,
    pub(crate) nodelay: bool,
    pub(crate) proxy: Option<ProxyProtocol>,
}

/// Builds a [`Server`]: `Server::builder()...bind(&handle, addr)`.
///
/// ```
/// use spargio_service::{AcceptMode, HandlerPlacement, Server};
/// use std::time::Duration;
///
/// spargio_rt::run(|handle| async move {
///     let server = Server::builder()
///         .accept(AcceptMode::RoundRobin)
///         .max_connections(50_000)
///         .handler_placement(HandlerPlacement::Adaptive)
///         .idle_timeout(Duration::from_secs(60))
///         .request_timeout(Duration::from_secs(10))
///         .bind(&handle, "127.0.0.1:0")
///         .unwrap();
///     assert!(server.local_addr().port() != 0);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    cfg: ServerConfig,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            cfg: ServerConfig {
                accept: AcceptMode::RoundRobin,
                accept_shard: ShardId(0),
                max_connections: 100_000,
                placement: HandlerPlacement::Stealable,
                adaptive: AdaptiveConfig::default(),
                idle_timeout: None,
                send_timeout: Some(DEFAULT_SEND_TIMEOUT),
                request_timeout: None,
                shutdown_timeout: Duration::from_secs(30),
                backlog: 1024,
                nodelay: true,
                proxy: None,
            },
        }
    }
}

impl ServerBuilder {
    /// A builder with the defaults: round-robin accept, 100,000 connections
    /// at most, stealable handlers, no idle or request timeout, a 60 s
    /// send timeout, 30 s to
    /// shut down, backlog 1024, `TCP_NODELAY` on.
    pub fn new() -> Self {
        Self::default()
    }

    /// How connections are accepted and spread over shards.
    pub fn accept(mut self, mode: AcceptMode) -> Self {
        self.cfg.accept = mode;
        self
    }

    /// The shard that runs the accept loop in [`AcceptMode::RoundRobin`].
    pub fn accept_shard(mut self, shard: ShardId) -> Self {
        self.cfg.accept_shard = shard;
        self
    }

    /// At most `n` served connections (at least 1): accepting pauses at the
    /// limit (new connections wait in the listen backlog) and resumes when
    /// one closes.
    ///
    /// Open file descriptors can exceed `n`: a multishot accept may have
    /// taken up to 256 connections from the backlog before it stopped (per
    /// listener; one per shard with [`AcceptMode::ReusePort`]), and those
    /// wait open, unserved, until places free. Size `n` at least that far
    /// below `RLIMIT_NOFILE`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n.max(1);
        self
    }

    /// Where the service's response futures run.
    pub fn handler_placement(mut self, placement: HandlerPlacement) -> Self {
        self.cfg.placement = placement;
        self
    }

    /// Tuning of [`HandlerPlacement::Adaptive`].
    pub fn adaptive(mut self, cfg: AdaptiveConfig) -> Self {
        self.cfg.adaptive = cfg;
        self
    }

    /// Closes a connection that has waited this long for its next request.
    ///
    /// Off by default: without it, a peer that sends nothing more holds its
    /// connection (and its place under
    /// [`max_connections`](Self::max_connections)) until it closes it or
    /// the server shuts down. What else bounds the wait depends on the
    /// protocol (an HTTP server has its own header-read timeout); the
    /// [codec](crate::codec#timeouts) has nothing else, so there a peer
    /// that sends 3 bytes of a header and stops holds its connection for
    /// ever, and through a graceful shutdown until
    /// [`shutdown_timeout`](Self::shutdown_timeout) cuts it. Set it on a
    /// server open to untrusted peers.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.cfg.idle_timeout = Some(d);
        self
    }

    /// Closes a connection whose peer does not take its data: each write
    /// of at most [`SEND_PIECE`](crate::SEND_PIECE) (256 KiB) bytes must
    /// finish within this limit (a client that stops reading its responses
    /// would otherwise hold its connection open forever). With the default
    /// of 60 s, a peer reading slower than about 4.4 KB/s is closed too;
    /// raise it (or pass `None` to turn it off) for very slow clients. Counted in [`ServerStats::send_timeouts`](crate::ServerStats::send_timeouts).
    pub fn send_timeout(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.cfg.send_timeout = limit.into();
        self
    }

    /// Drops a request whose handler runs longer than this; the protocol
    /// answers it with a timeout error.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.cfg.request_timeout = Some(d);
        self
    }

    /// How long a graceful shutdown waits for connections to finish before
    /// it cuts the rest.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.cfg.shutdown_timeout = d;
        self
    }

    /// The listen backlog.
    pub fn backlog(mut self, n: i32) -> Self {
        self.cfg.backlog = n.max(1);
        self
    }

    /// Whether accepted TCP connections get `TCP_NODELAY` (default on;
    /// Unix sockets have no send delay to turn off).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.cfg.nodelay = on;
        self
    }

    /// Reads a PROXY protocol header (version 1 or 2) at the start of
    /// every connection, for a server behind a load balancer that sends
    /// one (HAProxy's `send-proxy`, an AWS NLB's proxy protocol v2,
    /// Envoy, nginx). The header is taken off the connection on its
    /// session shard before the make-service is called, and is in
    /// [`ConnInfo::proxy`](crate::ConnInfo::proxy); the protocol starts at
    /// the byte after it (with TLS, the ClientHello).
    ///
    /// A connection whose header is malformed, missing (when
    /// [`required`](ProxyProtocol::required)) or not whole within the
    /// header timeout is closed without a reply and counted in
    /// [`ServerStats::proxy_refused`](crate::ServerStats::proxy_refused).
    /// See the [`proxy`](crate::proxy) module for an example. Off by
    /// default.
    pub fn proxy_protocol(mut self, proxy: ProxyProtocol) -> Self {
        self.cfg.proxy = Some(proxy);
        self
    }

    /// Binds the listener(s) on the runtime behind `handle`.
    ///
    /// The address is resolved with the system resolver on the calling
    /// thread: pass an IP address (as servers usually do) when calling from
    /// a shard. Port 0 picks a free port; with [`AcceptMode::ReusePort`]
    /// every shard's listener shares it.
    pub fn bind(self, handle: &RuntimeHandle, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing")
        })?;
        let reuse_port = self.cfg.accept == AcceptMode::ReusePort;
        // Shards are checked before anything is bound.
        self.accepting_shard(handle)?;
        let first = TcpListener::bind_with(addr, self.cfg.backlog, reuse_port)?;
        self.serve_from(handle, first)
    }

    /// Builds the server on `listener`, a TCP socket already bound and
    /// listening, instead of binding one: a socket passed by systemd socket
    /// activation or `listenfd` (`std::net::TcpListener::from_raw_fd`), one
    /// inherited from a parent process, or one the caller bound with socket
    /// options of its own. The server owns it from now on (it is closed
    /// with the server, or at once when it is refused) and marks it
    /// close-on-exec. [`backlog`](Self::backlog) does not apply: the
    /// socket listens already.
    ///
    /// [`AcceptMode::ReusePort`] is refused: it needs a listener per
    /// shard, and sockets bound here for the other shards would not share
    /// the given one's options (`IPV6_V6ONLY`, `SO_BINDTODEVICE`,
    /// `IP_FREEBIND`, ...) or, for a socket made by another user (systemd
    /// for a `User=` service), could not join its port at all. Use
    /// [`RoundRobin`](AcceptMode::RoundRobin) (the default) or
    /// [`Pinned`](AcceptMode::Pinned).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use spargio_service::codec::{Client, LengthDelimited};
    /// use spargio_service::Server;
    ///
    /// spargio_rt::run(|handle| async move {
    ///     // Bound elsewhere (here, by the standard library).
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let server = Server::builder().listen(&handle, listener).unwrap();
    ///     assert_eq!(server.local_addr(), addr);
    ///     let stop = server.shutdown_handle();
    ///     let service = tower::service_fn(|req: Bytes| async move {
    ///         Ok::<_, std::convert::Infallible>(req)
    ///     });
    ///     let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
    ///     let mut client = Client::connect(addr).await.unwrap();
    ///     let reply = client.call(Bytes::from_static(b"hi")).await.unwrap();
    ///     assert_eq!(reply.unwrap(), Bytes::from_static(b"hi"));
    ///     drop(client);
    ///     stop.shutdown();
    ///     serving.await.unwrap().unwrap();
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] when the socket is not an IPv4 or
    /// IPv6 TCP socket (a Unix, UDP or SCTP socket, say) or is not
    /// listening, under [`AcceptMode::ReusePort`], and when the accepting
    /// shard does not exist; the errors of querying the socket.
    pub fn listen(
        self,
        handle: &RuntimeHandle,
        listener: std::net::TcpListener,
    ) -> io::Result<Server> {
        let listener = TcpListener::from_std(listener);
        if self.cfg.accept == AcceptMode::ReusePort {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "AcceptMode::ReusePort binds a listener per shard: a listener made \
                 elsewhere is served with RoundRobin or Pinned",
            ));
        }
        self.accepting_shard(handle)?;
        listener.with_socket(|s| {
            let refuse =
                |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
            let domain = s.domain()?;
            if domain != socket2::Domain::IPV4 && domain != socket2::Domain::IPV6 {
                return refuse("the listener is not an IPv4 or IPv6 socket");
            }
            if s.r#type()? != socket2::Type::STREAM {
                return refuse("the listener is not a stream (TCP) socket");
            }
            if s.protocol()?.is_some_and(|p| p != socket2::Protocol::TCP) {
                return refuse("the listener is a stream socket of another protocol than TCP");
            }
            if !s.is_listener()? {
                return refuse("the socket is not listening (bind it and call listen first)");
            }
            s.set_cloexec(true)
        })?;
        self.serve_from(handle, listener)
    }

    /// Binds a Unix stream socket at `path` and listens on it (with the
    /// [`backlog`](Self::backlog)): for a server behind a reverse proxy
    /// on the same machine (nginx's `proxy_pass http://unix:...`), a
    /// sidecar, or a local API whose access is the socket file's
    /// permissions. A `path` whose first byte is NUL names a socket in
    /// Linux's abstract namespace (no file).
    ///
    /// Connections are accepted and spread as for TCP
    /// ([`RoundRobin`](AcceptMode::RoundRobin) or
    /// [`Pinned`](AcceptMode::Pinned)), and the protocol serves them the
    /// same way; each connection's [`ConnInfo`](crate::ConnInfo) has the
    /// connecting process's credentials
    /// ([`peer_cred`](crate::ConnInfo::peer_cred)) and no IP addresses.
    ///
    /// The socket file is the caller's: binding fails with `AddrInUse`
    /// while one exists at `path` (from an earlier run, too), and the
    /// server does not remove it when it ends. Remove a stale one before
    /// binding, as below.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use spargio_service::codec::{Client, LengthDelimited};
    /// use spargio_service::Server;
    ///
    /// spargio_rt::run(|handle| async move {
    ///     let path = std::env::temp_dir().join(format!("demo-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path); // a stale socket from an earlier run
    ///     let server = Server::builder().bind_unix(&handle, &path).unwrap();
    ///     assert_eq!(server.local_addr().as_pathname(), Some(path.as_path()));
    ///     let stop = server.shutdown_handle();
    ///     let service = tower::service_fn(|req: Bytes| async move {
    ///         Ok::<_, std::convert::Infallible>(req)
    ///     });
    ///     let serving = handle.spawn_local(server.serve_service(LengthDelimited::new(), service));
    ///     let mut client = Client::connect_unix(&path).await.unwrap();
    ///     let reply = client.call(Bytes::from_static(b"hi")).await.unwrap();
    ///     assert_eq!(reply.unwrap(), Bytes::from_static(b"hi"));
    ///     drop(client);
    ///     stop.shutdown();
    ///     serving.await.unwrap().unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] under [`AcceptMode::ReusePort`]
    /// (Linux does not spread Unix socket connections over listeners) or
    /// when the accepting shard does not exist, or for a path with a NUL
    /// byte after the first; the kernel's errors binding the socket
    /// (`AddrInUse`, `PermissionDenied`, a path too long for `sun_path`).
    pub fn bind_unix(
        self,
        handle: &RuntimeHandle,
        path: impl AsRef<std::path::Path>,
    ) -> io::Result<Server<UnixListener>> {
        self.refuse_reuse_port_for_unix()?;
        self.accepting_shard(handle)?;
        let path = path.as_ref();
        use std::os::unix::ffi::OsStrExt;
        if path.as_os_str().as_bytes().iter().skip(1).any(|&b| b == 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix socket path must not contain a NUL byte (other than a first one, \
                 which names an abstract socket)",
            ));
        }
        let socket =
            socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM.cloexec(), None)?;
        socket.bind(&socket2::SockAddr::unix(path)?)?;
        socket.listen(self.cfg.backlog)?;
        let std = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket));
        self.serve_unix_from(handle, UnixListener::from_std(std))
    }

    /// Builds the server on `listener`, a Unix stream socket already bound
    /// and listening (systemd socket activation with `ListenStream=` a
    /// path, a socket inherited from a parent): as
    /// [`listen`](Self::listen) is for TCP, and served as
    /// [`bind_unix`](Self::bind_unix) describes. The server owns it from
    /// now on and marks it close-on-exec.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] when the socket is not a Unix
    /// stream socket or is not listening, under
    /// [`AcceptMode::ReusePort`], and when the accepting shard does not
    /// exist; the errors of querying the socket.
    pub fn listen_unix(
        self,
        handle: &RuntimeHandle,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Server<UnixListener>> {
        let listener = UnixListener::from_std(listener);
        self.refuse_reuse_port_for_unix()?;
        self.accepting_shard(handle)?;
        listener.with_socket(|s| {
            let refuse =
                |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
            if s.domain()? != socket2::Domain::UNIX {
                return refuse("the listener is not a Unix socket");
            }
            if s.r#type()? != socket2::Type::STREAM {
                return refuse("the listener is not a stream socket (SOCK_STREAM)");
            }
            if !s.is_listener()? {
                return refuse("the socket is not listening (bind it and call listen first)");
            }
            s.set_cloexec(true)
        })?;
        self.serve_unix_from(handle, listener)
    }

    fn refuse_reuse_port_for_unix(&self) -> io::Result<()> {
        if self.cfg.accept == AcceptMode::ReusePort {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "AcceptMode::ReusePort needs SO_REUSEPORT, which Linux does not offer \
                 for Unix sockets: serve one with RoundRobin or Pinned",
            ));
        }
        Ok(())
    }

    fn serve_unix_from(
        self,
        handle: &RuntimeHandle,
        listener: UnixListener,
    ) -> io::Result<Server<UnixListener>> {
        let shard = self.accepting_shard(handle)?;
        Server::new(self.cfg, handle.clone(), vec![(shard, listener)])
    }

    /// The shard that accepts (all of them under `ReusePort`: shard 0's
    /// listener is the one given), checked to exist.
    fn accepting_shard(&self, handle: &RuntimeHandle) -> io::Result<ShardId> {
        let shards = handle.shard_count();
        let shard = match self.cfg.accept {
            AcceptMode::RoundRobin => self.cfg.accept_shard,
            AcceptMode::Pinned(shard) => shard,
            AcceptMode::ReusePort => ShardId(0),
        };
        if shard.0 >= shards {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "shard {} does not exist (the runtime has {shards})",
                    shard.0
                ),
            ));
        }
        Ok(shard)
    }

    /// The server on `first`, the accepting shard's listener; under
    /// `ReusePort` every other shard binds one of its own to its address.
    fn serve_from(self, handle: &RuntimeHandle, first: TcpListener) -> io::Result<Server> {
        let shard = self.accepting_shard(handle)?;
        let mut listeners = vec![(shard, first)];
        if self.cfg.accept == AcceptMode::ReusePort {
            let bound: SocketAddr = listeners[0].1.local_addr()?;
            for s in 1..handle.shard_count() {
                listeners.push((
                    ShardId(s),
                    TcpListener::bind_with(bound, self.cfg.backlog, true)?,
                ));
            }
        }
        Server::new(self.cfg, handle.clone(), listeners)
    }
}
