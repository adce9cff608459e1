//! [`SocketStream`]: a connected stream socket of either family a server
//! listens on, TCP or Unix, as one type.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::net::SocketAddr as UnixAddr;

use socket2::Socket;

use super::socket::{self, with_socket};
use super::stream::stream_io;
use super::unix::{peer_cred, std_addr, PeerCred};
use super::{TcpStream, UnixStream};
use crate::io::fd::SharedFd;

/// A connected stream socket, TCP or Unix: what a server that can listen
/// on either hands its protocol, so one protocol implementation serves
/// both. Reads and writes are the same ring operations as on
/// [`TcpStream`] and [`UnixStream`] (no dispatch per call); only
/// addresses and options depend on the family.
///
/// ```
/// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
/// use spargio_rt::net::{SocketStream, UnixStream};
///
/// spargio_rt::run(|_| async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (mut a, mut b) = (SocketStream::from(a), SocketStream::from(b));
///     assert!(a.is_unix());
///     let (res, _) = a.write_all(b"ping".to_vec()).await;
///     res.unwrap();
///     let (res, got) = b.read_exact(vec![0u8; 4]).await;
///     res.unwrap();
///     assert_eq!(got, b"ping");
///     // The peer of a Unix socket can be asked who it is.
///     assert_eq!(b.peer_cred().unwrap().pid, std::process::id() as i32);
/// })
/// .unwrap();
/// ```
pub struct SocketStream {
    pub(crate) fd: SharedFd,
    family: Family,
}

/// Which kind of socket a [`SocketStream`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Tcp,
    Unix,
}

/// Either address a [`SocketStream`] can have.
#[derive(Clone, Debug)]
pub enum StreamAddr {
    /// A TCP socket's IP address and port.
    Inet(SocketAddr),
    /// A Unix socket's path, abstract name, or unnamed.
    Unix(UnixAddr),
}

impl StreamAddr {
    /// The IP address and port, for a TCP socket.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            StreamAddr::Inet(a) => Some(*a),
            StreamAddr::Unix(_) => None,
        }
    }

    /// The Unix address, for a Unix socket.
    pub fn as_unix(&self) -> Option<&UnixAddr> {
        match self {
            StreamAddr::Inet(_) => None,
            StreamAddr::Unix(a) => Some(a),
        }
    }
}

stream_io!(SocketStream);

impl fmt::Debug for SocketStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("fd", &self.fd.raw())
            .field("family", &self.family)
            .finish()
    }
}

impl From<TcpStream> for SocketStream {
    fn from(s: TcpStream) -> SocketStream {
        SocketStream {
            fd: s.fd,
            family: Family::Tcp,
        }
    }
}

impl From<UnixStream> for SocketStream {
    fn from(s: UnixStream) -> SocketStream {
        SocketStream {
            fd: s.fd,
            family: Family::Unix,
        }
    }
}

impl SocketStream {
    /// Whether this is a TCP connection.
    pub fn is_tcp(&self) -> bool {
        self.family == Family::Tcp
    }

    /// Whether this is a Unix socket connection.
    pub fn is_unix(&self) -> bool {
        self.family == Family::Unix
    }

    /// The TCP stream, for what only TCP has (`send_zc`, `nodelay`); the
    /// same socket back as the error when it is a Unix one.
    pub fn into_tcp(self) -> Result<TcpStream, SocketStream> {
        match self.family {
            Family::Tcp => Ok(TcpStream { fd: self.fd }),
            Family::Unix => Err(self),
        }
    }

    /// The Unix stream; the same socket back as the error when it is a
    /// TCP one.
    pub fn into_unix(self) -> Result<UnixStream, SocketStream> {
        match self.family {
            Family::Unix => Ok(UnixStream { fd: self.fd }),
            Family::Tcp => Err(self),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<StreamAddr> {
        match self.family {
            Family::Tcp => Ok(StreamAddr::Inet(socket::ip(socket::peer_addr(&self.fd)?)?)),
            Family::Unix => Ok(StreamAddr::Unix(std_addr(&self.fd, true)?)),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<StreamAddr> {
        match self.family {
            Family::Tcp => Ok(StreamAddr::Inet(socket::ip(socket::local_addr(&self.fd)?)?)),
            Family::Unix => Ok(StreamAddr::Unix(std_addr(&self.fd, false)?)),
        }
    }

    /// The peer process's credentials, as the kernel recorded them when the
    /// connection was made (`SO_PEERCRED`): Unix sockets only; a TCP
    /// stream gives `Unsupported`.
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        match self.family {
            Family::Unix => peer_cred(&self.fd),
            Family::Tcp => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "peer credentials exist only for Unix sockets",
            )),
        }
    }

    /// Sets `TCP_NODELAY` on a TCP stream. A Unix socket has no send
    /// delay to turn off: for one this does nothing and returns `Ok`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self.family {
            Family::Tcp => with_socket(&self.fd, |s| s.set_nodelay(on)),
            Family::Unix => Ok(()),
        }
    }

    /// Whether sends go out without delay: `TCP_NODELAY` on a TCP
    /// stream; always `true` on a Unix socket, which never holds back a
    /// send.
    pub fn nodelay(&self) -> io::Result<bool> {
        match self.family {
            Family::Tcp => with_socket(&self.fd, |s| s.nodelay()),
            Family::Unix => Ok(true),
        }
    }

    /// A multishot receive into `ring`'s buffers; see
    /// [`TcpStream::recv_multishot`] (the same rules on which task may
    /// poll it) and, for a Unix socket, [`UnixStream::recv_multishot`].
    pub fn recv_multishot(&self, ring: &crate::io::BufRing) -> super::RecvMultishot {
        match self.family {
            Family::Tcp => super::RecvMultishot::new(&self.fd, ring),
            Family::Unix => super::RecvMultishot::new_unix(&self.fd, ring),
        }
    }

    /// Any socket option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }

    /// A second handle on the same socket, for the owned split halves.
    pub(crate) fn same_socket(&self) -> SocketStream {
        SocketStream {
            fd: self.fd.clone(),
            family: self.family,
        }
    }
}
