//! `HandlerPlacement::Adaptive`'s memory: per route, a smoothed longest
//! poll, and whether the route runs inline or stealable.
//!
//! Each shard has its own table, a fixed array of slots indexed by the
//! route key, which only that shard's connections read and write: a
//! shard learns a route from its own requests, and no cache line is shared
//! between shards on the request path (a table shared by all shards had
//! every sampled request write a line that every other shard then read).
//! Routes beyond the table size share slots (documented on
//! `AdaptiveConfig::max_routes`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::placement::AdaptiveConfig;
use crate::protocol::RouteKey;

/// Top bit of a slot: the route currently runs stealable.
const HEAVY: u64 = 1 << 63;

/// Per-shard, per-route poll-time averages and placement decisions.
pub(crate) struct AdaptiveTable {
    /// One slot array per shard. The slots are atomics only so the table
    /// can be shared; each array has one thread using it.
    shards: Box<[Box<[AtomicU64]>]>,
    heavy_ns: u64,
}

impl AdaptiveTable {
    /// A table for `shards` shards.
    pub(crate) fn new(cfg: AdaptiveConfig, shards: usize) -> AdaptiveTable {
        let n = cfg.max_routes.max(1);
        AdaptiveTable {
            shards: (0..shards.max(1))
                .map(|_| (0..n).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            heavy_ns: u64::try_from(cfg.heavy_poll.as_nanos())
                .unwrap_or(u64::MAX >> 2)
                .max(1),
        }
    }

    fn slot(&self, shard: usize, route: RouteKey) -> &AtomicU64 {
        let slots = &self.shards[shard % self.shards.len()];
        // Spread keys that differ only in high bits over the slots too.
        let h = route.0 ^ (route.0 >> 29) ^ (route.0 >> 47);
        &slots[(h % slots.len() as u64) as usize]
    }

    /// Whether one request's longest poll reached the heavy threshold.
    pub(crate) fn is_heavy_poll(&self, longest: Duration) -> bool {
        u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX) >= self.heavy_ns
    }

    /// Whether requests of `route` should run stealable now.
    pub(crate) fn is_heavy(&self, shard: usize, route: RouteKey) -> bool {
        self.slot(shard, route).load(Ordering::Relaxed) & HEAVY != 0
    }

    /// Whether an inline request of `route` should be recorded in the
    /// route's average: always until the route has a sample, then one
    /// request in [`SAMPLE_EVERY`], picked at random (so a route that is
    /// heavy every n-th request is not missed by a fixed stride). Timing
    /// costs two clock reads per poll, which cheap routes would otherwise
    /// pay on every request. (Unrouted requests are also timed on every
    /// poll for their connection's own record.)
    pub(crate) fn should_time(&self, shard: usize, route: RouteKey) -> bool {
        self.slot(shard, route).load(Ordering::Relaxed) == 0 || sampled()
    }

    /// Records that a request of `route` had `longest` as its longest
    /// single poll, and updates the route's placement: heavy from
    /// `heavy_poll` up, light again below half of it.
    pub(crate) fn record(&self, shard: usize, route: RouteKey, longest: Duration) {
        let sample = u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX >> 2);
        let slot = self.slot(shard, route);
        let old = slot.load(Ordering::Relaxed);
        let avg = old & !HEAVY;
        // Exponential average with weight 1/8 for the new sample.
        let avg = if avg == 0 {
            sample
        } else {
            avg - avg / 8 + sample / 8
        }
        .min(u64::MAX >> 2);
        let was_heavy = old & HEAVY != 0;
        let heavy = if was_heavy {
            avg >= self.heavy_ns / 2
        } else {
            avg >= self.heavy_ns
        };
        slot.store(avg | if heavy { HEAVY } else { 0 }, Ordering::Relaxed);
    }
}

/// One in this many inline requests of a sampled route is timed.
pub(crate) const SAMPLE_EVERY: u32 = 8;

/// A per-thread xorshift draw: true one time in [`SAMPLE_EVERY`].
fn sampled() -> bool {
    thread_local!(static STATE: Cell<u32> = const { Cell::new(0x9E37_79B9) });
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s.set(x);
        x % SAMPLE_EVERY == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AdaptiveTable {
        AdaptiveTable::new(
            AdaptiveConfig {
                heavy_poll: Duration::from_micros(100),
                max_routes: 16,
            },
            2,
        )
    }

    #[test]
    fn a_route_with_long_polls_turns_heavy_and_back() {
        let t = table();
        let r = RouteKey(7);
        assert!(!t.is_heavy(0, r));
        for _ in 0..4 {
            t.record(0, r, Duration::from_micros(500));
        }
        assert!(t.is_heavy(0, r));
        // Short polls bring the average below half the threshold.
        for _ in 0..64 {
            t.record(0, r, Duration::from_micros(5));
        }
        assert!(!t.is_heavy(0, r));
    }

    #[test]
    fn hysteresis_keeps_a_heavy_route_heavy_between_the_thresholds() {
        let t = table();
        let r = RouteKey(1);
        t.record(0, r, Duration::from_micros(200));
        assert!(t.is_heavy(0, r));
        for _ in 0..64 {
            t.record(0, r, Duration::from_micros(70));
        }
        assert!(t.is_heavy(0, r), "70 µs is above half of 100 µs");
    }

    #[test]
    fn a_new_route_is_always_timed_then_sampled() {
        let t = table();
        let r = RouteKey(7);
        assert!((0..100).all(|_| t.should_time(0, r)));
        t.record(0, r, Duration::from_micros(3));
        let timed = (0..8000).filter(|_| t.should_time(0, r)).count();
        assert!(
            (500..1500).contains(&timed),
            "about one in {SAMPLE_EVERY} timed, got {timed} of 8000"
        );
    }

    #[test]
    fn each_shard_learns_a_route_for_itself() {
        let t = table();
        let r = RouteKey(3);
        t.record(0, r, Duration::from_millis(1));
        assert!(t.is_heavy(0, r));
        assert!(!t.is_heavy(1, r));
        assert!(t.should_time(1, r), "shard 1 has no sample of it yet");
    }

    #[test]
    fn routes_are_tracked_apart() {
        let t = table();
        t.record(0, RouteKey(1), Duration::from_millis(1));
        t.record(0, RouteKey(2), Duration::from_micros(1));
        assert!(t.is_heavy(0, RouteKey(1)));
        assert!(!t.is_heavy(0, RouteKey(2)));
    }
}
