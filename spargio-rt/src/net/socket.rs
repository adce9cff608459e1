//! Socket plumbing shared by TCP, UDP and Unix sockets: creating sockets,
//! connecting, and the stream read/write ops.

use std::io;
use std::os::fd::OwnedFd;

use io_uring::{opcode, squeue::Entry};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::driver::{Op, OpData};
use crate::io::fd::SharedFd;

/// A new close-on-exec socket.
pub(crate) fn new_socket(domain: Domain, ty: Type, proto: Option<Protocol>) -> io::Result<Socket> {
    Socket::new(domain, ty.cloexec(), proto)
}

struct Connect {
    fd: SharedFd,
    addr: SockAddr,
}

impl OpData for Connect {
    fn entry(&mut self) -> Entry {
        opcode::Connect::new(self.fd.uring(), self.addr.as_ptr(), self.addr.len()).build()
    }
}

/// Connects `fd` to `addr` through the ring.
pub(crate) async fn connect(fd: &SharedFd, addr: SockAddr) -> io::Result<()> {
    let (res, _) = Op::new(Connect {
        fd: fd.clone(),
        addr,
    })
    .await;
    res?.result().map(drop)
}

/// Takes a socket2 socket into a shared fd.
pub(crate) fn shared(s: Socket) -> SharedFd {
    SharedFd::new(OwnedFd::from(s))
}

/// A socket2 view of `fd` for option calls, without taking ownership.
pub(crate) fn with_socket<R>(
    fd: &SharedFd,
    f: impl FnOnce(&Socket) -> io::Result<R>,
) -> io::Result<R> {
    use std::os::fd::FromRawFd;
    // SAFETY: the `Socket` wraps our fd only for the call; `ManuallyDrop`
    // keeps it from being closed, and `fd` keeps it open meanwhile.
    let s = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd.raw()) });
    f(&s)
}

/// The address a socket is bound to.
pub(crate) fn local_addr(fd: &SharedFd) -> io::Result<SockAddr> {
    with_socket(fd, |s| s.local_addr())
}

/// The address a socket is connected to.
pub(crate) fn peer_addr(fd: &SharedFd) -> io::Result<SockAddr> {
    with_socket(fd, |s| s.peer_addr())
}

/// An IP address out of a `SockAddr`.
pub(crate) fn ip(a: SockAddr) -> io::Result<std::net::SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
}
