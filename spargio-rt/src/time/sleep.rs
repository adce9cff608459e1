//! `Sleep`, `sleep` and `sleep_until`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::entry::TimerEntry;

/// Waits until `duration` has passed.
///
/// ```
/// use std::time::{Duration, Instant};
/// spargio_rt::run(|_| async {
///     let start = Instant::now();
///     spargio_rt::time::sleep(Duration::from_millis(2)).await;
///     assert!(start.elapsed() >= Duration::from_millis(2));
/// })
/// .unwrap();
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::until(far_add(Instant::now(), duration))
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::until(deadline)
}

/// The furthest a relative timer reaches: durations past it mean "never".
pub(crate) const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + d`, with `d` capped at [`FAR`] (about 30 years).
pub(crate) fn far_add(now: Instant, d: Duration) -> Instant {
    // An `Instant` holds i64 seconds: 30 years on from any clock reading
    // cannot overflow.
    now + d.min(FAR)
}

/// A future that completes at its deadline, never before.
///
/// On a shard the timer lives in that shard's heap and costs no SQE: the
/// shard's nearest deadline is the timeout of its blocking `io_uring_enter`.
/// Elsewhere a shared timer thread serves it. The timer stays in the heap
/// where it was registered until the sleep is polled on another shard (its
/// task was stolen) or off the runtime; that poll moves the timer to the
/// polling thread's heap, so from then on the old shard no longer delays
/// it. Until such a poll, the timer fires only when the shard holding it
/// gets to it: a task that waits on nothing but this sleep is woken by that
/// shard, and if that shard is stuck in a long poll, the wake-up comes when
/// the poll ends. `Sleep` is `Unpin` and can be [`reset`](Sleep::reset) to a
/// new deadline.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<Arc<TimerEntry>>,
    /// The id of the heap holding `entry` (see `super::current_heap`);
    /// meaningless while `entry` is `None`.
    heap: u64,
    /// The waker of the last poll that registered: a reset after the
    /// entry fired (its own copy is gone with the wake-up) waits with it.
    waker: Option<Waker>,
}

impl Sleep {
    /// A sleep that ends at `deadline`.
    pub fn until(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            entry: None,
            heap: 0,
            waker: None,
        }
    }

    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed (by the clock: a poll may still
    /// return `Pending` until the timer has fired, on the shard's next
    /// loop turn).
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later). A sleep that was waiting
    /// goes on waiting for the new deadline with the same waker, so a
    /// future that resets its sleep and returns `Pending` without polling
    /// it again is still woken (at once if the new deadline has passed).
    pub fn reset(&mut self, deadline: Instant) {
        if deadline == self.deadline {
            return;
        }
        self.deadline = deadline;
        let Some(old) = self.entry.take() else {
            return;
        };
        // Fired already: the wake-up went to the task, whose poll may be
        // the one resetting and may return without polling the sleep
        // again, so the new deadline waits with the same waker.
        let Some(waker) = old.cancel_taking_waker().or_else(|| self.waker.clone()) else {
            return;
        };
        if Instant::now() >= deadline {
            waker.wake();
            return;
        }
        self.wait_with(&waker);
    }

    /// Registers a timer for the deadline that wakes `waker`, in the
    /// current thread's heap.
    fn wait_with(&mut self, waker: &Waker) {
        let e = Arc::new(TimerEntry::new(self.deadline, waker));
        self.heap = super::register(e.clone());
        self.entry = Some(e);
    }

    fn cancel(&mut self) {
        if let Some(e) = self.entry.take() {
            e.cancel();
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        if let Some(e) = &self.entry {
            // Registered: the timer heap fires the entry once the deadline
            // has passed, so later polls (a task woken by something else
            // it waits on) need no clock read. The waker goes in first, so
            // a fire racing with this poll is seen below or wakes it.
            e.register(cx.waker());
            if e.is_fired() {
                self.entry = None;
                return Poll::Ready(());
            }
            if super::current_heap() == self.heap {
                return Poll::Pending;
            }
            // Polled away from the heap holding the timer: that shard may
            // be stuck in a long poll, or gone. The timer moves here,
            // unless it fired meanwhile.
            let old = self.entry.take().expect("registered");
            old.cancel();
            if old.is_fired() {
                return Poll::Ready(());
            }
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        self.wait_with(cx.waker());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}
