//! Extension methods that loop over partial reads and writes correctly:
//! each step continues where the last one stopped, never from offset 0.

use std::io;

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::traits::{AsyncRead, AsyncWrite};

/// Helpers for every [`AsyncRead`] (its `read` is a method of [`AsyncRead`]
/// itself: import both traits, or [`spargio_rt::io::prelude::*`](crate::io::prelude)).
///
/// ```
/// use spargio_rt::io::{AsyncReadExt, AsyncWriteExt};
/// spargio_rt::run(|_| async {
///     let (mut a, mut b) = spargio_rt::net::UnixStream::pair().unwrap();
///     let (r, _) = a.write_all(b"hello".to_vec()).await;
///     r.unwrap();
///     let (r, buf) = b.read_exact(vec![0u8; 5]).await;
///     r.unwrap();
///     assert_eq!(buf, b"hello");
/// })
/// .unwrap();
/// ```
pub trait AsyncReadExt: AsyncRead {
    /// Fills `buf` to its full capacity (`bytes_total`), reading as often as
    /// needed. Fails with `UnexpectedEof` if the stream ends first; the
    /// bytes read so far are at the front of the returned buffer, and the
    /// error's message says how many (the buffer's length does not: a
    /// `Vec` passed in with length 10 comes back with length 10).
    ///
    /// Not cancel-safe: if the future is dropped after some reads, the
    /// bytes they read go with it (only the read in flight is kept on the
    /// stream). Read frames through a [`BufReader`](super::BufReader) where
    /// a `timeout` or `select` may drop the read.
    fn read_exact<B: IoBufMut>(
        &mut self,
        buf: B,
    ) -> impl std::future::Future<Output = BufResult<(), B>> {
        async move {
            let total = buf.bytes_total();
            let mut filled = 0;
            let mut buf = buf;
            while filled < total {
                let (res, slice) = self.read(buf.slice(filled..)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => {
                        return (
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("stream ended after {filled} of {total} bytes"),
                            )),
                            buf,
                        )
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }

    /// Reads until end of stream, appending to `buf`; returns how many
    /// bytes were appended.
    ///
    /// Not cancel-safe: if the future is dropped, the bytes appended so far
    /// go with it.
    fn read_to_end(
        &mut self,
        buf: Vec<u8>,
    ) -> impl std::future::Future<Output = BufResult<usize, Vec<u8>>> {
        async move {
            let start = buf.len();
            let mut buf = buf;
            loop {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve((buf.capacity()).clamp(4096, 1 << 20));
                }
                let len = buf.len();
                let (res, slice) = self.read(buf.slice(len..)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => return (Ok(buf.len() - start), buf),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
        }
    }
}

impl<T: AsyncRead + ?Sized> AsyncReadExt for T {}

/// Helpers for every [`AsyncWrite`]. `flush` and `shutdown` are methods
/// of [`AsyncWrite`] itself: import both traits, or
/// [`spargio_rt::io::prelude::*`](crate::io::prelude).
pub trait AsyncWriteExt: AsyncWrite {
    /// Writes all of `buf`'s initialised bytes, as many writes as it takes.
    /// A write that takes nothing fails with `WriteZero`.
    fn write_all<B: IoBuf>(
        &mut self,
        buf: B,
    ) -> impl std::future::Future<Output = BufResult<(), B>> {
        async move {
            let len = buf.bytes_init();
            let mut done = 0;
            let mut buf = buf;
            while done < len {
                let (res, slice) = self.write(buf.slice(done..len)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => {
                        return (
                            Err(io::Error::new(
                                io::ErrorKind::WriteZero,
                                format!("stream took 0 bytes after {done} of {len}"),
                            )),
                            buf,
                        )
                    }
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }

    /// Writes every buffer in full, in order, with vectored writes; a
    /// partial write continues inside the buffer where it stopped.
    fn write_vectored_all<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl std::future::Future<Output = BufResult<(), Vec<B>>> {
        async move {
            let lens: Vec<usize> = bufs.iter().map(|b| b.bytes_init()).collect();
            let total: usize = lens.iter().sum();
            let mut done = 0usize;
            let mut bufs = bufs;
            while done < total {
                // The first buffer not fully sent, and how far into it.
                let mut skip = done;
                let mut first = 0;
                while skip >= lens[first] {
                    skip -= lens[first];
                    first += 1;
                }
                let mut rest = bufs.split_off(first);
                let res = if skip == 0 {
                    let (res, back) = self.write_vectored(rest).await;
                    rest = back;
                    res
                } else {
                    // Part-way into a buffer: finish it with a plain write,
                    // loud when buffers follow it (a quiet one completing
                    // in full would leave them unsent, the task asleep).
                    let head = rest.remove(0);
                    let write = self.write(head.slice(skip..lens[first]));
                    let (res, slice) = if rest.is_empty() {
                        write.await
                    } else {
                        super::quiet::loud(write).await
                    };
                    rest.insert(0, slice.into_inner());
                    res
                };
                bufs.append(&mut rest);
                match res {
                    Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), bufs),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), bufs),
                }
            }
            (Ok(()), bufs)
        }
    }
}

impl<T: AsyncWrite + ?Sized> AsyncWriteExt for T {}
