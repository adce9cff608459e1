//! Owned read and write halves of a stream socket.
//!
//! Each half holds its own clone of the socket's fd, so the halves can move
//! to different tasks and a read can be pending while writes go out: the
//! kernel keeps a socket's two directions apart. The socket closes when
//! both halves (and any op still in flight) are gone.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::{SocketStream, TcpStream, UnixStream};
use crate::io::{AsyncRead, AsyncWrite, BufResult, IoBuf, IoBufMut, Split};

/// The read half of a [`TcpStream`] or [`UnixStream`], from `into_split`.
///
/// `as_ref()` gives a view of the socket (for `peer_addr` and the like).
#[derive(Debug)]
pub struct OwnedReadHalf<S> {
    stream: S,
}

/// The write half of a [`TcpStream`] or [`UnixStream`], from `into_split`.
/// [`AsyncWrite::shutdown`] on it sends a FIN; dropping it does not.
#[derive(Debug)]
pub struct OwnedWriteHalf<S> {
    stream: S,
}

/// [`OwnedReadHalf::reunite`] was given the halves of two different
/// sockets; both are handed back.
pub struct ReuniteError<S>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of different sockets")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

impl<S: AsRawFd> OwnedReadHalf<S> {
    /// Puts the socket back together, if `write` is its other half.
    pub fn reunite(self, write: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        // Both halves hold the same open fd, so equal numbers mean the same
        // socket (a number cannot be reused while either half holds it).
        if self.stream.as_raw_fd() == write.stream.as_raw_fd() {
            drop(write);
            Ok(self.stream)
        } else {
            Err(ReuniteError(self, write))
        }
    }
}

impl<S> AsRef<S> for OwnedReadHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S> AsRef<S> for OwnedWriteHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsRawFd> AsRawFd for OwnedReadHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl<S: AsRawFd> AsRawFd for OwnedWriteHalf<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl<S: AsyncRead> AsyncRead for OwnedReadHalf<S> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.read(buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for OwnedWriteHalf<S> {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.write(buf)
    }

    fn write_vectored<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        self.stream.flush()
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        self.stream.shutdown()
    }
}

macro_rules! owned_split {
    ($t:ident) => {
        impl $t {
            /// Splits the socket into owned halves that can live in
            /// different tasks; a read pending on one never delays the
            /// other's writes. [`OwnedReadHalf::reunite`] undoes it.
            pub fn into_split(self) -> (OwnedReadHalf<$t>, OwnedWriteHalf<$t>) {
                let write = self.same_socket();
                (
                    OwnedReadHalf { stream: self },
                    OwnedWriteHalf { stream: write },
                )
            }
        }

        impl Split for $t {
            type Read = OwnedReadHalf<$t>;
            type Write = OwnedWriteHalf<$t>;

            fn split_io(self) -> (Self::Read, Self::Write) {
                self.into_split()
            }

            fn unsplit_io(read: Self::Read, write: Self::Write) -> Self {
                match read.reunite(write) {
                    Ok(s) => s,
                    Err(_) => panic!("spargio: unsplit of halves from different sockets"),
                }
            }
        }
    };
}

owned_split!(TcpStream);
owned_split!(UnixStream);
owned_split!(SocketStream);
