//! Provided-buffer rings: a pool of buffers the kernel picks from when a
//! receive completes, so an idle connection holds no read buffer of its own.
//!
//! A [`BufRing`] is registered on one shard's io_uring ring (the shard
//! whose thread creates it) and serves multishot receives submitted on that
//! ring (connections pinned to their session shard). The kernel takes a
//! buffer when data arrives and names it in the CQE; the receiver gets it
//! as a [`RingBuf`], which goes back to the ring when dropped. When the ring
//! runs dry the kernel ends the receive with `ENOBUFS`; the data stays in
//! the socket, and the receive is re-armed once a buffer comes back:
//! backpressure, not loss.

use std::alloc::{self, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use io_uring::types::BufRingEntry;

use crate::driver::remote;
use crate::scheduler::Inner;
use crate::shard::local;

/// Group ids handed out to rings, in turn. After 65,535 rings they wrap;
/// an id still held by a live ring on the same io_uring is then refused
/// (`EEXIST`) and the next one is tried.
static NEXT_GROUP: AtomicU16 = AtomicU16::new(1);

/// How many group ids a new ring tries before it gives up.
const GROUP_ATTEMPTS: usize = 4096;

/// A provided-buffer ring registered on the current shard's io_uring.
///
/// ```
/// use spargio_rt::io::BufRing;
/// spargio_rt::run(|_| async {
///     let ring = BufRing::new(64, 4096).unwrap();
///     assert_eq!(ring.available(), 64);
///     assert_eq!(ring.buf_len(), 4096);
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct BufRing {
    pub(crate) inner: Arc<RingInner>,
}

pub(crate) struct RingInner {
    pub(crate) bgid: u16,
    entries: u16,
    buf_len: usize,
    /// The ring of `io_uring_buf` entries the kernel reads (page aligned).
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    /// The buffers themselves, `entries * buf_len` bytes.
    bufs: *mut u8,
    bufs_layout: Layout,
    /// The producer side (our tail); buffers come back from any thread.
    tail: Mutex<u16>,
    available: AtomicUsize,
    /// Receives waiting for a buffer to come back, each under an id of
    /// its own (so a receive dropped while it waits takes itself off).
    waiters: Mutex<Waiters>,
    owner: (Arc<Inner>, usize),
    /// Whether the kernel took the ring under `bgid`: only then does the
    /// drop unregister `bgid` (which may belong to another ring otherwise).
    registered: bool,
}

// SAFETY: the raw pointers lead to heap memory this value owns; the kernel
// reads the ring and writes the buffers, and we write the ring only under
// the `tail` lock and read a buffer only while a `RingBuf` owns its id.
unsafe impl Send for RingInner {}
// SAFETY: as above; shared access goes through the lock and atomics.
unsafe impl Sync for RingInner {}

impl BufRing {
    /// Registers a ring of `entries` buffers of `buf_len` bytes each on the
    /// current shard's io_uring. `entries` must be a power of two up to
    /// 32768. Fails off a shard thread.
    pub fn new(entries: u16, buf_len: usize) -> io::Result<BufRing> {
        if entries == 0 || !entries.is_power_of_two() || entries > 32768 || buf_len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spargio: a buffer ring needs a power-of-two entry count (1..=32768) and non-empty buffers",
            ));
        }
        // The kernel takes a buffer's length as a u32, and all the buffers
        // are one allocation.
        let fits = u32::try_from(buf_len).is_ok()
            && usize::from(entries)
                .checked_mul(buf_len)
                .is_some_and(|total| total <= isize::MAX as usize);
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spargio: buffer ring too large (each buffer at most 4 GiB, all of them addressable)",
            ));
        }
        local::with_current(|l| Self::register(l, entries, buf_len)).unwrap_or_else(|| {
            Err(io::Error::other(
                "spargio: a buffer ring is registered on a shard's ring: create it inside a task",
            ))
        })
    }

    fn register(l: &local::LocalShard, entries: u16, buf_len: usize) -> io::Result<BufRing> {
        // The kernel takes a ring only at a page boundary: 4 KiB on x86,
        // 16 or 64 KiB on some arm64 and ppc64 kernels.
        let ring_layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<BufRingEntry>(),
            page_size(),
        )
        .map_err(io::Error::other)?;
        let bufs_layout = Layout::from_size_align(usize::from(entries) * buf_len, 64)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (checked in `new`).
        let (ring, bufs) = unsafe {
            (
                alloc::alloc_zeroed(ring_layout).cast::<BufRingEntry>(),
                alloc::alloc(bufs_layout),
            )
        };
        if ring.is_null() || bufs.is_null() {
            // SAFETY: each non-null pointer was just allocated with its
            // layout and is referenced nowhere else.
            unsafe {
                if !ring.is_null() {
                    alloc::dealloc(ring.cast(), ring_layout);
                }
                if !bufs.is_null() {
                    alloc::dealloc(bufs, bufs_layout);
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "spargio: could not allocate a buffer ring of {entries} buffers of {buf_len} bytes"
                ),
            ));
        }
        let mut inner = RingInner {
            bgid: 0,
            entries,
            buf_len,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: Mutex::new(0),
            available: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters::default()),
            owner: (l.inner.clone(), l.index),
            registered: false,
        };
        for attempt in 1..=GROUP_ATTEMPTS {
            let bgid = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
            if bgid == 0 {
                continue;
            }
            // The memory lives until `RingInner` drops, which needs every op
            // selecting from this group gone (each holds an `Arc`), so the
            // kernel no longer touches it; while the group stays registered
            // (its shard gone) the kernel only keeps the pages pinned.
            // SAFETY: `ring` is page aligned and `entries` entries long, and
            // outlives every use the kernel makes of it (above); a failed
            // registration leaves nothing registered.
            let res = unsafe {
                l.ring.borrow().submitter().register_buf_ring_with_flags(
                    ring as u64,
                    entries,
                    bgid,
                    0,
                )
            };
            match res {
                Ok(()) => {
                    inner.bgid = bgid;
                    inner.registered = true;
                    break;
                }
                // Another live ring holds this id: try the next.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt < GROUP_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
        if !inner.registered {
            return Err(io::Error::other(
                "spargio: no free buffer group id for a new buffer ring",
            ));
        }
        let ring = BufRing {
            inner: Arc::new(inner),
        };
        for bid in 0..entries {
            ring.inner.give_back(bid);
        }
        Ok(ring)
    }

    /// Buffers in the ring right now: not filled by the kernel, whether a
    /// filled one is held by its receiver or still queued for it.
    pub fn available(&self) -> usize {
        self.inner.available()
    }

    /// Bytes per buffer.
    pub fn buf_len(&self) -> usize {
        self.inner.buf_len
    }

    /// Buffers in all.
    pub fn entries(&self) -> u16 {
        self.inner.entries
    }
}

impl RingInner {
    /// Puts buffer `bid` back in the ring and wakes receivers waiting for
    /// buffers.
    pub(crate) fn give_back(&self, bid: u16) {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let mask = self.entries - 1;
        // SAFETY: `tail & mask` indexes inside the ring's `entries` slots;
        // the slot is free (the kernel consumed it before handing out
        // `bid`), and `bid < entries` so the address is inside `bufs`.
        unsafe {
            let e = &mut *self.ring.add(usize::from(*tail & mask));
            e.set_addr(self.bufs.add(usize::from(bid) * self.buf_len) as u64);
            e.set_len(self.buf_len as u32);
            e.set_bid(bid);
        }
        *tail = tail.wrapping_add(1);
        // Counted before the kernel can take it: a receive taking it on
        // another thread (`taken`) must never find the count at 0.
        self.available.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the tail field lives in the ring's first entry; the
        // release store publishes the entry written above to the kernel.
        unsafe {
            let t = BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*t).store(*tail, Ordering::Release);
        }
        drop(tail);
        let waiters = std::mem::take(
            &mut self
                .waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .listed,
        );
        for (_, w) in waiters {
            w.wake();
        }
    }

    /// Whether this thread is the shard the ring is registered on.
    pub(crate) fn is_local(&self) -> bool {
        local::with_current(|l| l.index == self.owner.1 && Arc::ptr_eq(&l.inner, &self.owner.0))
            .unwrap_or(false)
    }

    /// Buffers the kernel can fill right now.
    pub(crate) fn available(&self) -> usize {
        self.available.load(Ordering::Acquire)
    }

    /// Records that the kernel took a buffer.
    pub(crate) fn taken(&self) {
        self.available.fetch_sub(1, Ordering::AcqRel);
    }

    /// Registers `waker` to be woken when a buffer comes back; returns
    /// false if one is already available. `id` is the caller's place in
    /// the list (kept between polls; give it to
    /// [`forget_waiter`](Self::forget_waiter) when the caller goes away
    /// while still waiting).
    pub(crate) fn wait_for_buffer(&self, waker: &Waker, id: &mut Option<u64>) -> bool {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if self.available.load(Ordering::Acquire) > 0 {
            return false;
        }
        // A task that polls again while it waits is listed once (the list
        // is bounded by the receives waiting, not by their polls).
        let listed = id.and_then(|id| w.listed.iter_mut().find(|(i, _)| *i == id));
        match listed {
            Some((_, listed)) => {
                if !listed.will_wake(waker) {
                    *listed = waker.clone();
                }
            }
            None => {
                let new = w.next_id;
                w.next_id += 1;
                w.listed.push((new, waker.clone()));
                *id = Some(new);
            }
        }
        true
    }

    /// Takes the waiter `id` off the list, if it is still there: its
    /// receive was dropped while it waited (with the ring dry and
    /// connections coming and going, the list would otherwise keep every
    /// dead task's waker, and the task's memory, until a buffer came
    /// back).
    pub(crate) fn forget_waiter(&self, id: u64) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = w.listed.iter().position(|(i, _)| *i == id) {
            w.listed.swap_remove(at);
        }
    }

    /// The bytes of buffer `bid`.
    ///
    /// # Safety
    /// The caller owns `bid` (the kernel handed it out and it has not been
    /// given back), and `len <= buf_len`.
    pub(crate) unsafe fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        // SAFETY: per the caller's contract the range is ours and written.
        unsafe { std::slice::from_raw_parts(self.bufs.add(usize::from(bid) * self.buf_len), len) }
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Unregister on the owner's thread (a single-issuer ring refuses
        // other threads), then free. From another thread, `run_on` is
        // refused from the start of the shard's `retire_ops` on (its remote
        // queue is closed), maybe with receives from this ring still in
        // flight. Freeing the memory here is sound anyway: every receive op
        // keeps an `Arc<RingInner>`, so this drop runs only once the last
        // one is gone (the op table drops its op at the final CQE, or leaks
        // it), and the kernel writes into a buffer only for an op in flight.
        let mem = RingMemory {
            ring: self.ring,
            ring_layout: self.ring_layout,
            bufs: self.bufs,
            bufs_layout: self.bufs_layout,
        };
        let bgid = self.bgid;
        let registered = self.registered;
        let f: Box<dyn FnOnce(&local::LocalShard) + Send> = Box::new(move |l| {
            if registered {
                let _ = l.ring.borrow().submitter().unregister_buf_ring(bgid);
            }
            drop(mem);
        });
        let (inner, shard) = &self.owner;
        if let Err(f) = remote::run_on(inner, *shard, f) {
            // The shard is gone; dropping the closure frees the memory.
            drop(f);
        }
    }
}

/// The memory of a buffer ring, freed on drop.
struct RingMemory {
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    bufs: *mut u8,
    bufs_layout: Layout,
}

// SAFETY: plain heap allocations owned by this value alone.
unsafe impl Send for RingMemory {}

impl Drop for RingMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `BufRing::register` with these layouts, and
        // freed only here, once the kernel no longer uses them.
        unsafe {
            alloc::dealloc(self.ring.cast(), self.ring_layout);
            alloc::dealloc(self.bufs, self.bufs_layout);
        }
    }
}

/// A received buffer from a [`BufRing`]; derefs to the bytes received and
/// goes back to the ring when dropped.
pub struct RingBuf {
    ring: Arc<RingInner>,
    bid: u16,
    len: usize,
}

impl RingBuf {
    pub(crate) fn new(ring: Arc<RingInner>, bid: u16, len: usize) -> RingBuf {
        RingBuf { ring, bid, len }
    }
}

impl std::ops::Deref for RingBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: this `RingBuf` owns `bid` until it drops, and the kernel
        // wrote `len <= buf_len` bytes into it.
        unsafe { self.ring.bytes(self.bid, self.len) }
    }
}

impl std::fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.give_back(self.bid);
    }
}

/// The receives waiting for a buffer of one ring.
#[derive(Default)]
struct Waiters {
    listed: Vec<(u64, Waker)>,
    next_id: u64,
}

/// The kernel's page size.
fn page_size() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|n| n.is_power_of_two())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that does nothing.
    struct NoWake;

    impl std::task::Wake for NoWake {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    #[test]
    fn a_task_polling_again_while_it_waits_is_listed_once() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let h = rt.handle();
        let listed = rt
            .block_on(h.spawn_local_on(crate::ShardId(0), || async {
                let ring = BufRing::new(1, 64).unwrap();
                // As if the kernel had taken the one buffer.
                ring.inner.taken();
                // The waker of the task polling (a clone of it each poll).
                let waker = std::task::Waker::from(std::sync::Arc::new(NoWake));
                let mut id = None;
                for _ in 0..1000 {
                    assert!(ring.inner.wait_for_buffer(&waker.clone(), &mut id));
                }
                let listed = ring.inner.waiters.lock().unwrap().listed.len();
                ring.inner.available.fetch_add(1, Ordering::AcqRel);
                listed
            }))
            .unwrap();
        assert_eq!(listed, 1);
    }

    #[test]
    fn a_waiter_that_goes_away_is_taken_off_the_list() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let h = rt.handle();
        let left = rt
            .block_on(h.spawn_local_on(crate::ShardId(0), || async {
                let ring = BufRing::new(1, 64).unwrap();
                ring.inner.taken();
                let mut ids = Vec::new();
                for _ in 0..100 {
                    let waker = std::task::Waker::from(std::sync::Arc::new(NoWake));
                    let mut id = None;
                    assert!(ring.inner.wait_for_buffer(&waker, &mut id));
                    ids.push(id.expect("listed"));
                }
                for id in &ids[..99] {
                    ring.inner.forget_waiter(*id);
                }
                let left: Vec<u64> = ring
                    .inner
                    .waiters
                    .lock()
                    .unwrap()
                    .listed
                    .iter()
                    .map(|(i, _)| *i)
                    .collect();
                ring.inner.available.fetch_add(1, Ordering::AcqRel);
                (left, ids[99])
            }))
            .unwrap();
        assert_eq!(
            left.0,
            vec![left.1],
            "only the waiter still there is listed"
        );
    }
}
