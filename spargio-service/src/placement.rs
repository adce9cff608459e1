//! Where a request's handler future runs relative to its connection.

use std::time::Duration;

/// Where the service's response futures run.
///
/// The connection's own task (its reads and writes) always stays on its
/// session shard; this picks where the *handler* runs. On a shard, a
/// handler poll that computes for long holds that shard, and with it the
/// shard's connections: a handler with milliseconds of work should either
/// `spargio_rt::yield_now().await` between slices of it, or run on the
/// background pool ([`Background`](Self::Background), or
/// [`Adaptive`](Self::Adaptive), which moves such routes there itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HandlerPlacement {
    /// Polled on the connection's task: no hop, lowest latency for cheap
    /// handlers; a CPU-heavy handler holds up the shard's other connections.
    Inline,
    /// Spawned as a stealable task: an idle shard can take it while the
    /// connection stays pinned. Costs a spawn and a wake-up per request.
    #[default]
    Stealable,
    /// Spawned on the runtime's background pool
    /// ([`spawn_background`](spargio_rt::RuntimeHandle::spawn_background)):
    /// threads outside the shards at a lower CPU priority, so a handler
    /// that computes for milliseconds never holds a shard, and the kernel
    /// runs a shard with I/O to handle before it. Costs a hop to a pool
    /// thread and back per request, and the handler's own I/O is submitted
    /// to a shard from there: for CPU-heavy handlers only.
    Background,
    /// Starts inline and measures each route's poll times; a route whose
    /// polls run long (see [`AdaptiveConfig`]) moves to stealable, one
    /// whose polls run very long to the background pool, and each moves
    /// back when its polls get short again. Each shard learns a
    /// route from its own connections' requests (no state is shared
    /// between shards on the request path). For requests the
    /// protocol gives no route ([`RouteKey::DEFAULT`](crate::RouteKey::DEFAULT)),
    /// a connection whose last request had a poll of `heavy_poll` or more
    /// also sends its next request stealable (or to the background pool,
    /// from `background_poll`): a connection that turns hot
    /// moves even while the one route's average, diluted by every other
    /// connection's cheap requests, stays low.
    Adaptive,
}

/// Tuning of [`HandlerPlacement::Adaptive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveConfig {
    /// A route whose smoothed longest poll per request reaches this moves to
    /// stealable; it moves back below half of it. An unrouted request with
    /// a poll this long sends its connection's next request stealable.
    pub heavy_poll: Duration,
    /// A route whose smoothed longest poll reaches this runs on the
    /// background pool (see [`HandlerPlacement::Background`]) when the
    /// pool has a free thread and either some shard is out of work or the
    /// pool has nothing else to run; otherwise (a saturated machine) it
    /// runs stealable. It comes back below half of the threshold. `None` keeps every route on the shards.
    /// Default 500 µs: a poll that long holds a shard's connections for
    /// half a millisecond, far more than a pool hop costs.
    pub background_poll: Option<Duration>,
    /// Routes tracked apart per shard (16 bytes each; rounded up to a
    /// power of two). A route keeps the slot it first took for the
    /// server's life, and no other route's requests change its average;
    /// a route whose two candidate slots (picked by a hash keyed per
    /// server, so clients cannot aim at a route's slots) are both held by
    /// others shares one overflow average with every such route. Made-up
    /// routes, such as a scanner's paths, can fill free slots but never
    /// take one a route holds. At most 65,536 (1 MiB per shard): a larger
    /// value is capped. The table exists only under
    /// [`HandlerPlacement::Adaptive`].
    pub max_routes: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            heavy_poll: Duration::from_micros(100),
            background_poll: Some(Duration::from_micros(500)),
            max_routes: 1024,
        }
    }
}
