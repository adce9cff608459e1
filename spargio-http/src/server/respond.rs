//! Writing one response: waiting for the service (sending `100 Continue`
//! when its body is first read), encoding the head, streaming the body
//! through the bounded write buffer.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;

use bytes::{Buf, BufMut, Bytes};
use futures_util::future::{select, Either};
use http::{header, Method, Response, StatusCode, Version};
use http_body::Body as HttpBody;
use spargio_service::{BoxError, Connection, HandlerError};

use super::config::HttpConfig;
use super::error_page;
use super::feed::Progress;
use crate::body::Gate;
use crate::buffered::Output;
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
}

/// Polls `fut` once; if it is not ready, flushes queued output (earlier
/// pipelined responses) so the client does not wait for them, then waits.
pub(crate) async fn flush_while_pending<W, F>(out: &mut Output<W>, fut: F) -> io::Result<F::Output>
where
    W: TransportWrite,
    F: Future,
{
    let mut fut = pin!(fut);
    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Ok(v);
    }
    out.flush().await?;
    Ok(fut.await)
}

/// Waits for the service's response to `ex` and writes it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn respond<W, F, B>(
    out: &mut Output<W>,
    fut: F,
    ex: &Exchange,
    gate: Option<Gate>,
    progress: &Progress,
    conn: &Connection,
    cfg: &HttpConfig,
) -> io::Result<Responded>
where
    W: TransportWrite,
    F: Future<Output = Result<Response<B>, HandlerError>>,
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let mut fut = pin!(fut);
    let mut continue_sent = false;
    let res = match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(res) => res,
        Poll::Pending => {
            out.flush().await?;
            match gate {
                None => fut.await,
                Some(gate) => {
                    let opened = pin!(gate.opened());
                    match select(fut.as_mut(), opened).await {
                        Either::Left((res, _)) => res,
                        Either::Right(((), _)) => {
                            out.buf.extend_from_slice(h1::CONTINUE);
                            out.flush().await?;
                            continue_sent = true;
                            fut.await
                        }
                    }
                }
            }
        }
    };
    // The client waits for `100 Continue` before it sends the body; if the
    // service answered without asking for it, whether the body follows is
    // unknown, so the connection closes after this response.
    let body_unknown = ex.gated && !continue_sent && !progress.done.get();
    let resp = match res {
        Ok(resp) => resp,
        Err(e) => {
            let status = match e {
                HandlerError::TimedOut | HandlerError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
                HandlerError::Service(_) | HandlerError::Panicked(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let keep_alive = ex.keep_alive && !conn.is_closing() && !body_unknown;
            error_page::write(&mut out.buf, ex.version, status, keep_alive);
            return Ok(Responded::Done { keep_alive });
        }
    };
    if let Some(status) = progress.refused.get() {
        // The request body was malformed or too large: the request gets
        // the error, not the service's answer to a body it never fully had.
        error_page::write(&mut out.buf, ex.version, status, false);
        return Ok(Responded::Done { keep_alive: false });
    }
    let (parts, body) = resp.into_parts();
    let status = parts.status;

    if status == StatusCode::SWITCHING_PROTOCOLS {
        if !ex.upgrade_requested {
            // A 101 to a request that did not ask to switch would leave the
            // client reading a stream it cannot parse.
            error_page::write(
                &mut out.buf,
                ex.version,
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
            );
            return Ok(Responded::Done { keep_alive: false });
        }
        if let Err(_e) = h1::encode_response_head(
            &mut out.buf,
            ex.version,
            status,
            &parts.headers,
            ResponseFraming::NoBody,
            None,
            true,
        ) {
            error_page::write(
                &mut out.buf,
                ex.version,
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
            );
            return Ok(Responded::Done { keep_alive: false });
        }
        out.flush().await?;
        return Ok(Responded::Switched);
    }

    let exact = body.size_hint().exact();
    let framing = h1::response_framing(&ex.method, ex.version, status, &parts.headers, exact);
    let service_closes = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), b"close"));
    let keep_alive = ex.keep_alive
        && !service_closes
        && !conn.is_closing()
        && framing != ResponseFraming::CloseDelimited
        && !body_unknown;
    let head_length = if ex.method == Method::HEAD {
        exact.filter(|&n| n > 0)
    } else {
        None
    };
    if h1::encode_response_head(
        &mut out.buf,
        ex.version,
        status,
        &parts.headers,
        framing,
        head_length,
        keep_alive,
    )
    .is_err()
    {
        // A header value with CR/LF/NUL is refused, never sent.
        error_page::write(
            &mut out.buf,
            ex.version,
            StatusCode::INTERNAL_SERVER_ERROR,
            keep_alive,
        );
        return Ok(Responded::Done { keep_alive });
    }
    let complete = match framing {
        ResponseFraming::NoBody => true,
        _ => write_body(out, body, framing, cfg).await?,
    };
    Ok(Responded::Done {
        keep_alive: keep_alive && complete,
    })
}

/// Streams the response body. Returns whether it was complete and
/// correctly framed (if not, the connection must close: the client cannot
/// find the end of this response otherwise).
async fn write_body<W, B>(
    out: &mut Output<W>,
    body: B,
    framing: ResponseFraming,
    cfg: &HttpConfig,
) -> io::Result<bool>
where
    W: TransportWrite,
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let mut body = pin!(body);
    let mut written: u64 = 0;
    loop {
        let frame = match poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
            Poll::Ready(f) => f,
            Poll::Pending => {
                out.flush().await?;
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(_)) => return Ok(false),
        };
        match frame.into_data() {
            Ok(mut data) => {
                let n = data.remaining();
                if n == 0 {
                    continue;
                }
                match framing {
                    ResponseFraming::Chunked => {
                        let bytes: Bytes = data.copy_to_bytes(n);
                        h1::encode_chunk(&mut out.buf, &bytes);
                    }
                    ResponseFraming::Length(len) => {
                        if written + n as u64 > len {
                            // More bytes than the head promised.
                            return Ok(false);
                        }
                        out.buf.put(data);
                    }
                    ResponseFraming::CloseDelimited => out.buf.put(data),
                    ResponseFraming::NoBody => {}
                }
                written += n as u64;
            }
            Err(frame) => {
                if let (Ok(trailers), ResponseFraming::Chunked) = (frame.into_trailers(), framing) {
                    if h1::encode_last_chunk(&mut out.buf, Some(&trailers)).is_err() {
                        return Ok(false);
                    }
                    return Ok(true);
                }
            }
        }
        if out.buf.len() >= cfg.write_buffer {
            out.flush().await?;
        }
    }
    match framing {
        ResponseFraming::Chunked => {
            let _ = h1::encode_last_chunk(&mut out.buf, None);
            Ok(true)
        }
        ResponseFraming::Length(len) => Ok(written == len),
        _ => Ok(true),
    }
}

/// Whether a comma-separated header value has `token` (ASCII
/// case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}
