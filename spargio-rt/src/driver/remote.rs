//! Routing an op to its owner shard: directly on the shard's own thread,
//! through the shard's remote queue from anywhere else.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;

use io_uring::squeue::Entry;

use super::cell::Completion;
use super::remote_slots::RemoteSlots;
use crate::scheduler::Inner;
use crate::shard::{local, park};

/// A request handed to a shard by another thread.
pub(crate) enum RemoteReq {
    /// Register the op and submit its SQE.
    Submit(Entry, Arc<dyn Completion>),
    /// Cancel the op (its future was dropped on another thread): the
    /// op's tag read when the cancel was asked for, or 0 if the op was not
    /// registered yet (its `Submit` is then ahead in the same queue, and
    /// the tag is read after it).
    Cancel(u64, Arc<dyn Completion>),
    /// Run a closure on the shard's thread, with its ring (unregistering a
    /// buffer ring, which only the ring's own thread may do).
    Run(Box<dyn FnOnce(&crate::shard::local::LocalShard) + Send>),
}

/// The shard an op was submitted on.
///
/// A reference to the shard's own [`OwnerShard`], not a clone of the
/// runtime's `Arc<Inner>`: every op in flight holds one, and taking and
/// dropping a reference on the count of `Inner`, which every shard shares,
/// moved that cache line between the cores at every op. The shard's
/// `OwnerShard` count is touched by that shard's thread alone, except when
/// a stolen task's op is dropped elsewhere.
pub(crate) struct Owner(Arc<OwnerShard>);

/// What an op needs to reach its owner shard from anywhere: one per shard
/// (`LocalShard::owner`), made again for each op submitted from outside
/// the runtime.
pub(crate) struct OwnerShard {
    inner: Arc<Inner>,
    shard: usize,
}

impl OwnerShard {
    /// The owner record of shard `shard` of `inner`.
    pub(crate) fn new(inner: Arc<Inner>, shard: usize) -> Arc<OwnerShard> {
        Arc::new(OwnerShard { inner, shard })
    }
}

/// Submits `op` on the current shard's ring, or hands it to a shard of the
/// runtime a `block_on` on this thread entered. `Ok(None)`: the shard's op
/// table is full (off the shards: the runtime's `RemoteSlots` are); `waker`
/// is woken when a slot frees up. An error means the
/// op reached no shard (there is no runtime here, or it has shut down, or,
/// `native`, its SQE sets a flag `driver::flags` refuses), so the caller
/// still owns it alone.
pub(crate) fn submit(
    op: Arc<dyn Completion>,
    entry: impl FnOnce() -> Entry,
    native: bool,
    waker: &Waker,
) -> io::Result<Option<Owner>> {
    let mut entry = Some(entry);
    let mut op = Some(op);
    let here = local::with_current(|l| {
        let e = entry.take().expect("once");
        let op = op.take().expect("once");
        Ok(l.submit_op(op, e, native, waker)?
            .map(|()| Owner(l.owner.clone())))
    });
    if let Some(r) = here {
        return r;
    }
    let Some(handle) = crate::block_on::entered() else {
        return Err(io::Error::other(
            "spargio: I/O must run on a spargio runtime: await it inside a task, \
             or inside Runtime::block_on",
        ));
    };
    let inner = handle.inner;
    let op = op.take().expect("once");
    let Some(shard) = remote_slot(&inner, &op, waker)? else {
        return Ok(None);
    };
    // Whatever queue for a slot the op waited in (a shard's table, when
    // it ran on one before, or another `RemoteSlots`), it waits there no
    // more.
    op.op_tag().slot_queue.store(0, Ordering::Release);
    // Building the entry may run user code (`uring::submit`'s builder):
    // should it panic, or its SQE be refused, or the shard be gone, the
    // slot goes back.
    let slot = SlotGuard(&inner.remote_slots);
    let e = (entry.take().expect("once"))();
    if native {
        super::check_native(&e)?;
    }
    if inner.shards[shard]
        .push_remote(RemoteReq::Submit(e, op), &inner.remote_slots)
        .is_err()
    {
        // The shard has exited, as every shard does only once the runtime
        // shuts down. An error, not a failed op: a multishot op ended by
        // `ECANCELED` would be re-armed, and refused again, for ever.
        return Err(shut_down());
    }
    // The shard gives the slot back at the op's last CQE.
    std::mem::forget(slot);
    park::wake(&inner, shard);
    Ok(Some(Owner(OwnerShard::new(inner, shard))))
}

/// Takes a slot for `op` among the runtime's slots for ops from outside
/// it and picks the shard to run it (a different one each time).
/// `Ok(None)` when every slot is taken: `op` then waits in their queue,
/// and `waker` is woken when a slot frees up.
fn remote_slot(
    inner: &Arc<Inner>,
    op: &Arc<dyn Completion>,
    waker: &Waker,
) -> io::Result<Option<usize>> {
    let shard = inner.next_search_start() % inner.shards.len();
    if inner.remote_slots.acquire(op, waker) {
        return Ok(Some(shard));
    }
    // Queued, then the look at the flag: a shard that exits sets it before
    // it wakes the queue (`retire_ops`), so this either sees it or is woken.
    if inner.shards[shard].is_remote_closed() {
        return Err(shut_down());
    }
    Ok(None)
}

/// Gives back a slot taken from `RemoteSlots` unless forgotten.
struct SlotGuard<'a>(&'a RemoteSlots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

fn shut_down() -> io::Error {
    io::Error::other("spargio: the runtime has shut down; it runs no more I/O")
}

/// Asks `op`'s owner shard to cancel it.
pub(crate) fn cancel(owner: &Owner, op: Arc<dyn Completion>) {
    let owner = &*owner.0;
    let done_here = local::with_current(|l| {
        // Tag 0: the op's remote Submit is still in this shard's queue (it
        // came from a thread outside the runtime); the cancel must go in
        // behind it, below, or it would be lost.
        let tag = op.tag();
        if l.index == owner.shard && Arc::ptr_eq(&l.inner, &owner.inner) && tag != 0 {
            l.cancel_op(tag);
            true
        } else {
            false
        }
    });
    if done_here == Some(true) {
        return;
    }
    // The tag now, not when the shard gets to the request: a multishot op
    // may have ended and been re-armed on another shard by then, and its
    // new tag would name an unrelated op on this ring.
    let tag = op.tag();
    // A refused push means the shard has exited, after reaping every op.
    if owner.inner.shards[owner.shard]
        .push_remote(RemoteReq::Cancel(tag, op), &owner.inner.remote_slots)
        .is_ok()
    {
        park::wake(&owner.inner, owner.shard);
    }
}

/// Runs `f` on shard `shard`'s thread: at once if this is that thread,
/// through its remote queue otherwise. Gives `f` back if the shard has
/// exited.
#[allow(clippy::type_complexity)]
pub(crate) fn run_on(
    inner: &Arc<Inner>,
    shard: usize,
    f: Box<dyn FnOnce(&crate::shard::local::LocalShard) + Send>,
) -> Result<(), Box<dyn FnOnce(&crate::shard::local::LocalShard) + Send>> {
    let mut f = Some(f);
    let here = local::with_current(|l| {
        if l.index == shard && Arc::ptr_eq(&l.inner, inner) {
            (f.take().expect("once"))(l);
            true
        } else {
            false
        }
    });
    if here == Some(true) {
        return Ok(());
    }
    match inner.shards[shard]
        .push_remote(RemoteReq::Run(f.take().expect("once")), &inner.remote_slots)
    {
        Ok(()) => {
            park::wake(inner, shard);
            Ok(())
        }
        Err(RemoteReq::Run(f)) => Err(f),
        Err(_) => unreachable!("gave back what was pushed"),
    }
}
