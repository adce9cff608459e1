//! One HTTP/1.1 connection: the request loop on the connection's session
//! shard.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as HttpBody;
use spargio_rt::io::{flush_and_read, flush_beside};
use spargio_service::{BoxError, Connection, Handler, HandlerError, ReadWatch, RouteKey, Watched};

use super::config::HttpConfig;
use super::error_page;
use super::feed::{feed_body, Feed, FeedEnd, Framing, Progress};
use super::respond::{flush_while_pending, respond, Exchange, Responded};
use crate::body::Body;
use crate::buffered::{Input, Output};
use crate::h1::{self, BodyLength, ChunkedDecoder, HeadScan, RequestHead};
use crate::tls::TlsInfo;
use crate::transport::{Transport, TransportRead, TransportWrite};
use crate::upgrade::{self, Upgraded};

/// The most input read and discarded while lingering before a close.
const LINGER_BYTES: usize = 256 * 1024;

/// How long a close between requests lingers when no input was unread at
/// the time: long enough for requests the client sent just before the
/// server ended its side, still on the network, to arrive and be
/// discarded, and short enough that a pooled client keeping an idle
/// connection open does not hold it (and a graceful shutdown) for the
/// whole drain timeout.
const LINGER_QUIET: Duration = Duration::from_millis(100);

/// Serves one connection until it closes.
pub(crate) async fn serve<T, H, B>(
    io: T,
    mut handler: H,
    conn: &Connection,
    cfg: &HttpConfig,
    tls: Option<TlsInfo>,
) -> io::Result<()>
where
    T: Transport,
    H: Handler<Request<Body>, Response = Response<B>>,
    B: HttpBody + 'static,
    B::Error: Into<BoxError>,
{
    let (reader, writer) = io.split();
    let mut input = Input::new(reader, cfg.read_buffer);
    let mut out = Output::new(writer).bounded_by(conn.send_watch());
    let mut watch = ReadWatch::new(conn);
    // Each request head is parsed into this one, and its parts are moved
    // out when the request is built.
    let mut head = RequestHead::default();
    loop {
        if out.pending() >= cfg.write_buffer {
            // Answers to a long run of pipelined requests go out before
            // more are queued: the write buffer stays bounded.
            out.flush().await?;
        }
        // A head already buffered (pipelining) needs no read.
        let mut scan = HeadScan::default();
        let next = match parse_buffered(&mut input, cfg, &mut head, &mut scan) {
            Some(next) => next,
            None => read_head(&mut input, &mut out, &mut watch, cfg, &mut head, &mut scan).await?,
        };
        match next {
            Next::Head => {}
            Next::Closed => {
                let _ = out.shutdown().await;
                return Ok(());
            }
            Next::Idle => {
                return close_lingering(&mut input, &mut out, conn, cfg, Linger::Idle).await;
            }
            Next::Bad(status) => {
                conn.record_bad_request();
                error_page::write(&mut out.buf, Version::HTTP_11, status, false, false);
                return close_lingering(&mut input, &mut out, conn, cfg, Linger::Full).await;
            }
            Next::TimedOut => {
                error_page::write(
                    &mut out.buf,
                    Version::HTTP_11,
                    StatusCode::REQUEST_TIMEOUT,
                    false,
                    false,
                );
                return close_lingering(&mut input, &mut out, conn, cfg, Linger::Full).await;
            }
        }
        // Backpressure: the request (its body, and any request behind it)
        // is not read further until the service is ready. Readiness is
        // asked only once a request head is here, so an idle keep-alive
        // connection never holds what `poll_ready` reserves (a
        // concurrency-limit permit, say) while other connections wait.
        let ready = flush_while_pending(&mut out, handler.ready()).await?;
        if ready.is_err() {
            // The service takes no more requests: say so, and close.
            error_page::write(
                &mut out.buf,
                head.version,
                StatusCode::SERVICE_UNAVAILABLE,
                false,
                head.method == Method::HEAD,
            );
            return close_lingering(&mut input, &mut out, conn, cfg, Linger::Full).await;
        }
        // Futures are moved whole when awaited, so the common case (a
        // bodiless request) awaits only what it needs; the body path's
        // larger future is boxed.
        let after = match start(&mut out, &mut handler, &mut head, conn, cfg, tls.as_ref()) {
            Started::Bodiless(Call { fut, ex, pending }) => {
                let responded = respond(&mut out, fut, &ex, None, conn, cfg).await?;
                after(responded, FeedEnd::Complete, pending)
            }
            Started::WithBody(call, feed) => {
                Box::pin(exchange_with_body(
                    &mut input, &mut out, call, feed, conn, cfg,
                ))
                .await?
            }
            Started::Refused => After::Close,
        };
        match after {
            After::KeepAlive => {
                if conn.is_closing() {
                    // A graceful shutdown began after the head went out
                    // (promising keep-alive). The client may have sent
                    // more requests: the close lingers so that they do not
                    // turn it into a reset, which would discard what the
                    // kernel has not yet sent of the response.
                    return close_lingering(&mut input, &mut out, conn, cfg, Linger::Between).await;
                }
            }
            After::Close => {
                return close_lingering(&mut input, &mut out, conn, cfg, Linger::Full).await;
            }
            After::Abort { reset: true } => {
                out.abort(true).await;
                return Ok(());
            }
            After::Abort { reset: false } => {
                out.cut().await;
                if !input.eof {
                    linger_on(&mut input, conn, cfg, Linger::Between).await;
                }
                return Ok(());
            }
            After::Switch(pending) => {
                let handed = match out.flush().await {
                    Ok(()) => input.release().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = handed {
                    // The handler waiting for the connection hears why.
                    let kind = e.kind();
                    pending.fail(e);
                    return Err(kind.into());
                }
                let (reader, read_ahead) = input.into_parts();
                let io = T::rejoin(reader, out.into_writer());
                pending.fulfill(Upgraded::new(read_ahead.freeze(), io));
                return Ok(());
            }
        }
    }
}

/// How waiting for a request head ended.
enum Next {
    /// A request head was parsed into the connection's head.
    Head,
    /// The client closed its side or went away, with no partial request
    /// pending.
    Closed,
    /// The connection idled out, or the server is closing it, while it
    /// waited for a request with nothing of one read.
    Idle,
    /// The head was refused with this status.
    Bad(StatusCode),
    /// A partial head did not complete within the header-read timeout.
    TimedOut,
}

/// Reads until a whole request head is buffered. Queued responses are
/// written alongside each read. The head must arrive within the header-read
/// timeout, counted from now, or from when the queued responses are all
/// out if they were not yet when it ran out; while nothing of it has
/// arrived, the wait is also bounded by the idle timeout (the same) and
/// ended by a graceful shutdown (`watch` keeps those timers armed across
/// requests). A head is parsed
/// into `head`; `scan` remembers what of it was looked at already.
async fn read_head<R, W>(
    input: &mut Input<R>,
    out: &mut Output<W>,
    watch: &mut ReadWatch<'_>,
    cfg: &HttpConfig,
    head: &mut RequestHead,
    scan: &mut HeadScan,
) -> io::Result<Next>
where
    R: TransportRead,
    W: TransportWrite,
{
    // A timeout too long for the clock to express is no deadline at all.
    let mut deadline = Instant::now().checked_add(cfg.header_read_timeout);
    loop {
        if let Some(next) = parse_buffered(input, cfg, head, scan) {
            return Ok(next);
        }
        if input.eof {
            return Ok(judged_once_more(input, cfg, head, scan).unwrap_or(Next::Closed));
        }
        // Nothing of a request has come: the buffer is empty (its empty
        // lines were dropped) or holds only the CR of one more.
        let idle = input.buf.is_empty() || input.buf[..] == *b"\r";
        // The read goes out together with the write of the queued
        // responses (one ring submission for both), instead of after it;
        // quietly only where the transport allows it (not TLS).
        // Both futures are pinned here, where they are built, and run
        // through references: moved into the combinator, each would be
        // copied once more per request.
        // Whether the queued responses were all out when the wait ended.
        let flushed = Cell::new(false);
        let (res, flushed_first) = {
            let read = pin!(async {
                let res = watch.wait(input.fill(), deadline, idle).await;
                (res, flushed.get())
            });
            let flush = pin!(async {
                out.flush().await?;
                flushed.set(true);
                io::Result::Ok(())
            });
            if W::QUIET_FLUSH {
                flush_and_read(flush, read).await?
            } else {
                flush_beside(flush, read).await?
            }
        };
        match res {
            // The clocks ran while the last responses were still going out
            // to a client that reads them slowly: the client was not idle,
            // nor late with its next request; they start again now that
            // those are out (once: nothing is queued any more).
            Watched::TimedOut if !flushed_first => {
                deadline = Instant::now().checked_add(cfg.header_read_timeout);
            }
            Watched::Done(Ok(_)) => {}
            Watched::Done(Err(e)) if is_disconnect(&e) => return Ok(Next::Closed),
            Watched::Done(Err(e)) => return Err(e),
            Watched::Closing => return Ok(Next::Idle),
            Watched::TimedOut if idle => return Ok(Next::Idle),
            Watched::TimedOut => {
                return Ok(judged_once_more(input, cfg, head, scan).unwrap_or(Next::TimedOut))
            }
        }
    }
}

/// Takes a whole request head off the front of the input buffer into
/// `head`, if one is there (or says why what is there is refused). The
/// parser runs only when [`HeadScan`] says the bytes may hold a whole head
/// or break a limit: a head dripped a byte at a time is not parsed again
/// from its start after every read.
///
/// Empty lines before it are dropped first (RFC 9112 §2.2 has a server
/// ignore them; some clients send a CRLF after a body): they are no part
/// of a request, so a connection holding only them waits as an idle one,
/// bounded by the idle and header-read timeouts and ended by a graceful
/// shutdown, and a stream of them cannot hold it open any longer.
fn parse_buffered<R>(
    input: &mut Input<R>,
    cfg: &HttpConfig,
    head: &mut RequestHead,
    scan: &mut HeadScan,
) -> Option<Next> {
    if skip_empty_lines(&mut input.buf) {
        scan.reset();
    }
    if input.buf.is_empty() {
        return None;
    }
    let limits = &cfg.limits;
    // Where the request line can first break the target limit, it is
    // checked on every read: the 414 comes before the line is whole.
    let eager = limits.max_uri_len..=limits.max_uri_len.saturating_add(EAGER_METHOD_BYTES);
    if !scan.worth_parsing(&input.buf, limits.max_head_bytes, Some(eager)) {
        return None;
    }
    match h1::parse_request_buf_into(&mut input.buf, limits, head) {
        Ok(true) => Some(Next::Head),
        Ok(false) => None,
        Err(e) => Some(Next::Bad(e.status())),
    }
}

/// Parses what came of a head whatever [`HeadScan`] says, when no more
/// will come (the stream ended, or the header-read time ran out): a
/// malformed head cut short is refused (400), not just closed on.
fn judged_once_more<R>(
    input: &mut Input<R>,
    cfg: &HttpConfig,
    head: &mut RequestHead,
    scan: &mut HeadScan,
) -> Option<Next> {
    scan.reset();
    parse_buffered(input, cfg, head, scan)
}

/// Room for the method, its space and the target's first bytes in the
/// stretch of a request line that is parsed on every read (a target past
/// its limit after a longer method is still refused, once the line
/// doubles in length).
const EAGER_METHOD_BYTES: usize = 32;

/// Drops the empty lines (CRLF, or a bare LF, which RFC 9112 §2.2 also
/// allows) at the front of `buf`; whether there were any. A CR whose LF
/// has not come yet stays.
fn skip_empty_lines(buf: &mut BytesMut) -> bool {
    let mut n = 0;
    loop {
        match buf[n..] {
            [b'\n', ..] => n += 1,
            [b'\r', b'\n', ..] => n += 2,
            _ => break,
        }
    }
    if n > 0 {
        buf.advance(n);
    }
    n > 0
}

/// Errors that just mean the client went away.
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// What the connection does after an exchange.
enum After {
    KeepAlive,
    Close,
    /// The response was cut short (its body failed or broke its
    /// framing): what is queued goes out, then the connection ends without
    /// a TLS `close_notify`, so a TLS client sees a truncated stream. A
    /// chunked body lacks its last chunk and a sized one its last bytes,
    /// which a plain end of stream shows well enough: the write side ends
    /// (a FIN) and the close lingers like any other, so that input the
    /// client already sent (pipelined requests) does not turn it into a
    /// reset, which would discard what the kernel has not yet delivered,
    /// earlier responses included. A close-delimited body (an HTTP/1.0
    /// response without a length) would look whole after a FIN: with
    /// `reset`, a plain TCP connection ends with a TCP reset instead (a
    /// Unix socket has none: its client sees an end of stream).
    Abort {
        reset: bool,
    },
    Switch(upgrade::Pending),
}

/// A request handed to the service, before its response is awaited.
enum Started<F> {
    /// The request has no body: only the response is left to wait for.
    Bodiless(Call<F>),
    /// The body is fed from the connection while the response is awaited.
    WithBody(Call<F>, Feed),
    /// The request was answered without calling the service (413 queued).
    Refused,
}

/// The service's response future and what the response side needs.
struct Call<F> {
    fut: F,
    ex: Exchange,
    pending: Option<upgrade::Pending>,
}

/// Turns `head` into a `Request` (moving its target and fields out), calls
/// the service, and says what is left to do. No I/O: the caller awaits the
/// response (and feeds the body), so the common bodiless exchange needs no
/// future of its own.
fn start<'h, W, H, B>(
    out: &mut Output<W>,
    handler: &'h mut H,
    head: &mut RequestHead,
    conn: &Connection,
    cfg: &HttpConfig,
    tls: Option<&TlsInfo>,
) -> Started<impl Future<Output = Result<Response<B>, HandlerError>> + 'static + use<'h, W, H, B>>
where
    W: TransportWrite,
    H: Handler<Request<Body>, Response = Response<B>>,
{
    let RequestHead {
        ref mut method,
        ref mut uri,
        version,
        ref mut headers,
        body,
        keep_alive,
        expect_continue,
        upgrade,
        must_close,
    } = *head;
    if let (Some(max), BodyLength::Length(n)) = (cfg.max_body, body) {
        if n > max {
            conn.record_bad_request();
            error_page::write(
                &mut out.buf,
                version,
                StatusCode::PAYLOAD_TOO_LARGE,
                false,
                *method == Method::HEAD,
            );
            return Started::Refused;
        }
    }
    let gated = expect_continue && body != BodyLength::Empty;
    let (req_body, feed) = match body {
        BodyLength::Empty => (Body::empty(), None),
        BodyLength::Length(n) => {
            let (b, sender) = Body::channel(Some(n), gated);
            let framing = Framing::Length(n);
            (
                b,
                Some(Feed {
                    framing,
                    sender,
                    gated,
                }),
            )
        }
        BodyLength::Chunked => {
            let (b, sender) = Body::channel(None, gated);
            let framing = Framing::Chunked(ChunkedDecoder::new(&cfg.limits));
            (
                b,
                Some(Feed {
                    framing,
                    sender,
                    gated,
                }),
            )
        }
    };
    let route = route_key(uri);
    let mut req = Request::new(req_body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = std::mem::take(uri);
    *req.version_mut() = version;
    *req.headers_mut() = std::mem::take(headers);
    if cfg.conn_info {
        req.extensions_mut().insert(conn.info().clone());
        if let Some(tls) = tls {
            req.extensions_mut().insert(tls.clone());
        }
    }
    let pending = if upgrade {
        let (on, pending) = upgrade::pending();
        req.extensions_mut().insert(on);
        Some(pending)
    } else {
        None
    };
    // A CONNECT answered with anything but a tunnel closes: the client (or
    // a proxy in front that forwarded the CONNECT) may already be sending
    // the tunnel's bytes, which must never be read as requests.
    let refused_tunnel = *method == Method::CONNECT;
    let ex = Exchange {
        method: std::mem::take(method),
        version,
        keep_alive: keep_alive && cfg.keep_alive && !must_close && !refused_tunnel,
        upgrade_requested: pending.is_some(),
        gated,
    };
    let call = Call {
        fut: handler.call(route, req),
        ex,
        pending,
    };
    match feed {
        None => Started::Bodiless(call),
        Some(feed) => Started::WithBody(call, feed),
    }
}

/// Feeds the request body while the response is awaited and written.
async fn exchange_with_body<R, W, F, B>(
    input: &mut Input<R>,
    out: &mut Output<W>,
    call: Call<F>,
    feed: Feed,
    conn: &Connection,
    cfg: &HttpConfig,
) -> io::Result<After>
where
    R: TransportRead,
    W: TransportWrite,
    F: Future<Output = Result<Response<B>, HandlerError>>,
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let Call { fut, ex, pending } = call;
    let stop = Cell::new(false);
    let length = match feed.framing {
        Framing::Length(n) => Some(n),
        Framing::Chunked(_) => None,
    };
    let progress = Progress::new(feed.sender.gate(), length);
    let mut feed = pin!(feed_body(input, feed, &stop, &progress, cfg, conn));
    let responding = respond(out, fut, &ex, Some(&progress), conn, cfg);
    let (fed, responded) = until_responded(feed.as_mut(), responding, &stop).await?;
    let fed = match (fed, responded) {
        (Some(fed), _) => fed,
        // The head says the connection closes: the rest of the body is not
        // waited for (the close lingers to read it instead).
        (None, Responded::Done { keep_alive: false } | Responded::Aborted { .. }) => FeedEnd::Close,
        // The response goes out now, while the rest of the body is drained.
        (None, _) => flush_beside(out.flush(), feed).await?,
    };
    Ok(after(responded, fed, pending))
}

/// What the connection does once the response went out.
fn after(responded: Responded, fed: FeedEnd, pending: Option<upgrade::Pending>) -> After {
    match responded {
        Responded::Switched => match pending {
            Some(p) if p.is_wanted() && fed == FeedEnd::Complete => After::Switch(p),
            _ => After::Close,
        },
        Responded::Done { keep_alive } if keep_alive && fed == FeedEnd::Complete => {
            After::KeepAlive
        }
        Responded::Done { .. } => After::Close,
        Responded::Aborted { reset } => After::Abort { reset },
    }
}

/// Runs the body feed and the response side of one exchange together on
/// this task until the response is written (queued). When it is, `stop`
/// tells the feed to drain the rest of the body (or give up on it), and
/// the feed is polled once more to see it. Returns the feed's end if it
/// came, so the feed is not polled again after it.
///
/// The feed is polled first, so the response's head sees what it did with
/// the bytes already here (a body received whole, or drained).
async fn until_responded<F, R>(
    mut feed: Pin<&mut F>,
    respond: R,
    stop: &Cell<bool>,
) -> io::Result<(Option<FeedEnd>, Responded)>
where
    F: Future<Output = FeedEnd>,
    R: Future<Output = io::Result<Responded>>,
{
    let mut respond = pin!(respond);
    let mut fed = None;
    poll_fn(|cx| {
        if fed.is_none() {
            if let Poll::Ready(f) = feed.as_mut().poll(cx) {
                fed = Some(f);
            }
        }
        let responded = match respond.as_mut().poll(cx) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Poll::Pending,
        };
        stop.set(true);
        if fed.is_none() {
            if let Poll::Ready(f) = feed.as_mut().poll(cx) {
                fed = Some(f);
            }
        }
        Poll::Ready(Ok((fed, responded)))
    })
    .await
}

/// The route a request counts towards under adaptive handler placement:
/// the first segment of its path.
fn route_key(uri: &Uri) -> RouteKey {
    // Byte scans: paths are short, and `str` searching costs more here
    // than the hashing.
    let path = uri.path();
    let bytes = path.as_bytes();
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    let len = bytes[start..]
        .iter()
        .position(|&b| b == b'/')
        .unwrap_or(bytes.len() - start);
    RouteKey::of(&path[start..start + len])
}

/// How long a close lingers, reading and discarding input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linger {
    /// The whole drain timeout: the close may cut a request short (one
    /// refused, or answered before all of it was read), whose rest the
    /// client is still sending.
    Full,
    /// After a whole exchange, between requests: the whole drain timeout
    /// if input is unread (buffered, or waiting below the transport) or
    /// may be (the transport cannot tell, as with TLS); [`LINGER_QUIET`]
    /// if none is.
    Between,
    /// While waiting for a request with nothing of one read (idle timeout,
    /// graceful shutdown): [`LINGER_QUIET`], unless input is seen waiting
    /// below the transport. The read was pending on an empty buffer, so
    /// no request had arrived whole; a transport that cannot tell gets
    /// the short linger too.
    Idle,
}

/// Writes what is queued, ends the write side, then reads and discards
/// input for a while (see [`Linger`]; at most [`LINGER_BYTES`]) so the
/// client receives the last response before the socket closes (closing
/// with unread input sends a reset that can discard it). The client reads
/// the end of stream after the last response; one that closes its side
/// then ends the linger at once. The server is told the connection
/// lingers: cut by the shutdown deadline then, it is not counted as cut
/// (its work is done).
///
/// The linger is bounded by its own timer, not the connection's idle
/// timeout or graceful shutdown: those may be what is closing it.
async fn close_lingering<R, W>(
    input: &mut Input<R>,
    out: &mut Output<W>,
    conn: &Connection,
    cfg: &HttpConfig,
    linger: Linger,
) -> io::Result<()>
where
    R: TransportRead,
    W: TransportWrite,
{
    if out.shutdown().await.is_err() || input.eof {
        return Ok(());
    }
    linger_on(input, conn, cfg, linger).await;
    Ok(())
}

/// Reads and discards input for as long as `linger` says, once the write
/// side has ended, so that the close does not turn into a reset.
async fn linger_on<R: TransportRead>(
    input: &mut Input<R>,
    conn: &Connection,
    cfg: &HttpConfig,
    linger: Linger,
) {
    // Asked once the write side has ended, which gives requests already
    // on their way more time to show.
    let unread = match linger {
        Linger::Full => true,
        Linger::Between => input.unread() != Some(false),
        Linger::Idle => input.unread() == Some(true),
    };
    let limit = if unread {
        cfg.drain_timeout
    } else {
        LINGER_QUIET.min(cfg.drain_timeout)
    };
    conn.lingering();
    let drain = async {
        let mut seen = 0;
        while seen < LINGER_BYTES {
            input.buf.clear();
            match input.fill().await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
        }
    };
    let _ = spargio_rt::time::timeout(limit, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_empty_lines_are_skipped_up_to_a_lone_cr() {
        let skipped = |raw: &[u8]| {
            let mut buf = BytesMut::from(raw);
            skip_empty_lines(&mut buf);
            buf
        };
        assert_eq!(skipped(b"\r\n"), &b""[..]);
        assert_eq!(skipped(b"\r\n\n\r\nGET"), &b"GET"[..]);
        assert_eq!(skipped(b"\r\n\r"), &b"\r"[..]);
        assert_eq!(skipped(b"\rGET"), &b"\rGET"[..]);
        assert_eq!(skipped(b"GET\r\n"), &b"GET\r\n"[..]);
    }

    #[test]
    fn the_route_is_the_first_path_segment() {
        let key = |target: &str| route_key(&target.parse::<Uri>().unwrap());
        assert_eq!(key("/users/7/posts"), RouteKey::of("users"));
        assert_eq!(key("/users"), RouteKey::of("users"));
        assert_eq!(key("//users/"), RouteKey::of("users"));
        assert_eq!(key("/search?q=a/b"), RouteKey::of("search"));
        assert_eq!(key("http://example.com/api/v1"), RouteKey::of("api"));
        assert_eq!(key("/"), RouteKey::of(""));
        assert_eq!(key("*"), RouteKey::of("*"));
        assert_ne!(key("/users"), key("/posts"));
    }
}
