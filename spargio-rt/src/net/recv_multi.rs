//! Multishot receive into a provided-buffer ring.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use io_uring::{opcode, squeue::Entry};

use crate::driver::{Cqe, MultiData, MultiOp};
use crate::io::buf_ring::{RingBuf, RingInner};
use crate::io::fd::SharedFd;
use crate::io::BufRing;

struct RecvMultiData {
    fd: SharedFd,
    ring: Arc<RingInner>,
}

impl MultiData for RecvMultiData {
    fn entry(&self) -> Entry {
        opcode::RecvMulti::new(self.fd.uring(), self.ring.bgid).build()
    }

    fn orphaned(&self, cqe: Cqe) {
        // Nobody will read this buffer: straight back to the ring.
        if let Some(bid) = cqe.buffer_id() {
            self.ring.taken();
            self.ring.give_back(bid);
        }
    }
}

/// A stream of received buffers from one multishot receive (see
/// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)).
///
/// Each item is a [`RingBuf`] holding what one completion delivered; drop
/// it (or let it go out of scope) to return the buffer to the ring.
/// `Ok(None)` is end of stream. When the ring runs dry, the receive
/// pauses until a buffer comes back, then resumes where the data stopped.
pub struct RecvMultishot {
    op: MultiOp<RecvMultiData>,
    ring: Arc<RingInner>,
    starved: bool,
    eof: bool,
}

impl RecvMultishot {
    pub(crate) fn new(fd: &SharedFd, ring: &BufRing) -> RecvMultishot {
        RecvMultishot {
            op: MultiOp::new(RecvMultiData {
                fd: fd.clone(),
                ring: ring.inner.clone(),
            }),
            ring: ring.inner.clone(),
            starved: false,
            eof: false,
        }
    }

    /// The next received buffer; `Ok(None)` at end of stream.
    pub async fn next(&mut self) -> io::Result<Option<RingBuf>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next received buffer.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<RingBuf>>> {
        if !self.ring.is_local() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spargio: a multishot receive must run on the shard that owns its BufRing",
            )));
        }
        loop {
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            if self.starved {
                if self.ring.wait_for_buffer(cx.waker()) {
                    return Poll::Pending;
                }
                self.starved = false;
            }
            let cqe = match self.op.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Ended by the kernel: polling again re-arms it.
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Ok(Some(c))) => c,
            };
            if let Some(bid) = cqe.buffer_id() {
                self.ring.taken();
                let buf = RingBuf::new(self.ring.clone(), bid, cqe.res.max(0) as usize);
                if cqe.res > 0 {
                    return Poll::Ready(Ok(Some(buf)));
                }
                drop(buf); // an empty completion that still used a buffer
            }
            match cqe.res {
                0 => {
                    self.eof = true;
                    return Poll::Ready(Ok(None));
                }
                r if r == -libc::ENOBUFS => {
                    // The ring ran dry; the data is still in the socket.
                    self.starved = true;
                }
                r if r < 0 => return Poll::Ready(Err(io::Error::from_raw_os_error(-r))),
                _ => {}
            }
        }
    }
}
