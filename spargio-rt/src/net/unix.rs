//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::Path;
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, Socket, Type};

use super::accept::{self, MultiAccept};
use super::datagram;
use super::socket::{self, new_socket, shared, with_socket};
use super::stream::stream_io;
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf, IoBufMut};

/// The kernel's address for `path`: a file system path, or (when the
/// first byte is NUL) a name in Linux's abstract namespace. A NUL anywhere
/// else is refused as `InvalidInput`, as std does: the kernel would stop
/// at it and name another socket than the one asked for.
fn unix_sockaddr(path: &Path) -> io::Result<SockAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.iter().skip(1).any(|&b| b == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a Unix socket path must not contain a NUL byte (other than a first one, which names an abstract socket)",
        ));
    }
    SockAddr::unix(path)
}

/// A std Unix address from the kernel's form: a path, an abstract name,
/// or unnamed (a socket that never bound, like most clients).
fn unix_addr(a: SockAddr) -> io::Result<UnixAddr> {
    use std::os::linux::net::SocketAddrExt;
    if let Some(path) = a.as_pathname() {
        // A path filling all of `sun_path` (no NUL; Linux allows it) is
        // more than std can build an address from (socket2's `as_unix`
        // panics on it).
        return UnixAddr::from_pathname(path).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a Unix socket path that fills sun_path without a terminating NUL",
            )
        });
    }
    if let Some(name) = a.as_abstract_namespace() {
        return UnixAddr::from_abstract_name(name);
    }
    if a.is_unnamed() || a.len() as usize <= std::mem::size_of::<libc::sa_family_t>() {
        return unnamed();
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "not a Unix address",
    ))
}

/// A socket's own (`getsockname`) or its peer's (`getpeername`) address,
/// through std, which keeps a path that fills all of `sun_path`.
pub(super) fn std_addr(fd: &SharedFd, peer: bool) -> io::Result<UnixAddr> {
    use std::os::fd::FromRawFd;
    // SAFETY: the fd is open (`fd` owns it) for as long as the borrowed
    // std socket lives, and `ManuallyDrop` never closes it.
    let s = std::mem::ManuallyDrop::new(unsafe {
        std::os::unix::net::UnixStream::from_raw_fd(fd.raw())
    });
    if peer {
        s.peer_addr()
    } else {
        s.local_addr()
    }
}

/// The unnamed Unix address, built without a file descriptor.
///
/// std has no constructor for it by name, but an empty path gives it:
/// `from_pathname("")` holds just the address family, which is how the
/// kernel reports an unnamed socket. Needing no fd matters: this runs
/// after a datagram was received, and an `EMFILE` here would lose it. The
/// fallback (a std build that refused the empty path) asks an unbound
/// socket once; the test `the_unnamed_address_needs_no_socket` catches a
/// std that takes that path.
fn unnamed() -> io::Result<UnixAddr> {
    static UNNAMED: std::sync::OnceLock<UnixAddr> = std::sync::OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = match UnixAddr::from_pathname("") {
        Ok(a) if a.is_unnamed() => a,
        _ => std::os::unix::net::UnixDatagram::unbound()?.local_addr()?,
    };
    Ok(UNNAMED.get_or_init(|| a).clone())
}

/// A Unix stream listener.
#[derive(Debug)]
pub struct UnixListener {
    fd: SharedFd,
}

impl UnixListener {
    /// Binds to `path` and listens (backlog 1024).
    ///
    /// A `path` whose first byte is NUL names a socket in Linux's abstract
    /// namespace (no file is created); a NUL anywhere else is
    /// `InvalidInput`. The same holds for every path this module takes.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let s = new_socket(Domain::UNIX, Type::STREAM, None)?;
        s.bind(&unix_sockaddr(path.as_ref())?)?;
        s.listen(1024)?;
        Ok(UnixListener { fd: shared(s) })
    }

    /// Accepts one connection.
    ///
    /// Cancel-safe: if the future is dropped (a `select` or timeout
    /// around it) just as the kernel accepts a connection, that connection
    /// is kept on the listener and the next `accept` returns it (one that
    /// starts while the dropped one is still being cancelled waits for it,
    /// one loop turn). An `accept` already waiting in another task does
    /// not see it: the next one to start does.
    pub async fn accept(&self) -> io::Result<(UnixStream, UnixAddr)> {
        let (fd, addr) = accept::accept(&self.fd).await?;
        let stream = UnixStream::from_fd(fd);
        let addr = match unix_addr(addr.to_sockaddr()) {
            Ok(addr) => addr,
            Err(_) => std_addr(&stream.fd, true)?,
        };
        Ok((stream, addr))
    }

    /// A multishot stream of accepted connections; see
    /// [`TcpListener::incoming`](super::TcpListener::incoming).
    pub fn incoming(&self) -> UnixIncoming {
        UnixIncoming {
            accept: MultiAccept::new(&self.fd),
        }
    }

    /// Wraps a listening std socket.
    pub fn from_std(l: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener {
            fd: SharedFd::new(OwnedFd::from(l)),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        std_addr(&self.fd, false)
    }

    /// Any socket option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

/// Connections accepted by [`UnixListener::incoming`].
pub struct UnixIncoming {
    accept: MultiAccept,
}

impl UnixIncoming {
    /// The next connection.
    pub async fn next(&mut self) -> io::Result<UnixStream> {
        std::future::poll_fn(|cx| self.poll_next_conn(cx)).await
    }

    /// Stops accepting without losing a connection; see
    /// [`Incoming::pause`](super::Incoming::pause).
    pub fn pause(&mut self) {
        self.accept.pause();
    }

    /// After [`pause`](Self::pause): the next connection accepted before
    /// the pause, or `None` once there are no more.
    pub async fn next_paused(&mut self) -> Option<io::Result<UnixStream>> {
        std::future::poll_fn(|cx| {
            self.accept
                .poll_paused(cx)
                .map(|o| o.map(|r| r.map(UnixStream::from_fd)))
        })
        .await
    }

    /// Accepts again after [`pause`](Self::pause) (so does
    /// [`next`](Self::next)).
    pub fn resume(&mut self) {
        self.accept.resume();
    }

    /// Polls for the next connection.
    pub fn poll_next_conn(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        self.accept.poll_accept(cx).map_ok(UnixStream::from_fd)
    }
}

impl futures_core::Stream for UnixIncoming {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_conn(cx).map(Some)
    }
}

/// Who is on the other end of a Unix socket connection: the process, user
/// and group the kernel recorded for the peer when it connected (or made
/// the pair). The ids are those of the connecting process at that moment;
/// the process may since have exited, or changed its ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCred {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// `SO_PEERCRED` of a connected Unix socket.
pub(super) fn peer_cred(fd: &SharedFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live locals and `len` is `cred`'s size,
    // which is what SO_PEERCRED writes; the fd is open while `fd` lives.
    let rc = unsafe {
        libc::getsockopt(
            fd.raw(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// A connected Unix stream socket.
#[derive(Debug)]
pub struct UnixStream {
    pub(crate) fd: SharedFd,
}

stream_io!(UnixStream);

impl UnixStream {
    fn from_fd(fd: OwnedFd) -> UnixStream {
        UnixStream {
            fd: SharedFd::new(fd),
        }
    }

    /// A second handle on the same socket, for the owned split halves.
    pub(crate) fn same_socket(&self) -> UnixStream {
        UnixStream {
            fd: self.fd.clone(),
        }
    }

    /// The peer process's credentials, as the kernel recorded them when the
    /// connection was made (`SO_PEERCRED`): who is on the other end, for a
    /// server that decides by user or group.
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        peer_cred(&self.fd)
    }

    /// Connects to the socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = unix_sockaddr(path.as_ref())?;
        let fd = shared(new_socket(Domain::UNIX, Type::STREAM, None)?);
        socket::connect(&fd, addr).await?;
        Ok(UnixStream { fd })
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        Ok((UnixStream { fd: shared(a) }, UnixStream { fd: shared(b) }))
    }

    /// A multishot receive into `ring`'s buffers; see
    /// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot).
    /// Its [`max_queued`](super::RecvMultishot::max_queued) is held to at
    /// most [`UNIX_MAX_QUEUED`](super::UNIX_MAX_QUEUED), which keeps a
    /// kernel quirk from losing the end of the stream.
    pub fn recv_multishot(&self, ring: &crate::io::BufRing) -> super::RecvMultishot {
        super::RecvMultishot::new_unix(&self.fd, ring)
    }

    /// Wraps a connected std stream.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream::from_fd(OwnedFd::from(s))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        std_addr(&self.fd, false)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        std_addr(&self.fd, true)
    }

    /// Any socket option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }
}

/// A Unix datagram socket.
#[derive(Debug)]
pub struct UnixDatagram {
    fd: SharedFd,
}

impl UnixDatagram {
    /// Binds to `path`.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let s = new_socket(Domain::UNIX, Type::DGRAM, None)?;
        s.bind(&unix_sockaddr(path.as_ref())?)?;
        Ok(UnixDatagram { fd: shared(s) })
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            fd: shared(new_socket(Domain::UNIX, Type::DGRAM, None)?),
        })
    }

    /// Wraps a std datagram socket (bound, connected or neither).
    pub fn from_std(s: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            fd: SharedFd::new(OwnedFd::from(s)),
        }
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
        Ok((
            UnixDatagram { fd: shared(a) },
            UnixDatagram { fd: shared(b) },
        ))
    }

    /// Sets the default destination.
    pub async fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        socket::connect(&self.fd, unix_sockaddr(path.as_ref())?).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        crate::io::ops::send(&self.fd, buf).await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// Cancel-safe: a datagram a dropped receive took goes to the next
    /// receive (see [`io`](crate::io)).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (res, buf) = datagram::recv_msg(&self.fd, buf, 0).await;
        (res.map(|m| m.len), buf)
    }

    /// Sends one datagram to `path`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        let addr = match unix_sockaddr(path.as_ref()) {
            Ok(a) => a,
            Err(e) => return (Err(e), buf),
        };
        let (res, buf) = datagram::send_msg(&self.fd, buf, Some(addr), Default::default()).await;
        (res, buf)
    }

    /// Receives one datagram and its sender's address. A datagram longer
    /// than `buf`'s room is cut to fit and its rest discarded, as with
    /// std, without a sign. A sender bound to
    /// a path that fills all of `sun_path` (which std cannot represent) is
    /// reported unnamed, like a sender that never bound: the datagram is
    /// kept, but cannot be answered.
    ///
    /// Cancel-safe: a datagram a dropped receive took goes to the next
    /// receive (see [`io`](crate::io)).
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, UnixAddr), B> {
        let (res, buf) = datagram::recv_msg(&self.fd, buf, 0).await;
        let res = res.and_then(|m| {
            let addr = match unix_addr(m.addr) {
                Err(e) if e.kind() == io::ErrorKind::InvalidData => unnamed()?,
                other => other?,
            };
            Ok((m.len, addr))
        });
        (res, buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        std_addr(&self.fd, false)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        std_addr(&self.fd, true)
    }

    /// Any socket option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unnamed_address_needs_no_socket() {
        let a = UnixAddr::from_pathname("").expect("std builds it from an empty path");
        assert!(a.is_unnamed());
        assert_eq!(a.as_pathname(), None);
        assert!(unnamed().unwrap().is_unnamed());
    }
}
