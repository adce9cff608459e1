//! How a shard names its ring to `io_uring_enter`: by an index into its
//! thread's registered ring fds (`IORING_REGISTER_RING_FDS`, Linux 5.18)
//! when the kernel takes the registration, else by the plain fd.
//!
//! A registered ring is entered without the kernel's fd lookup and without
//! taking and dropping a reference on the ring's file: in a process with
//! several threads that reference is an atomic on a cache line that other
//! shards' `MSG_RING` doorbells touch too (they look the target ring up by
//! its fd). Registrations belong to the thread that made them, which for a
//! shard is the only one that enters its ring (`SINGLE_ISSUER`).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{types, EnterFlags, IoUring};

/// `IORING_REGISTER_RING_FDS`.
const REGISTER_RING_FDS: libc::c_uint = 20;
/// `IORING_UNREGISTER_RING_FDS`.
const UNREGISTER_RING_FDS: libc::c_uint = 21;

/// `struct io_uring_rsrc_update`, the argument of both registrations.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// What a shard's thread passes to `io_uring_enter` for its ring.
#[derive(Debug)]
pub(crate) struct RingFd {
    /// The registered index, or the ring's fd.
    fd: RawFd,
    registered: bool,
}

impl RingFd {
    /// Registers `ring` with the calling thread, which must be the only
    /// one to enter it through the result; the plain fd if the kernel
    /// refuses (before 5.18, or no free registration slot).
    pub(crate) fn register(ring: &IoUring) -> RingFd {
        let fd = ring.as_raw_fd();
        let mut update = RsrcUpdate {
            // Any free index: the kernel writes the one it picked here.
            offset: u32::MAX,
            resv: 0,
            data: fd as u64,
        };
        // SAFETY: `update` is a valid `io_uring_rsrc_update` that lives
        // across the call, and the count (1) matches it.
        let res = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                fd,
                REGISTER_RING_FDS,
                &mut update as *mut RsrcUpdate,
                1u32,
            )
        };
        match i32::try_from(update.offset) {
            Ok(index) if res == 1 => RingFd {
                fd: index,
                registered: true,
            },
            _ => RingFd {
                fd,
                registered: false,
            },
        }
    }

    /// Whether enters go through a registered index.
    #[cfg(test)]
    pub(crate) fn is_registered(&self) -> bool {
        self.registered
    }

    /// Drops the registration (on the thread that made it), so it no
    /// longer holds the ring's file open: the ring closes when it is
    /// dropped, not when the thread exits. Enters use `ring`'s fd again.
    pub(crate) fn unregister(&mut self, ring: &IoUring) {
        if !self.registered {
            return;
        }
        let update = RsrcUpdate {
            offset: self.fd as u32,
            resv: 0,
            data: 0,
        };
        // SAFETY: as in `register`. A failure leaves the registration to
        // the thread's exit, which releases it.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring.as_raw_fd(),
                UNREGISTER_RING_FDS,
                &update as *const RsrcUpdate,
                1u32,
            )
        };
        self.fd = ring.as_raw_fd();
        self.registered = false;
    }

    /// One `io_uring_enter` on `ring`: submits every queued SQE and waits
    /// for `want` CQEs (until `args`'s timeout, if given). Asks for
    /// `GETEVENTS` when waiting, when `getevents`, or when the kernel has
    /// work that only such an enter does (deferred task work, overflowed
    /// CQEs to flush).
    pub(crate) fn enter(
        &self,
        ring: &IoUring,
        want: u32,
        getevents: bool,
        args: Option<&types::SubmitArgs<'_, '_>>,
    ) -> io::Result<usize> {
        // Only this thread submits to the ring (its single issuer), and the
        // shard takes submission queue handles only for a push or a length,
        // dropping them before it enters. Dropping this one writes back the
        // tail it read, unchanged.
        let (to_submit, taskrun, overflow) = {
            // SAFETY: no other submission queue handle is alive (above).
            let sq = unsafe { ring.submission_shared() };
            (sq.len() as u32, sq.taskrun(), sq.cq_overflow())
        };
        let mut flags = EnterFlags::empty();
        if want > 0 || getevents || taskrun || overflow {
            flags |= EnterFlags::GETEVENTS;
        }
        if self.registered {
            flags |= EnterFlags::REGISTERED_RING;
        }
        let (arg, size) = match args {
            Some(a) => {
                flags |= EnterFlags::EXT_ARG;
                (
                    a as *const types::SubmitArgs<'_, '_> as *const libc::c_void,
                    std::mem::size_of::<types::SubmitArgs<'_, '_>>(),
                )
            }
            None => (std::ptr::null(), 0),
        };
        // `fd` names this thread's ring (registered index or fd); the SQEs
        // it submits obey `LocalShard::push_sqe`'s rule; `arg` is null or
        // the `io_uring_getevents_arg` that `SubmitArgs` wraps (the io-uring
        // crate hands the kernel the same struct), alive across the call.
        // SAFETY: the arguments are valid for io_uring_enter, as said above.
        let res = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd,
                to_submit,
                want,
                flags.bits(),
                arg,
                size,
            )
        };
        if res < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(res as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use io_uring::opcode;

    use super::*;
    use crate::shard::ring;

    fn nop_round_trip(ring_fd: &RingFd, ring: &mut IoUring) {
        let nop = opcode::Nop::new().build().user_data(7);
        // SAFETY: a NOP points at no memory.
        unsafe { ring.submission().push(&nop) }.expect("room in the SQ");
        let entered = ring_fd.enter(ring, 1, false, None).expect("enter");
        assert_eq!(entered, 1, "one SQE submitted");
        let cqe = ring.completion().next().expect("the NOP's CQE");
        assert_eq!(cqe.user_data(), 7);
    }

    #[test]
    fn a_registered_ring_submits_and_waits_and_unregisters() {
        let mut ring = ring::create(8, 64, false).expect("io_uring works on this machine");
        ring::enable(&ring).expect("enable the ring");
        let mut ring_fd = RingFd::register(&ring);
        assert!(
            ring_fd.is_registered(),
            "this kernel (5.18+) takes ring fd registrations"
        );
        nop_round_trip(&ring_fd, &mut ring);
        ring_fd.unregister(&ring);
        assert!(!ring_fd.is_registered());
        nop_round_trip(&ring_fd, &mut ring);
    }

    #[test]
    fn a_wait_with_a_timeout_returns_when_it_passes() {
        let ring = ring::create(8, 64, false).expect("io_uring works on this machine");
        ring::enable(&ring).expect("enable the ring");
        let ring_fd = RingFd::register(&ring);
        let ts = types::Timespec::new().nsec(1_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        let err = ring_fd
            .enter(&ring, 1, false, Some(&args))
            .expect_err("nothing completes, so the wait times out");
        assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    }
}
