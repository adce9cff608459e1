//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::accept::{self, MultiAccept};
use super::addr::{each_addr, resolve, ToSocketAddrs};
use super::connect_race::{race, ATTEMPT_DELAY};
use super::socket::{self, new_socket, shared, with_socket};
use super::stream::stream_io;
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf};

/// A TCP listening socket.
///
/// ```
/// use spargio_rt::net::{TcpListener, TcpStream};
/// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
/// spargio_rt::run(|_| async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = spargio_rt::spawn(async move {
///         let mut s = TcpStream::connect(addr).await.unwrap();
///         let (r, _) = s.write_all(b"ping".to_vec()).await;
///         r.unwrap();
///     });
///     let (mut conn, _peer) = listener.accept().await.unwrap();
///     let (r, buf) = conn.read_exact(vec![0u8; 4]).await;
///     r.unwrap();
///     assert_eq!(buf, b"ping");
///     client.await.unwrap();
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListener {
    fd: SharedFd,
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and listens with a backlog of
    /// 1024. Tries each resolved address in turn.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = resolve(addr).await?;
        each_addr(addrs, |a| async move { Self::bind_with(a, 1024, false) }).await
    }

    /// Binds with an explicit backlog, optionally with `SO_REUSEPORT` so
    /// several listeners (one per shard, say) share the port.
    pub fn bind_with(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
        let s = new_socket(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        if reuse_port {
            s.set_reuse_port(true)?;
        }
        s.bind(&SockAddr::from(addr))?;
        s.listen(backlog)?;
        Ok(TcpListener { fd: shared(s) })
    }

    /// Wraps a listening std socket.
    pub fn from_std(l: std::net::TcpListener) -> TcpListener {
        TcpListener {
            fd: SharedFd::new(OwnedFd::from(l)),
        }
    }

    /// Accepts one connection (an `IORING_OP_ACCEPT`).
    ///
    /// Cancel-safe: if the future is dropped (a `select` or timeout
    /// around it) just as the kernel accepts a connection, that connection
    /// is kept on the listener and the next `accept` returns it (one that
    /// starts while the dropped one is still being cancelled waits for it,
    /// one loop turn). An `accept` already waiting in another task does
    /// not see it: the next one to start does.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = accept::accept(&self.fd).await?;
        Ok((TcpStream::from_fd(fd), addr.to_socket_addr()?))
    }

    /// A stream of accepted connections from one multishot accept: one SQE
    /// serves many connections, re-armed when the kernel ends it. Errors
    /// such as `EMFILE` are yielded and the stream goes on.
    pub fn incoming(&self) -> Incoming {
        Incoming {
            accept: MultiAccept::new(&self.fd),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::ip(socket::local_addr(&self.fd)?)
    }

    /// Sets `IP_TTL`, or any option through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

/// Connections accepted by [`TcpListener::incoming`].
pub struct Incoming {
    accept: MultiAccept,
}

impl Incoming {
    /// The next connection.
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        std::future::poll_fn(|cx| self.poll_next_conn(cx)).await
    }

    /// Stops accepting without losing a connection: cancels the multishot
    /// accept, after which [`next_paused`](Self::next_paused) hands out the
    /// connections the kernel accepted before the cancel landed, then
    /// `None`. New connections wait in the listen backlog until
    /// [`resume`](Self::resume). Servers use it to pause at a connection
    /// limit. (Dropping an `Incoming` instead closes whatever it had
    /// accepted and not handed out.)
    ///
    /// ```no_run
    /// # async fn demo(listener: spargio_rt::net::TcpListener) -> std::io::Result<()> {
    /// let mut incoming = listener.incoming();
    /// let first = incoming.next().await?;
    /// incoming.pause();
    /// while let Some(conn) = incoming.next_paused().await {
    ///     let _queued = conn?; // accepted before the pause
    /// }
    /// incoming.resume();
    /// let _next = incoming.next().await?;
    /// # drop(first); Ok(()) }
    /// ```
    pub fn pause(&mut self) {
        self.accept.pause();
    }

    /// After [`pause`](Self::pause): the next connection accepted before
    /// the pause, or `None` once there are no more.
    pub async fn next_paused(&mut self) -> Option<io::Result<TcpStream>> {
        std::future::poll_fn(|cx| {
            self.accept
                .poll_paused(cx)
                .map(|o| o.map(|r| r.map(TcpStream::from_fd)))
        })
        .await
    }

    /// Accepts again after [`pause`](Self::pause) (so does
    /// [`next`](Self::next)).
    pub fn resume(&mut self) {
        self.accept.resume();
    }

    /// Polls for the next connection.
    pub fn poll_next_conn(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        self.accept.poll_accept(cx).map_ok(TcpStream::from_fd)
    }
}

impl futures_core::Stream for Incoming {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_conn(cx).map(Some)
    }
}

/// A TCP connection. Reads and writes take owned buffers (see
/// [`crate::io`]); they go through the ring of the shard that polls them.
#[derive(Debug)]
pub struct TcpStream {
    pub(crate) fd: SharedFd,
}

stream_io!(TcpStream);

impl TcpStream {
    fn from_fd(fd: OwnedFd) -> TcpStream {
        TcpStream {
            fd: SharedFd::new(fd),
        }
    }

    /// A second handle on the same socket, for the owned split halves.
    pub(crate) fn same_socket(&self) -> TcpStream {
        TcpStream {
            fd: self.fd.clone(),
        }
    }

    /// Connects to `addr` (an `IORING_OP_CONNECT`).
    ///
    /// With several addresses (a host name that resolves to more than
    /// one, or a list), the attempts are raced the way RFC 8305 ("Happy
    /// Eyeballs") does it: IPv6 and IPv4 addresses taken in turn, starting
    /// with the family of the first; the next attempt starts when the
    /// previous one failed or after 250 ms without an answer, the earlier
    /// ones going on beside it; the first connection made wins and the
    /// others are cancelled. So an address that never answers (a broken
    /// IPv6 route, a firewall dropping SYNs) costs 250 ms, not the
    /// kernel's SYN timeout of about two minutes. All failing: the last
    /// error.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve(addr).await?;
        race(addrs, ATTEMPT_DELAY, |a| async move {
            let s = new_socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
            let fd = shared(s);
            socket::connect(&fd, SockAddr::from(a)).await?;
            Ok(TcpStream { fd })
        })
        .await
    }

    /// Wraps a connected std stream.
    pub fn from_std(s: std::net::TcpStream) -> TcpStream {
        TcpStream::from_fd(OwnedFd::from(s))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::ip(socket::peer_addr(&self.fd)?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::ip(socket::local_addr(&self.fd)?)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        with_socket(&self.fd, |s| s.set_nodelay(on))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        with_socket(&self.fd, |s| s.nodelay())
    }

    /// Any other option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }

    /// Shuts down the read half, the write half or both.
    pub async fn shutdown_std(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        crate::io::ops::shutdown(&self.fd, how).await
    }

    /// A multishot receive into `ring`'s buffers: one armed SQE delivers
    /// read after read, and the connection holds no buffer while idle.
    ///
    /// The receive is armed on `ring`'s shard (the one that created it),
    /// so poll it only from a task that stays there: one started with
    /// [`spawn_local`](crate::spawn_local) on that shard, or
    /// [`RuntimeHandle::spawn_pinned`](crate::RuntimeHandle::spawn_pinned)
    /// to it. A task from [`spawn`](crate::spawn) is stealable and can be
    /// moved to another shard between two polls. Polled off the ring's
    /// shard, [`next`](super::RecvMultishot::next) still hands out the
    /// buffers already received, but fails with `InvalidInput` as soon as
    /// the receive would have to be armed again (at first, after the ring
    /// ran dry, after the queue cap, or when the kernel ended it); what
    /// was not received by then stays in the socket for plain reads.
    ///
    /// Bytes a cancelled plain read kept for the next read (see
    /// [`crate::io`]) come before anything the receive would get: while
    /// some are kept, arming fails with `InvalidInput`; read them first.
    pub fn recv_multishot(&self, ring: &crate::io::BufRing) -> super::RecvMultishot {
        super::RecvMultishot::new(&self.fd, ring)
    }

    /// Sends with `IORING_OP_SEND_ZC`: the kernel transmits straight from
    /// `buf` without copying it, and the buffer comes back once the kernel
    /// has let go of it. Worth it for large buffers (tens of KiB and up);
    /// small ones are cheaper with a copy.
    ///
    /// The future resolves only when the kernel's notification arrives,
    /// not when the data is queued: for TCP that is once the peer has
    /// acknowledged the data (the kernel holds the pages until then, for a
    /// retransmit). So each call costs at least a round trip, and a peer
    /// that stops reading (a full receive window) keeps it pending, for as
    /// long as the connection lasts. Dropping the future does not end the
    /// send: the kernel goes on transmitting and the buffer is freed at
    /// the notification. The socket itself is held only until the kernel
    /// has queued the data, so dropping this stream closes it as usual. A
    /// plain [`write`](crate::io::AsyncWrite::write) returns as
    /// soon as the data is copied into the socket's send buffer.
    pub async fn send_zc<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        super::zc::send_zc(&self.fd, buf).await
    }
}
