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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame, SizeHint};

use spargio_service::BoxError;

pin_project_lite::pin_project! {
    /// `B`, with panics in `poll_frame` caught (see the module docs).
    pub(super) struct PanicSafe<B> {
        #[pin]
        body: B,
        // Set once `poll_frame` panicked: the body is not polled again.
        panicked: bool,
    }
}

impl<B> PanicSafe<B> {
    /// Wraps `body`.
    pub(super) fn new(body: B) -> PanicSafe<B> {
        PanicSafe {
            body,
            panicked: false,
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
        let this = self.project();
        if *this.panicked {
            return Poll::Ready(Some(Err(Box::new(BodyPanicked))));
        }
        let body = this.body;
        match catch_unwind(AssertUnwindSafe(|| body.poll_frame(cx))) {
            Ok(polled) => polled.map(|frame| frame.map(|res| res.map_err(Into::into))),
            Err(payload) => {
                *this.panicked = true;
                // Its drop may panic too (a payload with a panicking
                // `Drop`): caught and forgotten.
                if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
                    std::mem::forget(again);
                }
                Poll::Ready(Some(Err(Box::new(BodyPanicked))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.panicked && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
