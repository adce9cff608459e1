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

    fn delivered(&self, cqe: &Cqe) {
        // The kernel took the buffer when it posted this CQE: it is no
        // longer free for the other receives sharing the ring, however
        // long this one's consumer takes to get to it.
        if cqe.buffer_id().is_some() {
            self.ring.taken();
        }
    }

    fn orphaned(&self, cqe: Cqe) {
        // Nobody will read this buffer: straight back to the ring.
        if let Some(bid) = cqe.buffer_id() {
            self.ring.give_back(bid);
        }
    }
}

/// A stream of received buffers from one multishot receive (see
/// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)).
///
/// Each item is a [`RingBuf`] holding what one completion delivered; drop
/// it (or let it go out of scope) to return the buffer to the ring.
/// `Ok(None)` is end of stream (or, after [`stop`](RecvMultishot::stop),
/// the end of what was received before it). When the ring runs dry, the receive
/// pauses until a buffer comes back, then resumes where the data stopped.
///
/// Poll it only from a task pinned to the ring's shard (`spawn_local`,
/// `spawn_pinned`): off that shard the receive cannot be re-armed, so
/// `next` fails with `InvalidInput` once the buffers already received are
/// handed out.
pub struct RecvMultishot {
    op: MultiOp<RecvMultiData>,
    ring: Arc<RingInner>,
    starved: bool,
    eof: bool,
    /// [`stop`](RecvMultishot::stop) was called: no re-arming.
    stopped: bool,
    /// A dry ring fails `next` with `ENOBUFS` instead of waiting.
    fail_when_dry: bool,
    /// The highest queue cap [`max_queued`](RecvMultishot::max_queued)
    /// may set: [`UNIX_MAX_QUEUED`] on a Unix stream, else unbounded.
    cap_limit: usize,
    /// This receive's place among the ring's waiters, once it waited for a
    /// buffer.
    waiter: Option<u64>,
}

impl Drop for RecvMultishot {
    fn drop(&mut self) {
        if let Some(id) = self.waiter {
            self.ring.forget_waiter(id);
        }
    }
}

/// The most received buffers a Unix stream's multishot receive lets wait.
///
/// On a Unix stream socket, a multishot receive whose one wake-up drains
/// more than about 33 buffers and then finds the peer's close never posts
/// the end-of-stream completion (Linux 6.18, the kernel's retry limit for
/// one wake-up is 32): the stream would wait for an end that never comes.
/// A queue cap at or below this cancels such a burst before its end and
/// the re-armed receive sees the close at once; the test
/// `a_unix_multishot_receive_with_a_large_cap_still_sees_the_end` in
/// `tests/buf_ring.rs` checks it.
pub const UNIX_MAX_QUEUED: usize = 32;

/// Received buffers that may wait for the consumer before the receive
/// pauses (the rest stays in the socket); see [`RecvMultishot::max_queued`].
pub const DEFAULT_MAX_QUEUED: usize = 16;

impl RecvMultishot {
    /// A receive on a Unix stream socket: its queue cap is held to
    /// [`UNIX_MAX_QUEUED`].
    pub(crate) fn new_unix(fd: &SharedFd, ring: &BufRing) -> RecvMultishot {
        let mut r = RecvMultishot::new(fd, ring);
        r.cap_limit = UNIX_MAX_QUEUED;
        r.max_queued(DEFAULT_MAX_QUEUED);
        r
    }

    pub(crate) fn new(fd: &SharedFd, ring: &BufRing) -> RecvMultishot {
        let op = MultiOp::new(RecvMultiData {
            fd: fd.clone(),
            ring: ring.inner.clone(),
        });
        op.set_queue_cap(DEFAULT_MAX_QUEUED);
        RecvMultishot {
            op,
            ring: ring.inner.clone(),
            starved: false,
            eof: false,
            stopped: false,
            fail_when_dry: false,
            cap_limit: usize::MAX,
            waiter: None,
        }
    }

    /// About `n` received buffers wait for [`next`](Self::next) (default
    /// [`DEFAULT_MAX_QUEUED`]): when the `n`-th arrives the receive is
    /// cancelled, so a consumer that falls behind stops taking more of the
    /// shared ring, and further data waits in the socket (TCP flow
    /// control) until `next` has taken the queued buffers and re-arms the
    /// receive. A soft cap: buffers the kernel filled before the cancel
    /// reached it (one wake-up's burst, up to the ring's free buffers)
    /// are queued too.
    ///
    /// On a Unix stream socket `n` is held to at most [`UNIX_MAX_QUEUED`]
    /// (a kernel quirk would otherwise lose the end of the stream).
    pub fn max_queued(&mut self, n: usize) -> &mut Self {
        self.op.set_queue_cap(n.min(self.cap_limit));
        self
    }

    /// Received buffers waiting for [`next`](Self::next) (how far behind
    /// the consumer is).
    pub fn queued(&self) -> usize {
        self.op.queued()
    }

    /// Whether bytes (or an error) that a cancelled plain read of this
    /// socket took are kept for the next plain read (see
    /// [`crate::io`]). While they are, arming this receive fails with
    /// `InvalidInput`: read them with a plain read first.
    pub fn has_kept_input(&self) -> bool {
        self.op.data().fd.carry().has_kept()
    }

    /// When the ring runs dry, make [`next`](Self::next) fail with
    /// `ENOBUFS` (at once, and again while the ring stays dry) instead of
    /// waiting for a buffer to come back (default: wait). Nothing is lost:
    /// everything received before is handed out first, and the data that
    /// did not fit stays in the socket for a plain read; a later `next`
    /// re-arms the receive once buffers are back. A server uses this so
    /// that connections holding buffers cannot stall the others.
    pub fn fail_when_dry(&mut self, on: bool) -> &mut Self {
        self.fail_when_dry = on;
        self
    }

    /// Stops receiving without losing data: the armed receive is
    /// cancelled, and [`next`](Self::next) hands out what the kernel
    /// delivered before the cancel landed, then `Ok(None)`. Whatever
    /// arrives after that stays in the socket for ordinary reads, so the
    /// connection can be handed over (an HTTP upgrade, say) with every byte
    /// in order.
    ///
    /// ```no_run
    /// # use spargio_rt::io::{AsyncRead, BufRing};
    /// # use spargio_rt::net::TcpStream;
    /// # async fn demo(mut stream: TcpStream) -> std::io::Result<()> {
    /// let ring = BufRing::new(64, 4096)?;
    /// let mut recv = stream.recv_multishot(&ring);
    /// let mut seen = Vec::new();
    /// if let Some(buf) = recv.next().await? {
    ///     seen.extend_from_slice(&buf);
    /// }
    /// recv.stop();
    /// while let Some(buf) = recv.next().await? {
    ///     seen.extend_from_slice(&buf);
    /// }
    /// // From here on, plain reads see the bytes that follow `seen`.
    /// let (_res, _rest) = stream.read(vec![0u8; 4096]).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stop(&mut self) {
        self.stopped = true;
        self.op.pause();
    }

    /// The next received buffer; `Ok(None)` at end of stream.
    pub async fn next(&mut self) -> io::Result<Option<RingBuf>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next received buffer.
    ///
    /// Buffers already received are handed out wherever this is polled;
    /// arming (or re-arming) the receive needs the ring's own shard, so
    /// off it, once those are taken and the receive would have to be
    /// armed again, this fails with `InvalidInput`. See
    /// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)
    /// for keeping the consumer on that shard.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<RingBuf>>> {
        // Taking queued completions is sound on any thread: the queue is a
        // concurrent one with an atomic waker, the kernel finished writing
        // a buffer before its CQE was queued, and a `RingBuf` goes back to
        // the ring under its lock from any thread. Only a submission must
        // go to the ring that registered the buffer group.
        let local = self.ring.is_local();
        let off_shard = || {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spargio: a multishot receive must run on the shard that owns its BufRing \
                 (poll it from a task pinned there: spawn_local or spawn_pinned)",
            )))
        };
        loop {
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            if self.starved && self.stopped {
                // The kernel had already ended the receive: the rest is
                // still in the socket.
                return Poll::Ready(Ok(None));
            }
            if self.starved {
                if self.fail_when_dry {
                    if self.ring.available() == 0 {
                        return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ENOBUFS)));
                    }
                } else if !local {
                    // Waiting for a buffer would end in a re-arm, which
                    // cannot happen here.
                    return off_shard();
                } else if self.ring.wait_for_buffer(cx.waker(), &mut self.waiter) {
                    return Poll::Pending;
                }
                self.starved = false;
            }
            if !local && self.op.needs_arming() {
                return off_shard();
            }
            if self.op.needs_arming() {
                // A cancelled single read kept what it took (see
                // `io::carry`): receiving now would hand out later bytes
                // before those. One still being cancelled is waited for.
                match self.op.data().fd.carry().poll_settled(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(true) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "spargio: a cancelled read of this stream kept bytes: read them \
                             with a plain read before a multishot receive",
                        )))
                    }
                    Poll::Ready(false) => {}
                }
            }
            let cqe = match self.op.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Ended (by the kernel, or by `stop`): polling again
                // re-arms it, unless stopped.
                Poll::Ready(Ok(None)) if self.stopped => return Poll::Ready(Ok(None)),
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Ok(Some(c))) => c,
            };
            if let Some(bid) = cqe.buffer_id() {
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
