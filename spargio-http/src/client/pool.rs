//! Idle keep-alive connections, kept per shard and per target.
//!
//! A connection is used by tasks of the shard it was made on only (its
//! reads and writes go through that shard's ring), so each shard has its
//! own idle lists behind its own lock, which only that shard takes.
//!
//! While a shard holds idle connections, a sweeper task on that shard
//! closes the ones that expire or that the server closed, so a client that
//! goes quiet does not keep its sockets (and the servers' connection
//! slots, or half-closed sockets) open until its next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use spargio_rt::{RuntimeHandle, ShardId};

use super::connect::Conn;
use super::target::Target;

/// The idle connections of one client.
pub(crate) struct Pool {
    /// One slot per shard, made when the first request runs (the client
    /// may be built outside the runtime).
    shards: OnceLock<Box<[Mutex<ShardPool>]>>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
}

#[derive(Default)]
struct ShardPool {
    /// Oldest first, so the most recently used connection (the least
    /// likely to have been closed by the server) is taken first.
    idle: HashMap<Target, Vec<Idle>>,
    /// A sweeper task runs for this shard.
    sweeping: bool,
}

/// The shortest wait between two sweeps (a very short idle timeout must
/// not make the sweeper spin).
const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The longest wait between two sweeps: connections the servers closed
/// (many close idle ones after a few seconds) are let go within this, not
/// kept half-closed until they expire.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A shard's sweeper: every `every`, closes the expired connections;
/// ends when the shard has no idle connection left or the client is gone.
async fn sweep_while_idle(mut guard: Sweeping, every: Duration) {
    loop {
        spargio_rt::time::sleep(every).await;
        let Some(pool) = guard.pool.upgrade() else {
            return;
        };
        if !pool.sweep(guard.shard) {
            guard.stopped_itself = true;
            return;
        }
    }
}

/// Owned by a sweeper task: if the task is dropped before it stops by
/// itself (aborted at runtime shutdown, or never run), the shard is marked
/// as having no sweeper, so the next checkin starts one again.
struct Sweeping {
    pool: Weak<Pool>,
    shard: usize,
    /// The sweeper found the shard empty and cleared the mark itself.
    stopped_itself: bool,
}

impl Drop for Sweeping {
    fn drop(&mut self) {
        if self.stopped_itself {
            return;
        }
        if let Some(mut shard) = self
            .pool
            .upgrade()
            .as_deref()
            .and_then(|p| p.lock(self.shard))
        {
            shard.sweeping = false;
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Pool {
    pub(crate) fn new(idle_timeout: Duration, max_idle_per_host: usize) -> Pool {
        Pool {
            shards: OnceLock::new(),
            idle_timeout,
            max_idle_per_host,
        }
    }

    /// `shard`'s idle lists; `None` for a shard past those the pool was
    /// sized for (a client shared with a later runtime that has more
    /// shards): its connections are not kept, since handing them to
    /// another shard would move their I/O off the ring they belong to.
    fn lock(&self, shard: usize) -> Option<MutexGuard<'_, ShardPool>> {
        let shards = self.shards.get_or_init(|| {
            let n = RuntimeHandle::try_current().map_or(1, |h| h.shard_count());
            (0..n.max(1)).map(|_| Mutex::default()).collect()
        });
        // Only a panic inside one of the short sections below could poison
        // it, and they leave the maps consistent.
        shards
            .get(shard)
            .map(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn expired(&self, idle: &Idle, now: Instant) -> bool {
        now.saturating_duration_since(idle.since) >= self.idle_timeout
    }

    /// Takes the most recently returned live connection to `target` on
    /// `shard`, dropping the expired ones and those the server closed (or
    /// sent unasked-for bytes on) while they were idle.
    pub(crate) fn checkout(&self, shard: usize, target: &Target) -> Option<Conn> {
        if self.max_idle_per_host == 0 {
            return None;
        }
        let now = Instant::now();
        let mut dead = Vec::new();
        let found = {
            let mut pool = self.lock(shard)?;
            let list = pool.idle.get_mut(target)?;
            let mut found = None;
            while let Some(mut idle) = list.pop() {
                if self.expired(&idle, now) {
                    // Everything older than an expired one is expired too.
                    dead.push(idle);
                    dead.append(list);
                    break;
                }
                if idle.conn.looks_usable() {
                    found = Some(idle.conn);
                    break;
                }
                dead.push(idle);
            }
            if list.is_empty() {
                pool.idle.remove(target);
            }
            found
        };
        // Closed outside the lock.
        drop(dead);
        found
    }

    /// Whether the pool keeps idle connections at all
    /// (`pool_max_idle_per_host` above 0): if not, a connection that could
    /// be reused is closed gracefully instead of handed in.
    pub(crate) fn keeps_idle(&self) -> bool {
        self.max_idle_per_host > 0
    }

    /// Keeps `conn` for the next request to `target` on `shard` (dropping
    /// the oldest idle one if the host has too many), and starts the
    /// shard's sweeper if it is not running.
    pub(crate) fn checkin(self: &Arc<Self>, shard: usize, target: &Target, conn: Conn) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let now = Instant::now();
        let mut dead = Vec::new();
        let start_sweeper = {
            let Some(mut pool) = self.lock(shard) else {
                return;
            };
            let idle = Idle { conn, since: now };
            match pool.idle.get_mut(target) {
                Some(list) => {
                    if list.len() >= self.max_idle_per_host {
                        dead.push(list.remove(0));
                    }
                    list.push(idle);
                }
                None => {
                    pool.idle.insert(target.clone(), vec![idle]);
                }
            }
            !std::mem::replace(&mut pool.sweeping, true)
        };
        drop(dead);
        if start_sweeper && !self.spawn_sweeper(shard) {
            // No runtime to run it on: expired connections to a target are
            // still dropped when a request to it checks out.
            if let Some(mut pool) = self.lock(shard) {
                pool.sweeping = false;
            }
        }
    }

    /// Starts the task that closes `shard`'s expired connections; `false`
    /// if there is no runtime to start it on.
    fn spawn_sweeper(self: &Arc<Self>, shard: usize) -> bool {
        let Some(handle) = RuntimeHandle::try_current() else {
            return false;
        };
        // The task holds the pool weakly: dropping the client ends it.
        let guard = Sweeping {
            pool: Arc::downgrade(self),
            shard,
            stopped_itself: false,
        };
        let every = (self.idle_timeout / 2).clamp(MIN_SWEEP_INTERVAL, MAX_SWEEP_INTERVAL);
        drop(
            handle.spawn_local_on(ShardId(shard % handle.shard_count().max(1)), move || {
                sweep_while_idle(guard, every)
            }),
        );
        true
    }

    /// Closes `shard`'s expired connections and those the server closed
    /// (or sent unasked-for bytes on); returns whether any idle connection
    /// is left (if not, the sweeper stops and says so).
    fn sweep(&self, shard: usize) -> bool {
        let now = Instant::now();
        let mut dead = Vec::new();
        let left = {
            let Some(mut pool) = self.lock(shard) else {
                return false;
            };
            pool.idle.retain(|_, list| {
                // Oldest first: the expired ones are a prefix.
                let live = list
                    .iter()
                    .position(|idle| !self.expired(idle, now))
                    .unwrap_or(list.len());
                dead.extend(list.drain(..live));
                // The socket alone is asked (one `poll(2)` each): a TLS
                // connection's `close_notify` shows as input there too.
                let mut i = 0;
                while i < list.len() {
                    if list[i].conn.probe.looks_alive() {
                        i += 1;
                    } else {
                        dead.push(list.remove(i));
                    }
                }
                !list.is_empty()
            });
            let left = !pool.idle.is_empty();
            if !left {
                pool.sweeping = false;
            }
            left
        };
        // Closed outside the lock.
        drop(dead);
        left
    }

    /// How many idle connections `shard` holds (for tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self, shard: usize) -> usize {
        self.lock(shard)
            .map_or(0, |pool| pool.idle.values().map(Vec::len).sum())
    }
}
