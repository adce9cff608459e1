//! The state a multishot op (accept, recv with provided buffers) shares
//! between its consumer and the driver: a queue of CQEs instead of one slot.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_deque::Injector;
use futures_util::task::AtomicWaker;
use io_uring::squeue::Entry;

use super::cell::{Completion, OpTag};
use super::Cqe;

/// What a multishot op owns while it is armed.
pub(crate) trait MultiData: Send + Sync + 'static {
    /// Whether the SQE comes from the native API (`crate::uring`): its
    /// flags are then checked (see `driver::flags`).
    const NATIVE: bool = false;

    /// Builds the SQE (called each time the op is armed).
    fn entry(&self) -> Entry;

    /// Sees every CQE as the driver dispatches it, on the ring's shard,
    /// before anyone consumes it (a receive counts the provided buffer
    /// the kernel took here, not when its consumer gets round to it).
    fn delivered(&self, _cqe: &Cqe) {}

    /// Releases what a CQE handed over when nobody will consume it (an
    /// accepted fd is closed, a provided buffer goes back to its ring).
    fn orphaned(&self, cqe: Cqe);
}

/// Whether a CQE that made the queue `queued` long calls for a cancel of
/// the op, given its `cap` and the length at which the last cancel for the
/// cap went out (`capped_at`, 0: none since the op was armed). Once one
/// went out, another goes out every `cap` CQEs the queue grows past it: a
/// cancel that failed (`EALREADY` for an op running in a kernel worker)
/// must not leave the queue to grow without bound.
fn cancel_for_cap(queued: usize, cap: usize, capped_at: usize) -> bool {
    if capped_at == 0 {
        queued >= cap
    } else {
        queued >= capped_at.saturating_add(cap)
    }
}

/// Whether the `n`th CQE an abandoned op posts after it was abandoned
/// (1-based) calls for another cancel: the first cancel may have failed
/// (`EALREADY` for an op running in a kernel worker) and nobody else will
/// stop the op. A few CQEs already on their way when the first cancel
/// went out are expected, so the first retry waits for 16; later ones go
/// out at 32, 64, ..., a handful of cancels however long the op runs.
fn recancel_abandoned(n: usize) -> bool {
    n >= 16 && n.is_power_of_two()
}

/// A multishot op's shared state.
pub(crate) struct MultiCell<T> {
    queue: Injector<Cqe>,
    queued: AtomicUsize,
    /// Set when the kernel posted the op's last CQE (no `F_MORE`).
    ended: AtomicBool,
    abandoned: AtomicBool,
    /// CQEs that came with `F_MORE` after the op was abandoned.
    after_abandon: AtomicUsize,
    /// Queued CQEs at which the driver cancels the op until the consumer
    /// catches up (`usize::MAX`: never).
    cap: AtomicUsize,
    /// The queue length at which a cancel for reaching `cap` last went
    /// out since the op was armed (0: none). Only the owner shard's
    /// driver writes it, and `rearmed` before the op is armed again.
    capped_at: AtomicUsize,
    waker: AtomicWaker,
    tag: OpTag,
    data: T,
}

impl<T: MultiData> MultiCell<T> {
    pub(crate) fn new(data: T) -> Self {
        MultiCell {
            queue: Injector::new(),
            queued: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            after_abandon: AtomicUsize::new(0),
            cap: AtomicUsize::new(usize::MAX),
            capped_at: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
            tag: OpTag::default(),
            data,
        }
    }

    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// Marks the op as armed again (after a re-arm submission).
    pub(crate) fn rearmed(&self) {
        // Unregistered until the new submission is: a cancel asked for in
        // between must not use the tag of the ended op (see `remote::cancel`).
        self.set_tag(0);
        self.capped_at.store(0, Ordering::Relaxed);
        self.ended.store(false, Ordering::Release);
    }

    /// CQEs waiting for the consumer.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Sets how many CQEs may wait for the consumer before the driver
    /// cancels the op; the consumer re-arms it once it has taken them.
    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap.max(1), Ordering::Relaxed);
    }

    /// Whether the driver cancelled the op for reaching its cap since it
    /// was last armed.
    pub(crate) fn capped(&self) -> bool {
        self.capped_at.load(Ordering::Relaxed) != 0
    }

    /// Whether the kernel ended the op (it must be re-armed to go on).
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn pop(&self) -> Option<Cqe> {
        let cqe = crate::queue::take(&self.queue)?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(cqe)
    }

    /// The next CQE, registering `waker` if none is queued. `Err(())`
    /// means the op ended with nothing queued.
    pub(crate) fn poll_next(&self, waker: &std::task::Waker) -> Option<Result<Cqe, ()>> {
        if let Some(c) = self.pop() {
            return Some(Ok(c));
        }
        self.waker.register(waker);
        // `ended` is read before the last look in the queue: the driver
        // queues the final CQE before it sets `ended`, so a queue found
        // empty after `ended` was seen set is empty for good (read after
        // it, a CQE queued in between would be left behind).
        let ended = self.ended();
        if let Some(c) = self.pop() {
            return Some(Ok(c));
        }
        if ended {
            return Some(Err(()));
        }
        None
    }

    /// The consumer is gone: release everything queued now and later.
    /// Returns whether the op may still be armed (the caller cancels it).
    pub(crate) fn abandon(&self) -> bool {
        self.abandoned.store(true, Ordering::SeqCst);
        while let Some(c) = self.pop() {
            self.data.orphaned(c);
        }
        !self.ended()
    }
}

impl<T: MultiData> Completion for MultiCell<T> {
    fn op_tag(&self) -> &OpTag {
        &self.tag
    }

    fn complete(&self, cqe: Cqe) -> bool {
        self.data.delivered(&cqe);
        let last = !cqe.more();
        // An error that does not end the op (a multishot timeout's tick is
        // `-ETIME`) is handed on like any other item.
        let carries = cqe.res >= 0 || cqe.buffer_id().is_some() || !last;
        if carries {
            // Counted before it is queued: a consumer on another thread
            // may pop it at once, and its decrement must not go below zero.
            let queued = self.queued.fetch_add(1, Ordering::AcqRel) + 1;
            self.queue.push(cqe);
            let capped_at = self.capped_at.load(Ordering::Relaxed);
            if !last && cancel_for_cap(queued, self.cap.load(Ordering::Relaxed), capped_at) {
                // The consumer is this far behind: stop the op (what the
                // kernel has not delivered yet waits at its source) until
                // it catches up and re-arms. Completions are dispatched on
                // the op's owner shard, whose ring takes the cancel.
                self.capped_at.store(queued, Ordering::Relaxed);
                let ud = self.tag();
                crate::shard::local::with_current(|l| l.cancel_op(ud));
            }
        } else if cqe.res != -libc::ECANCELED {
            // The final CQE is an error (ENOBUFS, a reset...): hand it on
            // so the consumer sees why the op stopped.
            self.queued.fetch_add(1, Ordering::AcqRel);
            self.queue.push(cqe);
        }
        if last {
            self.ended.store(true, Ordering::Release);
        }
        // Dekker pair with `abandon`: push, then look at the flag.
        if self.abandoned.load(Ordering::SeqCst) {
            while let Some(c) = self.pop() {
                self.data.orphaned(c);
            }
            let n = self.after_abandon.fetch_add(1, Ordering::Relaxed) + 1;
            if !last && recancel_abandoned(n) {
                let ud = self.tag();
                crate::shard::local::with_current(|l| l.cancel_op(ud));
            }
        } else {
            self.waker.wake();
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owns nothing; counts what it was asked to release.
    #[derive(Default)]
    struct Nothing(AtomicUsize);

    impl MultiData for Nothing {
        fn entry(&self) -> Entry {
            io_uring::opcode::Nop::new().build()
        }

        fn orphaned(&self, _cqe: Cqe) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `IORING_CQE_F_MORE`.
    const MORE: u32 = 1 << 1;

    #[test]
    fn an_error_that_does_not_end_the_op_is_handed_on() {
        let cell = MultiCell::new(Nothing::default());
        let waker = std::task::Waker::noop();
        // A multishot timeout's ticks, then its end.
        for _ in 0..3 {
            assert!(!cell.complete(Cqe {
                res: -libc::ETIME,
                flags: MORE,
            }));
        }
        assert!(cell.complete(Cqe { res: 0, flags: 0 }));
        for _ in 0..3 {
            let tick = cell.poll_next(waker).unwrap().unwrap();
            assert_eq!(tick.res, -libc::ETIME);
        }
        assert_eq!(cell.poll_next(waker).unwrap().unwrap().res, 0);
        assert_eq!(cell.poll_next(waker), Some(Err(())));
        assert_eq!(cell.queued(), 0);
    }

    /// The count of queued CQEs never goes below zero while a consumer on
    /// another thread takes them as fast as they come (it was raised after
    /// the push, so a quick pop lowered it first: an overflow panic in a
    /// debug build).
    #[test]
    fn the_queued_count_stays_sound_with_a_consumer_on_another_thread() {
        const N: usize = 200_000;
        let cell = std::sync::Arc::new(MultiCell::new(Nothing::default()));
        let consumer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                let waker = std::task::Waker::noop();
                let mut taken = 0;
                loop {
                    assert!(cell.queued() <= N, "the count wrapped");
                    match cell.poll_next(waker) {
                        Some(Ok(_)) => taken += 1,
                        Some(Err(())) => return taken,
                        None => std::hint::spin_loop(),
                    }
                }
            })
        };
        for i in 0..N {
            let last = i + 1 == N;
            cell.complete(Cqe {
                res: 1,
                flags: if last { 0 } else { MORE },
            });
        }
        assert_eq!(consumer.join().unwrap(), N);
        assert_eq!(cell.queued(), 0);
    }

    #[test]
    fn an_abandoned_op_that_keeps_posting_is_cancelled_again_a_few_times() {
        let retries: Vec<usize> = (1..=1 << 20).filter(|&n| recancel_abandoned(n)).collect();
        assert_eq!(retries.first(), Some(&16), "not before a few stragglers");
        assert!(retries.len() <= 17, "bounded: {}", retries.len());
        assert!(retries.windows(2).all(|w| w[1] == 2 * w[0]));
    }

    #[test]
    fn the_first_cancel_goes_out_at_the_cap() {
        assert!(!cancel_for_cap(255, 256, 0));
        assert!(cancel_for_cap(256, 256, 0));
        assert!(cancel_for_cap(300, 256, 0));
    }

    #[test]
    fn a_cancel_that_did_not_stop_the_op_is_sent_again_a_cap_later() {
        assert!(!cancel_for_cap(257, 256, 256));
        assert!(!cancel_for_cap(511, 256, 256));
        assert!(cancel_for_cap(512, 256, 256));
        assert!(!cancel_for_cap(1 << 40, usize::MAX, 0), "no cap: never");
    }
}
