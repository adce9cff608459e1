//! [`flush_beside`]: write queued output out while waiting for something
//! else.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;

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
pub async fn flush_beside<F, R>(flush: F, fut: R) -> io::Result<R::Output>
where
    F: Future<Output = io::Result<()>>,
    R: Future,
{
    let mut flush = pin!(flush);
    let mut fut = pin!(fut);
    let mut out = None;
    poll_fn(|cx| {
        if out.is_none() {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                out = Some(v);
            }
        }
        flush.as_mut().poll(cx)
    })
    .await?;
    match out {
        Some(v) => Ok(v),
        None => Ok(fut.await),
    }
}
