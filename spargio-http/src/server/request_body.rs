//! The request body as the response side sees it: when `100 Continue` is
//! due, whether the head may promise keep-alive, and [`Probed`], a
//! response body whose first frame was polled before its head was written.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame, SizeHint};

use super::feed::Progress;
use crate::buffered::Output;
use crate::h1;

/// What the response side knows of the request body, and whether
/// `100 Continue` went out for it.
pub(super) struct RequestBody<'a> {
    /// The body's feed, if the request has a body.
    progress: Option<&'a Progress>,
    /// The request has `Expect: 100-continue` (HTTP/1.1) and a body.
    gated: bool,
    /// `100 Continue` was queued.
    continue_sent: bool,
}

/// What the head of a response depends on in the request body.
pub(super) struct BodyState {
    /// The client may be holding the body back, waiting for a
    /// `100 Continue` it was never sent: whether the body follows is
    /// unknown.
    pub held_back: bool,
    /// Part of the request body has not arrived yet.
    pub rest_to_come: bool,
    /// The service dropped the request body: it reads no more of it.
    pub dropped: bool,
    /// What is left of the request body is more than the server drains,
    /// and nothing is known to be reading it: the connection closes after
    /// this response.
    pub undrainable: bool,
    /// The error the request body's feed answers instead, if any.
    pub refused: Option<http::StatusCode>,
    /// The error a service failing over a body the client cut short is
    /// answered with (see `Progress::cut_short`).
    pub cut_short: Option<http::StatusCode>,
}

impl<'a> RequestBody<'a> {
    /// The view of a request body fed through `progress` (`None`: no body),
    /// gated by `Expect: 100-continue` if `gated`.
    pub(super) fn new(progress: Option<&'a Progress>, gated: bool) -> RequestBody<'a> {
        RequestBody {
            progress,
            gated,
            continue_sent: false,
        }
    }

    /// The body's feed, if the request has a body (and `100 Continue` is
    /// still owed for it).
    pub(super) fn awaiting_continue(&self) -> Option<&'a Progress> {
        self.progress.filter(|_| self.gated && !self.continue_sent)
    }

    /// Queues `100 Continue` if it is due: the client is waiting for it
    /// (gated, not yet sent), the service has asked for the body and still
    /// holds it, the body has not all arrived, and what did arrive was not
    /// refused (a bad chunk, or over the size limit: the answer is that
    /// error, and the rest is not wanted). Returns whether it was
    /// queued; the caller flushes it (or queues the final head right
    /// behind it).
    pub(super) fn continue_if_asked<W>(&mut self, out: &mut Output<W>) -> bool {
        let asked = self.awaiting_continue().is_some_and(|p| {
            p.body.was_asked()
                && !p.body.is_dropped()
                && p.rest_to_come()
                && p.refused.get().is_none()
        });
        if asked {
            self.send_continue(out);
        }
        asked
    }

    /// Queues `100 Continue` ahead of an answer that switches protocols
    /// (a `101`, or a 2xx to `CONNECT`) if the client is holding the body
    /// back for it: the body belongs to the old protocol and must be read
    /// (drained) before the connection is handed over, and the client
    /// sends it only once told to (RFC 9110, 7.8: the `100` goes before
    /// the `101`). Not for a body the server would refuse or not drain
    /// whole anyway: the connection then closes instead of switching.
    pub(super) fn continue_for_switch<W>(&mut self, out: &mut Output<W>, drain_limit: u64) {
        let due = self.awaiting_continue().is_some_and(|p| {
            p.rest_to_come() && p.refused.get().is_none() && !p.drain_overflows(drain_limit)
        });
        if due {
            self.send_continue(out);
        }
    }

    fn send_continue<W>(&mut self, out: &mut Output<W>) {
        out.buf.extend_from_slice(h1::CONTINUE);
        self.continue_sent = true;
        if let Some(p) = self.progress {
            p.continued.set(true);
        }
    }

    /// Whether the service dropped the body while part of it is still to
    /// be drained or to come. The feed, which runs on the connection's
    /// task before the response side, may not have seen the drop yet: a
    /// chunked body's end is only known once the feed has decoded up to
    /// it, and the feed decodes no further than the frame the service has
    /// not taken. Given a turn, it drains what is buffered, so the head
    /// does not close the connection for a body that was all here.
    pub(super) fn feed_behind(&self) -> bool {
        self.progress
            .is_some_and(|p| p.rest_to_come() && p.body.is_dropped())
    }

    /// Whether the client may be holding the body back, waiting for a
    /// `100 Continue` it was never sent.
    fn held_back(&self) -> bool {
        self.awaiting_continue().is_some_and(Progress::rest_to_come)
    }

    /// Whether the client may be waiting for `100 Continue` and it is not
    /// yet known whether it is due: the body is held back, its framing was
    /// not refused (the answer is then that error), and the service has
    /// neither asked for it nor dropped it.
    fn continue_undecided(&self) -> bool {
        self.held_back()
            && self.progress.is_some_and(|p| {
                p.refused.get().is_none() && !p.body.was_asked() && !p.body.is_dropped()
            })
    }

    /// Whether it is known whether `100 Continue` is due (see
    /// [`continue_undecided`](Self::continue_undecided)). If not, `cx` is
    /// woken when the service asks for the body or drops it, by whichever
    /// task does, even once the connection has stopped feeding the body.
    /// The rest of what decides it (the body arriving or being refused)
    /// comes from the feed, which runs on the same task.
    pub(super) fn continue_decided(&self, cx: &mut Context<'_>) -> bool {
        if !self.continue_undecided() {
            return true;
        }
        self.progress
            .is_none_or(|p| p.body.poll_asked_or_dropped(cx).is_ready())
    }

    /// Whether the head of an answer with a body depends on whether that
    /// body reads the request body, so its first frame is polled before
    /// the head is written (see [`Probed`]): the service holds a body
    /// whose rest is more than the server drains (read in part or not at
    /// all), or one it has never asked for while the client waits for
    /// `100 Continue`.
    pub(super) fn probe_wanted(&self, drain_limit: u64) -> bool {
        let Some(p) = self.progress else {
            return false;
        };
        if p.body.is_dropped() || p.done.get() {
            return false;
        }
        (self.held_back() && !p.body.was_asked()) || p.drain_overflows(drain_limit)
    }

    /// The state the head depends on. `answer_reads`: whether the answer's
    /// body may read the request body (it did not come whole at once when
    /// probed; a bodiless answer reads nothing), asked only when a rest
    /// over the drain limit makes it matter.
    pub(super) fn state(&self, drain_limit: u64, answer_reads: impl FnOnce() -> bool) -> BodyState {
        let p = self.progress;
        BodyState {
            held_back: self.held_back(),
            rest_to_come: p.is_some_and(Progress::rest_to_come),
            dropped: p.is_some_and(|p| p.body.is_dropped()),
            undrainable: p.is_some_and(|p| unread_past(p, drain_limit, answer_reads)),
            refused: p.and_then(|p| p.refused.get()),
            cut_short: p.and_then(|p| p.cut_short.get()),
        }
    }
}

/// Whether the rest of the body is left to be drained and is more than
/// `drain_limit`: the service dropped the body, or never asked for any of
/// it (nor did the answer's body, when it was probed), or the answer
/// cannot be what reads the rest (`answer_reads` false). The body is fed
/// only until the answer is written: a service that read part of it and
/// keeps it elsewhere (a spawned task) gets the rest only while the
/// answer is still going out; after that the rest is drained.
fn unread_past(p: &Progress, drain_limit: u64, answer_reads: impl FnOnce() -> bool) -> bool {
    p.drain_overflows(drain_limit)
        && (p.body.is_dropped() || !p.body.was_asked() || !answer_reads())
}

/// The result of one poll of a body for a frame.
type Polled<B> = Option<Result<Frame<<B as HttpBody>::Data>, <B as HttpBody>::Error>>;

pin_project_lite::pin_project! {
    /// A response body whose first frame was polled before its head was
    /// written, to see whether the body reads the request body (an echo
    /// does): the frame it gave (if any) comes first, then the rest of
    /// the body. Until it is polled, it reports the size the body had
    /// before that first poll.
    pub(super) struct Probed<B: HttpBody> {
        first: Option<Polled<B>>,
        hint: Option<SizeHint>,
        body: Pin<Box<B>>,
    }
}

impl<B: HttpBody> Probed<B> {
    /// `body`, not polled yet.
    pub(super) fn new(body: B) -> Probed<B> {
        Probed {
            first: None,
            hint: Some(body.size_hint()),
            body: Box::pin(body),
        }
    }

    /// Polls the body once for a frame with `cx` and keeps what it gave
    /// (nothing if it was not ready; `cx` is woken when it is). Returns
    /// whether the first frame (or the end) is here.
    pub(super) fn probe(&mut self, cx: &mut Context<'_>) -> bool {
        if self.first.is_none() {
            if let Poll::Ready(polled) = self.body.as_mut().poll_frame(cx) {
                self.first = Some(polled);
            }
        }
        self.first.is_some()
    }

    /// Whether the probe found the whole body at once (its end, its only
    /// frame, or an error): such a body does not read the request body.
    pub(super) fn whole_at_once(&self) -> bool {
        match &self.first {
            None => false,
            Some(None | Some(Err(_))) => true,
            Some(Some(Ok(_))) => self.body.is_end_stream(),
        }
    }
}

impl<B: HttpBody> HttpBody for Probed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        *this.hint = None;
        match this.first.take() {
            Some(polled) => Poll::Ready(polled),
            None => this.body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.first {
            Some(polled) => polled.is_none(),
            None => self.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.hint.unwrap_or_else(|| self.body.size_hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::task::Waker;

    #[test]
    fn a_probed_body_gives_its_first_frame_then_the_rest_with_its_first_size() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probed = Probed::new(crate::Body::from("abc"));
        assert!(probed.probe(&mut cx));
        assert_eq!(probed.size_hint().exact(), Some(3));
        assert!(!probed.is_end_stream());
        let mut probed = Pin::new(&mut probed);
        let Poll::Ready(Some(Ok(frame))) = probed.as_mut().poll_frame(&mut cx) else {
            panic!("the first frame is kept");
        };
        assert_eq!(frame.into_data().ok(), Some(Bytes::from("abc")));
        assert_eq!(probed.size_hint().exact(), Some(0));
        assert!(matches!(
            probed.as_mut().poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_probe_that_found_nothing_ready_leaves_the_body_as_it_was() {
        let (body, _sender) = crate::Body::channel(Some(4), false);
        let mut cx = Context::from_waker(Waker::noop());
        let mut probed = Probed::new(body);
        assert!(!probed.probe(&mut cx));
        assert_eq!(probed.size_hint().exact(), Some(4));
        assert!(!probed.is_end_stream());
        assert!(Pin::new(&mut probed).poll_frame(&mut cx).is_pending());
    }
}
