//! Answers that do not wait for the whole request body: they go out at
//! once, and the rest of the body is drained within the drain timeout or
//! the connection closes. Clients here send part of a body and then stall;
//! their 10 s read timeout is only a bound against a hang.

mod common;

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
