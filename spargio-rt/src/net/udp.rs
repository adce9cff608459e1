//! UDP: [`UdpSocket`], with `sendmsg`/`recvmsg` and the control messages
//! a QUIC stack needs (GSO, GRO, ECN, packet info).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::addr::{each_addr, resolve, ToSocketAddrs};
use super::cmsg::{self, RecvMeta, SendOptions};
use super::datagram;
use super::socket::{self, new_socket, shared, with_socket};
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf, IoBufMut};

/// A UDP socket.
///
/// ```
/// use spargio_rt::net::UdpSocket;
/// spargio_rt::run(|_| async {
///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let (r, _) = a.send_to(b"hi".to_vec(), b.local_addr().unwrap()).await;
///     r.unwrap();
///     let (r, buf) = b.recv_from(Vec::with_capacity(16)).await;
///     let (n, from) = r.unwrap();
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr().unwrap()));
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    fd: SharedFd,
    v6: bool,
}

impl UdpSocket {
    /// Binds to `addr`, trying each resolved address in turn.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = resolve(addr).await?;
        each_addr(addrs, |a| async move {
            let s = new_socket(Domain::for_address(a), Type::DGRAM, Some(Protocol::UDP))?;
            s.bind(&SockAddr::from(a))?;
            Ok(UdpSocket {
                fd: shared(s),
                v6: a.is_ipv6(),
            })
        })
        .await
    }

    /// Wraps a std socket.
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let v6 = s.local_addr()?.is_ipv6();
        Ok(UdpSocket {
            fd: SharedFd::new(OwnedFd::from(s)),
            v6,
        })
    }

    /// Sets the default peer for [`send`](Self::send) and
    /// [`recv`](Self::recv), and filters incoming datagrams to it.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(addr).await?;
        let fd = self.fd.clone();
        each_addr(addrs, |a| {
            let fd = fd.clone();
            async move { socket::connect(&fd, SockAddr::from(a)).await }
        })
        .await
    }

    /// Sends one datagram to `addr`.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        datagram::send_msg(
            &self.fd,
            buf,
            Some(SockAddr::from(addr)),
            Default::default(),
        )
        .await
    }

    /// Receives one datagram and its sender (several joined together
    /// once [`set_gro`](Self::set_gro) is on: use `recv_msg` then). A
    /// datagram longer than `buf`'s room is cut to fit and its rest
    /// discarded, as with std, without a sign here:
    /// [`recv_msg`](Self::recv_msg) reports it in `truncated`.
    ///
    /// Cancel-safe: a datagram a dropped receive took goes to the next
    /// receive (see [`io`](crate::io)).
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = datagram::recv_msg(&self.fd, buf, 0).await;
        (res.and_then(|m| Ok((m.len, socket::ip(m.addr)?))), buf)
    }

    /// Sends one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        crate::io::ops::send(&self.fd, buf).await
    }

    /// Receives one datagram from the connected peer (several joined
    /// together once [`set_gro`](Self::set_gro) is on: use `recv_msg`
    /// then).
    ///
    /// Cancel-safe: a datagram a dropped receive took goes to the next
    /// receive (see [`io`](crate::io)).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (res, buf) = datagram::recv_msg(&self.fd, buf, 0).await;
        (res.map(|m| m.len), buf)
    }

    /// `sendmsg` with options: GSO segment size, ECN, source IP. `to` is
    /// `None` on a connected socket.
    pub async fn send_msg<B: IoBuf>(
        &self,
        buf: B,
        to: Option<SocketAddr>,
        opts: SendOptions,
    ) -> BufResult<usize, B> {
        // Only the ECN message depends on the destination's family (and
        // finding a connected socket's costs a syscall).
        let v4_destination = opts.ecn.is_some() && self.v4_destination(to);
        let control = match cmsg::encode(&opts, self.v6, v4_destination) {
            Ok(control) => control,
            Err(e) => return (Err(e), buf),
        };
        datagram::send_msg(&self.fd, buf, to.map(SockAddr::from), control).await
    }

    /// `recvmsg` with what the control messages tell: GRO segment size,
    /// ECN, destination IP (turn them on with [`set_gro`](Self::set_gro),
    /// [`set_recv_ecn`](Self::set_recv_ecn),
    /// [`set_recv_pktinfo`](Self::set_recv_pktinfo)).
    ///
    /// Cancel-safe: a datagram a dropped receive took goes to the next
    /// receive (see [`io`](crate::io)).
    pub async fn recv_msg<B: IoBufMut>(&self, buf: B) -> BufResult<RecvMeta, B> {
        let (res, buf) = datagram::recv_msg(&self.fd, buf, cmsg::RECV_SPACE).await;
        let res = res.and_then(|mut m| {
            let d = cmsg::decode(&mut m.control);
            Ok(RecvMeta {
                len: m.len,
                addr: socket::ip(m.addr)?,
                segment_size: d.segment_size,
                ecn: d.ecn,
                dst_ip: d.dst_ip,
                truncated: m.flags & libc::MSG_TRUNC != 0,
                control_truncated: m.flags & libc::MSG_CTRUNC != 0,
            })
        });
        (res, buf)
    }

    /// Turns UDP GRO on: the kernel may merge datagrams of one flow into
    /// one receive, reported in [`RecvMeta::segment_size`].
    ///
    /// With GRO on, receive with [`recv_msg`](Self::recv_msg) and split
    /// with [`RecvMeta::segments`]: [`recv`](Self::recv) and
    /// [`recv_from`](Self::recv_from) have nowhere to report the segment
    /// size, so one of their receives may hand out several datagrams
    /// joined together.
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_UDP, libc::UDP_GRO, on as i32)
    }

    /// Reports each datagram's ECN bits in [`RecvMeta::ecn`].
    ///
    /// On a dual-stack IPv6 socket (bound to `[::]`, not v6-only) this
    /// turns on the IPv4 report too: the kernel reports an IPv4 datagram's
    /// TOS byte only through the IPv4 option.
    pub fn set_recv_ecn(&self, on: bool) -> io::Result<()> {
        if self.v6 {
            self.set_int(libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, on as i32)?;
            if !self.v6_only()? {
                self.set_int(libc::IPPROTO_IP, libc::IP_RECVTOS, on as i32)?;
            }
            Ok(())
        } else {
            self.set_int(libc::IPPROTO_IP, libc::IP_RECVTOS, on as i32)
        }
    }

    /// Reports each datagram's destination IP in [`RecvMeta::dst_ip`].
    ///
    /// On a dual-stack IPv6 socket this turns on the IPv4 report too (an
    /// IPv4 datagram's destination comes as an IPv4 address then).
    pub fn set_recv_pktinfo(&self, on: bool) -> io::Result<()> {
        if self.v6 {
            self.set_int(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, on as i32)?;
            if !self.v6_only()? {
                self.set_int(libc::IPPROTO_IP, libc::IP_PKTINFO, on as i32)?;
            }
            Ok(())
        } else {
            self.set_int(libc::IPPROTO_IP, libc::IP_PKTINFO, on as i32)
        }
    }

    /// Whether an IPv6 socket carries IPv6 only (no IPv4-mapped peers).
    fn v6_only(&self) -> io::Result<bool> {
        self.with_socket(|s| s.only_v6())
    }

    /// Whether a datagram to `to` (or, with `None`, to the connected peer)
    /// goes out as IPv4: always on an IPv4 socket, and on an IPv6 socket
    /// for an IPv4 or IPv4-mapped destination, whose IP header the kernel
    /// builds from IPv4 control messages only.
    fn v4_destination(&self, to: Option<SocketAddr>) -> bool {
        if !self.v6 {
            return true;
        }
        let to = match to {
            Some(to) => to,
            // Not connected: the send fails on its own.
            None => match self.peer_addr() {
                Ok(peer) => peer,
                Err(_) => return false,
            },
        };
        match to.ip() {
            IpAddr::V4(_) => true,
            IpAddr::V6(ip) => ip.to_ipv4_mapped().is_some(),
        }
    }

    fn set_int(&self, level: i32, name: i32, v: i32) -> io::Result<()> {
        // SAFETY: passes a pointer to a live i32 and its size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.raw(),
                level,
                name,
                (&v as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::ip(socket::local_addr(&self.fd)?)
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::ip(socket::peer_addr(&self.fd)?)
    }

    /// Any other option, through the socket2 view.
    pub fn with_socket<R>(&self, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        with_socket(&self.fd, f)
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}
