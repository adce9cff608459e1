//! The part of a shard that other threads touch: its queues for work sent
//! from elsewhere, its doorbell targets, its sleep flag and its counters.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::{io, mem};

use crossbeam_deque::{Injector, Stealer};
use crossbeam_utils::CachePadded;

use crate::driver::remote::RemoteReq;
use crate::driver::remote_slots::RemoteSlots;
use crate::shard::inbox::Inbox;
use crate::shard::lifo::LifoSlot;
use crate::shard::poll_cost::PollCost;
use crate::stats::ShardCounters;
use crate::task::Runnable;

/// [`ShardShared::cpu`] before the shard has published one (or when the
/// kernel cannot say).
pub(crate) const NO_CPU: u32 = u32::MAX;

/// Shared state of one shard.
pub(crate) struct ShardShared {
    pub(crate) index: usize,
    /// Stealable tasks sent here by other threads; other shards may steal
    /// from it too.
    pub(crate) injector: Injector<Runnable>,
    /// Steals from the shard's own deque; set when the shard starts.
    pub(crate) stealer: OnceLock<Stealer<Runnable>>,
    /// The task to run after the current poll (see `lifo.rs`); other
    /// shards may steal it when that poll runs long.
    pub(crate) lifo: CachePadded<LifoSlot>,
    /// Pinned tasks woken (or spawned) from other threads; lock-free.
    inbox: Inbox,
    /// Set when the shard has exited; later pushes are refused.
    inbox_closed: AtomicBool,
    /// The target of other shards' `MSG_RING` doorbells: a duplicate of
    /// the shard's ring fd, -1 before the ring exists and after
    /// [`Inner::done_submitting`](crate::scheduler::Inner::done_submitting)
    /// closed it. Being a duplicate, it keeps the ring (not its memory
    /// mapping) alive after the shard dropped its own fd.
    pub(crate) ring_fd: AtomicI32,
    /// Owns the duplicate behind `ring_fd`.
    doorbell_target: Mutex<Option<OwnedFd>>,
    /// Doorbell for threads that have no ring of their own.
    pub(crate) eventfd: OwnedFd,
    /// Set by the shard just before it blocks; cleared by whoever wakes it.
    /// See `park.rs` for the protocol.
    pub(crate) sleeping: CachePadded<AtomicBool>,
    /// Set while the shard is out of work: spinning before it parks, or
    /// parked. New stealable work may be handed to it (see
    /// `Inner::idle_shard_for_spawn`); a spinning shard finds it in its
    /// injector without a doorbell.
    pub(crate) idle: CachePadded<AtomicBool>,
    /// The CPU the shard's thread was on the last time it was about to spin
    /// for work ([`NO_CPU`] until then). A shard about to spin that finds
    /// another awake shard on its own CPU parks instead (see
    /// `worker::park_or_spin`).
    pub(crate) cpu: AtomicU32,
    /// Set when the shard was woken to look for work to steal (not because
    /// work was sent to it).
    pub(crate) woken_to_search: AtomicBool,
    /// Set while the shard sleeps on a steal re-check timer (it will look
    /// at busy shards again by itself); see `park::notify_idle`.
    pub(crate) rechecking: AtomicBool,
    /// Whether the shard is inside a task poll right now; idle shards only
    /// steal from shards that are busy.
    pub(crate) polling: CachePadded<AtomicBool>,
    pub(crate) counters: ShardCounters,
    /// How long this shard's polls take (see `poll_cost`).
    pub(crate) poll_cost: CachePadded<PollCost>,
    pub(crate) pinned_depth: CachePadded<AtomicUsize>,
    /// Ops submitted or cancelled from other threads (see `driver::remote`).
    remote: Injector<RemoteReq>,
    remote_closed: AtomicBool,
}

impl ShardShared {
    pub(crate) fn new(index: usize) -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; a negative
        // return is checked before the fd is used.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ShardShared {
            index,
            injector: Injector::new(),
            stealer: OnceLock::new(),
            lifo: CachePadded::new(LifoSlot::new()),
            inbox: Inbox::new(),
            inbox_closed: AtomicBool::new(false),
            ring_fd: AtomicI32::new(-1),
            doorbell_target: Mutex::new(None),
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            sleeping: CachePadded::new(AtomicBool::new(false)),
            idle: CachePadded::new(AtomicBool::new(false)),
            cpu: AtomicU32::new(NO_CPU),
            woken_to_search: AtomicBool::new(false),
            rechecking: AtomicBool::new(false),
            polling: CachePadded::new(AtomicBool::new(false)),
            counters: ShardCounters::default(),
            poll_cost: CachePadded::new(PollCost::new()),
            pinned_depth: CachePadded::new(AtomicUsize::new(0)),
            remote: Injector::new(),
            remote_closed: AtomicBool::new(false),
        })
    }

    /// Makes a duplicate of `ring` (the shard's ring fd) the target of
    /// doorbells; see [`ring_fd`](Self::ring_fd).
    pub(crate) fn set_doorbell_target(&self, ring: RawFd) -> io::Result<()> {
        // SAFETY: `ring` is an open fd for the duration of the call (the
        // caller holds the ring); F_DUPFD_CLOEXEC only reads it.
        let dup = unsafe { libc::fcntl(ring, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` was just returned by fcntl and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(dup) };
        self.ring_fd.store(dup, Ordering::Release);
        *self
            .doorbell_target
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(owned);
        Ok(())
    }

    /// Closes the doorbell target (a shard that finds -1 in `ring_fd`
    /// rings the eventfd instead).
    pub(crate) fn close_doorbell_target(&self) {
        self.ring_fd.store(-1, Ordering::Release);
        let owned = self
            .doorbell_target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(owned);
    }

    /// Queues a pinned task woken from another thread. Gives it back if the
    /// shard has exited.
    ///
    /// A shard exits only once no task of its runtime is alive, and a
    /// runnable exists only for a live task, so no push can race with the
    /// exit; the flag turns a broken assumption into a refused push instead
    /// of a stranded task (and `Drop` below handles the impossible rest).
    pub(crate) fn push_pinned(&self, task: Runnable) -> Result<(), Runnable> {
        if self.inbox_closed.load(Ordering::SeqCst) {
            return Err(task);
        }
        self.inbox.push(task);
        Ok(())
    }

    /// Moves inbox tasks into `into` (called by the shard itself).
    pub(crate) fn drain_inbox(&self, into: &mut VecDeque<Runnable>) {
        self.inbox.drain_into(into);
    }

    /// Closes the inbox and returns what was left in it.
    pub(crate) fn close_inbox(&self) -> VecDeque<Runnable> {
        self.inbox_closed.store(true, Ordering::SeqCst);
        let mut left = VecDeque::new();
        self.drain_inbox(&mut left);
        left
    }

    /// Queues an op request from another thread; gives it back if the
    /// shard has exited.
    ///
    /// A push can race the shard's exit (it passed the check, then the
    /// shard closed and made its last drain). Dekker pair with
    /// [`close_remote`](Self::close_remote): push, fence, look at the flag;
    /// the shard sets the flag, fences, then drains. So either the shard's
    /// drain takes the request, or this thread sees the flag and fails
    /// whatever is still queued itself (an op gets `ECANCELED`): no request
    /// is left in a queue nobody reads.
    /// `slots` are the runtime's slots for ops from outside it, one of
    /// which every queued op holds.
    pub(crate) fn push_remote(&self, req: RemoteReq, slots: &RemoteSlots) -> Result<(), RemoteReq> {
        if self.remote_closed.load(Ordering::SeqCst) {
            return Err(req);
        }
        self.remote.push(req);
        fence(Ordering::SeqCst);
        if self.remote_closed.load(Ordering::SeqCst) {
            self.fail_stranded_remote(Some(slots));
        }
        Ok(())
    }

    /// Fails the requests left in the queue of a shard that has closed it:
    /// an op that never reached the ring completes with `ECANCELED` and
    /// gives its slot back to `slots` (none once the runtime is gone); a
    /// cancel has nothing left to do, and dropping a closure for the gone
    /// ring releases what it owned (e.g. the memory of a buffer ring).
    pub(crate) fn fail_stranded_remote(&self, slots: Option<&RemoteSlots>) {
        while let Some(req) = self.pop_remote() {
            match req {
                RemoteReq::Submit(_, op) => {
                    op.fail_unsubmitted(libc::ECANCELED);
                    if let Some(slots) = slots {
                        slots.release();
                    }
                }
                RemoteReq::Cancel(..) => {}
                RemoteReq::Run(f) => drop(f),
            }
        }
    }

    /// Takes the next remote op request (called by the shard itself).
    pub(crate) fn pop_remote(&self) -> Option<RemoteReq> {
        crate::queue::take(&self.remote)
    }

    /// Refuses further remote requests (shard exit); the caller drains the
    /// queue right after (see [`push_remote`](Self::push_remote)).
    pub(crate) fn close_remote(&self) {
        self.remote_closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Whether the shard has exited (it takes no more remote requests).
    pub(crate) fn is_remote_closed(&self) -> bool {
        self.remote_closed.load(Ordering::SeqCst)
    }

    pub(crate) fn has_remote(&self) -> bool {
        !self.remote.is_empty()
    }

    pub(crate) fn has_inbox(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// Pinned tasks queued on this shard: those in its own queue (as it
    /// last published) and those in its inbox now.
    pub(crate) fn pinned_len(&self) -> usize {
        self.pinned_depth.load(Ordering::Relaxed) + self.inbox.len()
    }

    /// Stealable tasks queued on this shard (its deque and its injector;
    /// what placement and stats count).
    pub(crate) fn stealable_len(&self) -> usize {
        self.injector.len() + self.stealer.get().map_or(0, |s| s.len())
    }

    /// Stealable tasks another shard could take from this one: those
    /// queued, and the one in the LIFO slot.
    pub(crate) fn stealable_waiting(&self) -> usize {
        self.stealable_len() + usize::from(self.lifo.is_occupied())
    }

    /// Rings the eventfd doorbell (any thread).
    pub(crate) fn ring_eventfd(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local into our own eventfd.
        // EAGAIN (counter saturated) means a wake is already pending.
        unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                mem::size_of::<u64>(),
            );
        }
    }
}

impl Drop for ShardShared {
    fn drop(&mut self) {
        // Anything still queued here belongs to no running shard. A `Local`
        // task's future may be `!Send`: leak it rather than drop it on this
        // (possibly wrong) thread. Others are dropped, which cancels them.
        // (The inbox does the same when it is dropped.) A backstop: a
        // queued runtime task's scheduler holds the runtime's state, this
        // included, so in a runtime these queues are empty by now.
        while let Some(t) = crate::queue::take(&self.injector) {
            crate::scheduler::dead_letter(t);
        }
        // Ops that never reached the ring: fail them (nothing to free; the
        // runtime and its slots are gone).
        self.fail_stranded_remote(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::cell::{Completion, OpTag};
    use crate::driver::Cqe;
    use std::sync::Arc;

    /// An op that remembers how it ended.
    #[derive(Default)]
    struct Op(OpTag, std::sync::atomic::AtomicI32);
    impl Completion for Op {
        fn complete(&self, cqe: Cqe) -> bool {
            self.1.store(cqe.res, Ordering::SeqCst);
            true
        }
        fn op_tag(&self) -> &OpTag {
            &self.0
        }
    }

    #[test]
    fn an_op_stranded_in_a_closed_queue_fails_and_gives_its_slot_back() {
        let shared = ShardShared::new(0).unwrap();
        let slots = RemoteSlots::new(1);
        let op = Arc::new(Op::default());
        let dyn_op: Arc<dyn Completion> = op.clone();
        assert!(slots.acquire(&dyn_op, std::task::Waker::noop()));
        let nop = io_uring::opcode::Nop::new().build();
        // Pushed just before the shard closed its queue and made its last
        // drain; the pusher (or the shard standing in) fails it.
        shared.remote.push(RemoteReq::Submit(nop, dyn_op));
        shared.close_remote();
        shared.fail_stranded_remote(Some(&slots));
        assert_eq!(op.1.load(Ordering::SeqCst), -libc::ECANCELED);
        assert_eq!(slots.in_flight(), 0, "the failed op kept its slot");
    }
}
