//! A write buffer in front of a stream: many small writes become one.

use std::future::Future;
use std::io;

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::buf_reader::DEFAULT_BUF;
use super::split::Split;
use super::traits::{AsyncRead, AsyncWrite};

/// Buffers writes to `W`: small writes are copied into one internal buffer
/// that goes to the stream when it is full, on [`flush`](AsyncWrite::flush)
/// and on [`shutdown`](AsyncWrite::shutdown). A write at least as large as
/// the buffer skips it (after the buffered bytes go out).
///
/// The buffer is allocated once and reused. Dropping a `BufWriter` drops
/// whatever is still buffered: flush first. A write of the buffer to the
/// stream owns the buffer while it is in flight (the ring writes from it),
/// so a call cancelled during one (a `flush`, or a `write` that had to make
/// room; its future dropped, by a timeout say) takes the buffered bytes
/// with it: the writer is then broken, and every later call fails with an
/// error that says so, rather than go on with a hole in the stream.
///
/// ```
/// use spargio_rt::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
/// spargio_rt::run(|_| async {
///     let (a, mut b) = spargio_rt::net::UnixStream::pair().unwrap();
///     let mut w = BufWriter::new(a);
///     for word in ["a", "b", "c"] {
///         let (r, _) = w.write_all(word).await;
///         r.unwrap();
///     }
///     assert_eq!(w.buffer(), b"abc");
///     w.flush().await.unwrap();
///     let (r, got) = b.read_exact(vec![0u8; 3]).await;
///     r.unwrap();
///     assert_eq!(got, b"abc");
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct BufWriter<W> {
    inner: W,
    buf: Vec<u8>,
    cap: usize,
    /// Set while a write of the buffer owns it; still set at the next
    /// call, that write's future was dropped and the buffer went with it.
    writing: bool,
}

impl<W> BufWriter<W> {
    /// A writer with an 8 KiB buffer.
    pub fn new(inner: W) -> Self {
        Self::with_capacity(DEFAULT_BUF, inner)
    }

    /// A writer with a buffer of `capacity` bytes (at least 1).
    pub fn with_capacity(capacity: usize, inner: W) -> Self {
        let cap = capacity.max(1);
        BufWriter {
            inner,
            buf: Vec::with_capacity(cap),
            cap,
            writing: false,
        }
    }

    /// The bytes buffered and not yet written.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer's size.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether a cancelled write of the buffer took the buffered bytes with
    /// it (see the type's doc): every later call fails, and what
    /// [`buffer`](Self::buffer) shows is not all that was written to it.
    /// Drop the stream (the peer sees it end early) rather than go on.
    pub fn is_broken(&self) -> bool {
        self.writing
    }

    /// The stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The stream, mutably. Writing to it directly skips the buffer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The stream back; buffered bytes are dropped (flush first).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite> BufWriter<W> {
    /// Writes out everything buffered. On error, the bytes not known to
    /// have been written stay buffered.
    async fn flush_buf(&mut self) -> io::Result<()> {
        self.intact()?;
        let len = self.buf.len();
        let mut done = 0;
        let mut res = Ok(());
        while done < len {
            let buf = std::mem::take(&mut self.buf);
            self.writing = true;
            let (r, slice) = self.inner.write(buf.slice(done..len)).await;
            self.writing = false;
            self.buf = slice.into_inner();
            match r {
                Ok(0) => {
                    res = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        self.buf.drain(..done);
        res
    }

    /// Room for `n` more bytes, flushing first if need be; false if `n`
    /// bytes should bypass the buffer.
    async fn make_room(&mut self, n: usize) -> io::Result<bool> {
        self.intact()?;
        if self.buf.len() + n > self.cap {
            // The call goes on after this write: loud, so that its
            // completion wakes a task polled inside `quiet_writes`.
            super::quiet::loud(self.flush_buf()).await?;
        }
        Ok(n < self.cap)
    }

    /// Fails if a cancelled write took the buffered bytes (see the type's
    /// docs).
    fn intact(&self) -> io::Result<()> {
        if self.writing {
            return Err(io::Error::other(
                "spargio: BufWriter is broken: a call was cancelled while the buffer was being \
                 written, and the buffered bytes it held are lost",
            ));
        }
        Ok(())
    }
}

impl<W: AsyncWrite> AsyncWrite for BufWriter<W> {
    /// Buffers `buf` (always in full) or, if it is at least as large as
    /// the buffer, writes it straight to the stream once.
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let n = buf.bytes_init();
        match self.make_room(n).await {
            Ok(true) => {
                self.buf.extend_from_slice(buf.as_slice());
                (Ok(n), buf)
            }
            Ok(false) => self.inner.write(buf).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Buffers all of `bufs` or, if together they are at least as large as
    /// the buffer, writes them straight to the stream in one vectored
    /// write.
    async fn write_vectored<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        let n = bufs.iter().map(|b| b.bytes_init()).sum();
        match self.make_room(n).await {
            Ok(true) => {
                for b in &bufs {
                    self.buf.extend_from_slice(b.as_slice());
                }
                (Ok(n), bufs)
            }
            Ok(false) => self.inner.write_vectored(bufs).await,
            Err(e) => (Err(e), bufs),
        }
    }

    /// Writes out the buffer, then flushes the stream.
    ///
    /// Not cancel-safe: dropping this future while the buffer is being
    /// written (under a `timeout`, say) loses the buffered bytes and
    /// breaks the writer ([`is_broken`](BufWriter::is_broken)). To bound
    /// the wait, put the timeout around the whole exchange and drop the
    /// stream when it fires.
    async fn flush(&mut self) -> io::Result<()> {
        // Loud: the stream's own flush may be I/O of its own (a buffered
        // writer over another).
        super::quiet::loud(self.flush_buf()).await?;
        self.inner.flush().await
    }

    /// Writes out the buffer, then shuts the stream's write side down.
    async fn shutdown(&mut self) -> io::Result<()> {
        // Loud: the shutdown follows this write.
        super::quiet::loud(self.flush_buf()).await?;
        self.inner.shutdown().await
    }
}

impl<W: AsyncRead> AsyncRead for BufWriter<W> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.inner.read(buf)
    }
}

/// The write half keeps the buffer (and what is buffered in it).
impl<T: Split> Split for BufWriter<T> {
    type Read = T::Read;
    type Write = BufWriter<T::Write>;

    fn split_io(self) -> (Self::Read, Self::Write) {
        let (r, w) = self.inner.split_io();
        let write = BufWriter {
            inner: w,
            buf: self.buf,
            cap: self.cap,
            writing: self.writing,
        };
        (r, write)
    }

    fn unsplit_io(read: Self::Read, write: Self::Write) -> Self {
        BufWriter {
            inner: T::unsplit_io(read, write.inner),
            buf: write.buf,
            cap: write.cap,
            writing: write.writing,
        }
    }
}
