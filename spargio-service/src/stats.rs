//! Per-server counters and the snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_utils::CachePadded;

use crate::error::HandlerError;
use crate::shutdown::ShutdownReport;

/// A relaxed event counter.
#[derive(Default, Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter that every shard bumps on every request: one slot per shard,
/// each on its own cache line, summed when read.
///
/// A server's counters (`exclusive`) have one writer per slot, the thread
/// of its shard: updates are a plain load and store (no locked
/// read-modify-write on the request path), which would lose counts if two
/// threads wrote one slot, though never memory safety. Callers hold
/// something `!Send` made on the shard they name (`Tracked` holds an
/// `Rc`), which keeps them on that shard's thread. Counters shared by
/// connections served on any shards ([`ServeConnection`](crate::ServeConnection)
/// clones, whose runtime is not known when the counters are made) use
/// atomic read-modify-writes instead.
#[derive(Debug)]
pub(crate) struct ShardedCounter {
    slots: Box<[CachePadded<AtomicU64>]>,
    exclusive: bool,
}

impl ShardedCounter {
    /// One slot per shard, each written only by its shard's thread.
    pub(crate) fn new(shards: usize) -> ShardedCounter {
        ShardedCounter {
            slots: (0..shards.max(1))
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            exclusive: true,
        }
    }

    /// One slot that any thread may write.
    pub(crate) fn shared() -> ShardedCounter {
        ShardedCounter {
            exclusive: false,
            ..ShardedCounter::new(1)
        }
    }

    fn slot(&self, shard: usize) -> &AtomicU64 {
        // `shard` is a shard of the runtime, so in range: the request
        // path pays no division. Out of range wraps.
        match self.slots.get(shard) {
            Some(slot) => slot,
            None => &self.slots[shard % self.slots.len()],
        }
    }

    /// Adds `n` on `shard`'s slot; only `shard`'s thread may call this
    /// (any thread, if the counter is shared).
    pub(crate) fn add(&self, shard: usize, n: u64) {
        let slot = self.slot(shard);
        if self.exclusive {
            slot.store(
                slot.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            slot.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Takes `n` off `shard`'s slot; only `shard`'s thread may call this
    /// (any thread, if the counter is shared).
    pub(crate) fn sub(&self, shard: usize, n: u64) {
        let slot = self.slot(shard);
        if self.exclusive {
            slot.store(
                slot.load(Ordering::Relaxed).wrapping_sub(n),
                Ordering::Relaxed,
            );
        } else {
            slot.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// The sum over all slots.
    pub(crate) fn get(&self) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed)))
    }
}

/// The live counters behind [`ServerStats`].
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) accepted: Counter,
    pub(crate) active: Counter,
    pub(crate) per_shard_active: Vec<Counter>,
    pub(crate) per_shard_accepted: Vec<Counter>,
    pub(crate) requests: ShardedCounter,
    pub(crate) in_flight: ShardedCounter,
    pub(crate) awaiting_ready: ShardedCounter,
    pub(crate) requests_failed: Counter,
    pub(crate) panics: Counter,
    pub(crate) protocol_panics: Counter,
    pub(crate) request_timeouts: Counter,
    pub(crate) idle_timeouts: Counter,
    pub(crate) send_timeouts: Counter,
    pub(crate) bad_requests: Counter,
    pub(crate) handlers_stealable: Counter,
    pub(crate) handler_steals: Counter,
    pub(crate) handlers_background: Counter,
    pub(crate) accept_errors: Counter,
    pub(crate) accept_backoffs: Counter,
    pub(crate) accept_pauses: Counter,
    pub(crate) make_errors: Counter,
    pub(crate) proxy_headers: Counter,
    pub(crate) proxy_refused: Counter,
    /// How the shutdown went, once it has finished.
    pub(crate) shutdown: OnceLock<ShutdownReport>,
}

impl Counters {
    /// A server's counters, for a runtime of `shards` shards.
    pub(crate) fn new(shards: usize) -> Arc<Counters> {
        Arc::new(Counters::with_slots(
            shards,
            ShardedCounter::new(shards),
            ShardedCounter::new(shards),
            ShardedCounter::new(shards),
        ))
    }

    /// Counters that connections on any shards of any runtime may share
    /// (a [`ServeConnection`](crate::ServeConnection) and its clones).
    pub(crate) fn shared() -> Arc<Counters> {
        Arc::new(Counters::with_slots(
            1,
            ShardedCounter::shared(),
            ShardedCounter::shared(),
            ShardedCounter::shared(),
        ))
    }

    fn with_slots(
        shards: usize,
        requests: ShardedCounter,
        in_flight: ShardedCounter,
        awaiting_ready: ShardedCounter,
    ) -> Counters {
        Counters {
            accepted: Counter::default(),
            active: Counter::default(),
            per_shard_active: (0..shards).map(|_| Counter::default()).collect(),
            per_shard_accepted: (0..shards).map(|_| Counter::default()).collect(),
            requests,
            in_flight,
            awaiting_ready,
            requests_failed: Counter::default(),
            panics: Counter::default(),
            protocol_panics: Counter::default(),
            request_timeouts: Counter::default(),
            idle_timeouts: Counter::default(),
            send_timeouts: Counter::default(),
            bad_requests: Counter::default(),
            handlers_stealable: Counter::default(),
            handler_steals: Counter::default(),
            handlers_background: Counter::default(),
            accept_errors: Counter::default(),
            accept_backoffs: Counter::default(),
            accept_pauses: Counter::default(),
            make_errors: Counter::default(),
            proxy_headers: Counter::default(),
            proxy_refused: Counter::default(),
            shutdown: OnceLock::new(),
        }
    }

    /// Counts a failed request: in `requests_failed`, and in `panics` or
    /// `request_timeouts` when it was one of those.
    pub(crate) fn count_failure(&self, e: &HandlerError) {
        self.requests_failed.add(1);
        match e {
            HandlerError::Panicked(_) => self.panics.add(1),
            HandlerError::TimedOut => self.request_timeouts.add(1),
            _ => {}
        }
    }

    /// Counts a request that failed before the service was called (its
    /// `poll_ready` failed or panicked, or the protocol's routing of it
    /// panicked): as a request, on `shard`'s slot, and as a failure. Only
    /// `shard`'s thread may call this (see [`ShardedCounter::add`]).
    pub(crate) fn count_refused(&self, shard: usize, e: &HandlerError) {
        self.requests.add(shard, 1);
        self.count_failure(e);
    }

    /// Counts a request answered without being processed (pipelined
    /// behind one the service could not take, or at a graceful shutdown):
    /// as a request on `shard`'s slot and as a failure, but not as the
    /// panic or timeout that refused the one before it. Only `shard`'s
    /// thread may call this.
    pub(crate) fn count_unprocessed(&self, shard: usize) {
        self.requests.add(shard, 1);
        self.requests_failed.add(1);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        ServerStats {
            accepted: self.accepted.get(),
            active: self.active.get(),
            active_per_shard: self.per_shard_active.iter().map(Counter::get).collect(),
            accepted_per_shard: self.per_shard_accepted.iter().map(Counter::get).collect(),
            requests: self.requests.get(),
            requests_in_flight: self.in_flight.get(),
            requests_awaiting_ready: self.awaiting_ready.get(),
            requests_failed: self.requests_failed.get(),
            panics: self.panics.get(),
            protocol_panics: self.protocol_panics.get(),
            request_timeouts: self.request_timeouts.get(),
            idle_timeouts: self.idle_timeouts.get(),
            send_timeouts: self.send_timeouts.get(),
            bad_requests: self.bad_requests.get(),
            handlers_stealable: self.handlers_stealable.get(),
            handler_steals: self.handler_steals.get(),
            handlers_background: self.handlers_background.get(),
            accept_errors: self.accept_errors.get(),
            accept_backoffs: self.accept_backoffs.get(),
            accept_pauses: self.accept_pauses.get(),
            make_errors: self.make_errors.get(),
            proxy_headers: self.proxy_headers.get(),
            proxy_refused: self.proxy_refused.get(),
            shutdown: self.shutdown.get().copied(),
        }
    }
}

/// A snapshot of a server's counters ([`StatsHandle::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections open now, per session shard.
    pub active_per_shard: Vec<u64>,
    /// Connections accepted since start, per session shard.
    pub accepted_per_shard: Vec<u64>,
    /// Requests handed to the service, and requests that failed on their
    /// way to it (a `poll_ready` that failed or panicked while the request
    /// waited, a panic in the protocol's routing of it).
    pub requests: u64,
    /// Requests handed to the service and not answered yet.
    pub requests_in_flight: u64,
    /// Requests that have arrived and wait for the service to be ready
    /// (its `poll_ready` is pending: a concurrency limit, a rate limit, a
    /// full queue); not counted in `requests` until they are handed over.
    pub requests_awaiting_ready: u64,
    /// Of those, requests that ended in an error, panic or timeout (the
    /// ones that failed on their way to the service included).
    pub requests_failed: u64,
    /// Panics contained to their request: in the service's `call` or its
    /// future, in its `poll_ready`, or in the protocol's routing function.
    pub panics: u64,
    /// Connections closed because serving them panicked outside any one
    /// request's handler: in the protocol itself, or in a response body it
    /// was sending. The panic ends that connection only.
    pub protocol_panics: u64,
    /// Requests dropped by the request timeout.
    pub request_timeouts: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed because the peer took no data for the send
    /// timeout.
    pub send_timeouts: u64,
    /// Requests the protocol rejected as malformed.
    pub bad_requests: u64,
    /// Handler futures spawned stealable (Stealable, or Adaptive's heavy routes).
    pub handlers_stealable: u64,
    /// Of those, handlers that ran on a shard other than their connection's.
    pub handler_steals: u64,
    /// Handler futures spawned on the runtime's background pool
    /// (Background, or Adaptive's very heavy routes).
    pub handlers_background: u64,
    /// Failed accepts (any error).
    pub accept_errors: u64,
    /// Times accepting backed off (slept before the next try): after running
    /// out of file descriptors or kernel memory (`EMFILE`, `ENFILE`,
    /// `ENOBUFS`, `ENOMEM`), or after eight failed accepts in a row of any
    /// other kind.
    pub accept_backoffs: u64,
    /// Times accepting paused at `max_connections`.
    pub accept_pauses: u64,
    /// Connections closed because the make-service failed (or panicked)
    /// building their service, or `serve_local`'s factory panicked
    /// building its shard's service (or a clone of the make-service, or of
    /// the protocol, panicked while the connection was handed to its
    /// shard).
    pub make_errors: u64,
    /// Connections that started with a PROXY protocol header the server
    /// read ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)).
    pub proxy_headers: u64,
    /// Connections closed because their PROXY header was malformed,
    /// missing (required), cut short or too slow to arrive.
    pub proxy_refused: u64,
    /// How the graceful shutdown went (the report `serve` also returns),
    /// once it has finished; `None` while the server runs.
    pub shutdown: Option<ShutdownReport>,
}

/// A cheap, cloneable view of a server's live counters.
#[derive(Clone, Debug)]
pub struct StatsHandle(pub(crate) Arc<Counters>);

impl StatsHandle {
    /// Reads the counters now.
    pub fn snapshot(&self) -> ServerStats {
        self.0.snapshot()
    }
}
