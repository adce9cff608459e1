//! One request on one connection: the task that writes the request, reads
//! the response head, hands the response over and then feeds its body,
//! all on the shard that owns the connection.
//!
//! Writing the request body and reading the response run side by side
//! (a server may answer before it has read the whole body, or stream its
//! answer while it reads), in one poll loop over two futures that borrow
//! the connection's two halves.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use spargio_rt::time::Sleep;
use spargio_service::BoxError;

use super::connect::{connect, far_future, Conn, Input, Output};
use super::oneshot;
use super::switch::switch;
use super::target::Target;
use super::{ClientError, Inner};
use crate::body::{Body, BodyError, BodySender, Demand, Watch};
use crate::h1::{
    connection_has_token, encode_last_chunk, encode_request_head, parse_response, BodyLength,
    ChunkedDecoder, ChunkedError, ChunkedItem, HeadScan, Limits, ResponseBodyLength, ResponseHead,
};
use crate::upgrade;

/// Where the task hands the response (or the error) to the caller.
pub(crate) type Reply = oneshot::Sender<Result<Response<Body>, ClientError>>;

/// Request bytes are written once this many are buffered.
const WRITE_BUFFER: usize = 64 * 1024;

/// Runs `req` to the end on the current shard (`shard`): the response, or
/// the error, goes to `reply`; the task then keeps feeding the response
/// body and finally returns the connection to the pool if it can carry
/// another request.
pub(crate) async fn run<B>(
    inner: Arc<Inner>,
    shard: usize,
    target: Target,
    req: Request<B>,
    reply: Reply,
) where
    B: HttpBody + 'static,
    B::Error: Into<BoxError>,
{
    let mut reply = Some(reply);
    if let Err(e) = drive(&inner, shard, &target, req, &mut reply).await {
        if let Some(reply) = reply.take() {
            reply.send(Err(e));
        }
    }
}

/// What every attempt of one request shares.
struct Ctx<'a> {
    inner: &'a Inner,
    shard: usize,
    target: &'a Target,
    method: &'a Method,
    /// The request timeout: when it runs out, and its length.
    deadline: Option<(Instant, Duration)>,
    /// The request did not ask to close the connection.
    reuse_allowed: bool,
    /// The request carries an `Upgrade` header: only then may a `101`
    /// answer it.
    upgrade_asked: bool,
}

impl Ctx<'_> {
    fn host(&self) -> String {
        self.target.authority.clone()
    }
}

/// How one attempt on one connection ended.
enum Attempt {
    /// The response was handed over (and its body fed as far as it went).
    Done,
    /// The request failed.
    Failed(ClientError),
    /// The connection failed before any response byte came (a reused
    /// connection the server had closed), or a retryable request on a
    /// reused connection got a closing `408` (the server timed the idle
    /// connection out as the request went out): the request may be retried
    /// on a new one.
    Stale(ClientError),
}

async fn drive<B>(
    inner: &Inner,
    shard: usize,
    target: &Target,
    req: Request<B>,
    reply: &mut Option<Reply>,
) -> Result<(), ClientError>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let deadline = inner.config.request_timeout.map(|after| {
        let at = Instant::now().checked_add(after).unwrap_or_else(far_future);
        (at, after)
    });
    let (mut parts, body) = req.into_parts();
    // A plain `http` request through a proxy goes to the proxy itself:
    // the whole URI as its target, and the proxy's credentials (an `https`
    // one goes through a tunnel, where the proxy sees none of it).
    let to_proxy = match target.via {
        Some(via) if !via.tunnel => {
            inner.config.proxies[via.proxy].authorize(&mut parts.headers);
            true
        }
        Some(_) => {
            // Credentials meant for the proxy never reach the server at
            // the tunnel's end.
            parts.headers.remove(http::header::PROXY_AUTHORIZATION);
            false
        }
        None => {
            // Around the client's proxies (a `no_proxy` server, a scheme
            // none covers): a `Proxy-Authorization` the caller's stack
            // added for them is not the server's to see.
            if !inner.config.proxies.is_empty() {
                parts.headers.remove(http::header::PROXY_AUTHORIZATION);
            }
            false
        }
    };
    let framing = request_framing(&body, &parts.headers);
    let mut body = match framing {
        BodyLength::Empty => None,
        BodyLength::Length(_) | BodyLength::Chunked => Some(body),
    };
    let mut head = BytesMut::new();
    encode_request_head(
        &mut head,
        &parts.method,
        &parts.uri,
        &parts.headers,
        framing,
        to_proxy,
    )
    .map_err(|e| ClientError::InvalidRequest {
        host: target.authority.clone(),
        reason: e.to_string(),
    })?;
    let ctx = Ctx {
        inner,
        shard,
        target,
        method: &parts.method,
        deadline,
        reuse_allowed: parts.method != Method::CONNECT
            && !connection_has_token(&parts.headers, "close"),
        upgrade_asked: super::asks_to_upgrade(&parts.headers),
    };
    // Only a request that can be sent twice without harm, and whose
    // (empty) body is not consumed by the first try, is retried.
    let mut may_retry = body.is_none() && is_idempotent(&parts.method);
    let mut retrying = false;
    loop {
        // The retry goes to a new connection: when a server closes its
        // idle connections (a keep-alive timeout, a restart) it closes all
        // of them, so the next pooled one is likely dead too.
        let pooled = (!retrying)
            .then(|| inner.pool.checkout(shard, target))
            .flatten();
        let (conn, reused) = match pooled {
            Some(conn) => (conn, true),
            None => (connect(inner, target, deadline).await?, false),
        };
        // A closing `408` on a reused connection is the server's idle
        // timeout racing the request (as Go's client reads it too): retried
        // like a connection closed without an answer.
        let stale_on_408 = reused && may_retry;
        match attempt(&ctx, conn, &head, framing, body.take(), reply, stale_on_408).await {
            Attempt::Done => return Ok(()),
            Attempt::Failed(e) => return Err(e),
            Attempt::Stale(e) => {
                if reused && may_retry {
                    may_retry = false;
                    retrying = true;
                } else {
                    return Err(e);
                }
            }
        }
    }
}

/// How the request body is framed: by its exact size if it has one, else
/// by the `Content-Length` the caller set (a stream whose length the caller
/// knows: many servers refuse chunked uploads), else chunked; nothing at
/// all if it is empty. Sending more or fewer bytes than the length fails
/// the request (see `write_request`).
fn request_framing<B: HttpBody>(body: &B, headers: &http::HeaderMap) -> BodyLength {
    if body.is_end_stream() {
        return BodyLength::Empty;
    }
    match body.size_hint().exact() {
        Some(0) => BodyLength::Empty,
        Some(n) => BodyLength::Length(n),
        None => match crate::h1::parse_content_length(headers) {
            Ok(Some(n)) => BodyLength::Length(n),
            _ => BodyLength::Chunked,
        },
    }
}

/// Methods whose requests may be sent twice (RFC 9110 §9.2.2), minus
/// POST/PATCH/CONNECT.
fn is_idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ]
    .contains(method)
}

/// How writing the request ended.
enum WriteEnd {
    /// Everything was written.
    Done,
    /// The connection failed.
    Io(io::Error),
    /// The request body failed; the write side was shut down, or the
    /// connection is to be dropped (see [`body_failed`]).
    Body(BoxError),
}

/// Which limit ran out while waiting for the response head.
enum Expired {
    /// The request timeout.
    Request,
    /// The response timeout, this long.
    Response(Duration),
}

/// How reading the response head failed.
enum HeadError {
    /// The server closed the connection.
    Closed { any_bytes: bool },
    /// Reading failed.
    Io { err: io::Error, any_bytes: bool },
    /// The head is not valid.
    Parse(&'static str),
}

/// How feeding the response body ended.
enum Fed {
    /// The body was read to its end; the sender's `finish` is left to the
    /// caller, to be called once the connection is back in the pool (so a
    /// caller that saw the end and sends the next request finds it there).
    Complete(BodySender),
    /// The body was not read to its end (the connection cannot be reused).
    Incomplete,
}

/// What the response turned out to need once its head arrived.
enum Delivery {
    /// A response without a body, to hand over once the connection is back
    /// in the pool.
    Later(Response<Body>),
    /// A response already handed over whose body was fed.
    Fed(Fed),
    /// A whole response already handed over, body and all.
    HandedOver,
}

/// Hands the response (or the end of its body) to the caller.
fn hand_over(delivery: Delivery, reply: &mut Option<Reply>) {
    match delivery {
        Delivery::Later(response) => {
            if let Some(reply) = reply.take() {
                reply.send(Ok(response));
            }
        }
        Delivery::Fed(Fed::Complete(sender)) => sender.finish(),
        Delivery::Fed(Fed::Incomplete) | Delivery::HandedOver => {}
    }
}

/// Polls the writer unless it has finished.
fn poll_writer<F: Future<Output = WriteEnd>>(
    writer: Pin<&mut F>,
    written: &mut Option<WriteEnd>,
    cx: &mut Context<'_>,
) {
    if written.is_none() {
        if let Poll::Ready(end) = writer.poll(cx) {
            *written = Some(end);
        }
    }
}

async fn attempt<B>(
    ctx: &Ctx<'_>,
    conn: Conn,
    head: &[u8],
    framing: BodyLength,
    body: Option<B>,
    reply: &mut Option<Reply>,
    stale_on_408: bool,
) -> Attempt
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let Conn {
        mut input,
        mut output,
        probe,
    } = conn;
    output.buf.extend_from_slice(head);
    let limits = &ctx.inner.config.limits;
    let mut written: Option<WriteEnd> = None;
    // A `101`'s connection, waiting to be handed over.
    let mut switching = None;
    let (delivery, keep_alive) = {
        // Set once the response head is in: from then on a failing request
        // body shuts the write side down and the response goes on coming.
        let head_in = AtomicBool::new(false);
        let mut writer = pin!(write_request(&mut output, body, framing, &head_in));

        // Until the head: write and read side by side, under the request
        // timeout, and under the response timeout once the request is
        // whole on the wire.
        let mut timer = pin!(ctx
            .deadline
            .map(|(at, _)| spargio_rt::time::sleep_until(at)));
        let response_timeout = ctx.inner.config.response_timeout;
        // Made (and registered) only when the write ends with the knob on.
        let mut answer_timer: Option<Sleep> = None;
        let read = {
            let max_interim = ctx.inner.config.max_interim_responses;
            let mut reader = pin!(read_head(
                &mut input,
                ctx.method,
                limits,
                max_interim,
                ctx.upgrade_asked
            ));
            poll_fn(|cx| {
                poll_writer(writer.as_mut(), &mut written, cx);
                if let Some(WriteEnd::Body(_)) = written {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(res) = reader.as_mut().poll(cx) {
                    return Poll::Ready(Some(Ok(res)));
                }
                if let Some(timer) = timer.as_mut().as_pin_mut() {
                    if timer.poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(Expired::Request)));
                    }
                }
                if let (Some(limit), Some(WriteEnd::Done)) = (response_timeout, &written) {
                    // The clock starts at the first poll that sees the
                    // write done: the one in which it ended. Interim
                    // responses read since do not restart it.
                    let answer_timer = answer_timer.get_or_insert_with(|| {
                        Sleep::until(Instant::now().checked_add(limit).unwrap_or_else(far_future))
                    });
                    if Pin::new(answer_timer).poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(Expired::Response(limit))));
                    }
                }
                Poll::Pending
            })
            .await
        };
        let head = match read {
            None => {
                let Some(WriteEnd::Body(source)) = written else {
                    unreachable!("the loop stops early only for a body error")
                };
                return Attempt::Failed(ClientError::Body {
                    host: ctx.host(),
                    source,
                });
            }
            Some(Err(Expired::Request)) => {
                return Attempt::Failed(ClientError::Timeout {
                    host: ctx.host(),
                    after: ctx.deadline.map_or(Duration::ZERO, |(_, after)| after),
                    connecting: false,
                });
            }
            // The connection (dropped on return) is closed, not pooled: the
            // server may still answer on it.
            Some(Err(Expired::Response(after))) => {
                return Attempt::Failed(ClientError::ResponseTimeout {
                    host: ctx.host(),
                    after,
                });
            }
            Some(Ok(Err(e))) => return head_failed(ctx, e, written),
            Some(Ok(Ok(head))) => head,
        };
        if stale_on_408 && head.status == StatusCode::REQUEST_TIMEOUT && !head.keep_alive {
            return Attempt::Stale(ClientError::Closed { host: ctx.host() });
        }
        head_in.store(true, Ordering::Relaxed);

        let mut keep_alive = head.keep_alive && ctx.reuse_allowed;
        let body_length = head.body;
        let status = head.status;
        let mut response = response_from(head);
        let framing = match body_length {
            _ if status == StatusCode::SWITCHING_PROTOCOLS
                || (*ctx.method == Method::CONNECT && status.is_success()) =>
            {
                // The connection now speaks another protocol (or is a
                // tunnel: a 2xx to CONNECT, RFC 9110 §9.3.6): it goes to
                // whoever takes the response's upgrade, never to the pool.
                keep_alive = false;
                let (on_upgrade, pending) = upgrade::pending();
                response.extensions_mut().insert(on_upgrade);
                switching = Some(pending);
                None
            }
            ResponseBodyLength::Empty | ResponseBodyLength::Length(0) => None,
            ResponseBodyLength::Length(n) => Some(Framing::Length(n)),
            ResponseBodyLength::Chunked => Some(Framing::Chunked(ChunkedDecoder::new(limits))),
            ResponseBodyLength::CloseDelimited => {
                keep_alive = false;
                Some(Framing::Close)
            }
        };
        let delivery = match framing {
            None => Delivery::Later(response),
            Some(framing) => {
                let length = match framing {
                    Framing::Length(n) => Some(n),
                    Framing::Chunked(_) | Framing::Close => None,
                };
                let (body, sender) = Body::channel(length, false);
                *response.body_mut() = body;
                if let Some(reply) = reply.take() {
                    reply.send(Ok(response));
                }
                // The rest of the request body (if any) keeps going out
                // while the response body comes in.
                let stall = ctx.inner.config.body_read_timeout;
                let mut feed = pin!(feed_body(&mut input, framing, sender, stall));
                let fed = poll_fn(|cx| {
                    poll_writer(writer.as_mut(), &mut written, cx);
                    feed.as_mut().poll(cx)
                })
                .await;
                Delivery::Fed(fed)
            }
        };
        let whole = matches!(
            delivery,
            Delivery::Later(_) | Delivery::Fed(Fed::Complete(_))
        );
        let switched = switching.is_some();
        if whole && written.is_none() && (keep_alive && status.is_success() || switched) {
            // The server took the request before all of its body went out
            // and keeps the connection (or switches it, which happens
            // after the request ends): it means to read the rest, which
            // goes on (RFC 9112 §9.5 has a client stop only for a server
            // that is closing), under the request timeout, once the
            // response is handed over. For a switch, only while someone
            // still wants the connection.
            hand_over(delivery, reply);
            poll_fn(|cx| {
                poll_writer(writer.as_mut(), &mut written, cx);
                let timed_out = timer
                    .as_mut()
                    .as_pin_mut()
                    .is_some_and(|timer| timer.poll(cx).is_ready());
                let unwanted = switching
                    .as_ref()
                    .is_some_and(|pending| pending.poll_unwanted(cx).is_ready());
                if written.is_some() || timed_out || unwanted {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            (Delivery::HandedOver, keep_alive)
        } else {
            (delivery, keep_alive)
        }
        // An unfinished writer is dropped here: the response is complete
        // without the rest of the request body (an error, a redirect, or
        // the server closing), and the connection closes.
    };

    let complete = match &delivery {
        Delivery::Later(_) | Delivery::Fed(Fed::Complete(_)) | Delivery::HandedOver => true,
        Delivery::Fed(Fed::Incomplete) => false,
    };
    let conn = Conn {
        input,
        output,
        probe,
    };
    if let Some(pending) = switching {
        hand_over(delivery, reply);
        // Switched only once the whole request is out: a request body cut
        // short (or still going when the request timeout ran out) leaves
        // the connection in no state to hand over.
        if matches!(written, Some(WriteEnd::Done)) {
            switch(conn, pending).await;
        }
        return Attempt::Done;
    }
    let mut closing = None;
    let reusable = keep_alive && matches!(written, Some(WriteEnd::Done)) && conn.is_clean();
    if complete && reusable && ctx.inner.pool.keeps_idle() {
        ctx.inner.pool.checkin(ctx.shard, ctx.target, conn);
    } else if complete {
        closing = Some(conn);
    } else {
        // Cut short: no `close_notify` that could pass for a clean end.
        drop(conn);
    }
    hand_over(delivery, reply);
    if let Some(mut conn) = closing {
        // The response is whole and delivered: close the way TLS asks
        // (`close_notify`, then a FIN; a FIN on plain TCP), for a short
        // while at most, so a server that reads nothing more cannot hold
        // the task.
        let _ = spargio_rt::time::timeout(GRACEFUL_CLOSE_WAIT, conn.output.shutdown()).await;
    }
    Attempt::Done
}

/// The most a connection the client closes after a whole exchange waits
/// for its `close_notify` (and FIN) to go out.
const GRACEFUL_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// The error for a response head that did not come; [`Attempt::Stale`] if
/// nothing at all came back.
fn head_failed(ctx: &Ctx<'_>, err: HeadError, written: Option<WriteEnd>) -> Attempt {
    let host = ctx.host();
    let (err, any_bytes) = match (err, written) {
        (HeadError::Parse(reason), _) => {
            return Attempt::Failed(ClientError::Parse { host, reason })
        }
        // The write error says more than the read side's end.
        (
            HeadError::Closed { any_bytes } | HeadError::Io { any_bytes, .. },
            Some(WriteEnd::Io(source)),
        ) => (ClientError::Io { host, source }, any_bytes),
        (HeadError::Closed { any_bytes }, _) => (ClientError::Closed { host }, any_bytes),
        (HeadError::Io { err, any_bytes }, _) => (ClientError::Io { host, source: err }, any_bytes),
    };
    if any_bytes {
        Attempt::Failed(err)
    } else {
        Attempt::Stale(err)
    }
}

/// The response for `head`, with an empty body for now.
fn response_from(head: ResponseHead) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    response
}

/// Writes the request: the head already in `out.buf`, then the body with
/// `framing`.
async fn write_request<B>(
    out: &mut Output,
    body: Option<B>,
    framing: BodyLength,
    head_in: &AtomicBool,
) -> WriteEnd
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let Some(body) = body else {
        return match out.flush().await {
            Ok(()) => WriteEnd::Done,
            Err(e) => WriteEnd::Io(e),
        };
    };
    let mut body = pin!(body);
    let mut sent: u64 = 0;
    let mut trailers: Option<HeaderMap> = None;
    loop {
        if matches!(framing, BodyLength::Length(len) if sent == len) {
            // The request is whole on the wire: the body is not polled
            // again (a stream slow to say it ended would hold the
            // connection back). A length of 0 polls nothing.
            break;
        }
        // Frames that are ready join the bytes already buffered (the head
        // goes out with the first of them); before waiting for one, what
        // is buffered is written.
        let frame = match poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if let Err(e) = out.flush().await {
                    return WriteEnd::Io(e);
                }
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return body_failed(out, e.into(), head_in).await,
        };
        match frame.into_data() {
            Ok(data) => {
                let n = data.remaining();
                if n == 0 {
                    continue;
                }
                sent += n as u64;
                match framing {
                    BodyLength::Length(len) => {
                        if sent > len {
                            let msg = format!(
                                "the request body is longer than its content-length ({len} bytes)"
                            );
                            return body_failed(out, msg.into(), head_in).await;
                        }
                        out.put_data(data);
                    }
                    BodyLength::Chunked | BodyLength::Empty => out.put_chunk(data),
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    // Trailers end the body.
                    trailers = Some(t);
                    break;
                }
            }
        }
        if out.pending() >= WRITE_BUFFER {
            if let Err(e) = out.flush().await {
                return WriteEnd::Io(e);
            }
        }
    }
    match framing {
        BodyLength::Length(len) if sent != len => {
            let msg = format!(
                "the request body is shorter than its content-length ({sent} of {len} bytes)"
            );
            return body_failed(out, msg.into(), head_in).await;
        }
        BodyLength::Chunked => {
            if let Err(e) = encode_last_chunk(&mut out.buf, trailers.as_ref()) {
                return body_failed(out, e.into(), head_in).await;
            }
        }
        BodyLength::Length(_) | BodyLength::Empty => {}
    }
    match out.flush().await {
        Ok(()) => WriteEnd::Done,
        Err(e) => WriteEnd::Io(e),
    }
}

/// Ends a request whose body failed: the server sees the connection's
/// write side close in the middle of the body (shut down here once the
/// response head is in; before it, closed with the whole connection when
/// the attempt drops it).
async fn body_failed(out: &mut Output, err: BoxError, head_in: &AtomicBool) -> WriteEnd {
    // Before the response head the attempt fails at once and drops (closes)
    // the connection; a shutdown awaited here could let the server's close,
    // its answer to our FIN, be read first and the failure be reported as
    // the server closing. After the head, the response still comes in, so
    // only the write side ends.
    if head_in.load(Ordering::Relaxed) {
        let _ = out.shutdown().await;
    }
    WriteEnd::Body(err)
}

/// Reads up to the final response head, skipping interim (1xx) responses
/// other than `101 Switching Protocols` (at most `max_interim` of them).
/// A `101` to a request without `Upgrade` is refused (RFC 9110 §15.2.2: a
/// server switches only to a protocol the client named): the bytes after
/// it are not HTTP, and nobody waits for them.
async fn read_head(
    input: &mut Input,
    method: &Method,
    limits: &Limits,
    max_interim: usize,
    upgrade_asked: bool,
) -> Result<ResponseHead, HeadError> {
    let mut any_bytes = !input.buf.is_empty();
    let mut interim = 0;
    // A head dripped a byte at a time is not parsed again from its start
    // after every read.
    let mut scan = HeadScan::default();
    loop {
        if scan.worth_parsing(&input.buf, limits.max_head_bytes, None) {
            match parse_response(&input.buf, method, limits) {
                Ok(Some((head, n))) => {
                    input.buf.advance(n);
                    scan.reset();
                    if head.status == StatusCode::SWITCHING_PROTOCOLS && !upgrade_asked {
                        return Err(HeadError::Parse(
                            "101 Switching Protocols to a request that asked for no upgrade",
                        ));
                    }
                    if head.status.is_informational()
                        && head.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        // A server that sends nothing but interim answers
                        // must not hold the request forever.
                        interim += 1;
                        if interim > max_interim {
                            return Err(HeadError::Parse("too many interim (1xx) responses"));
                        }
                        continue;
                    }
                    return Ok(head);
                }
                Ok(None) => {}
                Err(e) => return Err(HeadError::Parse(e.0)),
            }
        }
        match input.fill().await {
            Ok(0) => {}
            Ok(_) => {
                any_bytes = true;
                continue;
            }
            // A TLS session cut without `close_notify`: before a whole
            // head no truncation can pass for an answer, and this is how
            // most HTTPS servers close. A close, as over TCP.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(err) => return Err(HeadError::Io { err, any_bytes }),
        }
        // Judged once more whatever the scan says: a malformed head cut
        // short is a parse error, not just a close.
        if !input.buf.is_empty() {
            if let Err(e) = parse_response(&input.buf, method, limits) {
                return Err(HeadError::Parse(e.0));
            }
        }
        return Err(HeadError::Closed { any_bytes });
    }
}

/// How the response body is delimited, and how much of it is left.
enum Framing {
    /// `Content-Length`: this many bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
    /// Until the server closes the connection.
    Close,
}

/// A step through the buffered response body.
enum Item {
    Data(bytes::Bytes),
    End(Option<HeaderMap>),
    NeedMore,
}

/// The next step from what `input` holds.
fn next_item(input: &mut Input, framing: &mut Framing) -> Result<Item, ChunkedError> {
    Ok(match framing {
        Framing::Length(0) => Item::End(None),
        Framing::Length(rem) => {
            if input.buf.is_empty() {
                Item::NeedMore
            } else {
                let n = (*rem).min(input.buf.len() as u64);
                *rem -= n;
                Item::Data(input.take_frame(n as usize))
            }
        }
        Framing::Chunked(dec) => match dec.decode(&mut input.buf)? {
            ChunkedItem::Data(data) => Item::Data(input.own_frame(data)),
            ChunkedItem::NeedMore => Item::NeedMore,
            ChunkedItem::End(trailers) => Item::End(trailers),
        },
        Framing::Close => {
            if !input.buf.is_empty() {
                Item::Data(input.take_frame(input.buf.len()))
            } else if input.eof {
                Item::End(None)
            } else {
                Item::NeedMore
            }
        }
    })
}

/// Feeds the response body to `sender` as the caller asks for it, reading
/// from the connection only when what is buffered has been taken; a read
/// that brings nothing for `stall` while the caller waits for the next
/// frame fails the body (the clock starts when the caller asks, not when
/// the read does).
async fn feed_body(
    input: &mut Input,
    mut framing: Framing,
    sender: BodySender,
    stall: Option<Duration>,
) -> Fed {
    loop {
        let item = match next_item(input, &mut framing) {
            Ok(item) => item,
            Err(e) => {
                sender.fail(BodyError::Malformed(e.0));
                return Fed::Incomplete;
            }
        };
        match item {
            Item::Data(data) => match sender.demand().await {
                Demand::Ready => sender.send_data(data),
                Demand::Gone => return drain_buffered(input, &mut framing, sender),
            },
            Item::End(trailers) => {
                if let Some(trailers) = trailers {
                    if sender.demand().await == Demand::Ready {
                        sender.send_trailers(trailers);
                    }
                }
                return Fed::Complete(sender);
            }
            Item::NeedMore => {
                if sender.demand().await == Demand::Gone {
                    return drain_buffered(input, &mut framing, sender);
                }
                // The read starts now (one frame ahead of the caller), but
                // the stall clock only once the caller waits for the next
                // frame: a caller slow to ask is not the server's stall.
                let mut fill = pin!(input.fill());
                let mut timer: Option<Sleep> = None;
                let filled = poll_fn(|cx| {
                    if let Poll::Ready(filled) = fill.as_mut().poll(cx) {
                        return Poll::Ready(Some(filled));
                    }
                    match sender.watch(cx) {
                        // A body dropped while the server is slow to send
                        // more ends the wait (and the connection) now, not
                        // when (or if) the next bytes come.
                        Watch::Gone => return Poll::Ready(None),
                        Watch::Waiting if timer.is_none() => {
                            timer = stall.map(|limit| {
                                let at = Instant::now().checked_add(limit);
                                Sleep::until(at.unwrap_or_else(far_future))
                            });
                        }
                        Watch::Waiting | Watch::Idle => {}
                    }
                    if let (Some(timer), Some(limit)) = (&mut timer, stall) {
                        if Pin::new(timer).poll(cx).is_ready() {
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("the response body stalled: no bytes for {limit:?}"),
                            ))));
                        }
                    }
                    Poll::Pending
                })
                .await;
                let Some(filled) = filled else {
                    return Fed::Incomplete;
                };
                let err = match filled {
                    Ok(0) if matches!(framing, Framing::Close) => continue,
                    Ok(0) => io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the response body was complete",
                    ),
                    Ok(_) => continue,
                    Err(e) => e,
                };
                sender.fail(BodyError::Io(err));
                return Fed::Incomplete;
            }
        }
    }
}

/// The caller dropped the body: the connection can still be reused if the
/// rest of the body is already buffered (a small body usually is).
fn drain_buffered(input: &mut Input, framing: &mut Framing, sender: BodySender) -> Fed {
    loop {
        match next_item(input, framing) {
            Ok(Item::Data(_)) => {}
            Ok(Item::End(_)) => return Fed::Complete(sender),
            Ok(Item::NeedMore) | Err(_) => return Fed::Incomplete,
        }
    }
}
