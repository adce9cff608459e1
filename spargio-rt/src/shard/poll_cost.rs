//! Whether tasks queued on a shard are worth waking another shard for.
//!
//! Completions reaped in one go often wake several I/O-bound tasks, each of
//! which polls for a microsecond or two (queue the next send, go back to
//! waiting). Waking a parked shard to steal them costs about a context
//! switch on each side ([`WAKE_COST`]); by the time the helper looks, the
//! busy shard has usually run them all, and the helper's stolen tasks
//! drag their I/O to a second ring that now parks and wakes too. On a
//! machine whose other cores are busy (a load generator, the peer of a
//! connection) that doubles the wake-ups for no gain.
//!
//! So a shard keeps a running average of how long its polls take (one clock
//! read per batch of polls, not per poll) and asks for a helper only when
//! the queued tasks would take longer to run here than a wake-up costs.
//! Tasks spawned during a poll are not judged by this: they are announced
//! as before, since a new task's cost is unknown and a burst of spawns is
//! how fan-out work reaches idle shards.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::spin::{ewma, WAKE_COST};

/// A shard's running average of the time one task poll takes. Only the
/// shard itself records it.
#[derive(Debug)]
pub(crate) struct PollCost {
    /// Average nanoseconds per poll; starts at [`WAKE_COST`], so until
    /// polls are measured any backlog asks for a helper.
    avg_ns: AtomicU32,
}

impl PollCost {
    pub(crate) fn new() -> PollCost {
        PollCost {
            avg_ns: AtomicU32::new(WAKE_COST.as_nanos() as u32),
        }
    }

    /// Records a batch: `ran` polls took `elapsed` in all.
    pub(crate) fn record(&self, elapsed: Duration, ran: usize) {
        if ran == 0 {
            return;
        }
        let per = (elapsed.as_nanos() / ran as u128).min(u128::from(u32::MAX)) as u32;
        let avg = self.avg_ns.load(Ordering::Relaxed);
        self.avg_ns.store(ewma(avg, per), Ordering::Relaxed);
    }

    /// Whether `queued` tasks would keep this shard busy for longer than
    /// waking another shard to help costs.
    pub(crate) fn worth_a_helper(&self, queued: usize) -> bool {
        (queued as u64).saturating_mul(u64::from(self.avg_ns.load(Ordering::Relaxed)))
            >= WAKE_COST.as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &PollCost, per_poll: Duration, batches: usize) {
        for _ in 0..batches {
            p.record(per_poll * 4, 4);
        }
    }

    #[test]
    fn unmeasured_polls_ask_for_a_helper_for_any_backlog() {
        let p = PollCost::new();
        assert!(p.worth_a_helper(1));
    }

    #[test]
    fn short_polls_need_a_long_queue_before_a_helper_is_woken() {
        let p = PollCost::new();
        feed(&p, Duration::from_micros(1), 100);
        assert!(!p.worth_a_helper(2));
        assert!(!p.worth_a_helper(8));
        assert!(p.worth_a_helper(64));
    }

    #[test]
    fn long_polls_ask_for_a_helper_at_once() {
        let p = PollCost::new();
        feed(&p, Duration::from_micros(1), 100);
        feed(&p, Duration::from_micros(40), 40);
        assert!(p.worth_a_helper(1));
    }

    #[test]
    fn an_empty_batch_changes_nothing() {
        let p = PollCost::new();
        feed(&p, Duration::from_micros(1), 100);
        p.record(Duration::from_millis(5), 0);
        assert!(!p.worth_a_helper(2));
    }
}
