//! Networking on the ring: TCP, UDP and Unix sockets.
//!
//! [`SocketStream`] holds a connected TCP or Unix stream socket as one
//! type, for servers that listen on either.
//!
//! Every read, write, accept and connect is an io_uring op on the ring of
//! the shard that polls it, with owned buffers (see [`crate::io`]).
//! Errors are the kernel's, as `io::Error` (`ConnectionRefused`,
//! `ConnectionReset`...); end of stream is `Ok(0)`. Host names resolve on
//! the blocking pool, never on a shard. Socket options are reachable
//! through each type's `with_socket` (a [`socket2::Socket`] view).
//!
//! [`TcpListener::incoming`] uses one multishot accept for many
//! connections; [`UdpSocket::send_msg`] / [`UdpSocket::recv_msg`] carry
//! GSO, GRO, ECN and packet-info control messages.

mod accept;
pub(crate) mod addr;
mod cmsg;
mod connect_race;
mod datagram;
mod recv_multi;
mod socket;
mod socket_stream;
mod split;
mod stream;
mod tcp;
mod udp;
mod unix;
mod zc;

pub use addr::ToSocketAddrs;
pub use cmsg::{RecvMeta, SendOptions};
pub use recv_multi::{RecvMultishot, DEFAULT_MAX_QUEUED, UNIX_MAX_QUEUED};
pub use socket_stream::{SocketStream, StreamAddr};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{PeerCred, UnixDatagram, UnixIncoming, UnixListener, UnixStream};
