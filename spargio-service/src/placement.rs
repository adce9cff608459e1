//! Where a request's handler future runs relative to its connection.

use std::time::Duration;

/// Where the service's response futures run.
///
/// The connection's own task (its reads and writes) always stays on its
/// session shard; this picks where the *handler* runs. Whatever the
/// placement, a handler poll that computes for long holds the shard it
/// runs on, and with it that shard's connections: a handler with
/// milliseconds of work should `spargio_rt::yield_now().await` between
/// slices of it, so the shard serves its connections in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HandlerPlacement {
    /// Polled on the connection's task: no hop, lowest latency for cheap
    /// handlers; a CPU-heavy handler holds up the shard's other connections.
    Inline,
    /// Spawned as a stealable task: an idle shard can take it while the
    /// connection stays pinned. Costs a spawn and a wake-up per request.
    #[default]
    Stealable,
    /// Starts inline and measures each route's poll times; a route whose
    /// polls run long (see [`AdaptiveConfig`]) moves to stealable, and
    /// moves back when its polls get short again. Each shard learns a
    /// route from its own connections' requests (no state is shared
    /// between shards on the request path). For requests the
    /// protocol gives no route ([`RouteKey::DEFAULT`](crate::RouteKey::DEFAULT)),
    /// a connection whose last request had a poll of `heavy_poll` or more
    /// also sends its next request stealable: a connection that turns hot
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
    /// Routes tracked at once per shard (8 bytes each); requests of further
    /// routes share one slot.
    pub max_routes: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            heavy_poll: Duration::from_micros(100),
            max_routes: 1024,
        }
    }
}
