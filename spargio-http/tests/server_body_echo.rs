//! A response body that streams the request body back (an echo) waits for
//! the client's next bytes without spinning: the connection task, which
//! polls both the socket and the response body, is not woken again and
//! again while nothing arrives.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use common::TestServer;
use http::{Request, Response};
use spargio_http::Body;
use spargio_rt::RuntimeHandle;

/// `/polls`: how many task polls the runtime has made so far; anything
/// else: the request body, streamed back as the response body.
async fn echo_or_polls(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/polls" {
        let polls: u64 = RuntimeHandle::current()
            .stats()
            .shards
            .iter()
            .map(|s| s.tasks_polled)
            .sum();
        return Ok(Response::new(Body::from(polls.to_string())));
    }
    Ok(Response::new(req.into_body()))
}

fn polls(c: &mut common::RawClient) -> u64 {
    let resp = c.roundtrip(b"GET /polls HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 200);
    resp.body_str().parse().unwrap()
}

#[test]
fn an_echo_waiting_for_the_rest_of_the_body_does_not_spin() {
    let server = TestServer::start(tower::service_fn(echo_or_polls));
    let mut stats = server.connect();
    let mut c = server.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello");
    let before = polls(&mut stats);
    // The echo has the first half and waits for the rest.
    std::thread::sleep(Duration::from_millis(300));
    let during = polls(&mut stats) - before;
    c.send(b"world");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "helloworld");
    // A handful of polls (the /polls requests themselves, a timer); a
    // connection task woken over and over while it waits makes them by
    // the hundred thousand.
    assert!(
        during < 1000,
        "{during} task polls while the echo waited for the client"
    );
}
