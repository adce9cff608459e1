//! Shards: one thread and one io_uring ring each.

pub(crate) mod completions;
pub(crate) mod inbox;
pub(crate) mod inline;
pub(crate) mod lifo;
pub(crate) mod local;
pub(crate) mod ops;
pub(crate) mod park;
pub(crate) mod poll_cost;
pub(crate) mod ring;
pub(crate) mod ring_fd;
pub(crate) mod shared;
pub(crate) mod spin;
pub(crate) mod steal;
pub(crate) mod worker;
