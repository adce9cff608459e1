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

/// Creates a disabled ring with the best flags this kernel accepts, falling
/// back flag by flag. `SINGLE_ISSUER` and `DEFER_TASKRUN` require that only
/// one thread ever submits: the one that calls [`enable`], which is the
/// shard's own.
pub(crate) fn create(entries: u32, want_defer: bool) -> io::Result<IoUring> {
    let cq = entries.saturating_mul(2).max(8);
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

/// The pure part of [`setup_error`], given the sysctl's contents (if readable).
pub(crate) fn describe_setup_error(e: io::Error, sysctl: Option<&str>) -> io::Error {
    let kind = e.kind();
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
    io::Error::new(kind, msg)
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

/// Submits what is queued and, when `wait` is set, blocks until one CQE
/// arrives or `timeout` passes. Returns whether the kernel answered `EBUSY`
/// (its CQ backed up: the caller reaps and submits again).
pub(crate) fn enter(ring: &IoUring, wait: bool, timeout: Option<Duration>) -> io::Result<bool> {
    let res = if wait {
        match timeout {
            Some(d) => {
                // The kernel reads the seconds as an i64; past that a wait
                // is endless anyway.
                let ts = types::Timespec::new()
                    .sec(d.as_secs().min(i64::MAX as u64))
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(1, &args)
            }
            None => ring.submitter().submit_and_wait(1),
        }
    } else {
        ring.submitter().submit()
    };
    match res {
        Ok(_) => Ok(false),
        Err(e) => match e.raw_os_error() {
            Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EAGAIN) => Ok(false),
            Some(libc::EBUSY) => Ok(true),
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
    fn creates_a_ring() {
        let ring = create(8, true).expect("io_uring works on this machine");
        assert!(fd(&ring) >= 0);
    }
}
