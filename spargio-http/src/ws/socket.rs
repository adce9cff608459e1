//! A WebSocket over an upgraded connection: a `Stream` of received
//! messages and a `Sink` of messages to send.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::stream::FusedStream;
use futures_util::{Future, Sink, SinkExt, Stream, StreamExt};
use http::HeaderValue;
use spargio_rt::time::{sleep, Sleep};

use super::codec::{encode, error_close, Decoder, Role};
use super::config::WebSocketConfig;
use super::error::WsError;
use super::message::{CloseFrame, Message};
use crate::upgrade::Upgraded;

/// Bytes asked of the connection per read.
const READ_CHUNK: usize = 8 * 1024;

/// How long a server whose peer broke the protocol goes on reading (and
/// discarding) after its close: closing a socket with input unread sends a
/// TCP reset, which can discard the close frame before the peer reads it.
const ERROR_LINGER: Duration = Duration::from_secs(2);

/// One WebSocket connection.
///
/// Receive with [`recv`](Self::recv) (or as a `Stream`), send with
/// [`send`](Self::send) (or as a `Sink`); `futures_util::StreamExt::split`
/// gives halves for two tasks. The socket answers pings with pongs (only
/// the latest ping's, if pings come faster than the connection takes the
/// answers, as RFC 6455 §5.5.3 allows) and a close with a close by
/// itself; those answers go out while it is read (or with the next send).
/// After a close has been received, or the peer broke the protocol (it is
/// then sent a close with code 1002, 1007 or 1009), `recv` gives `None`
/// once the answer is written and a server's side of the connection is
/// shut (after a broken rule, once the peer has closed its side too, or
/// after 2 s, so that unread input does not turn the close into a reset);
/// a client's, once the server has ended the connection too (RFC 6455
/// §7.1.1: the server closes first, unless the client broke off over a
/// broken rule). The whole end is bounded by
/// [`close_timeout`](WebSocketConfig::close_timeout): a peer that never
/// answers a close or stops reading cannot hold the socket open.
///
/// Keep receiving until `None` (or flush with `send`/`close`) before
/// dropping the socket: a pong or a close's answer may still be queued,
/// and dropping it drops them.
///
/// A send waits (backpressure) while more than the configured
/// [`write_buffer_limit`](WebSocketConfig::write_buffer_limit) is queued
/// unwritten.
pub struct WebSocket<S = Upgraded> {
    io: S,
    role: Role,
    decoder: Decoder,
    input: BytesMut,
    output: BytesMut,
    write_limit: usize,
    protocol: Option<HeaderValue>,
    /// The answer to the latest ping, not yet queued (the queue was full).
    pong: Option<Bytes>,
    /// Bytes were written since the connection was last flushed (a TLS
    /// stream may hold them until then).
    unflushed: bool,
    /// This side's close frame is queued or sent.
    sent_close: bool,
    /// Nothing more will be received: a close came, the peer broke the
    /// protocol, or the connection ended or failed.
    read_done: bool,
    /// The peer broke the protocol: linger before the end.
    errored: bool,
    /// The linger's deadline, once it has begun.
    linger: Option<Sleep>,
    /// How long the end of the conversation may take.
    close_timeout: Duration,
    /// The end's deadline, from when the socket was first seen closing.
    closing: Option<Sleep>,
    /// The connection's write side is shut (or failed): nothing more goes
    /// out.
    write_done: bool,
    /// The peer's end of stream was read (or reading failed): nothing
    /// more can come in.
    peer_ended: bool,
    /// The end of the conversation is done: `recv` gives `None`.
    finished: bool,
    /// The task last waiting to send, woken when a read wrote queued bytes
    /// in its place or had to wait for the connection itself (the halves
    /// of a split socket wait apart, and a connection may keep one waker).
    sender: Option<Waker>,
    /// The task ending the conversation while it waits on a write, woken
    /// when a sender's write or flush comes through in its place (the
    /// sender's wait may have taken the connection's one waker from it).
    finisher: Option<Waker>,
}

impl<S> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("protocol", &self.protocol)
            .field("sent_close", &self.sent_close)
            .field("read_done", &self.read_done)
            .finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket over `io`, whose handshake is already done, as `role`.
    /// A server gets its sockets from
    /// [`WebSocketUpgrade::on_upgrade`](super::WebSocketUpgrade::on_upgrade);
    /// this is for the other cases (a client that made its own handshake,
    /// tests).
    pub fn from_raw(io: S, role: Role, config: WebSocketConfig) -> WebSocket<S> {
        WebSocket {
            io,
            role,
            decoder: Decoder::new(role, config.max_frame_size, config.max_message_size),
            input: BytesMut::new(),
            output: BytesMut::new(),
            write_limit: config.write_buffer_limit,
            protocol: None,
            pong: None,
            unflushed: false,
            sent_close: false,
            read_done: false,
            errored: false,
            linger: None,
            close_timeout: config.close_timeout,
            closing: None,
            write_done: false,
            peer_ended: false,
            finished: false,
            sender: None,
            finisher: None,
        }
    }

    pub(crate) fn with_protocol(mut self, protocol: Option<HeaderValue>) -> WebSocket<S> {
        self.protocol = protocol;
        self
    }

    /// The subprotocol the handshake chose, if any.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.protocol.as_ref()
    }

    /// The next message; `None` once nothing more will come (after a
    /// close, a protocol error or the end of the connection).
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        self.next().await
    }

    /// Sends `message` and waits until it is written.
    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        SinkExt::send(self, message).await
    }

    /// Sends a close frame with `frame`'s code and reason (`None`: one
    /// without a code) and waits until it is written; the same as sending
    /// [`Message::Close`]. Keep receiving until `None` to see the peer's
    /// answer; nothing more can be sent.
    pub async fn close_with(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        // Queued past the write limit (a close is at most 129 bytes): a
        // peer that stopped reading must not hold it back unbounded; the
        // close timeout bounds the rest.
        self.queue(&Message::Close(frame))?;
        SinkExt::close(self).await
    }

    /// Sends a close frame without a code (unless one went out already) and
    /// waits until everything queued is written: `SinkExt::close`, which an
    /// axum handler's `socket.close().await` calls.
    pub async fn close(&mut self) -> Result<(), WsError> {
        SinkExt::close(self).await
    }

    /// Queues `message`'s frame; whether it is a close.
    fn queue(&mut self, message: &Message) -> Result<(), WsError> {
        if self.sent_close || self.write_done {
            return Err(WsError::AlreadyClosed);
        }
        let mask = (self.role == Role::Client).then(masking_key);
        encode(&mut self.output, message, mask)?;
        if matches!(message, Message::Close(_)) {
            self.sent_close = true;
            // A pong after a close is not allowed.
            self.pong = None;
        }
        Ok(())
    }

    /// Answers a ping: queued at once while the queue has room, else kept
    /// (replacing an older unsent answer) until it has.
    fn answer_ping(&mut self, payload: Bytes) {
        if self.sent_close {
            return;
        }
        self.pong = Some(payload);
        self.queue_pong();
    }

    /// Queues the kept pong if the queue has room for it (an empty queue
    /// always has, even with a write limit of 0).
    fn queue_pong(&mut self) {
        if !self.output.is_empty() && self.output.len() >= self.write_limit {
            return;
        }
        if let Some(payload) = self.pong.take() {
            // At most 125 bytes: checked on receipt.
            let _ = self.queue(&Message::Pong(payload));
        }
    }

    /// Writes queued bytes until they are all out (`Ready(Ok)`), the
    /// connection would block, or it fails.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.output.is_empty() {
                self.queue_pong();
                if self.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            if self.write_done {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let res = ready!(Pin::new(&mut self.io).poll_write(cx, &self.output));
            match res {
                Ok(0) => {
                    self.write_done = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => {
                    self.output.advance(n);
                    self.unflushed = true;
                    self.queue_pong();
                }
                Err(e) => {
                    self.write_done = true;
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Writes what is queued and flushes the connection.
    fn poll_write_and_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_queued(cx))?;
        if self.unflushed && !self.write_done {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// From the reading side: writes and flushes what is queued (pongs, a
    /// close's answer, a sender's frames) as far as it goes now. A sender
    /// waiting is woken whether this moved its bytes or had to wait for
    /// the connection itself (which may then hold this task's waker, not
    /// the sender's): it looks again and waits on its own.
    fn push_queued(&mut self, cx: &mut Context<'_>) {
        if self.output.is_empty() && self.pong.is_none() && !self.unflushed {
            return;
        }
        let _ = self.poll_write_and_flush(cx);
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
    }

    /// The end of the conversation: the queued bytes written, a server's
    /// write side shut, and after a broken rule a linger that reads and
    /// discards until the peer closes (or [`ERROR_LINGER`] passes).
    /// Errors end it too: there is nobody left to tell.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.finished {
            return Poll::Ready(());
        }
        if !self.write_done {
            let Poll::Ready(flushed) = self.poll_write_and_flush(cx) else {
                self.wait_on_write(cx);
                return Poll::Pending;
            };
            // A client leaves closing the connection to the server (RFC
            // 6455 §7.1.1), unless it failed the connection (§7.1.7: the
            // failing endpoint closes it); a server shuts its side.
            if flushed.is_ok()
                && (self.role == Role::Server || self.errored)
                && Pin::new(&mut self.io).poll_close(cx).is_pending()
            {
                self.wait_on_write(cx);
                return Poll::Pending;
            }
            self.write_done = true;
            if let Some(sender) = self.sender.take() {
                sender.wake();
            }
        }
        if self.errored && self.role == Role::Server {
            ready!(self.poll_linger(cx));
        }
        if self.role == Role::Client && !self.errored {
            // After a clean close the server closes the connection first
            // (RFC 6455 §7.1.1, so that it, not the client, holds the TCP
            // TIME_WAIT): the client reads on until the server's end of
            // stream, bounded by the close timeout.
            ready!(self.poll_until_peer_ends(cx));
        }
        self.finished = true;
        self.input = BytesMut::new();
        Poll::Ready(())
    }

    /// The end of the conversation waits on the connection's write side:
    /// it is woken by the connection or by a sender whose write comes
    /// through first. A sender waiting is woken too, as the connection may
    /// now hold this task's waker instead of its own.
    fn wait_on_write(&mut self, cx: &mut Context<'_>) {
        self.finisher = Some(cx.waker().clone());
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
    }

    /// A sender's write or flush came through: the end of the
    /// conversation, if it waits on one, looks again.
    fn wake_finisher(&mut self) {
        if let Some(finisher) = self.finisher.take() {
            finisher.wake();
        }
    }

    /// Whether the end of the conversation has run past its deadline,
    /// which starts the first time this is asked while the socket is
    /// closing.
    fn close_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !(self.sent_close || self.read_done) || self.finished {
            return false;
        }
        let timeout = self.close_timeout;
        let deadline = self.closing.get_or_insert_with(|| sleep(timeout));
        Pin::new(deadline).poll(cx).is_ready()
    }

    /// Ends the conversation now, whatever is still queued or unanswered:
    /// the close deadline passed.
    fn abandon_close(&mut self) {
        self.read_done = true;
        self.write_done = true;
        self.finished = true;
        self.input = BytesMut::new();
        self.output = BytesMut::new();
        self.pong = None;
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
        self.wake_finisher();
    }

    /// Reads and discards until the peer's end of stream, an error, or the
    /// linger's deadline.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.linger.get_or_insert_with(|| sleep(ERROR_LINGER));
        if Pin::new(deadline).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        loop {
            self.input.clear();
            match ready!(self.poll_fill(cx)) {
                Ok(true) => {}
                Ok(false) | Err(_) => return Poll::Ready(()),
            }
        }
    }

    /// Reads and discards until the peer's end of stream or an error
    /// (nothing is left to read after a close frame).
    fn poll_until_peer_ends(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.peer_ended {
            self.input.clear();
            let _ = ready!(self.poll_fill(cx));
        }
        Poll::Ready(())
    }

    /// Reads once more into the input buffer: `Ready(Ok(false))` at the
    /// end of the connection.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let res = Pin::new(&mut self.io).poll_read(cx, &mut self.input[start..]);
        let got = match &res {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.input.truncate(start + got);
        if matches!(res, Poll::Ready(Ok(0) | Err(_))) {
            self.peer_ended = true;
        }
        res.map_ok(|n| n > 0)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for WebSocket<S> {
    /// True once the stream has ended (`None` was returned), so
    /// `futures::select!` can poll it.
    fn is_terminated(&self) -> bool {
        self.finished
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.close_expired(cx) {
            this.abandon_close();
            return Poll::Ready(None);
        }
        if this.read_done {
            ready!(this.poll_finish(cx));
            return Poll::Ready(None);
        }
        this.push_queued(cx);
        loop {
            match this.decoder.decode(&mut this.input) {
                Ok(Some(message)) => {
                    match &message {
                        Message::Ping(payload) => {
                            this.answer_ping(payload.clone());
                            this.push_queued(cx);
                        }
                        Message::Close(frame) => {
                            this.read_done = true;
                            if !this.sent_close {
                                // Echo the code (RFC 6455 §5.5.1).
                                let answer = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                                let _ = this.queue(&Message::Close(answer));
                            }
                            this.push_queued(cx);
                        }
                        _ => {}
                    }
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
                Err(e) => {
                    this.read_done = true;
                    this.errored = true;
                    if !this.sent_close {
                        let _ = this.queue(&error_close(e));
                    }
                    this.push_queued(cx);
                    return Poll::Ready(Some(Err(WsError::Protocol(e))));
                }
            }
            match ready!(this.poll_fill(cx)) {
                Ok(true) => {}
                Ok(false) => {
                    this.read_done = true;
                    if this.sent_close {
                        // Our close went out; the peer ended without
                        // answering it, which ends the conversation too.
                        ready!(this.poll_finish(cx));
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(WsError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer ended the connection without a close frame",
                    )))));
                }
                Err(e) => {
                    this.read_done = true;
                    return Poll::Ready(Some(Err(WsError::Io(e))));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if this.sent_close || this.write_done {
            return Poll::Ready(Err(WsError::AlreadyClosed));
        }
        if this.output.len() >= this.write_limit {
            this.sender = Some(cx.waker().clone());
            let written = ready!(this.poll_write_queued(cx));
            this.wake_finisher();
            written?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        self.get_mut().queue(&message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        // A close sent through the sink (`send(Message::Close(..))`) is
        // bounded by the close timeout as `close` is.
        if this.close_expired(cx) {
            this.abandon_close();
            return Poll::Ready(Err(close_timed_out()));
        }
        this.sender = Some(cx.waker().clone());
        let flushed = ready!(this.poll_write_and_flush(cx));
        this.wake_finisher();
        flushed?;
        Poll::Ready(Ok(()))
    }

    /// Sends a close frame without a code if none was sent, and writes
    /// everything queued. The connection stays open for the peer's
    /// answer; receive until `None` to see it.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if !this.sent_close && !this.write_done {
            this.queue(&Message::Close(None))?;
        }
        Pin::new(this).poll_flush(cx)
    }
}

/// The error of a close whose bytes the peer did not take in time.
fn close_timed_out() -> WsError {
    WsError::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer took no more of the connection's bytes within the close timeout",
    ))
}

/// A fresh masking key for a client frame (RFC 6455 §5.3 wants it
/// unpredictable).
fn masking_key() -> [u8; 4] {
    super::keys::random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::task::noop_waker_ref;

    use crate::ws::codec::Decoder;

    /// A connection that takes writes only while `open` (holding them
    /// until a flush if `hold_until_flush`, as a TLS stream may), has
    /// `incoming` to read (then nothing yet, or the end if `eof`), and
    /// keeps one write waker, as some connections do.
    #[derive(Default)]
    struct Mock {
        open: bool,
        hold_until_flush: bool,
        held: Vec<u8>,
        written: Vec<u8>,
        incoming: Vec<u8>,
        eof: bool,
        closed: bool,
        write_waker: Option<Waker>,
    }

    impl AsyncRead for Mock {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.incoming.is_empty() {
                return if self.eof {
                    Poll::Ready(Ok(0))
                } else {
                    Poll::Pending
                };
            }
            let n = buf.len().min(self.incoming.len());
            buf[..n].copy_from_slice(&self.incoming[..n]);
            self.incoming.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Mock {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if !self.open {
                self.write_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if self.hold_until_flush {
                self.held.extend_from_slice(buf);
            } else {
                self.written.extend_from_slice(buf);
            }
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let held = std::mem::take(&mut self.held);
            self.written.extend_from_slice(&held);
            Poll::Ready(Ok(()))
        }
        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            ready!(self.as_mut().poll_flush(cx))?;
            self.closed = true;
            Poll::Ready(Ok(()))
        }
    }

    fn socket(open: bool, role: Role) -> WebSocket<Mock> {
        socket_with(
            open,
            role,
            WebSocketConfig::default().write_buffer_limit(1024),
        )
    }

    fn socket_with(open: bool, role: Role, config: WebSocketConfig) -> WebSocket<Mock> {
        let io = Mock {
            open,
            ..Mock::default()
        };
        WebSocket::from_raw(io, role, config)
    }

    #[test]
    fn a_send_waits_while_the_queue_is_over_its_limit() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(false, Role::Server);
        let mut pinned = Pin::new(&mut ws);
        assert!(pinned.as_mut().poll_ready(&mut cx).is_ready());
        pinned
            .as_mut()
            .start_send(Message::binary(vec![0u8; 2000]))
            .unwrap();
        assert!(
            pinned.as_mut().poll_ready(&mut cx).is_pending(),
            "2000 bytes queued over a 1024-byte limit"
        );
        pinned.as_mut().get_mut().io.open = true;
        assert!(matches!(
            pinned.as_mut().poll_ready(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(ws.io.written.len(), 4 + 2000);
    }

    #[test]
    fn a_client_masks_its_frames_and_a_server_reads_them() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Client);
        let mut pinned = Pin::new(&mut ws);
        pinned.as_mut().start_send(Message::text("masked")).unwrap();
        assert!(pinned.as_mut().poll_flush(&mut cx).is_ready());
        let mut wire = BytesMut::from(&ws.io.written[..]);
        assert_ne!(wire[1] & 0x80, 0, "the mask bit is set");
        let mut server = Decoder::new(Role::Server, 1 << 20, 1 << 20);
        assert_eq!(server.decode(&mut wire), Ok(Some(Message::text("masked"))));
    }

    #[test]
    fn after_a_close_is_sent_sends_are_refused() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Server);
        let mut pinned = Pin::new(&mut ws);
        pinned.as_mut().start_send(Message::Close(None)).unwrap();
        assert!(matches!(
            pinned.as_mut().poll_ready(&mut cx),
            Poll::Ready(Err(WsError::AlreadyClosed))
        ));
        assert!(matches!(
            pinned.as_mut().start_send(Message::Ping(Bytes::new())),
            Err(WsError::AlreadyClosed)
        ));
    }

    #[test]
    fn a_ping_is_answered_while_reading() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Client);
        // An unmasked server ping.
        ws.io.incoming = vec![0x89, 0x02, b'h', b'i'];
        let got = Pin::new(&mut ws).poll_next(&mut cx);
        assert!(matches!(got, Poll::Ready(Some(Ok(Message::Ping(ref p)))) if p == "hi"));
        let mut wire = BytesMut::from(&ws.io.written[..]);
        let mut server = Decoder::new(Role::Server, 1 << 20, 1 << 20);
        assert_eq!(
            server.decode(&mut wire),
            Ok(Some(Message::Pong(Bytes::from_static(b"hi"))))
        );
    }

    #[test]
    fn a_zero_write_limit_still_answers_pings() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let config = WebSocketConfig::default().write_buffer_limit(0);
        let mut ws = socket_with(true, Role::Server, config);
        ws.io.incoming = masked(0x9, b"hi");
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Ok(Message::Ping(_))))
        ));
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        let mut wire = BytesMut::from(&ws.io.written[..]);
        let mut client = Decoder::new(Role::Client, 1 << 20, 1 << 20);
        assert_eq!(
            client.decode(&mut wire),
            Ok(Some(Message::Pong(Bytes::from_static(b"hi"))))
        );
    }

    /// A masked client frame of `opcode` with `payload` (at most 125 bytes).
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    #[test]
    fn a_ping_flood_at_a_stalled_connection_keeps_one_pong() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(false, Role::Server);
        for i in 0..10_000u32 {
            let payload = [i.to_be_bytes().as_slice(), &[0u8; 121]].concat();
            ws.io.incoming.extend_from_slice(&masked(0x9, &payload));
        }
        let mut pings = 0;
        while let Poll::Ready(Some(Ok(Message::Ping(_)))) = Pin::new(&mut ws).poll_next(&mut cx) {
            pings += 1;
        }
        assert_eq!(pings, 10_000);
        assert!(
            ws.output.len() <= ws.write_limit + 127,
            "{} bytes queued",
            ws.output.len()
        );
        // Once the connection takes bytes, the latest ping's answer is
        // among them.
        ws.io.open = true;
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        let last = [9_999u32.to_be_bytes().as_slice(), &[0u8; 121]].concat();
        let mut wire = BytesMut::from(&ws.io.written[..]);
        let mut client = Decoder::new(Role::Client, 1 << 20, 1 << 20);
        let mut pongs = Vec::new();
        while let Ok(Some(m)) = client.decode(&mut wire) {
            pongs.push(m);
        }
        assert!(pongs.len() < 20, "{} pongs", pongs.len());
        assert_eq!(pongs.last(), Some(&Message::Pong(last.into())));
    }

    #[test]
    fn pongs_are_flushed_through_a_connection_that_holds_writes() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Server);
        ws.io.hold_until_flush = true;
        ws.io.incoming.extend_from_slice(&masked(0x9, b"one"));
        ws.io.incoming.extend_from_slice(&masked(0x9, b"two"));
        for _ in 0..2 {
            assert!(Pin::new(&mut ws).poll_next(&mut cx).is_ready());
        }
        let mut wire = BytesMut::from(&ws.io.written[..]);
        let mut client = Decoder::new(Role::Client, 1 << 20, 1 << 20);
        assert_eq!(
            client.decode(&mut wire),
            Ok(Some(Message::Pong("one".into())))
        );
        assert_eq!(
            client.decode(&mut wire),
            Ok(Some(Message::Pong("two".into())))
        );
    }

    #[test]
    fn a_read_that_takes_the_connections_write_waker_wakes_the_sender() {
        let (sender_wakes, sender_waker) = crate::counting_waker::counting_waker();
        let mut ws = socket(false, Role::Server);
        let mut sender_cx = Context::from_waker(&sender_waker);
        Pin::new(&mut ws)
            .start_send(Message::text("queued"))
            .unwrap();
        assert!(Pin::new(&mut ws).poll_flush(&mut sender_cx).is_pending());
        // The reader polls: its write attempt replaces the sender's waker
        // in the connection; the sender must hear of it.
        ws.io.incoming.extend_from_slice(&masked(0x9, b"p"));
        let mut reader_cx = Context::from_waker(noop_waker_ref());
        assert!(Pin::new(&mut ws).poll_next(&mut reader_cx).is_ready());
        assert!(crate::counting_waker::woken(&sender_wakes) >= 1);
    }

    #[test]
    fn a_sender_whose_flush_comes_through_wakes_the_end_of_the_conversation() {
        let (reader_wakes, reader_waker) = crate::counting_waker::counting_waker();
        let mut ws = socket(false, Role::Server);
        // The peer's close came: the reader answers it and waits on the
        // connection's write side to finish.
        ws.io.incoming.extend_from_slice(&masked(0x8, b""));
        let mut reader_cx = Context::from_waker(&reader_waker);
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut reader_cx),
            Poll::Ready(Some(Ok(Message::Close(None))))
        ));
        assert!(Pin::new(&mut ws).poll_next(&mut reader_cx).is_pending());
        // The sender's flush takes the connection's one waker, then comes
        // through: the reader must hear of it, or it waits for the close
        // timeout.
        let mut sender_cx = Context::from_waker(noop_waker_ref());
        assert!(Pin::new(&mut ws).poll_flush(&mut sender_cx).is_pending());
        let before = crate::counting_waker::woken(&reader_wakes);
        ws.io.open = true;
        assert!(Pin::new(&mut ws).poll_flush(&mut sender_cx).is_ready());
        assert!(crate::counting_waker::woken(&reader_wakes) > before);
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut reader_cx),
            Poll::Ready(None)
        ));
        assert!(ws.io.closed, "the server's side is shut");
    }

    #[test]
    fn the_end_of_stream_after_our_close_finishes_at_once() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Server);
        Pin::new(&mut ws).start_send(Message::Close(None)).unwrap();
        ws.io.eof = true;
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(ws.io.closed, "the server's side is shut");
        assert_eq!(ws.io.written, [0x88, 0x00], "the close went out");
    }

    #[test]
    fn after_a_broken_rule_a_server_reads_on_until_the_peer_closes() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Server);
        // Unmasked: a broken rule. More input follows it.
        ws.io.incoming.extend_from_slice(&[0x81, 0x01, b'x']);
        ws.io.incoming.extend_from_slice(&[7u8; 30_000]);
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Err(WsError::Protocol(_))))
        ));
        // Reads and discards what came after, then waits for the end.
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert!(ws.io.incoming.is_empty(), "the rest of the input was read");
        assert!(ws.io.closed, "the server's side was shut first");
        ws.io.eof = true;
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    /// Runs `body` on a one-shard runtime (for the close deadline's timer).
    fn on_runtime<F: std::future::Future<Output = ()> + 'static>(
        body: impl FnOnce() -> F + Send + 'static,
    ) {
        spargio_rt::run_with(spargio_rt::Runtime::builder().shards(1), |_| body()).unwrap();
    }

    fn quick_close(role: Role, open: bool) -> WebSocket<Mock> {
        let config = WebSocketConfig::default().close_timeout(Duration::from_millis(20));
        socket_with(open, role, config)
    }

    #[test]
    fn a_client_that_fails_the_connection_closes_it() {
        on_runtime(|| async {
            // A masked frame from the server breaks the rules: the client
            // sends 1002 and closes its side, not waiting for the server.
            let mut ws = socket(true, Role::Client);
            ws.io.incoming = masked(0x1, b"x");
            assert!(matches!(ws.recv().await, Some(Err(WsError::Protocol(_)))));
            assert!(ws.recv().await.is_none());
            assert!(ws.io.closed, "the client closed the connection");
            assert!(!ws.io.written.is_empty(), "its close went out first");
        });
    }

    #[test]
    fn after_the_close_handshake_a_client_waits_for_the_server_to_end_the_connection() {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut ws = socket(true, Role::Client);
        // The server's close (1000), then nothing yet: no end of stream.
        ws.io.incoming = vec![0x88, 0x02, 0x03, 0xE8];
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Ok(Message::Close(_))))
        ));
        assert!(
            Pin::new(&mut ws).poll_next(&mut cx).is_pending(),
            "the server closes the connection first"
        );
        assert!(!ws.io.written.is_empty(), "the close was answered");
        assert!(!ws.io.closed, "the client leaves its side open");
        ws.io.eof = true;
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_client_whose_server_never_ends_the_connection_finishes_at_the_close_timeout() {
        on_runtime(|| async {
            let mut ws = quick_close(Role::Client, true);
            ws.io.incoming = vec![0x88, 0x02, 0x03, 0xE8];
            assert!(matches!(ws.recv().await, Some(Ok(Message::Close(_)))));
            assert!(ws.recv().await.is_none(), "ended at the deadline");
            assert!(ws.is_terminated());
        });
    }

    #[test]
    fn a_close_whose_answer_cannot_be_written_ends_at_the_close_timeout() {
        on_runtime(|| async {
            // The peer sends a close and then never reads again.
            let mut ws = quick_close(Role::Server, false);
            ws.io.incoming = masked(0x8, &1000u16.to_be_bytes());
            assert!(matches!(ws.recv().await, Some(Ok(Message::Close(_)))));
            assert!(ws.recv().await.is_none(), "ended at the deadline");
            assert!(ws.is_terminated());
            assert!(ws.io.written.is_empty(), "nothing could be written");
        });
    }

    #[test]
    fn a_close_the_peer_never_answers_ends_at_the_close_timeout() {
        on_runtime(|| async {
            let mut ws = quick_close(Role::Client, true);
            ws.close().await.unwrap();
            assert!(!ws.io.written.is_empty(), "our close went out");
            // No answer and no end of stream: the deadline ends it.
            assert!(ws.recv().await.is_none());
        });
    }

    #[test]
    fn a_close_with_a_code_that_cannot_be_written_fails_at_the_close_timeout() {
        on_runtime(|| async {
            let mut ws = quick_close(Role::Server, false);
            // More queued than the write limit: the close goes in anyway.
            let big = Message::binary(vec![0u8; 200_000]);
            ws.queue(&big).unwrap();
            let closing = spargio_rt::time::timeout(
                Duration::from_secs(5),
                ws.close_with(Some(CloseFrame::new(1001, "going away"))),
            );
            let err = closing
                .await
                .expect("bounded by the close timeout")
                .unwrap_err();
            assert!(
                matches!(&err, WsError::Io(e) if e.kind() == io::ErrorKind::TimedOut),
                "{err:?}"
            );
            assert!(ws.recv().await.is_none());
        });
    }

    #[test]
    fn a_close_that_cannot_be_written_fails_at_the_close_timeout() {
        on_runtime(|| async {
            let mut ws = quick_close(Role::Server, false);
            let err = ws.close().await.unwrap_err();
            assert!(
                matches!(&err, WsError::Io(e) if e.kind() == io::ErrorKind::TimedOut),
                "{err:?}"
            );
            assert!(ws.recv().await.is_none());
            assert!(matches!(
                ws.send(Message::text("late")).await,
                Err(WsError::AlreadyClosed)
            ));
        });
    }
}
