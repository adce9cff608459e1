//! Unit tests of the codec, one file per concern.

mod chunked;
mod chunked_prop;
mod date;
mod encode;
mod request;
mod request_framing;
mod response;
mod roundtrip;

use super::{parse_request, Limits, RequestError, RequestHead};

/// Parses `s` with default limits.
fn parse(s: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
    parse_request(s, &Limits::default())
}

/// Parses a complete request head, panicking otherwise.
fn head(s: &str) -> RequestHead {
    match parse(s.as_bytes()) {
        Ok(Some((h, n))) => {
            assert_eq!(n, s.len(), "head should take the whole input");
            h
        }
        other => panic!("expected a complete head for {s:?}, got {other:?}"),
    }
}

/// The error for a request head, panicking if it parses.
fn error(s: &str) -> RequestError {
    match parse(s.as_bytes()) {
        Err(e) => e,
        other => panic!("expected an error for {s:?}, got {other:?}"),
    }
}

/// Asserts `s` is refused with 400.
fn assert_bad_request(s: &str) {
    let e = error(s);
    assert!(
        matches!(e, RequestError::Malformed(_)),
        "expected Malformed for {s:?}, got {e:?}"
    );
    assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
}
