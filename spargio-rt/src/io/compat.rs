//! Poll-based [`futures_io`] traits over our owned-buffer streams, for
//! libraries written against them (futures-rustls, async-compression...).
//!
//! [`Compat`] splits the stream ([`Split`]) and keeps the two sides in
//! separate slots, so a read can be in flight while writes go out: a TLS
//! session waiting for the peer's record can still send its own.
//!
//! **Reads** go through one internal buffer (16 KiB by default), allocated
//! once: while a read is in flight the read half and the buffer live in
//! the op's future, which hands both back when the kernel is done; then
//! `poll_read` / `poll_fill_buf` serve the bytes from it. A read in flight
//! belongs to the adapter, not to the caller's future: if that future is
//! dropped (a `select` picked another branch), the read carries on and
//! the next `poll_read` gets its bytes, so no data is lost.
//!
//! **Writes** are write-behind: `poll_write` copies up to 64 KiB of the
//! caller's bytes into the adapter's one reused write buffer, starts
//! writing all of them, and reports them written at once. The next
//! `poll_write`, `poll_flush` or `poll_close` first waits for that write
//! to finish, and returns its error if it failed; a failed write fails
//! every later write, flush and close too (its bytes are lost, so nothing
//! after them may be reported sent). Reads drive a write in flight too, so
//! a request written without a flush still goes out in full while its
//! writer waits for the answer. Still, call `flush` (or `close`) before
//! dropping the adapter: dropping it cancels a write still in flight, and
//! those bytes are lost.
//!
//! **Two tasks** may poll one side, as when the halves of a TLS session
//! run in two tasks: its read half sends an alert through the write side
//! when it meets a bad record. Every task waiting on a side's op is woken
//! when the op completes, not only the last one to poll it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Wake, Waker};

use super::ext::AsyncWriteExt;
use super::quiet::loudly;
use super::split::Split;
use super::traits::{AsyncRead, AsyncWrite};
use crate::net::{SocketStream, TcpStream, UnixStream};

/// A boxed, owned op future, as [`CompatIo`] makes them.
pub type OpFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The default read buffer size of [`Compat`].
const READ_BUF: usize = 16 * 1024;
/// The most one `poll_write` takes.
const MAX_WRITE: usize = 64 * 1024;

/// A stream [`Compat`] can drive: its halves' ops, boxed as `Send`
/// futures that own the half (and buffer) and give them back.
///
/// Implemented for [`TcpStream`], [`UnixStream`] and [`SocketStream`]. A generic impl is not
/// possible because our traits' futures are `impl Future`, whose `Send`ness
/// only a concrete type can vouch for; for another `Split` stream whose
/// futures are `Send`, implement it with bodies like
/// `Box::pin(async move { let (r, b) = half.read(buf).await; (r, b, half) })`.
pub trait CompatIo: Split {
    /// One read into `buf` (from its start, up to its capacity).
    fn read_op(
        read: Self::Read,
        buf: Vec<u8>,
    ) -> OpFuture<(io::Result<usize>, Vec<u8>, Self::Read)>;

    /// Writes all of `buf` ([`AsyncWriteExt::write_all`]).
    fn write_op(
        write: Self::Write,
        buf: Vec<u8>,
    ) -> OpFuture<(io::Result<()>, Vec<u8>, Self::Write)>;

    /// Flushes the write side.
    fn flush_op(write: Self::Write) -> OpFuture<(io::Result<()>, Self::Write)>;

    /// Whether [`flush_op`](Self::flush_op) does nothing (a socket has no
    /// buffer of ours to write out): a flush then only waits for the
    /// writes in flight, without building an op.
    const FLUSH_DOES_NOTHING: bool = false;

    /// Shuts the write side down.
    fn shutdown_op(write: Self::Write) -> OpFuture<(io::Result<()>, Self::Write)>;
}

macro_rules! compat_io {
    ($t:ty) => {
        impl CompatIo for $t {
            const FLUSH_DOES_NOTHING: bool = true;

            fn read_op(
                mut read: Self::Read,
                buf: Vec<u8>,
            ) -> OpFuture<(io::Result<usize>, Vec<u8>, Self::Read)> {
                Box::pin(async move {
                    let (r, buf) = read.read(buf).await;
                    (r, buf, read)
                })
            }

            fn write_op(
                mut write: Self::Write,
                buf: Vec<u8>,
            ) -> OpFuture<(io::Result<()>, Vec<u8>, Self::Write)> {
                Box::pin(async move {
                    let (r, buf) = write.write_all(buf).await;
                    (r, buf, write)
                })
            }

            fn flush_op(mut write: Self::Write) -> OpFuture<(io::Result<()>, Self::Write)> {
                Box::pin(async move { (write.flush().await, write) })
            }

            fn shutdown_op(mut write: Self::Write) -> OpFuture<(io::Result<()>, Self::Write)> {
                Box::pin(async move { (write.shutdown().await, write) })
            }
        }
    };
}

compat_io!(TcpStream);
compat_io!(UnixStream);
compat_io!(SocketStream);

type ReadFut<R> = OpFuture<(io::Result<usize>, Vec<u8>, R)>;
type WriteFut<W> = OpFuture<(io::Result<()>, Vec<u8>, W)>;
type CtlFut<W> = OpFuture<(io::Result<()>, W)>;

enum ReadState<R> {
    /// Only between taking the half and storing its op.
    Taken,
    Idle(R),
    Reading(ReadFut<R>),
}

enum WriteState<W> {
    /// Only between taking the half and storing its op.
    Taken,
    Idle(W),
    Writing(WriteFut<W>),
    Flushing(CtlFut<W>),
    Closing(CtlFut<W>),
}

/// `futures_io` traits over one of our streams; see the
/// [module docs](self) for how reads and writes run.
///
/// ```
/// use futures_io::{AsyncRead as _, AsyncWrite as _};
/// use spargio_rt::io::compat::Compat;
/// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// spargio_rt::run(|_| async {
///     let (a, mut b) = spargio_rt::net::UnixStream::pair().unwrap();
///     let mut c = Compat::new(a);
///     let n = poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"hi")).await.unwrap();
///     assert_eq!(n, 2);
///     poll_fn(|cx| Pin::new(&mut c).poll_flush(cx)).await.unwrap();
///     let (r, got) = b.read_exact(vec![0u8; 2]).await;
///     r.unwrap();
///     assert_eq!(got, b"hi");
///     let (r, _) = b.write_all(b"yo".to_vec()).await;
///     r.unwrap();
///     let mut out = [0u8; 2];
///     poll_fn(|cx| Pin::new(&mut c).poll_read(cx, &mut out)).await.unwrap();
///     assert_eq!(&out, b"yo");
/// })
/// .unwrap();
/// ```
pub struct Compat<T: CompatIo> {
    read: ReadState<T::Read>,
    /// `rbuf[pos..]` is read and not yet handed out; empty while a read
    /// is in flight (the buffer is in the op).
    rbuf: Vec<u8>,
    pos: usize,
    rcap: usize,
    write: WriteState<T::Write>,
    /// The reused write buffer; empty while a write is in flight.
    wbuf: Vec<u8>,
    /// Kept out of line: the adapter stays small to move.
    side: Box<SideState>,
}

/// What the adapter keeps about its two sides besides their ops.
struct SideState {
    /// Why a write failed, once one has: later writes fail with it.
    write_failed: Option<FailedWrite>,
    /// A close finished: another is a no-op (a second shutdown of a TCP
    /// socket the peer has closed too fails with `ENOTCONN`).
    closed: bool,
    /// The tasks waiting on the read op, and the waker it is polled with.
    read_waiters: Waiters,
    /// The same for the write side's op.
    write_waiters: Waiters,
}

/// The tasks waiting for one side's op. The op is polled with a waker of
/// its own that wakes them all, so a task that polled the op once (a TLS
/// reader sending an alert through the write side) does not take the
/// wake-up from the one that waits on it for good.
struct Waiters {
    set: Arc<WaiterSet>,
    /// Wakes everything in `set`.
    waker: Waker,
}

#[derive(Default)]
struct WaiterSet(Mutex<Vec<Waker>>);

impl Waiters {
    fn new() -> Self {
        let set = Arc::new(WaiterSet::default());
        Waiters {
            waker: Waker::from(set.clone()),
            set,
        }
    }

    /// Adds `waker` to the set (once per task: a task polling again is
    /// not listed again, so the set holds at most one waker for each task
    /// waiting on the op); returns the waker to poll the op with.
    fn join(&self, waker: &Waker) -> &Waker {
        self.join_alone(waker).0
    }

    /// As [`join`](Self::join), also telling whether `waker`'s task is
    /// the only one listed.
    fn join_alone(&self, waker: &Waker) -> (&Waker, bool) {
        let mut listed = self.set.lock();
        if !listed.iter().any(|w| w.will_wake(waker)) {
            listed.push(waker.clone());
        }
        (&self.waker, listed.len() == 1)
    }

    /// The op is done: empties the set, waking every task in it but
    /// `current` (the one that saw it done). A driver marks an op done
    /// before it runs the op's waker, so another task may see it done
    /// first; the tasks still listed then would hear nothing, the op's
    /// wake-up finding the set empty. Usually that wake-up came first and
    /// only `current` is listed.
    fn finish(&self, current: &Waker) {
        let taken = std::mem::take(&mut *self.set.lock());
        for w in taken {
            if !w.will_wake(current) {
                w.wake();
            }
        }
    }
}

impl WaiterSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // Nothing panics while holding it (waking happens after).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wake for WaiterSet {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: a waker may run anything.
        let taken = std::mem::take(&mut *self.lock());
        for w in taken {
            w.wake();
        }
    }
}

/// A write error kept to fail the writes after it (`io::Error` is not
/// `Clone`).
struct FailedWrite {
    kind: io::ErrorKind,
    os: Option<i32>,
    message: String,
}

impl FailedWrite {
    fn of(e: &io::Error) -> Self {
        FailedWrite {
            kind: e.kind(),
            os: e.raw_os_error(),
            message: e.to_string(),
        }
    }

    fn error(&self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(
                self.kind,
                format!("an earlier write failed: {}", self.message),
            ),
        }
    }
}

// The halves are never pinned in place: they only move into and out of
// boxed futures, so the adapter is `Unpin` whatever they are.
impl<T: CompatIo> Unpin for Compat<T> {}

impl<T: CompatIo> std::fmt::Debug for Compat<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compat")
            .field("buffered", &(self.rbuf.len() - self.pos))
            .field("reading", &matches!(self.read, ReadState::Reading(_)))
            .field("writing", &!matches!(self.write, WriteState::Idle(_)))
            .finish()
    }
}

impl<T: CompatIo> Compat<T> {
    /// Wraps `stream`, with a 16 KiB read buffer.
    pub fn new(stream: T) -> Self {
        Self::with_capacity(READ_BUF, stream)
    }

    /// Wraps `stream`, with a read buffer of `capacity` bytes (at least 1).
    pub fn with_capacity(capacity: usize, stream: T) -> Self {
        let (r, w) = stream.split_io();
        let rcap = capacity.max(1);
        Compat {
            read: ReadState::Idle(r),
            rbuf: Vec::with_capacity(rcap),
            pos: 0,
            rcap,
            write: WriteState::Idle(w),
            wbuf: Vec::new(),
            side: Box::new(SideState {
                write_failed: None,
                closed: false,
                read_waiters: Waiters::new(),
                write_waiters: Waiters::new(),
            }),
        }
    }

    /// The read and write halves, each `None` while an op is in flight on
    /// that side.
    pub fn get_ref(&self) -> (Option<&T::Read>, Option<&T::Write>) {
        let r = match &self.read {
            ReadState::Idle(r) => Some(r),
            ReadState::Reading(_) | ReadState::Taken => None,
        };
        let w = match &self.write {
            WriteState::Idle(w) => Some(w),
            _ => None,
        };
        (r, w)
    }

    /// Bytes read from the stream and not yet handed out.
    pub fn buffer(&self) -> &[u8] {
        &self.rbuf[self.pos..]
    }

    /// The stream back, if no op is in flight (else the adapter, unchanged:
    /// flush first, and do not leave a read pending). Bytes still in
    /// [`buffer`](Self::buffer) are dropped.
    pub fn into_inner(self) -> Result<T, Self> {
        match (self.read, self.write) {
            (ReadState::Idle(r), WriteState::Idle(w)) => Ok(T::unsplit_io(r, w)),
            (read, write) => Err(Compat {
                read,
                write,
                rbuf: self.rbuf,
                pos: self.pos,
                rcap: self.rcap,
                wbuf: self.wbuf,
                side: self.side,
            }),
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.advance_write(cx);
        while self.pos >= self.rbuf.len() {
            let fut = match &mut self.read {
                ReadState::Reading(fut) => fut,
                ReadState::Taken => unreachable!("spargio: compat read half lost"),
                ReadState::Idle(_) => {
                    let mut buf = std::mem::take(&mut self.rbuf);
                    buf.clear();
                    if buf.capacity() < self.rcap {
                        buf.reserve_exact(self.rcap);
                    }
                    self.pos = 0;
                    let ReadState::Idle(r) = std::mem::replace(&mut self.read, ReadState::Taken)
                    else {
                        unreachable!()
                    };
                    self.read = ReadState::Reading(T::read_op(r, buf));
                    continue;
                }
            };
            let waker = self.side.read_waiters.join(cx.waker());
            let (res, buf, r) = ready!(fut.as_mut().poll(&mut Context::from_waker(waker)));
            self.side.read_waiters.finish(cx.waker());
            self.read = ReadState::Idle(r);
            self.rbuf = buf;
            self.pos = 0;
            match res {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(&self.rbuf[self.pos..]))
    }

    fn consume_read(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.rbuf.len());
    }

    /// Waits until no write, flush or close is in flight; the error of the
    /// one that just finished, or of any write before, if one failed.
    ///
    /// `last`: the caller's work ends with the op (nothing of it starts
    /// after), so the op may be polled quietly when the caller is inside
    /// [`quiet_writes`](super::quiet_writes). Otherwise, or when another
    /// task also waits on the op, it is polled loudly: its completion must
    /// wake whoever goes on after it (an op keeps only its last poll's
    /// quietness, so one quiet poll would silence every waiter).
    fn poll_settle(&mut self, cx: &mut Context<'_>, last: bool) -> Poll<io::Result<()>> {
        if let WriteState::Idle(_) = self.write {
            return Poll::Ready(self.failed());
        }
        let (waker, alone) = self.side.write_waiters.join_alone(cx.waker());
        let mut op_cx = Context::from_waker(waker);
        let quiet_ok = last && alone;
        let closing = matches!(self.write, WriteState::Closing(_));
        let (res, w) = match &mut self.write {
            WriteState::Idle(_) => unreachable!("checked above"),
            WriteState::Taken => unreachable!("spargio: compat write half lost"),
            WriteState::Writing(fut) => {
                let polled = if quiet_ok {
                    fut.as_mut().poll(&mut op_cx)
                } else {
                    loudly(|| fut.as_mut().poll(&mut op_cx))
                };
                let (res, buf, w) = ready!(polled);
                self.wbuf = buf;
                if let Err(e) = &res {
                    self.side
                        .write_failed
                        .get_or_insert_with(|| FailedWrite::of(e));
                }
                (res, w)
            }
            WriteState::Flushing(fut) | WriteState::Closing(fut) => {
                if quiet_ok {
                    ready!(fut.as_mut().poll(&mut op_cx))
                } else {
                    ready!(loudly(|| fut.as_mut().poll(&mut op_cx)))
                }
            }
        };
        self.side.write_waiters.finish(cx.waker());
        self.write = WriteState::Idle(w);
        // A shutdown finished, whichever call waited for it (a close, or a
        // flush or write after a close that was dropped unfinished): a
        // later close does nothing.
        if closing && res.is_ok() {
            self.side.closed = true;
        }
        Poll::Ready(res)
    }

    /// Drives a write in flight from the read side: a write the kernel
    /// took only part of goes on only when its op is polled again, and a
    /// task that wrote and now waits to read (`write_all`, then
    /// `read_exact`, with no flush) polls only the read side. How the
    /// write ended is kept for the write side's next call (an error fails
    /// it, as it would have).
    fn advance_write(&mut self, cx: &mut Context<'_>) {
        if let WriteState::Writing(_) = self.write {
            // Ignored here: a failure is kept in `write_failed`. Loud: the
            // write side may be waiting on this op to go on.
            let _ = self.poll_settle(cx, false);
        }
    }

    /// The error of a write that failed, if one did.
    fn failed(&self) -> io::Result<()> {
        match &self.side.write_failed {
            Some(failed) => Err(failed.error()),
            None => Ok(()),
        }
    }

    /// Takes the idle write half, leaving `next(half)` in its place.
    fn start_write(&mut self, next: impl FnOnce(T::Write) -> WriteState<T::Write>) {
        match std::mem::replace(&mut self.write, WriteState::Taken) {
            WriteState::Idle(w) => self.write = next(w),
            _ => unreachable!("spargio: compat write started while busy"),
        }
    }
}

impl<T: CompatIo> futures_io::AsyncRead for Compat<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let avail = ready!(this.poll_fill(cx))?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        this.consume_read(n);
        Poll::Ready(Ok(n))
    }
}

impl<T: CompatIo> futures_io::AsyncBufRead for Compat<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume_read(amt);
    }
}

impl<T: CompatIo> futures_io::AsyncWrite for Compat<T> {
    /// Waits for the previous write, then takes up to 64 KiB of `data` and
    /// reports them written while they go out in the background.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_settle(cx, false))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_WRITE);
        let mut buf = std::mem::take(&mut this.wbuf);
        buf.clear();
        buf.extend_from_slice(&data[..n]);
        this.start_write(|w| WriteState::Writing(T::write_op(w, buf)));
        // Submit now; a failure this early is reported for these bytes.
        match this.poll_settle(cx, true) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    /// As `poll_write`, gathering the slices (up to
    /// 64 KiB in all) into one write: a TLS session hands its records over
    /// this way, and one write per record would serialise them.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_settle(cx, false))?;
        let mut buf = std::mem::take(&mut this.wbuf);
        buf.clear();
        for slice in bufs {
            let room = MAX_WRITE - buf.len();
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&slice[..slice.len().min(room)]);
        }
        let n = buf.len();
        if n == 0 {
            this.wbuf = buf;
            return Poll::Ready(Ok(0));
        }
        this.start_write(|w| WriteState::Writing(T::write_op(w, buf)));
        match this.poll_settle(cx, true) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    /// Waits for the last write, then flushes the write side.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &this.write {
                WriteState::Idle(_) if this.side.write_failed.is_some() => {
                    return Poll::Ready(this.failed())
                }
                // TLS flushes after every record it hands over; a socket's
                // flush is then only the wait for that write, done above.
                WriteState::Idle(_) if T::FLUSH_DOES_NOTHING => return Poll::Ready(Ok(())),
                WriteState::Idle(_) => this.start_write(|w| WriteState::Flushing(T::flush_op(w))),
                WriteState::Flushing(_) => return this.poll_settle(cx, true),
                WriteState::Writing(_) | WriteState::Closing(_) | WriteState::Taken => {
                    ready!(this.poll_settle(cx, T::FLUSH_DOES_NOTHING))?
                }
            }
        }
    }

    /// Waits for the last write, then shuts the write side down (a FIN for
    /// sockets). Reads still work. After a failed write, fails with its
    /// error without shutting anything down. Once a close has finished,
    /// closing again does nothing and succeeds.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &this.write {
                WriteState::Idle(_) if this.side.write_failed.is_some() => {
                    return Poll::Ready(this.failed())
                }
                WriteState::Idle(_) if this.side.closed => return Poll::Ready(Ok(())),
                WriteState::Idle(_) => this.start_write(|w| WriteState::Closing(T::shutdown_op(w))),
                WriteState::Closing(_) => return this.poll_settle(cx, true),
                WriteState::Writing(_) | WriteState::Flushing(_) | WriteState::Taken => {
                    ready!(this.poll_settle(cx, false))?
                }
            }
        }
    }
}
