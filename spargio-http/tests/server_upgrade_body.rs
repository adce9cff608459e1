//! An upgrade (`101`) answered while the request's body is unread: the
//! body belongs to HTTP/1.1 and is read (drained) before the connection
//! is handed over, so the new protocol's first byte is the one right after
//! it. A client holding the body back for `100 Continue` gets the `100`
//! ahead of the `101` (RFC 9110, 7.8), then sends the body.

mod common;

use std::convert::Infallible;
use std::io::Read;
use std::time::Duration;

use common::{RawClient, TestServer, TestService};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use http::{Request, Response, StatusCode};
use spargio_http::{upgrade, Body, Http};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Answers `101` without reading the request body, and once switched
/// reads 5 bytes of the new protocol and sends them back upper-cased.
fn shout_without_reading_the_body() -> impl TestService<Body> {
    tower::service_fn(|mut req: Request<Body>| async move {
        let on = upgrade::on(&mut req);
        spargio_rt::spawn(async move {
            let Ok(mut io) = on.await else { return };
            let mut buf = [0u8; 5];
            if io.read_exact(&mut buf).await.is_ok() {
                let _ = io.write_all(&buf.to_ascii_uppercase()).await;
                let _ = io.flush().await;
            }
        });
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        r.headers_mut().insert("upgrade", "shout".parse().unwrap());
        Ok::<_, Infallible>(r)
    })
}

/// A client whose reads give up after 5 s (a bound against a hang).
fn connect(server: &TestServer) -> RawClient {
    let c = server.connect();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c
}

/// The head of an upgrade request with a body framed by `framing`.
fn upgrade_head(framing: &str, expect: bool) -> Vec<u8> {
    let expect = if expect {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    format!(
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n{framing}\r\n{expect}\r\n"
    )
    .into_bytes()
}

/// Reads the next bytes and checks they are exactly `100 Continue`.
fn expect_continue(c: &mut RawClient) {
    let mut got = vec![0u8; CONTINUE.len()];
    c.reader
        .read_exact(&mut got)
        .expect("no 100 Continue came before the 101");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(CONTINUE)
    );
}

/// Reads the 5 upper-cased bytes the switched handler sends back.
fn shouted(c: &mut RawClient) -> [u8; 5] {
    let mut got = [0u8; 5];
    c.reader
        .read_exact(&mut got)
        .expect("the upgraded stream never answered");
    got
}

#[test]
fn an_upgrade_over_a_body_sent_with_the_head_switches_after_the_body() {
    let server = TestServer::start(shout_without_reading_the_body());
    let mut c = connect(&server);
    let mut req = upgrade_head("Content-Length: 5", false);
    req.extend_from_slice(b"12345hel");
    c.send(&req);
    assert_eq!(c.read_response().status, 101);
    c.send(b"lo");
    assert_eq!(&shouted(&mut c), b"HELLO");
}

#[test]
fn an_upgrade_over_a_held_back_body_sends_100_continue_first() {
    for framing in ["Content-Length: 5", "Transfer-Encoding: chunked"] {
        let server = TestServer::start(shout_without_reading_the_body());
        let mut c = connect(&server);
        c.send(&upgrade_head(framing, true));
        expect_continue(&mut c);
        assert_eq!(c.read_response().status, 101, "{framing}");
        if framing.starts_with("Content-Length") {
            c.send(b"12345");
        } else {
            c.send(b"5\r\n12345\r\n0\r\n\r\n");
        }
        c.send(b"hello");
        assert_eq!(&shouted(&mut c), b"HELLO", "{framing}");
    }
}

#[test]
fn an_upgrade_over_a_held_back_body_larger_than_the_drain_limit_sends_no_100_and_closes() {
    let server = TestServer::start_with(
        Http::new().drain_limit(4),
        |b| b,
        shout_without_reading_the_body(),
    );
    let mut c = connect(&server);
    c.send(&upgrade_head("Content-Length: 5", true));
    let resp = c.read_response();
    assert_eq!(resp.status, 101, "the answer is not a 100: {resp:?}");
    assert!(c.is_closed());
}

#[test]
fn a_request_to_switch_framed_by_both_te_and_cl_is_refused_and_closed() {
    // Which bytes are its body depends on which framing a hop in front
    // believed, and it must close after the answer: never handed over.
    let server = TestServer::start(shout_without_reading_the_body());
    let connect_head = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\
        Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        .to_vec();
    for head in [
        upgrade_head("Transfer-Encoding: chunked\r\nContent-Length: 5", false),
        connect_head,
    ] {
        let mut c = connect(&server);
        let mut req = head;
        req.extend_from_slice(b"0\r\n\r\nhello");
        c.send(&req);
        let resp = c.read_response();
        assert_eq!(resp.status, 400, "{resp:?}");
        assert!(c.is_closed());
    }
}
