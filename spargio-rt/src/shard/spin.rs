//! When a shard that ran out of work should spin before it parks.
//!
//! Spinning pays off when work comes back sooner than a park and wake-up
//! would cost; otherwise it only burns CPU that other threads (the other
//! shard, a load generator, the blocking pool) could use. The policy keeps
//! two running averages over recent idle gaps (from entering `park` to
//! finding work, whether the shard spun or slept):
//!
//! - how often the gap was within the spin budget (a spin would have hit),
//! - the expected spin time, `min(gap, budget)`.
//!
//! It spins while the expected spin time is below what the hits save
//! (`hit rate × WAKE_COST`): the ski-rental rule, with the gap distribution
//! learned from the shard's own recent history. Gaps are measured on every
//! park, spun or slept, so a shard that stopped spinning starts again as
//! soon as work comes back quickly.
//!
//! Work handed over by another thread (a task woken or queued from there,
//! or an op sent from there) counts as a quick hit whatever the gap was:
//! between shards the gap is long only because the other side was asleep
//! too, and two shards that both stop spinning would each make the
//! other's gaps long for good
//! (ping-pong between shards would pay two wake-ups per round trip).
//! Gaps that end in I/O completions, which come from outside the runtime,
//! are judged as measured.

use std::cell::Cell;
use std::time::Duration;

/// What one park (and its wake-up) is taken to cost: the `io_uring_enter`
/// sleep, the context switch and the scheduler's wake-up latency.
pub(crate) const WAKE_COST: Duration = Duration::from_micros(15);

/// Fixed-point scale of the hit rate.
const ONE: u32 = 1 << 10;

/// Weight of a new sample in both averages: 1 / 2^SHIFT.
const SHIFT: u32 = 3;

/// A shard's record of its recent idle gaps; see the module docs.
#[derive(Debug)]
pub(crate) struct SpinPolicy {
    budget_ns: u32,
    /// Share of gaps within the budget, out of [`ONE`].
    hit_rate: Cell<u32>,
    /// Average of `min(gap, budget)`, in nanoseconds.
    spin_ns: Cell<u32>,
}

impl SpinPolicy {
    /// A policy for spins of at most `budget`; it starts out spinning.
    pub(crate) fn new(budget: Duration) -> Self {
        SpinPolicy {
            budget_ns: budget.as_nanos().min(u128::from(u32::MAX)) as u32,
            hit_rate: Cell::new(ONE),
            spin_ns: Cell::new(0),
        }
    }

    /// The most a spin may last.
    pub(crate) fn budget(&self) -> Duration {
        Duration::from_nanos(u64::from(self.budget_ns))
    }

    /// Whether the next park should spin first.
    pub(crate) fn should_spin(&self) -> bool {
        if self.budget_ns == 0 {
            return false;
        }
        // spin_ns < hit_rate / ONE * WAKE_COST, in integers.
        let saved = u64::from(self.hit_rate.get()) * WAKE_COST.as_nanos() as u64;
        u64::from(self.spin_ns.get()) * u64::from(ONE) < saved
    }

    /// Records one idle gap: the time from entering `park` until work was
    /// found, by spinning or after sleeping; `from_shard` when another
    /// shard handed that work over (see the module docs).
    pub(crate) fn record(&self, gap: Duration, from_shard: bool) {
        if self.budget_ns == 0 {
            return;
        }
        let gap = if from_shard { Duration::ZERO } else { gap };
        let gap_ns = gap.as_nanos().min(u128::from(self.budget_ns)) as u32;
        let hit = if gap_ns < self.budget_ns { ONE } else { 0 };
        self.hit_rate.set(ewma(self.hit_rate.get(), hit));
        self.spin_ns.set(ewma(self.spin_ns.get(), gap_ns));
    }
}

/// Moves `avg` 1 / 2^SHIFT of the way towards `sample`.
pub(crate) fn ewma(avg: u32, sample: u32) -> u32 {
    let avg = i64::from(avg);
    let next = avg + ((i64::from(sample) - avg) >> SHIFT);
    next.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_micros(50);

    fn feed(p: &SpinPolicy, gap: Duration, times: usize) {
        for _ in 0..times {
            p.record(gap, false);
        }
    }

    #[test]
    fn starts_out_spinning() {
        assert!(SpinPolicy::new(BUDGET).should_spin());
    }

    #[test]
    fn zero_budget_never_spins() {
        let p = SpinPolicy::new(Duration::ZERO);
        feed(&p, Duration::from_nanos(100), 50);
        assert!(!p.should_spin());
    }

    #[test]
    fn short_gaps_keep_it_spinning() {
        let p = SpinPolicy::new(BUDGET);
        feed(&p, Duration::from_micros(2), 100);
        assert!(p.should_spin());
    }

    #[test]
    fn gaps_past_the_budget_stop_the_spin() {
        let p = SpinPolicy::new(BUDGET);
        feed(&p, Duration::from_micros(120), 40);
        assert!(!p.should_spin());
    }

    #[test]
    fn hits_that_come_late_are_not_worth_spinning_for() {
        // Every gap fits in the budget, but each costs more spinning than
        // a park would.
        let p = SpinPolicy::new(BUDGET);
        feed(&p, Duration::from_micros(40), 40);
        assert!(!p.should_spin());
    }

    #[test]
    fn mostly_long_gaps_with_a_few_quick_ones_do_not_spin() {
        let p = SpinPolicy::new(BUDGET);
        for _ in 0..40 {
            p.record(Duration::from_micros(1), false);
            p.record(Duration::from_micros(200), false);
            p.record(Duration::from_micros(200), false);
        }
        assert!(!p.should_spin());
    }

    #[test]
    fn work_from_other_shards_keeps_it_spinning_even_after_long_gaps() {
        let p = SpinPolicy::new(BUDGET);
        for _ in 0..40 {
            p.record(Duration::from_micros(300), true);
        }
        assert!(p.should_spin());
    }

    #[test]
    fn quick_gaps_coming_back_restart_the_spin() {
        let p = SpinPolicy::new(BUDGET);
        feed(&p, Duration::from_millis(5), 40);
        assert!(!p.should_spin());
        feed(&p, Duration::from_micros(1), 40);
        assert!(p.should_spin());
    }
}
