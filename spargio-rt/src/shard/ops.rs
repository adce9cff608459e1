//! The shard's side of the op machinery (see `driver`): registering and
//! submitting ops, spilling SQEs that do not fit, dispatching CQEs,
//! cancelling, and retiring every op at exit.

use std::io;
use std::sync::Arc;
use std::task::Waker;

use io_uring::{opcode, squeue::Entry};

use super::local::LocalShard;
use crate::driver::cell::Completion;
use crate::driver::remote::RemoteReq;
use crate::driver::table::Found;
use crate::driver::user_data::UD_IGNORE;
use crate::driver::Cqe;

impl LocalShard {
    /// Queues `e` for submission; an SQE that does not fit goes to the spill
    /// queue (in order) instead of failing or blocking.
    pub(crate) fn push_sqe(&self, e: Entry) {
        let mut spill = self.spill.borrow_mut();
        if !spill.is_empty() {
            self.shared().counters.sq_spills.bump();
            spill.push_back(e);
            return;
        }
        let Ok(mut ring) = self.ring.try_borrow_mut() else {
            self.shared().counters.sq_spills.bump();
            spill.push_back(e);
            return;
        };
        // Every SQE queued here points only at memory that outlives its
        // CQE: an op's SQE into its `OpCell`/`MultiCell`, which the shard's
        // table keeps alive until the op's final CQE is reaped (see
        // `driver`); the eventfd read into the shard's heap cell, retired by
        // `quiesce` before it is freed; doorbells and cancels at nothing.
        // SAFETY: the entry's memory outlives its CQE, as said above.
        if unsafe { ring.submission().push(&e) }.is_ok() {
            return;
        }
        // Full: submit what is there (no wait) and try once more.
        self.shared().counters.ring_enters.bump();
        let _ = self.ring_fd.enter(&ring, 0, false, None);
        // SAFETY: as above.
        if unsafe { ring.submission().push(&e) }.is_err() {
            self.shared().counters.sq_spills.bump();
            spill.push_back(e);
        }
    }

    /// Moves spilled SQEs into the SQ while there is room.
    pub(crate) fn flush_spill(&self) {
        let mut spill = self.spill.borrow_mut();
        if spill.is_empty() {
            return;
        }
        let mut ring = self.ring.borrow_mut();
        let mut sq = ring.submission();
        while let Some(e) = spill.front() {
            // SAFETY: as in `push_sqe`; spilled entries obey the same rule.
            if unsafe { sq.push(e) }.is_err() {
                break;
            }
            spill.pop_front();
        }
    }

    /// Registers `op` in the table and queues its SQE. `Ok(None)` when the
    /// table is full (`waker` is woken when a slot frees). An error when
    /// the SQE of a `native` op sets a flag `driver::flags` refuses: the op
    /// is then registered nowhere and nothing is queued.
    pub(crate) fn submit_op(
        &self,
        op: Arc<dyn Completion>,
        entry: impl FnOnce() -> Entry,
        native: bool,
        waker: &Waker,
    ) -> io::Result<Option<()>> {
        let Some(ud) = self.ops.borrow_mut().insert(op.clone(), waker) else {
            return Ok(None);
        };
        op.set_tag(ud);
        // Building the entry may run user code (`uring::submit`'s builder,
        // a multishot op's `entry`): should it panic, or its SQE be
        // refused, the slot goes back instead of staying taken by an op
        // the kernel never saw.
        let release = ReleaseOnUnwind { shard: self, ud };
        let e = entry();
        if native {
            if let Err(err) = crate::driver::check_native(&e) {
                drop(release);
                op.set_tag(0);
                return Err(err);
            }
        }
        std::mem::forget(release);
        self.push_sqe(e.user_data(ud));
        self.shared().counters.ops_submitted.bump();
        Ok(Some(()))
    }

    /// Queues an `ASYNC_CANCEL` for the op tagged `ud` (0: not registered).
    pub(crate) fn cancel_op(&self, ud: u64) {
        if ud == 0 {
            return;
        }
        self.shared().counters.ops_cancelled.bump();
        self.push_sqe(opcode::AsyncCancel::new(ud).build().user_data(UD_IGNORE));
        self.settle_cancel();
    }

    /// Submits a cancel at once and lets the kernel finish it
    /// (`GETEVENTS`, no wait) before anything else is queued.
    ///
    /// A cancelled poll-driven op (accept, recv) leaves its wait-queue
    /// entry on the file until the cancel's task work runs; with
    /// `DEFER_TASKRUN` that work waits for the next `GETEVENTS` enter. An
    /// accept armed on the same listener in the meantime can lose the
    /// listener's exclusive wake-up to the dying entry and never complete.
    /// Running the task work right away closes that window.
    fn settle_cancel(&self) {
        let Ok(ring) = self.ring.try_borrow_mut() else {
            return; // queued in the spill; it goes with the next enter
        };
        self.shared().counters.ring_enters.bump();
        let _ = self.ring_fd.enter(&ring, 0, true, None);
    }

    /// Handles requests other threads queued for this shard's ring.
    pub(crate) fn drain_remote(&self) {
        let shared = self.shared();
        while let Some(req) = shared.pop_remote() {
            match req {
                RemoteReq::Submit(e, op) => {
                    let ud = self.ops.borrow_mut().insert_unbounded(op.clone(), true);
                    op.set_tag(ud);
                    self.push_sqe(e.user_data(ud));
                    shared.counters.ops_submitted.bump();
                }
                RemoteReq::Cancel(tag, op) => {
                    let ud = if tag != 0 { tag } else { op.tag() };
                    // Only if the tag still names this op on this ring (it
                    // may have ended, and been re-armed elsewhere).
                    if self.ops.borrow().holds(ud, &op) {
                        self.cancel_op(ud);
                    }
                }
                RemoteReq::Run(f) => f(self),
            }
        }
    }

    /// Delivers one CQE to its op, if it belongs to one.
    pub(crate) fn dispatch_op(&self, ud: u64, cqe: Cqe) {
        let found = self.ops.borrow_mut().lookup(ud, cqe);
        match found {
            Some(Found { op, last, remote }) => {
                if last {
                    self.shared().counters.ops_completed.bump();
                }
                // The op first: the wake-ups below (a remote slot's
                // release, the table's free slots) run other tasks'
                // wakers, and one that panicked must not take this
                // completion with it.
                let remote_slot = (last && remote).then(|| ReleaseRemoteSlot(self));
                op.complete(cqe);
                // Given back even if `complete` unwound (a waker panicked
                // in an inline reap, which the shard survives).
                drop(remote_slot);
                if last {
                    let woken = self.ops.borrow_mut().hand_out_free_slots();
                    woken.wake();
                }
            }
            None if ud != UD_IGNORE => self.shared().counters.stale_cqes.bump(),
            None => {}
        }
    }

    /// Counts CQ overflows: a reap that finds the kernel holding CQEs back
    /// because the CQ was full (they reach the CQ with a later enter), and
    /// CQEs the kernel had to drop (its count of them grew; see
    /// `ring::Entered::CqesLost`). Returns how many were newly dropped.
    pub(crate) fn note_cq_overflow(&self) -> u32 {
        let mut ring = self.ring.borrow_mut();
        let backlog = ring.submission().cq_overflow();
        let dropped = ring.completion().overflow();
        drop(ring);
        let seen = self.cq_overflow_seen.replace(dropped);
        let counters = &self.shared().counters;
        if backlog {
            counters.cq_overflows.bump();
        }
        let lost = dropped.wrapping_sub(seen);
        if lost != 0 {
            counters.cqes_lost.add(u64::from(lost));
        }
        lost
    }

    /// An enter reported `EBADR`: the kernel dropped CQEs. Counts them from
    /// its count of dropped CQEs (at least one, whatever that says).
    pub(crate) fn note_cqes_lost(&self) {
        if self.note_cq_overflow() == 0 {
            self.shared().counters.cqes_lost.bump();
        }
        crate::warn::warn_stderr!(
            "spargio: shard {} lost CQEs: the kernel found no memory to queue them \
             (io_uring_enter: EBADR); ops whose completion was lost never finish",
            self.index
        );
    }

    /// Shard exit: refuses new remote requests, cancels every op still in
    /// flight and reaps until the table is empty, so no buffer is freed
    /// while the kernel may still write it. Ops whose CQE never comes are
    /// leaked, not freed.
    pub(crate) fn retire_ops(&self) {
        self.shared().close_remote();
        self.drain_remote();
        self.ops.borrow_mut().wake_waiting();
        // Submitters outside the runtime waiting for a slot retry, and learn
        // that the shard is gone.
        self.inner.remote_slots.wake_all();
        let mut cancelled = false;
        for _ in 0..2000 {
            self.flush_spill();
            if self.ops.borrow().live() == 0 && self.spill.borrow().is_empty() {
                return;
            }
            if !cancelled {
                for ud in self.ops.borrow().live_tags() {
                    self.cancel_op(ud);
                }
                cancelled = true;
            }
            self.submit(true, Some(std::time::Duration::from_millis(5)));
            self.reap();
        }
        crate::warn::warn_stderr!(
            "spargio: shard {} exits with {} io_uring ops the kernel never completed; \
             their buffers are leaked",
            self.index,
            self.ops.borrow().live()
        );
        self.ops.borrow_mut().leak_all();
    }
}

/// Frees an op's table slot if dropped, which happens only while unwinding
/// out of building its entry, or when the entry is refused (see
/// `submit_op`).
struct ReleaseOnUnwind<'a> {
    shard: &'a LocalShard,
    ud: u64,
}

impl Drop for ReleaseOnUnwind<'_> {
    fn drop(&mut self) {
        let woken = match self.shard.ops.try_borrow_mut() {
            Ok(mut ops) => ops.release_unsubmitted(self.ud),
            Err(_) => return,
        };
        woken.wake();
    }
}

/// Gives one of the runtime's `RemoteSlots` back when dropped: the slot of
/// an op from outside the runtime that has had its last CQE.
struct ReleaseRemoteSlot<'a>(&'a LocalShard);

impl Drop for ReleaseRemoteSlot<'_> {
    fn drop(&mut self) {
        self.0.inner.remote_slots.release();
    }
}
