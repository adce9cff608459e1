//! `sendmsg` / `recvmsg` ops with an address and control messages, shared
//! by UDP and Unix datagram sockets.

use std::io;

use io_uring::{opcode, squeue::Entry};
use socket2::SockAddr;

use super::addr::AddrBuf;
use super::cmsg::CmsgBuf;
use crate::driver::{Op, OpData};
use crate::io::fd::SharedFd;
use crate::io::{BufResult, IoBuf, IoBufMut};

struct SendMsg<B> {
    fd: SharedFd,
    buf: B,
    addr: Option<SockAddr>,
    control: CmsgBuf,
    iov: libc::iovec,
    msg: libc::msghdr,
}

// SAFETY: the raw pointers in `iov` and `msg` point only into this op's own
// fields and buffers, which travel with it; the op cell hands the value
// between threads with acquire/release ordering.
unsafe impl<B: Send> Send for SendMsg<B> {}

impl<B: IoBuf> OpData for SendMsg<B> {
    const DIRECTION: crate::driver::cell::Direction = crate::driver::cell::Direction::Out;

    fn entry(&mut self) -> Entry {
        self.iov = libc::iovec {
            iov_base: self.buf.stable_ptr() as *mut libc::c_void,
            iov_len: self.buf.bytes_init(),
        };
        // SAFETY: an all-zero msghdr is a valid empty header.
        self.msg = unsafe { std::mem::zeroed() };
        if let Some(a) = &self.addr {
            self.msg.msg_name = a.as_ptr() as *mut libc::c_void;
            self.msg.msg_namelen = a.len();
        }
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        if !self.control.is_empty() {
            self.msg.msg_control = self.control.as_mut_ptr().cast();
            self.msg.msg_controllen = self.control.len() as _;
        }
        opcode::SendMsg::new(self.fd.uring(), &self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
}

/// One `sendmsg` of `buf` to `addr` (or the connected peer) with the
/// encoded control messages `control` (empty: none).
pub(crate) async fn send_msg<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
    addr: Option<SockAddr>,
    control: CmsgBuf,
) -> BufResult<usize, B> {
    let (res, data) = Op::new(SendMsg {
        fd: fd.clone(),
        buf,
        addr,
        control,
        iov: libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
        // SAFETY: an all-zero msghdr is a valid empty header.
        msg: unsafe { std::mem::zeroed() },
    })
    .await;
    (res.and_then(|c| c.result()).map(|n| n as usize), data.buf)
}

struct RecvMsg<B> {
    fd: SharedFd,
    buf: B,
    addr: AddrBuf,
    control: CmsgBuf,
    iov: libc::iovec,
    msg: libc::msghdr,
}

// SAFETY: as for `SendMsg`: the pointers lead into the op's own fields.
unsafe impl<B: Send> Send for RecvMsg<B> {}

impl<B: IoBufMut> OpData for RecvMsg<B> {
    const DIRECTION: crate::driver::cell::Direction = crate::driver::cell::Direction::In;

    fn entry(&mut self) -> Entry {
        self.iov = libc::iovec {
            iov_base: self.buf.stable_mut_ptr().cast(),
            iov_len: self.buf.bytes_total(),
        };
        // SAFETY: an all-zero msghdr is a valid empty header.
        self.msg = unsafe { std::mem::zeroed() };
        self.msg.msg_name = (&mut self.addr.storage as *mut libc::sockaddr_storage).cast();
        self.msg.msg_namelen = self.addr.len;
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        if !self.control.is_empty() {
            self.msg.msg_control = self.control.as_mut_ptr().cast();
            self.msg.msg_controllen = self.control.len() as _;
        }
        opcode::RecvMsg::new(self.fd.uring(), &mut self.msg).build()
    }
}

/// What one `recvmsg` delivered.
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) addr: SockAddr,
    /// The control messages the kernel wrote (only the used part).
    pub(crate) control: CmsgBuf,
    /// `msg_flags` (`MSG_TRUNC`, `MSG_CTRUNC`...).
    pub(crate) flags: i32,
}

/// One `recvmsg` into `buf`, with room for `control_space` bytes of
/// control messages.
pub(crate) async fn recv_msg<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    control_space: usize,
) -> BufResult<Received, B> {
    let (res, mut data) = Op::new(RecvMsg {
        fd: fd.clone(),
        buf,
        addr: AddrBuf::new(),
        control: CmsgBuf::zeroed(control_space),
        iov: libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
        // SAFETY: an all-zero msghdr is a valid empty header.
        msg: unsafe { std::mem::zeroed() },
    })
    .await;
    let res: io::Result<Received> = res.and_then(|c| c.result()).map(|n| {
        let n = n as usize;
        // SAFETY: the kernel wrote `n` bytes from the buffer's start.
        unsafe { data.buf.set_init(n) };
        data.addr.len = data.msg.msg_namelen;
        let mut control = std::mem::take(&mut data.control);
        // `msg_controllen` is `size_t` on glibc and `socklen_t` on musl.
        #[allow(clippy::unnecessary_cast)]
        control.truncate(data.msg.msg_controllen as usize);
        Received {
            len: n,
            addr: data.addr.to_sockaddr(),
            control,
            flags: data.msg.msg_flags,
        }
    });
    (res, data.buf)
}
