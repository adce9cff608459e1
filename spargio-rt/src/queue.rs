//! Taking from crossbeam's `Injector` queues without paying for a fence
//! when they are empty.
//!
//! `Injector::steal` (and its batch forms) issue a `SeqCst` fence before
//! they can tell that the queue is empty. A shard's loop turn looks at
//! several injectors (its remote-op queue, its stealable
//! injector, the global one) and usually finds most of them empty, so on a
//! cross-shard round trip those fences were a good part of each turn.
//! `Injector::is_empty` is two plain loads; looking first costs nothing on
//! a queue with work and saves the fence on one without.
//!
//! Skipping a queue whose push is still in flight is no weaker than a
//! `steal` that returns `Empty` at the same moment: the pusher wakes the
//! shard afterwards by the park protocol (`shard/park.rs`), whose re-check
//! uses the same `is_empty` loads after its own fence.

use crossbeam_deque::{Injector, Steal};

/// Takes the next item of `queue`, retrying lost races; `None` when the
/// queue is empty (checked first, without a fence).
pub(crate) fn take<T>(queue: &Injector<T>) -> Option<T> {
    if queue.is_empty() {
        return None;
    }
    loop {
        match queue.steal() {
            Steal::Success(item) => return Some(item),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// Runs `steal` (one of `Injector`'s batch steals) until it is decided,
/// unless `queue` is empty; the `Steal` it ended with (`Empty` when the
/// queue was skipped).
pub(crate) fn steal_batch<T, R>(
    queue: &Injector<T>,
    mut steal: impl FnMut(&Injector<T>) -> Steal<R>,
) -> Steal<R> {
    if queue.is_empty() {
        return Steal::Empty;
    }
    loop {
        match steal(queue) {
            Steal::Retry => continue,
            decided => return decided,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_deque::Worker;

    #[test]
    fn take_returns_items_in_order_then_none() {
        let q = Injector::new();
        assert_eq!(take(&q), None::<u32>);
        q.push(1);
        q.push(2);
        assert_eq!(take(&q), Some(1));
        assert_eq!(take(&q), Some(2));
        assert_eq!(take(&q), None);
    }

    #[test]
    fn steal_batch_moves_items_and_reports_empty() {
        let q = Injector::new();
        let w = Worker::new_fifo();
        let got = steal_batch(&q, |q| q.steal_batch_with_limit_and_pop(&w, 4));
        assert!(got.is_empty());
        for i in 0..3 {
            q.push(i);
        }
        let got = steal_batch(&q, |q| q.steal_batch_with_limit_and_pop(&w, 4));
        assert_eq!(got.success(), Some(0));
        // The batch took at least one more into the worker; the rest is
        // still queued, in order.
        let mut rest: Vec<i32> = std::iter::from_fn(|| w.pop()).collect();
        assert!(!rest.is_empty());
        rest.extend(std::iter::from_fn(|| take(&q)));
        assert_eq!(rest, vec![1, 2]);
    }
}
