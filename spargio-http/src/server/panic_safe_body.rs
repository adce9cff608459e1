//! [`PanicSafe`]: a response body whose panics end it with an error
//! instead of unwinding through the connection task.
//!
//! A handler's future runs under `catch_unwind` in spargio-service; its
//! response body is polled later, by the connection task itself. A panic
//! there would unwind out of that task and drop the connection with its
//! write buffer, losing earlier pipelined responses that were queued but
//! not yet sent. Caught, it is a body error like any other: a 500 if none
//! of the body was queued yet, else a connection cut short, after what was
//! queued before it has gone out.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame, SizeHint};

use spargio_service::BoxError;

/// `B`, with panics caught in all of its methods and its drop (see the
/// module docs). `body` is pinned with the wrapper (structurally) and
/// dropped in place, by hand, under `catch_unwind`.
pub(super) struct PanicSafe<B> {
    body: ManuallyDrop<B>,
    /// Set once a method of the body panicked: it is not called again.
    panicked: Cell<bool>,
}

impl<B> PanicSafe<B> {
    /// Wraps `body`.
    pub(super) fn new(body: B) -> PanicSafe<B> {
        PanicSafe {
            body: ManuallyDrop::new(body),
            panicked: Cell::new(false),
        }
    }
}

/// Runs `f`, a call into a body; a panic sets `panicked` and gives `None`.
fn guard<R>(panicked: &Cell<bool>, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(out) => Some(out),
        Err(payload) => {
            panicked.set(true);
            forget_payload(payload);
            None
        }
    }
}

/// Drops a caught panic's payload; its drop may panic too (a payload with
/// a panicking `Drop`): caught and forgotten.
fn forget_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

impl<B> Drop for PanicSafe<B> {
    fn drop(&mut self) {
        let body = &mut self.body;
        // SAFETY: `body` is dropped here, in place (as pinning requires),
        // exactly once, and never used again: this is the wrapper's drop.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(body) }));
        if let Err(payload) = dropped {
            forget_payload(payload);
        }
    }
}

/// The error a [`PanicSafe`] body ends with when its body panicked.
#[derive(Debug)]
struct BodyPanicked;

impl std::fmt::Display for BodyPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the response body panicked")
    }
}

impl std::error::Error for BodyPanicked {}

impl<B> HttpBody for PanicSafe<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        if self.panicked.get() {
            return Poll::Ready(Some(Err(Box::new(BodyPanicked))));
        }
        // SAFETY: `body` is pinned structurally: it is never moved out of
        // the wrapper (only dropped in place, in `Drop`), and the wrapper
        // is `Unpin` only when `B` is.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above; `this` is not moved either.
        let body = unsafe { Pin::new_unchecked(&mut *this.body) };
        match guard(&this.panicked, || body.poll_frame(cx)) {
            Some(polled) => polled.map(|frame| frame.map(|res| res.map_err(Into::into))),
            None => Poll::Ready(Some(Err(Box::new(BodyPanicked)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        // A body that panicked ends with an error frame: not ended yet.
        !self.panicked.get() && guard(&self.panicked, || self.body.is_end_stream()).unwrap_or(false)
    }

    fn size_hint(&self) -> SizeHint {
        if self.panicked.get() {
            return SizeHint::default();
        }
        // Unknown after a panic: nothing is promised for a body that will
        // end with an error.
        guard(&self.panicked, || self.body.size_hint()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http_body::{Body as HttpBody, Frame};

    use super::PanicSafe;

    /// Gives one frame, then panics.
    struct OneThenPanic(bool);

    impl HttpBody for OneThenPanic {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                panic!("body panics on purpose");
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"ok")))))
        }
    }

    #[test]
    fn a_panic_in_poll_frame_is_an_error_and_the_body_is_not_polled_again() {
        let mut body = pin!(PanicSafe::new(OneThenPanic(false)));
        let mut cx = Context::from_waker(Waker::noop());
        let first = body.as_mut().poll_frame(&mut cx);
        assert!(matches!(first, Poll::Ready(Some(Ok(_)))));
        for _ in 0..2 {
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(Some(Err(e))) => {
                    assert_eq!(e.to_string(), "the response body panicked")
                }
                other => panic!("expected an error, got {other:?}"),
            }
        }
        assert!(!body.is_end_stream());
    }
}
