//! Answers that do not wait for the whole request body: they go out at
//! once, and the rest of the body is drained within the drain timeout or
//! the connection closes. Clients here send part of a body and then stall;
//! their 10 s read timeout is only a bound against a hang.

mod common;

use common::TestService;

use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use http::{Request, Response};
use http_body_util::BodyExt;
use spargio_http::{Body, Http};

/// The head of a 100-byte POST, and the first 5 bytes of its body.
const PARTIAL: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhello";

#[test]
fn an_answer_that_left_the_body_unread_goes_out_while_the_rest_is_awaited() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("early")))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(PARTIAL);
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "early"));
    // The rest of the body may never come: the connection cannot go on.
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn a_dropped_body_the_client_already_sent_whole_is_drained_and_the_connection_kept() {
    // The client sent the whole body with its head, more than one read of
    // the server's takes; the service answers without reading it. The
    // rest waits in the socket: the server drains it and goes on.
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::builder().status(401).body(Body::empty()).unwrap())
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    let mut request = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 60000\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'x', 60_000));
    c.send(&request);
    let resp = c.read_response();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("connection"), None, "{resp:?}");
    let next = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        next.status, 401,
        "the body's bytes were not read as a request"
    );
}

#[test]
fn a_timed_out_handler_is_answered_while_its_body_is_still_awaited() {
    // The handler waits for a body that stalls; the request timeout ends it
    // while the connection is waiting on the socket for the body.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let _ = req.into_body().collect().await;
        Ok::<_, Infallible>(Response::new(Body::from("never")))
    });
    let server = TestServer::start_with(
        Http::new(),
        |b| b.request_timeout(Duration::from_millis(300)),
        service,
    );
    let mut c = server.connect();
    c.send(PARTIAL);
    let resp = c.read_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn draining_a_trickled_body_is_bounded_as_a_whole() {
    // The handler keeps the body without reading it, so the answer keeps
    // the connection open and the server drains the rest. A client that
    // sends it a byte at a time (each well within the drain timeout, the
    // whole far beyond it) must not hold the connection open.
    let held = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let held = held.clone();
        tower::service_fn(move |req: Request<Body>| {
            let held = held.clone();
            async move {
                held.lock().unwrap().push(req.into_body());
                Ok::<_, Infallible>(Response::new(Body::from("kept")))
            }
        })
    };
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(PARTIAL);
    // The other 95 bytes, at 300 ms each, would take 28.5 s.
    let done = Arc::new(AtomicBool::new(false));
    let trickle = {
        let done = done.clone();
        let mut stream = c.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..95 {
                if done.load(Ordering::SeqCst) || stream.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "kept"));
    assert_eq!(resp.header("connection"), None);
    let closed = c.is_closed();
    done.store(true, Ordering::SeqCst);
    trickle.join().unwrap();
    assert!(closed, "the drain went on past its deadline");
}

/// A service that keeps each request's body (unread, not dropped) and
/// answers at once with `status` and `text`.
fn keeping_service(status: u16, text: &'static str) -> impl TestService<Body> {
    let held = Arc::new(Mutex::new(Vec::new()));
    tower::service_fn(move |req: Request<Body>| {
        let held = held.clone();
        async move {
            held.lock().unwrap().push(req.into_body());
            let mut r = Response::new(Body::from(text));
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(r)
        }
    })
}

/// The head of a POST whose body is far over the default drain limit
/// (64 KiB), and the first 5 bytes of its body.
const LONG_PARTIAL: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nhello";

#[test]
fn an_answer_that_leaves_more_than_the_drain_limit_unread_says_it_closes() {
    // The service keeps the body without reading it: after the answer the
    // rest could only be drained, and it is over the drain limit, so the
    // server closes. The head must say so rather than promise keep-alive.
    for (status, text) in [(200, "kept"), (204, "")] {
        let server = TestServer::start(keeping_service(status, text));
        let mut c = server.connect();
        c.send(LONG_PARTIAL);
        let resp = c.read_response();
        assert_eq!((resp.status, resp.body_str()), (status, text));
        assert_eq!(resp.header("connection"), Some("close"), "{status}");
        assert!(c.is_closed(), "{status}");
    }
}

#[test]
fn an_answer_that_leaves_less_than_the_drain_limit_unread_keeps_the_connection() {
    let server = TestServer::start(keeping_service(200, "kept"));
    let mut c = server.connect();
    c.send(PARTIAL);
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "kept"));
    assert_eq!(resp.header("connection"), None);
    // The rest is drained, and the connection goes on.
    c.send(&[b'x'; 95]);
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((resp.status, resp.body_str()), (200, "kept"));
}

/// Sends a 1 MB body to `server` (an echo) while reading the answer: the
/// answer is the body, and the connection serves on.
fn assert_echoes_a_large_body_and_keeps_the_connection(server: &TestServer) {
    let mut c = server.connect();
    let body = common::pattern(1_000_000);
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
    let writer = {
        let mut w = c.stream.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || w.write_all(&body).unwrap())
    };
    let resp = c.read_response();
    writer.join().unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.body == body, "the echo differs");
    assert_eq!(resp.header("connection"), None);
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 200);
}

#[test]
fn a_streaming_echo_of_a_body_over_the_drain_limit_keeps_the_connection() {
    // The answer's head goes out before the body is read, but the answer
    // reads all of it: nothing is left to drain.
    let service = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(req.into_body()))
    });
    assert_echoes_a_large_body_and_keeps_the_connection(&TestServer::start(service));
}

/// A service that reads the first frame of the body, hands the body to a
/// task that goes on reading it, and answers at once with `text`; the
/// task's outcome goes to `outcome`.
fn read_some_then_keep_elsewhere(
    outcome: Arc<Mutex<Option<Result<usize, String>>>>,
) -> impl TestService<Body> {
    tower::service_fn(move |req: Request<Body>| {
        let outcome = outcome.clone();
        async move {
            let mut body = req.into_body();
            let first = body.frame().await.unwrap().unwrap();
            let first = first.into_data().unwrap().len();
            spargio_rt::spawn(async move {
                let rest = body.collect().await;
                *outcome.lock().unwrap() = Some(
                    rest.map(|b| first + b.to_bytes().len())
                        .map_err(|e| e.to_string()),
                );
            });
            Ok::<_, Infallible>(Response::new(Body::from("accepted")))
        }
    })
}

#[test]
fn an_answer_that_read_part_of_a_body_over_the_drain_limit_and_kept_it_says_it_closes() {
    // The body is fed only until the answer is written: the rest, far
    // over the drain limit, cannot go to the task that kept the body nor
    // be drained, so the connection closes, and the head says so.
    let outcome = Arc::new(Mutex::new(None));
    let server = TestServer::start(read_some_then_keep_elsewhere(outcome.clone()));
    let mut c = server.connect();
    c.send(LONG_PARTIAL);
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "accepted"));
    assert_eq!(resp.header("connection"), Some("close"));
    // The task that kept the body learns it was cut off, never that it
    // ended whole.
    for _ in 0..500 {
        if outcome.lock().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = outcome.lock().unwrap().clone();
    assert!(matches!(got, Some(Err(_))), "{got:?}");
}

#[test]
fn an_answer_that_read_part_of_a_small_body_and_kept_it_keeps_the_connection() {
    // The same with a rest under the drain limit: drained, and the
    // connection serves on.
    let outcome = Arc::new(Mutex::new(None));
    let server = TestServer::start(read_some_then_keep_elsewhere(outcome));
    let mut c = server.connect();
    c.send(PARTIAL);
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "accepted"));
    assert_eq!(resp.header("connection"), None);
    c.send(&[b'x'; 95]);
    let resp = c.roundtrip(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!((resp.status, resp.body_str()), (200, "accepted"));
}

/// A response body: `first`, then the rest of the request body.
struct FirstThenRest {
    first: Option<bytes::Bytes>,
    rest: Body,
}

impl http_body::Body for FirstThenRest {
    type Data = bytes::Bytes;
    type Error = spargio_http::BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        std::pin::Pin::new(&mut self.rest).poll_frame(cx)
    }
}

#[test]
fn an_echo_of_the_rest_after_reading_a_first_frame_keeps_the_connection() {
    // The answer's body is what reads the rest: nothing is left to drain.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let mut rest = req.into_body();
        // The GET that follows has no body.
        let first = match rest.frame().await {
            Some(frame) => frame.unwrap().into_data().unwrap(),
            None => bytes::Bytes::new(),
        };
        let echo = FirstThenRest {
            first: Some(first),
            rest,
        };
        Ok::<_, Infallible>(Response::new(echo))
    });
    assert_echoes_a_large_body_and_keeps_the_connection(&TestServer::start(service));
}

/// The bytes of a chunked POST to `/first` in several chunks with a
/// trailer, all sent with the head, then a pipelined GET to `/second`.
const CHUNKED_THEN_GET: &[u8] =
    b"POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
    1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\nx-sum: 6\r\n\r\n\
    GET /second HTTP/1.1\r\nHost: a\r\n\r\n";

/// Serves `service` with its handlers placed by `placement`.
fn start_placed<S>(placement: spargio_service::HandlerPlacement, service: S) -> TestServer
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<spargio_service::BoxError> + Send + 'static,
{
    TestServer::start_with(
        Http::new(),
        move |b| b.handler_placement(placement),
        service,
    )
}

const PLACEMENTS: [spargio_service::HandlerPlacement; 3] = [
    spargio_service::HandlerPlacement::Inline,
    spargio_service::HandlerPlacement::Stealable,
    spargio_service::HandlerPlacement::Adaptive,
];

#[test]
fn a_chunked_body_all_here_but_unread_keeps_the_connection() {
    // The service answers without reading a chunked body that came whole
    // with its head: the body is drained from the buffer, as a sized one
    // is, and the connection goes on to the pipelined request.
    for placement in PLACEMENTS {
        let service = tower::service_fn(|req: Request<Body>| async move {
            Ok::<_, Infallible>(Response::new(Body::from(req.uri().path().to_string())))
        });
        let server = start_placed(placement, service);
        let mut c = server.connect();
        c.send(CHUNKED_THEN_GET);
        let first = c.read_response();
        assert_eq!(first.body_str(), "/first", "{placement:?}");
        assert_eq!(first.header("connection"), None, "{placement:?}");
        let second = c.read_response();
        assert_eq!(second.body_str(), "/second", "{placement:?}");
    }
}

#[test]
fn an_error_answer_to_an_unread_chunked_body_all_here_keeps_the_connection() {
    // A failing handler that never read the body: 500, and the connection
    // stays sound for the pipelined request.
    for placement in PLACEMENTS {
        let service = tower::service_fn(|req: Request<Body>| async move {
            if req.uri().path() == "/first" {
                return Err::<Response<Body>, _>(std::io::Error::other("refused"));
            }
            Ok(Response::new(Body::from("fine")))
        });
        let server = start_placed(placement, service);
        let mut c = server.connect();
        c.send(CHUNKED_THEN_GET);
        let first = c.read_response();
        assert_eq!(first.status, 500, "{placement:?}");
        assert_eq!(first.header("connection"), None, "{placement:?}");
        assert_eq!(c.read_response().body_str(), "fine", "{placement:?}");
    }
}

#[test]
fn trailers_a_body_kept_past_the_answer_never_gets_do_not_end_it_cleanly() {
    // The service answers at once and reads the body later, in a task of
    // its own; the chunked body and its trailers came whole with the head.
    // The server stops feeding once the answer is out: the body may end in
    // an error, but never look complete without its trailers.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = answered.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let (tx, seen) = (tx.clone(), seen.clone());
        async move {
            spargio_rt::spawn(async move {
                // Take nothing until the client has read the answer.
                while !seen.load(std::sync::atomic::Ordering::SeqCst) {
                    spargio_rt::time::sleep(Duration::from_millis(1)).await;
                }
                let got = req.into_body().collect().await;
                let trailers = got.map(|c| c.trailers().cloned());
                let _ = tx.lock().unwrap().send(trailers.map_err(|e| e.to_string()));
            });
            Ok::<_, Infallible>(Response::new(Body::from("ok")))
        }
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    answered.store(true, std::sync::atomic::Ordering::SeqCst);
    match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
        Ok(trailers) => {
            let trailers = trailers.expect("the body ended cleanly without its trailers");
            assert_eq!(trailers["x-sum"], "5");
        }
        Err(_aborted) => {}
    }
}
