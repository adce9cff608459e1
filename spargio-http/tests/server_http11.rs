//! HTTP/1.1 semantics over real sockets: keep-alive, HTTP/1.0, pipelining,
//! chunked bodies and trailers, `Expect: 100-continue`, bodiless
//! responses, `Date`, upgrades.

mod common;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{echo_service, pattern, read_to_the_end, TestServer, TestService};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use spargio_http::{upgrade, Body, Http};
use spargio_service::ShutdownReport;

fn text(s: &'static str) -> Response<Body> {
    Response::new(Body::from(s))
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    for i in 0..5 {
        let resp = c.roundtrip(format!("GET /n{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), None);
        assert!(resp.body_str().starts_with(&format!("GET /n{i} ")));
    }
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn connection_close_from_the_service_is_honoured() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        let mut r = text("bye");
        r.headers_mut()
            .insert("connection", "close".parse().unwrap());
        Ok::<_, Infallible>(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.body_str(), "bye");
    assert!(c.is_closed());
}

#[test]
fn http10_closes_by_default() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(resp.version, 0);
    assert_eq!(resp.status, 200);
    assert!(c.is_closed());
}

#[test]
fn http10_keeps_alive_only_when_asked() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    let resp = c.roundtrip(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(resp.body_str().starts_with("GET /b"));
}

#[test]
fn http10_streaming_response_is_close_delimited() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"ab"))),
            Ok(http_body::Frame::data(Bytes::from_static(b"cd"))),
        ]);
        Ok::<_, Infallible>(Response::new(StreamBody::new(chunks)))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(resp.header("content-length").is_none());
    assert!(!resp.chunked);
    assert_eq!(resp.body, b"abcd");
}

#[test]
fn a_chunked_response_whose_body_fails_gets_no_last_chunk() {
    // The last chunk would pass the cut body off as whole.
    let service = tower::service_fn(|_req: Request<Body>| async {
        let frames = futures_util::stream::iter(vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"partial"))),
            Err(std::io::Error::other("the body failed")),
        ]);
        Ok::<_, Infallible>(Response::new(StreamBody::new(frames)))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut got = Vec::new();
    match c.reader.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(text.ends_with("7\r\npartial\r\n"), "{text:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let mut raw = Vec::new();
    for i in 0..16 {
        raw.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    raw.extend_from_slice(b"POST /last HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody");
    c.send(&raw);
    for i in 0..16 {
        let resp = c.read_response();
        assert!(
            resp.body_str().starts_with(&format!("GET /p{i} ")),
            "{}",
            resp.body_str()
        );
    }
    assert!(c.read_response().body_str().ends_with("body=body"));
}

#[test]
fn a_long_pipelined_run_is_answered_in_order_through_a_small_write_buffer() {
    // More answers than the write buffer holds: they go out in several
    // writes between requests, still in order.
    let server = TestServer::start_with(Http::new().write_buffer(256), |b| b, echo_service());
    let mut c = server.connect();
    let mut raw = Vec::new();
    for i in 0..300 {
        raw.extend_from_slice(format!("GET /q{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    c.send(&raw);
    for i in 0..300 {
        let resp = c.read_response();
        assert!(
            resp.body_str().starts_with(&format!("GET /q{i} ")),
            "{}",
            resp.body_str()
        );
    }
}

#[test]
fn each_request_on_a_connection_sees_only_its_own_head() {
    // The connection parses every head into one reused head; nothing of a
    // request (method, target, version, fields) may show in the next one.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let mut names: Vec<_> = req
            .headers()
            .keys()
            .map(|n| n.as_str().to_owned())
            .collect();
        names.sort();
        let text = format!(
            "{} {} {:?} [{}]",
            req.method(),
            req.uri(),
            req.version(),
            names.join(",")
        );
        Ok::<_, Infallible>(Response::new(Body::from(text)))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(
        b"DELETE /first?x=1 HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n\
          GET /second HTTP/1.1\r\nHost: b\r\n\r\n\
          OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(
        c.read_response().body_str(),
        "DELETE /first?x=1 HTTP/1.1 [host,x-one,x-two]"
    );
    assert_eq!(c.read_response().body_str(), "GET /second HTTP/1.1 [host]");
    assert_eq!(
        c.read_response().body_str(),
        "OPTIONS * HTTP/1.0 [connection]"
    );
}

#[test]
fn chunked_request_body_with_trailers_reaches_the_service() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(
        resp.body_str(),
        "POST /up len=11 trailers=1 body=hello world"
    );
}

#[test]
fn unknown_length_response_is_chunked_with_trailers() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        let frames = futures_util::stream::iter(vec![
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"part1 "))),
            Ok(http_body::Frame::data(Bytes::from_static(b"part2"))),
            Ok(http_body::Frame::trailers(trailers)),
        ]);
        Ok::<_, Infallible>(Response::new(StreamBody::new(frames)))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(resp.chunked);
    assert_eq!(resp.body, b"part1 part2");
    assert_eq!(
        resp.trailers,
        vec![("x-checksum".to_string(), "42".to_string())]
    );
    // The connection is still good.
    assert_eq!(
        c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").status,
        200
    );
}

#[test]
fn exact_size_response_gets_content_length() {
    let server = TestServer::start(tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(text("twelve bytes"))
    }));
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.header("content-length"), Some("12"));
    assert!(!resp.chunked);
}

#[test]
fn a_large_single_frame_body_arrives_whole_and_the_connection_goes_on() {
    // One 24 MiB frame: written from the handler's own memory rather than
    // through the write buffer, after a head that is in the buffer, and
    // followed on the same connection by a small response.
    let server = TestServer::start(tower::service_fn(|req: Request<Body>| async move {
        let body = if req.uri().path() == "/large" {
            let bytes: Vec<u8> = (0..24 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
            Body::from(Bytes::from(bytes))
        } else {
            Body::from("small")
        };
        Ok::<_, Infallible>(Response::new(body))
    }));
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET /large HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.header("content-length"), Some("25165824"));
    assert_eq!(resp.body.len(), 24 * 1024 * 1024);
    assert!(resp
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 253) as u8));
    let resp = c.roundtrip(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.body_str(), "small");
}

#[test]
fn head_gets_headers_and_no_body() {
    let server = TestServer::start(tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(text("twelve bytes"))
    }));
    let mut c = server.connect();
    c.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let resp = c.read_response_to(true);
    assert_eq!(resp.header("content-length"), Some("12"));
    // No body bytes: the next response starts right away.
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.body_str(), "twelve bytes");
}

#[test]
fn status_204_205_and_304_have_no_body() {
    let service = tower::service_fn(|req: Request<Body>| async move {
        let status = match req.uri().path() {
            "/204" => StatusCode::NO_CONTENT,
            "/205" => StatusCode::RESET_CONTENT,
            _ => StatusCode::NOT_MODIFIED,
        };
        let mut r = text("ignored body");
        *r.status_mut() = status;
        Ok::<_, Infallible>(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 204);
    assert!(resp.header("content-length").is_none());
    assert!(resp.header("transfer-encoding").is_none());
    let resp = c.roundtrip(b"GET /304 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 304);
    // A 205 says its length is 0 (a client frames it like any response).
    let resp = c.roundtrip(b"GET /205 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 205);
    assert_eq!(resp.header("content-length"), Some("0"));
    assert_eq!(resp.body_str(), "");
    assert_eq!(
        c.roundtrip(b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n").status,
        204
    );
}

#[test]
fn responses_carry_a_valid_date() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let resp = c.roundtrip(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let date = resp.header("date").expect("date header");
    let when = httpdate::parse_http_date(date).expect("HTTP date");
    // HTTP dates are whole seconds, cut down from the server's clock: never
    // ahead of ours.
    let now = std::time::SystemTime::now();
    let age = now
        .duration_since(when)
        .unwrap_or_else(|_| panic!("date {date} is in the future"));
    // Refreshed at least every second (checked exactly in `date.rs`); a
    // wide bound here, for a loaded machine.
    assert!(age <= Duration::from_secs(30), "date {date} is stale");
}

#[test]
fn expect_continue_is_sent_when_the_body_is_read() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let resp = c.read_response();
    assert!(resp.body_str().ends_with("body=hello"));
}

#[test]
fn expect_continue_is_not_sent_when_the_body_is_not_read() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        let mut r = text("no thanks");
        *r.status_mut() = StatusCode::FORBIDDEN;
        Ok::<_, Infallible>(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 403, "the final response comes first, no 100");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn expect_continue_is_never_sent_to_http10() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert!(resp.body_str().ends_with("body=hello"));
}

#[test]
fn large_streamed_request_body_arrives_whole() {
    let server = TestServer::start(echo_service());
    let mut c = server.connect();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    c.send(
        format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut w = c.stream.try_clone().unwrap();
    let sent = body.clone();
    let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
    let resp = c.read_response();
    writer.join().unwrap();
    assert!(resp.body_str().contains("len=3000000 body=abcdefghij"));
}

#[test]
fn slow_reader_holds_back_a_large_response() {
    // A 32 MiB streamed response to a client that reads nothing: the
    // server must stop producing (bounded buffers), and everything arrives
    // intact once the client reads.
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = produced.clone();
    let service = tower::service_fn(move |_req: Request<Body>| {
        let p = p.clone();
        async move {
            let chunks = futures_util::stream::iter(0..512).map(move |i| {
                p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(vec![
                    (i % 251) as u8;
                    64 * 1024
                ])))
            });
            Ok::<_, Infallible>(Response::new(StreamBody::new(chunks)))
        }
    });
    use futures_util::StreamExt;
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // Wait (bounded) until production has started and then stood still
    // for three looks in a row: the buffers are full.
    let count = || produced.load(std::sync::atomic::Ordering::SeqCst);
    let (mut last, mut still) = (count(), 0);
    let by = std::time::Instant::now() + Duration::from_secs(30);
    while still < 3 && std::time::Instant::now() < by {
        std::thread::sleep(Duration::from_millis(50));
        let now = count();
        still = if now == last && now > 0 { still + 1 } else { 0 };
        last = now;
    }
    assert!(
        last < 512,
        "the whole response was produced for a client that reads nothing"
    );
    let resp = c.read_response();
    assert_eq!(resp.body.len(), 512 * 64 * 1024);
    for (i, chunk) in resp.body.chunks(64 * 1024).enumerate() {
        assert!(chunk.iter().all(|&b| b == (i % 251) as u8));
    }
}

#[test]
fn slow_header_is_cut_with_408() {
    let server = TestServer::start_with(
        spargio_http::Http::new().header_read_timeout(Duration::from_millis(200)),
        |b| b,
        echo_service(),
    );
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 408);
    assert!(c.is_closed());
}

#[test]
fn a_header_read_timeout_past_the_clock_means_no_timeout() {
    // `Duration::MAX` cannot be added to an `Instant`; it is no deadline,
    // for heads and for bodies alike.
    let server = TestServer::start_with(
        Http::new().header_read_timeout(Duration::MAX),
        |b| b,
        echo_service(),
    );
    let mut c = server.connect();
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    c.send(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "POST /b len=5 body=hello");
}

/// A head cut short by the header-read timeout is still judged on what
/// came of it: a malformed one gets 400, not 408. (The bytes read before
/// the timed-out read were lost with it, and an empty head got 408.)
#[test]
fn a_malformed_head_cut_short_by_the_timeout_gets_400() {
    // The timeout counts from accept: it is far longer than the pause
    // below, so that even on a loaded machine the second part comes
    // before it (a 408 for a head cut before its bad line would be right).
    let server = TestServer::start_with(
        Http::new().header_read_timeout(Duration::from_secs(1)),
        |b| b,
        echo_service(),
    );
    let mut c = server.connect();
    // In two reads: the first is parsed (a whole line, so far so good),
    // the second, too short to be worth parsing, is not. (The pause lets
    // the first arrive alone; if it did not, the 400 would come at once.)
    c.send(b"GET / HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"Bad Name: x\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 400);
    assert!(c.is_closed());
}

/// The request of the stray-CRLF tests: a POST whose body is followed by
/// an extra CRLF, as some clients send (RFC 9112 §2.2 has the server
/// ignore it).
const POST_WITH_STRAY_CRLF: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n";

/// Reads to the connection's end and asserts that it closed cleanly
/// without another byte (no unsolicited 408).
fn assert_ends_quietly(reader: &mut impl std::io::Read) {
    let (got, end) = read_to_the_end(reader);
    assert!(end.is_ok(), "{end:?}");
    assert!(
        got.is_empty(),
        "unsolicited {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// An empty line after a request is not the start of the next one: the
/// connection waits as an idle one does, and the header-read timeout
/// closes it quietly, as it closes an idle one, instead of answering it
/// with a 408.
#[test]
fn a_stray_crlf_after_a_request_is_ignored_not_answered_with_408() {
    let server = TestServer::start_with(
        Http::new().header_read_timeout(Duration::from_millis(200)),
        |b| b,
        echo_service(),
    );
    // A plain idle connection, then one with the stray CRLF: both end the
    // same way.
    let plain: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx";
    for req in [plain, POST_WITH_STRAY_CRLF] {
        let mut c = server.connect();
        let resp = c.roundtrip(req);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), None, "kept alive");
        assert_ends_quietly(&mut c.reader);
    }
}

/// A connection holding only a stray CRLF after its last request is idle:
/// a graceful shutdown ends it at once instead of waiting out the
/// header-read timeout and then cutting it.
#[test]
fn a_stray_crlf_after_a_request_does_not_hold_a_graceful_shutdown() {
    let server = TestServer::start_with(
        Http::new().header_read_timeout(Duration::from_secs(60)),
        |b| b,
        echo_service(),
    );
    let mut c = server.connect();
    let resp = c.roundtrip(POST_WITH_STRAY_CRLF);
    assert_eq!(resp.status, 200);
    // The shutdown deadline (5 s) bounds this; the header-read timeout is
    // far beyond it.
    let report = server.stop();
    assert_eq!(report.open_at_start, 1, "{report:?}");
    assert_eq!(report.cut, 0, "{report:?}");
    assert_eq!(report.closed_gracefully, 1, "{report:?}");
    assert_ends_quietly(&mut c.reader);
}

#[test]
fn a_client_that_stops_reading_is_closed_by_the_send_timeout() {
    // 64 pipelined requests for 1 MiB each; the client reads nothing for a
    // while, so the server's writes stall once the socket buffers are
    // full, and the send timeout closes the connection. Before, it stayed
    // open (and held its connection place) for as long as the client
    // liked.
    const BODY: usize = 1 << 20;
    let body = Bytes::from(vec![b'x'; BODY]);
    let service = tower::service_fn(move |_req: Request<Body>| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(Response::new(Body::from(body))) }
    });
    let server = TestServer::start_with(
        Http::new(),
        |b| b.send_timeout(Duration::from_millis(100)),
        service,
    );
    let mut c = server.connect();
    for _ in 0..64 {
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    // Not reading is the point, until the send timeout has fired.
    let by = std::time::Instant::now() + Duration::from_secs(30);
    while server.stats.snapshot().send_timeouts == 0 {
        assert!(
            std::time::Instant::now() < by,
            "the send timeout never fired"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    assert!(total < 64 * BODY, "every response arrived ({total} bytes)");
    let report = server.stop();
    assert_eq!(report.open_at_start, 0, "{report:?}");
}

/// Takes the request's upgrade and, once the server hands the connection
/// over, reads 5 bytes and answers them in upper case.
fn shout_back_once_switched(req: &mut Request<Body>) {
    let on = upgrade::on(req);
    spargio_rt::spawn(async move {
        let mut io = on.await.expect("upgraded");
        let mut buf = [0u8; 5];
        io.read_exact(&mut buf).await.unwrap();
        io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
        io.flush().await.unwrap();
    });
}

#[test]
fn upgrade_hands_over_the_raw_connection() {
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        Ok::<_, Infallible>(switching(&mut req, true))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    // The first bytes of the new protocol come right behind the request.
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nhel");
    let resp = c.read_response();
    assert_eq!(resp.status, 101);
    c.send(b"lo");
    let mut got = [0u8; 5];
    c.reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HELLO");
}

/// A `101 Switching Protocols` answer, taking the upgrade only if `take`.
fn switching(req: &mut Request<Body>, take: bool) -> Response<Body> {
    if take {
        shout_back_once_switched(req);
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    r.headers_mut().insert("upgrade", "shout".parse().unwrap());
    r
}

#[test]
fn a_101_to_connect_is_a_500_and_a_close() {
    // The client waits for a 2xx to open its tunnel; an HTTP/1.0 one must
    // get no 1xx at all.
    for version in ["1.1", "1.0"] {
        let service = tower::service_fn(|mut req: Request<Body>| async move {
            Ok::<_, Infallible>(switching(&mut req, true))
        });
        let server = TestServer::start(service);
        let mut c = server.connect();
        c.send(format!("CONNECT a:443 HTTP/{version}\r\nHost: a:443\r\n\r\n").as_bytes());
        assert_eq!(c.read_response().status, 500, "HTTP/{version}");
        assert!(c.is_closed(), "HTTP/{version}");
    }
}

#[test]
fn a_101_to_a_request_that_asked_for_no_upgrade_is_a_500_and_a_close() {
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        Ok::<_, Infallible>(switching(&mut req, false))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().status, 500);
    assert!(c.is_closed());
}

#[test]
fn a_101_nobody_takes_closes_the_connection() {
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        Ok::<_, Infallible>(switching(&mut req, false))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    // The request behind it is never parsed as HTTP: the connection is
    // the new protocol's, and nobody took it.
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().status, 101);
    assert!(c.is_closed());
}

#[test]
fn an_upgrade_answered_without_switching_keeps_the_connection_as_http() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let tx = std::sync::Arc::new(tx);
    let service = tower::service_fn(move |mut req: Request<Body>| {
        let tx = tx.clone();
        async move {
            if req.uri().path() == "/ws" {
                let on = upgrade::on(&mut req);
                spargio_rt::spawn(async move {
                    let switched = on.await.is_ok();
                    tx.lock().unwrap().send(switched).unwrap();
                });
            }
            Ok::<_, Infallible>(Response::new(Body::from(req.uri().path().to_string())))
        }
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n");
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body_str()), (200, "/ws"));
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(false));
    c.send(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response().body_str(), "/next");
}

#[test]
fn a_2xx_to_connect_hands_over_the_tunnel() {
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        assert_eq!(req.method(), http::Method::CONNECT);
        shout_back_once_switched(&mut req);
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    // No body follows a 2xx to CONNECT, whatever the head says.
    let resp = c.read_response_to(true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.header("transfer-encoding"), None);
    c.send(b"hello");
    let mut got = [0u8; 5];
    c.reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HELLO");
}

/// A 2xx response to CONNECT carries no Content-Length or
/// Transfer-Encoding (RFC 9110 §9.3.6), even when the handler set one:
/// the client would otherwise read the tunnel's bytes as a body.
#[test]
fn a_2xx_to_connect_drops_the_handlers_content_length() {
    let service = tower::service_fn(|mut req: Request<Body>| async move {
        shout_back_once_switched(&mut req);
        let mut r = Response::new(Body::empty());
        r.headers_mut()
            .insert("content-length", "0".parse().unwrap());
        Ok::<_, Infallible>(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    let resp = c.read_response_to(true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), None, "{resp:?}");
    assert_eq!(resp.header("transfer-encoding"), None, "{resp:?}");
    c.send(b"hello");
    let mut got = [0u8; 5];
    c.reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HELLO");
}

#[test]
fn multishot_reads_serve_keep_alive_requests_pipelines_and_large_bodies() {
    let server = TestServer::start_with(Http::new().multishot_reads(true), |b| b, echo_service());
    let mut c = server.connect();
    // Bodies smaller and larger than one ring buffer (4 KiB) and than the
    // connection's read buffer (8 KiB).
    for n in [0usize, 1, 4096, 10_000, 300_000] {
        let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        let mut raw =
            format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        raw.extend_from_slice(&body);
        let resp = c.roundtrip(&raw);
        assert_eq!(resp.status, 200);
        let want = format!("POST /up len={n} body={}", String::from_utf8_lossy(&body));
        assert_eq!(resp.body_str(), want);
    }
    // Three pipelined requests in one write, answered in order.
    c.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    for i in 1..=3 {
        assert_eq!(
            c.read_response().body_str(),
            format!("GET /{i} len=0 body=")
        );
    }
}

/// A service that answers an upgrade after `delay`, then echoes the new
/// protocol's first `len` bytes upper-cased.
fn slow_shouting_upgrade(delay: Duration, len: usize) -> impl TestService<Body> {
    tower::service_fn(move |mut req: Request<Body>| async move {
        let on = upgrade::on(&mut req);
        spargio_rt::spawn(async move {
            let mut io = on.await.expect("upgraded");
            let mut buf = vec![0u8; len];
            io.read_exact(&mut buf).await.unwrap();
            io.write_all(&buf.to_ascii_uppercase()).await.unwrap();
            io.flush().await.unwrap();
        });
        spargio_rt::time::sleep(delay).await;
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        r.headers_mut().insert("upgrade", "shout".parse().unwrap());
        Ok::<_, Infallible>(r)
    })
}

#[test]
fn upgrade_keeps_every_byte_that_arrived_while_the_101_was_pending() {
    // While the service takes its time, the client sends the new
    // protocol's bytes in separate writes. The server's read side has
    // already taken some of them off the socket (a multishot receive stays
    // armed between requests); the upgraded stream must still see them
    // all, in order, whichever read mode the server uses.
    for multishot in [true, false] {
        let server = TestServer::start_with(
            Http::new().multishot_reads(multishot),
            |b| b,
            slow_shouting_upgrade(Duration::from_millis(150), 12),
        );
        let mut c = server.connect();
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n");
        for part in [&b"abc"[..], b"def", b"ghi"] {
            std::thread::sleep(Duration::from_millis(20));
            c.send(part);
        }
        let resp = c.read_response();
        assert_eq!(resp.status, 101);
        c.send(b"jkl");
        let mut got = [0u8; 12];
        c.reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ABCDEFGHIJKL", "multishot reads: {multishot}");
    }
}

/// `/panic` panics, `/err` returns `Err`, anything else answers "fine".
fn failing_routes() -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = std::io::Error,
    Future = impl std::future::Future<Output = Result<Response<Body>, std::io::Error>> + Send + 'static,
> + Clone
       + Send
       + 'static {
    tower::service_fn(|req: Request<Body>| async move {
        match req.uri().path() {
            "/panic" => panic!("boom"),
            "/err" => Err::<Response<Body>, _>(std::io::Error::other("nope")),
            _ => Ok(text("fine")),
        }
    })
}

#[test]
fn handler_errors_and_panics_become_500_and_the_connection_goes_on() {
    let server = TestServer::start(failing_routes());
    let mut c = server.connect();
    assert_eq!(
        c.roundtrip(b"GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
            .status,
        500
    );
    assert_eq!(
        c.roundtrip(b"GET /err HTTP/1.1\r\nHost: a\r\n\r\n").status,
        500
    );
    assert_eq!(
        c.roundtrip(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
            .body_str(),
        "fine"
    );
}

#[test]
fn load_shed_and_timeout_layer_errors_become_503_and_the_connection_goes_on() {
    use spargio_service::layers::{Elapsed, Overloaded};
    use spargio_service::BoxError;
    let service = tower::service_fn(|req: Request<Body>| async move {
        match req.uri().path() {
            "/shed" => Err::<Response<Body>, BoxError>(Overloaded::new().into()),
            "/tower-shed" => Err(tower::load_shed::error::Overloaded::new().into()),
            "/late" => Err(Elapsed::new().into()),
            "/err" => Err("a fault".into()),
            _ => Ok(text("fine")),
        }
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    for (path, status) in [
        ("/shed", 503),
        ("/tower-shed", 503),
        ("/late", 503),
        ("/err", 500),
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.roundtrip(req.as_bytes()).status, status, "{path}");
    }
    assert_eq!(
        c.roundtrip(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
            .body_str(),
        "fine"
    );
}

#[test]
fn head_to_a_failing_handler_gets_the_error_head_without_a_body() {
    // HEAD, 204 and 304 carry no body, and neither does the error page
    // the server writes when a HEAD request's handler fails: the next
    // response on the connection must start right after the head.
    let server = TestServer::start(failing_routes());
    let mut c = server.connect();
    for path in ["/panic", "/err"] {
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        let resp = c.read_response_to(true);
        assert_eq!(resp.status, 500, "HEAD {path}");
        assert!(resp.body.is_empty());
        assert!(
            resp.header("content-length").is_some(),
            "the head says what a GET would carry"
        );
        assert_eq!(
            c.roundtrip(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
                .body_str(),
            "fine",
            "the connection goes on after HEAD {path}"
        );
    }
}

#[test]
fn body_collected_on_another_shard_than_the_connections() {
    // The connection lives on shard 0; the handler reads the body on shard
    // 1 (as a stolen handler, or one that hands its body to a task there,
    // does). Its bytes come from shard 0's ring.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let body = req.into_body();
        let (bytes, shard) = spargio_rt::RuntimeHandle::current()
            .spawn_pinned(spargio_rt::ShardId(1), async move {
                let bytes = body.collect().await.unwrap().to_bytes();
                (bytes, spargio_rt::RuntimeHandle::current().current_shard())
            })
            .await
            .unwrap();
        let mut response = Response::new(Body::from(bytes));
        let shard = shard.map_or(usize::MAX, |s| s.0);
        response
            .headers_mut()
            .insert("x-read-on", shard.to_string().parse().unwrap());
        Ok::<_, Infallible>(response)
    });
    let server = TestServer::start_with(
        Http::new(),
        |b| b.accept(spargio_service::AcceptMode::Pinned(spargio_rt::ShardId(0))),
        service,
    );
    let mut c = server.connect();
    for n in [1usize, 1000, 100_000, 1 << 20] {
        let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let mut raw =
            format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        raw.extend_from_slice(&body);
        c.send(&raw);
        let response = c.read_response();
        assert_eq!(response.header("x-read-on"), Some("1"));
        assert!(
            response.body == body,
            "the body of {n} bytes came back changed"
        );
    }
    assert_eq!(server.stats.snapshot().accepted_per_shard, vec![1, 0]);
}

#[test]
fn an_informational_final_response_becomes_500_and_the_pipeline_stays_in_step() {
    // A 1xx (other than an accepted 101) cannot end an exchange: the client
    // would go on waiting for the final response, and every later response
    // on the connection would answer the request before it.
    let service = tower::service_fn(|req: Request<Body>| async move {
        let status = match req.uri().path() {
            "/100" => StatusCode::CONTINUE,
            "/102" => StatusCode::PROCESSING,
            "/103" => StatusCode::from_u16(103).unwrap(),
            _ => return Ok::<_, Infallible>(text("fine")),
        };
        let mut r = text("interim");
        *r.status_mut() = status;
        Ok(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    for path in ["/103", "/100", "/102"] {
        c.send(
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
                .as_bytes(),
        );
        let resp = c.read_response();
        assert_eq!(resp.status, 500, "GET {path}: {resp:?}");
        let next = c.read_response();
        assert_eq!(next.status, 200, "after GET {path}: {next:?}");
        assert_eq!(next.body_str(), "fine");
    }
}

/// A connection that lingers after its `Connection: close` response (the
/// server has written everything and waits for the client to close) when
/// the shutdown deadline passes had all its work done: the report does not
/// count it as cut.
#[test]
fn a_connection_lingering_after_its_last_response_is_not_counted_as_cut() {
    let server = TestServer::start_with(
        Http::new(),
        |b| b.shutdown_timeout(Duration::from_millis(300)),
        echo_service(),
    );
    let mut c = server.connect();
    let res = c.roundtrip(b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("connection"), Some("close"));
    // The client keeps its end open, so the server lingers past the
    // shutdown deadline.
    let report = server.stop();
    assert_eq!(report.open_at_start, 1, "{report:?}");
    assert_eq!(report.cut, 0, "{report:?}");
    assert_eq!(report.closed_gracefully, 1, "{report:?}");
    assert!(c.is_closed(), "the server closed its end");
}

/// Bytes of further requests the client pipelines behind the first in the
/// graceful-shutdown tests, sent with it: more than the server reads ahead
/// (its read buffer, or the buffers a multishot receive keeps before it
/// pauses).
const PIPELINED: usize = 64 * 1024;

/// Bytes of further requests the client sends while the first is in
/// flight: the server is reading nothing then (a multishot receive has
/// paused), so these are still in its socket, unread, when the first
/// response is done.
const PIPELINED_LATER: usize = 16 * 1024;

/// The body of the first response in the graceful-shutdown tests: more
/// than a client that is not reading lets in (its receive window), so the
/// server's kernel still holds part of it when the server closes.
const FIRST_BODY: usize = 256 * 1024;

/// Waits, on the server, until `flag` is set; gives up after 10 s, so a
/// failed test does not leave the server waiting.
async fn released(flag: &AtomicBool) {
    for _ in 0..2000 {
        if flag.load(Ordering::SeqCst) {
            return;
        }
        spargio_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The graceful-shutdown scenario: the client sends `GET /first` with
/// [`PIPELINED`] bytes of further requests behind it. Once the service
/// sets `started` (the first request is in flight), the client pipelines
/// [`PIPELINED_LATER`] bytes more and ends its side, the server begins a
/// graceful shutdown, and `release` lets the service go on. The client
/// reads nothing until the server has stopped. Returns what it then read,
/// how its connection ended, and the shutdown report.
fn pipelined_into_a_shutdown(
    server: TestServer,
    started: &AtomicBool,
    release: &AtomicBool,
) -> (Vec<u8>, std::io::Result<()>, ShutdownReport) {
    let pipelined = |first: &[u8], len: usize| {
        let mut raw = first.to_vec();
        while raw.len() < len {
            raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        raw
    };
    let mut c = server.connect();
    c.send(&pipelined(
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n",
        PIPELINED,
    ));
    let mut waited = 0;
    while !started.load(Ordering::SeqCst) {
        assert!(waited < 2000, "the first request never reached the service");
        std::thread::sleep(Duration::from_millis(5));
        waited += 1;
    }
    c.send(&pipelined(b"", PIPELINED_LATER));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    server.begin_shutdown();
    release.store(true, Ordering::SeqCst);
    let report = server.stop();
    let (got, end) = read_to_the_end(&mut c.reader);
    (got, end, report)
}

/// Checks what [`pipelined_into_a_shutdown`] saw: one 200 response with
/// body `want`, nothing after it, a clean end (no reset), no connection
/// cut. Returns the response head.
fn assert_whole_then_clean_end(
    multishot: bool,
    (got, end, report): (Vec<u8>, std::io::Result<()>, ShutdownReport),
    want: &[u8],
) -> String {
    assert!(
        end.is_ok(),
        "multishot {multishot}: after {} bytes the connection ended with {end:?}",
        got.len()
    );
    let (head, body, after) = split_response(&got);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(body == want, "multishot {multishot}: body differs");
    assert!(after.is_empty(), "{} bytes after the response", after.len());
    assert_eq!(report.cut, 0, "{report:?}");
    head
}

/// Splits one response off the front of `raw`: its head (as text) and its
/// body (de-chunked), and what follows it. Fails the test if the response
/// is not all there.
fn split_response(raw: &[u8]) -> (String, Vec<u8>, &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no whole head in {} bytes", raw.len()));
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut rest = &raw[end + 4..];
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("\r\ntransfer-encoding: chunked") {
        loop {
            let line = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a whole chunk size line");
            let size = std::str::from_utf8(&rest[..line]).unwrap();
            let n = usize::from_str_radix(size, 16).expect("chunk size");
            rest = &rest[line + 2..];
            assert!(rest.len() >= n + 2, "a chunk of {n} bytes was cut short");
            body.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
            if n == 0 {
                break;
            }
        }
    } else {
        let len = lower
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a content-length");
        let n: usize = len.parse().unwrap();
        assert!(rest.len() >= n, "{} of {n} body bytes came", rest.len());
        body.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    (head, body, rest)
}

/// A request in flight when a graceful shutdown begins is answered whole,
/// with `Connection: close`, and the connection then ends cleanly (no
/// reset), though requests the client pipelined behind it are unread.
#[test]
fn a_request_in_flight_at_a_graceful_shutdown_gets_its_whole_response_and_a_clean_end() {
    for multishot in [false, true] {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (started.clone(), release.clone());
        let service = tower::service_fn(move |req: Request<Body>| {
            let (started, release) = (s.clone(), r.clone());
            async move {
                assert_eq!(req.uri().path(), "/first", "only the first is answered");
                started.store(true, Ordering::SeqCst);
                released(&release).await;
                Ok::<_, Infallible>(Response::new(Body::from(pattern(FIRST_BODY))))
            }
        });
        let server = TestServer::start_with(Http::new().multishot_reads(multishot), |b| b, service);
        let ended = pipelined_into_a_shutdown(server, &started, &release);
        let head = assert_whole_then_clean_end(multishot, ended, &pattern(FIRST_BODY));
        assert!(
            head.to_ascii_lowercase().contains("\r\nconnection: close"),
            "{head}"
        );
    }
}

/// A response whose head went out (promising keep-alive) before a
/// graceful shutdown began ends the connection once it is whole. Requests
/// the client pipelined behind it are still unread then: closing the
/// socket over them would send a reset, which discards what the kernel has
/// not yet sent of the response.
#[test]
fn a_response_under_way_when_a_graceful_shutdown_begins_arrives_whole_before_a_clean_end() {
    for multishot in [false, true] {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (started.clone(), release.clone());
        let service = tower::service_fn(move |req: Request<Body>| {
            assert_eq!(req.uri().path(), "/first", "only the first is answered");
            // The first frame, then (once the head is out) the rest when
            // the shutdown has begun.
            let frames = futures_util::stream::unfold(0, {
                let (started, release) = (s.clone(), r.clone());
                move |step| {
                    let (started, release) = (started.clone(), release.clone());
                    async move {
                        let data = match step {
                            0 => Bytes::from_static(b"first;"),
                            1 => {
                                started.store(true, Ordering::SeqCst);
                                released(&release).await;
                                Bytes::from(pattern(FIRST_BODY))
                            }
                            _ => return None,
                        };
                        Some((Ok::<_, Infallible>(http_body::Frame::data(data)), step + 1))
                    }
                }
            });
            async move { Ok::<_, Infallible>(Response::new(StreamBody::new(frames))) }
        });
        let server = TestServer::start_with(Http::new().multishot_reads(multishot), |b| b, service);
        let ended = pipelined_into_a_shutdown(server, &started, &release);
        let mut want = b"first;".to_vec();
        want.extend_from_slice(&pattern(FIRST_BODY));
        assert_whole_then_clean_end(multishot, ended, &want);
    }
}

#[test]
fn an_inline_handler_goes_on_while_earlier_responses_wait_for_a_slow_reader() {
    // `/big` queues more than the socket takes while the client reads
    // nothing; `/slow` is pending at its first poll. Its future must keep
    // being polled while the server writes `/big` out (whatever it holds,
    // a permit or a lock, is held until it is), not only once the client
    // reads.
    const BIG: usize = 32 << 20;
    let started = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let proceeded = Arc::new(AtomicBool::new(false));
    let (s, g, p) = (started.clone(), go.clone(), proceeded.clone());
    let service = tower::service_fn(move |req: Request<Body>| {
        let (started, go, proceeded) = (s.clone(), g.clone(), p.clone());
        async move {
            if req.uri().path() == "/big" {
                return Ok::<_, Infallible>(Response::new(Body::from(vec![b'x'; BIG])));
            }
            started.store(true, Ordering::SeqCst);
            while !go.load(Ordering::SeqCst) {
                spargio_rt::time::sleep(Duration::from_millis(1)).await;
            }
            proceeded.store(true, Ordering::SeqCst);
            Ok(text("done"))
        }
    });
    let server = TestServer::start_with(
        Http::new().write_buffer(64 << 20),
        |b| b.handler_placement(spargio_service::HandlerPlacement::Inline),
        service,
    );
    let mut c = server.connect();
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    // `/slow` is pending (the server now writes `/big` out) until told.
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    while !started.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < give_up, "/slow never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    go.store(true, Ordering::SeqCst);
    let mut waited = 0;
    while !proceeded.load(Ordering::SeqCst) && waited < 500 {
        std::thread::sleep(Duration::from_millis(20));
        waited += 1;
    }
    assert!(
        proceeded.load(Ordering::SeqCst),
        "the handler was not polled while the client did not read"
    );
    let big = c.read_response();
    assert_eq!(big.body.len(), BIG);
    assert_eq!(c.read_response().body_str(), "done");
}

/// Serves a 16 MiB response to a client that starts reading it only
/// after `wait`, then asks again on the same connection, with the server
/// built by `builder` (and a write buffer that takes the whole response).
fn slow_reader_asks_again(
    http: Http<Body>,
    builder: impl FnOnce(spargio_service::ServerBuilder) -> spargio_service::ServerBuilder
        + Send
        + 'static,
    wait: Duration,
) {
    const BIG: usize = 16 << 20;
    let service = tower::service_fn(|req: Request<Body>| async move {
        let body = match req.uri().path() {
            "/big" => Body::from(vec![b'x'; BIG]),
            _ => Body::from("again"),
        };
        Ok::<_, Infallible>(Response::new(body))
    });
    let server = TestServer::start_with(http.write_buffer(64 << 20), builder, service);
    let mut c = server.connect();
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    // The response is queued whole; the kernel takes only part of it
    // until the client reads.
    std::thread::sleep(wait);
    let big = c.read_response();
    assert_eq!(big.body.len(), BIG);
    assert_eq!(big.header("connection"), None);
    // Promised keep-alive, and the client asks at once.
    let again = c.roundtrip(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(again.body_str(), "again");
}

#[test]
fn the_idle_clock_starts_once_the_last_response_is_out() {
    slow_reader_asks_again(
        Http::new(),
        |b| b.idle_timeout(Duration::from_millis(500)),
        Duration::from_millis(1500),
    );
}

#[test]
fn the_header_read_clock_starts_once_the_last_response_is_out() {
    slow_reader_asks_again(
        Http::new().header_read_timeout(Duration::from_millis(500)),
        |b| b,
        Duration::from_millis(1500),
    );
}

/// Bytes sent right behind a CONNECT the service refuses may be the
/// tunnel's (a client that does not wait, or a proxy in front that
/// forwarded the CONNECT and passes what follows uninspected): they are
/// never read as requests. The refusal says the connection closes.
#[test]
fn a_refused_connect_closes_and_what_follows_it_is_not_answered() {
    let service = tower::service_fn(|req: Request<Body>| async move {
        let status = if req.method() == http::Method::CONNECT {
            http::StatusCode::METHOD_NOT_ALLOWED
        } else {
            http::StatusCode::OK
        };
        let mut r = Response::new(Body::from(req.uri().to_string()));
        *r.status_mut() = status;
        Ok::<_, Infallible>(r)
    });
    let server = TestServer::start(service);
    let mut c = server.connect();
    c.send(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 405, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(c.is_closed(), "the request behind the CONNECT was read");
}
