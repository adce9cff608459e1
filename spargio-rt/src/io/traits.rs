//! Owned-buffer stream traits.

use std::future::Future;
use std::io;

use super::buf::{BufResult, IoBuf, IoBufMut};

/// A byte stream that reads into owned buffers.
///
/// `read` fills `buf` from its start (see [`IoBufMut`]) and returns how
/// many bytes arrived; `Ok(0)` means end of stream (or an empty buffer).
pub trait AsyncRead {
    /// Reads once into `buf`.
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

/// A byte stream that writes from owned buffers.
pub trait AsyncWrite {
    /// Writes once from `buf`'s initialised bytes; returns how many went.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes once from several buffers in order (one `writev`/`sendmsg`
    /// where the stream has it); returns how many bytes went in total.
    /// Like any single write it may be short: the kernel's streams take at
    /// most the first 1024 buffers per call.
    /// [`write_vectored_all`](crate::io::AsyncWriteExt::write_vectored_all)
    /// writes every buffer of a list of any length.
    fn write_vectored<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>>;

    /// Flushes buffered data (a no-op for unbuffered streams).
    fn flush(&mut self) -> impl Future<Output = io::Result<()>>;

    /// Shuts the write side down (a TCP FIN for sockets).
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

impl<T: AsyncRead + ?Sized> AsyncRead for &mut T {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        (**self).read(buf)
    }
}

impl<T: AsyncWrite + ?Sized> AsyncWrite for &mut T {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        (**self).write(buf)
    }
    fn write_vectored<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        (**self).write_vectored(bufs)
    }
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        (**self).flush()
    }
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        (**self).shutdown()
    }
}
