//! The native extension API: submit any io_uring operation on the current
//! shard's ring, with the data it points into kept alive until its CQE.
//!
//! This is how the runtime's own fs, net and process ops are built, opened
//! up for opcodes it does not wrap. An op runs on the ring of the shard
//! whose thread first polls it (inside `Runtime::block_on`, on a shard the
//! runtime picks). Dropping the future in flight submits an
//! `IORING_OP_ASYNC_CANCEL` and keeps `data` alive until the kernel's final
//! CQE; only then is it dropped, on the event loop of the shard that owns
//! the op: its destructor must not block (the shard's other tasks wait
//! meanwhile). Should it panic, the panic is reported and goes no further.
//!
//! ## Safety contract
//!
//! `submit` and `submit_multishot` are `unsafe` because the kernel will
//! read and write whatever the SQE points at. The caller promises that the
//! SQE built by `build`:
//!
//! 1. points only into memory owned by `data` (its heap allocations, or
//!    `data` itself: `build` runs once `data` is at the address it keeps
//!    until the final CQE) or into `'static` memory;
//! 2. names only fds that stay open until the final CQE (own them in
//!    `data`, or make sure they outlive the op);
//! 3. does not set `user_data` (the runtime sets it) and, for
//!    `submit`, asks for at most one CQE, except `IORING_OP_SEND_ZC`-style
//!    ops whose extra CQE is a notification (so no opcode-level multishot
//!    flag such as `IORING_ACCEPT_MULTISHOT` or `IORING_POLL_ADD_MULTI`
//!    with `submit`: use `submit_multishot`). Such an op resolves once its
//!    notification has come, to its result CQE with `IORING_CQE_F_MORE`
//!    cleared and `IORING_CQE_F_NOTIF` set; the notification's own `res`
//!    (`IORING_NOTIF_USAGE_ZC_COPIED` under
//!    `IORING_SEND_ZC_REPORT_USAGE`) is not handed out;
//! 4. does not act on the runtime's rings or on other ops: no
//!    `IORING_OP_MSG_RING` to a ring the runtime owns (a posted CQE
//!    carries whatever `user_data` and flags the sender chose, and could
//!    complete another task's op while the kernel still writes into its
//!    buffer), no `IORING_OP_ASYNC_CANCEL` by fd or with
//!    `IORING_ASYNC_CANCEL_ANY`/`ALL`, no `IORING_OP_POLL_REMOVE` that
//!    updates another op's `user_data`. Message rings of your own;
//!    cancel your own ops by dropping their futures;
//! 5. for `submit_multishot`, points the kernel's writes only at memory
//!    reached through raw pointers or `UnsafeCell` inside `data` (the
//!    builder and [`NativeMultishot::data`] see `data` through a shared
//!    reference while the kernel may be writing).
//!
//! The runtime refuses, with an [`io::ErrorKind::InvalidInput`] error
//! naming the flag and without submitting anything, an SQE that sets one
//! of these flags, which would break the ring for everyone else on it:
//!
//! - `IOSQE_IO_LINK`, `IOSQE_IO_HARDLINK`: the SQE queued next is
//!   whatever the runtime queues next (another task's op, the close of a
//!   dropped file), which would wait for this op and be cancelled if it
//!   fails (a cancelled close leaks its fd);
//! - `IOSQE_CQE_SKIP_SUCCESS`: a success would post no CQE, so the op
//!   would never complete and its slot would stay taken;
//! - `IOSQE_BUFFER_SELECT`: the runtime's buffer rings are taken and given
//!   back by its own receives (use [`crate::io::BufRing`] with
//!   `recv_multishot`).
//!
//! - `IOSQE_IO_DRAIN`: it would wait for every op in flight on the ring,
//!   the shard's own always-armed reads included, and hold up every SQE
//!   after it: the shard's I/O would stop.
//!
//! Other flags (`IOSQE_ASYNC`...) are the caller's business.
//!
//! ## Worked example: a safe `statx`
//!
//! [`crate::fs::metadata`] is built this way; here is the same idea,
//! spelled out:
//!
//! ```
//! use std::ffi::CString;
//! use io_uring::{opcode, types};
//!
//! struct Statx {
//!     path: CString,
//!     out: Box<libc::statx>,
//! }
//!
//! async fn file_size(path: &str) -> std::io::Result<u64> {
//!     let data = Statx {
//!         path: CString::new(path).unwrap(),
//!         // SAFETY: statx is plain old data; all-zero is a valid value.
//!         out: Box::new(unsafe { std::mem::zeroed() }),
//!     };
//!     // SAFETY: the SQE points at `d.path` and `d.out`, both owned by the
//!     // op's data; the dirfd is AT_FDCWD, which needs no keeping alive.
//!     let op = unsafe {
//!         spargio_rt::uring::submit(data, |d| {
//!             opcode::Statx::new(
//!                 types::Fd(libc::AT_FDCWD),
//!                 d.path.as_ptr(),
//!                 (&mut *d.out as *mut libc::statx).cast(),
//!             )
//!             .mask(libc::STATX_SIZE)
//!             .build()
//!         })
//!     };
//!     let (res, data) = op.await;
//!     res?.result()?;
//!     Ok(data.out.stx_size)
//! }
//!
//! let n = spargio_rt::run(|_| file_size("Cargo.toml")).unwrap().unwrap();
//! assert!(n > 0);
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use io_uring::squeue::Entry;

use crate::driver::{MultiData, MultiOp, Op, OpData};

pub use crate::driver::Cqe;

/// Drops `data`, the data of an op whose future let go of it (dropped in
/// flight, so the driver drops it at the final CQE, on the shard's event
/// loop): a panic in its destructor is reported and goes no further, as a
/// task's panic does not, instead of unwinding out of the event loop (which
/// shuts the runtime down).
fn drop_contained<T>(data: T) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(data)));
    if dropped.is_err() {
        crate::warn::warn_stderr!(
            "spargio: the destructor of a native op's data panicked (see the message above); \
             the panic went no further"
        );
    }
}

struct Native<T, F> {
    /// Taken when the op's future takes the data back.
    data: Option<T>,
    build: Option<F>,
}

impl<T, F> Drop for Native<T, F> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            drop_contained(data);
        }
    }
}

impl<T, F> OpData for Native<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut T) -> Entry + Send + 'static,
{
    const NATIVE: bool = true;

    fn entry(&mut self) -> Entry {
        let build = self.build.take().expect("entry built once");
        build(
            self.data
                .as_mut()
                .expect("op data present before submission"),
        )
    }
}

/// A single-shot native op; resolves to the CQE and `data` back.
/// See [`submit`].
#[must_use = "an op does nothing until awaited"]
pub struct NativeOp<T: Send + 'static, F: FnOnce(&mut T) -> Entry + Send + 'static> {
    op: Op<Native<T, F>>,
}

impl<T, F> Future for NativeOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut T) -> Entry + Send + 'static,
{
    type Output = (io::Result<Cqe>, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.op)
            .poll(cx)
            .map(|(res, mut native)| (res, native.data.take().expect("op data taken once")))
    }
}

/// Submits one SQE built by `build` from `data`, on the current shard's
/// ring. The outer `io::Result` fails only when there is no runtime to
/// submit on, or when the SQE sets a flag the runtime refuses
/// ([`io::ErrorKind::InvalidInput`], see the
/// [module's contract](self#safety-contract)); either way `data` comes
/// back and nothing was submitted. The kernel's own result is in
/// [`Cqe::res`] (see [`Cqe::result`]).
///
/// # Safety
/// See the [module's contract](self#safety-contract).
pub unsafe fn submit<T, F>(data: T, build: F) -> NativeOp<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut T) -> Entry + Send + 'static,
{
    NativeOp {
        op: Op::new(Native {
            data: Some(data),
            build: Some(build),
        }),
    }
}

struct NativeMulti<T, F> {
    /// Dropped through [`drop_contained`]; never moved out.
    data: std::mem::ManuallyDrop<T>,
    build: F,
}

impl<T, F> Drop for NativeMulti<T, F> {
    fn drop(&mut self) {
        // SAFETY: `data` is taken once, here, and not touched after.
        let data = unsafe { std::mem::ManuallyDrop::take(&mut self.data) };
        drop_contained(data);
    }
}

impl<T, F> MultiData for NativeMulti<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Entry + Send + Sync + 'static,
{
    const NATIVE: bool = true;

    fn entry(&self) -> Entry {
        (self.build)(&self.data)
    }

    fn orphaned(&self, _cqe: Cqe) {}
}

/// CQEs a [`NativeMultishot`] lets wait for its consumer before it stops
/// the op (see [`NativeMultishot::max_queued`]), the same as the runtime's
/// own multishot accept.
pub const DEFAULT_MULTISHOT_MAX_QUEUED: usize = 256;

/// A multishot native op: a stream of CQEs. See [`submit_multishot`].
///
/// At most [`max_queued`](Self::max_queued) CQEs (default
/// [`DEFAULT_MULTISHOT_MAX_QUEUED`]) wait for [`next_cqe`](Self::next_cqe):
/// a consumer that falls behind makes the runtime cancel the op rather
/// than queue without bound.
pub struct NativeMultishot<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Entry + Send + Sync + 'static,
{
    op: MultiOp<NativeMulti<T, F>>,
    ended: bool,
}

impl<T, F> NativeMultishot<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Entry + Send + Sync + 'static,
{
    /// The next CQE; `None` once the kernel has ended the op (a CQE without
    /// `IORING_CQE_F_MORE` was delivered, or it was cancelled). Call
    /// [`rearm`](Self::rearm) to submit it again. `Some(Err(_))` when the
    /// op could not be submitted (no runtime, or an SQE flag the runtime
    /// refuses, see the [module's contract](self#safety-contract)); the
    /// stream has then ended too.
    pub fn next_cqe(&mut self) -> impl Future<Output = Option<io::Result<Cqe>>> + '_ {
        std::future::poll_fn(move |cx| {
            if self.ended {
                return Poll::Ready(None);
            }
            match self.op.poll_next(cx) {
                Poll::Ready(Ok(Some(c))) => Poll::Ready(Some(Ok(c))),
                Poll::Ready(Ok(None)) => {
                    self.ended = true;
                    Poll::Ready(None)
                }
                Poll::Ready(Err(e)) => {
                    self.ended = true;
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Lets [`next_cqe`](Self::next_cqe) submit the op again after it ended.
    pub fn rearm(&mut self) {
        self.ended = false;
    }

    /// At most `n` CQEs (at least 1; default
    /// [`DEFAULT_MULTISHOT_MAX_QUEUED`]) wait for
    /// [`next_cqe`](Self::next_cqe). When the `n`th is queued the runtime
    /// cancels the op: whatever the kernel has not delivered yet stays at
    /// its source (connections in the listen backlog, for instance).
    /// Nothing is lost: `next_cqe` hands out every CQE queued before the
    /// cancel landed (so a few more than `n` may wait: those the kernel
    /// posted before it saw the cancel, such as a whole backlog accepted
    /// at once), then returns `None` as for any op the kernel ended (the
    /// cancel's own `ECANCELED` is not handed out; [`capped`](Self::capped)
    /// tells this end from the kernel's); call [`rearm`](Self::rearm) to
    /// submit it again and go on. Should the cancel fail (an op running in
    /// a kernel worker), another goes out once the queue is `n` longer
    /// than it was at the last one.
    ///
    /// `usize::MAX` never cancels, and lets the queue grow without bound.
    pub fn max_queued(&mut self, n: usize) -> &mut Self {
        self.op.set_queue_cap(n);
        self
    }

    /// Whether the runtime cancelled the op since it was last armed
    /// because [`max_queued`](Self::max_queued) CQEs were waiting: after
    /// [`next_cqe`](Self::next_cqe) returned `None`, this tells a stop for
    /// the cap (call [`rearm`](Self::rearm) and go on) from the kernel
    /// ending the op. If the kernel ended it with an error at the same
    /// time, that error's CQE came out of `next_cqe` before the `None`.
    pub fn capped(&self) -> bool {
        self.op.capped()
    }

    /// CQEs waiting for [`next_cqe`](Self::next_cqe) (how far behind the
    /// consumer is).
    pub fn queued(&self) -> usize {
        self.op.queued()
    }

    /// The op's data.
    pub fn data(&self) -> &T {
        &self.op.data().data
    }
}

/// Submits a multishot SQE (multishot accept, poll, timeout...; not a
/// buffer-selecting recv, see the module docs) built by
/// `build` from `data`; every CQE it posts comes out of
/// [`NativeMultishot::next_cqe`]. At most
/// [`DEFAULT_MULTISHOT_MAX_QUEUED`] CQEs wait for the consumer before the
/// op is cancelled (see [`NativeMultishot::max_queued`]). Dropping the
/// stream cancels the op; CQEs queued or arriving after that are dropped
/// (`data` is dropped after the last), and whatever they hand over (an
/// accepted fd, say) is not released for you.
///
/// # Safety
/// See the [module's contract](self#safety-contract); the SQE may post many
/// CQEs, and `build` may be called again to re-arm it.
pub unsafe fn submit_multishot<T, F>(data: T, build: F) -> NativeMultishot<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Entry + Send + Sync + 'static,
{
    let op = MultiOp::new(NativeMulti {
        data: std::mem::ManuallyDrop::new(data),
        build,
    });
    op.set_queue_cap(DEFAULT_MULTISHOT_MAX_QUEUED);
    NativeMultishot { op, ended: false }
}
