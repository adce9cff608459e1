//! [`flush_beside`]: write queued output out while waiting for something
//! else.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `flush` to its end while polling `fut` beside it, then finishes
/// `fut`; returns `fut`'s output. A failed flush ends both (`fut` is
/// dropped).
///
/// For a server that must send earlier responses while it waits for its
/// service to be ready: the readiness future keeps being polled during
/// the write, so a wake-up meant for it (a freed permit) is taken when it
/// comes rather than after a write to a slow client. Unlike
/// [`flush_and_read`](super::flush_and_read), the flush is always polled
/// loudly: `fut` may not complete for a long time, and nothing else would
/// wake the task to go on writing.
///
/// ```
/// use spargio_rt::io::{flush_beside, AsyncReadExt, AsyncWriteExt};
/// use spargio_rt::net::UnixStream;
/// # spargio_rt::run(|_| async {
/// let (mut client, mut server) = UnixStream::pair().unwrap();
/// let (tx, rx) = futures_channel::oneshot::channel::<u32>();
/// let flush = async {
///     let (res, _) = server.write_all(b"earlier answer".to_vec()).await;
///     res
/// };
/// tx.send(7).unwrap();
/// let got = flush_beside(flush, rx).await.unwrap();
/// assert_eq!(got, Ok(7));
/// let (res, answer) = client.read_exact(vec![0u8; 14]).await;
/// res.unwrap();
/// assert_eq!(answer, b"earlier answer");
/// # }).unwrap();
/// ```
pub fn flush_beside<F, R>(flush: F, fut: R) -> FlushBeside<F, R>
where
    F: Future<Output = io::Result<()>>,
    R: Future,
{
    FlushBeside {
        flush,
        fut,
        flushed: false,
        out: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`flush_beside`]; a named future for the reason
    /// [`FlushAndRead`](super::FlushAndRead) is one (its two futures are
    /// stored, and copied, once).
    #[must_use = "futures do nothing unless polled"]
    pub struct FlushBeside<F, R: Future> {
        #[pin]
        flush: F,
        #[pin]
        fut: R,
        flushed: bool,
        out: Option<R::Output>,
    }
}

impl<F, R> Future for FlushBeside<F, R>
where
    F: Future<Output = io::Result<()>>,
    R: Future,
{
    type Output = io::Result<R::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.out.is_none() {
            if let Poll::Ready(v) = this.fut.as_mut().poll(cx) {
                *this.out = Some(v);
            }
        }
        if !*this.flushed {
            match this.flush.poll(cx) {
                Poll::Ready(Ok(())) => *this.flushed = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        match this.out.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None => this.fut.poll(cx).map(Ok),
        }
    }
}
