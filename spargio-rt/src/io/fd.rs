//! A file descriptor shared by a stream and its in-flight ops.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::carry::ReadCarry;

/// An fd that stays open while any in-flight op uses it: every op holds a
/// clone, so dropping the stream while an op is queued or in flight never
/// lets the number be reused under the kernel. Closed when the last clone
/// goes.
///
/// A file's fd ([`SharedFd::for_file`]), dropped on a shard, is closed
/// through that shard's ring (see `LocalShard::queue_close`): a close that
/// flushes (NFS, FUSE) never blocks the shard. Sockets and pipes close at
/// once with `close(2)`: the kernel finishes a ring close's release of the
/// socket only after the submitting `io_uring_enter` returns, so a port
/// freed by dropping a listener would still be taken for an op queued in
/// the same submission (a connect to it, a bind of it).
#[derive(Clone, Debug)]
pub(crate) struct SharedFd(Arc<ClosingFd>);

/// The owner of the fd behind every `SharedFd` clone.
#[derive(Debug)]
struct ClosingFd {
    /// `None` only while dropping.
    fd: Option<OwnedFd>,
    raw: RawFd,
    /// Close through the ring when dropped on a shard.
    on_ring: bool,
    /// What cancelled stream reads of this fd took (see `io::carry`).
    carry: ReadCarry,
}

impl Drop for ClosingFd {
    fn drop(&mut self) {
        match self.fd.take() {
            // Off a shard the fd comes back and is closed here.
            Some(fd) if self.on_ring => drop(crate::shard::local::close_on_ring(fd)),
            fd => drop(fd),
        }
    }
}

impl SharedFd {
    /// A socket's or a pipe's fd: closed with `close(2)`.
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Self::with(fd, false)
    }

    /// A regular file's fd: closed through the ring when dropped on a shard.
    pub(crate) fn for_file(fd: OwnedFd) -> Self {
        Self::with(fd, true)
    }

    fn with(fd: OwnedFd, on_ring: bool) -> Self {
        let raw = fd.as_raw_fd();
        SharedFd(Arc::new(ClosingFd {
            fd: Some(fd),
            raw,
            on_ring,
            carry: ReadCarry::default(),
        }))
    }

    /// The fd itself, if this is its last clone (no op holds it); the
    /// clone back otherwise.
    pub(crate) fn into_owned(self) -> Result<OwnedFd, SharedFd> {
        match Arc::try_unwrap(self.0) {
            Ok(mut closing) => Ok(closing.fd.take().expect("taken only while dropping")),
            Err(shared) => Err(SharedFd(shared)),
        }
    }

    /// The fd's read carry: bytes cancelled stream reads took.
    pub(crate) fn carry(&self) -> &ReadCarry {
        &self.0.carry
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.raw
    }

    /// The fd as io_uring's operand type.
    pub(crate) fn uring(&self) -> io_uring::types::Fd {
        io_uring::types::Fd(self.raw())
    }
}

impl AsRawFd for SharedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}
