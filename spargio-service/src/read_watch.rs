//! Bounding a connection's reads by its idle timeout, a deadline of the
//! protocol's own, and graceful shutdown — with one timer and one shutdown
//! registration for the connection's whole life instead of one per read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use spargio_rt::sync::Cancelled;

use crate::connection::Connection;
use crate::lazy_deadline::LazyDeadline;

/// How a [`ReadWatch::wait`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Watched<T> {
    /// The read finished first.
    Done(T),
    /// The deadline passed (the idle timeout, when the wait was idle and
    /// that came first); the read is not finished (dropping it cancels it).
    TimedOut,
    /// The server began a graceful shutdown during an idle wait; the read
    /// is not finished (dropping it cancels it).
    Closing,
}

/// Waits for a connection's reads against its idle timeout, a deadline the
/// protocol sets (a header-read timeout, say) and graceful shutdown.
///
/// [`Connection::idle`] does the same for one read; a protocol that reads
/// many requests over a connection keeps one `ReadWatch` for it. Its timer
/// is re-armed lazily: a later deadline than the armed one (the usual case,
/// each request pushing it out) costs nothing until the armed one passes,
/// and the wait for shutdown stays registered between reads.
///
/// ```no_run
/// # async fn demo(conn: &spargio_service::Connection, stream: &mut spargio_rt::net::SocketStream) {
/// use spargio_rt::io::AsyncRead;
/// use spargio_service::{ReadWatch, Watched};
/// use std::time::{Duration, Instant};
/// let mut watch = ReadWatch::new(conn);
/// loop {
///     let deadline = Instant::now() + Duration::from_secs(30);
///     match watch.wait(stream.read(vec![0u8; 4096]), Some(deadline), true).await {
///         Watched::Done((res, buf)) => { /* parse the request */ let _ = (res, buf); }
///         Watched::TimedOut | Watched::Closing => break,
///     }
/// }
/// # }
/// ```
pub struct ReadWatch<'c> {
    conn: &'c Connection,
    /// Ends the wait at a graceful shutdown. Polling it again with the
    /// same task's waker is an atomic load (the token's lock is taken only
    /// to register a new waker).
    closing: Cancelled<'c>,
    /// Armed at or before the deadline of the current wait (never after).
    timer: LazyDeadline,
}

impl<'c> ReadWatch<'c> {
    /// A watch over `conn`'s reads.
    pub fn new(conn: &'c Connection) -> Self {
        ReadWatch {
            conn,
            closing: conn.closing_token().cancelled(),
            timer: LazyDeadline::default(),
        }
    }

    /// Waits for `fut` until `deadline`. When `idle` (no request is in
    /// progress), the connection's idle timeout also bounds the wait and a
    /// graceful shutdown ends it; an idle wait that times out on the idle
    /// timeout is counted in the server's stats.
    ///
    /// The wait's clock starts, and its timer is armed, when `wait` is
    /// called; await the returned future at once.
    pub fn wait<F: Future>(
        &mut self,
        fut: F,
        deadline: Option<Instant>,
        idle: bool,
    ) -> ReadWatchWait<'_, 'c, F> {
        let closing_already = idle && self.conn.is_closing();
        let idle_deadline = self
            .conn
            .idle_limit()
            .filter(|_| idle && !closing_already)
            .and_then(|d| Instant::now().checked_add(d));
        let (until, by_idle) = match (deadline, idle_deadline) {
            (Some(d), Some(i)) if i < d => (Some(i), true),
            (Some(d), _) => (Some(d), false),
            (None, Some(i)) => (Some(i), true),
            (None, None) => (None, false),
        };
        if let (Some(until), false) = (until, closing_already) {
            self.timer.arm(until);
        }
        ReadWatchWait {
            watch: self,
            fut,
            until,
            idle,
            by_idle,
            closing_already,
        }
    }

    /// Whether shutdown began; registers the task for the shutdown wake-up.
    fn closing_ended(&mut self, cx: &mut Context<'_>) -> bool {
        Pin::new(&mut self.closing).poll(cx).is_ready()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ReadWatch::wait`].
    ///
    /// A named future rather than an `async fn`, so the read it runs is
    /// stored once, where it is pinned (an `async fn` would hold it twice,
    /// as its argument and as the pinned local it polls, and copy it on
    /// every start).
    #[must_use = "futures do nothing unless polled"]
    pub struct ReadWatchWait<'w, 'c, F> {
        watch: &'w mut ReadWatch<'c>,
        #[pin]
        fut: F,
        until: Option<Instant>,
        idle: bool,
        by_idle: bool,
        // An idle wait begun after the shutdown began ends at once.
        closing_already: bool,
    }
}

impl<F: Future> Future for ReadWatchWait<'_, '_, F> {
    type Output = Watched<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if *this.closing_already {
            return Poll::Ready(Watched::Closing);
        }
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Watched::Done(out));
        }
        let watch = &mut **this.watch;
        if *this.idle && watch.closing_ended(cx) {
            return Poll::Ready(Watched::Closing);
        }
        let Some(until) = *this.until else {
            return Poll::Pending;
        };
        if !watch.timer.poll_passed(cx, until) {
            return Poll::Pending;
        }
        // The next wait arms for its own deadline.
        watch.timer.disarm();
        if *this.by_idle {
            watch.conn.count_idle_timeout();
        }
        Poll::Ready(Watched::TimedOut)
    }
}

#[cfg(test)]
#[path = "read_watch_tests.rs"]
mod tests;
