//! The shard's side of its ring: the eventfd read that foreign threads wake
//! it through, reaping CQEs, submitting, and retiring in-flight reads at exit.

use super::local::LocalShard;
use super::ring;

impl LocalShard {
    /// Arms the eventfd read if it is not in flight.
    pub(crate) fn arm_eventfd(&self) {
        if self.eventfd_armed.get() {
            return;
        }
        use std::os::fd::AsRawFd;
        let e = ring::eventfd_read_entry(self.shared().eventfd.as_raw_fd(), self.eventfd_buf);
        self.push_sqe(e);
        self.eventfd_armed.set(true);
    }

    /// Retires the eventfd read before the ring and its buffer go away: the
    /// kernel must not write into `eventfd_buf` after it is freed. Cancels
    /// the read and waits for its CQE; if that somehow never comes, the
    /// 8-byte buffer is leaked rather than freed under the kernel.
    pub(crate) fn quiesce(&self) {
        if !self.eventfd_armed.get() {
            return;
        }
        self.push_sqe(ring::cancel_eventfd_entry());
        for _ in 0..1000 {
            self.submit(true, Some(std::time::Duration::from_millis(10)));
            self.reap();
            if !self.eventfd_armed.get() {
                return;
            }
        }
        // Still armed: `Drop` sees `eventfd_armed` and leaks the buffer.
    }

    /// Reaps every available CQE and acts on it. Returns how many.
    pub(crate) fn reap(&self) -> usize {
        let mut cqes = std::mem::take(&mut *self.cqes.borrow_mut());
        cqes.clear();
        // What a reap cut short by a panic left (see `Unreaped`) comes first.
        cqes.append(&mut self.unreaped.borrow_mut());
        {
            let mut ring = self.ring.borrow_mut();
            cqes.extend(
                ring.completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
        }
        let n = cqes.len();
        let mut rest = Unreaped {
            shard: self,
            cqes,
            next: 0,
        };
        while let Some(&(ud, res, flags)) = rest.cqes.get(rest.next) {
            rest.next += 1;
            self.act_on(ud, res, flags);
        }
        let cqes = std::mem::take(&mut rest.cqes);
        drop(rest);
        // Give the (emptied) buffer back for the next reap; a waker that ran
        // above may have re-entered `reap` and left its own buffer there.
        let mut slot = self.cqes.borrow_mut();
        if slot.capacity() < cqes.capacity() {
            let mut cqes = cqes;
            cqes.clear();
            *slot = cqes;
        }
        drop(slot);
        if n > 0 {
            let _ = self.note_cq_overflow();
        }
        // Ops queued for a slot in a full table: hand out the free ones
        // (also those a woken op never came back for).
        let woken = {
            let mut ops = self.ops.borrow_mut();
            ops.has_waiting().then(|| ops.hand_out_free_slots())
        };
        if let Some(woken) = woken {
            woken.wake();
        }
        // Room freed in the CQ: move spilled SQEs in.
        self.flush_spill();
        n
    }

    /// Acts on one reaped CQE.
    fn act_on(&self, ud: u64, res: i32, flags: u32) {
        match ud {
            ring::UD_DOORBELL => self.shared().counters.doorbells_received.bump(),
            ring::UD_EVENTFD => {
                self.eventfd_armed.set(false);
                if res != -libc::ECANCELED {
                    self.shared().counters.doorbells_received.bump();
                }
            }
            ring::UD_CANCEL_EVENTFD => {}
            // The fd is gone whatever the result (as with `close(2)`,
            // an error still releases the descriptor).
            ring::UD_CLOSE => self.closes_in_flight.set(self.closes_in_flight.get() - 1),
            ud if ud >> 32 == ring::UD_MSG_SENT >> 32 => {
                // A MSG_RING send failed (res < 0): fall back to the eventfd.
                let target = (ud & 0xFFFF_FFFF) as usize;
                if res < 0 {
                    if let Some(s) = self.inner.shards.get(target) {
                        s.ring_eventfd();
                    }
                }
            }
            ud => self.dispatch_op(ud, crate::driver::Cqe { res, flags }),
        }
    }

    /// Whether CQEs are waiting, or the kernel holds completions that an
    /// enter would post (deferred task work, overflow).
    pub(crate) fn has_completions(&self) -> bool {
        let mut ring = self.ring.borrow_mut();
        if !ring.completion().is_empty() {
            return true;
        }
        let sq = ring.submission();
        sq.taskrun() || sq.cq_overflow() || self.shared().has_remote()
    }

    /// Submits queued SQEs (doorbells) right away, if any.
    pub(crate) fn flush_doorbells(&self) {
        if self.doorbell_queued.replace(false) {
            self.submit(false, None);
        }
    }

    /// One `io_uring_enter`: submit, and wait if asked.
    ///
    /// Spilled SQEs go to the kernel first (see
    /// [`submit_spill`](Self::submit_spill)): a wait with some still
    /// spilled could sleep until an unrelated CQE, or for ever, when only
    /// the spilled ops would complete. Should the kernel stop taking SQEs
    /// with some still spilled, the enter does not wait.
    pub(crate) fn submit(&self, wait: bool, timeout: Option<std::time::Duration>) {
        let wait = self.submit_spill() && wait;
        let ring = self.ring.borrow();
        self.shared().counters.ring_enters.bump();
        let entered = ring::enter(&ring, &self.ring_fd, wait, timeout);
        drop(ring);
        match entered {
            Ok(ring::Entered::Busy) => self.shared().counters.submit_busy.bump(),
            Ok(ring::Entered::Done) => {}
            Ok(ring::Entered::CqesLost) => self.note_cqes_lost(),
            // Only programming errors (EFAULT, EBADF...) land here; say so
            // instead of spinning silently.
            Err(e) => crate::warn::warn_stderr!(
                "spargio: shard {} io_uring_enter failed: {e}",
                self.index
            ),
        }
        // Queued closes count as submitted only once the kernel has taken
        // every SQE (an enter refused with `EBUSY` leaves them queued, and
        // `submit_ring_closes` must try again).
        if self.closes_unsubmitted.get()
            && self.spill.borrow().is_empty()
            && self.ring.borrow_mut().submission().is_empty()
        {
            self.closes_unsubmitted.set(false);
        }
    }

    /// Moves every spilled SQE into the kernel: fills the SQ from the spill
    /// queue and submits it (an enter that does not wait), until the spill
    /// queue is empty. Returns whether it is; `false` when the kernel took
    /// none of the SQEs queued (it can refuse them for a while, short of
    /// memory), so SQEs are still spilled.
    fn submit_spill(&self) -> bool {
        loop {
            self.flush_spill();
            if self.spill.borrow().is_empty() {
                return true;
            }
            let queued = self.ring.borrow_mut().submission().len();
            self.shared().counters.ring_enters.bump();
            // An error shows again, and is reported, in the caller's enter.
            let _ = ring::enter(&self.ring.borrow(), &self.ring_fd, false, None);
            if self.ring.borrow_mut().submission().len() >= queued {
                return false;
            }
        }
    }

    /// Submits if the SQ holds entries or the kernel has deferred work.
    pub(crate) fn submit_if_needed(&self) {
        self.flush_spill();
        let needed = ring::needs_enter(&mut self.ring.borrow_mut());
        self.doorbell_queued.set(false);
        if needed {
            self.submit(false, None);
        }
    }
}

/// CQEs a reap took off the ring and has not acted on yet. The ring counts
/// them consumed once taken, so if acting on one panics (a waker, an op's
/// destructor), the rest are kept for the next reap instead of lost with
/// the unwinding (their ops would never complete, and shutdown would wait
/// for them in vain). The one that panicked counts as handled.
struct Unreaped<'a> {
    shard: &'a LocalShard,
    cqes: Vec<(u64, i32, u32)>,
    /// The first not acted on.
    next: usize,
}

impl Drop for Unreaped<'_> {
    fn drop(&mut self) {
        if let Some(rest) = self.cqes.get(self.next..) {
            if !rest.is_empty() {
                self.shard.unreaped.borrow_mut().extend_from_slice(rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::os::fd::AsRawFd;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use io_uring::{opcode, squeue, types};

    use crate::driver::user_data::UD_IGNORE;
    use crate::{Runtime, ShardId};

    /// Long enough that only a hang reaches it.
    const HANG: Duration = Duration::from_secs(20);

    type Socket = std::os::unix::net::UnixStream;

    /// SQEs spilled past what the SQ holds reach the kernel before the
    /// shard blocks in `io_uring_enter`, even when nothing else (no CQE,
    /// no timer, no wake-up) would end that wait.
    #[test]
    fn spilled_sqes_are_submitted_before_the_shard_waits() {
        let rt = Runtime::builder()
            .shards(1)
            .ring_entries(4)
            .build()
            .expect("build runtime");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (peers_tx, peers_rx) = std::sync::mpsc::channel();
        let _task = rt.handle().spawn_pinned(ShardId(0), async move {
            // The kernel can take fewer SQEs than were queued (short of
            // memory); the ones left over wait in the spill queue, and every
            // SQE after them is spilled too, in order. Put the shard in that
            // state with a NOP that posts no CQE.
            crate::shard::local::with_current(|l| {
                l.spill.borrow_mut().push_back(
                    opcode::Nop::new()
                        .build()
                        .flags(squeue::Flags::SKIP_SUCCESS)
                        .user_data(UD_IGNORE),
                );
            })
            .expect("on a shard");
            // Many SQ-fulls of reads that never complete, then a NOP.
            let mut reads = Vec::new();
            let mut peers = Vec::new();
            for _ in 0..64 {
                let (sock, peer) = Socket::pair().unwrap();
                peers.push(peer);
                // SAFETY: the SQE points into the op's own buffer and names
                // the op's own socket, both kept by its data until the CQE.
                let mut read = unsafe {
                    crate::uring::submit((sock, [0u8; 1]), |(s, buf)| {
                        opcode::Read::new(types::Fd(s.as_raw_fd()), buf.as_mut_ptr(), 1).build()
                    })
                };
                let polled = std::future::poll_fn(|cx: &mut Context<'_>| {
                    Poll::Ready(Pin::new(&mut read).poll(cx).is_pending())
                })
                .await;
                assert!(polled);
                reads.push(read);
            }
            peers_tx.send(peers).unwrap();
            // SAFETY: a NOP touches no memory.
            let nop = unsafe { crate::uring::submit((), |_| opcode::Nop::new().build()) };
            let (res, ()) = nop.await;
            done_tx.send(res.unwrap().res).unwrap();
            drop(reads);
        });
        let peers = peers_rx.recv_timeout(HANG).expect("the task ran");
        let done = done_rx.recv_timeout(HANG);
        if done.is_err() {
            // Wake the stuck shard (a read completes) so that the runtime
            // can shut down and the test fails instead of hanging.
            for mut p in &peers {
                let _ = std::io::Write::write_all(&mut p, b"x");
            }
        }
        assert_eq!(
            done.expect("the spilled NOP reached the kernel before the shard slept"),
            0
        );
    }
}
