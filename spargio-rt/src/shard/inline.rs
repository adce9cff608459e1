//! Inline submission: an op that continues a task's run of ops in one
//! direction is submitted from inside the task's poll, and reaped there if
//! the kernel completed it while taking it.
//!
//! Normally a task's SQEs wait for the loop: the batch's tasks queue theirs
//! and one `io_uring_enter` submits them all. That is the right trade for
//! a connection that alternates reads and writes, but a task writing a
//! burst of frames (or reading a run of them) then gets one op through per
//! loop turn, interleaved with every other task's ops, and its peer wakes
//! up for each frame instead of for the burst. So: when the op a task
//! submits moves data the same way as its previous op, and that previous
//! op's completion, alone, is what the task saw during this same poll (a
//! sequence, not a fan-out of ops in flight together, nor the next batch
//! after a batch joined together), the shard enters at once and reaps. A
//! write with room in the socket, or a read with bytes waiting, is then
//! done when its future looks, and the task goes on in the same poll.
//!
//! Bounds: [`INLINE_OPS_PER_POLL`] per poll, after which the task's ops wait
//! for the loop again (so a task whose every op completes at once still
//! goes back behind the others); an inline op the kernel could not
//! complete at once (a read with nothing to read) ends the run, so the next
//! op of that task waits for the loop's batch.
//!
//! The reap runs inside the poll, so wakers of other ops run there: a task
//! woken by it is queued, not put in the LIFO slot (the loop's reap does
//! the same). A panic out of that reap (a waker's, an op's destructor's)
//! is not the polled task's: it is held and resumed once the poll returns,
//! where the loop's own panic policy handles it.

use std::sync::atomic::Ordering;

use super::local::LocalShard;
use crate::driver::cell::Direction;
use crate::task::TaskMeta;

/// Ops one task poll may submit and reap inline.
pub(crate) const INLINE_OPS_PER_POLL: u32 = 64;

impl LocalShard {
    /// The metadata of the task this shard is polling right now, if this
    /// runs inside that poll.
    fn polled_meta(&self) -> Option<&TaskMeta> {
        if !self.in_poll.get() {
            return None;
        }
        let meta = self.polled_task.get();
        // SAFETY: `polled_task` is non-null only for the length of that
        // task's poll (`run_task` sets it and its scope guard clears it),
        // and `in_poll` says this runs inside it: the task, and the
        // metadata in its allocation, are alive.
        unsafe { meta.as_ref() }
    }

    /// Notes that the polled task submitted an op moving data `dir` (its
    /// SQE is queued), and submits it at once if it continues a run (see
    /// the module doc). `done` tells whether the op has completed.
    pub(crate) fn submitted(&self, dir: Direction, done: impl FnOnce() -> bool) {
        let Some(meta) = self.polled_meta() else {
            return;
        };
        let seq = self.poll_seq.get();
        // A run: the task's last op went the same way, and its completion,
        // alone, is what the task saw before this one. Several completions
        // (a batch of reads joined together) are followed by the next
        // batch, whose SQEs should go to the kernel together.
        let run = dir != Direction::Other
            && meta.last_op.load(Ordering::Relaxed) == dir as u8
            && meta.op_done_in.load(Ordering::Relaxed) == seq
            && meta.ops_done.load(Ordering::Relaxed) == 1;
        meta.last_op.store(dir as u8, Ordering::Relaxed);
        // This op, not yet complete, is the task's last one now.
        meta.op_done_in
            .store(seq.wrapping_sub(1), Ordering::Relaxed);
        if !run || !self.submit_inline() {
            return;
        }
        let counters = &self.shared().counters;
        counters.ops_inline.bump();
        if done() {
            counters.ops_inline_done.bump();
        } else {
            // The kernel has to wait for this one: the run is over.
            meta.last_op
                .store(Direction::Other as u8, Ordering::Relaxed);
        }
    }

    /// Notes that the polled task saw its op moving data `dir` complete.
    pub(crate) fn completed(&self, dir: Direction) {
        let Some(meta) = self.polled_meta() else {
            return;
        };
        if meta.last_op.load(Ordering::Relaxed) != dir as u8 {
            return;
        }
        let seq = self.poll_seq.get();
        if meta.op_done_in.load(Ordering::Relaxed) == seq {
            let n = meta.ops_done.load(Ordering::Relaxed);
            meta.ops_done.store(n.saturating_add(1), Ordering::Relaxed);
        } else {
            meta.op_done_in.store(seq, Ordering::Relaxed);
            meta.ops_done.store(1, Ordering::Relaxed);
        }
    }

    /// One inline submission: enter, then reap. Returns whether it
    /// submitted (not over this poll's budget, nothing spilled).
    fn submit_inline(&self) -> bool {
        let left = self.inline_left.get();
        // Not from inside an inline reap (a waker there that polls a
        // future of its own on the spot): a nested reap would act on the
        // CQEs it takes before the older ones the outer reap still holds,
        // so a multishot op's last CQE could free it before an earlier
        // one (whose buffer or fd would then be dropped as stale).
        if left == 0 || self.inline_reap.get() || !self.spill.borrow().is_empty() {
            return false;
        }
        self.inline_left.set(left - 1);
        self.submit(false, None);
        self.inline_reap.set(true);
        // A panic stops a reap after the CQE whose handling panicked (the
        // rest are kept, see `Unreaped`): reap again until one finishes,
        // so the ops completed alongside (this one among them) are done.
        while let Err(payload) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reap()))
        {
            // Not the polled task's panic: hold it for `run_task` to resume
            // after the poll (the first one, should more come), and make no
            // more inline reaps in this poll.
            self.inline_left.set(0);
            let held = self.inline_panic.take();
            self.inline_panic.set(Some(held.unwrap_or(payload)));
        }
        self.inline_reap.set(false);
        true
    }
}
