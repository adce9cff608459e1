//! The parent's ends of a child's stdio pipes, read and written through
//! the ring (a pipe read or write that cannot proceed is parked in the
//! kernel, never on a thread).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::io::fd::SharedFd;
use crate::io::ops::{self, CURRENT_POS};
use crate::io::{AsyncRead, AsyncWrite, BufResult, IoBuf, IoBufMut};

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "spargio: child stdin was shut down",
    )
}

/// The write end of a child's stdin ([`Stdio::piped`](super::Stdio::piped)).
///
/// The child sees end of input once this is dropped or
/// [`shutdown`](AsyncWrite::shutdown) (the fd closes when the last
/// in-flight op on it has finished).
#[derive(Debug)]
pub struct ChildStdin {
    fd: Option<SharedFd>,
}

/// The read end of a child's stdout ([`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStdout {
    fd: SharedFd,
}

/// The read end of a child's stderr ([`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStderr {
    fd: SharedFd,
}

impl ChildStdin {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        ChildStdin {
            fd: Some(SharedFd::new(fd)),
        }
    }
}

impl ChildStdout {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        ChildStdout {
            fd: SharedFd::new(fd),
        }
    }
}

impl ChildStderr {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        ChildStderr {
            fd: SharedFd::new(fd),
        }
    }
}

impl AsyncWrite for ChildStdin {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        match &self.fd {
            Some(fd) => ops::write_at(fd, buf, CURRENT_POS).await,
            None => (Err(closed()), buf),
        }
    }

    async fn write_vectored<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        match &self.fd {
            Some(fd) => ops::write_vectored(fd, bufs, CURRENT_POS, false).await,
            None => (Err(closed()), bufs),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Closes the pipe: the child reads end of input. Later writes fail
    /// with `BrokenPipe`.
    async fn shutdown(&mut self) -> io::Result<()> {
        self.fd = None;
        Ok(())
    }
}

impl AsyncRead for ChildStdout {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        ops::read_stream(&self.fd, buf).await
    }
}

impl AsyncRead for ChildStderr {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        ops::read_stream(&self.fd, buf).await
    }
}

impl AsRawFd for ChildStdin {
    /// The pipe's fd, or -1 after [`shutdown`](AsyncWrite::shutdown).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, SharedFd::raw)
    }
}

impl AsRawFd for ChildStdout {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsRawFd for ChildStderr {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}
