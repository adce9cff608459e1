//! Parking and waking shards: the protocol.
//!
//! A shard with nothing to do blocks in `io_uring_enter` until a CQE arrives
//! or its nearest timer is due. Anyone who hands it work must make sure it
//! wakes up, without waking it needlessly and without losing a wake-up.
//!
//! ```text
//!   shard S (parking)                       waker W (hands S work)
//!   ------------------                      ----------------------
//!   1. sleeping := true          (SeqCst)   a. push task to S's queue
//!   2. fence(SeqCst)                        b. fence(SeqCst)
//!   3. look at every queue                  c. if sleeping.swap(false):
//!      work? -> sleeping := false, run            ring S's doorbell
//!   4. io_uring_enter(wait 1 CQE, timeout)
//!   5. sleeping := false
//! ```
//!
//! - No lost wake-up: 1-2 and a-b are a store-fence-load pair on each side
//!   (Dekker). Either S's look in step 3 sees W's task, or W's load in step c
//!   sees `sleeping == true`. In the second case W rings the doorbell, whose
//!   CQE stays in S's completion queue, so S's enter in step 4 returns at
//!   once even if the doorbell landed before S got there.
//! - No herd: only the waker whose `swap` turned `true` into `false` rings;
//!   every other waker sees `false` and does nothing. A shard that is running
//!   (not parking) gets no doorbell at all: it looks at its queues every turn.
//! - The doorbell is a `MSG_RING` CQE sent from the waker's own ring when the
//!   waker runs on a shard of the same runtime (rung from inside a task's
//!   poll it goes out at once, with an enter of its own; rung between polls
//!   it goes out with that shard's next submit, before the next poll), and
//!   an eventfd write
//!   otherwise (threads outside the runtime have no ring). The shard keeps an
//!   eventfd read armed on its ring, so both arrive as CQEs.
//! - A spurious doorbell (S found work in step 3 after W swapped) costs one
//!   extra loop turn, never a missed one.
//!
//! Idle shards that should steal: when stealable work is queued behind a
//! busy shard, [`notify_idle`] wakes at most one parked shard, and only if
//! no shard is already out searching, so a burst of spawns wakes one helper,
//! not all of them. The woken shard counts itself as searching until its
//! first look for work is over.
//!
//! `tests/park_protocol.rs` checks the protocol exhaustively over the
//! interleavings of a small model, and `tests/wakeups.rs` sends a million
//! cross-shard wake-ups and checks that none is lost.

use std::sync::atomic::{fence, Ordering};

use crate::scheduler::Inner;

/// Wakes shard `target` if it is parked or parking; returns whether a
/// doorbell was sent. Call it after making work visible to `target`.
pub(crate) fn wake(inner: &Inner, target: usize) -> bool {
    fence(Ordering::SeqCst);
    let shard = &inner.shards[target];
    if shard.sleeping.load(Ordering::Relaxed) && shard.sleeping.swap(false, Ordering::SeqCst) {
        ring_doorbell(inner, target);
        true
    } else {
        false
    }
}

/// Wakes one parked shard to steal, unless one is already searching.
///
/// `backlog` is how many stealable tasks wait where the work was queued.
/// With a single one, a shard that is asleep on a steal re-check timer
/// counts as searching (it will look again by itself soon), so a task that
/// spawns a task that spawns a task... does not ring a doorbell per spawn.
/// Two or more qualify for stealing at once and always wake a helper.
pub(crate) fn notify_idle(inner: &Inner, backlog: usize) {
    if inner.shards.len() < 2 || !inner.steal.enabled {
        return;
    }
    fence(Ordering::SeqCst);
    if inner.searching.load(Ordering::SeqCst) != 0 {
        return;
    }
    if backlog < 2
        && inner
            .shards
            .iter()
            .any(|s| s.rechecking.load(Ordering::Relaxed) && s.sleeping.load(Ordering::Relaxed))
    {
        return;
    }
    let start = inner.next_search_start();
    let n = inner.shards.len();
    for i in 0..n {
        let idx = (start + i) % n;
        let shard = &inner.shards[idx];
        if shard.sleeping.load(Ordering::Relaxed) && shard.sleeping.swap(false, Ordering::SeqCst) {
            send_to_search(inner, idx);
            ring_doorbell(inner, idx);
            return;
        }
    }
}

/// Counts shard `idx` as searching until its next loop turn, which takes
/// its `woken_to_search` flag and gives the count back once.
///
/// One count per raised flag: two notifiers can both get here for one
/// turn of the shard (the first woke it from one sleep and was preempted
/// before counting; the shard slept again and the second woke it too), and
/// the second count would never be given back, leaving `searching` above
/// zero and every later `notify_idle` silent. The notifier that finds the
/// flag already raised takes its own count back.
fn send_to_search(inner: &Inner, idx: usize) {
    inner.searching.fetch_add(1, Ordering::SeqCst);
    if inner.shards[idx]
        .woken_to_search
        .swap(true, Ordering::SeqCst)
    {
        inner.searching.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The shard side of [`send_to_search`], once per loop turn: whether shard
/// `idx` was woken to search; if so its count is given back.
pub(crate) fn end_search(inner: &Inner, idx: usize) -> bool {
    let woken = inner.shards[idx]
        .woken_to_search
        .swap(false, Ordering::SeqCst);
    if woken {
        inner.searching.fetch_sub(1, Ordering::SeqCst);
    }
    woken
}

/// Sends the doorbell: `MSG_RING` from the current shard's ring, or the
/// target's eventfd from anywhere else.
fn ring_doorbell(inner: &Inner, target: usize) {
    let shard = &inner.shards[target];
    shard.counters.doorbells_sent.bump();
    if !crate::shard::local::queue_doorbell(inner, target) {
        shard.ring_eventfd();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::RuntimeBuilder;
    use std::sync::Arc;

    #[test]
    fn two_notifiers_for_one_turn_leave_no_searcher_counted() {
        let inner = Arc::new(Inner::new(&RuntimeBuilder::new(), 2).expect("shard state"));
        // Both notifiers found shard 1 asleep (it slept again between the
        // two) before its loop turn ran.
        send_to_search(&inner, 1);
        send_to_search(&inner, 1);
        assert!(end_search(&inner, 1));
        assert_eq!(
            inner.searching.load(Ordering::SeqCst),
            0,
            "a searcher was counted that no turn gives back"
        );

        // Later wake-ups still reach a sleeping shard.
        inner.shards[1].sleeping.store(true, Ordering::SeqCst);
        notify_idle(&inner, 2);
        assert!(!inner.shards[1].sleeping.load(Ordering::SeqCst));
        assert_eq!(inner.searching.load(Ordering::SeqCst), 1);
    }
}
