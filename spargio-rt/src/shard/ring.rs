//! The ring driver: one io_uring per shard. `Runtime::build` creates every
//! ring (disabled) on the building thread, so setup errors come back from
//! `build` and every ring's fd is known before any shard runs; each shard
//! thread then enables its own ring, which makes it the ring's single
//! issuer.
//!
//! The ring's completions are told apart by `user_data`. The runtime's own
//! tags, defined here (and `UD_IGNORE` in `driver::user_data`), have bit 63
//! set:
//! - doorbells: `IORING_OP_MSG_RING` CQEs posted by another shard's ring;
//! - the shard's eventfd read, which threads outside the runtime use to wake
//!   it, and the cancel that retires it at shard exit;
//! - failures of this shard's own `MSG_RING` sends (successes post nothing,
//!   thanks to `IOSQE_CQE_SKIP_SUCCESS`);
//! - closes of files dropped on this shard (`UD_CLOSE`);
//! - cancel requests for dropped ops (`UD_IGNORE`), which carry nothing to
//!   act on.
//!
//! Every other CQE belongs to an I/O op of the `driver`: its tag, with bit
//! 63 clear, is a generation and a slot of the shard's op table, and
//! `LocalShard::dispatch_op` hands the CQE to its op.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

use crate::shard::ring_fd::RingFd;

/// `user_data` of a doorbell CQE that another shard posted into this ring.
pub(crate) const UD_DOORBELL: u64 = u64::MAX;
/// `user_data` of this shard's eventfd read.
pub(crate) const UD_EVENTFD: u64 = u64::MAX - 1;
/// `user_data` of the cancel that retires the eventfd read at shard exit.
pub(crate) const UD_CANCEL_EVENTFD: u64 = u64::MAX - 2;
/// `user_data` of an `IORING_OP_CLOSE` of a dropped file's fd (see
/// `shard::local::close_on_ring`).
pub(crate) const UD_CLOSE: u64 = u64::MAX - 4;
/// `user_data` base of this shard's own `MSG_RING` sends; the low 32 bits
/// carry the target shard, so a failed send can fall back to the eventfd.
pub(crate) const UD_MSG_SENT: u64 = 0xFFFF_FFFE_0000_0000;

/// Most CQ entries [`cq_entries`] sizes a ring for on account of
/// `max_ops_in_flight`: 4096 CQEs are 64 KiB per shard. Sizing for the
/// default 65,536 ops would take 1 MiB per shard for bursts the kernel's
/// overflow list absorbs anyway (see [`Entered::CqesLost`] for when it
/// cannot).
pub(crate) const CQ_ENTRIES_FOR_OPS_MAX: u32 = 4096;

/// The CQ size to ask for: room for one CQE per op in flight
/// (`max_ops_in_flight`) up to [`CQ_ENTRIES_FOR_OPS_MAX`], and never less
/// than twice the SQ (at least 8); the kernel rounds it up to a power of
/// two (and `IORING_SETUP_CLAMP` caps it at its own maximum).
pub(crate) fn cq_entries(sq_entries: u32, max_ops_in_flight: usize) -> u32 {
    let for_ops = u32::try_from(max_ops_in_flight)
        .unwrap_or(u32::MAX)
        .min(CQ_ENTRIES_FOR_OPS_MAX);
    sq_entries.saturating_mul(2).max(8).max(for_ops)
}

/// Creates a disabled ring with the best flags this kernel accepts, falling
/// back flag by flag. `SINGLE_ISSUER` and `DEFER_TASKRUN` require that only
/// one thread ever submits: the one that calls [`enable`], which is the
/// shard's own. The CQ is sized by [`cq_entries`].
pub(crate) fn create(
    entries: u32,
    max_ops_in_flight: usize,
    want_defer: bool,
) -> io::Result<IoUring> {
    let cq = cq_entries(entries, max_ops_in_flight);
    let attempts: [(bool, bool, bool); 4] = [
        // (single_issuer, coop_taskrun, defer_taskrun)
        (true, true, want_defer),
        (true, true, false),
        (false, true, false),
        (false, false, false),
    ];
    let mut last_err = None;
    for (single, coop, defer) in attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq).setup_clamp().setup_r_disabled();
        if single {
            b.setup_single_issuer();
        }
        if coop {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
        if defer {
            b.setup_defer_taskrun();
        }
        match b.build(entries) {
            Ok(ring) => return Ok(ring),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(setup_error(e)),
        }
    }
    Err(setup_error(last_err.unwrap_or_else(|| {
        io::Error::from_raw_os_error(libc::EINVAL)
    })))
}

/// Enables a ring made by [`create`]; the calling thread becomes its
/// submitter.
pub(crate) fn enable(ring: &IoUring) -> io::Result<()> {
    ring.submitter().register_enable_rings()
}

/// Path of the sysctl that can switch io_uring off.
pub(crate) const DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Turns an `io_uring_setup` failure into an error that says why.
pub(crate) fn setup_error(e: io::Error) -> io::Error {
    let sysctl = std::fs::read_to_string(DISABLED_SYSCTL).ok();
    describe_setup_error(e, sysctl.as_deref())
}

/// The pure part of [`setup_error`], given the sysctl's contents (if
/// readable). The kernel's error is the result's
/// [`source`](std::error::Error::source), so a caller can still match on
/// the errno (`ENOSYS`, `EPERM`) to fall back to another runtime.
pub(crate) fn describe_setup_error(e: io::Error, sysctl: Option<&str>) -> io::Error {
    let msg = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "spargio: io_uring is not available: this kernel has no io_uring_setup (ENOSYS); \
             spargio needs Linux 6.1 or newer with io_uring enabled"
                .to_string()
        }
        Some(libc::EPERM) | Some(libc::EACCES) => match sysctl.map(str::trim) {
            Some(v) if v != "0" => format!(
                "spargio: io_uring is disabled on this machine ({DISABLED_SYSCTL} is {v}; \
                 0 enables it for everyone, 1 only for processes in the io_uring group): {e}"
            ),
            _ => format!(
                "spargio: io_uring_setup was refused ({e}); a seccomp policy (containers often \
                 block io_uring) or {DISABLED_SYSCTL} may forbid it"
            ),
        },
        Some(libc::ENOMEM) => format!(
            "spargio: io_uring_setup ran out of locked memory ({e}); raise RLIMIT_MEMLOCK or \
             use fewer ring entries"
        ),
        _ => format!("spargio: could not set up an io_uring ring: {e}"),
    };
    crate::explained::explained(msg, e)
}

/// A `MSG_RING` doorbell aimed at `target_fd`, tagged with the target index
/// so a failure can be retried through the eventfd.
pub(crate) fn doorbell_entry(target_fd: RawFd, target_index: usize) -> squeue::Entry {
    opcode::MsgRingData::new(types::Fd(target_fd), 0, UD_DOORBELL, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(UD_MSG_SENT | target_index as u64)
}

/// An 8-byte read of the shard's eventfd into `buf`.
pub(crate) fn eventfd_read_entry(efd: RawFd, buf: *mut u64) -> squeue::Entry {
    opcode::Read::new(types::Fd(efd), buf.cast(), 8)
        .build()
        .user_data(UD_EVENTFD)
}

/// Cancels the armed eventfd read (shard exit).
pub(crate) fn cancel_eventfd_entry() -> squeue::Entry {
    opcode::AsyncCancel::new(UD_EVENTFD)
        .build()
        .user_data(UD_CANCEL_EVENTFD)
}

/// How an `io_uring_enter` went, short of an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entered {
    /// Submitted (and waited, if asked), or the wait ended early (timeout,
    /// signal): the caller just goes on.
    Done,
    /// `EBUSY`: the CQ backed up; the caller reaps and submits again.
    Busy,
    /// `EBADR`: the kernel dropped at least one CQE, having found no memory
    /// for it in its overflow list (the CQ was full). The condition is
    /// cleared by reporting it. An op whose CQE was lost is never told it
    /// completed: its future hangs (and its buffers stay with the op
    /// table) unless it is dropped, and at shard exit it counts as one the
    /// kernel never completed. The shard counts the loss
    /// (`ShardStats::cqes_lost`) and goes on.
    CqesLost,
}

/// The longest a single wait in `io_uring_enter` asks for.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Submits what is queued and, when `wait` is set, blocks until one CQE
/// arrives or `timeout` passes (at most [`MAX_WAIT`] at a time). `ring_fd`
/// is how this thread names `ring` to the kernel.
pub(crate) fn enter(
    ring: &IoUring,
    ring_fd: &RingFd,
    wait: bool,
    timeout: Option<Duration>,
) -> io::Result<Entered> {
    let res = if wait {
        match timeout {
            Some(d) => {
                // The kernel adds the timeout to its clock without
                // saturating: one of about 292 years or more wraps into the
                // past and the wait returns at once, so an idle shard with
                // a far timer would spin. A day is far enough; the loop
                // parks again if the timer is still not due.
                let d = d.min(MAX_WAIT);
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                ring_fd.enter(ring, 1, false, Some(&args))
            }
            None => ring_fd.enter(ring, 1, false, None),
        }
    } else {
        ring_fd.enter(ring, 0, false, None)
    };
    entered(res)
}

/// Sorts the result of an `io_uring_enter` (see [`Entered`]); what is left
/// is a real failure.
pub(crate) fn entered(res: io::Result<usize>) -> io::Result<Entered> {
    match res {
        Ok(_) => Ok(Entered::Done),
        Err(e) => match e.raw_os_error() {
            Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EAGAIN) => Ok(Entered::Done),
            Some(libc::EBUSY) => Ok(Entered::Busy),
            Some(libc::EBADR) => Ok(Entered::CqesLost),
            _ => Err(e),
        },
    }
}

/// Whether an enter is needed before the next reap: entries wait in the SQ,
/// or the kernel has deferred completions that only an enter will post.
pub(crate) fn needs_enter(ring: &mut IoUring) -> bool {
    let sq = ring.submission();
    !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
}

/// The ring's file descriptor, for other shards' `MSG_RING` sends.
pub(crate) fn fd(ring: &IoUring) -> RawFd {
    ring.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_sysctl_is_named() {
        let e = describe_setup_error(io::Error::from_raw_os_error(libc::EPERM), Some("2\n"));
        let s = e.to_string();
        assert!(s.contains(DISABLED_SYSCTL), "{s}");
        assert!(s.contains("is 2"), "{s}");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn seccomp_refusal_mentions_both_causes() {
        let e = describe_setup_error(io::Error::from_raw_os_error(libc::EPERM), Some("0"));
        let s = e.to_string();
        assert!(s.contains("seccomp") && s.contains(DISABLED_SYSCTL), "{s}");
    }

    #[test]
    fn missing_syscall_is_explained() {
        let e = describe_setup_error(io::Error::from_raw_os_error(libc::ENOSYS), None);
        assert!(e.to_string().contains("not available"));
    }

    #[test]
    fn the_kernels_errno_is_kept_as_the_source() {
        for errno in [libc::ENOSYS, libc::EPERM, libc::ENOMEM, libc::EINVAL] {
            let e = describe_setup_error(io::Error::from_raw_os_error(errno), Some("0"));
            let os = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .and_then(io::Error::raw_os_error);
            assert_eq!(os, Some(errno), "{e}");
        }
    }

    #[test]
    fn creates_a_ring() {
        let ring = create(8, 65_536, true).expect("io_uring works on this machine");
        assert!(fd(&ring) >= 0);
        let ring = create(8, 1, false).expect("io_uring works on this machine");
        assert!(fd(&ring) >= 0);
    }

    #[test]
    fn cq_is_sized_for_the_ops_in_flight_within_bounds() {
        // Twice the SQ at least, and 8 at least.
        assert_eq!(cq_entries(256, 1), 512);
        assert_eq!(cq_entries(2, 1), 8);
        // One CQE per op in flight, up to the cap.
        assert_eq!(cq_entries(256, 1000), 1000);
        assert_eq!(cq_entries(256, 65_536), CQ_ENTRIES_FOR_OPS_MAX);
        assert_eq!(cq_entries(256, usize::MAX), CQ_ENTRIES_FOR_OPS_MAX);
        // A large SQ still gets twice its size.
        assert_eq!(cq_entries(4096, 65_536), 8192);
    }

    #[test]
    fn a_dropped_cqe_is_its_own_outcome_not_a_failure() {
        let os = |errno| Err(io::Error::from_raw_os_error(errno));
        assert_eq!(entered(os(libc::EBADR)).unwrap(), Entered::CqesLost);
        assert_eq!(entered(os(libc::EBUSY)).unwrap(), Entered::Busy);
        assert_eq!(entered(os(libc::ETIME)).unwrap(), Entered::Done);
        assert_eq!(entered(Ok(3)).unwrap(), Entered::Done);
        assert!(entered(os(libc::EFAULT)).is_err());
    }
}
