//! [`Client`]: the codec's client side on a spargio-rt TCP or Unix stream.

use std::io;

use bytes::Bytes;
use spargio_rt::io::{AsyncRead, IoBuf};
use spargio_rt::net::{SocketStream, TcpStream, ToSocketAddrs, UnixStream};

use super::frame::{request_len, FrameDecoder, FrameError, DEFAULT_MAX_FRAME_LEN};
use super::read_buffer::ReadBuffer;
use super::status::Status;
use super::write::Output;
use crate::send_watch::SendWatch;

/// What a call comes back with: the service's response, or the server's
/// error status and message.
pub type Reply = Result<Bytes, (Status, String)>;

/// A client for [`LengthDelimited`](super::LengthDelimited) servers, for
/// tests, benchmarks and simple RPC.
///
/// [`call`](Self::call) sends one request and waits for its response. To
/// pipeline, [`send`](Self::send) (or [`feed`](Self::feed) several, then
/// [`flush`](Self::flush)) and [`recv`](Self::recv) the responses later:
/// they come back in the order the requests went.
///
/// An outer `Err` is an I/O or protocol failure (a socket error, the
/// server's close, a response frame over
/// [`max_frame_len`](Self::max_frame_len)): the connection is unusable,
/// and the client is *broken* ([`is_broken`](Self::is_broken)): every
/// later method fails at once with [`io::ErrorKind::BrokenPipe`] naming
/// the failure (after a failed write, [`recv`](Self::recv) still reads
/// the responses already on their way, such as those a server sent before
/// it closed). Two outer `Err`s leave the client whole: a payload too
/// large to send ([`io::ErrorKind::InvalidInput`], nothing sent), and a
/// response frame whose status byte is missing or unknown
/// ([`FrameError::MissingStatus`], [`FrameError::UnknownStatus`], as
/// [`io::ErrorKind::InvalidData`]): that frame is consumed in its
/// request's place, and the next [`recv`](Self::recv) reads the next
/// response.
///
/// The inner `Err` is a request the server answered with an error status.
///
/// # Pipelining limits
///
/// While [`feed`](Self::feed), [`send`](Self::send) or
/// [`flush`](Self::flush) write, nothing reads the responses, and the
/// server stops reading requests while it cannot write its responses. So
/// the requests in flight, and their responses, must fit the socket
/// buffers (a few hundred KiB), or the client must read responses as it
/// goes (a window of sends, then their [`recv`](Self::recv)s); otherwise
/// both sides block in writes until the server's send timeout closes the
/// connection. See the [module docs](super).
///
/// # Cancellation
///
/// A call, send, feed, flush or recv dropped before it finished (under a
/// timeout, say) may have written part of a frame or read part of a
/// response that is then lost, so the connection's framing is unknown
/// afterwards. Such a client is *broken*: every later method fails at once
/// with [`io::ErrorKind::BrokenPipe`] naming what was cut short, instead of
/// sending a corrupt frame or handing back another request's response.
/// Connect a new client after a cancelled call.
///
/// ```no_run
/// use bytes::Bytes;
/// use spargio_service::codec::{Client, Status};
///
/// # async fn demo() -> std::io::Result<()> {
/// let mut client = Client::connect("127.0.0.1:7000").await?;
/// match client.call(Bytes::from_static(b"ping")).await? {
///     Ok(response) => println!("{} bytes back", response.len()),
///     Err((status, message)) => eprintln!("{status}: {message}"),
/// }
///
/// // Pipelined: three requests in one write, then three responses.
/// for i in 0..3u8 {
///     client.feed(Bytes::from(vec![i])).await?;
/// }
/// client.flush().await?;
/// for _ in 0..3 {
///     let _ = client.recv().await?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct Client {
    stream: SocketStream,
    decoder: FrameDecoder,
    input: ReadBuffer,
    output: Output,
    /// The operation in progress, set while it awaits I/O; still set when
    /// the next method starts means that operation was dropped midway.
    cut: Option<&'static str>,
    /// Set when an operation failed and left the connection unusable: what
    /// failed and why.
    failed: Option<String>,
    /// Set when a write failed (`send`, `feed`, `flush`): no more requests
    /// go out, but responses already on their way can still be received.
    write_failed: Option<String>,
}

impl Client {
    /// Connects to a server (with `TCP_NODELAY`, as a request/response
    /// client wants).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client::new(stream))
    }

    /// Connects to a server listening on the Unix socket at `path` (see
    /// [`ServerBuilder::bind_unix`](crate::ServerBuilder::bind_unix)).
    pub async fn connect_unix(path: impl AsRef<std::path::Path>) -> io::Result<Client> {
        Ok(Client::new(UnixStream::connect(path).await?))
    }

    /// A client on a connected stream: a [`TcpStream`], a [`UnixStream`]
    /// or a [`SocketStream`].
    pub fn new(stream: impl Into<SocketStream>) -> Client {
        Client {
            stream: stream.into(),
            // A response frame counts its status byte: the server's
            // largest request, echoed, must fit.
            decoder: FrameDecoder::with_max_frame_len(DEFAULT_MAX_FRAME_LEN + 1),
            input: ReadBuffer::default(),
            output: Output::new(SendWatch::unbounded()),
            cut: None,
            failed: None,
            write_failed: None,
        }
    }

    /// Fails if an earlier operation was dropped midway or failed the
    /// connection; otherwise marks `what` as in progress until
    /// [`done`](Self::done).
    fn begin(&mut self, what: &'static str) -> io::Result<()> {
        if let Some(cut) = self.cut {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "codec client is broken: an earlier {cut} was cancelled midway, so the \
                     connection's framing is unknown; connect a new client"
                ),
            ));
        }
        let writes = what != "recv";
        let failed = self
            .failed
            .as_ref()
            .or(self.write_failed.as_ref().filter(|_| writes));
        if let Some(failed) = failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("codec client is broken: {failed}; connect a new client"),
            ));
        }
        self.cut = Some(what);
        Ok(())
    }

    /// Ends the operation [`begin`](Self::begin) started, passing its
    /// result through; an error that leaves the connection unusable
    /// breaks the client.
    fn done<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        let what = self.cut.take().unwrap_or("operation");
        if let Err(e) = &result {
            if !leaves_the_stream_whole(e) {
                let failed = Some(format!("an earlier {what} failed ({e})"));
                if matches!(what, "send" | "feed" | "flush") {
                    // Responses to requests that went out earlier may still
                    // be read (the server may have answered, then closed).
                    self.write_failed = failed;
                } else {
                    self.failed = failed;
                }
            }
        }
        result
    }

    /// Whether the client can no longer be used: an earlier operation was
    /// cancelled midway (see [Cancellation](Self#cancellation)), or failed
    /// in a way that leaves the connection unusable (an I/O error, the
    /// server's close, a response frame over the limit; see the
    /// [type docs](Self)). Every method of a broken client fails with
    /// [`io::ErrorKind::BrokenPipe`], except after a failed `send`, `feed`
    /// or `flush`: then [`recv`](Self::recv) still reads the responses
    /// already on their way.
    pub fn is_broken(&self) -> bool {
        self.cut.is_some() || self.failed.is_some() || self.write_failed.is_some()
    }

    /// Refuses response frames longer than `max` bytes (status byte
    /// included); the default is one more than
    /// [`DEFAULT_MAX_FRAME_LEN`](super::DEFAULT_MAX_FRAME_LEN), so a
    /// payload as large as a default server takes comes back whole.
    pub fn max_frame_len(mut self, max: usize) -> Client {
        self.decoder = FrameDecoder::with_max_frame_len(max);
        self
    }

    /// Sends `payload` and waits for its response.
    ///
    /// If responses to earlier [`send`](Self::send)s are still unread, this
    /// returns the first of those instead: use `call` on a client that is
    /// not pipelining.
    ///
    /// A payload longer than
    /// [`MAX_REQUEST_PAYLOAD`](super::MAX_REQUEST_PAYLOAD) fails with
    /// [`io::ErrorKind::InvalidInput`] before anything is sent (as with
    /// [`send`](Self::send) and [`feed`](Self::feed)).
    pub async fn call(&mut self, payload: Bytes) -> io::Result<Reply> {
        request_len(payload.len())?;
        self.begin("call")?;
        let written = async {
            self.output.request(&mut self.stream, payload).await?;
            self.output.flush(&mut self.stream).await
        }
        .await;
        let result = match written {
            Ok(()) => self.read_response().await,
            // The server may have answered and closed before the request
            // was all out (one over its frame limit gets `BadRequest`,
            // then a close): its answer says more than the broken pipe.
            Err(e) if closed_by_peer(&e) => match self.read_response().await {
                Ok(reply) => {
                    self.write_failed = Some(format!("an earlier call's write failed ({e})"));
                    Ok(reply)
                }
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.done(result)
    }

    /// Sends a request (and anything [`feed`](Self::feed) queued) without
    /// waiting for its response. A payload over
    /// [`MAX_REQUEST_PAYLOAD`](super::MAX_REQUEST_PAYLOAD) fails with
    /// [`io::ErrorKind::InvalidInput`], sending nothing.
    pub async fn send(&mut self, payload: Bytes) -> io::Result<()> {
        request_len(payload.len())?;
        self.begin("send")?;
        let result = async {
            self.output.request(&mut self.stream, payload).await?;
            self.output.flush(&mut self.stream).await
        }
        .await;
        self.done(result)
    }

    /// Queues a request to go out with the next [`flush`](Self::flush) or
    /// [`send`](Self::send), so that several requests share a write. Large
    /// payloads, or many queued bytes, are written at once. A payload over
    /// [`MAX_REQUEST_PAYLOAD`](super::MAX_REQUEST_PAYLOAD) fails with
    /// [`io::ErrorKind::InvalidInput`], queueing nothing.
    pub async fn feed(&mut self, payload: Bytes) -> io::Result<()> {
        request_len(payload.len())?;
        self.begin("feed")?;
        let result = self.output.request(&mut self.stream, payload).await;
        self.done(result)
    }

    /// Writes every queued request.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.begin("flush")?;
        let result = self.output.flush(&mut self.stream).await;
        self.done(result)
    }

    /// Waits for the next response. Fails with `UnexpectedEof` if the
    /// server closes the connection first, and with `InvalidData` on a
    /// malformed or too large frame. All of these but a frame with a
    /// missing or unknown status byte break the client (see the
    /// [type docs](Self)).
    pub async fn recv(&mut self) -> io::Result<Reply> {
        self.begin("recv")?;
        let result = self.read_response().await;
        self.done(result)
    }

    /// Decodes the next response, reading until one is whole.
    async fn read_response(&mut self) -> io::Result<Reply> {
        loop {
            if let Some((status, payload)) = self.decoder.decode_response(&mut self.input.bytes)? {
                return Ok(if status.is_ok() {
                    Ok(payload)
                } else {
                    Err((status, String::from_utf8_lossy(&payload).into_owned()))
                });
            }
            let needed = self.decoder.bytes_needed(&self.input.bytes)?;
            // Grown a read at a time: a server that declares a large frame
            // and sends nothing does not get a large allocation out of us.
            let buf = self.input.take_for_read(needed);
            let filled = buf.len();
            let buf = buf.slice(filled..);
            let (res, buf) = self.stream.read(buf).await;
            self.input.put_back(buf.into_inner());
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        if self.input.bytes.is_empty() {
                            "server closed the connection".to_string()
                        } else {
                            format!(
                                "server closed the connection inside a frame ({} bytes of it read)",
                                self.input.bytes.len()
                            )
                        },
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &SocketStream {
        &self.stream
    }

    /// The underlying stream; responses already read but not yet
    /// [`recv`](Self::recv)ed, and requests [`feed`](Self::feed) queued but
    /// not flushed, are lost.
    pub fn into_inner(self) -> SocketStream {
        self.stream
    }
}

/// Whether a write failed because the peer closed or reset the
/// connection (what it sent before may still be read).
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Whether a failed operation's error leaves the stream at a frame
/// boundary: a response frame whose status byte is missing or unknown was
/// consumed whole.
fn leaves_the_stream_whole(e: &io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<FrameError>()),
        Some(FrameError::MissingStatus | FrameError::UnknownStatus(_))
    )
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stream", &self.stream)
            .field("max_frame_len", &self.decoder.max_frame_len())
            .field("buffered", &self.input.bytes.len())
            .field("broken", &self.is_broken())
            .finish()
    }
}
