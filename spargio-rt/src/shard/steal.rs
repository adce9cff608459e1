//! Stealing: which busy shard to rob, when, and how much.
//!
//! A shard looks at another shard's stealable queue (its deque, its
//! injector and its LIFO slot) only when that shard is inside a task poll
//! (busy). Two or more queued tasks are taken at once (up
//! to half the queue, at most `StealPolicy::batch`); a single queued task is
//! taken only once the victim has been inside one poll for
//! `StealPolicy::min_victim_busy`, so a shard about to finish its poll keeps
//! its task, and its ring.

use std::time::Instant;

use crossbeam_deque::Steal;

use super::local::LocalShard;
use super::shared::ShardShared;

/// What a look at another shard's stealable queue found.
#[derive(PartialEq, Eq)]
pub(super) enum Victim {
    /// Nothing to take.
    Nothing,
    /// Work is queued, but the shard is moving along; look again later.
    NotYet,
    /// Take it.
    Ready,
}

impl LocalShard {
    /// Tries to take stealable work from busy shards. Returns whether any
    /// task was taken (it is then in the own deque).
    pub(crate) fn steal(&self) -> bool {
        let inner = &self.inner;
        let n = inner.shards.len();
        if n < 2 || !inner.steal.enabled {
            return false;
        }
        let counters = &self.shared().counters;
        let start = self.tick.get() as usize;
        for i in 0..n {
            let victim = &inner.shards[(start + i) % n];
            if victim.index == self.index {
                continue;
            }
            match self.look_at(victim) {
                Victim::Nothing => continue,
                Victim::NotYet => {
                    self.declined.set(true);
                    continue;
                }
                Victim::Ready => {}
            }
            counters.steal_attempts.bump();
            let before = self.worker.len();
            let mut got = false;
            if let Some(stealer) = victim.stealer.get() {
                got =
                    steal_into(|| stealer.steal_batch_with_limit(&self.worker, inner.steal.batch));
            }
            if !got {
                got = crate::queue::steal_batch(&victim.injector, |q| {
                    q.steal_batch_with_limit(&self.worker, inner.steal.batch)
                })
                .is_success();
            }
            if !got {
                // Last, the task the victim's current poll woke: it waits
                // for that poll to end, which is taking long.
                if let Some(t) = victim.lifo.take() {
                    self.worker.push(t);
                    got = true;
                }
            }
            if got {
                let moved = self.worker.len().saturating_sub(before).max(1);
                counters.stolen.add(moved as u64);
                return true;
            }
        }
        false
    }

    /// Whether shard `v` has stealable work we should take now. Only busy
    /// shards are robbed: a shard between polls is about to run its own
    /// queue, and taking its task would only move it away from its ring, so
    /// it gets a second look instead.
    pub(super) fn look_at(&self, v: &ShardShared) -> Victim {
        let queued = v.stealable_waiting();
        if queued == 0 {
            return Victim::Nothing;
        }
        if !v.polling.load(std::sync::atomic::Ordering::Relaxed) {
            // Between two polls: the shard is about to run its queue, but
            // only one task at a time. Look again later; if it is then
            // stuck in a long poll with work still queued, take it.
            return Victim::NotYet;
        }
        if queued >= 2 {
            return Victim::Ready;
        }
        let polls = v.counters.tasks_polled.get();
        let mut seen = self.seen_polls.borrow_mut();
        let (seen_polls, since) = &mut seen[v.index];
        if *seen_polls != polls {
            *seen_polls = polls;
            *since = Instant::now();
            return Victim::NotYet;
        }
        if since.elapsed() >= self.inner.steal.min_victim_busy {
            Victim::Ready
        } else {
            Victim::NotYet
        }
    }

    /// Whether the last looks declined a steal (and clears the flag).
    pub(crate) fn take_declined(&self) -> bool {
        self.declined.replace(false)
    }
}

/// Retries a steal until it is decided; true when something moved.
fn steal_into(mut f: impl FnMut() -> Steal<()>) -> bool {
    loop {
        match f() {
            Steal::Success(()) => return true,
            Steal::Empty => return false,
            Steal::Retry => continue,
        }
    }
}
