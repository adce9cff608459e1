//! `HandlerPlacement::Adaptive`'s memory: per route, a smoothed longest
//! poll, and whether the route runs inline, stealable or on the background
//! pool.
//!
//! Each shard has its own table, which only that shard's connections read
//! and write: a shard learns a route from its own requests, and no cache
//! line is shared between shards on the request path (a table shared by
//! all shards had every sampled request write a line that every other
//! shard then read).
//!
//! A route owns a slot, tagged with its key, so no other route's requests
//! move its average. Route keys can come from clients (HTTP keys requests
//! by their path's first segment), so the slots a key may take are picked
//! by a hash keyed with random numbers drawn per table: a client cannot
//! work out offline which path lands on a heavy route's slots. A route
//! takes the first free one of its two candidate slots and keeps it for
//! the table's life; a route that finds both taken by other routes counts
//! towards one shared overflow slot (documented on
//! `AdaptiveConfig::max_routes`). A flood of made-up paths can fill free
//! slots, never take one a route already holds.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::placement::AdaptiveConfig;
use crate::protocol::RouteKey;

/// Top bit of a slot: the route currently runs stealable.
const HEAVY: u64 = 1 << 63;
/// Next bit: the route currently runs on the background pool.
const BACKGROUND: u64 = 1 << 62;
/// The bits of a slot that hold the average (in nanoseconds).
const AVG: u64 = BACKGROUND - 1;

/// Where an adaptive request's handler runs; ordered from the lightest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// Polled on the connection's task.
    Inline,
    /// Spawned stealable.
    Stealable,
    /// Spawned on the runtime's background pool.
    Background,
}

/// One route's record. The fields are atomics only so the table can be
/// shared; each shard's slots have one thread using them.
#[derive(Default)]
struct Slot {
    /// The route that holds the slot (meaningless while `state` is 0).
    route: AtomicU64,
    /// The flags and the average; 0: free (no sample yet).
    state: AtomicU64,
}

/// Where a route's record is.
enum Place<'a> {
    /// In a slot it holds, or (both of its slots held by others) in the
    /// overflow slot.
    Held(&'a Slot),
    /// Not recorded yet; this free slot is where it will go.
    Free(&'a Slot),
}

/// A keyed multiply-shift hash: for two different keys and random
/// multipliers, the chance that they pick the same slot is about 2 in the
/// slot count, whichever keys a client chose.
#[derive(Clone, Copy)]
struct SlotHash {
    /// Random, odd.
    mul: [u64; 2],
    /// Random.
    add: [u64; 2],
}

impl SlotHash {
    fn random() -> SlotHash {
        let state = RandomState::new();
        let draw = |n: u64| {
            let mut h = state.build_hasher();
            h.write_u64(n);
            h.finish()
        };
        SlotHash {
            mul: [draw(0) | 1, draw(1) | 1],
            add: [draw(2), draw(3)],
        }
    }

    /// The route's two candidate indexes among `2^bits` slots.
    fn candidates(&self, route: RouteKey, bits: u32) -> [usize; 2] {
        let pick = |i: usize| {
            let h = route.0.wrapping_mul(self.mul[i]).wrapping_add(self.add[i]);
            // The top bits are the well-mixed ones; with one slot
            // (`bits == 0`) the shift would be out of range.
            h.checked_shr(64 - bits).unwrap_or(0) as usize
        };
        [pick(0), pick(1)]
    }
}

/// The most routes a table tracks apart per shard (1 MiB of slots); a
/// larger [`AdaptiveConfig::max_routes`] is capped to it.
pub(crate) const MAX_ROUTES: usize = 1 << 16;

/// Per-shard, per-route poll-time averages and placement decisions.
pub(crate) struct AdaptiveTable {
    /// One slot array per shard: `2^bits` route slots, then the overflow
    /// slot.
    shards: Box<[Box<[Slot]>]>,
    bits: u32,
    hash: SlotHash,
    heavy_ns: u64,
    /// `u64::MAX`: never background.
    background_ns: u64,
}

impl AdaptiveTable {
    /// A table for `shards` shards.
    pub(crate) fn new(cfg: AdaptiveConfig, shards: usize) -> AdaptiveTable {
        // A power of two: a slot is picked with a shift (a division on
        // every request cost more than the rest of the lookup).
        let n = cfg.max_routes.clamp(1, MAX_ROUTES).next_power_of_two();
        AdaptiveTable {
            shards: (0..shards.max(1))
                .map(|_| (0..=n).map(|_| Slot::default()).collect())
                .collect(),
            bits: n.trailing_zeros(),
            hash: SlotHash::random(),
            heavy_ns: nanos(cfg.heavy_poll).max(1),
            background_ns: cfg.background_poll.map_or(u64::MAX, |d| nanos(d).max(1)),
        }
    }

    /// The smallest table (one shard, one route slot), for a server whose
    /// placement never consults it.
    pub(crate) fn unused() -> AdaptiveTable {
        let cfg = AdaptiveConfig {
            max_routes: 1,
            ..AdaptiveConfig::default()
        };
        AdaptiveTable::new(cfg, 1)
    }

    /// Where `route`'s record on `shard` is: a slot it holds, else a free
    /// candidate slot, else the overflow slot.
    fn place(&self, shard: usize, route: RouteKey) -> Place<'_> {
        let slots = match self.shards.get(shard) {
            Some(slots) => slots,
            None => &self.shards[shard % self.shards.len()],
        };
        let mut free = None;
        for i in self.hash.candidates(route, self.bits) {
            let slot = &slots[i];
            if slot.state.load(Ordering::Relaxed) == 0 {
                // Slots are never freed: a route that holds its second
                // candidate found the first taken, so a free first
                // candidate means the route holds neither.
                free.get_or_insert(slot);
            } else if slot.route.load(Ordering::Relaxed) == route.0 {
                return Place::Held(slot);
            }
        }
        match free {
            Some(slot) => Place::Free(slot),
            None => Place::Held(&slots[slots.len() - 1]),
        }
    }

    /// The flags and average `route` counts under on `shard` (0: none yet).
    fn state(&self, shard: usize, route: RouteKey) -> u64 {
        match self.place(shard, route) {
            Place::Held(slot) => slot.state.load(Ordering::Relaxed),
            Place::Free(_) => 0,
        }
    }

    /// The tier one request's longest poll calls for, without hysteresis
    /// (a connection's own record).
    pub(crate) fn tier_of_poll(&self, longest: Duration) -> Tier {
        let ns = nanos(longest);
        if ns >= self.background_ns {
            Tier::Background
        } else if ns >= self.heavy_ns {
            Tier::Stealable
        } else {
            Tier::Inline
        }
    }

    /// Where requests of `route` should run now.
    pub(crate) fn tier(&self, shard: usize, route: RouteKey) -> Tier {
        let slot = self.state(shard, route);
        if slot & BACKGROUND != 0 {
            Tier::Background
        } else if slot & HEAVY != 0 {
            Tier::Stealable
        } else {
            Tier::Inline
        }
    }

    /// Whether an inline request of `route` should be recorded in the
    /// route's average: always until the route has a sample, then one
    /// request in [`SAMPLE_EVERY`], picked at random (so a route that is
    /// heavy every n-th request is not missed by a fixed stride). Timing
    /// costs two clock reads per poll, which cheap routes would otherwise
    /// pay on every request. (Unrouted requests are also timed on every
    /// poll for their connection's own record.)
    pub(crate) fn should_time(&self, shard: usize, route: RouteKey) -> bool {
        self.state(shard, route) == 0 || sampled()
    }

    /// Records that a request of `route` had `longest` as its longest
    /// single poll, and updates the route's placement: stealable from
    /// `heavy_poll` up, background from `background_poll` up, each left
    /// again below half of its threshold.
    pub(crate) fn record(&self, shard: usize, route: RouteKey, longest: Duration) {
        let sample = nanos(longest).min(AVG);
        let slot = match self.place(shard, route) {
            Place::Held(slot) => slot,
            Place::Free(slot) => {
                slot.route.store(route.0, Ordering::Relaxed);
                slot
            }
        };
        let old = slot.state.load(Ordering::Relaxed);
        let avg = old & AVG;
        // Exponential average with weight 1/8 for the new sample; never 0
        // once recorded (0 means "no sample yet").
        let avg = if avg == 0 {
            sample
        } else {
            avg - avg / 8 + sample / 8
        }
        .clamp(1, AVG);
        let above = |flag: u64, threshold: u64| {
            if old & flag != 0 {
                avg >= threshold / 2
            } else {
                avg >= threshold
            }
        };
        let mut new = avg;
        if above(HEAVY, self.heavy_ns) {
            new |= HEAVY;
        }
        if above(BACKGROUND, self.background_ns) {
            new |= BACKGROUND;
        }
        slot.state.store(new, Ordering::Relaxed);
    }
}

/// A duration in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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

    #[test]
    fn a_huge_route_count_is_capped_not_a_panic() {
        let cfg = AdaptiveConfig {
            max_routes: usize::MAX,
            ..AdaptiveConfig::default()
        };
        let table = AdaptiveTable::new(cfg, 2);
        assert_eq!(table.shards[0].len(), MAX_ROUTES + 1);
        for route in 0..1000 {
            table.state(1, RouteKey(route * 0x9e37_79b9));
        }
    }

    /// Records `n` polls of `poll` for route `r` on shard 0.
    fn record_n(t: &AdaptiveTable, r: RouteKey, n: usize, poll: Duration) {
        for _ in 0..n {
            t.record(0, r, poll);
        }
    }

    fn table() -> AdaptiveTable {
        AdaptiveTable::new(
            AdaptiveConfig {
                heavy_poll: Duration::from_micros(100),
                background_poll: Some(Duration::from_micros(400)),
                max_routes: 16,
            },
            2,
        )
    }

    #[test]
    fn a_route_with_long_polls_turns_heavy_and_back() {
        let t = table();
        let r = RouteKey(7);
        assert_eq!(t.tier(0, r), Tier::Inline);
        record_n(&t, r, 4, Duration::from_micros(500));
        assert_ne!(t.tier(0, r), Tier::Inline);
        // Short polls bring the average below half the threshold.
        record_n(&t, r, 64, Duration::from_micros(5));
        assert_eq!(t.tier(0, r), Tier::Inline);
    }

    #[test]
    fn a_route_with_very_long_polls_goes_to_the_background_and_back() {
        let t = table();
        let r = RouteKey(9);
        t.record(0, r, Duration::from_micros(300));
        assert_eq!(t.tier(0, r), Tier::Stealable, "between the thresholds");
        record_n(&t, r, 16, Duration::from_millis(1));
        assert_eq!(t.tier(0, r), Tier::Background);
        // 250 µs: below the background threshold, above half of it.
        record_n(&t, r, 64, Duration::from_micros(250));
        assert_eq!(t.tier(0, r), Tier::Background, "hysteresis");
        record_n(&t, r, 64, Duration::from_micros(120));
        assert_eq!(t.tier(0, r), Tier::Stealable);
        record_n(&t, r, 64, Duration::from_micros(5));
        assert_eq!(t.tier(0, r), Tier::Inline);
    }

    #[test]
    fn without_a_background_threshold_routes_stay_on_the_shards() {
        let t = AdaptiveTable::new(
            AdaptiveConfig {
                background_poll: None,
                ..AdaptiveConfig::default()
            },
            1,
        );
        let r = RouteKey(4);
        record_n(&t, r, 8, Duration::from_secs(1));
        assert_eq!(t.tier(0, r), Tier::Stealable);
        assert_eq!(t.tier_of_poll(Duration::from_secs(1)), Tier::Stealable);
    }

    #[test]
    fn one_poll_picks_its_tier() {
        let t = table();
        assert_eq!(t.tier_of_poll(Duration::from_micros(50)), Tier::Inline);
        assert_eq!(t.tier_of_poll(Duration::from_micros(100)), Tier::Stealable);
        assert_eq!(t.tier_of_poll(Duration::from_micros(400)), Tier::Background);
    }

    #[test]
    fn hysteresis_keeps_a_heavy_route_heavy_between_the_thresholds() {
        let t = table();
        let r = RouteKey(1);
        t.record(0, r, Duration::from_micros(200));
        assert_ne!(t.tier(0, r), Tier::Inline);
        record_n(&t, r, 64, Duration::from_micros(70));
        assert!(
            (t.tier(0, r) != Tier::Inline),
            "70 µs is above half of 100 µs"
        );
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
        assert_ne!(t.tier(0, r), Tier::Inline);
        assert_eq!(t.tier(1, r), Tier::Inline);
        assert!(t.should_time(1, r), "shard 1 has no sample of it yet");
    }

    #[test]
    fn routes_are_tracked_apart() {
        let t = table();
        t.record(0, RouteKey(1), Duration::from_millis(1));
        t.record(0, RouteKey(2), Duration::from_micros(1));
        assert_ne!(t.tier(0, RouteKey(1)), Tier::Inline);
        assert_eq!(t.tier(0, RouteKey(2)), Tier::Inline);
    }

    #[test]
    fn a_flood_of_other_routes_leaves_a_held_route_alone() {
        let t = table();
        let heavy = RouteKey::of("render");
        t.record(0, heavy, Duration::from_millis(1));
        // Made-up paths, each cheap, far more of them than there are slots.
        for i in 0..4096 {
            record_n(
                &t,
                RouteKey::of(&format!("x{i}")),
                8,
                Duration::from_micros(1),
            );
        }
        assert_ne!(t.tier(0, heavy), Tier::Inline);
    }

    #[test]
    fn routes_that_find_no_free_slot_share_the_overflow_slot() {
        let t = AdaptiveTable::new(
            AdaptiveConfig {
                max_routes: 1,
                ..AdaptiveConfig::default()
            },
            1,
        );
        let (first, second, third) = (RouteKey(1), RouteKey(2), RouteKey(3));
        t.record(0, first, Duration::from_micros(1));
        t.record(0, second, Duration::from_millis(1));
        assert_eq!(t.tier(0, first), Tier::Inline, "the one slot is first's");
        assert_ne!(t.tier(0, second), Tier::Inline);
        assert_eq!(t.tier(0, third), t.tier(0, second), "one overflow slot");
    }

    #[test]
    fn each_table_places_routes_its_own_way() {
        let (a, b) = (SlotHash::random(), SlotHash::random());
        let differ = (0..64)
            .map(RouteKey)
            .filter(|&r| a.candidates(r, 10) != b.candidates(r, 10))
            .count();
        assert!(differ > 0, "the slot hash is keyed per table");
    }
}
