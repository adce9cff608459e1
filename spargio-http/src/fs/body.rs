//! [`FileBody`]: the response body of the file services.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::future::{maybe_done, MaybeDone};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use spargio_rt::fs::File;
use spargio_service::BoxError;

/// How much one read of a [`FileBody`] asks for, unless set otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

/// One read of a file in flight: the owned buffer comes back with the result.
type ReadFuture = Pin<Box<dyn Future<Output = (io::Result<usize>, BytesMut)> + Send>>;

/// The body of a [`ServeDir`](super::ServeDir) or
/// [`ServeFile`](super::ServeFile) response: a byte range of a file,
/// streamed in chunks, or a few bytes held in memory (error responses,
/// `HEAD`, `304`).
///
/// A file body reads with [`File::read_at`] (an io_uring `READ` submitted
/// on the ring of whichever shard polls the body), one chunk at a time
/// into a fresh buffer that becomes the frame's [`Bytes`] without a copy.
/// Its [`size_hint`](Body::size_hint) is exact, so a server can send
/// `Content-Length`. If the file turns out shorter than promised (it was
/// truncated while being served), the body fails with `UnexpectedEof`
/// rather than send fewer bytes than announced. Dropping the body while a
/// read is in flight cancels the read.
///
/// ```
/// use bytes::Bytes;
/// use http_body::Body;
/// use http_body_util::BodyExt;
/// use spargio_http::fs::FileBody;
///
/// spargio_rt::run(|_| async {
///     let path = std::env::temp_dir().join(format!("spargio-filebody-doc-{}", std::process::id()));
///     spargio_rt::fs::write(&path, b"hello, ring").await?;
///     let file = spargio_rt::fs::File::open(&path).await?;
///     // Bytes 7..11 of the file.
///     let body = FileBody::file(file, 7, 4);
///     assert_eq!(body.size_hint().exact(), Some(4));
///     let bytes = body.collect().await?.to_bytes();
///     assert_eq!(bytes, Bytes::from_static(b"ring"));
///
///     let small = FileBody::from("not found");
///     assert_eq!(small.size_hint().exact(), Some(9));
///     spargio_rt::fs::remove_file(&path).await
/// })
/// .unwrap()
/// .unwrap();
/// ```
pub struct FileBody {
    inner: Inner,
}

enum Inner {
    /// Bytes in memory, taken by the first poll.
    Bytes(Option<Bytes>),
    /// A range of a file.
    File(FileStream),
    /// Another service's body (a [`ServeDir`](super::ServeDir) fallback's).
    /// Only reached through `&mut` (never locked): the mutex makes the
    /// body `Sync`, as for a file's read.
    Other(Mutex<UnsyncBoxBody<Bytes, io::Error>>),
}

struct FileStream {
    file: Arc<File>,
    /// Where the next read starts.
    pos: u64,
    /// Bytes still to send.
    remaining: u64,
    chunk: usize,
    /// The read of the next chunk: in flight, or done and not yet taken.
    /// It is started as soon as the previous chunk is handed out, so the
    /// disk read overlaps the socket write of that chunk. The future is
    /// `Send` but need not be `Sync`; the mutex makes the body `Sync` and
    /// costs nothing, since it is only ever reached through `&mut`
    /// ([`Mutex::get_mut`] never locks).
    read: Mutex<Option<MaybeDone<ReadFuture>>>,
}

impl FileBody {
    /// A body with no bytes.
    pub fn empty() -> Self {
        FileBody {
            inner: Inner::Bytes(None),
        }
    }

    /// A body of `bytes` held in memory, sent as one frame.
    pub fn from_bytes(bytes: Bytes) -> Self {
        FileBody {
            inner: Inner::Bytes(Some(bytes)),
        }
    }

    /// A body of `len` bytes of `file`, starting at `offset`, read in
    /// chunks of [`DEFAULT_CHUNK_SIZE`] (see
    /// [`with_chunk_size`](Self::with_chunk_size)). The file must hold at
    /// least `offset + len` bytes; if it ends first, the body fails with
    /// `UnexpectedEof`.
    pub fn file(file: File, offset: u64, len: u64) -> Self {
        FileBody {
            inner: Inner::File(FileStream {
                file: Arc::new(file),
                pos: offset,
                remaining: len,
                chunk: DEFAULT_CHUNK_SIZE,
                read: Mutex::new(None),
            }),
        }
    }

    /// Another body, such as the response body of a
    /// [`ServeDir::fallback`](super::ServeDir::fallback) service; its
    /// errors become `io::Error`s.
    ///
    /// ```
    /// # use spargio_http::fs::FileBody;
    /// let body = FileBody::from_body(http_body_util::Full::new(bytes::Bytes::from("hi")));
    /// # drop(body);
    /// ```
    pub fn from_body<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let body = body.map_err(|e| io::Error::other(e.into())).boxed_unsync();
        FileBody {
            inner: Inner::Other(Mutex::new(body)),
        }
    }

    /// Sets how many bytes each read of a file body asks for (at least 1;
    /// 0 is taken as 1). No effect on an in-memory body.
    ///
    /// ```
    /// # use spargio_http::fs::FileBody;
    /// let body = FileBody::empty().with_chunk_size(16 * 1024);
    /// ```
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        if let Inner::File(stream) = &mut self.inner {
            stream.chunk = chunk_size.max(1);
        }
        self
    }
}

impl FileStream {
    /// Starts reading the next chunk (if any is left and none is being
    /// read) and polls it once, which submits it.
    fn read_ahead(&mut self, cx: &mut Context<'_>) {
        if self.remaining == 0 {
            return;
        }
        let slot = self.read.get_mut().unwrap_or_else(PoisonError::into_inner);
        let read = slot.get_or_insert_with(|| {
            let want = usize::try_from(self.remaining).map_or(self.chunk, |r| r.min(self.chunk));
            let file = Arc::clone(&self.file);
            let pos = self.pos;
            maybe_done(Box::pin(
                async move { file.read_at(BytesMut::with_capacity(want), pos).await },
            ) as ReadFuture)
        });
        // A result that is ready at once stays in the slot for the next call.
        let _ = Pin::new(read).poll(cx);
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            self.read_ahead(cx);
            let slot = self.read.get_mut().unwrap_or_else(PoisonError::into_inner);
            let Some(read) = slot.as_mut() else {
                return Poll::Ready(None);
            };
            ready!(Pin::new(&mut *read).poll(cx));
            let taken = Pin::new(read).take_output();
            *slot = None;
            let Some((res, mut buf)) = taken else {
                continue;
            };
            match res {
                Ok(0) => {
                    let missing = self.remaining;
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended {missing} bytes before the end of the response"),
                    ))));
                }
                Ok(n) => {
                    // The buffer may have had more capacity than asked for.
                    let n = usize::try_from(self.remaining).map_or(n, |r| r.min(n));
                    buf.truncate(n);
                    self.pos += n as u64;
                    self.remaining -= n as u64;
                    self.read_ahead(cx);
                    return Poll::Ready(Some(Ok(buf.freeze())));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Bytes(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Inner::File(stream) => stream
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|res| res.map(Frame::data))),
            Inner::Other(body) => Pin::new(other(body)).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Bytes(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Inner::File(stream) => stream.remaining == 0,
            Inner::Other(body) => body
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::File(stream) => SizeHint::with_exact(stream.remaining),
            Inner::Other(body) => body
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .size_hint(),
        }
    }
}

/// The body inside `Inner::Other`, reached through `&mut` (no lock).
fn other(
    body: &mut Mutex<UnsyncBoxBody<Bytes, io::Error>>,
) -> &mut UnsyncBoxBody<Bytes, io::Error> {
    body.get_mut().unwrap_or_else(PoisonError::into_inner)
}

impl Default for FileBody {
    fn default() -> Self {
        FileBody::empty()
    }
}

impl From<Bytes> for FileBody {
    fn from(bytes: Bytes) -> Self {
        FileBody::from_bytes(bytes)
    }
}

impl From<&'static str> for FileBody {
    fn from(s: &'static str) -> Self {
        FileBody::from_bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<String> for FileBody {
    fn from(s: String) -> Self {
        FileBody::from_bytes(Bytes::from(s))
    }
}

impl From<Vec<u8>> for FileBody {
    fn from(v: Vec<u8>) -> Self {
        FileBody::from_bytes(Bytes::from(v))
    }
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Bytes(bytes) => f
                .debug_struct("FileBody")
                .field("bytes", &bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Inner::File(stream) => f
                .debug_struct("FileBody")
                .field("file", &stream.file)
                .field("pos", &stream.pos)
                .field("remaining", &stream.remaining)
                .field("chunk", &stream.chunk)
                .finish(),
            Inner::Other(_) => f.debug_struct("FileBody").field("other", &"..").finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn fs_body_is_send_sync() {
        assert_send_sync::<FileBody>();
    }

    #[test]
    fn fs_bytes_body() {
        let body = FileBody::from("abc");
        assert!(!body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(3));
        let empty = FileBody::empty();
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        assert!(FileBody::from(Bytes::new()).is_end_stream());
    }
}
