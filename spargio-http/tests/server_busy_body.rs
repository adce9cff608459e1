//! A response body that is always ready yet gives nothing (empty data
//! frames, again and again) does not hold its connection's shard: the
//! connection task yields, and other connections on that shard are served.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use http::{Request, Response};
use http_body::Frame;
use spargio_http::{Body, HandlerPlacement, Http};
use spargio_rt::ShardId;
use spargio_service::AcceptMode;

/// Gives empty data frames until `released`, then "released" and its end;
/// fails after a safety limit, so a server stuck polling it fails the test
/// instead of hanging it.
struct EmptyUntilReleased {
    released: Arc<AtomicBool>,
    give_up: Instant,
    done: bool,
}

impl http_body::Body for EmptyUntilReleased {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.released.load(Ordering::SeqCst) {
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"released")))));
        }
        if Instant::now() > self.give_up {
            return Poll::Ready(Some(Err(std::io::Error::other("never released"))));
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

#[test]
fn a_body_of_endless_empty_frames_leaves_the_shard_to_other_connections() {
    let released = Arc::new(AtomicBool::new(false));
    let service = tower::service_fn(move |req: Request<Body>| {
        let released = released.clone();
        async move {
            if req.uri().path() == "/release" {
                released.store(true, Ordering::SeqCst);
            }
            Ok::<_, Infallible>(Response::new(EmptyUntilReleased {
                released,
                give_up: Instant::now() + Duration::from_secs(5),
                done: false,
            }))
        }
    });
    // Both connections on shard 0, their handlers polled there too.
    let server = TestServer::start_with(
        Http::new(),
        |b| {
            b.accept(AcceptMode::Pinned(ShardId(0)))
                .handler_placement(HandlerPlacement::Inline)
        },
        service,
    );
    let mut spinning = server.connect();
    spinning.send(b"GET /spin HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut releasing = server.connect();
    let answer = releasing.roundtrip(b"GET /release HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"released");
    let spun = spinning.read_response();
    assert_eq!(spun.status, 200);
    assert_eq!(spun.body, b"released", "the spinning body was cut");
}
