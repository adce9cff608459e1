//! Encoding and decoding the control messages UDP needs for QUIC: GSO
//! segment size, GRO, ECN and packet info.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Options for one [`UdpSocket::send_msg`](super::UdpSocket::send_msg).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// GSO: the buffer holds several datagrams of this size (the last may
    /// be shorter); the kernel splits it (`UDP_SEGMENT`).
    pub segment_size: Option<u16>,
    /// The ECN codepoint (0-3) for the IP header.
    ///
    /// The control message (`IP_TOS` / `IPV6_TCLASS`) sets the whole TOS
    /// (IPv4) or traffic-class (IPv6) byte for this datagram, not only its
    /// two ECN bits: the DSCP bits a socket option set are replaced, with
    /// 0, for it. Leave this `None` to send with the socket's byte.
    pub ecn: Option<u8>,
    /// The source IP to send from (`IP_PKTINFO` / `IPV6_PKTINFO`). On an
    /// IPv6 socket an IPv4 address is sent as its mapped form; an IPv6
    /// address on an IPv4 socket fails the send with `InvalidInput`.
    pub src_ip: Option<IpAddr>,
}

/// What [`UdpSocket::recv_msg`](super::UdpSocket::recv_msg) learned
/// besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes received (with GRO, several datagrams back to back).
    pub len: usize,
    /// The sender.
    pub addr: std::net::SocketAddr,
    /// GRO: the size of each coalesced datagram, when the kernel merged
    /// several into this buffer.
    pub segment_size: Option<usize>,
    /// The ECN codepoint of the IP header, if `set_recv_ecn` is on.
    pub ecn: Option<u8>,
    /// The local address the datagram was sent to, if
    /// `set_recv_pktinfo` is on.
    pub dst_ip: Option<IpAddr>,
    /// Whether the datagram was longer than the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Whether the kernel had more control messages than fit the room
    /// it was given (`MSG_CTRUNC`): some of `segment_size`, `ecn` and
    /// `dst_ip` may be missing. Happens when options beyond these
    /// (timestamps, say, through `with_socket`) are also on, and for a
    /// datagram a plain `recv`/`recv_from` received but was dropped before
    /// it gave it back (it is kept for the next receive, without the
    /// control messages a plain receive has no room for). With GRO on, a
    /// truncated datagram may hold several segments of unknown size.
    pub control_truncated: bool,
}

impl RecvMeta {
    /// The datagram boundaries in the received bytes: `len` split into
    /// `segment_size` pieces (one piece without GRO; none for an empty
    /// datagram, which `len == 0` tells). When [`truncated`](Self::truncated)
    /// is set the buffer was too small and the last piece is the start of
    /// a datagram, not a whole one.
    pub fn segments(&self) -> impl Iterator<Item = std::ops::Range<usize>> {
        let len = self.len;
        let step = self.segment_size.unwrap_or(len).max(1);
        (0..len).step_by(step).map(move |s| s..(s + step).min(len))
    }
}

/// Control-message bytes in storage aligned for `cmsghdr`.
///
/// The kernel's layout (and the `CMSG_*` macros walking it) reads the
/// buffer as `cmsghdr` headers, which need their alignment: a `Vec<u8>`
/// only promises 1. The bytes live in `u64` words (alignment 8, at least
/// `cmsghdr`'s everywhere), of which the first `len` bytes are the buffer.
#[derive(Default)]
pub(crate) struct CmsgBuf {
    words: Vec<u64>,
    len: usize,
}

// A word is at least as aligned as a header, on every target.
const _: () = assert!(std::mem::align_of::<u64>() >= std::mem::align_of::<libc::cmsghdr>());

impl CmsgBuf {
    /// `len` zeroed bytes.
    pub(crate) fn zeroed(len: usize) -> CmsgBuf {
        CmsgBuf {
            words: vec![0u64; len.div_ceil(8)],
            len,
        }
    }

    /// The buffer's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no byte.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the bytes start (aligned for `cmsghdr`).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }

    /// The bytes.
    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        let len = self.len;
        // SAFETY: the words hold at least `len` initialised bytes (a
        // multiple of 8 at or above it), any byte pattern is a valid
        // `u8`, and the slice borrows `self` mutably.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), len) }
    }

    /// Keeps the first `len` bytes (no effect if it is longer already).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Room for every control message we decode (about 90 bytes with GRO, ECN
/// and packet info on), and for a few more a user turned on.
pub(crate) const RECV_SPACE: usize = 256;

/// Encodes `opts` as control messages for a socket of `v6` family, for a
/// datagram that goes out as IPv4 when `v4_destination` (on an IPv6
/// socket: to an IPv4-mapped address; its IP header takes the TOS byte
/// only from `IP_TOS`, the kernel ignoring `IPV6_TCLASS` there).
pub(crate) fn encode(opts: &SendOptions, v6: bool, v4_destination: bool) -> io::Result<CmsgBuf> {
    let mut items: Vec<(i32, i32, Vec<u8>)> = Vec::new();
    if let Some(seg) = opts.segment_size {
        items.push((libc::SOL_UDP, libc::UDP_SEGMENT, seg.to_ne_bytes().to_vec()));
    }
    if let Some(ecn) = opts.ecn {
        let v = i32::from(ecn & 0b11);
        if v6 && !v4_destination {
            items.push((
                libc::IPPROTO_IPV6,
                libc::IPV6_TCLASS,
                v.to_ne_bytes().to_vec(),
            ));
        } else {
            items.push((libc::IPPROTO_IP, libc::IP_TOS, v.to_ne_bytes().to_vec()));
        }
    }
    match opts.src_ip {
        Some(IpAddr::V4(ip)) if !v6 => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(ip.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            items.push((libc::IPPROTO_IP, libc::IP_PKTINFO, pod_bytes(&info)));
        }
        Some(ip) if v6 => {
            let ip6 = match ip {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: ip6.octets(),
                },
                ipi6_ifindex: 0,
            };
            items.push((libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, pod_bytes(&info)));
        }
        Some(_) => {
            // Left: an IPv6 address on an IPv4 socket. Sent from whatever
            // address the kernel picks instead, the datagram would reach
            // the peer from an address it does not expect.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an IPv6 source address for a datagram on an IPv4 socket",
            ));
        }
        None => {}
    }
    let space: usize = items
        .iter()
        // SAFETY: CMSG_SPACE is pure arithmetic.
        .map(|(_, _, d)| unsafe { libc::CMSG_SPACE(d.len() as u32) } as usize)
        .sum();
    let mut buf = CmsgBuf::zeroed(space);
    if space == 0 {
        return Ok(buf);
    }
    // SAFETY: the msghdr only describes `buf`, which is aligned for
    // `cmsghdr` and has exactly the room CMSG_SPACE asked for each item;
    // CMSG_FIRSTHDR/NXTHDR stay inside it (and keep the alignment), and
    // each header's data gets `d.len()` bytes, within its space.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = buf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        for (level, ty, d) in &items {
            (*c).cmsg_level = *level;
            (*c).cmsg_type = *ty;
            (*c).cmsg_len = libc::CMSG_LEN(d.len() as u32) as _;
            std::ptr::copy_nonoverlapping(d.as_ptr(), libc::CMSG_DATA(c), d.len());
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(buf)
}

/// A packet-info struct's bytes, as the kernel reads them from a control
/// message.
fn pod_bytes<T: PacketInfo>(v: &T) -> Vec<u8> {
    // SAFETY: `PacketInfo` is only implemented for `in_pktinfo` and
    // `in6_pktinfo`, C structs made of integers and byte arrays with no
    // padding (12 and 20 bytes): every byte of `*v` is initialised, and
    // the slice covers exactly `*v`, borrowed for the call.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

/// The packet-info structs [`pod_bytes`] may read: no padding bytes.
trait PacketInfo: Copy {}
impl PacketInfo for libc::in_pktinfo {}
impl PacketInfo for libc::in6_pktinfo {}

/// What the decoded control messages said.
#[derive(Default)]
pub(crate) struct Decoded {
    pub(crate) segment_size: Option<usize>,
    pub(crate) ecn: Option<u8>,
    pub(crate) dst_ip: Option<IpAddr>,
}

/// Decodes the control messages the kernel wrote into `control`.
pub(crate) fn decode(control: &mut CmsgBuf) -> Decoded {
    let mut out = Decoded::default();
    if control.is_empty() {
        return out;
    }
    let control = control.as_mut_bytes();
    // SAFETY: the msghdr describes `control`, aligned for `cmsghdr` (a
    // `CmsgBuf`), whose first bytes the kernel filled with well-formed
    // headers; CMSG_FIRSTHDR/NXTHDR return null at the end, and each read
    // stays within the header's `cmsg_len`.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            // The header's length, clamped to the buffer (the kernel never
            // writes past it, but a short or long `cmsg_len` must not send
            // a read outside it either).
            let header = data as usize - c as usize;
            let end = control.as_ptr() as usize + control.len();
            let dlen = ((*c).cmsg_len as usize)
                .saturating_sub(header)
                .min(end.saturating_sub(data as usize));
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_UDP, libc::UDP_GRO) if dlen >= 4 => {
                    let v = std::ptr::read_unaligned(data.cast::<i32>());
                    out.segment_size = Some(v as usize);
                }
                (libc::IPPROTO_IP, libc::IP_TOS) if dlen >= 1 => {
                    out.ecn = Some(*data & 0b11);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if dlen >= 4 => {
                    let v = std::ptr::read_unaligned(data.cast::<i32>());
                    out.ecn = Some((v & 0b11) as u8);
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if dlen >= std::mem::size_of::<libc::in_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    let ip = Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes());
                    out.dst_ip = Some(IpAddr::V4(ip));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if dlen >= std::mem::size_of::<libc::in6_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    // An IPv4 datagram on a dual-stack socket comes with
                    // its address mapped; reported as the IPv4 address,
                    // as its `IP_PKTINFO` (which may come too) says it.
                    let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    out.dst_ip = Some(ip.to_canonical());
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_options_decode_back() {
        let opts = SendOptions {
            segment_size: Some(1200),
            ecn: Some(2),
            src_ip: None,
        };
        let mut buf = encode(&opts, false, true).unwrap();
        let d = decode(&mut buf);
        // UDP_SEGMENT is not something recv reports, but IP_TOS is.
        assert_eq!(d.ecn, Some(2));
        assert_eq!(d.segment_size, None);
    }

    #[test]
    fn control_buffers_are_aligned_for_headers_whatever_their_size() {
        let align = std::mem::align_of::<libc::cmsghdr>();
        for len in [0, 1, 3, 7, 9, 17, 33, 255, 256] {
            let mut b = CmsgBuf::zeroed(len);
            assert_eq!(b.as_mut_ptr() as usize % align, 0, "len {len}");
            assert_eq!(b.len(), len);
            assert_eq!(b.as_mut_bytes(), vec![0u8; len].as_slice());
            b.truncate(len / 2);
            assert_eq!(b.len(), len / 2);
            assert_eq!(b.as_mut_ptr() as usize % align, 0, "len {len}");
        }
        // And what `encode` builds, for odd data sizes (a u16 segment
        // size alone: CMSG_SPACE(2)).
        for opts in [
            SendOptions {
                segment_size: Some(1200),
                ..SendOptions::default()
            },
            SendOptions {
                segment_size: Some(1),
                ecn: Some(3),
                src_ip: Some("10.0.0.1".parse().unwrap()),
            },
        ] {
            let mut b = encode(&opts, false, true).unwrap();
            assert!(!b.is_empty());
            assert_eq!(b.as_mut_ptr() as usize % align, 0);
        }
    }

    #[test]
    fn segments_split_the_length() {
        let m = RecvMeta {
            len: 2500,
            addr: "127.0.0.1:1".parse().unwrap(),
            segment_size: Some(1000),
            ecn: None,
            dst_ip: None,
            truncated: false,
            control_truncated: false,
        };
        let v: Vec<_> = m.segments().collect();
        assert_eq!(v, vec![0..1000, 1000..2000, 2000..2500]);
    }
}
