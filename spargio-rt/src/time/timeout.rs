//! `timeout` and `timeout_at`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{far_add, Sleep};

/// The deadline passed before the future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `fut` for at most `duration`: the [`Timeout`] resolves to
/// `Err(Elapsed)` if time runs out first (`fut` is dropped with it).
///
/// ```
/// use std::time::Duration;
/// use spargio_rt::time::{sleep, timeout};
/// spargio_rt::run(|_| async {
///     assert!(timeout(Duration::from_millis(1), sleep(Duration::from_secs(5))).await.is_err());
///     assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
/// })
/// .unwrap();
/// ```
pub fn timeout<F: Future>(duration: Duration, fut: F) -> Timeout<F> {
    timeout_at(far_add(Instant::now(), duration), fut)
}

/// Runs `fut` until `deadline` at most.
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        sleep: Sleep::until(deadline),
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`timeout`] and [`timeout_at`]. The inner future is
    /// polled first, so one that is ready at the deadline still wins.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.fut
    }

    /// The wrapped future, giving up the deadline.
    pub fn into_inner(self) -> F {
        self.fut
    }

    /// When this timeout expires.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
