//! A file descriptor shared by a stream and its in-flight ops.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// An fd that stays open while any in-flight op uses it: every op holds a
/// clone, so dropping the stream while an op is queued or in flight never
/// lets the number be reused under the kernel. Closed when the last clone
/// goes.
#[derive(Clone, Debug)]
pub(crate) struct SharedFd(Arc<OwnedFd>);

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        SharedFd(Arc::new(fd))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
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
