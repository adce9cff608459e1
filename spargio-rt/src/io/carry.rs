//! What a cancelled stream read took off its stream, kept for the next
//! read, so that dropping a read's future never loses bytes.
//!
//! A read of a byte stream (a socket's `recv`, a pipe's or a file's read at
//! the current position) takes bytes off the kernel's queue when it
//! completes. If its future is dropped after that (a `timeout`, a lost
//! `select`), or while it is in flight and the kernel completes it before
//! the cancel lands, the bytes are in a buffer nobody will look at. Each
//! fd has a [`ReadCarry`]: the op's orphan hook keeps those bytes (or the
//! error it met) there, and the next read of the fd hands them out before
//! it reads again.
//!
//! Order: a read abandoned in flight may still complete, so until its
//! final completion is reaped a new read of the fd waits for it (one loop
//! turn for a cancel that lands; the read's own bytes otherwise). Stream
//! reads need `&mut` of their stream, so the reads counted here are one at
//! a time plus the abandoned ones; a read that starts while the count is
//! not zero waits for the abandoned ones.
//!
//! State, one atomic word: the number of counted reads whose op is alive
//! (their op data, which holds a [`Counted`], not yet dropped), a bit
//! that says a task waits for that number to reach zero (its waker is in
//! the list under the mutex, pushed before the bit is set; the read whose
//! op data takes the number to zero wakes the whole list), and a bit that
//! says something is kept. A read whose word is zero (the usual case) pays
//! one load, one increment and one decrement.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{ready, Context, Poll, Waker};

use super::buf::IoBufMut;
use super::carry_whole::KeptWhole;

/// A reader waits for the live count to reach zero.
const WAITING: u32 = 1 << 30;
/// Bytes, an error or whole completions are kept.
pub(super) const KEPT: u32 = 1 << 31;
/// The live count.
const COUNT: u32 = WAITING - 1;

/// What an fd's cancelled reads took, and the count that orders new reads
/// after them.
#[derive(Debug, Default)]
pub(crate) struct ReadCarry {
    pub(super) state: AtomicU32,
    pub(super) kept: Mutex<Kept>,
    /// Datagram receives and accepts, and their ops, alive (see
    /// `io::carry_whole`).
    pub(super) whole_count: AtomicU64,
}

/// The bytes, then the error, that cancelled reads met, and the tasks
/// waiting for abandoned reads to be reaped.
#[derive(Debug, Default)]
pub(super) struct Kept {
    bytes: Vec<u8>,
    /// An errno (not `ECANCELED`) a cancelled read completed with.
    error: Option<i32>,
    /// More than one task may wait: a peek takes `&self`.
    pub(super) waiters: Vec<Waker>,
    /// Whole completions of cancelled datagram receives and accepts (see
    /// `io::carry_whole`), oldest first.
    pub(super) whole: VecDeque<KeptWhole>,
}

/// What [`ReadCarry::poll_take`] found.
pub(crate) enum Carried {
    /// Nothing kept: read the stream.
    Nothing,
    /// This many kept bytes were copied into the buffer.
    Bytes(usize),
    /// A kept error.
    Error(io::Error),
}

impl ReadCarry {
    /// Whether a read must go through [`poll_take`](Self::poll_take) first.
    pub(crate) fn busy(&self) -> bool {
        self.state.load(Ordering::Acquire) != 0
    }

    /// Counts a read whose op is about to be built; the returned guard,
    /// kept in the op's data, uncounts it when that data is dropped.
    pub(crate) fn count(&self) -> Counted {
        self.state.fetch_add(1, Ordering::AcqRel);
        Counted(self as *const ReadCarry)
    }

    /// Waits for abandoned reads to be reaped, then moves kept bytes into
    /// `buf` (from its start, up to its capacity) or hands out the kept
    /// error.
    pub(crate) fn poll_take<B: IoBufMut>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<Carried> {
        if !ready!(self.poll_settled(cx)) {
            return Poll::Ready(Carried::Nothing);
        }
        let mut kept = lock(&self.kept);
        let out = if !kept.bytes.is_empty() {
            let n = kept.bytes.len().min(buf.bytes_total());
            // SAFETY: `buf` is valid for writes of `bytes_total >= n` bytes
            // and owned by the caller, so it cannot overlap `kept.bytes`;
            // the `n` bytes are written before they are marked initialised.
            unsafe {
                std::ptr::copy_nonoverlapping(kept.bytes.as_ptr(), buf.stable_mut_ptr(), n);
                buf.set_init(n);
            }
            kept.bytes.drain(..n);
            Carried::Bytes(n)
        } else {
            match kept.error.take() {
                Some(errno) => Carried::Error(io::Error::from_raw_os_error(errno)),
                None => Carried::Nothing,
            }
        };
        if kept.bytes.is_empty() && kept.error.is_none() && kept.whole.is_empty() {
            kept.bytes = Vec::new();
            self.state.fetch_and(!KEPT, Ordering::AcqRel);
        }
        Poll::Ready(out)
    }

    /// The kept bytes, copied (for a peek: they stay kept), or the kept
    /// error when no bytes are, after abandoned reads are reaped.
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<u8>>> {
        if !ready!(self.poll_settled(cx)) {
            return Poll::Ready(Ok(Vec::new()));
        }
        let kept = lock(&self.kept);
        Poll::Ready(match (kept.bytes.is_empty(), kept.error) {
            (true, Some(errno)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(kept.bytes.clone()),
        })
    }

    /// Whether bytes or an error are kept for the next read.
    pub(crate) fn has_kept(&self) -> bool {
        self.state.load(Ordering::Acquire) & KEPT != 0
    }

    /// Waits for abandoned reads to be reaped; then whether something is
    /// kept.
    pub(crate) fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.state.load(Ordering::Acquire) & COUNT != 0 {
            {
                let mut kept = lock(&self.kept);
                if !kept.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    kept.waiters.push(cx.waker().clone());
                }
            }
            let s = self.state.fetch_or(WAITING, Ordering::AcqRel);
            if s & COUNT != 0 {
                return Poll::Pending;
            }
        }
        let s = self.state.fetch_and(!WAITING, Ordering::AcqRel);
        // Wakers left in the list (a waiter that settled on its own, or
        // gave up) are woken rather than dropped: another task's may be
        // among them, and a spurious wake-up costs only a poll.
        self.wake_all();
        Poll::Ready(s & KEPT != 0)
    }

    pub(super) fn wake_all(&self) {
        let waiters = {
            let mut kept = lock(&self.kept);
            if kept.waiters.is_empty() {
                return;
            }
            std::mem::take(&mut kept.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Keeps what a read nobody will look at completed with: `res` bytes
    /// at `data`, or `-errno`.
    ///
    /// # Safety
    ///
    /// When `res > 0`, `data` is valid for reads of `res` bytes.
    pub(crate) unsafe fn keep(&self, data: *const u8, res: i32) {
        if res == 0 || res == -libc::ECANCELED || res == -libc::EINTR || res == -libc::EAGAIN {
            // End of stream stays in the stream; the others took nothing.
            return;
        }
        let mut kept = lock(&self.kept);
        if res > 0 {
            // SAFETY: the caller's contract.
            let bytes = unsafe { std::slice::from_raw_parts(data, res as usize) };
            kept.bytes.extend_from_slice(bytes);
        } else if kept.error.is_none() {
            kept.error = Some(-res);
        }
        self.state.fetch_or(KEPT, Ordering::AcqRel);
    }

    fn uncount(&self) {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        if prev & WAITING != 0 && prev & COUNT == 1 {
            self.state.fetch_and(!WAITING, Ordering::AcqRel);
            self.wake_all();
        }
    }
}

impl Kept {
    /// Whether no stream bytes and no stream error are kept.
    pub(super) fn is_clear(&self) -> bool {
        self.bytes.is_empty() && self.error.is_none()
    }
}

pub(super) fn lock(m: &Mutex<Kept>) -> std::sync::MutexGuard<'_, Kept> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One counted read, held by its op's data: uncounted when dropped.
///
/// Declared in the op data before the fd clone that keeps the carry
/// alive, so it is dropped first.
pub(crate) struct Counted(*const ReadCarry);

// SAFETY: the pointer is only used to reach a `ReadCarry`, which is
// `Sync` (atomics and a mutex), from whichever thread drops the op data.
unsafe impl Send for Counted {}

impl Counted {
    /// The carry this read is counted in.
    pub(crate) fn carry(&self) -> &ReadCarry {
        // SAFETY: the carry lives in the fd's shared owner, which the op
        // data holding this guard keeps alive (its fd clone is dropped
        // after this field), so it outlives the guard.
        unsafe { &*self.0 }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.carry().uncount();
    }
}
