//! `Expect: 100-continue` over real sockets: the interim `100 Continue` goes
//! out as soon as the handler first asks for a body that has not arrived,
//! whatever the handler placement and however the handler reads it; never
//! when the handler answers without reading it, never to HTTP/1.0, and
//! never for an empty body. The clients here wait for the `100` before they
//! send the body, as curl does; their read timeout only bounds a hang.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

use common::{echo_service, RawClient, TestServer};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use spargio_http::{Body, Http};
use spargio_service::HandlerPlacement;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The placements a handler's future can run under on a shard.
const PLACEMENTS: [HandlerPlacement; 3] = [
    HandlerPlacement::Inline,
    HandlerPlacement::Stealable,
    HandlerPlacement::Adaptive,
];

/// Serves `service` with its handlers placed so.
fn start_placed<S>(placement: HandlerPlacement, service: S) -> TestServer
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

/// A client whose reads give up after 5 s (a bound against a hang, so a
/// server that never sends `100 Continue` fails the test).
fn connect(server: &TestServer) -> RawClient {
    let c = server.connect();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c
}

/// Reads the next bytes and checks they are exactly `100 Continue`.
fn expect_continue(c: &mut RawClient, what: &str) {
    let mut got = vec![0u8; CONTINUE.len()];
    if let Err(e) = c.reader.read_exact(&mut got) {
        panic!("{what}: no 100 Continue came ({e})");
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(CONTINUE),
        "{what}: the first bytes are not 100 Continue"
    );
}

/// The head of a 5-byte POST to `path` that waits for `100 Continue`.
fn gated_head(path: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .into_bytes()
}

/// Sends a gated request, waits for `100 Continue`, sends the body, and
/// checks the answer `check` and that the connection then serves another
/// request.
fn gated_roundtrip(server: &TestServer, what: &str, check: impl Fn(&str)) {
    let mut c = connect(server);
    c.send(&gated_head("/first"));
    expect_continue(&mut c, what);
    c.send(b"hello");
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{what}");
    assert_eq!(resp.header("connection"), None, "{what}: kept alive");
    check(resp.body_str());
    // The connection goes on: the body was read whole.
    let resp = c.roundtrip(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 200, "{what}: the next request");
}

#[test]
fn a_handler_that_collects_the_body_gets_100_continue_under_every_placement() {
    for placement in PLACEMENTS {
        let server = start_placed(placement, echo_service());
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert!(body.ends_with("body=hello"), "{placement:?}: {body}");
        });
    }
}

#[test]
fn a_streaming_echo_gets_100_continue_under_every_placement() {
    // The response body is the request body: the handler answers at once
    // and the body is first asked for while the response is written.
    let service = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(req.into_body()))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert_eq!(body, "hello", "{placement:?}");
        });
    }
}

#[test]
fn a_handler_that_reads_the_first_frame_then_streams_the_rest_gets_100_continue() {
    // The body is asked for from inside the handler's future, which then
    // answers with a response streaming what is left of it.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let mut body = req.into_body();
        let first = match body.frame().await {
            Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
            _ => Default::default(),
        };
        let rest = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let mut all = first.to_vec();
        all.extend_from_slice(&rest);
        Ok::<_, Infallible>(Response::new(Body::from(all)))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert_eq!(body, "hello", "{placement:?}");
        });
    }
}

#[test]
fn a_handler_that_asks_for_the_body_and_answers_at_once_gets_100_continue() {
    // The handler asks for a frame (none has come: the client waits for
    // the 100) and answers in the same poll with the body it holds.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let mut body = req.into_body();
        std::future::poll_fn(|cx| {
            let _ = http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx);
            std::task::Poll::Ready(())
        })
        .await;
        Ok::<_, Infallible>(Response::new(body))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert_eq!(body, "hello", "{placement:?}");
        });
    }
}

#[test]
fn a_handler_that_waits_before_reading_the_body_gets_100_continue() {
    // The handler's first polls do not touch the body; a later one does.
    let service = tower::service_fn(|req: Request<Body>| async move {
        spargio_rt::time::sleep(Duration::from_millis(20)).await;
        let body = req.into_body().collect().await;
        let n = body.map(|c| c.to_bytes().len()).unwrap_or(usize::MAX);
        Ok::<_, Infallible>(Response::new(Body::from(format!("len={n}"))))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert_eq!(body, "len=5", "{placement:?}");
        });
    }
}

#[test]
fn a_chunked_body_gets_100_continue_when_read() {
    for placement in PLACEMENTS {
        let server = start_placed(placement, echo_service());
        let mut c = connect(&server);
        c.send(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
              Expect: 100-continue\r\n\r\n",
        );
        expect_continue(&mut c, &format!("{placement:?}"));
        c.send(b"5\r\nhello\r\n0\r\n\r\n");
        let resp = c.read_response();
        assert!(resp.body_str().ends_with("body=hello"), "{placement:?}");
        assert_eq!(resp.header("connection"), None, "{placement:?}");
    }
}

#[test]
fn an_empty_body_gets_no_100_continue_and_a_kept_alive_answer() {
    for placement in PLACEMENTS {
        let server = start_placed(placement, echo_service());
        let mut c = connect(&server);
        let resp = c.roundtrip(
            b"POST /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\
              Expect: 100-continue\r\n\r\n",
        );
        assert_eq!(resp.status, 200, "{placement:?}: no 100 for no body");
        assert!(resp.body_str().ends_with("len=0 body="), "{placement:?}");
        assert_eq!(resp.header("connection"), None, "{placement:?}");
        let resp = c.roundtrip(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(resp.status, 200, "{placement:?}: the next request");
        assert!(resp.body_str().starts_with("GET /next"), "{placement:?}");
    }
}

#[test]
fn an_empty_body_answered_without_reading_it_keeps_the_connection() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("fine")))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        let mut c = connect(&server);
        let resp = c.roundtrip(
            b"POST /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\
              Expect: 100-continue\r\n\r\n",
        );
        assert_eq!(
            (resp.status, resp.body_str()),
            (200, "fine"),
            "{placement:?}"
        );
        assert_eq!(resp.header("connection"), None, "{placement:?}");
        let resp = c.roundtrip(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(resp.status, 200, "{placement:?}: the next request");
    }
}

#[test]
fn an_answer_without_reading_the_body_sends_no_100_and_never_parses_the_body() {
    // POSTs are refused unread; anything else is answered with its path.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let mut r = Response::new(Body::from(req.uri().path().to_string()));
        if req.method() == http::Method::POST {
            *r.status_mut() = StatusCode::FORBIDDEN;
        }
        Ok::<_, Infallible>(r)
    });
    // A body that looks like a request of its own.
    let smuggled: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        smuggled.len()
    );
    // The client waits for the 100 (and gets the answer instead), or sends
    // the body at once without waiting, as it may.
    for eager in [false, true] {
        for placement in PLACEMENTS {
            let what = format!("{placement:?}, eager: {eager}");
            let server = start_placed(placement, service);
            let mut c = connect(&server);
            c.send(head.as_bytes());
            if eager {
                c.send(smuggled);
            }
            let resp = c.read_response();
            assert_eq!(resp.status, 403, "{what}: the final answer, no 100");
            // The body is never answered as a request: either the
            // connection closes, or the next answer is to the next request.
            if !eager {
                let _ = c.stream.write_all(smuggled);
            }
            let _ = c.stream.write_all(b"GET /real HTTP/1.1\r\nHost: a\r\n\r\n");
            if resp.header("connection") == Some("close") {
                assert!(c.is_closed(), "{what}");
            } else {
                let next = c.read_response();
                assert_eq!(next.body_str(), "/real", "{what}");
            }
        }
    }
}

#[test]
fn http10_gets_no_100_continue_whatever_the_handler_does() {
    let service = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(req.into_body()))
    });
    for placement in PLACEMENTS {
        let server = start_placed(placement, service);
        let mut c = connect(&server);
        c.send(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
        let resp = c.read_response();
        assert_eq!(resp.version, 0, "{placement:?}");
        assert_eq!(
            (resp.status, resp.body_str()),
            (200, "hello"),
            "{placement:?}"
        );
    }
}

/// A response body that waits (a timer standing for any other work)
/// before its first frame, then gives `then`'s frames: the request body it
/// holds (an echo), or a frame of its own.
struct AfterWait<B> {
    wait: Option<spargio_rt::time::Sleep>,
    then: B,
}

impl<B> AfterWait<B> {
    fn new(then: B) -> AfterWait<B> {
        AfterWait {
            wait: Some(spargio_rt::time::sleep(Duration::from_millis(20))),
            then,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for AfterWait<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        if let Some(wait) = self.wait.as_mut() {
            std::task::ready!(std::pin::Pin::new(wait).poll(cx));
            self.wait = None;
        }
        std::pin::Pin::new(&mut self.then).poll_frame(cx)
    }
}

#[test]
fn a_response_body_that_reads_the_request_body_after_a_wait_gets_100_continue() {
    // The handler answers at once; its response body first waits for
    // something else, and only then streams the request body. The head
    // waits for that: a 100 cannot follow it.
    let service = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(AfterWait::new(req.into_body())))
    });
    for placement in PLACEMENTS {
        let server = TestServer::start_with(
            Http::new(),
            move |b| b.handler_placement(placement),
            service,
        );
        gated_roundtrip(&server, &format!("{placement:?}"), |body| {
            assert_eq!(body, "hello", "{placement:?}");
        });
    }
}

#[test]
fn a_response_body_that_answers_after_a_wait_without_the_request_body_gets_no_100() {
    // The request body is held by the response body but never read: its
    // first frame is its own, and the head (which waited for it) says the
    // connection closes, the client never having been told to send.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let kept = req.into_body();
        let own = common::frames(vec![Ok(b"own")]);
        let body = AfterWait::new(own).map_err(move |e| {
            let _ = &kept;
            e
        });
        Ok::<_, Infallible>(Response::new(body))
    });
    for placement in PLACEMENTS {
        let server = TestServer::start_with(
            Http::new(),
            move |b| b.handler_placement(placement),
            service,
        );
        let mut c = connect(&server);
        c.send(&gated_head("/"));
        let resp = c.read_response();
        assert_eq!(
            (resp.status, resp.body_str()),
            (200, "own"),
            "{placement:?}"
        );
        assert_eq!(resp.header("connection"), Some("close"), "{placement:?}");
        assert!(c.is_closed(), "{placement:?}");
    }
}

/// A response body that holds the request body unread and gives nothing
/// until `until` fires, then ends: a long poll whose event has not come.
struct Quiet {
    _request: Body,
    until: spargio_rt::sync::CancelledOwned,
}

impl http_body::Body for Quiet {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        std::task::ready!(std::pin::Pin::new(&mut self.until).poll(cx));
        std::task::Poll::Ready(None)
    }
}

/// Serves, with `http` and handlers placed so, a handler that answers
/// every request with a [`Quiet`] body holding its request body; the
/// token is the event that ends those bodies.
fn serve_quiet(
    http: Http<Quiet>,
    placement: HandlerPlacement,
) -> (TestServer, spargio_rt::sync::CancellationToken) {
    let token = spargio_rt::sync::CancellationToken::new();
    let event = token.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let until = event.clone().cancelled_owned();
        async move {
            Ok::<_, Infallible>(Response::new(Quiet {
                _request: req.into_body(),
                until,
            }))
        }
    });
    let server = TestServer::start_with(http, move |b| b.handler_placement(placement), service);
    (server, token)
}

#[test]
fn a_response_body_that_holds_the_request_body_and_gives_nothing_gets_its_head_with_close() {
    // The handler keeps the request body without reading it and answers
    // with a body whose first event is far off. The head waits for that
    // body to decide only up to the header read timeout, then goes out
    // saying the connection closes (the client was never told to send).
    for placement in PLACEMENTS {
        let (server, token) = serve_quiet(
            Http::new().header_read_timeout(Duration::from_secs(1)),
            placement,
        );
        // The default 10 s read timeout stands for a client giving up.
        let mut c = server.connect();
        c.send(&gated_head("/events"));
        let head = c.read_response_to(true);
        assert_eq!(head.status, 200, "{placement:?}: the final head, no 100");
        assert_eq!(head.header("connection"), Some("close"), "{placement:?}");
        assert_eq!(
            head.header("transfer-encoding"),
            Some("chunked"),
            "{placement:?}"
        );
        // The event comes: the body ends, and so does the connection.
        token.cancel();
        let (rest, end) = common::read_to_the_end(&mut c.reader);
        assert_eq!(String::from_utf8_lossy(&rest), "0\r\n\r\n", "{placement:?}");
        assert!(end.is_ok(), "{placement:?}: {end:?}");
    }
}

#[test]
fn a_refused_body_is_answered_at_once_though_the_response_body_holds_it() {
    // The client sends the body without waiting for the 100, as it may,
    // and its framing is refused (a bad chunk; more than the size limit)
    // while the response body holds the request body unread and gives
    // nothing. The error replaces the answer: it goes out at once, not
    // after the head's wait for that body (30 s by default, longer than
    // the client's read timeout here).
    let cases: [(&str, &[u8], u16); 2] = [
        ("bad chunk", b"ZZ\r\n", 400),
        ("too large", b"5\r\nhello\r\n", 413),
    ];
    for (what, body, status) in cases {
        for placement in PLACEMENTS {
            let what = format!("{what}, {placement:?}");
            let (server, token) = serve_quiet(Http::new().max_body_bytes(3), placement);
            let mut c = connect(&server);
            let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
                            Expect: 100-continue\r\n\r\n"
                .to_vec();
            req.extend_from_slice(body);
            c.send(&req);
            let resp = c.read_response();
            token.cancel();
            assert_eq!(resp.status, status, "{what}");
            assert_eq!(resp.header("connection"), Some("close"), "{what}");
            assert!(c.is_closed(), "{what}");
        }
    }
}

/// Sends a gated chunked request whose first chunk is malformed, with its
/// head: the answer under every placement is the 400 and a close, never a
/// 100 inviting more of a body already refused.
fn assert_a_refused_body_gets_no_100<S>(service: S)
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<spargio_service::BoxError> + Send + 'static,
{
    for placement in PLACEMENTS {
        let server = start_placed(placement, service.clone());
        let mut c = connect(&server);
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\nzz\r\n");
        let resp = c.read_response();
        assert_eq!(resp.status, 400, "{placement:?}: {resp:?}");
        assert!(c.is_closed());
    }
}

#[test]
fn a_body_refused_before_the_service_asks_gets_no_100_continue() {
    // The client sent a malformed chunk without waiting.
    assert_a_refused_body_gets_no_100(tower::service_fn(|req: Request<Body>| async move {
        let bytes = req.into_body().collect().await?.to_bytes();
        Ok::<_, spargio_service::BoxError>(Response::new(Body::from(bytes)))
    }));
}

#[test]
fn a_body_refused_while_the_handler_still_holds_it_gets_no_100_continue() {
    // The handler reads the malformed chunk's error and keeps the body a
    // while before it answers.
    assert_a_refused_body_gets_no_100(tower::service_fn(|req: Request<Body>| async move {
        let mut body = req.into_body();
        assert!(body.frame().await.is_some_and(|f| f.is_err()));
        spargio_rt::time::sleep(Duration::from_millis(50)).await;
        drop(body);
        Ok::<_, Infallible>(Response::new(Body::from("x")))
    }));
}

#[test]
fn a_body_asked_for_and_kept_unread_past_the_answer_is_drained_and_the_connection_kept() {
    // Part of the body came with the head. The handler asks for the body
    // once, answers in the same poll and hands the body to a task that
    // drops it later: the 100 and a kept-alive head go out, so the rest
    // the client then sends is drained and the connection serves on.
    let service = tower::service_fn(|req: Request<Body>| async move {
        if req.uri().path() == "/next" {
            return Ok::<_, Infallible>(Response::new(Body::from("next")));
        }
        let mut body = req.into_body();
        let asked = {
            let mut frame = std::pin::pin!(body.frame());
            std::future::poll_fn(|cx| std::task::Poll::Ready(frame.as_mut().poll(cx).is_pending()))
                .await
        };
        assert!(asked, "the frame is handed over later");
        spargio_rt::spawn(async move {
            spargio_rt::time::sleep(Duration::from_millis(100)).await;
            drop(body);
        });
        Ok(Response::new(Body::from("x")))
    });
    let server = start_placed(HandlerPlacement::Inline, service);
    let mut c = connect(&server);
    let mut req =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
            .to_vec();
    req.extend_from_slice(b"hello");
    c.send(&req);
    expect_continue(&mut c, "asked");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), None, "kept alive");
    c.send(b"world");
    let resp = c.roundtrip(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.body_str(), "next");
}
