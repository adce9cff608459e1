//! The part of a shard that other threads touch: its queues for work sent
//! from elsewhere, its doorbell targets, its sleep flag and its counters.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::{io, mem};

use crossbeam_deque::{Injector, Stealer};
use crossbeam_utils::CachePadded;

use crate::stats::ShardCounters;
use crate::task::Runnable;

/// Pinned tasks woken from other threads. `closed` is set (under the lock)
/// when the shard exits, so a late wake can never strand a task in a queue
/// nobody drains.
#[derive(Default)]
struct Inbox {
    closed: bool,
    tasks: VecDeque<Runnable>,
}

/// Shared state of one shard.
pub(crate) struct ShardShared {
    pub(crate) index: usize,
    /// Stealable tasks sent here by other threads; other shards may steal
    /// from it too.
    pub(crate) injector: Injector<Runnable>,
    /// Steals from the shard's own deque; set when the shard starts.
    pub(crate) stealer: OnceLock<Stealer<Runnable>>,
    inbox: Mutex<Inbox>,
    inbox_len: AtomicUsize,
    /// The shard's ring fd, the target of other shards' `MSG_RING` doorbells.
    pub(crate) ring_fd: AtomicI32,
    /// Doorbell for threads that have no ring of their own.
    pub(crate) eventfd: OwnedFd,
    /// Set by the shard just before it blocks; cleared by whoever wakes it.
    /// See `park.rs` for the protocol.
    pub(crate) sleeping: CachePadded<AtomicBool>,
    /// Set when the shard was woken to look for work to steal (not because
    /// work was sent to it).
    pub(crate) woken_to_search: AtomicBool,
    /// Whether the shard is inside a task poll right now; idle shards only
    /// steal from shards that are busy.
    pub(crate) polling: CachePadded<AtomicBool>,
    pub(crate) counters: ShardCounters,
    pub(crate) pinned_depth: AtomicUsize,
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
            inbox: Mutex::new(Inbox::default()),
            inbox_len: AtomicUsize::new(0),
            ring_fd: AtomicI32::new(-1),
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            sleeping: CachePadded::new(AtomicBool::new(false)),
            woken_to_search: AtomicBool::new(false),
            polling: CachePadded::new(AtomicBool::new(false)),
            counters: ShardCounters::default(),
            pinned_depth: AtomicUsize::new(0),
        })
    }

    /// Queues a pinned task woken from another thread. Gives it back if the
    /// shard has exited.
    pub(crate) fn push_pinned(&self, task: Runnable) -> Result<(), Runnable> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        if inbox.closed {
            return Err(task);
        }
        inbox.tasks.push_back(task);
        self.inbox_len.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Moves inbox tasks into `into` (called by the shard itself).
    pub(crate) fn drain_inbox(&self, into: &mut VecDeque<Runnable>) {
        if self.inbox_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        self.inbox_len.store(0, Ordering::Release);
        into.append(&mut inbox.tasks);
    }

    /// Closes the inbox and returns what was left in it.
    pub(crate) fn close_inbox(&self) -> VecDeque<Runnable> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        inbox.closed = true;
        self.inbox_len.store(0, Ordering::Release);
        mem::take(&mut inbox.tasks)
    }

    pub(crate) fn has_inbox(&self) -> bool {
        self.inbox_len.load(Ordering::SeqCst) != 0
    }

    /// Stealable tasks queued on this shard (its deque and its injector).
    pub(crate) fn stealable_len(&self) -> usize {
        self.injector.len() + self.stealer.get().map_or(0, |s| s.len())
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
