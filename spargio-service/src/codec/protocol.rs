//! [`LengthDelimited`]: the codec as a [`Protocol`](crate::Protocol).

use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use spargio_rt::io::{flush_and_read, AsyncRead, AsyncWrite, IoBuf};
use spargio_rt::net::SocketStream;

use super::frame::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME_LEN, MAX_RESPONSE_PAYLOAD};
use super::read_buffer::{ReadBuffer, MIN_READ};
use super::status::Status;
use super::write::Output;
use crate::connection::Connection;
use crate::error::HandlerError;
use crate::protocol::{Handler, Protocol, RouteKey};
use crate::read_watch::{ReadWatch, Watched};

/// When the server closes a connection it may not have read all of (after
/// a bad request, a failed `ready`, the last request answered during
/// shutdown, or while waiting for a request, at the idle timeout or a
/// graceful shutdown), it stops writing and, to make sure the client receives the
/// replies (closing with unread input would send a reset that can discard
/// them), reads and discards input for at most this long ...
const LINGER: Duration = Duration::from_secs(1);

/// The most [`Conn::refuse_waiting`] spends reading (it only reads bytes
/// already waiting, which takes far less; a client that keeps trickling
/// bytes in does not hold the close open).
const REFUSE_READ_WAIT: Duration = Duration::from_millis(100);

/// The most a closing connection reads to answer the requests its client
/// already sent (see `Conn::refuse_waiting`).
const REFUSE_READ_LIMIT: usize = 256 * 1024;

/// How long a close lingers when no input was unread at the time: long
/// enough for requests the client sent just before the server ended its
/// side, still on the network, to arrive and be discarded.
const LINGER_QUIET: Duration = Duration::from_millis(100);

/// ... or this many bytes, whichever comes first.
const LINGER_BYTES: usize = 1 << 20;

/// The length-delimited request/response protocol (see the
/// [module docs](super) for the wire format).
///
/// Requests on a connection are answered in order, one at a time;
/// pipelined requests are read ahead only as far as the read buffer goes,
/// and their responses are written together when they are ready together
/// (so a client's requests in flight must fit the socket buffers, or it
/// must read as it goes: see the [module docs](super)). Without a server
/// [`idle_timeout`](crate::ServerBuilder::idle_timeout) (the default), a
/// peer that stops partway through a request holds its connection.
///
/// ```
/// use spargio_service::codec::LengthDelimited;
/// let protocol = LengthDelimited::new().max_frame_len(64 * 1024);
/// assert_eq!(protocol.get_max_frame_len(), 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LengthDelimited {
    max_frame_len: usize,
    route: fn(&Bytes) -> RouteKey,
}

/// The default route of every request.
fn default_route(_req: &Bytes) -> RouteKey {
    RouteKey::DEFAULT
}

impl LengthDelimited {
    /// The protocol with requests of up to
    /// [`DEFAULT_MAX_FRAME_LEN`](super::DEFAULT_MAX_FRAME_LEN) (8 MiB).
    pub const fn new() -> LengthDelimited {
        LengthDelimited {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            route: default_route,
        }
    }

    /// Refuses requests whose payload is longer than `max` bytes: the
    /// client gets a [`Status::BadRequest`] frame and the connection closes.
    /// A `max` above what a header can declare is clamped to it (see
    /// [`FrameDecoder::with_max_frame_len`]).
    pub const fn max_frame_len(mut self, max: usize) -> LengthDelimited {
        self.max_frame_len = FrameDecoder::with_max_frame_len(max).max_frame_len();
        self
    }

    /// Keys each request's route for
    /// [`HandlerPlacement::Adaptive`](crate::HandlerPlacement::Adaptive)
    /// (by default every request is [`RouteKey::DEFAULT`]). An RPC
    /// protocol whose first byte names the method would key by it, so a
    /// CPU-heavy method moves to stealable on its own while cheap ones stay
    /// inline.
    ///
    /// `route` sees every request before the service does, so a panic in it
    /// is contained like a panic in the service: that request is answered
    /// with [`Status::Panicked`] (without asking the service for
    /// readiness), counted as a failed request and a panic in the server's
    /// stats, and the connection goes on. Going on is sound: the request
    /// was already cut whole out of the stream, and `route`, a plain `fn`,
    /// holds no state of the connection that the panic could leave half
    /// changed.
    ///
    /// ```
    /// use spargio_service::codec::LengthDelimited;
    /// use spargio_service::RouteKey;
    /// let protocol = LengthDelimited::new()
    ///     .route_by(|req| RouteKey(req.first().copied().unwrap_or(0).into()));
    /// # let _ = protocol;
    /// ```
    pub const fn route_by(mut self, route: fn(&Bytes) -> RouteKey) -> LengthDelimited {
        self.route = route;
        self
    }

    /// The largest request payload accepted.
    pub const fn get_max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The decoder this protocol reads requests with.
    pub const fn decoder(&self) -> FrameDecoder {
        FrameDecoder::with_max_frame_len(self.max_frame_len)
    }
}

impl Default for LengthDelimited {
    fn default() -> LengthDelimited {
        LengthDelimited::new()
    }
}

impl Protocol for LengthDelimited {
    type Request = Bytes;
    type Response = Bytes;

    /// Serves the connection until the client closes it, the idle timeout
    /// passes, the server asks it to close, or a request is too large.
    ///
    /// Once a request has arrived it waits for [`Handler::ready`] before it
    /// reads anything more, so a service that is not ready stops the reads;
    /// an idle connection asks for no readiness (and holds no permit of a
    /// concurrency or rate limit). That wait is bounded by neither the
    /// request timeout nor a graceful shutdown's start, and the wait for a
    /// request only by the idle timeout, off by default (see
    /// [Timeouts](super#timeouts)). A service error, panic (also in the
    /// [`route_by`](Self::route_by) function), timeout or shutdown cut
    /// becomes an error frame and the connection goes on. A `ready` that
    /// fails means the service takes no more requests: the request is
    /// answered with that error and the connection closes. A frame over the
    /// limit is counted ([`Connection::record_bad_request`]), answered with
    /// [`Status::BadRequest`], and the connection closes (the stream cannot
    /// be resynchronised). Returns `Ok` for all of these; `Err` only for a
    /// socket error.
    async fn serve_connection<H>(
        &self,
        stream: SocketStream,
        handler: H,
        conn: Connection,
    ) -> io::Result<()>
    where
        H: Handler<Bytes, Response = Bytes>,
    {
        serve(self.decoder(), self.route, stream, handler, conn).await
    }
}

/// How waiting for the next request ended.
enum Next {
    /// A complete request.
    Request(Bytes),
    /// The client closed the connection (EOF): nothing is left to read.
    Closed,
    /// The server ends the connection: it sat idle too long (perhaps with
    /// part of a request read). The client may still send, and may not have
    /// read every reply: close it with [`Conn::close`].
    Ended,
    /// A graceful shutdown began while the connection waited between
    /// requests: requests already sent are refused
    /// ([`Conn::refuse_waiting`]), then it closes as for `Ended`.
    Closing,
    /// A frame the decoder refused.
    Bad(FrameError),
}

/// One connection's state: the stream's two halves and their buffers.
struct Conn<R, W> {
    reader: R,
    writer: W,
    decoder: FrameDecoder,
    input: ReadBuffer,
    output: Output,
}

impl<R: AsyncRead + AsRef<SocketStream>, W: AsyncWrite> Conn<R, W> {
    /// The next request: from the buffer if a whole one is there, otherwise
    /// after reading more (under [`Connection::idle`]) while the queued
    /// responses are flushed ([`flush_and_read`]: one task poll for the
    /// response out and the next request in).
    async fn next_request(&mut self, conn: &Connection) -> io::Result<Next> {
        // The idle timeout bounds the wait for the whole next request, from
        // when the wait begins: a client that trickles a frame in a byte at
        // a time does not push it out with every read.
        let deadline = conn
            .idle_limit()
            .and_then(|idle| Instant::now().checked_add(idle));
        let mut watch = ReadWatch::new(conn);
        loop {
            let needed = match self.decoder.decode(&mut self.input.bytes) {
                Ok(Some(req)) => return Ok(Next::Request(req)),
                Ok(None) => self.decoder.bytes_needed(&self.input.bytes),
                Err(e) => return Ok(Next::Bad(e)),
            };
            let needed = match needed {
                Ok(n) => n,
                Err(e) => return Ok(Next::Bad(e)),
            };
            let buf = self.input.take_for_read(needed);
            let filled = buf.len();
            let buf = buf.slice(filled..);
            // Between requests (nothing of the next one here yet) a
            // graceful shutdown ends the wait too; a request begun is
            // waited for (the deadline still bounds it).
            let idle = filled == 0;
            // Both pinned where they are built and run by reference, so
            // neither is copied again into the combinator.
            let read = pin!(watch.wait(self.reader.read(buf), deadline, idle));
            let flush = pin!(self.output.flush(&mut self.writer));
            let (res, buf) = match flush_and_read(flush, read).await? {
                Watched::Done(done) => done,
                Watched::TimedOut => {
                    conn.count_idle_timeout();
                    return Ok(Next::Ended);
                }
                Watched::Closing => return Ok(Next::Closing),
            };
            self.input.put_back(buf.into_inner());
            match res {
                Ok(0) => return Ok(Next::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues a response (or an error frame in its place if it is too large
    /// for one).
    async fn respond(&mut self, status: Status, payload: Bytes) -> io::Result<()> {
        if payload.len() > MAX_RESPONSE_PAYLOAD {
            let msg = format!("response of {} bytes does not fit a frame", payload.len());
            return self
                .output
                .response(&mut self.writer, Status::ServiceError, Bytes::from(msg))
                .await;
        }
        self.output
            .response(&mut self.writer, status, payload)
            .await
    }

    /// Answers a request with the error `e` (a failed `ready` or call, a
    /// panic).
    async fn fail(&mut self, e: &HandlerError) -> io::Result<()> {
        self.respond(Status::from(e), Bytes::from(e.to_string()))
            .await
    }

    /// A frame the decoder refused: counts it, answers it with
    /// [`Status::BadRequest`] and closes the connection ([`Conn::close`]).
    async fn bad_request(&mut self, conn: &Connection, bad: FrameError) -> io::Result<()> {
        conn.record_bad_request();
        self.respond(Status::BadRequest, Bytes::from(bad.to_string()))
            .await?;
        self.close(conn).await
    }

    /// Answers every whole request already buffered with `refused`, in
    /// order, without calling the service: the server is closing the
    /// connection after the request it was handling (a graceful shutdown:
    /// [`Status::ShuttingDown`]; a service that takes no more requests:
    /// the error its readiness gave), and a client that pipelined more
    /// learns that these were not processed instead of reading the
    /// connection's end where their replies should be. Each counts as a
    /// failed request. A partial frame, or one the decoder refuses, stays
    /// unread; [`close`](Self::close) lingers over it.
    async fn refuse_buffered(
        &mut self,
        conn: &Connection,
        refused: &HandlerError,
    ) -> io::Result<()> {
        while let Ok(Some(_)) = self.decoder.decode(&mut self.input.bytes) {
            conn.counters().count_unprocessed(conn.info().shard.0);
            self.fail(refused).await?;
        }
        Ok(())
    }

    /// At a close the server decides (a graceful shutdown, a service that
    /// takes no more requests): whole requests the client has already sent
    /// (pipelined behind the last reply, or sent on a connection handed to
    /// its shard just as the shutdown began) are answered with `refused`
    /// (their status) like those already buffered, instead of being
    /// discarded by the close's linger: the client learns they were not
    /// processed and may retry them elsewhere. What waits in the socket is
    /// read without waiting for more, up to [`REFUSE_READ_LIMIT`] bytes and
    /// for at most [`REFUSE_READ_WAIT`] (a client that keeps sending does
    /// not hold the close open).
    async fn refuse_waiting(
        &mut self,
        conn: &Connection,
        refused: &HandlerError,
    ) -> io::Result<()> {
        let deadline = Instant::now() + REFUSE_READ_WAIT;
        let mut taken = 0;
        loop {
            self.refuse_buffered(conn, refused).await?;
            if taken >= REFUSE_READ_LIMIT
                || Instant::now() >= deadline
                || !crate::input_waiting(self.reader.as_ref())
            {
                return Ok(());
            }
            let needed = self.decoder.bytes_needed(&self.input.bytes).unwrap_or(0);
            let buf = self.input.take_for_read(needed);
            let filled = buf.len();
            // The bytes are there, so the read completes at once; the bound
            // is for a peek that saw an error rather than input.
            let read =
                spargio_rt::time::timeout_at(deadline, self.reader.read(buf.slice(filled..))).await;
            match read {
                Ok((Ok(n), buf)) if n > 0 => {
                    taken += n;
                    self.input.put_back(buf.into_inner());
                }
                // The end of the stream, or an error: what came before it
                // is answered, and that is all.
                Ok((_, buf)) => {
                    self.input.put_back(buf.into_inner());
                    return self.refuse_buffered(conn, refused).await;
                }
                // The cancelled read keeps what it took on the stream, and
                // the buffer went with it: start again from nothing (the
                // close lingers over the rest).
                Err(_) => {
                    self.input.put_back(BytesMut::new());
                    return Ok(());
                }
            }
        }
    }

    /// Whether the client has sent input that nothing has read: bytes
    /// buffered but not parsed (or part of a request whose read the idle
    /// timeout cut short), or waiting in the socket's receive queue (a
    /// non-blocking peek). An error other than "nothing there" counts as
    /// input, so the caller takes the cautious way.
    fn input_unread(&self) -> bool {
        self.input.holds_partial() || crate::input_waiting(self.reader.as_ref())
    }

    /// Closes the connection without losing the replies: writes what is
    /// queued and ends the write side (the client reads EOF after the last
    /// reply). It then reads and discards input until the client closes,
    /// for at most [`LINGER`] or [`LINGER_BYTES`]: closing a socket with
    /// unread input sends a reset, which can discard replies still in the
    /// send queue and makes the client read an error instead of EOF. When
    /// no input is unread at that point (nothing buffered, nothing in the
    /// socket's receive queue) the drain lasts at most [`LINGER_QUIET`],
    /// enough for requests still on the network to arrive: a pooled client
    /// that keeps its connection open and sends nothing after its last
    /// reply does not hold the connection (and a graceful shutdown) for
    /// [`LINGER`].
    ///
    /// The drain is bounded by its own timer, not [`Connection::idle`]: that
    /// ends at once during a graceful shutdown, the very time a connection
    /// is most likely to close with requests unread. The drain is marked
    /// [`Connection::lingering`]: a forced shutdown that drops this future
    /// midway closes the socket but does not count the connection as cut,
    /// since every reply was written.
    async fn close(&mut self, conn: &Connection) -> io::Result<()> {
        self.output.flush(&mut self.writer).await?;
        if self.writer.shutdown().await.is_err() {
            return Ok(());
        }
        let linger = if self.input_unread() {
            LINGER
        } else {
            LINGER_QUIET
        };
        conn.lingering();
        let mut buf = std::mem::take(&mut self.input.bytes);
        buf.clear();
        buf.reserve(MIN_READ);
        let stream = &mut self.reader;
        let drain = async move {
            let mut drained = 0;
            while drained < LINGER_BYTES {
                let (res, b) = stream.read(buf).await;
                buf = b;
                buf.clear();
                match res {
                    Ok(0) => break,
                    Ok(n) => drained += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        };
        let _ = spargio_rt::time::timeout(linger, drain).await;
        Ok(())
    }
}

async fn serve<H>(
    decoder: FrameDecoder,
    route: fn(&Bytes) -> RouteKey,
    stream: SocketStream,
    mut handler: H,
    conn: Connection,
) -> io::Result<()>
where
    H: Handler<Bytes, Response = Bytes>,
{
    let (reader, writer) = stream.into_split();
    let mut c = Conn {
        reader,
        writer,
        decoder,
        input: ReadBuffer::default(),
        output: Output::new(conn.send_watch()),
    };
    loop {
        let req = match c.next_request(&conn).await? {
            Next::Request(req) => req,
            // The client is done: what is queued goes out, and the socket
            // closes with nothing unread.
            Next::Closed => return c.output.flush(&mut c.writer).await,
            // The client may still be sending (a request pipelined behind
            // a reply it has yet to read): closing the socket at once would
            // answer that with a reset, which discards the replies still
            // in the send queue.
            Next::Ended => return c.close(&conn).await,
            Next::Closing => {
                c.refuse_waiting(&conn, &HandlerError::Cancelled).await?;
                return c.close(&conn).await;
            }
            Next::Bad(bad) => return c.bad_request(&conn, bad).await,
        };
        // `route` runs on the peer's bytes; a panic in it fails only this
        // request (see `LengthDelimited::route_by` for why the connection
        // stays sound). Keyed before readiness is asked, so a request that
        // fails here holds nothing `poll_ready` reserves.
        let key = match std::panic::catch_unwind(AssertUnwindSafe(|| route(&req))) {
            Ok(key) => key,
            Err(payload) => {
                let e = HandlerError::from_panic(&*payload);
                conn.counters().count_refused(conn.info().shard.0, &e);
                c.fail(&e).await?;
                if conn.is_closing() {
                    c.refuse_waiting(&conn, &HandlerError::Cancelled).await?;
                    return c.close(&conn).await;
                }
                continue;
            }
        };
        // Backpressure: nothing more is read until the service is ready for
        // this request. Readiness is asked only once a request is here, so
        // an idle connection never holds what `poll_ready` reserves (a
        // concurrency-limit permit, a rate-limit slot) while others wait.
        let ready = c
            .output
            .flush_while_pending(&mut c.writer, handler.ready())
            .await?;
        if let Err(e) = ready {
            // The service takes no more requests: tell this one why, and
            // those pipelined behind it, then close. (The server's handler
            // has counted this one's failure.)
            c.fail(&e).await?;
            c.refuse_waiting(&conn, &e).await?;
            return c.close(&conn).await;
        }
        let res = c
            .output
            .flush_while_pending(&mut c.writer, handler.call(key, req))
            .await?;
        match res {
            Ok(resp) => c.respond(Status::Ok, resp).await?,
            Err(e) => c.fail(&e).await?,
        }
        if conn.is_closing() {
            c.refuse_waiting(&conn, &HandlerError::Cancelled).await?;
            return c.close(&conn).await;
        }
    }
}
