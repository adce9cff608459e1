//! Accepting connections: one at a time, or as a multishot stream.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::task::{Context, Poll};

use io_uring::{opcode, squeue::Entry};

use super::addr::AddrBuf;
use crate::driver::{Cqe, MultiData, MultiOp, Op, OpData};
use crate::io::carry_whole::{KeptWhole, WholeOp};
use crate::io::fd::SharedFd;

struct Accept {
    /// Counted in the listener's carry (see `io::carry_whole`); before
    /// `fd`, which keeps that carry alive, so it is dropped first.
    counted: WholeOp,
    fd: SharedFd,
    addr: AddrBuf,
}

impl OpData for Accept {
    fn entry(&mut self) -> Entry {
        opcode::Accept::new(
            self.fd.uring(),
            (&mut self.addr.storage as *mut libc::sockaddr_storage).cast(),
            &mut self.addr.len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn orphaned(&mut self, cqe: Cqe) {
        // The accept won the race against its cancel: the connection goes
        // to the listener's next accept (see `io::carry_whole`).
        if cqe.res >= 0 {
            // SAFETY: a successful accept returns a new fd that only this
            // op owns.
            let fd = unsafe { OwnedFd::from_raw_fd(cqe.res) };
            let peer = AddrBuf {
                storage: self.addr.storage,
                len: self.addr.len,
            };
            self.fd.carry().keep_whole(KeptWhole::Accepted { fd, peer });
        }
    }
}

fn close(fd: i32) {
    // SAFETY: `fd` was just created by the kernel for this op and handed to
    // nobody else; taking ownership closes it exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// Accepts one connection; returns its fd and the peer's address storage.
/// Cancel-safe: a connection a dropped accept took is handed out by the
/// next one.
pub(crate) async fn accept(fd: &SharedFd) -> io::Result<(OwnedFd, AddrBuf)> {
    let carry = fd.carry();
    while let Some(kept) = std::future::poll_fn(|cx| carry.poll_take_whole(cx)).await {
        if let KeptWhole::Accepted { fd, peer } = kept {
            return Ok((fd, peer));
        }
        // (Nothing else is kept on a listener.)
    }
    let call = carry.whole_call();
    let (res, data) = Op::new(Accept {
        counted: carry.whole_op(),
        fd: fd.clone(),
        addr: AddrBuf::new(),
    })
    .await;
    let Accept { counted, addr, .. } = data;
    // The op before its call: see `io::carry_whole`.
    drop(counted);
    drop(call);
    let n = res?.result()?;
    // SAFETY: a successful accept returns a new fd that only we own.
    let conn = unsafe { OwnedFd::from_raw_fd(n as i32) };
    Ok((conn, addr))
}

struct AcceptMulti {
    fd: SharedFd,
}

impl MultiData for AcceptMulti {
    fn entry(&self) -> Entry {
        opcode::AcceptMulti::new(self.fd.uring())
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn orphaned(&self, cqe: Cqe) {
        if cqe.res >= 0 {
            close(cqe.res);
        }
    }
}

/// A multishot accept: one armed SQE yields connection after connection.
pub(crate) struct MultiAccept {
    op: MultiOp<AcceptMulti>,
}

/// Accepted connections that may wait for the consumer before the
/// multishot accept is stopped (re-armed once they are taken): a consumer
/// that falls behind leaves the rest in the listen backlog, where the
/// kernel applies backpressure, instead of piling up open fds here.
const ACCEPT_QUEUE_CAP: usize = 256;

impl MultiAccept {
    pub(crate) fn new(fd: &SharedFd) -> Self {
        let op = MultiOp::new(AcceptMulti { fd: fd.clone() });
        op.set_queue_cap(ACCEPT_QUEUE_CAP);
        MultiAccept { op }
    }

    /// Stops accepting; see [`Incoming::pause`](super::Incoming::pause).
    pub(crate) fn pause(&mut self) {
        self.op.pause();
    }

    /// Accepts again from the next poll on.
    pub(crate) fn resume(&mut self) {
        self.op.resume();
    }

    /// A connection accepted before [`pause`](Self::pause), or `None` once
    /// the paused op has handed out everything.
    pub(crate) fn poll_paused(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<OwnedFd>>> {
        match self.op.poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Ok(Some(c))) => Poll::Ready(Some(c.result().map(|n| {
                // SAFETY: a successful accept CQE carries a new fd that
                // only we own.
                unsafe { OwnedFd::from_raw_fd(n as i32) }
            }))),
        }
    }

    /// The next accepted fd. Re-arms the op when the kernel ends it; an
    /// accept error (e.g. `EMFILE`) is returned, and the next poll tries
    /// again.
    pub(crate) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<OwnedFd>> {
        // Asking for the next connection ends a pause.
        self.op.resume();
        loop {
            match self.op.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(None)) => continue, // ended: re-arm
                Poll::Ready(Ok(Some(c))) => {
                    let r = c.result().map(|n| {
                        // SAFETY: a successful accept CQE carries a new fd
                        // that only we own.
                        unsafe { OwnedFd::from_raw_fd(n as i32) }
                    });
                    return Poll::Ready(r);
                }
            }
        }
    }
}
