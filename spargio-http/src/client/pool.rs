//! Idle keep-alive connections, kept per shard and per target.
//!
//! A connection is used by tasks of the shard it was made on only (its
//! reads and writes go through that shard's ring), so each shard has its
//! own idle lists behind its own lock, which only that shard takes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use spargio_rt::RuntimeHandle;

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
    last_sweep: Option<Instant>,
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

    fn lock(&self, shard: usize) -> MutexGuard<'_, ShardPool> {
        let shards = self.shards.get_or_init(|| {
            let n = RuntimeHandle::try_current().map_or(1, |h| h.shard_count());
            (0..n.max(1)).map(|_| Mutex::default()).collect()
        });
        // Only a panic inside one of the short sections below could poison
        // it, and they leave the maps consistent.
        shards[shard % shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self, idle: &Idle, now: Instant) -> bool {
        now.saturating_duration_since(idle.since) >= self.idle_timeout
    }

    /// Takes the most recently returned live connection to `target` on
    /// `shard`, dropping the expired ones and those the server closed (or,
    /// plain TCP, sent unasked-for bytes on) while they were idle.
    pub(crate) fn checkout(&self, shard: usize, target: &Target) -> Option<Conn> {
        if self.max_idle_per_host == 0 {
            return None;
        }
        let now = Instant::now();
        let mut dead = Vec::new();
        let found = {
            let mut pool = self.lock(shard);
            let list = pool.idle.get_mut(target)?;
            let mut found = None;
            while let Some(idle) = list.pop() {
                if self.expired(&idle, now) {
                    // Everything older than an expired one is expired too.
                    dead.push(idle);
                    dead.append(list);
                    break;
                }
                if idle.conn.probe.looks_alive() {
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

    /// Keeps `conn` for the next request to `target` on `shard` (dropping
    /// the oldest idle one if the host has too many).
    pub(crate) fn checkin(&self, shard: usize, target: &Target, conn: Conn) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let now = Instant::now();
        let mut dead = Vec::new();
        {
            let mut pool = self.lock(shard);
            let due = pool
                .last_sweep
                .is_none_or(|at| now.saturating_duration_since(at) >= self.idle_timeout / 2);
            if due {
                pool.last_sweep = Some(now);
                pool.idle.retain(|_, list| {
                    let live = list
                        .iter()
                        .position(|idle| !self.expired(idle, now))
                        .unwrap_or(list.len());
                    dead.extend(list.drain(..live));
                    !list.is_empty()
                });
            }
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
        }
        drop(dead);
    }

    /// How many idle connections `shard` holds (for tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self, shard: usize) -> usize {
        self.lock(shard).idle.values().map(Vec::len).sum()
    }
}
