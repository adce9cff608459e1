//! Feeding a request body from the socket to the service's [`Body`](crate::Body), on
//! demand, and draining what the service did not read.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use spargio_rt::time::Sleep;
use spargio_service::Connection;

use super::config::HttpConfig;
use crate::body::{BodyError, BodySender, Demand, Gate};
use crate::buffered::Input;
use crate::h1::{ChunkedDecoder, ChunkedItem};
use crate::transport::TransportRead;

/// What the response side needs to know about the request body's progress.
pub(crate) struct Progress {
    /// The body was read to its end.
    pub done: Cell<bool>,
    /// All of the body has come off the connection (some of it may not be
    /// handed over or drained yet).
    pub received: Cell<bool>,
    /// The body's framing was refused (bad chunk: 400; over the size limit:
    /// 413); a response not yet started is replaced by this status.
    pub refused: Cell<Option<http::StatusCode>>,
    /// The client stopped sending the body before its end while the
    /// service read it: `408` if it stalled past the header-read timeout,
    /// `400` if it closed its side. A service that fails over it is
    /// answered with this status rather than a `500`.
    pub cut_short: Cell<Option<http::StatusCode>>,
    /// The service's side of the body.
    pub body: Gate,
    /// `100 Continue` was queued for the body (the service asked for it,
    /// or the answer switches protocols over it): the client sends it, so
    /// the feed waits for it even once the service no longer reads it.
    pub continued: Cell<bool>,
    /// Bytes of a `Content-Length` body neither handed to the service nor
    /// drained yet; `None` for a chunked body (its length is unknown).
    left: Cell<Option<u64>>,
    /// Bytes drained (read and discarded) so far.
    drained: Cell<u64>,
}

impl Progress {
    /// The progress of the body `body` watches, nothing of it read yet;
    /// `length` is its `Content-Length`, if it has one.
    pub(crate) fn new(body: Gate, length: Option<u64>) -> Progress {
        Progress {
            done: Cell::new(false),
            received: Cell::new(false),
            refused: Cell::new(None),
            cut_short: Cell::new(None),
            body,
            continued: Cell::new(false),
            left: Cell::new(length),
            drained: Cell::new(0),
        }
    }

    /// Whether the rest of the body has still to come from the client.
    pub(crate) fn rest_to_come(&self) -> bool {
        !self.done.get() && !self.received.get()
    }

    /// Whether draining what is left of the body, if the service reads no
    /// more of it, would go over `drain_limit` (and so close the
    /// connection). Always `false` for a chunked body, whose length is
    /// unknown until it ends.
    pub(crate) fn drain_overflows(&self, drain_limit: u64) -> bool {
        self.left
            .get()
            .is_some_and(|left| left.saturating_add(self.drained.get()) > drain_limit)
    }

    /// Counts `n` bytes handed to the service.
    fn handed(&self, n: u64) {
        self.left
            .set(self.left.get().map(|left| left.saturating_sub(n)));
    }

    /// Counts `n` bytes drained; returns all drained so far.
    fn drain(&self, n: u64) -> u64 {
        self.handed(n);
        let drained = self.drained.get().saturating_add(n);
        self.drained.set(drained);
        drained
    }
}

/// How a request body is delimited.
pub(crate) enum Framing {
    /// `Content-Length`: this many bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
}

/// A body to feed: its framing and the service side's sender.
pub(crate) struct Feed {
    pub framing: Framing,
    pub sender: BodySender,
    /// `Expect: 100-continue`: nothing is read until the service asks.
    pub gated: bool,
}

/// How feeding a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedEnd {
    /// The whole body was read (by the service or drained): the next
    /// request starts at the input buffer's front.
    Complete,
    /// The body was never asked for and the client was never told to send
    /// it (`100 Continue`): whether it will come is unknown, so the
    /// connection must close.
    Abandoned,
    /// The body could not be read to its end (bad framing, too large, EOF,
    /// timeout, or more unread bytes than the drain limit): the connection
    /// must close.
    Close,
}

enum Item {
    Data(Bytes),
    End(Option<HeaderMap>),
}

enum Want {
    Ready,
    Gone,
    Stop,
}

/// Waits for the consumer to want a frame, or for the response side to say
/// the service is done (`stop`).
async fn want(sender: &BodySender, stop: &Cell<bool>) -> Want {
    poll_fn(|cx| {
        if stop.get() {
            return Poll::Ready(Want::Stop);
        }
        sender.poll_demand(cx).map(|d| match d {
            Demand::Ready => Want::Ready,
            Demand::Gone => Want::Gone,
        })
    })
    .await
}

/// Feeds `feed` from `input` until the body ends. While the service wants
/// the body, frames go to it one at a time as it asks; once the service
/// drops the body or the response is done (`stop`), the rest is read and
/// discarded up to [`HttpConfig::drain_limit`] bytes, all within
/// [`HttpConfig::drain_timeout`]. Records in `progress` when the body was
/// received, read to its end or refused.
pub(crate) async fn feed_body<R: TransportRead>(
    input: &mut Input<R>,
    feed: Feed,
    stop: &Cell<bool>,
    progress: &Progress,
    cfg: &HttpConfig,
    conn: &Connection,
) -> FeedEnd {
    let Feed {
        mut framing,
        sender,
        gated,
    } = feed;
    let mut sender = Some(sender);
    let mut gate_open = !gated;
    let mut total: u64 = 0;
    // When the drain must end; set when it first waits for input.
    let mut drain_deadline = None;
    loop {
        let item = match &mut framing {
            Framing::Length(rem) => {
                if *rem == 0 {
                    Some(Item::End(None))
                } else if input.buf.is_empty() {
                    None
                } else {
                    let n = (*rem).min(input.buf.len() as u64);
                    *rem -= n;
                    if *rem == 0 {
                        progress.received.set(true);
                    }
                    Some(Item::Data(input.take_frame(n as usize)))
                }
            }
            Framing::Chunked(dec) => match dec.decode(&mut input.buf) {
                Ok(ChunkedItem::Data(b)) => Some(Item::Data(input.own_frame(b))),
                Ok(ChunkedItem::NeedMore) => None,
                Ok(ChunkedItem::End(trailers)) => Some(Item::End(trailers)),
                Err(e) => {
                    conn.record_bad_request();
                    progress.refused.set(Some(http::StatusCode::BAD_REQUEST));
                    if let Some(s) = sender.take() {
                        s.fail(BodyError::Malformed(e.0));
                    }
                    return FeedEnd::Close;
                }
            },
        };
        match item {
            Some(Item::Data(data)) => {
                total += data.len() as u64;
                if let Some(limit) = cfg.max_body.filter(|&m| total > m) {
                    progress
                        .refused
                        .set(Some(http::StatusCode::PAYLOAD_TOO_LARGE));
                    if let Some(s) = sender.take() {
                        s.fail(BodyError::TooLarge { limit });
                    }
                    return FeedEnd::Close;
                }
                if let Some(s) = &sender {
                    match want(s, stop).await {
                        Want::Ready => {
                            progress.handed(data.len() as u64);
                            s.send_data(data);
                            continue;
                        }
                        Want::Gone | Want::Stop => {
                            sender = None;
                        }
                    }
                }
                if progress.drain(data.len() as u64) > cfg.drain_limit {
                    return FeedEnd::Close;
                }
            }
            Some(Item::End(trailers)) => {
                if let Some(s) = sender.take() {
                    let whole = match trailers {
                        None => true,
                        Some(t) => match want(&s, stop).await {
                            Want::Ready => {
                                s.send_trailers(t);
                                true
                            }
                            Want::Gone | Want::Stop => false,
                        },
                    };
                    // Trailers not handed over (the response is complete,
                    // so the feed stops): the sender is dropped and the
                    // body ends aborted, as it would for data, never as if
                    // whole without them.
                    if whole {
                        s.finish();
                    }
                }
                progress.done.set(true);
                return FeedEnd::Complete;
            }
            None => {
                if let Some(s) = &sender {
                    let w = want(s, stop).await;
                    gate_open |= s.was_asked();
                    if !matches!(w, Want::Ready) {
                        sender = None;
                    }
                }
                if !gate_open {
                    // Never asked for, and the client was not told to send
                    // it. The answer may still tell it (a `101` over the
                    // body): that is known once the answer is written.
                    // No waker: the exchange polls the feed again right
                    // after it sets `stop`, as `want` relies on too.
                    poll_fn(|_| {
                        if stop.get() {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                    gate_open = progress.continued.get();
                }
                if !gate_open {
                    // Nobody told the client to send it: do not wait for
                    // bytes that may not come.
                    return FeedEnd::Abandoned;
                }
                let wait = Wait {
                    sender: sender.as_ref(),
                    stop,
                    read_limit: cfg.header_read_timeout,
                    drain_limit: cfg.drain_timeout,
                };
                let (err, fault) = match wait.fill(input, &mut drain_deadline).await {
                    Some(Ok(0)) => (
                        io::ErrorKind::UnexpectedEof.into(),
                        Some(http::StatusCode::BAD_REQUEST),
                    ),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => (e, None),
                    None => (
                        io::ErrorKind::TimedOut.into(),
                        Some(http::StatusCode::REQUEST_TIMEOUT),
                    ),
                };
                if let Some(s) = sender.take() {
                    progress.cut_short.set(fault);
                    s.fail(BodyError::Io(err));
                }
                return FeedEnd::Close;
            }
        }
    }
}

/// How long a read of more body may wait.
struct Wait<'a> {
    /// The body's sender, while the service may still read the body.
    sender: Option<&'a BodySender>,
    stop: &'a Cell<bool>,
    /// The most one read may wait while the service reads the body.
    read_limit: Duration,
    /// The most the whole drain may take.
    drain_limit: Duration,
}

impl Wait<'_> {
    /// Reads once into `input`; `None` if the time ran out first.
    ///
    /// While the service reads the body, the read may wait `read_limit`.
    /// Once the body is being drained (the service dropped it, or the
    /// response is done: `stop`), the wait ends at `drain_deadline`, which
    /// is set to `drain_limit` from the first such wait and kept for the
    /// rest of the drain. A wait that began while the service read the body
    /// switches to it when draining starts.
    async fn fill<R: TransportRead>(
        self,
        input: &mut Input<R>,
        drain_deadline: &mut Option<Instant>,
    ) -> Option<io::Result<usize>> {
        let mut draining = false;
        let mut start_drain = |timer: &mut Sleep| {
            let end = *drain_deadline.get_or_insert_with(|| after(self.drain_limit));
            if end < timer.deadline() {
                timer.reset(end);
            }
        };
        let mut timer = Sleep::until(after(self.read_limit));
        let mut fill = pin!(input.fill());
        poll_fn(|cx| {
            if let Poll::Ready(res) = fill.as_mut().poll(cx) {
                return Poll::Ready(Some(res));
            }
            if !draining
                && (self.stop.get() || self.sender.is_none_or(|s| s.poll_gone(cx).is_ready()))
            {
                draining = true;
                start_drain(&mut timer);
            }
            Pin::new(&mut timer).poll(cx).map(|()| None)
        })
        .await
    }
}

/// The instant `d` from now (far in the future if that cannot be told).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
