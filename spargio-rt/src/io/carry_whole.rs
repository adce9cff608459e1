//! What a cancelled datagram receive or accept took, kept whole for the
//! next one, so that dropping its future (a `timeout`, a lost `select`)
//! loses no datagram and resets no connection.
//!
//! A receive or an accept whose future is dropped while it is in flight
//! is cancelled, but the kernel may complete it first: the datagram is
//! then off the socket's queue, or the connection off the listen backlog,
//! in an op nobody will look at. Its orphan hook keeps the completion in
//! the fd's carry (the same one that keeps a stream read's bytes, see
//! `io::carry`), and the next receive (or accept) of the fd hands it out
//! before it asks the kernel.
//!
//! Order: a receive that starts while an abandoned one may still complete
//! waits until that one is reaped (one loop turn for a cancel that lands),
//! so what it kept comes first. Receives take `&self` and may run side by
//! side, so this is counted in one atomic word: receives alive (from
//! before their op is built until they return or are dropped) and their
//! ops alive (until the op's data is dropped, which for an abandoned op is
//! after its last completion). More ops than receives means some op has
//! lost its receive and is not yet reaped. A receive already waiting in
//! the kernel when another is abandoned does not see what that one kept:
//! the next receive to start gets it.
//!
//! At most [`MAX_KEPT`] completions are kept per fd; beyond that (that
//! many futures dropped with no receive in between) a datagram is
//! dropped, as a full socket buffer drops it, and a connection closed.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::carry::{lock, ReadCarry, KEPT};
use crate::net::addr::AddrBuf;

/// The most completions kept per fd.
pub(crate) const MAX_KEPT: usize = 64;

/// One op alive, in `whole_count`.
const OP: u64 = 1;
/// One receive (or accept) alive, in `whole_count`.
const CALL: u64 = 1 << 31;
/// Either field's mask, once shifted down.
const FIELD: u64 = CALL - 1;
/// A task waits for abandoned ops to be reaped (its waker is in the
/// carry's waiter list, pushed before the bit is set).
const WAITING: u64 = 1 << 62;

fn ops(word: u64) -> u64 {
    word & FIELD
}

fn calls(word: u64) -> u64 {
    (word >> 31) & FIELD
}

/// Some op has lost its call and is not yet reaped.
fn abandoned(word: u64) -> bool {
    ops(word) > calls(word)
}

/// One kept completion.
pub(crate) enum KeptWhole {
    /// A datagram: its bytes (as many as the receive's buffer took), its
    /// sender, the control messages and `msg_flags` the kernel wrote.
    Datagram {
        data: Vec<u8>,
        from: AddrBuf,
        control: Vec<u8>,
        flags: i32,
    },
    /// An accepted connection and its peer's address.
    Accepted { fd: OwnedFd, peer: AddrBuf },
    /// The errno a receive failed with (an error the socket reported, such
    /// as an ICMP refusal, is then told to the next receive).
    Failed(i32),
}

impl std::fmt::Debug for KeptWhole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeptWhole::Datagram { data, flags, .. } => f
                .debug_struct("Datagram")
                .field("len", &data.len())
                .field("flags", flags)
                .finish_non_exhaustive(),
            KeptWhole::Accepted { fd, .. } => f.debug_struct("Accepted").field("fd", fd).finish(),
            KeptWhole::Failed(errno) => f.debug_tuple("Failed").field(errno).finish(),
        }
    }
}

/// A receive (or accept) alive: counted from before its op is built until
/// it is dropped. Drop it after the op's data (see [`WholeOp`]).
pub(crate) struct WholeCall<'a>(&'a ReadCarry);

impl Drop for WholeCall<'_> {
    fn drop(&mut self) {
        // Fewer calls can only make ops outnumber them: nobody to wake.
        self.0.whole_count.fetch_sub(CALL, Ordering::AcqRel);
    }
}

/// An op of a receive (or accept) alive, held in the op's data: uncounted
/// when that data is dropped. Declared in the op data before the fd clone
/// that keeps the carry alive, so it is dropped first.
pub(crate) struct WholeOp(*const ReadCarry);

// SAFETY: the pointer only reaches a `ReadCarry`, which is `Sync` (atomics
// and a mutex), from whichever thread drops the op data.
unsafe impl Send for WholeOp {}

impl Drop for WholeOp {
    fn drop(&mut self) {
        // SAFETY: the carry lives in the fd's shared owner, which the op
        // data holding this guard keeps alive (its fd clone is dropped
        // after this field).
        let carry = unsafe { &*self.0 };
        let prev = carry.whole_count.fetch_sub(OP, Ordering::AcqRel);
        let now = prev - OP;
        if prev & WAITING != 0 && !abandoned(now) {
            carry.whole_count.fetch_and(!WAITING, Ordering::AcqRel);
            carry.wake_all();
        }
    }
}

impl ReadCarry {
    /// Waits until no abandoned receive (or accept) of this fd is left
    /// unreaped, then takes the oldest kept completion, if any.
    pub(crate) fn poll_take_whole(&self, cx: &mut Context<'_>) -> Poll<Option<KeptWhole>> {
        if abandoned(self.whole_count.load(Ordering::Acquire)) {
            {
                let mut kept = lock(&self.kept);
                if !kept.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    kept.waiters.push(cx.waker().clone());
                }
            }
            let word = self.whole_count.fetch_or(WAITING, Ordering::AcqRel);
            if abandoned(word) {
                return Poll::Pending;
            }
            // Reaped meanwhile. Wakers left in the list are woken rather
            // than dropped: another task's may be among them.
            self.whole_count.fetch_and(!WAITING, Ordering::AcqRel);
            self.wake_all();
        }
        if !self.has_kept() {
            return Poll::Ready(None);
        }
        let mut kept = lock(&self.kept);
        let whole = kept.whole.pop_front();
        if kept.whole.is_empty() && kept.is_clear() {
            self.state.fetch_and(!KEPT, Ordering::AcqRel);
        }
        Poll::Ready(whole)
    }

    /// Counts a receive (or accept) that is about to build its op.
    pub(crate) fn whole_call(&self) -> WholeCall<'_> {
        self.whole_count.fetch_add(CALL, Ordering::AcqRel);
        WholeCall(self)
    }

    /// Counts the op of a counted receive (or accept), for its data.
    pub(crate) fn whole_op(&self) -> WholeOp {
        self.whole_count.fetch_add(OP, Ordering::AcqRel);
        WholeOp(self as *const ReadCarry)
    }

    /// Keeps a completion nobody will look at for the next receive or
    /// accept. Failures that took nothing (the cancel itself, an
    /// interruption) are not kept.
    pub(crate) fn keep_whole(&self, whole: KeptWhole) {
        if let KeptWhole::Failed(errno) = whole {
            if matches!(errno, libc::ECANCELED | libc::EINTR | libc::EAGAIN) {
                return;
            }
        }
        let mut kept = lock(&self.kept);
        if kept.whole.len() >= MAX_KEPT {
            // Dropped here: a datagram is lost as the socket would lose
            // it, a connection closed.
            return;
        }
        kept.whole.push_back(whole);
        self.state.fetch_or(KEPT, Ordering::AcqRel);
    }
}
