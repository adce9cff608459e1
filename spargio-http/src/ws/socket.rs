//! A WebSocket over an upgraded connection: a `Stream` of received
//! messages and a `Sink` of messages to send.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use http::HeaderValue;

use super::codec::{encode, error_close, Decoder, Role};
use super::config::WebSocketConfig;
use super::error::WsError;
use super::message::{CloseFrame, Message};
use crate::upgrade::Upgraded;

/// Bytes asked of the connection per read.
const READ_CHUNK: usize = 8 * 1024;

/// One WebSocket connection.
///
/// Receive with [`recv`](Self::recv) (or as a `Stream`), send with
/// [`send`](Self::send) (or as a `Sink`); `futures_util::StreamExt::split`
/// gives halves for two tasks. The socket answers pings with pongs and a
/// close with a close by itself, as RFC 6455 asks; those answers go out
/// while it is read (or with the next send). After a close has been
/// received, or the peer broke the protocol (it is then sent a close
/// with code 1002, 1007 or 1009), `recv` gives `None` once the answer is
/// written, and a server's side of the connection is shut.
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
    /// This side's close frame is queued or sent.
    sent_close: bool,
    /// Nothing more will be received: a close came, the peer broke the
    /// protocol, or the connection ended or failed.
    read_done: bool,
    /// The connection's write side is shut (or failed): nothing more goes
    /// out.
    write_done: bool,
    /// The task last waiting to send, woken when a read wrote queued
    /// bytes in its place (the halves of a split socket wait apart).
    sender: Option<Waker>,
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
            sent_close: false,
            read_done: false,
            write_done: false,
            sender: None,
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

    /// Sends a close frame (`None`: one without a code) and waits until it
    /// is written. Keep receiving until `None` to see the peer's answer;
    /// nothing more can be sent.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        self.send(Message::Close(frame)).await
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
        }
        Ok(())
    }

    /// Writes queued bytes until they are all out (`Ready(Ok)`), the
    /// connection would block, or it fails.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.output.is_empty() {
            if self.write_done {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let res = ready!(Pin::new(&mut self.io).poll_write(cx, &self.output));
            match res {
                Ok(0) => {
                    self.write_done = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => self.output.advance(n),
                Err(e) => {
                    self.write_done = true;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// From the reading side: writes what is queued (pongs, a close's
    /// answer, a sender's frames) as far as it goes without waiting on
    /// anything but this task, and wakes a sender whose bytes moved.
    fn push_queued(&mut self, cx: &mut Context<'_>) {
        if self.output.is_empty() {
            return;
        }
        let before = self.output.len();
        let done = matches!(self.poll_write_queued(cx), Poll::Ready(_));
        if done || self.output.len() != before {
            if let Some(sender) = self.sender.take() {
                sender.wake();
            }
        }
    }

    /// The end of the conversation: the queued bytes written, then (a
    /// server's) write side shut. Errors end it too: there is nobody
    /// left to tell.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.write_done {
            return Poll::Ready(());
        }
        if ready!(self.poll_write_queued(cx)).is_err() {
            return Poll::Ready(());
        }
        let flushed = ready!(Pin::new(&mut self.io).poll_flush(cx));
        // A client leaves closing the connection to the server (RFC 6455
        // §7.1.1); a server shuts its side.
        if flushed.is_ok() && self.role == Role::Server {
            let _ = ready!(Pin::new(&mut self.io).poll_close(cx));
        }
        self.write_done = true;
        if let Some(sender) = self.sender.take() {
            sender.wake();
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
        res.map_ok(|n| n > 0)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.read_done {
            ready!(this.poll_finish(cx));
            return Poll::Ready(None);
        }
        this.push_queued(cx);
        loop {
            match this.decoder.decode(&mut this.input) {
                Ok(Some(message)) => {
                    match &message {
                        Message::Ping(payload) if !this.sent_close => {
                            // At most 125 bytes: checked on receipt.
                            let _ = this.queue(&Message::Pong(payload.clone()));
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
            ready!(this.poll_write_queued(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        self.get_mut().queue(&message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        this.sender = Some(cx.waker().clone());
        ready!(this.poll_write_queued(cx))?;
        if this.write_done {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
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

/// A fresh masking key for a client frame (RFC 6455 §5.3 wants it
/// unpredictable).
fn masking_key() -> [u8; 4] {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut key).is_err() {
        // The system's generator failed: any key keeps the framing valid.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        key = nanos.to_ne_bytes();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::task::noop_waker_ref;

    use crate::ws::codec::Decoder;

    /// A connection that takes writes only while `open`, and has
    /// `incoming` to read (then nothing yet).
    struct Mock {
        open: bool,
        written: Vec<u8>,
        incoming: Vec<u8>,
    }

    impl AsyncRead for Mock {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.incoming.is_empty() {
                return Poll::Pending;
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
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if !self.open {
                return Poll::Pending;
            }
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn socket(open: bool, role: Role) -> WebSocket<Mock> {
        let io = Mock {
            open,
            written: Vec::new(),
            incoming: Vec::new(),
        };
        let config = WebSocketConfig::default().write_buffer_limit(1024);
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
}
