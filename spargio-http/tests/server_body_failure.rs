//! A response body that fails, over plain TCP: cut short after some of it
//! went out, a close-delimited body ends with a reset (never a clean close
//! the client could take for the end of the body) and a chunked one without
//! its last chunk; failing before any of it went out, it is answered with a
//! `500` instead.

mod common;

use std::convert::Infallible;
use std::io::ErrorKind;

use common::{frames, read_to_the_end, Frames, TestServer, TestService};
use http::{Request, Response};
use spargio_http::{Body, HandlerPlacement, Http};

/// `/partial` answers with a body that gives "partial" and then fails,
/// `/fail` with one that fails at once; anything else with "fine".
fn failing_bodies() -> impl TestService<Frames> {
    tower::service_fn(|req: Request<Body>| async move {
        let body = match req.uri().path() {
            "/partial" => frames(vec![Ok(b"partial"), Err("the body failed")]),
            "/fail" => frames(vec![Err("the body failed at once")]),
            _ => frames(vec![Ok(b"fine")]),
        };
        Ok::<_, Infallible>(Response::new(body))
    })
}

#[test]
fn a_close_delimited_response_whose_body_fails_ends_with_a_reset() {
    // HTTP/1.0 and no length: only the end of the connection ends the
    // body, so a clean close would pass "partial" off as all of it.
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    c.send(b"GET /partial HTTP/1.0\r\n\r\n");
    let (got, end) = read_to_the_end(&mut c.reader);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("content-length"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\npartial"), "{text:?}");
    let err = end.expect_err("a cut body ended with a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn a_close_delimited_response_cut_by_the_send_timeout_ends_with_a_reset() {
    // The body fails nowhere: the client stops reading, the server's send
    // timeout ends the connection mid-body, and the client, reading on,
    // must not see that end as the end of the body.
    static MIB: [u8; 1 << 20] = [b'x'; 1 << 20];
    let service = tower::service_fn(|_req: Request<Body>| async move {
        Ok::<_, Infallible>(Response::new(frames(vec![Ok(&MIB[..]); 32])))
    });
    let server = TestServer::start_with(
        Http::new(),
        |b| b.send_timeout(std::time::Duration::from_millis(100)),
        service,
    );
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    // Not reading is the point, until the send timeout has fired.
    let by = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.stats.snapshot().send_timeouts == 0 {
        assert!(
            std::time::Instant::now() < by,
            "the send timeout never fired"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (got, end) = read_to_the_end(&mut c.reader);
    assert!(got.len() < 32 << 20, "the whole body arrived");
    let err = end.expect_err("a cut body ended with a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// A close-delimited body sent whole still ends with a clean close.
#[test]
fn a_close_delimited_response_sent_whole_ends_with_a_clean_close() {
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    c.send(b"GET /whole HTTP/1.0\r\n\r\n");
    let (got, end) = read_to_the_end(&mut c.reader);
    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with("\r\n\r\nfine"), "{text:?}");
    end.expect("a clean close after the whole body");
}

/// A chunked body cut short lacks its last chunk, which the client sees
/// at the clean close; a reset there would also throw away whatever the
/// kernel had not yet delivered (earlier pipelined responses), so there
/// is none.
#[test]
fn a_chunked_response_whose_body_fails_ends_without_its_last_chunk() {
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    c.send(b"GET /partial HTTP/1.1\r\nHost: a\r\n\r\n");
    let (got, end) = read_to_the_end(&mut c.reader);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(
        text.ends_with("7\r\npartial\r\n"),
        "no last chunk: {text:?}"
    );
    end.expect("a clean close after the cut chunked body");
}

#[test]
fn a_body_that_fails_before_any_of_it_goes_out_becomes_a_500() {
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 500, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(resp.header("transfer-encoding").is_none(), "{resp:?}");
    assert_eq!(resp.body_str(), "Internal Server Error\n");
    // Then a clean close: the 500 is a whole response.
    let (rest, end) = read_to_the_end(&mut c.reader);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    end.expect("a clean close after the 500");
}

#[test]
fn a_close_delimited_body_that_fails_at_once_becomes_a_500() {
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET /fail HTTP/1.0\r\n\r\n");
    assert_eq!((resp.version, resp.status), (0, 500), "{resp:?}");
    assert_eq!(resp.body_str(), "Internal Server Error\n");
    let (rest, end) = read_to_the_end(&mut c.reader);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    end.expect("a clean close after the 500");
}

#[test]
fn a_pipelined_response_before_a_failing_body_arrives_whole_then_the_500() {
    // Inline handlers: the first answer is still queued, unsent, when the
    // second's body fails; only the second's head may be taken back.
    let server = TestServer::start_with(
        Http::new(),
        |b| b.handler_placement(HandlerPlacement::Inline),
        failing_bodies(),
    );
    let mut c = server.connect();
    c.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /fail HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = c.read_response();
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.chunked, "{first:?}");
    assert_eq!(first.body_str(), "fine");
    let second = c.read_response();
    assert_eq!(second.status, 500, "{second:?}");
    assert_eq!(second.header("connection"), Some("close"), "{second:?}");
    assert_eq!(second.body_str(), "Internal Server Error\n");
    let (rest, end) = read_to_the_end(&mut c.reader);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    end.expect("a clean close after the 500");
}

/// A body that panics when polled: `/boom` answers with it.
/// A response body that panics in one of its methods.
enum Panicking {
    /// In `poll_frame`.
    Poll,
    /// In `size_hint`.
    SizeHint,
    /// In `is_end_stream`.
    EndStream,
    /// In its `Drop`, after one frame and its end.
    Drop { polled: u8 },
}

impl http_body::Body for Panicking {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        match &mut *self {
            Panicking::Drop { polled } => {
                *polled += 1;
                let frame = (*polled == 1)
                    .then(|| Ok(http_body::Frame::data(bytes::Bytes::from_static(b"bye"))));
                std::task::Poll::Ready(frame)
            }
            _ => panic!("the response body panics on purpose"),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Panicking::SizeHint => panic!("size_hint panics on purpose"),
            _ => http_body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Panicking::EndStream => panic!("is_end_stream panics on purpose"),
            _ => false,
        }
    }
}

impl Drop for Panicking {
    fn drop(&mut self) {
        if matches!(self, Panicking::Drop { .. }) && !std::thread::panicking() {
            panic!("the response body's drop panics on purpose");
        }
    }
}

/// Inline handlers: `/ok` answers "fine", `/panic` with `make()`'s body.
fn panicking_at(make: fn() -> Panicking) -> TestServer {
    let service = tower::service_fn(move |req: Request<Body>| async move {
        let body = match req.uri().path() {
            "/panic" => http_body_util::Either::Left(make()),
            _ => http_body_util::Either::Right(frames(vec![Ok(b"fine")])),
        };
        Ok::<_, Infallible>(Response::new(body))
    });
    TestServer::start_with(
        Http::new(),
        |b| b.handler_placement(HandlerPlacement::Inline),
        service,
    )
}

/// The first answer is still queued, unsent, when the second's body
/// panics: the client gets it, then a 500 and a clean close.
fn first_answer_then_500(make: fn() -> Panicking) {
    let server = panicking_at(make);
    let mut c = server.connect();
    c.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /panic HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = c.read_response();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body_str(), "fine");
    let second = c.read_response();
    assert_eq!(second.status, 500, "{second:?}");
    assert_eq!(second.header("connection"), Some("close"), "{second:?}");
    let (rest, end) = read_to_the_end(&mut c.reader);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    end.expect("a clean close after the 500");
}

#[test]
fn a_response_body_that_panics_is_a_500_after_the_pipelined_answer_before_it() {
    // The panic used to unwind out of the connection's task, which dropped
    // the connection with the first answer in its write buffer: the client
    // got nothing at all.
    first_answer_then_500(|| Panicking::Poll);
}

#[test]
fn a_response_body_whose_size_hint_panics_is_a_500_after_the_answer_before_it() {
    first_answer_then_500(|| Panicking::SizeHint);
}

#[test]
fn a_response_body_whose_end_check_panics_is_a_500_after_the_answer_before_it() {
    first_answer_then_500(|| Panicking::EndStream);
}

#[test]
fn a_response_body_whose_drop_panics_is_sent_whole_and_the_connection_goes_on() {
    let server = panicking_at(|| Panicking::Drop { polled: 0 });
    let mut c = server.connect();
    c.send(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /panic HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
    for want in ["fine", "bye", "fine"] {
        let resp = c.read_response();
        assert_eq!((resp.status, resp.body_str()), (200, want), "{resp:?}");
    }
}

#[test]
fn a_cut_chunked_body_with_requests_pipelined_behind_it_ends_cleanly() {
    // The client sent far more than one read takes after the request whose
    // body fails. Closing the socket with that input unread made the
    // kernel send a reset in place of the end of stream (and discard what
    // it had not yet delivered): the server ends its side first and reads
    // what is left, as any close does.
    let server = TestServer::start(failing_bodies());
    let mut c = server.connect();
    let mut sent = b"GET /partial HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    for _ in 0..1000 {
        sent.extend_from_slice(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    c.send(&sent);
    let (got, end) = read_to_the_end(&mut c.reader);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("7\r\npartial\r\n"),
        "no last chunk: {text:?}"
    );
    end.expect("a clean close after the cut chunked body");
}
