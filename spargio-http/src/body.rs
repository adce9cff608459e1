//! [`Body`]: the request body a service receives (and the response body the
//! [`Client`](crate::Client) returns), streamed from the socket on demand.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};

/// Why a body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed or closed before the body was complete.
    Io(std::io::Error),
    /// The body's framing was invalid (a bad chunk); the connection closes.
    Malformed(&'static str),
    /// The body is larger than the server allows (it answers 413).
    TooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The connection stopped feeding the body: the response was already
    /// sent and the rest of the body was not wanted, or the server is
    /// shutting down.
    Aborted,
    /// A body wrapped with [`Body::new`] failed; its error is the source.
    Other(spargio_service::BoxError),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Io(e) => write!(f, "body read failed: {e}"),
            BodyError::Malformed(why) => write!(f, "malformed body: {why}"),
            BodyError::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            BodyError::Aborted => f.write_str("body reading was aborted"),
            BodyError::Other(e) => write!(f, "body failed: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Io(e) => Some(e),
            BodyError::Other(e) => Some(&**e),
            _ => None,
        }
    }
}

/// An HTTP body with `Data = Bytes`: empty, a whole buffer, streamed
/// from a connection, or any other body wrapped with [`Body::new`].
///
/// A server hands each request's body to the service as a `Body`. Its
/// bytes are read from the socket only as the service asks for them (one
/// chunk ahead at most), so a service that reads slowly slows the client
/// down through TCP instead of filling memory. When the client asked for
/// `100 Continue`, the server sends it as soon as the body is first polled
/// (by the service, or by a response body that streams it, as an echo
/// does: the response head then waits until that body asks for it, drops
/// it, or gives its first frame, for at most the server's
/// [`header_read_timeout`](crate::Http::header_read_timeout), after which
/// the head goes out saying the connection closes and no `100` follows),
/// and never if nothing asks for the body. `Body` is `Send + Sync +
/// 'static`, so axum's extractors and tower-http's layers take it as it
/// is.
///
/// ```
/// use http_body_util::BodyExt;
/// use spargio_http::Body;
///
/// # spargio_rt::run(|_| async {
/// let body = Body::from("hello");
/// let bytes = body.collect().await.unwrap().to_bytes();
/// assert_eq!(bytes, "hello");
/// # }).unwrap();
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    Wrapped(Pin<Box<dyn WrappedBody>>),
}

/// A body wrapped by [`Body::new`], its error boxed.
trait WrappedBody: Send + Sync {
    fn poll_wrapped(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>>;
    fn wrapped_end(&self) -> bool;
    fn wrapped_hint(&self) -> SizeHint;
}

impl<B> WrappedBody for B
where
    B: http_body::Body<Data = Bytes> + Send + Sync,
    B::Error: Into<spargio_service::BoxError>,
{
    fn poll_wrapped(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        http_body::Body::poll_frame(self, cx).map_err(|e| BodyError::Other(e.into()))
    }

    fn wrapped_end(&self) -> bool {
        http_body::Body::is_end_stream(self)
    }

    fn wrapped_hint(&self) -> SizeHint {
        http_body::Body::size_hint(self)
    }
}

impl Body {
    /// Wraps any body with `Data = Bytes` (a stream, a body from another
    /// crate), for a service or layer whose type says `Body`. Its errors
    /// come out as [`BodyError::Other`]; its size hint and end are its own.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body::Frame;
    /// use http_body_util::{BodyExt, StreamBody};
    /// use spargio_http::Body;
    ///
    /// # spargio_rt::run(|_| async {
    /// let chunks = ["hel", "lo"].map(|s| Ok::<_, std::io::Error>(Frame::data(Bytes::from(s))));
    /// let body = Body::new(StreamBody::new(futures_util::stream::iter(chunks)));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    /// # }).unwrap();
    /// ```
    pub fn new<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<spargio_service::BoxError>,
    {
        Body {
            kind: Kind::Wrapped(Box::pin(body)),
        }
    }

    /// A body with no bytes.
    pub const fn empty() -> Body {
        Body { kind: Kind::Empty }
    }

    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(bytes)),
        }
    }

    /// A body fed by a connection; the sender is the connection's side.
    pub(crate) fn channel(length: Option<u64>, gated: bool) -> (Body, BodySender) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                frame: None,
                end: None,
                gated,
                asked: false,
                waiting: false,
                consumer: None,
                producer: None,
                consumer_gone: false,
            }),
        });
        let body = Body {
            kind: Kind::Incoming(Incoming {
                shared: shared.clone(),
                remaining: length,
                done: length == Some(0),
            }),
        };
        (body, BodySender { shared })
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(b) => write!(f, "Body::Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Kind::Incoming(i) => write!(f, "Body::Incoming(remaining: {:?})", i.remaining),
            Kind::Wrapped(b) => write!(f, "Body::Wrapped({:?})", b.wrapped_hint()),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::full(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::full(v)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::full(Bytes::from_static(s))
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming(i) => i.poll_frame(cx),
            Kind::Wrapped(b) => b.as_mut().poll_wrapped(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::Incoming(i) => i.done,
            Kind::Wrapped(b) => b.wrapped_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Incoming(i) => match (i.done, i.remaining) {
                (true, _) => SizeHint::with_exact(0),
                (false, Some(n)) => SizeHint::with_exact(n),
                (false, None) => SizeHint::default(),
            },
            Kind::Wrapped(b) => b.wrapped_hint(),
        }
    }
}

/// The consumer side of a connection-fed body.
struct Incoming {
    shared: Arc<Shared>,
    /// Bytes still to come, for a `Content-Length` body.
    remaining: Option<u64>,
    done: bool,
}

impl Incoming {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut st = self.shared.lock();
        let first_ask = !st.asked;
        st.asked = true;
        let was_waiting = std::mem::replace(&mut st.waiting, false);
        if let Some(frame) = st.frame.take() {
            let producer = st.producer.take();
            drop(st);
            if let Some(w) = producer {
                w.wake();
            }
            if let (Some(n), Some(data)) = (self.remaining.as_mut(), frame.data_ref()) {
                *n = n.saturating_sub(data.len() as u64);
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        match st.end.take() {
            Some(end) => {
                self.done = true;
                // The connection's side watches for the first ask (the
                // gate) even once the body has ended.
                let producer = st.producer.take().filter(|_| first_ask);
                drop(st);
                if let Some(w) = producer {
                    w.wake();
                }
                match end {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
            None => {
                remember(&mut st.consumer, cx);
                st.waiting = true;
                // The producer hears of the demand once, when it starts:
                // woken on every poll while it waits, a producer polled by
                // the same task (a response body that streams the request
                // body back) would wake that task again each time, a busy
                // loop until the client sends more.
                let producer = st.producer.take_if(|_| !was_waiting);
                drop(st);
                if let Some(w) = producer {
                    w.wake();
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.consumer_gone = true;
        let producer = st.producer.take();
        drop(st);
        if let Some(w) = producer {
            w.wake();
        }
    }
}

/// State shared by a connection-fed [`Body`] and its [`BodySender`].
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-made
        // (every update is a field assignment), so a poisoned lock is fine.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct State {
    /// The one frame waiting for the consumer.
    frame: Option<Frame<Bytes>>,
    /// Set once: the body ended cleanly or with an error.
    end: Option<Result<(), BodyError>>,
    /// Nothing is sent before the consumer asks (`Expect: 100-continue`).
    gated: bool,
    /// The consumer has asked for a frame (opens the gate of a gated
    /// body; tells the connection the body is being read).
    asked: bool,
    /// The consumer's last poll found nothing and it has not been given a
    /// frame (or the end) since: it is waiting for the connection now.
    waiting: bool,
    consumer: Option<Waker>,
    /// One slot: all of the producer side (feed, gate, request body) polls
    /// from one task, the connection's. A consumer that keeps waiting does
    /// not wake it again, so a second producer-side task whose waker was
    /// replaced here would not be woken.
    producer: Option<Waker>,
    consumer_gone: bool,
}

/// Keeps `cx`'s waker in `slot`, cloning it only when it is not the one
/// kept already.
fn remember(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// What the connection can do next for a body it feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Demand {
    /// The slot is free (and the gate open): send a frame.
    Ready,
    /// The consumer dropped the body: stop feeding it.
    Gone,
}

/// What the consumer of a body is doing, as [`BodySender::watch`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    /// It has not asked for the next frame (it may be busy with the last
    /// one, or not reading the body at all yet).
    Idle,
    /// It asked for a frame and is waiting for one.
    Waiting,
    /// It dropped the body.
    Gone,
}

/// The connection's side of a [`Body`]: puts frames in its one-frame slot.
/// Dropping it without [`finish`](Self::finish) ends the body with an
/// error, so a service never mistakes a cut body for a complete one.
pub(crate) struct BodySender {
    shared: Arc<Shared>,
}

impl BodySender {
    /// Waits until a frame can be sent (the slot is free and, for a gated
    /// body, the consumer has asked for data) or the consumer is gone.
    pub(crate) fn poll_demand(&self, cx: &mut Context<'_>) -> Poll<Demand> {
        let mut st = self.shared.lock();
        if st.consumer_gone {
            return Poll::Ready(Demand::Gone);
        }
        if (st.asked || !st.gated) && st.frame.is_none() {
            return Poll::Ready(Demand::Ready);
        }
        remember(&mut st.producer, cx);
        Poll::Pending
    }

    /// [`poll_demand`](Self::poll_demand) as a future.
    pub(crate) async fn demand(&self) -> Demand {
        std::future::poll_fn(|cx| self.poll_demand(cx)).await
    }

    /// Ready once the consumer has dropped the body (whether or not it
    /// wants a frame now): what a connection waiting on its socket for
    /// more of the body watches, so it stops waiting for bytes nobody will
    /// read.
    pub(crate) fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.lock();
        if st.consumer_gone {
            return Poll::Ready(());
        }
        remember(&mut st.producer, cx);
        Poll::Pending
    }

    /// Watches the consumer while the connection waits on its socket for
    /// more of the body: [`Watch::Gone`] once it has dropped the body,
    /// [`Watch::Waiting`] while it waits for a frame (it polled and got
    /// nothing), [`Watch::Idle`] otherwise. Unless gone, `cx` is woken
    /// when that changes (the consumer starts waiting, or drops the body).
    pub(crate) fn watch(&self, cx: &mut Context<'_>) -> Watch {
        let mut st = self.shared.lock();
        if st.consumer_gone {
            return Watch::Gone;
        }
        remember(&mut st.producer, cx);
        if st.waiting {
            Watch::Waiting
        } else {
            Watch::Idle
        }
    }

    /// Whether the consumer has asked for a frame yet.
    pub(crate) fn was_asked(&self) -> bool {
        self.shared.lock().asked
    }

    /// Puts a data frame in the slot (after [`Demand::Ready`]).
    pub(crate) fn send_data(&self, data: Bytes) {
        self.put(Frame::data(data));
    }

    /// Puts the trailers in the slot (after [`Demand::Ready`]).
    pub(crate) fn send_trailers(&self, trailers: HeaderMap) {
        self.put(Frame::trailers(trailers));
    }

    fn put(&self, frame: Frame<Bytes>) {
        let mut st = self.shared.lock();
        debug_assert!(st.frame.is_none(), "a body frame was sent without demand");
        st.frame = Some(frame);
        let consumer = st.consumer.take();
        drop(st);
        if let Some(w) = consumer {
            w.wake();
        }
    }

    /// Ends the body cleanly (after the last frame was sent).
    pub(crate) fn finish(self) {
        self.end(Ok(()));
    }

    /// Ends the body with an error.
    pub(crate) fn fail(self, err: BodyError) {
        self.end(Err(err));
    }

    fn end(&self, res: Result<(), BodyError>) {
        let mut st = self.shared.lock();
        if st.end.is_none() {
            st.end = Some(res);
        }
        let consumer = st.consumer.take();
        drop(st);
        if let Some(w) = consumer {
            w.wake();
        }
    }
}

/// The response side's view of a body the connection feeds: when the
/// consumer first asks for data (the moment to send `100 Continue`), and
/// whether it dropped the body. Polled by the connection's task, like its
/// [`BodySender`] (they share the waker slot).
pub(crate) struct Gate {
    shared: Arc<Shared>,
}

impl Gate {
    /// Whether the consumer has dropped the body (it will read no more).
    pub(crate) fn is_dropped(&self) -> bool {
        self.shared.lock().consumer_gone
    }

    /// Whether the consumer has asked for a frame yet (for a body that is
    /// not gated too: whether the service has started reading it).
    pub(crate) fn was_asked(&self) -> bool {
        self.shared.lock().asked
    }

    /// Ready once the consumer has asked for a frame or dropped the body:
    /// once it is known whether it reads the body. Until then `cx` is woken
    /// when either happens, whether or not the connection still feeds the
    /// body (it may have failed it already).
    pub(crate) fn poll_asked_or_dropped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.lock();
        if st.asked || st.consumer_gone {
            return Poll::Ready(());
        }
        remember(&mut st.producer, cx);
        Poll::Pending
    }

    /// Waits until the consumer first asks for a frame.
    pub(crate) async fn opened(&self) {
        std::future::poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.asked {
                return Poll::Ready(());
            }
            remember(&mut st.producer, cx);
            Poll::Pending
        })
        .await
    }
}

impl BodySender {
    /// A [`Gate`] on this body.
    pub(crate) fn gate(&self) -> Gate {
        Gate {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        self.end(Err(BodyError::Aborted));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting_waker::{counting_waker, woken};
    use http_body::Body as _;
    use std::task::Waker;

    fn poll(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(body).poll_frame(&mut cx)
    }

    #[test]
    fn full_body_yields_once_with_exact_hint() {
        let mut b = Body::from("abc");
        assert_eq!(b.size_hint().exact(), Some(3));
        assert!(!b.is_end_stream());
        let Poll::Ready(Some(Ok(f))) = poll(&mut b) else {
            panic!("expected a frame")
        };
        assert_eq!(f.into_data().unwrap(), "abc");
        assert!(b.is_end_stream());
        assert!(matches!(poll(&mut b), Poll::Ready(None)));
    }

    #[test]
    fn empty_string_is_an_empty_body() {
        let b = Body::from(String::new());
        assert!(b.is_end_stream());
        assert_eq!(b.size_hint().exact(), Some(0));
    }

    #[test]
    fn channel_delivers_frames_then_end() {
        let (mut body, tx) = Body::channel(Some(5), false);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_demand(&mut cx), Poll::Ready(Demand::Ready));
        tx.send_data(Bytes::from_static(b"hel"));
        assert_eq!(tx.poll_demand(&mut cx), Poll::Pending, "slot is full");
        let Poll::Ready(Some(Ok(f))) = poll(&mut body) else {
            panic!()
        };
        assert_eq!(f.into_data().unwrap(), "hel");
        assert_eq!(body.size_hint().exact(), Some(2));
        tx.send_data(Bytes::from_static(b"lo"));
        tx.finish();
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(body.is_end_stream());
    }

    #[test]
    fn gated_channel_waits_for_first_poll() {
        let (mut body, tx) = Body::channel(Some(3), true);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_demand(&mut cx), Poll::Pending);
        assert!(!tx.was_asked());
        assert!(poll(&mut body).is_pending());
        assert!(tx.was_asked());
        assert_eq!(tx.poll_demand(&mut cx), Poll::Ready(Demand::Ready));
    }

    #[test]
    fn an_ungated_channel_sends_at_once_and_tells_when_it_is_first_asked_for() {
        let (mut body, tx) = Body::channel(Some(3), false);
        let gate = tx.gate();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_demand(&mut cx), Poll::Ready(Demand::Ready));
        assert!(!gate.was_asked());
        assert!(poll(&mut body).is_pending());
        assert!(gate.was_asked() && tx.was_asked());
    }

    #[test]
    fn the_sender_sees_when_the_consumer_waits_for_a_frame() {
        let (mut body, tx) = Body::channel(None, false);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.watch(&mut cx), Watch::Idle, "nothing asked yet");
        assert!(poll(&mut body).is_pending());
        assert_eq!(tx.watch(&mut cx), Watch::Waiting);
        tx.send_data(Bytes::from_static(b"a"));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert_eq!(tx.watch(&mut cx), Watch::Idle, "given a frame, not asking");
        assert!(poll(&mut body).is_pending());
        assert_eq!(tx.watch(&mut cx), Watch::Waiting);
        drop(body);
        assert_eq!(tx.watch(&mut cx), Watch::Gone);
    }

    #[test]
    fn dropped_sender_is_an_error_not_a_clean_end() {
        let (mut body, tx) = Body::channel(None, false);
        drop(tx);
        assert!(matches!(
            poll(&mut body),
            Poll::Ready(Some(Err(BodyError::Aborted)))
        ));
    }

    #[test]
    fn dropped_body_tells_the_sender() {
        let (body, tx) = Body::channel(None, true);
        let gate = tx.gate();
        assert!(!gate.is_dropped());
        drop(body);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_demand(&mut cx), Poll::Ready(Demand::Gone));
        assert!(gate.is_dropped());
    }

    #[test]
    fn the_gate_is_woken_when_a_failed_body_is_first_read_or_dropped() {
        for drop_it in [false, true] {
            let (mut body, tx) = Body::channel(None, true);
            let gate = tx.gate();
            // The connection failed the body (a bad chunk) before the
            // consumer asked for it: nothing feeds it any more.
            tx.fail(BodyError::Malformed("bad chunk"));
            let (count, waker) = counting_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(gate.poll_asked_or_dropped(&mut cx).is_pending());
            if drop_it {
                drop(body);
            } else {
                assert!(matches!(poll(&mut body), Poll::Ready(Some(Err(_)))));
            }
            assert_eq!(woken(&count), 1, "dropped: {drop_it}");
            assert!(gate.poll_asked_or_dropped(&mut cx).is_ready());
        }
    }

    #[test]
    fn a_consumer_wakes_the_producer_when_it_starts_waiting_not_on_every_poll() {
        let (mut body, tx) = Body::channel(None, false);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(tx.watch(&mut cx), Watch::Idle));
        assert!(poll(&mut body).is_pending());
        assert_eq!(woken(&count), 1, "the consumer started waiting");
        assert!(matches!(tx.watch(&mut cx), Watch::Waiting));
        // Polled again with nothing new: the producer is not woken again.
        assert!(poll(&mut body).is_pending());
        assert_eq!(woken(&count), 1, "woken by a poll that changed nothing");
        assert!(matches!(tx.watch(&mut cx), Watch::Waiting));
        // Given a frame, it stops waiting; its next wait wakes again.
        assert_eq!(tx.poll_demand(&mut cx), Poll::Ready(Demand::Ready));
        tx.send_data(Bytes::from_static(b"x"));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        let after_frame = woken(&count);
        assert!(matches!(tx.watch(&mut cx), Watch::Idle));
        assert!(poll(&mut body).is_pending());
        assert_eq!(woken(&count), after_frame + 1, "a new wait went unheard");
    }

    #[test]
    fn a_wrapped_body_keeps_its_frames_hint_and_end_and_boxes_its_error() {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(std::io::Error::other("inner failure")),
        ];
        let inner = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let mut b = Body::new(inner);
        assert_eq!(b.size_hint().exact(), None);
        let Poll::Ready(Some(Ok(f))) = poll(&mut b) else {
            panic!("expected a frame")
        };
        assert_eq!(f.into_data().unwrap(), "ab");
        let Poll::Ready(Some(Err(e))) = poll(&mut b) else {
            panic!("expected the inner error")
        };
        assert!(matches!(e, BodyError::Other(_)), "{e:?}");
        let source = std::error::Error::source(&e).expect("the inner error");
        assert_eq!(source.to_string(), "inner failure");
        assert!(matches!(poll(&mut b), Poll::Ready(None)));

        let mut sized = Body::new(http_body_util::Full::new(Bytes::from_static(b"xyz")));
        assert_eq!(sized.size_hint().exact(), Some(3));
        assert!(!sized.is_end_stream());
        assert!(matches!(poll(&mut sized), Poll::Ready(Some(Ok(_)))));
        assert!(sized.is_end_stream());
        assert!(matches!(poll(&mut sized), Poll::Ready(None)));
    }

    #[test]
    fn body_is_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Body>();
    }
}
