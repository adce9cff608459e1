//! Quiet writes: ring writes whose complete success does not wake the task.

use std::cell::Cell;

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
    let before = QUIET.with(|q| q.replace(true));
    let out = f();
    QUIET.with(|q| q.set(before));
    out
}

/// Whether an op polled now may complete quietly.
pub(crate) fn is_quiet() -> bool {
    QUIET.with(Cell::get)
}
