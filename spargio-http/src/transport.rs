//! The byte stream under an HTTP connection: plain (TCP or Unix) or TLS, split into
//! a read side and a write side so a request body can be read while a
//! response is written.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use spargio_rt::io::compat::Compat;
use spargio_rt::io::{AsyncRead, AsyncWrite, AsyncWriteExt, IoBuf};
use spargio_rt::net::{SocketStream, TcpStream};

/// A raw connection handed over after a `101 Switching Protocols`, as a
/// poll-based `futures_io` stream (see [`Upgraded`](crate::upgrade::Upgraded)).
pub trait RawIo: FuturesRead + FuturesWrite + Send + Unpin + 'static {}
impl<T: FuturesRead + FuturesWrite + Send + Unpin + 'static> RawIo for T {}

/// A connection's byte stream as the HTTP code drives it.
pub trait Transport: Sized + 'static {
    /// The read side.
    type Reader: TransportRead;
    /// The write side.
    type Writer: TransportWrite;

    /// Takes the stream apart into sides that work concurrently.
    fn split(self) -> (Self::Reader, Self::Writer);

    /// Puts the sides back together as a poll-based stream, for a
    /// connection upgrade.
    fn rejoin(read: Self::Reader, write: Self::Writer) -> Box<dyn RawIo>;
}

/// The read side of a [`Transport`].
pub trait TransportRead: 'static {
    /// Reads once, appending to `buf` (into its spare capacity, or, when
    /// it has none, into 16 KiB it reserves). `Ok(0)` is a clean end of
    /// stream, never a full buffer; a TLS stream cut without
    /// `close_notify` is an error, not `Ok(0)`.
    fn read_some(&mut self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)>;

    /// Stops any read this side keeps armed between calls and appends
    /// what that read already received to `buf`, so the stream can be
    /// handed over (an upgrade) without losing or reordering a byte. The
    /// default has nothing armed and does nothing.
    fn release(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<()>> {
        let _ = buf;
        async { Ok(()) }
    }

    /// Whether input the peer sent is waiting below this side, not yet
    /// handed to a read: in the socket's receive queue, or taken off the
    /// socket and held here. Does not block or consume anything. `None`
    /// when this side cannot tell (the default; TLS, whose session may
    /// hold records it has taken off the socket).
    fn input_waiting(&self) -> Option<bool> {
        None
    }
}

/// The write side of a [`Transport`].
pub trait TransportWrite: 'static {
    /// Whether the server may flush this side quietly while it waits for
    /// the next request (see [`spargio_rt::io::flush_and_read`]): the ring
    /// writes' completions then do not wake the connection's task.
    ///
    /// Only sound if a write whose ring operations all completed in full
    /// has nothing left to submit: a write that starts another ring write
    /// only when it is polled after one completes (TLS: the records behind
    /// the first 64 KiB, or behind an earlier segment) would stall until
    /// the client sends something. `false` (the default) flushes with
    /// wake-ups.
    const QUIET_FLUSH: bool = false;

    /// Writes all of `buf` and flushes; gives the buffer back (cleared on
    /// success) so it can be reused.
    fn write_all(&mut self, buf: BytesMut) -> impl Future<Output = (io::Result<()>, BytesMut)>;

    /// Writes every segment in full, in order, and flushes; gives the
    /// list back so it can be reused. Large body frames come this way,
    /// written from where they are instead of copied into a buffer.
    fn write_segments(
        &mut self,
        segments: Vec<Bytes>,
    ) -> impl Future<Output = (io::Result<()>, Vec<Bytes>)>;

    /// Closes the write side (TLS: sends `close_notify`; TCP: FIN).
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;

    /// Makes the connection end abortively, in place of
    /// [`shutdown`](Self::shutdown): when the stream is closed (both
    /// sides dropped), the peer gets a TCP reset instead of an orderly end
    /// of stream, so a response cut short cannot pass for a whole one.
    /// Bytes already written and not yet sent by the kernel may be
    /// discarded. Best effort; the default (a side with no socket to
    /// reset) does nothing, and so does it on a Unix socket, which has no
    /// reset to send.
    fn abort(&mut self) {}

    /// Turns [`abort`](Self::abort)'s reset-on-close on or off ahead of
    /// time: on while a close-delimited response body goes out, so that
    /// however the connection ends before the body is whole (a failed or
    /// timed-out write, a forced shutdown dropping the connection) the
    /// client sees a reset, not an end of stream it would take for the end
    /// of the body; off again once the body is all sent, before the clean
    /// close. Best effort; the default does nothing (a TLS side: a cut
    /// session lacks its `close_notify` anyway).
    fn reset_on_close(&mut self, _on: bool) {}

    /// Ends the write side at the socket (TCP: a FIN) without a TLS
    /// `close_notify`, in place of [`shutdown`](Self::shutdown), for a
    /// response cut short: a TLS client sees a truncated stream, a plain
    /// one the end of the stream, while the read side stays open so the
    /// server can read what the client still sends before it closes (a
    /// socket closed with input unread sends a reset, which discards what
    /// the kernel has not yet delivered). Best effort; the default (a side
    /// with no socket) does nothing.
    fn cut(&mut self) {}
}

/// What a `read_some` reserves when the caller's buffer has no spare room
/// (and the most a TLS read asks rustls for at once).
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// The read half of a plain (TCP or Unix) connection.
pub struct SocketReader(pub(crate) spargio_rt::io::ReadHalf<SocketStream>);

/// The write half of a plain (TCP or Unix) connection.
pub struct SocketWriter(pub(crate) spargio_rt::io::WriteHalf<SocketStream>);

impl Transport for SocketStream {
    type Reader = SocketReader;
    type Writer = SocketWriter;

    fn split(self) -> (SocketReader, SocketWriter) {
        let (r, w) = spargio_rt::io::split(self);
        (SocketReader(r), SocketWriter(w))
    }

    fn rejoin(read: SocketReader, write: SocketWriter) -> Box<dyn RawIo> {
        Box::new(Compat::new(spargio_rt::io::unsplit(read.0, write.0)))
    }
}

impl Transport for TcpStream {
    type Reader = SocketReader;
    type Writer = SocketWriter;

    fn split(self) -> (SocketReader, SocketWriter) {
        SocketStream::from(self).split()
    }

    fn rejoin(read: SocketReader, write: SocketWriter) -> Box<dyn RawIo> {
        SocketStream::rejoin(read, write)
    }
}

impl TransportRead for SocketReader {
    async fn read_some(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        if buf.len() == buf.capacity() {
            // An empty slice would read `Ok(0)`: a false end of stream.
            buf.reserve(READ_CHUNK);
        }
        let start = buf.len();
        let end = buf.capacity();
        let (res, slice) = self.0.read(buf.slice(start..end)).await;
        (res, slice.into_inner())
    }

    /// A non-blocking `MSG_PEEK` of the socket's receive queue
    /// ([`spargio_service::input_waiting`]).
    fn input_waiting(&self) -> Option<bool> {
        let stream: &SocketStream = self.0.get_ref().as_ref();
        Some(spargio_service::input_waiting(stream))
    }
}

impl TransportWrite for SocketWriter {
    /// A write that is not the last of a flush wakes the task: a partial
    /// one always, and `write_vectored_all` finishes a part-sent segment
    /// loudly when more follow.
    const QUIET_FLUSH: bool = true;

    async fn write_all(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
        let (res, mut buf) = AsyncWriteExt::write_all(&mut self.0, buf).await;
        if res.is_ok() {
            buf.clear();
        }
        (res, buf)
    }

    async fn write_segments(&mut self, segments: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        // One `writev` for all of them (several if there are more than the
        // kernel takes at once); a partial write goes on where it stopped.
        AsyncWriteExt::write_vectored_all(&mut self.0, segments).await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        AsyncWrite::shutdown(&mut self.0).await
    }

    /// Sets `SO_LINGER` to (on, 0 s): a TCP socket's close sends a reset.
    /// A Unix socket has no reset (the option changes nothing there): its
    /// peer sees the end of the stream, which shows a sized or chunked
    /// body cut short but not a close-delimited one.
    fn abort(&mut self) {
        self.reset_on_close(true);
    }

    /// `SO_LINGER` (on, 0 s) or off.
    fn reset_on_close(&mut self, on: bool) {
        let stream: &SocketStream = self.0.get_ref().as_ref();
        let linger = on.then_some(Duration::ZERO);
        let _ = stream.with_socket(|s| s.set_linger(linger));
    }

    /// `shutdown(SHUT_WR)` on the socket, at once (the call does not
    /// block).
    fn cut(&mut self) {
        let stream: &SocketStream = self.0.get_ref().as_ref();
        let _ = stream.with_socket(|s| s.shutdown(std::net::Shutdown::Write));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use spargio_rt::io::{AsyncWrite, AsyncWriteExt};
    use spargio_rt::net::{TcpListener, TcpStream};

    use super::{Transport, TransportRead};

    /// Waits until `reader` sees input waiting, or fails after 5 s.
    async fn until_waiting(reader: &impl TransportRead) {
        for _ in 0..5000 {
            if reader.input_waiting() == Some(true) {
                return;
            }
            spargio_rt::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the input never showed");
    }

    #[spargio_rt::test]
    async fn a_tcp_reader_sees_input_waiting_in_the_socket_without_taking_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut reader, _writer) = server.split();
        assert_eq!(reader.input_waiting(), Some(false));

        let (res, _) = client.write_all(b"GET".to_vec()).await;
        res.unwrap();
        until_waiting(&reader).await;
        // Looking took nothing.
        assert_eq!(reader.input_waiting(), Some(true));
        let (res, buf) = reader.read_some(BytesMut::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(&buf[..], b"GET");
        assert_eq!(reader.input_waiting(), Some(false));

        // A buffer with no spare room grows: no false end of stream.
        let (res, _) = client.write_all(b"HEAD".to_vec()).await;
        res.unwrap();
        let (res, buf) = reader.read_some(BytesMut::new()).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(&buf[..], b"HEAD");

        // The client's end of stream, with nothing before it, is not input.
        AsyncWrite::shutdown(&mut client).await.unwrap();
        let (res, _) = reader.read_some(BytesMut::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 0);
        assert_eq!(reader.input_waiting(), Some(false));
    }
}
