//! The op machinery: how an io_uring operation is submitted, completed,
//! cancelled and freed.
//!
//! ## Life of an op
//!
//! ```text
//!  future (any shard)              owner shard's driver (one thread)
//!  ------------------              ---------------------------------
//!  1. first poll: move the data
//!     into an `Arc<OpCell>`, build
//!     the SQE from its stable
//!     address, register it in the
//!     owner's table (user_data =
//!     generation | slot)      ───>  2. SQE submitted with the next enter
//!                                   3. CQE reaped: look the slot up, check
//!                                      the generation, store res + flags,
//!                                      state := DONE, wake the waker,
//!                                      drop the table's `Arc`
//!  4. poll sees DONE: take the
//!     data back (buffers, fd)
//! ```
//!
//! - **Owner.** The owner is the shard whose thread ran the first poll
//!   (ring affinity). A future first polled off the runtime's shards (inside
//!   `Runtime::block_on`) is handed to a shard through its *remote queue*,
//!   which that shard drains every loop turn; once the shards have exited
//!   (the runtime shut down) such an op fails with an error.
//! - **Cancellation.** Dropping the future before DONE swaps the state to
//!   ABANDONED and asks the owner to submit `IORING_OP_ASYNC_CANCEL` for the
//!   op's user_data (directly when dropped on the owner's thread, through
//!   the remote queue otherwise). The table still holds an `Arc` to the
//!   cell, so the buffers and the fd stay alive until the final CQE; only
//!   then is the cell freed. If the op completed anyway (the cancel lost the
//!   race), the op's `orphaned` hook releases what the result handed over:
//!   an accepted or opened fd is closed.
//! - **Stale CQEs.** A slot's generation changes on every reuse, so a CQE
//!   whose generation does not match is counted and ignored.
//! - **Full SQ.** An SQE that does not fit is spilled to a queue that the
//!   shard moves into the SQ as room frees up (in order: once one SQE is
//!   spilled, every later one queues behind it); nothing fails or blocks.
//!   The invariant: no enter that waits runs while SQEs are spilled. An
//!   enter that may wait (`LocalShard::submit`) first submits the whole
//!   spill queue, an SQ-full at a time, and does not wait if the kernel
//!   stops taking SQEs with some still spilled; so no spilled SQE waits
//!   for a CQE. Enters that never wait may leave the spill queue alone
//!   (the cancel's own `GETEVENTS` enter in `settle_cancel`, the submit
//!   of a full SQ in `push_sqe`).
//! - **Bounded.** Each shard's table holds at most `max_ops_in_flight` ops;
//!   an op that finds it full waits for a slot (backpressure). Waiting ops
//!   queue once each per shard, oldest first; every freed slot, and every
//!   loop turn while slots are free, wakes the next one with that slot set
//!   aside for it (a fresh op takes only slots nobody woken is owed, so a
//!   task that keeps submitting cannot take every freed slot first),
//!   skipping ops whose futures were dropped, so an aborted waiter never
//!   strands the rest (a slot set aside for an op that is dropped, or
//!   moves to another shard, is given back at the next loop turn). The
//!   queue holds ops weakly: a future dropped while it waits releases its
//!   buffers and fd at once. An op whose task moves to another shard while
//!   it waits waits for that shard's slots from its next poll there; the
//!   entry left in the first shard's queue is skipped. Ops submitted from
//!   threads outside the runtime cannot reach a table; they take one of
//!   the runtime's slots for such ops first (`max_ops_in_flight` per shard)
//!   (`remote_slots`), waiting in its queue when none is free.
//! - **Shutdown.** A shard leaves its loop only when no task of its runtime
//!   is alive, but op futures may still be alive elsewhere: one awaited in
//!   `Runtime::block_on` (its op went through the remote queue), or one in
//!   a background future on the background pool. `retire_ops` closes the
//!   remote queue (a later submission fails with an error), cancels every
//!   op still in its table and reaps until the table is empty: each op
//!   gets its final CQE (`-ECANCELED`, or its result if it won the race)
//!   and a live future finds it done. Safety does not rest on the futures
//!   being gone: the table holds an `Arc` to every cell until its final
//!   CQE, and ops whose CQE never comes are leaked, not freed.

pub(crate) mod cell;
pub(crate) mod flags;
pub(crate) mod multi;
pub(crate) mod op;
pub(crate) mod remote;
pub(crate) mod remote_slots;
pub(crate) mod table;
pub(crate) mod user_data;

pub(crate) use cell::OpData;
pub(crate) use flags::check_native;
pub(crate) use multi::MultiData;
pub(crate) use op::{MultiOp, Op};

/// The result of one CQE: the kernel's `res` and `flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    /// The raw result: non-negative on success, `-errno` on failure.
    pub res: i32,
    /// The CQE flags (`IORING_CQE_F_MORE`, `IORING_CQE_F_BUFFER`, ...).
    pub flags: u32,
}

impl Cqe {
    /// The result as `io::Result`: the value on success, the errno as an error.
    pub fn result(&self) -> std::io::Result<u32> {
        if self.res < 0 {
            Err(std::io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }

    /// Whether more CQEs follow for this (multishot) op.
    pub fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }

    /// The provided-buffer id this CQE consumed, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        io_uring::cqueue::buffer_select(self.flags)
    }
}
