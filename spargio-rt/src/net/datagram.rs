//! `sendmsg` / `recvmsg` ops with an address and control messages, shared
//! by UDP and Unix datagram sockets.

use std::io;

use io_uring::{opcode, squeue::Entry};
use socket2::SockAddr;

use super::addr::AddrBuf;
use super::cmsg::CmsgBuf;
use crate::driver::{Cqe, Op, OpData};
use crate::io::carry_whole::{KeptWhole, WholeOp};
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
    /// Counted in the fd's carry (see `io::carry_whole`); before `fd`,
    /// which keeps that carry alive, so it is dropped first.
    counted: WholeOp,
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

    fn orphaned(&mut self, cqe: Cqe) {
        // The receive's future was dropped but the kernel completed it:
        // its datagram (or error) goes to the next receive.
        let whole = match usize::try_from(cqe.res) {
            Ok(n) => {
                // SAFETY: a successful receive wrote `n` bytes (at most the
                // buffer's room) from the buffer's start.
                let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n) };
                self.control.truncate(controllen(&self.msg));
                KeptWhole::Datagram {
                    data: data.to_vec(),
                    from: AddrBuf {
                        storage: self.addr.storage,
                        len: self.msg.msg_namelen,
                    },
                    control: self.control.as_mut_bytes().to_vec(),
                    flags: self.msg.msg_flags,
                }
            }
            Err(_) => KeptWhole::Failed(-cqe.res),
        };
        self.fd.carry().keep_whole(whole);
    }
}

/// The control-message length the kernel wrote back into `msg`.
fn controllen(msg: &libc::msghdr) -> usize {
    // `msg_controllen` is `size_t` on glibc and `socklen_t` on musl.
    #[allow(clippy::unnecessary_cast)]
    let len = msg.msg_controllen as usize;
    len
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
/// control messages. Cancel-safe: a datagram a dropped receive took is
/// handed out by the next one (see `io::carry_whole`).
pub(crate) async fn recv_msg<B: IoBufMut>(
    fd: &SharedFd,
    mut buf: B,
    control_space: usize,
) -> BufResult<Received, B> {
    let carry = fd.carry();
    while let Some(kept) = std::future::poll_fn(|cx| carry.poll_take_whole(cx)).await {
        match kept {
            KeptWhole::Datagram {
                data,
                from,
                control,
                flags,
            } => {
                let received = hand_out(&data, from, &control, flags, &mut buf, control_space);
                return (Ok(received), buf);
            }
            KeptWhole::Failed(errno) => return (Err(io::Error::from_raw_os_error(errno)), buf),
            // Not on a datagram socket; closed if it were.
            KeptWhole::Accepted { .. } => {}
        }
    }
    let call = carry.whole_call();
    let (res, mut data) = Op::new(RecvMsg {
        counted: carry.whole_op(),
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
        control.truncate(controllen(&data.msg));
        Received {
            len: n,
            addr: data.addr.to_sockaddr(),
            control,
            flags: data.msg.msg_flags,
        }
    });
    let RecvMsg { buf, counted, .. } = data;
    // The op before its call: see `io::carry_whole`.
    drop(counted);
    drop(call);
    (res, buf)
}

/// A kept datagram as one receive into `buf` with room for
/// `control_space` bytes of control messages gets it: cut to `buf`'s room
/// (`MSG_TRUNC`), its control messages dropped if they do not fit
/// (`MSG_CTRUNC`), as the kernel would.
fn hand_out<B: IoBufMut>(
    data: &[u8],
    from: AddrBuf,
    control: &[u8],
    mut flags: i32,
    buf: &mut B,
    control_space: usize,
) -> Received {
    let n = data.len().min(buf.bytes_total());
    // SAFETY: `buf` is valid for writes of `bytes_total >= n` bytes and
    // owned by the caller, so it cannot overlap `data`; the bytes are
    // written before they are marked initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf.stable_mut_ptr(), n);
        buf.set_init(n);
    }
    if n < data.len() {
        flags |= libc::MSG_TRUNC;
    }
    let control = if control.len() <= control_space {
        let mut kept = CmsgBuf::zeroed(control.len());
        kept.as_mut_bytes().copy_from_slice(control);
        kept
    } else {
        flags |= libc::MSG_CTRUNC;
        CmsgBuf::default()
    };
    Received {
        len: n,
        addr: from.to_sockaddr(),
        control,
        flags,
    }
}
