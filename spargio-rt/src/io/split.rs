//! Splitting a stream into a read half and a write half that can be used
//! at the same time, from different tasks.
//!
//! Our [`AsyncRead::read`] and [`AsyncWrite::write`] take `&mut self` and
//! return futures that borrow the stream for the whole op. For an arbitrary
//! stream type the two sides may share state, so there is no sound way to
//! run a read and a write on one value at once without serialising them
//! (a lock held for the whole op would make a pending read block every
//! write). [`split`] therefore works on streams whose two sides are
//! independent by construction: types that implement [`Split`]. Sockets
//! do (their halves each hold a clone of the fd; the kernel keeps reads
//! and writes apart), and so do [`BufReader`](super::BufReader) and
//! [`BufWriter`](super::BufWriter) over such a stream.

use std::future::Future;
use std::io;
use std::sync::Arc;

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::traits::{AsyncRead, AsyncWrite};

/// A stream made of a read side and a write side that work independently,
/// so a read may be pending on one while a write runs on the other.
///
/// Implemented by [`TcpStream`](crate::net::TcpStream) and
/// [`UnixStream`](crate::net::UnixStream) (their `into_split` halves), and
/// by [`BufReader`](super::BufReader) / [`BufWriter`](super::BufWriter)
/// over a `Split` stream.
pub trait Split: Sized {
    /// The read side.
    type Read: AsyncRead;
    /// The write side.
    type Write: AsyncWrite;

    /// Takes the stream apart.
    fn split_io(self) -> (Self::Read, Self::Write);

    /// Puts the two sides back together. Callers pass the two halves of
    /// one `split_io` call; [`unsplit`] checks this.
    fn unsplit_io(read: Self::Read, write: Self::Write) -> Self;
}

/// The read half of a stream, from [`split`].
#[derive(Debug)]
pub struct ReadHalf<T: Split> {
    inner: T::Read,
    pair: Arc<()>,
}

/// The write half of a stream, from [`split`].
#[derive(Debug)]
pub struct WriteHalf<T: Split> {
    inner: T::Write,
    pair: Arc<()>,
}

/// Splits `stream` into halves that can be moved to different tasks and
/// used concurrently: a read pending on one never delays a write on the
/// other. Put them back together with [`unsplit`] (or
/// [`ReadHalf::unsplit`]).
///
/// ```
/// use spargio_rt::io::{self, AsyncReadExt, AsyncWriteExt};
/// spargio_rt::run(|_| async {
///     let (a, mut b) = spargio_rt::net::UnixStream::pair().unwrap();
///     let (mut rd, mut wr) = io::split(a);
///     let writer = spargio_rt::spawn(async move {
///         let (r, _) = wr.write_all(b"ping".to_vec()).await;
///         r.unwrap();
///         wr
///     });
///     let (r, buf) = b.read_exact(vec![0u8; 4]).await;
///     r.unwrap();
///     assert_eq!(buf, b"ping");
///     let (r, _) = b.write_all(b"pong".to_vec()).await;
///     r.unwrap();
///     let (r, buf) = rd.read_exact(vec![0u8; 4]).await;
///     r.unwrap();
///     assert_eq!(buf, b"pong");
///     let _stream = io::unsplit(rd, writer.await.unwrap());
/// })
/// .unwrap();
/// ```
pub fn split<T: Split>(stream: T) -> (ReadHalf<T>, WriteHalf<T>) {
    let (r, w) = stream.split_io();
    let pair = Arc::new(());
    (
        ReadHalf {
            inner: r,
            pair: pair.clone(),
        },
        WriteHalf { inner: w, pair },
    )
}

/// Puts the halves from one [`split`] call back together.
///
/// # Panics
/// If the halves came from different `split` calls.
pub fn unsplit<T: Split>(read: ReadHalf<T>, write: WriteHalf<T>) -> T {
    assert!(
        read.is_pair_of(&write),
        "spargio: unsplit of halves from different streams"
    );
    T::unsplit_io(read.inner, write.inner)
}

impl<T: Split> ReadHalf<T> {
    /// Whether `write` is the other half of the same stream.
    pub fn is_pair_of(&self, write: &WriteHalf<T>) -> bool {
        Arc::ptr_eq(&self.pair, &write.pair)
    }

    /// Puts the stream back together; see [`unsplit`].
    ///
    /// # Panics
    /// If `write` is the half of another stream.
    pub fn unsplit(self, write: WriteHalf<T>) -> T {
        unsplit(self, write)
    }

    /// The read side itself.
    pub fn get_ref(&self) -> &T::Read {
        &self.inner
    }

    /// The read side itself, mutably.
    pub fn get_mut(&mut self) -> &mut T::Read {
        &mut self.inner
    }
}

impl<T: Split> WriteHalf<T> {
    /// The write side itself.
    pub fn get_ref(&self) -> &T::Write {
        &self.inner
    }

    /// The write side itself, mutably.
    pub fn get_mut(&mut self) -> &mut T::Write {
        &mut self.inner
    }
}

impl<T: Split> AsyncRead for ReadHalf<T> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.inner.read(buf)
    }
}

impl<T: Split> AsyncWrite for WriteHalf<T> {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.inner.write(buf)
    }

    fn write_vectored<B: IoBuf>(
        &mut self,
        bufs: Vec<B>,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.shutdown()
    }
}
