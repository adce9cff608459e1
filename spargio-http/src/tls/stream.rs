//! TLS streams and their halves, as [`Transport`]s.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use rustls::{ClientConnection, ProtocolVersion, ServerConnection};
use spargio_rt::io::compat::Compat;
use spargio_rt::net::SocketStream;

// `READ_CHUNK`: the most one `TlsReader::read_some` hands over, the
// largest TLS record's plaintext (16 KiB).
use crate::transport::{RawIo, Transport, TransportRead, TransportWrite, READ_CHUNK};

/// Either side's TLS stream: what the halves share.
type Inner = futures_rustls::TlsStream<Compat<SocketStream>>;

/// A server-side TLS connection, from [`TlsAcceptor::accept`](super::TlsAcceptor::accept).
///
/// Ask it about the session ([`alpn_protocol`](Self::alpn_protocol),
/// [`server_name`](Self::server_name)...) before [splitting](Transport::split)
/// it for the HTTP driver.
#[derive(Debug)]
pub struct ServerTlsStream(futures_rustls::server::TlsStream<Compat<SocketStream>>);

/// A client-side TLS connection, from [`TlsConnector::connect`](super::TlsConnector::connect).
///
/// Ask it about the session before [splitting](Transport::split) it.
#[derive(Debug)]
pub struct ClientTlsStream(futures_rustls::client::TlsStream<Compat<SocketStream>>);

impl ServerTlsStream {
    pub(crate) fn new(s: futures_rustls::server::TlsStream<Compat<SocketStream>>) -> Self {
        ServerTlsStream(s)
    }

    /// The protocol agreed with ALPN (`b"http/1.1"`), or `None` if the
    /// client offered none.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.connection().alpn_protocol()
    }

    /// The host name the client asked for with SNI, or `None` (clients
    /// connecting to an IP address send none).
    pub fn server_name(&self) -> Option<&str> {
        self.connection().server_name()
    }

    /// The TLS version in use.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.connection().protocol_version()
    }

    /// The rustls session, for anything else (the cipher suite, the
    /// client's certificates when the configuration asks for them).
    pub fn connection(&self) -> &ServerConnection {
        self.0.get_ref().1
    }
}

impl ClientTlsStream {
    pub(crate) fn new(s: futures_rustls::client::TlsStream<Compat<SocketStream>>) -> Self {
        ClientTlsStream(s)
    }

    /// The protocol the server chose with ALPN, or `None` if it chose
    /// none (or we offered none).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.connection().alpn_protocol()
    }

    /// The TLS version in use.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.connection().protocol_version()
    }

    /// The rustls session, for anything else (the cipher suite, the
    /// server's certificate chain).
    pub fn connection(&self) -> &ClientConnection {
        self.0.get_ref().1
    }
}

/// The read half of a TLS connection (either side).
///
/// Plaintext comes out of rustls through a small buffer of the reader's
/// own (16 KiB, zeroed once when first used) and is copied into the
/// caller's `BytesMut`: a copy of the bytes that arrived instead of
/// zeroing the caller's spare capacity on every read. Nothing stays in
/// that buffer between reads.
pub struct TlsReader {
    half: ReadHalf<Inner>,
    scratch: Vec<u8>,
    /// A read failed (the peer cut the connection without
    /// `close_notify`, the socket failed): every later read fails the
    /// same way (futures-rustls would report `Ok(0)`, a clean end).
    failed: Option<io::ErrorKind>,
}

/// The write half of a TLS connection (either side).
pub struct TlsWriter {
    half: WriteHalf<Inner>,
    /// The socket under the session, for [`TransportWrite::abort`];
    /// `None` if both its sides were busy with an op when it was split.
    /// `half` keeps the socket (so this fd) open.
    socket: Option<RawFd>,
}

fn split_inner(stream: Inner) -> (TlsReader, TlsWriter) {
    let socket = match stream.get_ref().0.get_ref() {
        (Some(read), _) => Some(read.as_raw_fd()),
        (None, Some(write)) => Some(write.as_raw_fd()),
        (None, None) => None,
    };
    let (read, write) = AsyncReadExt::split(stream);
    let reader = TlsReader {
        half: read,
        scratch: Vec::new(),
        failed: None,
    };
    (
        reader,
        TlsWriter {
            half: write,
            socket,
        },
    )
}

fn rejoin_inner(read: TlsReader, write: TlsWriter) -> Box<dyn RawIo> {
    let failed = read.failed;
    match read.half.reunite(write.half) {
        Ok(stream) => Box::new(Truncation::latch(stream, failed)),
        // Halves of two different connections: keep them paired as they
        // were given rather than panic.
        Err(futures_util::io::ReuniteError(read, write)) => {
            Box::new(Truncation::latch(Unmatched { read, write }, failed))
        }
    }
}

/// A rejoined TLS stream that keeps reporting a truncation or a failed
/// read: futures-rustls reports a connection cut without `close_notify`
/// (an [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error) or a failed
/// socket read once, and then `Ok(0)` as if the stream had ended cleanly;
/// this says it again on every read, as [`TlsReader`] does.
///
/// Its reads also send what the session holds back: futures-rustls keeps
/// a sealed record when the socket's write side is busy and reports the
/// write done, and only a later write or flush sends it. A caller that
/// writes and then waits to read (an echo that does not flush) would wait
/// for an answer to bytes the peer never got.
///
/// An empty read returns `Ok(0)` without reaching the session, which takes
/// a read of 0 bytes for the end of the stream.
struct Truncation<S> {
    inner: S,
    /// The kind of the read error that every later read repeats.
    failed: Option<io::ErrorKind>,
}

impl<S> Truncation<S> {
    fn latch(inner: S, failed: Option<io::ErrorKind>) -> Self {
        Truncation { inner, failed }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Truncation<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(failed_before(kind)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Whatever it gives: a flush still waiting is woken with `cx` (the
        // read goes on meanwhile), and a failed one fails the next write.
        let _ = Pin::new(&mut self.inner).poll_flush(cx);
        let res = std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if let Err(e) = &res {
            self.failed = self.failed.or(lasting(e));
        }
        Poll::Ready(res)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Truncation<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl Transport for ServerTlsStream {
    type Reader = TlsReader;
    type Writer = TlsWriter;

    /// Splits the connection into halves that read and write
    /// concurrently (they share the rustls session behind a lock held
    /// only while one of them is being polled).
    fn split(self) -> (TlsReader, TlsWriter) {
        split_inner(self.0.into())
    }

    /// The TLS stream again, as a `futures_io` stream.
    fn rejoin(read: TlsReader, write: TlsWriter) -> Box<dyn RawIo> {
        rejoin_inner(read, write)
    }
}

impl Transport for ClientTlsStream {
    type Reader = TlsReader;
    type Writer = TlsWriter;

    /// Splits the connection into halves that read and write
    /// concurrently.
    fn split(self) -> (TlsReader, TlsWriter) {
        split_inner(self.0.into())
    }

    /// The TLS stream again, as a `futures_io` stream.
    fn rejoin(read: TlsReader, write: TlsWriter) -> Box<dyn RawIo> {
        rejoin_inner(read, write)
    }
}

/// The kind of a read error that every later read must repeat: after a
/// truncation or a failed socket read, futures-rustls reports `Ok(0)`,
/// which a caller would take for the peer's `close_notify`. `None` for
/// errors a read may recover from.
fn lasting(e: &io::Error) -> Option<io::ErrorKind> {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
        kind => Some(kind),
    }
}

/// The error a read repeats after one of `kind` failed it.
fn failed_before(kind: io::ErrorKind) -> io::Error {
    if kind == io::ErrorKind::UnexpectedEof {
        return io::Error::new(
            kind,
            "peer closed connection without sending TLS close_notify",
        );
    }
    io::Error::new(
        kind,
        "an earlier read of the TLS connection failed; it has no clean end",
    )
}

impl TlsReader {
    /// Whether a read now would return at once: plaintext, the peer's
    /// `close_notify`, or an error (a truncation, a bad record) is already
    /// here, in rustls or in the bytes read from the socket but not yet
    /// decrypted. Never waits: one poll with a waker that does nothing.
    /// When nothing is here that poll leaves a socket read in flight,
    /// which the next [`read_some`](TransportRead::read_some) takes over
    /// (the compat adapter keeps it), so ask just before reading. A byte
    /// of plaintext found this way is consumed: the caller is expected to
    /// drop the connection then.
    pub(crate) fn has_input_now(&mut self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut byte = [0u8; 1];
        match Pin::new(&mut self.half).poll_read(&mut cx, &mut byte) {
            Poll::Pending => false,
            Poll::Ready(Err(e)) => {
                // A rustls stream reports a truncation or a failed socket
                // read once and then ends cleanly: latch it, as
                // `read_some` does, so no later read takes the failure
                // for a `close_notify`.
                self.failed = self.failed.or(lasting(&e));
                true
            }
            Poll::Ready(Ok(_)) => true,
        }
    }
}

impl TransportRead for TlsReader {
    /// Reads up to 16 KiB of plaintext (at most the spare capacity, or
    /// 16 KiB if there is none, growing `buf`). `Ok(0)` only after the
    /// peer's `close_notify`; a connection closed without one is an
    /// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error, now and on
    /// every later call (any other failed read is repeated too). Cancel-safe: bytes are appended only when the
    /// read completes.
    async fn read_some(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        if let Some(kind) = self.failed {
            return (Err(failed_before(kind)), buf);
        }
        let spare = buf.capacity() - buf.len();
        let want = if spare == 0 {
            READ_CHUNK
        } else {
            spare.min(READ_CHUNK)
        };
        if self.scratch.len() < want {
            self.scratch.resize(want, 0);
        }
        match self.half.read(&mut self.scratch[..want]).await {
            Ok(n) => {
                buf.extend_from_slice(&self.scratch[..n]);
                (Ok(n), buf)
            }
            Err(e) => {
                self.failed = self.failed.or(lasting(&e));
                (Err(e), buf)
            }
        }
    }
}

impl TransportWrite for TlsWriter {
    /// Not quiet: the TLS session hands its records to the socket a ring
    /// write at a time, starting the next one only when polled after the
    /// last completes; a quiet completion would leave the rest unsent.
    const QUIET_FLUSH: bool = false;

    /// Encrypts and sends all of `buf`, then flushes; clears it on
    /// success.
    async fn write_all(&mut self, mut buf: BytesMut) -> (io::Result<()>, BytesMut) {
        let res = async {
            self.half.write_all(&buf).await?;
            self.half.flush().await
        }
        .await;
        if res.is_ok() {
            buf.clear();
        }
        (res, buf)
    }

    /// Encrypts and sends every segment in order, then flushes. rustls
    /// copies each into its records; nothing is copied before that.
    async fn write_segments(&mut self, segments: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        let res = async {
            for segment in &segments {
                self.half.write_all(segment).await?;
            }
            self.half.flush().await
        }
        .await;
        (res, segments)
    }

    /// Sends `close_notify`, then shuts the socket's write side down. The
    /// reader can still receive.
    async fn shutdown(&mut self) -> io::Result<()> {
        self.half.close().await
    }

    /// Sends no `close_notify` and sets `SO_LINGER` to (on, 0 s) on the
    /// socket: a TCP socket's close then sends a reset (a Unix socket has
    /// none; its peer sees a stream cut without `close_notify`).
    fn abort(&mut self) {
        if let Some(fd) = self.socket {
            reset_on_close(fd);
        }
    }

    /// Sends no `close_notify`: `shutdown(SHUT_WR)` on the socket under
    /// the session, at once (the call does not block).
    fn cut(&mut self) {
        if let Some(fd) = self.socket {
            // SAFETY: `fd` is the socket under the session, kept open by
            // `half` (see `socket`); shutdown(2) takes no pointers, and an
            // error (e.g. not connected) is ignored: best effort.
            unsafe {
                libc::shutdown(fd, libc::SHUT_WR);
            }
        }
    }
}

/// Sets `SO_LINGER` to on with a zero timeout on the socket `fd`, so its
/// final close sends a reset (RST) rather than a FIN. Best effort: a
/// failure is ignored. `fd` must be open for the call.
fn reset_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `setsockopt` only reads `size_of::<linger>()` bytes from
    // `linger`, a live local of that type. `fd` is open: the caller's
    // `TlsWriter` holds the stream that owns it.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

impl fmt::Debug for TlsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReader")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TlsWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriter").finish_non_exhaustive()
    }
}

/// Halves that did not come from the same split, rejoined side by side.
struct Unmatched {
    read: ReadHalf<Inner>,
    write: WriteHalf<Inner>,
}

impl AsyncRead for Unmatched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Unmatched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    /// A connection whose first read fails with `first`, then ends
    /// cleanly, as futures-rustls's stream does after a failed read.
    struct FailsOnce(Option<io::ErrorKind>);

    impl AsyncRead for FailsOnce {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(match self.0.take() {
                Some(kind) => Err(kind.into()),
                None => Ok(0),
            })
        }
    }

    impl AsyncWrite for FailsOnce {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn read(stream: &mut Truncation<FailsOnce>) -> io::Result<usize> {
        let mut cx = Context::from_waker(noop_waker_ref());
        match Pin::new(stream).poll_read(&mut cx, &mut [0u8; 8]) {
            Poll::Ready(res) => res,
            Poll::Pending => panic!("the mock never waits"),
        }
    }

    #[test]
    fn a_failed_read_is_repeated_not_followed_by_a_clean_end() {
        for kind in [
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
        ] {
            let mut stream = Truncation::latch(FailsOnce(Some(kind)), None);
            assert_eq!(read(&mut stream).unwrap_err().kind(), kind);
            assert_eq!(read(&mut stream).unwrap_err().kind(), kind, "{kind:?}");
        }
    }

    #[test]
    fn an_interrupted_read_is_not_repeated() {
        let mut stream = Truncation::latch(FailsOnce(Some(io::ErrorKind::Interrupted)), None);
        assert!(read(&mut stream).is_err());
        assert_eq!(read(&mut stream).unwrap(), 0);
    }
}
