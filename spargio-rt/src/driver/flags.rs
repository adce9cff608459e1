//! SQE flags a native op (`crate::uring`) may not set: they would break the
//! ring for everyone else on it, so the op is refused before it is queued.

use std::io;

use io_uring::squeue::{Entry, Flags};

/// The refused flags, with the name the error gives each.
const REFUSED: [(Flags, &str); 5] = [
    // The SQE queued next on the ring is whatever the runtime queues next
    // (another task's op, a ring close): it would run only after this op,
    // and be cancelled (`-ECANCELED`) if this one fails; a cancelled close
    // leaks its fd.
    (Flags::IO_LINK, "IOSQE_IO_LINK"),
    (Flags::IO_HARDLINK, "IOSQE_IO_HARDLINK"),
    // Waits for every op already in flight on the ring, the shard's
    // always-armed eventfd read and idle receives included, and every SQE
    // after it waits too (cancels as well): the shard's I/O would stop.
    (Flags::IO_DRAIN, "IOSQE_IO_DRAIN"),
    // A success posts no CQE, so the op never completes: its future never
    // resolves and its slot in the op table stays taken.
    (Flags::SKIP_SUCCESS, "IOSQE_CQE_SKIP_SUCCESS"),
    // The runtime's buffer rings are taken and given back by its own
    // receives; a buffer selected by a native op would never be returned.
    (Flags::BUFFER_SELECT, "IOSQE_BUFFER_SELECT"),
];

// `flags_of` reads byte 1 of the kernel's 64-byte SQE.
const _: () = assert!(std::mem::size_of::<Entry>() == 64);

/// The SQE's flags byte. The io-uring crate has no getter for it, but
/// `Entry` is `#[repr(C)]` around the kernel's `io_uring_sqe`, itself
/// `#[repr(C)]` and starting `opcode: u8, flags: u8`; the crate builds
/// every entry from a zeroed SQE, so each byte is initialised.
fn flags_of(e: &Entry) -> Flags {
    // SAFETY: byte 1 of a 64-byte, fully initialised `#[repr(C)]` SQE
    // (see above) is in bounds and initialised: its flags.
    let byte = unsafe { std::ptr::from_ref(e).cast::<u8>().add(1).read() };
    Flags::from_bits_retain(byte)
}

/// Refuses a native op's SQE that sets a flag of [`REFUSED`], with an
/// `InvalidInput` error naming it.
pub(crate) fn check_native(e: &Entry) -> io::Result<()> {
    let flags = flags_of(e);
    match REFUSED.iter().find(|(f, _)| flags.intersects(*f)) {
        None => Ok(()),
        Some((_, name)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "spargio: a native op may not set {name} (see the safety contract of \
                 spargio_rt::uring); it was not submitted"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::opcode;

    #[test]
    fn reads_the_flags_byte() {
        assert_eq!(flags_of(&opcode::Nop::new().build()), Flags::empty());
        let e = opcode::Nop::new()
            .build()
            .flags(Flags::IO_LINK | Flags::ASYNC)
            .user_data(u64::MAX);
        assert_eq!(flags_of(&e), Flags::IO_LINK | Flags::ASYNC);
    }

    #[test]
    fn names_each_refused_flag() {
        for (flag, name) in REFUSED {
            let e = opcode::Nop::new().build().flags(flag);
            let err = check_native(&e).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(name), "{err}");
        }
        let fine = opcode::Nop::new().build().flags(Flags::ASYNC);
        assert!(check_native(&fine).is_ok());
    }
}
