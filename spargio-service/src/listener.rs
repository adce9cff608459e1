//! The sockets a [`Server`](crate::Server) listens on: TCP (`bind`,
//! `listen`) or Unix (`bind_unix`, `listen_unix`), as one type to the
//! accept loops, which hand every connection on as a
//! [`SocketStream`].

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::os::unix::net::SocketAddr as UnixAddr;

use spargio_rt::net::{Incoming, SocketStream, TcpListener, UnixIncoming, UnixListener};

mod sealed {
    pub trait Sealed {}
    impl Sealed for spargio_rt::net::TcpListener {}
    impl Sealed for spargio_rt::net::UnixListener {}
}

/// The kind of listening socket a [`Server`](crate::Server) serves:
/// [`TcpListener`] (the default; from
/// [`ServerBuilder::bind`](crate::ServerBuilder::bind) and
/// [`listen`](crate::ServerBuilder::listen)) or [`UnixListener`] (from
/// [`bind_unix`](crate::ServerBuilder::bind_unix) and
/// [`listen_unix`](crate::ServerBuilder::listen_unix)). Only names the
/// address type [`Server::local_addr`](crate::Server::local_addr) gives;
/// not implemented outside this crate.
pub trait Listener: sealed::Sealed + Send + 'static {
    /// The address the server listens on: a `SocketAddr` for TCP, a Unix
    /// socket address for Unix.
    type Addr: Clone + Debug + Send + Sync + 'static;

    /// This listener's address.
    #[doc(hidden)]
    fn listen_addr(&self) -> io::Result<Self::Addr>;

    /// The listener as the accept loops take it.
    #[doc(hidden)]
    fn into_any(self) -> AnyListener;
}

impl Listener for TcpListener {
    type Addr = SocketAddr;

    fn listen_addr(&self) -> io::Result<SocketAddr> {
        self.local_addr()
    }

    fn into_any(self) -> AnyListener {
        AnyListener::Tcp(self)
    }
}

impl Listener for UnixListener {
    type Addr = UnixAddr;

    fn listen_addr(&self) -> io::Result<UnixAddr> {
        self.local_addr()
    }

    fn into_any(self) -> AnyListener {
        AnyListener::Unix(self)
    }
}

/// A listening socket of either kind.
#[doc(hidden)]
pub enum AnyListener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix.
    Unix(UnixListener),
}

impl AnyListener {
    /// A multishot accept on the listener.
    pub(crate) fn incoming(&self) -> AnyIncoming {
        match self {
            AnyListener::Tcp(l) => AnyIncoming::Tcp(l.incoming()),
            AnyListener::Unix(l) => AnyIncoming::Unix(l.incoming()),
        }
    }
}

/// The connections a listener of either kind accepts, as [`SocketStream`]s.
pub(crate) enum AnyIncoming {
    Tcp(Incoming),
    Unix(UnixIncoming),
}

impl AnyIncoming {
    /// The next connection.
    pub(crate) async fn next(&mut self) -> io::Result<SocketStream> {
        match self {
            AnyIncoming::Tcp(i) => i.next().await.map(SocketStream::from),
            AnyIncoming::Unix(i) => i.next().await.map(SocketStream::from),
        }
    }

    /// Stops accepting; see [`Incoming::pause`].
    pub(crate) fn pause(&mut self) {
        match self {
            AnyIncoming::Tcp(i) => i.pause(),
            AnyIncoming::Unix(i) => i.pause(),
        }
    }

    /// After [`pause`](Self::pause): a connection accepted before it.
    pub(crate) async fn next_paused(&mut self) -> Option<io::Result<SocketStream>> {
        match self {
            AnyIncoming::Tcp(i) => i.next_paused().await.map(|r| r.map(SocketStream::from)),
            AnyIncoming::Unix(i) => i.next_paused().await.map(|r| r.map(SocketStream::from)),
        }
    }
}
