//! Where a task runs: shard identifiers and placement policies.

use std::fmt;

/// Index of a shard (a worker thread with its own io_uring ring).
///
/// Shards are numbered `0..shard_count`.
///
/// ```
/// use spargio_rt::ShardId;
/// let s = ShardId::from(1);
/// assert_eq!(s.index(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub usize);

impl ShardId {
    /// The shard's position, `0..shard_count`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl From<usize> for ShardId {
    fn from(index: usize) -> Self {
        ShardId(index)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// How a spawned task is placed on shards.
///
/// | policy | where it starts | may it move? |
/// | --- | --- | --- |
/// | `Pinned(s)` | shard `s` | never |
/// | `RoundRobin` | the next shard in turn | never |
/// | `Sticky(key)` | `key % shard_count` | never |
/// | `Stealable` | the least loaded shard | yes, idle shards steal it |
/// | `StealablePreferred(s)` | shard `s` | yes, idle shards steal it |
///
/// Pinned placements (the first three) keep a task's I/O on one ring for its
/// whole life. Stealable tasks are spread by submission-time placement and by
/// execution-time stealing, so CPU-heavy work finds idle cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskPlacement {
    /// Run on this shard only.
    Pinned(ShardId),
    /// Pin to shards in turn: the first spawn goes to shard 0, the next to 1, ...
    RoundRobin,
    /// Pin to the shard chosen by `key % shard_count`: equal keys share a shard.
    Sticky(u64),
    /// Start on the least loaded shard; idle shards may steal it.
    Stealable,
    /// Start on this shard; idle shards may steal it.
    StealablePreferred(ShardId),
}
