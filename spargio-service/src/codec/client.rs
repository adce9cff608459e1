//! [`Client`]: the codec's client side on a spargio-rt TCP stream.

use std::io;

use bytes::{Bytes, BytesMut};
use spargio_rt::io::{AsyncRead, IoBuf};
use spargio_rt::net::{TcpStream, ToSocketAddrs};

use super::frame::{FrameDecoder, DEFAULT_MAX_FRAME_LEN};
use super::protocol::{MAX_READ_RESERVE, MIN_READ};
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
/// Outer `Err`s are I/O or protocol failures (the connection is unusable);
/// the inner `Err` is a request the server answered with an error status.
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
    stream: TcpStream,
    decoder: FrameDecoder,
    input: BytesMut,
    output: Output,
}

impl Client {
    /// Connects to a server (with `TCP_NODELAY`, as a request/response
    /// client wants).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client::new(stream))
    }

    /// A client on a connected stream.
    pub fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            decoder: FrameDecoder::with_max_frame_len(DEFAULT_MAX_FRAME_LEN),
            input: BytesMut::new(),
            output: Output::new(SendWatch::unbounded()),
        }
    }

    /// Refuses response frames longer than `max` bytes (status byte
    /// included); the default is
    /// [`DEFAULT_MAX_FRAME_LEN`](super::DEFAULT_MAX_FRAME_LEN).
    pub fn max_frame_len(mut self, max: usize) -> Client {
        self.decoder = FrameDecoder::with_max_frame_len(max);
        self
    }

    /// Sends `payload` and waits for its response.
    ///
    /// If responses to earlier [`send`](Self::send)s are still unread, this
    /// returns the first of those instead: use `call` on a client that is
    /// not pipelining.
    pub async fn call(&mut self, payload: Bytes) -> io::Result<Reply> {
        self.send(payload).await?;
        self.recv().await
    }

    /// Sends a request (and anything [`feed`](Self::feed) queued) without
    /// waiting for its response.
    pub async fn send(&mut self, payload: Bytes) -> io::Result<()> {
        self.feed(payload).await?;
        self.flush().await
    }

    /// Queues a request to go out with the next [`flush`](Self::flush) or
    /// [`send`](Self::send), so that several requests share a write. Large
    /// payloads, or many queued bytes, are written at once.
    pub async fn feed(&mut self, payload: Bytes) -> io::Result<()> {
        self.output.request(&mut self.stream, payload).await
    }

    /// Writes every queued request.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.output.flush(&mut self.stream).await
    }

    /// Waits for the next response. Fails with `UnexpectedEof` if the
    /// server closes the connection first, and with `InvalidData` on a
    /// malformed or too large frame.
    pub async fn recv(&mut self) -> io::Result<Reply> {
        loop {
            if let Some((status, payload)) = self.decoder.decode_response(&mut self.input)? {
                return Ok(if status.is_ok() {
                    Ok(payload)
                } else {
                    Err((status, String::from_utf8_lossy(&payload).into_owned()))
                });
            }
            let needed = self.decoder.bytes_needed(&self.input)?;
            // Grown a read at a time: a server that declares a large frame
            // and sends nothing does not get a large allocation out of us.
            self.input.reserve(needed.clamp(MIN_READ, MAX_READ_RESERVE));
            let filled = self.input.len();
            let buf = std::mem::take(&mut self.input).slice(filled..);
            let (res, buf) = self.stream.read(buf).await;
            self.input = buf.into_inner();
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        if self.input.is_empty() {
                            "server closed the connection".to_string()
                        } else {
                            format!(
                                "server closed the connection inside a frame ({} bytes of it read)",
                                self.input.len()
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
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// The underlying stream; responses already read but not yet
    /// [`recv`](Self::recv)ed, and requests [`feed`](Self::feed) queued but
    /// not flushed, are lost.
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stream", &self.stream)
            .field("max_frame_len", &self.decoder.max_frame_len())
            .field("buffered", &self.input.len())
            .finish()
    }
}
