//! The state a single-shot op shares between its future and the driver.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

use std::task::Waker;

use futures_util::task::AtomicWaker;
use io_uring::squeue::Entry;

use super::Cqe;

/// Which way an op moves data through its fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Direction {
    /// Neither (or both): opens, timeouts, accepts, waits.
    Other = 0,
    /// Into a buffer: reads and receives.
    In = 1,
    /// Out of a buffer: writes and sends.
    Out = 2,
}

/// What an op owns while it is in flight: its buffers, its fd, any address
/// or option storage the SQE points into.
pub(crate) trait OpData: Send + 'static {
    /// Whether the SQE comes from the native API (`crate::uring`): its
    /// flags are then checked (see `driver::flags`).
    const NATIVE: bool = false;

    /// Which way the op moves data: a run of ops one way is submitted
    /// inline (see `shard::inline`).
    const DIRECTION: Direction = Direction::Other;

    /// Builds the SQE. Called once, after `self` has reached the address it
    /// keeps until the final CQE, so pointers into `self` stay valid.
    fn entry(&mut self) -> Entry;

    /// Releases what a completed op handed over when nobody will take the
    /// result (the future was dropped): close an accepted fd, say.
    fn orphaned(&mut self, _cqe: Cqe) {}

    /// Sees the first CQE of an op that posts another after it (a
    /// zero-copy send's result, before its notification), on the owner
    /// shard's driver: release what the kernel no longer needs (the
    /// socket) while it keeps the rest (the buffer).
    fn partly_done(&mut self, _cqe: &Cqe) {}

    /// The result of a complete success that need not wake a task polling
    /// inside [`quiet_writes`](crate::io::quiet_writes) (a write of all
    /// its bytes); `None`: every completion wakes.
    fn quiet_result(&self) -> Option<i32> {
        None
    }
}

/// The driver's side of an in-flight op, kept in the shard's table.
pub(crate) trait Completion: Send + Sync {
    /// Delivers one CQE. Returns true when it was the op's last.
    fn complete(&self, cqe: Cqe) -> bool;
    /// Where the op keeps the `user_data` its owner shard gave it.
    fn op_tag(&self) -> &OpTag;

    /// Records the `user_data` the owner shard gave the op.
    fn set_tag(&self, ud: u64) {
        self.op_tag().ud.store(ud, Ordering::Release);
    }

    /// The op's `user_data` on its owner shard (0 before registration).
    fn tag(&self) -> u64 {
        self.op_tag().ud.load(Ordering::Acquire)
    }

    /// Fails an op that never reached a ring (its shard exited first).
    fn fail_unsubmitted(&self, errno: i32) {
        self.complete(Cqe {
            res: -errno,
            flags: 0,
        });
    }
}

/// An op's `user_data` on its owner shard, for cancelling it from
/// elsewhere, and its place in the queue for a slot while a shard's op
/// table is full.
#[derive(Default)]
pub(crate) struct OpTag {
    ud: AtomicU64,
    /// Whom to wake when a slot frees up.
    pub(crate) slot_waker: AtomicWaker,
    /// The id of the op table whose queue of ops waiting for a slot holds
    /// the op's live entry (0: none). Another poll of the future on that
    /// table's shard only updates `slot_waker`. A future that moves to
    /// another shard (its task was stolen) and finds that table full too
    /// queues there and writes the new table's id, which turns the entry
    /// left in the first queue stale: that table skips it when it comes up.
    /// Cleared when the op is woken for a slot or gets one.
    pub(crate) slot_queue: AtomicU64,
}

impl OpTag {
    /// Marks the op as waiting in queue `queue` for a slot, to be woken
    /// through `waker`. True when it had no live entry there yet: the
    /// caller pushes one (any entry in another queue turns stale).
    pub(crate) fn wait_in(&self, queue: u64, waker: &Waker) -> bool {
        self.slot_waker.register(waker);
        self.slot_queue.swap(queue, Ordering::AcqRel) != queue
    }

    /// Whether the op waits in queue `queue` (its entry there is live).
    pub(crate) fn waits_in(&self, queue: u64) -> bool {
        self.slot_queue.load(Ordering::Acquire) == queue
    }

    /// Takes the op out of queue `queue` if its entry there is live (it
    /// still waits there): the caller then wakes it or hands it a slot.
    pub(crate) fn leave(&self, queue: u64) -> bool {
        self.slot_queue
            .compare_exchange(queue, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the op out of queue `queue`, if its entry there is live, with
    /// a slot of that table set aside for it (see `OpTable::insert`).
    pub(crate) fn claim(&self, queue: u64) -> bool {
        self.slot_queue
            .compare_exchange(queue, queue | CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the op out of whatever queue for a slot it waits in, and
    /// gives up a slot set aside for it: the entry, or the claim, goes
    /// stale, and its table hands the slot on at its next look (for an op
    /// that will not be polled for its slot for a while: a paused
    /// multishot op).
    pub(crate) fn stop_waiting(&self) {
        if self.slot_queue.load(Ordering::Acquire) != 0 {
            self.slot_queue.store(0, Ordering::Release);
        }
    }

    /// Whether a slot of table `queue` is set aside for the op.
    pub(crate) fn holds_claim(&self, queue: u64) -> bool {
        self.slot_queue.load(Ordering::Acquire) == queue | CLAIMED
    }
}

/// Marks `OpTag::slot_queue` as naming the table that set a slot aside
/// for the op (woken from its queue), not a queue it waits in. Queue ids
/// count up from 1 and never reach it.
const CLAIMED: u64 = 1 << 63;

const IN_FLIGHT: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// A single-shot op's shared state.
pub(crate) struct OpCell<T> {
    state: AtomicU8,
    res: AtomicI32,
    flags: AtomicU32,
    waker: AtomicWaker,
    tag: OpTag,
    /// [`OpData::quiet_result`], or `NOT_QUIET`.
    quiet_res: i32,
    /// The op's last poll ran inside `quiet_writes`.
    quiet: AtomicBool,
    data: UnsafeCell<Option<T>>,
}

/// `quiet_res` of an op whose completions always wake.
const NOT_QUIET: i32 = i32::MIN;

/// `IORING_CQE_F_MORE`: more CQEs follow for this op.
const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification.
const CQE_F_NOTIF: u32 = 1 << 3;

// SAFETY: `data` is reached by one side at a time, decided by `state`:
// the future before submission and after DONE; the completing side (the
// owner shard's driver, or the thread that fails an op left in the remote
// queue of a shard that exited) only after the future swapped in ABANDONED
// before DONE (the completer's swap to DONE failed), so the future is
// gone; and the driver alone at a CQE that posts another after it, when
// the state cannot be DONE yet (the future touches `data` in no other
// state). Anyone else holding the cell (a table's queue of ops waiting for a
// slot) touches only its tag. `T: Send` because it may be dropped on that
// other thread.
unsafe impl<T: Send> Sync for OpCell<T> {}

impl<T: OpData> OpCell<T> {
    pub(crate) fn new(data: T) -> Self {
        OpCell {
            state: AtomicU8::new(IN_FLIGHT),
            res: AtomicI32::new(0),
            flags: AtomicU32::new(0),
            waker: AtomicWaker::new(),
            tag: OpTag::default(),
            quiet_res: data.quiet_result().unwrap_or(NOT_QUIET),
            quiet: AtomicBool::new(false),
            data: UnsafeCell::new(Some(data)),
        }
    }

    /// Records whether the poll now under way runs inside `quiet_writes`;
    /// call before [`poll_done`](Self::poll_done). Paired with the load in
    /// `complete` (both `SeqCst`, as are the state accesses between): a
    /// loud poll either sees the op done or is woken by its completion.
    ///
    /// Only the future's poller writes the flag, so when it already holds
    /// `quiet` (a loud poll of an op that was never quiet, the common case)
    /// there is nothing to publish and no store.
    pub(crate) fn set_quiet(&self, quiet: bool) {
        if self.quiet_res != NOT_QUIET && self.quiet.load(Ordering::Relaxed) != quiet {
            self.quiet.store(quiet, Ordering::SeqCst);
        }
    }

    /// Builds the SQE from the data at its final address.
    ///
    /// # Safety
    /// Only once, before the op's SQE exists: until a CQE for it can
    /// arrive, nothing else touches the data (the driver's table and the
    /// slot queues may already hold the op, but use only its tag).
    pub(crate) unsafe fn entry(&self) -> Entry {
        // SAFETY: the caller guarantees no SQE exists yet, so no completion
        // can reach the data, and nothing else reads it meanwhile.
        let data = unsafe { &mut *self.data.get() };
        data.as_mut()
            .expect("op data present before submission")
            .entry()
    }

    /// Registers `waker`; returns the CQE once the op is done.
    pub(crate) fn poll_done(&self, waker: &std::task::Waker) -> Option<Cqe> {
        if self.state.load(Ordering::SeqCst) == DONE {
            return Some(self.cqe());
        }
        self.waker.register(waker);
        if self.state.load(Ordering::SeqCst) == DONE {
            return Some(self.cqe());
        }
        None
    }

    /// Whether the op's final CQE has been delivered.
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::SeqCst) == DONE
    }

    fn cqe(&self) -> Cqe {
        Cqe {
            res: self.res.load(Ordering::Relaxed),
            flags: self.flags.load(Ordering::Relaxed),
        }
    }

    /// Takes the data back after DONE.
    pub(crate) fn take(&self) -> T {
        assert_eq!(self.state.load(Ordering::Acquire), DONE);
        // SAFETY: DONE means the kernel and the driver are finished with the
        // data; only the future (the caller) reaches it now.
        unsafe { (*self.data.get()).take() }.expect("op data taken once")
    }

    /// Called when the future is dropped. Returns true if the op is still
    /// in flight, so the caller must ask the owner to cancel it.
    pub(crate) fn abandon(&self) -> bool {
        match self.state.swap(ABANDONED, Ordering::AcqRel) {
            IN_FLIGHT => true,
            DONE => {
                // Completed but never taken: release what it handed over.
                let cqe = self.cqe();
                // SAFETY: DONE, and the future (our caller) is being dropped:
                // nobody else reaches the data.
                if let Some(d) = unsafe { (*self.data.get()).as_mut() } {
                    d.orphaned(cqe);
                }
                false
            }
            _ => false,
        }
    }
}

impl<T: OpData> Completion for OpCell<T> {
    fn op_tag(&self) -> &OpTag {
        &self.tag
    }

    fn complete(&self, cqe: Cqe) -> bool {
        if cqe.more() {
            // A zero-copy send's result; the buffer stays the kernel's until
            // the notification CQE that follows.
            self.res.store(cqe.res, Ordering::Relaxed);
            self.flags.store(cqe.flags, Ordering::Relaxed);
            // SAFETY: not DONE before the final CQE, so the future does not
            // reach the data; this driver thread is its only other user.
            if let Some(d) = unsafe { (*self.data.get()).as_mut() } {
                d.partly_done(&cqe);
            }
            return false;
        }
        if io_uring::cqueue::notif(cqe.flags) {
            // The notification after a zero-copy send's result: that
            // result is the op's CQE, now its last (no `F_MORE`), marked
            // as notified.
            let flags = self.flags.load(Ordering::Relaxed);
            self.flags
                .store((flags & !CQE_F_MORE) | CQE_F_NOTIF, Ordering::Relaxed);
        } else {
            self.res.store(cqe.res, Ordering::Relaxed);
            self.flags.store(cqe.flags, Ordering::Relaxed);
        }
        match self
            .state
            .compare_exchange(IN_FLIGHT, DONE, Ordering::SeqCst, Ordering::Acquire)
        {
            Ok(_) => {
                let quiet = cqe.res == self.quiet_res
                    && self.quiet_res != NOT_QUIET
                    && self.quiet.load(Ordering::SeqCst);
                if !quiet {
                    self.waker.wake();
                }
            }
            Err(_) => {
                // ABANDONED: the future is gone; the driver owns the data.
                // SAFETY: the future swapped in ABANDONED and will not touch
                // the data again; the one completing side (the driver, or
                // the thread failing an op stranded in the remote queue of
                // a shard that exited) reaches it.
                if let Some(d) = unsafe { (*self.data.get()).as_mut() } {
                    d.orphaned(cqe);
                }
            }
        }
        true
    }
}

impl<T> OpCell<T> {
    /// Takes the data back from a cell that never reached a driver (its
    /// submission failed). Other references to the cell may still exist:
    /// a table's queue of ops waiting for a slot may hold a weak one and
    /// briefly upgrade it to wake the op, which touches only the op's tag.
    ///
    /// # Safety
    /// The op was never registered with a driver, so no driver and no
    /// kernel reaches `data`, and the caller is the op's future, which
    /// alone reaches it before registration.
    pub(crate) unsafe fn take_unsubmitted(&self) -> T {
        // SAFETY: the caller guarantees that the op never reached a driver
        // and that it is the future, the only side that reaches `data` then.
        unsafe { (*self.data.get()).take() }.expect("op data present before submission")
    }
}
