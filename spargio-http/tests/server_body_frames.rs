//! Request body frames a service keeps do not keep the connection's read
//! buffers alive: a client sending its body a few bytes at a time, to a
//! service that collects it, must not make the server hold a whole read
//! buffer (8 KiB) per frame.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{RawClient, TestServer};
use http::{Request, Response};
use http_body_util::BodyExt;
use spargio_http::Body;

/// Keeps every frame of the body, then answers with how many there were
/// and the most memory any of them holds on its own: the capacity it has
/// once made mutable (`usize::MAX` if it still shares its memory).
async fn keep_frames(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let mut body = req.into_body();
    let mut kept: Vec<Bytes> = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("body frame").into_data() {
            kept.push(data);
        }
    }
    let len: usize = kept.iter().map(Bytes::len).sum();
    let pinned = kept
        .into_iter()
        .map(|f| f.try_into_mut().map_or(usize::MAX, |m| m.capacity()))
        .max()
        .unwrap_or(0);
    Ok(Response::new(Body::from(format!(
        "len={len} pinned={pinned}"
    ))))
}

/// The length and the most memory one frame held, from the answer.
fn read_answer(c: &mut RawClient) -> (usize, usize) {
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    let text = resp.body_str();
    let (len, pinned) = text
        .strip_prefix("len=")
        .and_then(|t| t.split_once(" pinned="))
        .unwrap_or_else(|| panic!("answer {text:?}"));
    (len.parse().unwrap(), pinned.parse().unwrap())
}

#[test]
fn small_frames_of_a_sized_body_hold_no_read_buffer() {
    let server = TestServer::start(tower::service_fn(keep_frames));
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n");
    for _ in 0..200 {
        c.send(b"x");
    }
    let (len, pinned) = read_answer(&mut c);
    assert_eq!(len, 200);
    // Each frame holds at most its own bytes (they are at most 200).
    assert!(pinned <= 200, "a frame holds {pinned} bytes");
}

#[test]
fn small_chunks_of_a_chunked_body_hold_no_read_buffer() {
    let server = TestServer::start(tower::service_fn(keep_frames));
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..100 {
        c.send(b"1\r\nx\r\n");
    }
    c.send(b"0\r\n\r\n");
    let (len, pinned) = read_answer(&mut c);
    assert_eq!(len, 100);
    assert!(pinned <= 100, "a frame holds {pinned} bytes");
}
