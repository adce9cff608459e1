//! Quiet writes: ring writes whose complete success does not wake the task.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

thread_local! {
    /// Whether the ops polled right now may complete quietly.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (one poll of a write future, typically) so that the ring
/// writes and sends it submits or polls do not wake the task when they
/// complete in full.
///
/// For a task that is about to wait on something else that will wake it
/// anyway, such as the read of a connection's next request, this saves
/// one wake-up and one poll per write: the write's result waits until the
/// task polls it again. It is safe by construction: a write polled again
/// outside `quiet_writes` is loud again (and if it had already finished,
/// that poll sees it), and a partial write or an error always wakes the
/// task. Only use it when something else is certain to wake the task;
/// otherwise a finished write is not noticed until then.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use spargio_rt::io::quiet_writes;
///
/// /// One turn of "write the response, read the next request": the write
/// /// is quiet while the read is pending, loud once the read is done. (A
/// /// real caller keeps each output and stops polling a finished future.)
/// fn poll_both<W: Future, R: Future>(
///     cx: &mut Context<'_>,
///     mut write: Pin<&mut W>,
///     mut read: Pin<&mut R>,
/// ) -> Poll<()> {
///     let mut written = quiet_writes(|| write.as_mut().poll(cx)).is_ready();
///     let read_done = read.as_mut().poll(cx).is_ready();
///     if read_done && !written {
///         written = write.as_mut().poll(cx).is_ready();
///     }
///     if written && read_done {
///         Poll::Ready(())
///     } else {
///         Poll::Pending
///     }
/// }
/// ```
pub fn quiet_writes<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Quietness::set(true);
    f()
}

/// Sets the thread's quietness and puts the earlier value back when
/// dropped, also when what ran in between panicked: a task's panic is
/// caught and its shard goes on, and a flag left set would make every
/// later full write on that thread wake nobody.
struct Quietness {
    before: bool,
}

impl Quietness {
    fn set(quiet: bool) -> Quietness {
        Quietness {
            before: QUIET.with(|q| q.replace(quiet)),
        }
    }
}

impl Drop for Quietness {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(self.before));
    }
}

/// Runs `f` with ring writes loud, even inside [`quiet_writes`]: for a
/// poll of a write whose completion must wake the task because more
/// follows it. The synchronous form of [`loud`].
pub(crate) fn loudly<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Quietness::set(false);
    f()
}

/// Whether an op polled now may complete quietly.
pub(crate) fn is_quiet() -> bool {
    QUIET.with(Cell::get)
}

/// Awaits `fut` with its ring writes loud even when the caller is polled
/// inside [`quiet_writes`].
///
/// For a write whose full completion does not end the caller's work: when
/// more follows it (the next piece of a long response, say), its
/// completion must wake the task to go on, or the rest waits for whatever
/// else wakes the task next.
///
/// ```
/// use spargio_rt::io::{loud, AsyncWriteExt};
/// use spargio_rt::net::UnixStream;
///
/// /// Writes `pieces` in order; correct even when polled quietly.
/// async fn write_pieces(out: &mut UnixStream, pieces: Vec<Vec<u8>>) -> std::io::Result<()> {
///     let last = pieces.len().saturating_sub(1);
///     for (i, piece) in pieces.into_iter().enumerate() {
///         let res = if i < last {
///             loud(out.write_all(piece)).await.0
///         } else {
///             // The last write ends the work: quiet is fine.
///             out.write_all(piece).await.0
///         };
///         res?;
///     }
///     Ok(())
/// }
/// # spargio_rt::run(|_| async {
/// let (mut a, _b) = UnixStream::pair().unwrap();
/// write_pieces(&mut a, vec![b"one".to_vec(), b"two".to_vec()]).await.unwrap();
/// # });
/// ```
pub async fn loud<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        let _restore = Quietness::set(false);
        fut.as_mut().poll(cx)
    })
    .await
}

/// Runs `flush` (writing out queued responses) and `read` (of the next
/// request) together, and returns the read's output once both are done; a
/// failed flush ends both (the read is dropped, which cancels its op).
///
/// While the read is pending the flush is polled inside [`quiet_writes`]:
/// the read's completion wakes the task anyway, so a flush that goes out in
/// full needs no wake-up and no poll of its own. Once the read is done, the
/// flush is polled loudly, so the task is woken when the write finishes. A
/// keep-alive exchange (response out, next request in) then costs the
/// connection's task one poll instead of two. Both futures are stored
/// once, inside the returned [`FlushAndRead`], and polled where it is
/// pinned.
///
/// The two futures must borrow different things; for one socket, split it
/// (`TcpStream::into_split`) or keep the read's buffer apart from the
/// writer's.
///
/// ```
/// use spargio_rt::io::{flush_and_read, AsyncReadExt, AsyncWriteExt};
/// use spargio_rt::net::UnixStream;
/// # spargio_rt::run(|_| async {
/// let (mut client, server) = UnixStream::pair().unwrap();
/// let (mut server_rd, mut server_wr) = server.into_split();
/// let (res, _) = client.write_all(b"second".to_vec()).await;
/// res.unwrap();
/// // The server writes its answer to the first request and reads the
/// // second request in one go.
/// let flush = async {
///     let (res, _) = server_wr.write_all(b"first done".to_vec()).await;
///     res
/// };
/// let read = server_rd.read_exact(vec![0u8; 6]);
/// let (res, request) = flush_and_read(flush, read).await.unwrap();
/// res.unwrap();
/// assert_eq!(request, b"second");
/// let (res, answer) = client.read_exact(vec![0u8; 10]).await;
/// res.unwrap();
/// assert_eq!(answer, b"first done");
/// # }).unwrap();
/// ```
pub fn flush_and_read<F, R>(flush: F, read: R) -> FlushAndRead<F, R>
where
    F: Future<Output = io::Result<()>>,
    R: Future,
{
    FlushAndRead {
        flush,
        read,
        flushed: false,
        got: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`flush_and_read`].
    ///
    /// A named future rather than an `async fn`: the two futures it runs
    /// are stored once, where it is pinned (an `async fn` keeps its
    /// arguments and the pinned copies it polls side by side, and copies
    /// both on every start, which for a connection's flush and read was
    /// several KiB of copying per request).
    #[must_use = "futures do nothing unless polled"]
    pub struct FlushAndRead<F, R: Future> {
        #[pin]
        flush: F,
        #[pin]
        read: R,
        flushed: bool,
        got: Option<R::Output>,
    }
}

impl<F, R> Future for FlushAndRead<F, R>
where
    F: Future<Output = io::Result<()>>,
    R: Future,
{
    type Output = io::Result<R::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.flushed {
            match poll_flush(this.flush.as_mut(), cx, this.got.is_none()) {
                Ok(done) => *this.flushed = done,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if this.got.is_none() {
            if let Poll::Ready(v) = this.read.poll(cx) {
                *this.got = Some(v);
                if !*this.flushed {
                    // Nothing else will wake us now: poll the flush loudly.
                    match poll_flush(this.flush.as_mut(), cx, false) {
                        Ok(done) => *this.flushed = done,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            }
        }
        if *this.flushed {
            if let Some(v) = this.got.take() {
                return Poll::Ready(Ok(v));
            }
        }
        Poll::Pending
    }
}

/// Polls a flush once, quietly or not; `Ok(true)` when it is done.
fn poll_flush<F>(flush: Pin<&mut F>, cx: &mut Context<'_>, quiet: bool) -> io::Result<bool>
where
    F: Future<Output = io::Result<()>>,
{
    let poll = if quiet {
        quiet_writes(|| flush.poll(cx))
    } else {
        flush.poll(cx)
    };
    match poll {
        Poll::Ready(Ok(())) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(false),
    }
}
