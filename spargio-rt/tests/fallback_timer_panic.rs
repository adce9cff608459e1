//! The timer thread that serves sleeps outside the shards survives a waker
//! that panics (its own binary: the thread is shared by the whole process).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics (on purpose)");
    }
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread, outside any runtime, parking between polls;
/// `None` if it is not done within `limit`.
fn run_for<F: Future + Unpin>(mut fut: F, limit: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let end = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::park_timeout(end - now);
    }
}

#[test]
fn a_waker_that_panics_does_not_stop_later_timers_off_the_runtime() {
    let bad = Waker::from(Arc::new(PanickingWaker));
    // Not due before its first poll, even on a preempted thread.
    let mut first = spargio_rt::time::sleep(Duration::from_millis(20));
    assert!(Pin::new(&mut first)
        .poll(&mut Context::from_waker(&bad))
        .is_pending());
    // Its deadline passes and the timer thread calls the panicking waker.
    std::thread::sleep(Duration::from_millis(100));
    let later = spargio_rt::time::sleep(Duration::from_millis(5));
    assert!(
        run_for(later, Duration::from_secs(10)).is_some(),
        "the timer thread died with the waker's panic"
    );
}
