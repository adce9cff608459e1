//! A min-heap of timers. Each shard owns one (its nearest deadline becomes
//! the timeout of the shard's blocking `io_uring_enter`, so no SQE is spent
//! per timer); the fallback timer thread owns another.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use super::entry::TimerEntry;

struct Slot {
    deadline: Instant,
    seq: u64,
    entry: Arc<TimerEntry>,
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline && self.seq == other.seq
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// Timers ordered by deadline, then by registration order, so equal
/// deadlines fire in the order they were set.
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Slot>>,
    seq: u64,
    /// Size after the last sweep of cancelled entries, less the entries
    /// popped since: the next sweep comes once the inserts since the last
    /// one outnumber it. Shrinking it as timers fire keeps sweeps in step
    /// with the live size rather than with the largest size the heap ever
    /// had. Cancellations alone do not sweep: after many timers are
    /// cancelled at once (connections closing) their entries wait for
    /// their deadlines or for the next sweep, so the heap holds at most
    /// about twice its largest live size.
    swept_len: usize,
}

/// Heaps smaller than this are never swept; cancelled entries there just
/// wait for their deadline.
const SWEEP_FLOOR: usize = 4096;

impl TimerHeap {
    pub(crate) fn insert(&mut self, entry: Arc<TimerEntry>) {
        self.seq += 1;
        self.heap.push(Reverse(Slot {
            deadline: entry.deadline,
            seq: self.seq,
            entry,
        }));
        if self.heap.len() >= SWEEP_FLOOR && self.heap.len() > 2 * self.swept_len {
            self.sweep();
        }
    }

    /// Drops cancelled entries (long timeouts that finished early would
    /// otherwise pile up until their deadlines).
    fn sweep(&mut self) {
        self.heap.retain(|Reverse(s)| !s.entry.is_cancelled());
        self.swept_len = self.heap.len().max(SWEEP_FLOOR / 2);
        self.give_back_room();
    }

    /// Gives memory back after a burst: once the heap holds less than a
    /// quarter of its capacity (and more than the floor's worth), the
    /// capacity comes down to twice the length. A million timeouts that
    /// fired would otherwise keep their 32 MB for the shard's life; the
    /// margins keep a heap that grows and shrinks from reallocating each
    /// time.
    fn give_back_room(&mut self) {
        let len = self.heap.len();
        if self.heap.capacity() > SWEEP_FLOOR && self.heap.capacity() / 4 > len {
            self.heap.shrink_to((2 * len).max(SWEEP_FLOOR));
        }
    }

    /// Moves every timer due at `now` into `due`, in deadline order; the
    /// caller fires them once it no longer holds the heap
    /// (a waker may run arbitrary code, including code that sets a timer on
    /// this same heap).
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<Arc<TimerEntry>>) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            let Reverse(slot) = self.heap.pop().expect("peeked");
            self.swept_len = self.swept_len.saturating_sub(1);
            if !slot.entry.is_cancelled() {
                due.push(slot.entry);
            }
        }
        self.give_back_room();
    }

    /// The nearest deadline of a timer that is still wanted.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.entry.is_cancelled() {
                self.heap.pop();
                self.swept_len = self.swept_len.saturating_sub(1);
            } else {
                return Some(top.deadline);
            }
        }
        None
    }

    /// Takes every entry out (shard exit), for the caller to drop once it
    /// no longer holds the heap. Waiters are not woken; their tasks are
    /// being cancelled.
    pub(crate) fn take_all(&mut self) -> TimerHeap {
        std::mem::take(self)
    }

    /// Whether no entry (wanted or cancelled) is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let now = Instant::now();
        let mut h = TimerHeap::default();
        let w = Waker::noop();
        let a = Arc::new(TimerEntry::new(now + Duration::from_millis(2), w));
        let b = Arc::new(TimerEntry::new(now + Duration::from_millis(1), w));
        let c = Arc::new(TimerEntry::new(now + Duration::from_millis(1), w));
        h.insert(a.clone());
        h.insert(b.clone());
        h.insert(c.clone());
        assert_eq!(h.next_deadline(), Some(now + Duration::from_millis(1)));
        let mut due = Vec::new();
        h.take_due(now, &mut due);
        assert!(due.is_empty());
        h.take_due(now + Duration::from_millis(1), &mut due);
        assert_eq!(due.len(), 2);
        assert!(Arc::ptr_eq(&due[0], &b) && Arc::ptr_eq(&due[1], &c));
        assert!(!b.is_fired(), "taking does not fire");
        assert!(due.drain(..).all(|e| e.fire()));
        assert!(b.is_fired() && c.is_fired() && !a.is_fired());
        c.cancel();
        assert!(c.is_fired(), "cancel after fire keeps it fired");
    }

    #[test]
    fn cancelled_entries_are_skipped_and_swept() {
        let now = Instant::now();
        let mut h = TimerHeap::default();
        let w = Waker::noop();
        for i in 0..10_000u64 {
            let e = Arc::new(TimerEntry::new(now + Duration::from_secs(60 + i), w));
            e.cancel();
            h.insert(e);
        }
        assert!(
            h.heap.len() < 10_000,
            "sweeps keep the heap bounded: {}",
            h.heap.len()
        );
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn sweeps_follow_the_live_size_after_a_burst_fires() {
        let now = Instant::now();
        let mut h = TimerHeap::default();
        let w = Waker::noop();
        // A burst: many short timers (and a few long ones) at once.
        let long = 100;
        for i in 0..20_000u64 {
            let secs = if i < long { 3600 } else { 1 };
            h.insert(Arc::new(TimerEntry::new(
                now + Duration::from_secs(secs),
                w,
            )));
        }
        let mut due = Vec::new();
        h.take_due(now + Duration::from_secs(1), &mut due);
        assert_eq!(due.len(), 20_000 - long as usize);
        assert_eq!(h.heap.len(), long as usize);
        // Then churn: long timeouts that finish early (cancelled at once).
        let mut peak = 0;
        for i in 0..30_000u64 {
            let e = Arc::new(TimerEntry::new(now + Duration::from_secs(60 + i), w));
            e.cancel();
            h.insert(e);
            peak = peak.max(h.heap.len());
        }
        // Dead entries stay bounded by the live size (or the floor under
        // which no sweep happens), not by the burst's peak.
        let bound = 2 * (long as usize).max(SWEEP_FLOOR / 2) + 1;
        assert!(peak <= bound, "{peak} entries for {long} live ones");
    }

    #[test]
    fn a_burst_that_fired_gives_its_memory_back() {
        let now = Instant::now();
        let mut h = TimerHeap::default();
        let w = Waker::noop();
        for i in 0..200_000u64 {
            let at = now + Duration::from_micros(i % 1000);
            h.insert(Arc::new(TimerEntry::new(at, w)));
        }
        let kept = Arc::new(TimerEntry::new(now + Duration::from_secs(60), w));
        h.insert(kept);
        let mut due = Vec::new();
        h.take_due(now + Duration::from_secs(1), &mut due);
        assert_eq!(due.len(), 200_000);
        assert_eq!(h.heap.len(), 1);
        assert!(
            h.heap.capacity() <= SWEEP_FLOOR,
            "{} slots kept for one timer",
            h.heap.capacity()
        );
    }
}
