//! Writing one response: waiting for the service (sending `100 Continue`
//! when its body is first read), encoding the head, streaming the body
//! through the bounded write buffer.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::Buf;
use futures_util::future::{select, Either};
use http::{header, Method, Response, StatusCode, Version};
use http_body::{Body as HttpBody, Frame};
use spargio_rt::io::flush_beside;
use spargio_service::{BoxError, Connection, HandlerError};

use super::config::HttpConfig;
use super::error_page;
use super::feed::Progress;
use super::panic_safe_body::PanicSafe;
use super::request_body::{BodyState, Probed, RequestBody};
use crate::buffered::{Mark, Output};
use crate::h1::{self, ResponseFraming};
use crate::transport::TransportWrite;

/// What the response side needs to know about its request.
pub(crate) struct Exchange {
    pub method: Method,
    pub version: Version,
    /// The request allows keeping the connection open.
    pub keep_alive: bool,
    /// The request asked for an upgrade and a handler may take it.
    pub upgrade_requested: bool,
    /// The request has `Expect: 100-continue` and a body.
    pub gated: bool,
}

/// How writing the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Responded {
    /// A complete response went out; `keep_alive` says whether the head
    /// promised to keep the connection open.
    Done { keep_alive: bool },
    /// A `101` head went out: the connection now belongs to the handler.
    Switched,
    /// The response could not be completed: its body failed, or gave
    /// fewer or more bytes than its head promised, once some of the
    /// response had gone out or some of its body was queued (before that,
    /// a `500` replaces it). The client must not take what it got for a
    /// whole response, so the connection ends without a clean close.
    /// `reset`: the body was close-delimited, so only a TCP reset (not a
    /// FIN, which would end it as if whole) tells a plain-TCP client. (A
    /// Unix socket has no reset: there the cut cannot be told from an end.)
    Aborted { reset: bool },
}

/// Polls `fut` once; if it is not ready, flushes queued output (earlier
/// pipelined responses) so the client does not wait for them, then waits.
///
/// `fut` is polled all through the flush: a service waiting for a permit
/// (`ConcurrencyLimit`) must take the wake-up that hands it one when it
/// comes, or the permit's other waiters are not woken until this flush
/// ends, which a client that reads slowly can drag out.
pub(crate) async fn flush_while_pending<W, F>(out: &mut Output<W>, fut: F) -> io::Result<F::Output>
where
    W: TransportWrite,
    F: Future,
{
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(v);
    }
    flush_beside(out.flush(), fut).await
}

/// Waits for the service's response to `ex` and writes it. `progress` is
/// the request body's feed, if the request has a body.
///
/// The common case (the response is ready at its first poll and so is its
/// whole body) completes inside one poll without awaiting anything; only
/// the waits are separate futures (the body's boxed), which keeps this
/// future small: futures are copied whole when they are awaited.
pub(crate) async fn respond<W, F, B>(
    out: &mut Output<W>,
    fut: F,
    ex: &Exchange,
    progress: Option<&Progress>,
    conn: &Connection,
    cfg: &HttpConfig,
) -> io::Result<Responded>
where
    W: TransportWrite,
    F: Future<Output = Result<Response<B>, HandlerError>>,
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let mut request = RequestBody::new(progress, ex.gated);
    // When the service dropped the request body as it answered, the feed
    // (on this task, polled before this) has not seen the drop yet: it
    // waits to hand over its next frame. The answer waits one turn for the
    // feed to drain what of the body is already here, so the head knows
    // whether the rest is still to come (see `RequestBody::feed_behind`).
    // A response ready at the first poll goes straight from the poll into
    // the head's encoding (each hand-over of it on the way is a copy). The
    // service's future ends with this block, before the body is written.
    let answer = {
        let mut fut = pin!(fut);
        match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            Poll::Ready(res) if !request.feed_behind() => {
                take_answer(out, guarded(res), ex, &mut request, conn, cfg)
            }
            Poll::Ready(res) => {
                spargio_rt::yield_now().await;
                take_answer(out, guarded(res), ex, &mut request, conn, cfg)
            }
            Poll::Pending => {
                // Earlier pipelined responses go out while this one is
                // being worked on (it is polled all through: whatever it
                // holds, a permit or a lock, must not wait on how fast the
                // client reads).
                let res = match request.awaiting_continue() {
                    None => flush_beside(out.flush(), fut.as_mut()).await?,
                    Some(_) => Box::pin(wait_gated(out, fut.as_mut(), &mut request)).await?,
                };
                if request.feed_behind() {
                    spargio_rt::yield_now().await;
                }
                take_answer(out, guarded(res), ex, &mut request, conn, cfg)
            }
        }
    };
    match answer {
        Answer::Write(head) => send_rest(out, head, ex, cfg).await,
        Answer::Probe(resp) => Box::pin(respond_probed(out, resp, ex, request, conn, cfg)).await,
    }
}

/// `res` with its body's panics caught: see [`PanicSafe`].
fn guarded<B>(
    res: Result<Response<B>, HandlerError>,
) -> Result<Response<PanicSafe<B>>, HandlerError> {
    res.map(|resp| resp.map(PanicSafe::new))
}

/// What to do with the service's answer.
enum Answer<B> {
    /// Its head (or the error page in its place) is queued.
    Write(Head<B>),
    /// Its head depends on whether its body reads the request body: see
    /// [`respond_probed`].
    Probe(Response<B>),
}

/// Takes the service's answer `res`: queues `100 Continue` first if the
/// service asked for a body the client holds back, then the head, unless
/// the body has to be probed first.
fn take_answer<W, B>(
    out: &mut Output<W>,
    res: Result<Response<B>, HandlerError>,
    ex: &Exchange,
    request: &mut RequestBody<'_>,
    conn: &Connection,
    cfg: &HttpConfig,
) -> Answer<B>
where
    B: HttpBody,
{
    request.continue_if_asked(out);
    if ex.upgrade_requested && matches!(&res, Ok(resp) if switches(ex, resp.status())) {
        request.continue_for_switch(out, cfg.drain_limit);
    }
    match res {
        Ok(resp) if request.probe_wanted(cfg.drain_limit) && writes_body(ex, &resp) => {
            Answer::Probe(resp)
        }
        res => {
            // Not probed: a bodiless answer (or an error page), or a body
            // whose reading does not decide the head.
            let answer_reads = || matches!(&res, Ok(resp) if writes_body(ex, resp));
            let body = request.state(cfg.drain_limit, answer_reads);
            Answer::Write(write_head(out, res, HeadContext { ex, body, conn }))
        }
    }
}

/// Writes an answer whose head depends on what its body does with the
/// request body, which the service holds: never asked for while the
/// client waits for `100 Continue`, or with a rest more than the server
/// drains (asked for or not). The answer's body is polled before the
/// head: if that asks for the request body (an echo), `100 Continue` goes
/// out ahead of the head and the body is being read, so the connection may
/// stay open. If not (or if the answer's body came whole at once, so it
/// cannot be what reads the rest), the head says the connection closes.
///
/// While the client waits for `100 Continue`, the head waits for the
/// answer's body to decide: to ask for the request body, drop it, or give
/// its first frame (or end), unless the request body's framing is refused
/// (a bad chunk, or more than the size limit, in bytes the client sent
/// with its head without waiting; the gated body reads no further): the
/// answer is then that error, at once. A body that first awaits something
/// else and then streams the request body still gets its `100` (it cannot
/// follow the final head); the client, which sends nothing until then,
/// loses nothing by the wait. The wait lasts at most
/// [`HttpConfig::header_read_timeout`] after earlier pipelined answers went
/// out (the time a client is given to send its head is the time it waits
/// for ours): a body that keeps the request body unread and gives nothing
/// for longer (a long poll, an event stream) then has its head sent saying
/// the connection closes, as if it had decided not to read, and a `100` it
/// asks for later is never sent. Otherwise the body is polled once.
async fn respond_probed<W, B>(
    out: &mut Output<W>,
    resp: Response<B>,
    ex: &Exchange,
    mut request: RequestBody<'_>,
    conn: &Connection,
    cfg: &HttpConfig,
) -> io::Result<Responded>
where
    W: TransportWrite,
    B: HttpBody,
{
    let (parts, body) = resp.into_parts();
    let mut body = Probed::new(body);
    let decided = |body: &mut Probed<B>, request: &RequestBody<'_>, cx: &mut Context<'_>| {
        body.probe(cx) || request.continue_decided(cx)
    };
    let now = poll_fn(|cx| Poll::Ready(decided(&mut body, &request, cx))).await;
    if !now {
        // Earlier pipelined responses go out first (the body may decide
        // meanwhile).
        out.flush().await?;
        // Then the head waits no longer than this for the body to decide.
        let mut bound = spargio_rt::time::sleep(cfg.header_read_timeout);
        poll_fn(|cx| {
            if decided(&mut body, &request, cx) || Pin::new(&mut bound).poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    request.continue_if_asked(out);
    let cx = HeadContext {
        ex,
        body: request.state(cfg.drain_limit, || !body.whole_at_once()),
        conn,
    };
    let head = write_head(out, Ok(Response::from_parts(parts, body)), cx);
    send_rest(out, head, ex, cfg).await
}

/// Whether the head of `resp`, the answer to `ex`, frames a body that is
/// written (not an upgrade, an interim status, or a bodiless answer).
fn writes_body<B: HttpBody>(ex: &Exchange, resp: &Response<B>) -> bool {
    let status = resp.status();
    if status.is_informational() {
        return false;
    }
    let exact = resp.body().size_hint().exact();
    let framing = h1::response_framing(&ex.method, ex.version, status, resp.headers(), exact);
    !matches!(framing, ResponseFraming::NoBody | ResponseFraming::Tunnel)
}

/// Writes what follows a queued head: the body, if it has one.
///
/// A body that cannot be completed (it fails, or breaks the framing its
/// head promised) before any of its bytes are queued, while its head has
/// not gone out either, gets a `500` in place of its head, and the
/// connection closes after it; one cut short later aborts the connection
/// (see [`Responded::Aborted`]).
async fn send_rest<W, B>(
    out: &mut Output<W>,
    head: Head<B>,
    ex: &Exchange,
    cfg: &HttpConfig,
) -> io::Result<Responded>
where
    W: TransportWrite,
    B: HttpBody,
{
    match head {
        Head::Done(responded) => Ok(responded),
        Head::Switched => {
            out.flush().await?;
            Ok(Responded::Switched)
        }
        Head::Body {
            body,
            framing,
            keep_alive,
            start,
        } => {
            if framing == ResponseFraming::CloseDelimited {
                // Only a clean close ends this body: any other end of the
                // connection before it is all out (a write that fails or
                // times out, a forced shutdown dropping the connection)
                // must show as a reset, not as the end of the body.
                out.arm_reset();
            }
            let mut body = pin!(body);
            let mut written = 0;
            let ready = poll_fn(|cx| {
                Poll::Ready(put_ready_frames(
                    out,
                    body.as_mut(),
                    framing,
                    &mut written,
                    cfg,
                    cx,
                ))
            })
            .await;
            let complete = match ready {
                Some(complete) => complete,
                None => {
                    Box::pin(write_body(out, body.as_mut(), framing, &mut written, cfg)).await?
                }
            };
            if complete {
                Ok(Responded::Done { keep_alive })
            } else if written == 0 && out.discard_from(start) {
                // Nothing of this response has been sent, nor any of its
                // body queued: the client gets a whole error response
                // rather than a cut one (and earlier responses queued
                // before it stay).
                error_page::write(
                    &mut out.buf,
                    ex.version,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    false,
                    false,
                );
                Ok(Responded::Done { keep_alive: false })
            } else {
                Ok(Responded::Aborted {
                    reset: framing == ResponseFraming::CloseDelimited,
                })
            }
        }
    }
}

/// What is left after the head is queued.
enum Head<B> {
    /// Nothing: the response (or the error page in its place) is queued.
    Done(Responded),
    /// A `101` head is queued: flush it and hand the connection over.
    Switched,
    /// The body goes out next, framed so.
    Body {
        body: B,
        framing: ResponseFraming,
        keep_alive: bool,
        /// Where the head starts in the output: a body that fails before
        /// any of it goes out is answered with a `500` from here.
        start: Mark,
    },
}

/// What the head of a response depends on besides the response.
struct HeadContext<'a> {
    ex: &'a Exchange,
    /// Where the request body stands.
    body: BodyState,
    conn: &'a Connection,
}

impl HeadContext<'_> {
    /// Whether an answer that is complete in itself (an error page in
    /// place of the service's) may keep the connection open: the request
    /// body must be here whole (the service will not read the rest, and
    /// whether the client still sends it is unknown) and drainable.
    fn error_keeps_alive(&self) -> bool {
        self.ex.keep_alive
            && !self.conn.is_closing()
            && !self.body.rest_to_come
            && !self.body.undrainable
    }
}

/// Queues the head of the service's answer `res` (or the error page that
/// replaces it). No I/O, so none of this is kept in the response future.
fn write_head<W, B>(
    out: &mut Output<W>,
    res: Result<Response<B>, HandlerError>,
    cx: HeadContext<'_>,
) -> Head<B>
where
    B: HttpBody,
{
    let head_only = cx.ex.method == Method::HEAD;
    if let Some(status) = cx.body.refused {
        // The request body was malformed or too large: the request gets
        // that error (and the connection closes), not the service's answer
        // or failure over a body it never fully had.
        error_page::write(&mut out.buf, cx.ex.version, status, false, head_only);
        return Head::Done(Responded::Done { keep_alive: false });
    }
    match res {
        Ok(resp) => write_response_head(out, resp, cx),
        Err(e) => {
            let status = match e {
                HandlerError::TimedOut | HandlerError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
                // A `LoadShed` (ours or tower's) or our `Timeout` layer's
                // refusal is load, not a fault: "try again later", as the
                // server's own timeout.
                e if e.is_overloaded() || e.is_timeout() => StatusCode::SERVICE_UNAVAILABLE,
                // Failed over a body the client stalled or cut short: the
                // client's fault, not the server's.
                HandlerError::Service(_) => cx
                    .body
                    .cut_short
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                HandlerError::Panicked(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let keep_alive = cx.error_keeps_alive();
            error_page::write(&mut out.buf, cx.ex.version, status, keep_alive, head_only);
            Head::Done(Responded::Done { keep_alive })
        }
    }
}

/// [`write_head`] for a response the service gave.
fn write_response_head<W, B>(out: &mut Output<W>, resp: Response<B>, cx: HeadContext<'_>) -> Head<B>
where
    B: HttpBody,
{
    let ex = cx.ex;
    // The head is read in place; only the body is moved out at the end
    // (taking the response apart first would copy all of it).
    let status = resp.status();
    let internal_error = |out: &mut Output<W>, keep_alive| {
        error_page::write(
            &mut out.buf,
            ex.version,
            StatusCode::INTERNAL_SERVER_ERROR,
            keep_alive,
            ex.method == Method::HEAD,
        );
        Head::Done(Responded::Done { keep_alive })
    };

    if status == StatusCode::SWITCHING_PROTOCOLS && ex.method == Method::CONNECT {
        // A CONNECT client waits for a 2xx to open its tunnel and reads a
        // 101 as an interim answer (and an HTTP/1.0 one must get no 1xx).
        return internal_error(out, false);
    }
    if switches(ex, status) {
        let tunnel = status != StatusCode::SWITCHING_PROTOCOLS;
        if !ex.upgrade_requested {
            // A 101 to a request that did not ask to switch would leave the
            // client reading a stream it cannot parse.
            return internal_error(out, false);
        }
        // The head goes out with no body framing (a 2xx to CONNECT not
        // even the handler's Content-Length); then the handler that took
        // the upgrade gets the raw connection.
        let framing = if tunnel {
            ResponseFraming::Tunnel
        } else {
            ResponseFraming::NoBody
        };
        let encoded = h1::encode_response_head(
            &mut out.buf,
            ex.version,
            status,
            resp.headers(),
            framing,
            None,
            true,
        );
        return match encoded {
            Ok(()) => Head::Switched,
            Err(_) => internal_error(out, false),
        };
    }
    if status.is_informational() {
        // Any other 1xx is interim: sent as the answer, it would leave the
        // client waiting for the final response and put every later
        // response on the connection one request behind. The error page is
        // a complete response, so the connection can go on.
        return internal_error(out, cx.error_keeps_alive());
    }

    let exact = resp.body().size_hint().exact();
    let framing = h1::response_framing(&ex.method, ex.version, status, resp.headers(), exact);
    let service_closes = resp
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), b"close"));
    let keep_alive = ex.keep_alive
        && !service_closes
        && !cx.conn.is_closing()
        && framing != ResponseFraming::CloseDelimited
        && request_body_allows_keep_alive(&cx.body);
    let head_length = if ex.method == Method::HEAD {
        exact.filter(|&n| n > 0)
    } else {
        None
    };
    let start = out.mark();
    let encoded = h1::encode_response_head(
        &mut out.buf,
        ex.version,
        status,
        resp.headers(),
        framing,
        head_length,
        keep_alive,
    );
    if encoded.is_err() {
        // A header value with CR/LF/NUL is refused, never sent.
        return internal_error(out, keep_alive);
    }
    match framing {
        ResponseFraming::NoBody | ResponseFraming::Tunnel => {
            Head::Done(Responded::Done { keep_alive })
        }
        _ => Head::Body {
            body: resp.into_body(),
            framing,
            keep_alive,
            start,
        },
    }
}

/// Whether an answer with `status` to `ex` hands the connection over: a
/// `101` (not to `CONNECT`), or a 2xx to `CONNECT`, which turns the
/// connection into a tunnel (RFC 9110, 9.3.6).
fn switches(ex: &Exchange, status: StatusCode) -> bool {
    if ex.method == Method::CONNECT {
        status.is_success()
    } else {
        status == StatusCode::SWITCHING_PROTOCOLS
    }
}

/// Whether, as far as the request body goes, the head of an answer the
/// service gave may promise to keep the connection open.
fn request_body_allows_keep_alive(body: &BodyState) -> bool {
    // The client waits for `100 Continue` before it sends the body: if the
    // service answered without asking for it, whether the body follows is
    // unknown.
    let unknown = body.held_back;
    // An answer given without the rest of the body, which the service no
    // longer wants: whether the client sends it is unknown (the answer
    // goes out at once, before it).
    let unread = body.rest_to_come && body.dropped;
    // Draining the rest would go over the drain limit.
    !unknown && !unread && !body.undrainable
}

/// Waits for the response to a request with `Expect: 100-continue`,
/// sending `100 Continue` (and flushing it) as soon as the service first
/// asks for the body, if the body has not arrived by then. Output queued
/// before (earlier pipelined responses) is flushed first, the service
/// polled all the while.
async fn wait_gated<W, F>(
    out: &mut Output<W>,
    mut fut: Pin<&mut F>,
    request: &mut RequestBody<'_>,
) -> io::Result<F::Output>
where
    W: TransportWrite,
    F: Future,
{
    let Some(progress) = request.awaiting_continue() else {
        return flush_beside(out.flush(), fut).await;
    };
    let opened = pin!(progress.body.opened());
    match flush_beside(out.flush(), select(fut.as_mut(), opened)).await? {
        Either::Left((res, _)) => Ok(res),
        Either::Right(((), _)) => {
            if request.continue_if_asked(out) {
                out.flush().await?;
            }
            Ok(fut.await)
        }
    }
}

/// Frames in a row that queue nothing (empty data, trailers a non-chunked
/// response drops) before the connection task yields: a body that is
/// always ready with such frames never fills the write buffer, so nothing
/// else would make the task give its shard back.
const EMPTY_FRAMES_BEFORE_YIELD: u32 = 16;

/// Appends the body frames that are ready now, until the body ends
/// (`Some(complete)`, see [`write_body`]), or it is not ready, the write
/// buffer is full or [`EMPTY_FRAMES_BEFORE_YIELD`] frames in a row queued
/// nothing (`None`: [`write_body`] goes on from here).
fn put_ready_frames<W, B>(
    out: &mut Output<W>,
    mut body: Pin<&mut B>,
    framing: ResponseFraming,
    written: &mut u64,
    cfg: &HttpConfig,
    cx: &mut Context<'_>,
) -> Option<bool>
where
    B: HttpBody,
{
    let mut empty = 0;
    while out.pending() < cfg.write_buffer && empty < EMPTY_FRAMES_BEFORE_YIELD {
        if length_met(framing, *written) {
            return Some(true);
        }
        match body.as_mut().poll_frame(cx) {
            Poll::Pending => return None,
            Poll::Ready(frame) => {
                let before = out.pending();
                if let Some(complete) = put_frame(out, frame, framing, written) {
                    return Some(complete);
                }
                empty = if out.pending() == before {
                    empty + 1
                } else {
                    0
                };
            }
        }
    }
    None
}

/// Streams the rest of the response body, `written` bytes of it already
/// queued (and counted there as more are). Returns whether it was complete
/// and correctly framed (if not, the connection must close: the client
/// cannot find the end of this response otherwise).
async fn write_body<W, B>(
    out: &mut Output<W>,
    mut body: Pin<&mut B>,
    framing: ResponseFraming,
    written: &mut u64,
    cfg: &HttpConfig,
) -> io::Result<bool>
where
    W: TransportWrite,
    B: HttpBody,
{
    let mut empty = 0;
    loop {
        if length_met(framing, *written) {
            return Ok(true);
        }
        if out.pending() >= cfg.write_buffer {
            out.flush().await?;
        }
        if empty >= EMPTY_FRAMES_BEFORE_YIELD {
            empty = 0;
            spargio_rt::yield_now().await;
        }
        let frame = match poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
            Poll::Ready(f) => f,
            Poll::Pending => {
                out.flush().await?;
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let before = out.pending();
        if let Some(complete) = put_frame(out, frame, framing, written) {
            return Ok(complete);
        }
        empty = if out.pending() == before {
            empty + 1
        } else {
            0
        };
    }
}

/// Whether a body framed by its length has had all of it written: the
/// response is then whole on the wire, and the body is not polled again
/// (a stream that is slow to say it ended must not hold up the next
/// request, and what it might give past the length would not be sent).
fn length_met(framing: ResponseFraming, written: u64) -> bool {
    matches!(framing, ResponseFraming::Length(len) if written == len)
}

/// Queues one polled body frame (`None`: the body ended). Returns
/// `Some(complete)` when the body is over: ended, failed, or framed wrong.
fn put_frame<W, D: Buf, E>(
    out: &mut Output<W>,
    frame: Option<Result<Frame<D>, E>>,
    framing: ResponseFraming,
    written: &mut u64,
) -> Option<bool> {
    let frame = match frame {
        None => {
            return Some(match framing {
                ResponseFraming::Chunked => {
                    let _ = h1::encode_last_chunk(&mut out.buf, None);
                    true
                }
                ResponseFraming::Length(len) => *written == len,
                _ => true,
            })
        }
        Some(Ok(frame)) => frame,
        Some(Err(_)) => return Some(false),
    };
    match frame.into_data() {
        Ok(data) => {
            let n = data.remaining();
            if n == 0 {
                return None;
            }
            match framing {
                ResponseFraming::Chunked => out.put_chunk(data),
                ResponseFraming::Length(len) => {
                    if *written + n as u64 > len {
                        // More bytes than the head promised.
                        return Some(false);
                    }
                    out.put_data(data);
                }
                ResponseFraming::CloseDelimited => out.put_data(data),
                ResponseFraming::NoBody | ResponseFraming::Tunnel => {}
            }
            *written += n as u64;
            None
        }
        Err(frame) => match (frame.into_trailers(), framing) {
            (Ok(trailers), ResponseFraming::Chunked) => {
                Some(h1::encode_last_chunk(&mut out.buf, Some(&trailers)).is_ok())
            }
            _ => None,
        },
    }
}

/// Whether a comma-separated header value has `token` (ASCII
/// case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}
