//! A response framed by `Content-Length` is over once that many bytes are
//! written: its body is not polled again, so a stream slow to say it ended
//! does not hold up the next request on the connection.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::TestServer;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use spargio_http::Body;

/// A body that gives `data` (if any) and then never ends, with no size
/// hint of its own.
struct NeverEnds {
    data: Option<Bytes>,
}

impl HttpBody for NeverEnds {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.data.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// `/open` answers `hello` with `Content-Length: 5` from a body that never
/// ends; `/empty` answers with `Content-Length: 0` from one that never
/// gives anything; anything else answers `next`.
async fn service(
    req: Request<Body>,
) -> Result<Response<http_body_util::Either<NeverEnds, Body>>, Infallible> {
    use http_body_util::Either;
    let (data, length) = match req.uri().path() {
        "/open" => (Some(Bytes::from_static(b"hello")), "5"),
        "/empty" => (None, "0"),
        _ => return Ok(Response::new(Either::Right(Body::from("next")))),
    };
    let mut resp = Response::new(Either::Left(NeverEnds { data }));
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static(length));
    Ok(resp)
}

#[test]
fn a_sized_response_is_over_when_its_length_is_written() {
    let server = TestServer::start(tower::service_fn(service));
    let mut c = server.connect();
    c.send(b"GET /open HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = c.read_response();
    assert_eq!(first.body_str(), "hello");
    assert_eq!(first.header("connection"), None);
    // The first body never ends, but the second request is answered.
    assert_eq!(c.read_response().body_str(), "next");
}

#[test]
fn a_response_of_length_zero_is_over_at_once() {
    let server = TestServer::start(tower::service_fn(service));
    let mut c = server.connect();
    c.send(b"GET /empty HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = c.read_response();
    assert_eq!((first.status, first.body_str()), (200, ""));
    assert_eq!(c.read_response().body_str(), "next");
}
