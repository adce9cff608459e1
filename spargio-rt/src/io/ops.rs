//! The byte-moving ops every stream and file shares: read, write, their
//! vectored and socket forms. Each owns its fd clone and its buffers.

use io_uring::{opcode, squeue::Entry, types};

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::carry::{Carried, Counted};
use super::fd::SharedFd;
use crate::driver::{Cqe, Op, OpData};

/// Offset meaning "the file's current position" (streams, pipes).
pub(crate) const CURRENT_POS: u64 = u64::MAX;

/// Turns an op's outcome into a byte count, and on success records it
/// with `on_ok` (e.g. to mark bytes initialised).
fn bytes(res: std::io::Result<Cqe>) -> std::io::Result<usize> {
    res.and_then(|c| c.result()).map(|n| n as usize)
}

struct Read<B> {
    /// A stream read, counted in its fd's carry (see `io::carry`); before
    /// `fd`, which keeps that carry alive, so it is dropped first.
    counted: Option<Counted>,
    fd: SharedFd,
    buf: B,
    offset: u64,
    /// `Some(flags)`: a socket `recv` with these flags; `None`: a `read`.
    recv: Option<i32>,
}

impl<B: IoBufMut> OpData for Read<B> {
    const DIRECTION: crate::driver::cell::Direction = crate::driver::cell::Direction::In;

    fn entry(&mut self) -> Entry {
        let ptr = self.buf.stable_mut_ptr();
        let len = self.buf.bytes_total().min(u32::MAX as usize) as u32;
        if let Some(flags) = self.recv {
            opcode::Recv::new(self.fd.uring(), ptr, len)
                .flags(flags)
                .build()
        } else {
            opcode::Read::new(self.fd.uring(), ptr, len)
                .offset(self.offset)
                .build()
        }
    }

    fn orphaned(&mut self, cqe: Cqe) {
        let Some(counted) = &self.counted else {
            return;
        };
        if self.recv.is_some_and(|flags| flags & libc::MSG_PEEK != 0) {
            // A peek took no bytes off the stream, but an error it met is
            // gone from the socket (the kernel reports a reset once, to
            // whichever call sees it first): the next read's.
            if cqe.res < 0 {
                // SAFETY: a negative result reads no bytes.
                unsafe { counted.carry().keep(std::ptr::null(), cqe.res) };
            }
            return;
        }
        // SAFETY: a positive result is how many bytes the kernel wrote
        // from the buffer's start.
        unsafe { counted.carry().keep(self.buf.stable_ptr(), cqe.res) };
    }
}

/// Reads into `buf` at `offset` (or the current position), as a file's
/// positional read: a cancelled read's bytes are not kept.
pub(crate) async fn read_at<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    offset: u64,
) -> BufResult<usize, B> {
    run_read(Read {
        counted: None,
        fd: fd.clone(),
        buf,
        offset,
        recv: None,
    })
    .await
}

/// Reads a stream (a child's pipe) into `buf`.
/// Cancel-safe: what a dropped read took is handed out by the next one
/// (see `io::carry`).
pub(crate) async fn read_stream<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    stream_read(fd, buf, None).await
}

/// Receives into `buf` from a stream socket, cancel-safe as
/// [`read_stream`].
pub(crate) async fn recv_stream<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    stream_read(fd, buf, Some(0)).await
}

async fn stream_read<B: IoBufMut>(
    fd: &SharedFd,
    mut buf: B,
    recv: Option<i32>,
) -> BufResult<usize, B> {
    let carry = fd.carry();
    if carry.busy() && buf.bytes_total() > 0 {
        match std::future::poll_fn(|cx| carry.poll_take(cx, &mut buf)).await {
            Carried::Nothing => {}
            Carried::Bytes(n) => return (Ok(n), buf),
            Carried::Error(e) => return (Err(e), buf),
        }
    }
    run_read(Read {
        counted: Some(carry.count()),
        fd: fd.clone(),
        buf,
        offset: CURRENT_POS,
        recv,
    })
    .await
}

/// Receives into `buf` from a stream socket without taking the bytes off
/// its queue (`MSG_PEEK` and `flags`): the next receive gets them again.
/// Counted in the fd's carry, so that an error it meets after its future
/// was dropped is kept for the next read (see `Read::orphaned`).
async fn recv_peek<B: IoBufMut>(fd: &SharedFd, buf: B, flags: i32) -> BufResult<usize, B> {
    run_read(Read {
        counted: Some(fd.carry().count()),
        fd: fd.clone(),
        buf,
        offset: 0,
        recv: Some(libc::MSG_PEEK | flags),
    })
    .await
}

/// Peeks a stream socket: bytes a cancelled read took (see `io::carry`)
/// come first, then what the socket has queued (without waiting for more
/// once something was kept).
pub(crate) async fn recv_peek_stream<B: IoBufMut>(
    fd: &SharedFd,
    mut buf: B,
) -> BufResult<usize, B> {
    let carry = fd.carry();
    if !carry.busy() {
        return recv_peek(fd, buf, 0).await;
    }
    let kept = match std::future::poll_fn(|cx| carry.poll_peek(cx)).await {
        Ok(kept) => kept,
        // A kept error is what the next read gets: the peek says so too.
        Err(e) => return (Err(e), buf),
    };
    if kept.is_empty() {
        return recv_peek(fd, buf, 0).await;
    }
    let total = buf.bytes_total();
    let first = kept.len().min(total);
    let mut more = Vec::new();
    if first < total {
        let (res, data) =
            recv_peek(fd, Vec::with_capacity(total - first), libc::MSG_DONTWAIT).await;
        match res {
            Ok(_) => {
                more = data;
                // The room asked for bounds it, whatever capacity it came
                // with.
                more.truncate(total - first);
            }
            // The socket reported its error to this peek, and only once:
            // it follows the kept bytes, for the read that gets there (the
            // peek hands out the bytes).
            Err(e) => {
                if let Some(errno) = e.raw_os_error() {
                    // SAFETY: a negative result reads no bytes.
                    unsafe { carry.keep(std::ptr::null(), -errno) };
                }
            }
        }
    }
    // SAFETY: `buf` is valid for writes of `bytes_total` bytes, which
    // `first + more.len()` does not exceed (`more` is truncated to the
    // rest); both sources are separate allocations; the bytes are written
    // before they are marked initialised.
    unsafe {
        let to = buf.stable_mut_ptr();
        std::ptr::copy_nonoverlapping(kept.as_ptr(), to, first);
        std::ptr::copy_nonoverlapping(more.as_ptr(), to.add(first), more.len());
        buf.set_init(first + more.len());
    }
    (Ok(first + more.len()), buf)
}

async fn run_read<B: IoBufMut>(op: Read<B>) -> BufResult<usize, B> {
    let (res, mut data) = Op::new(op).await;
    let res = bytes(res);
    if let Ok(n) = res {
        // SAFETY: the kernel wrote `n` bytes from the buffer's start.
        unsafe { data.buf.set_init(n) };
    }
    (res, data.buf)
}

struct Write<B> {
    fd: SharedFd,
    buf: B,
    offset: u64,
    send: bool,
}

impl<B: IoBuf> OpData for Write<B> {
    const DIRECTION: crate::driver::cell::Direction = crate::driver::cell::Direction::Out;

    fn entry(&mut self) -> Entry {
        let ptr = self.buf.stable_ptr();
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        if self.send {
            opcode::Send::new(self.fd.uring(), ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        } else {
            opcode::Write::new(self.fd.uring(), ptr, len)
                .offset(self.offset)
                .build()
        }
    }

    fn quiet_result(&self) -> Option<i32> {
        i32::try_from(self.buf.bytes_init()).ok().filter(|&n| n > 0)
    }
}

/// Writes `buf`'s initialised bytes at `offset` (or the current position).
pub(crate) async fn write_at<B: IoBuf>(fd: &SharedFd, buf: B, offset: u64) -> BufResult<usize, B> {
    let (res, data) = Op::new(Write {
        fd: fd.clone(),
        buf,
        offset,
        send: false,
    })
    .await;
    (bytes(res), data.buf)
}

/// Sends `buf`'s initialised bytes on a socket (no `SIGPIPE`).
pub(crate) async fn send<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    let (res, data) = Op::new(Write {
        fd: fd.clone(),
        buf,
        offset: 0,
        send: true,
    })
    .await;
    (bytes(res), data.buf)
}

struct Writev<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    msg: Box<libc::msghdr>,
    offset: u64,
    send: bool,
}

// SAFETY: the raw pointers in `iovecs` and `msg` point only into this op's
// own buffers (and `iovecs`), which it owns and which travel with it; the
// op cell hands the whole value between threads with acquire/release.
unsafe impl<B: Send> Send for Writev<B> {}

impl<B: IoBuf> OpData for Writev<B> {
    const DIRECTION: crate::driver::cell::Direction = crate::driver::cell::Direction::Out;

    fn entry(&mut self) -> Entry {
        // The kernel takes at most IOV_MAX vectors in one call; a longer
        // list is a partial write of its first IOV_MAX buffers, which the
        // caller continues like any other short write.
        self.iovecs = self
            .bufs
            .iter()
            .take(IOV_MAX)
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut libc::c_void,
                iov_len: b.bytes_init(),
            })
            .collect();
        if self.send {
            // SAFETY: an all-zero msghdr is a valid empty header.
            *self.msg = unsafe { std::mem::zeroed() };
            self.msg.msg_iov = self.iovecs.as_mut_ptr();
            self.msg.msg_iovlen = self.iovecs.len() as _;
            opcode::SendMsg::new(self.fd.uring(), &*self.msg as *const libc::msghdr)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        } else {
            opcode::Writev::new(
                self.fd.uring(),
                self.iovecs.as_ptr().cast(),
                self.iovecs.len() as u32,
            )
            .offset(self.offset)
            .build()
        }
    }
}

/// Most buffers one vectored write passes to the kernel (Linux's
/// `UIO_MAXIOV`); more would fail the call with `EINVAL`/`EMSGSIZE`.
pub(crate) const IOV_MAX: usize = 1024;

/// One vectored write (or `sendmsg` on a socket) of the buffers'
/// initialised bytes, in order: of the first [`IOV_MAX`] buffers only,
/// when there are more (a short write).
pub(crate) async fn write_vectored<B: IoBuf>(
    fd: &SharedFd,
    bufs: Vec<B>,
    offset: u64,
    send: bool,
) -> BufResult<usize, Vec<B>> {
    let (res, data) = Op::new(Writev {
        fd: fd.clone(),
        bufs,
        iovecs: Vec::new(),
        // SAFETY: an all-zero msghdr is a valid empty header.
        msg: Box::new(unsafe { std::mem::zeroed() }),
        offset,
        send,
    })
    .await;
    (bytes(res), data.bufs)
}

/// Shuts down part of a socket (`libc::SHUT_WR`, ...).
///
/// A plain `shutdown(2)`, not `IORING_OP_SHUTDOWN`: the kernel never
/// issues that op inline (it always hands it to an io-wq worker thread,
/// one wake-up and two context switches per call), while the syscall only
/// queues a FIN (or marks the read side closed) and never waits for the
/// peer. A connection-per-request load paid the worker hand-off once per
/// connection.
pub(crate) async fn shutdown(fd: &SharedFd, how: i32) -> std::io::Result<()> {
    // SAFETY: `fd` is an open descriptor owned by `SharedFd` for the
    // duration of the call; `shutdown` reads nothing from our memory.
    let rc = unsafe { libc::shutdown(fd.raw(), how) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

struct Fsync {
    fd: SharedFd,
    data_only: bool,
}

impl OpData for Fsync {
    fn entry(&mut self) -> Entry {
        let mut op = opcode::Fsync::new(self.fd.uring());
        if self.data_only {
            op = op.flags(types::FsyncFlags::DATASYNC);
        }
        op.build()
    }
}

/// `fsync`/`fdatasync` through the ring.
pub(crate) async fn fsync(fd: &SharedFd, data_only: bool) -> std::io::Result<()> {
    let (res, _) = Op::new(Fsync {
        fd: fd.clone(),
        data_only,
    })
    .await;
    res.and_then(|c| c.result()).map(drop)
}
