//! A read buffer in front of a stream: fewer, larger reads, and line and
//! delimiter helpers.

use std::future::Future;
use std::io;

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::split::Split;
use super::traits::{AsyncRead, AsyncWrite};

/// The default buffer size of [`BufReader`] and
/// [`BufWriter`](super::BufWriter).
pub(crate) const DEFAULT_BUF: usize = 8 * 1024;

/// Buffers reads from `R`: each read of the stream fills one internal
/// buffer, and reads, lines and delimited chunks are served from it.
///
/// The buffer is allocated once and reused for every read (it travels to
/// the kernel and back by value). If a read of the stream is cancelled
/// (its future dropped), the buffer is allocated again on the next fill;
/// over this crate's sockets and pipes the bytes that read took are not
/// lost (the stream hands them to its next read, see [`crate::io`]), so
/// `timeout(d, reader.read_line(..))` in a loop sees every line whole and
/// in order. Over a reader that drops what a cancelled read took, they are
/// lost.
///
/// ```
/// use spargio_rt::io::{AsyncWriteExt, BufReader};
/// spargio_rt::run(|_| async {
///     let (mut a, b) = spargio_rt::net::UnixStream::pair().unwrap();
///     let (r, _) = a.write_all(b"one\ntwo\n".to_vec()).await;
///     r.unwrap();
///     let mut rd = BufReader::new(b);
///     let mut line = String::new();
///     rd.read_line(&mut line).await.unwrap();
///     assert_eq!(line, "one\n");
///     assert_eq!(rd.buffer(), b"two\n");
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct BufReader<R> {
    inner: R,
    /// `buf[pos..]` is buffered and unread; `buf.len()` is how much the
    /// last fill brought in.
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
}

impl<R> BufReader<R> {
    /// A reader with an 8 KiB buffer.
    pub fn new(inner: R) -> Self {
        Self::with_capacity(DEFAULT_BUF, inner)
    }

    /// A reader with a buffer of `capacity` bytes (at least 1).
    pub fn with_capacity(capacity: usize, inner: R) -> Self {
        let cap = capacity.max(1);
        BufReader {
            inner,
            buf: Vec::with_capacity(cap),
            pos: 0,
            cap,
        }
    }

    /// The buffered bytes not yet read.
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The buffer's size.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Marks `n` buffered bytes as read (at most all of them).
    pub fn consume(&mut self, n: usize) {
        // Saturating: `consume(usize::MAX)` ("all of them") must not wrap
        // back to an earlier position.
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream, mutably. Reading from it directly skips the buffer.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The stream back; buffered bytes not yet read are dropped.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead> BufReader<R> {
    /// The buffered bytes, after one read of the stream if none were left.
    /// Empty at end of stream. Mark what you used with
    /// [`consume`](Self::consume).
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.buf.len() {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            if buf.capacity() < self.cap {
                // Only after a cancelled fill lost the buffer.
                buf.reserve_exact(self.cap);
            }
            self.pos = 0;
            let (res, buf) = self.inner.read(buf).await;
            self.buf = buf;
            match res {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[self.pos..])
    }

    /// Appends bytes to `out` up to and including `byte` (or to end of
    /// stream), across as many fills as it takes; returns how many were
    /// appended (0 at end of stream).
    ///
    /// Bytes are appended as they are taken: if the future is dropped
    /// before it finishes (a timeout, a lost `select`), what it took is in
    /// `out`, and calling it again with the same `out` goes on where it
    /// stopped. (Over a stream that drops what a cancelled read took,
    /// unlike this crate's sockets and pipes, the bytes of a fill in
    /// flight at that moment are lost.)
    pub async fn read_until(&mut self, byte: u8, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut n = 0;
        loop {
            let avail = self.fill_buf().await?;
            if avail.is_empty() {
                return Ok(n);
            }
            let (take, found) = match avail.iter().position(|&b| b == byte) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            out.extend_from_slice(&avail[..take]);
            self.consume(take);
            n += take;
            if found {
                return Ok(n);
            }
        }
    }

    /// Appends one line, `\n` included if there is one, to `out`; returns
    /// its length in bytes (0 at end of stream). If the line is not UTF-8
    /// it fails with `InvalidData` and `out` is left as it was (the line's
    /// bytes are consumed).
    ///
    /// Cancel-safe as far as a read can be: if the future is dropped (or
    /// a read fails) before the line is whole, the part of it already
    /// taken goes back in front of the buffer, and the next call reads the
    /// whole line. (Over a stream that drops what a cancelled read took,
    /// unlike this crate's sockets and pipes, the bytes of a fill in
    /// flight at that moment are lost.)
    pub async fn read_line(&mut self, out: &mut String) -> io::Result<usize> {
        let mut partial = PartialLine {
            reader: self,
            line: Vec::new(),
        };
        let n = partial.reader.read_until(b'\n', &mut partial.line).await?;
        let line = std::mem::take(&mut partial.line);
        drop(partial);
        let s = String::from_utf8(line)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not valid UTF-8"))?;
        out.push_str(&s);
        Ok(n)
    }

    /// The rest of the stream as lines, without their `\n` (or `\r\n`).
    pub fn lines(self) -> Lines<R> {
        Lines { reader: self }
    }
}

/// The line a [`BufReader::read_line`] is gathering. Dropped before the
/// line is whole (the future dropped, a read failed), it puts the bytes it
/// took back in front of the reader's unread ones.
struct PartialLine<'a, R> {
    reader: &'a mut BufReader<R>,
    line: Vec<u8>,
}

impl<R> Drop for PartialLine<'_, R> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let r = &mut *self.reader;
        // After a cancelled fill `r.buf` is empty (its Vec went to the
        // read); otherwise `buf[pos..]` is what follows the line.
        let rest = &r.buf[r.pos.min(r.buf.len())..];
        let mut buf = std::mem::take(&mut self.line);
        buf.extend_from_slice(rest);
        r.buf = buf;
        r.pos = 0;
    }
}

/// Lines of a [`BufReader`], from [`BufReader::lines`].
#[derive(Debug)]
pub struct Lines<R> {
    reader: BufReader<R>,
}

impl<R: AsyncRead> Lines<R> {
    /// The next line without its line ending, or `None` at end of stream.
    ///
    /// Cancel-safe as [`BufReader::read_line`] is: a line half read when
    /// the future is dropped is read whole by the next call.
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    /// The reader back.
    pub fn into_inner(self) -> BufReader<R> {
        self.reader
    }
}

impl<R: AsyncRead> AsyncRead for BufReader<R> {
    /// Serves buffered bytes first; with none buffered, a read at least as
    /// large as the buffer goes straight to the stream.
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        if buf.bytes_total() == 0 {
            // Nothing fits: no read (one would wait for data it cannot
            // take, then look like the end of the stream).
            return (Ok(0), buf);
        }
        if self.pos >= self.buf.len() && buf.bytes_total() >= self.cap {
            return self.inner.read(buf).await;
        }
        let avail = match self.fill_buf().await {
            Ok(a) => a,
            Err(e) => return (Err(e), buf),
        };
        let n = avail.len().min(buf.bytes_total());
        // SAFETY: `buf` is valid for writes of `bytes_total >= n` bytes
        // and is owned here, so it cannot overlap our buffer; the first
        // `n` bytes are written before they are marked initialised.
        unsafe {
            std::ptr::copy_nonoverlapping(avail.as_ptr(), buf.stable_mut_ptr(), n);
            buf.set_init(n);
        }
        self.consume(n);
        (Ok(n), buf)
    }
}

impl<R: AsyncWrite> AsyncWrite for BufReader<R> {
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

/// The read half keeps the buffer (and what is buffered in it).
impl<T: Split> Split for BufReader<T> {
    type Read = BufReader<T::Read>;
    type Write = T::Write;

    fn split_io(self) -> (Self::Read, Self::Write) {
        let (r, w) = self.inner.split_io();
        let read = BufReader {
            inner: r,
            buf: self.buf,
            pos: self.pos,
            cap: self.cap,
        };
        (read, w)
    }

    fn unsplit_io(read: Self::Read, write: Self::Write) -> Self {
        BufReader {
            inner: T::unsplit_io(read.inner, write),
            buf: read.buf,
            pos: read.pos,
            cap: read.cap,
        }
    }
}
