//! Client side: parsing response heads.

use http::{Method, StatusCode, Version};

use crate::h1::{parse_response, Limits, ResponseBodyLength, ResponseError, ResponseHead};

fn parse(s: &str, method: Method) -> Result<Option<(ResponseHead, usize)>, ResponseError> {
    parse_response(s.as_bytes(), &method, &Limits::default())
}

fn head(s: &str, method: Method) -> ResponseHead {
    let (h, n) = parse(s, method).unwrap().unwrap();
    assert_eq!(n, s.len());
    h
}

fn error(s: &str) -> ResponseError {
    parse(s, Method::GET).unwrap_err()
}

#[test]
fn response_with_length() {
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n",
        Method::GET,
    );
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.body, ResponseBodyLength::Length(12));
    assert_eq!(h.headers["x-a"], "b");
    assert!(h.keep_alive);
}

#[test]
fn response_chunked() {
    let h = head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        Method::GET,
    );
    assert_eq!(h.body, ResponseBodyLength::Chunked);
    assert!(h.keep_alive);
}

#[test]
fn response_without_framing_is_close_delimited() {
    let h = head("HTTP/1.1 200 OK\r\n\r\n", Method::GET);
    assert_eq!(h.body, ResponseBodyLength::CloseDelimited);
    assert!(!h.keep_alive);
}

#[test]
fn response_to_head_has_no_body() {
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        Method::HEAD,
    );
    assert_eq!(h.body, ResponseBodyLength::Empty);
    assert!(h.keep_alive);
    assert_eq!(h.headers["content-length"], "100");
}

#[test]
fn response_no_body_statuses() {
    for status in [
        "204 No Content",
        "304 Not Modified",
        "100 Continue",
        "101 Switching Protocols",
        "103 Early Hints",
    ] {
        let h = head(&format!("HTTP/1.1 {status}\r\n\r\n"), Method::GET);
        assert_eq!(h.body, ResponseBodyLength::Empty, "{status}");
    }
}

#[test]
fn response_100_continue_is_returned_as_is() {
    let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (first, n) = parse_response(buf, &Method::POST, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(first.status, StatusCode::CONTINUE);
    let (second, m) = parse_response(&buf[n..], &Method::POST, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(n + m, buf.len());
}

#[test]
fn response_connect_2xx_has_no_body() {
    let h = head(
        "HTTP/1.1 200 Connection Established\r\n\r\n",
        Method::CONNECT,
    );
    assert_eq!(h.body, ResponseBodyLength::Empty);
    let h = head(
        "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\n",
        Method::CONNECT,
    );
    assert_eq!(h.body, ResponseBodyLength::Length(3));
}

#[test]
fn response_te_and_cl_is_chunked_and_not_reused() {
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        Method::GET,
    );
    assert_eq!(h.body, ResponseBodyLength::Chunked);
    assert!(!h.keep_alive);
    assert!(h.headers.get("content-length").is_none());
}

#[test]
fn response_differing_content_length_rejected() {
    error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    error("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n");
    error("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n");
    assert_eq!(
        head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            Method::GET
        )
        .body,
        ResponseBodyLength::Length(5)
    );
}

#[test]
fn response_te_rules() {
    assert_eq!(
        error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").0,
        "transfer-encoding in an HTTP/1.0 response"
    );
    error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    // RFC 9112 §6.3: chunked last frames the body (the codings under it
    // stay on the bytes, as the kept field says); any other last coding
    // makes the body run until the server closes.
    let h = head(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        Method::GET,
    );
    assert_eq!(h.body, ResponseBodyLength::Chunked);
    assert_eq!(h.headers["transfer-encoding"], "gzip, chunked");
    assert!(h.keep_alive);
    for raw in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
    ] {
        let h = head(raw, Method::GET);
        assert_eq!(h.body, ResponseBodyLength::CloseDelimited, "{raw}");
        assert!(!h.keep_alive, "{raw}");
        assert!(!h.headers.contains_key("content-length"), "{raw}");
    }
    // Without a body there is nothing to decode: the codings a GET would
    // have had are fine on HEAD, 204 and 304.
    for (raw, method) in [
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Method::HEAD,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Method::GET,
        ),
        (
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::GET,
        ),
    ] {
        let h = head(raw, method);
        assert_eq!(h.body, ResponseBodyLength::Empty, "{raw}");
        assert!(h.keep_alive, "{raw}");
    }
}

#[test]
fn bodiless_responses_with_smuggling_signals_end_the_connection() {
    // Transfer-Encoding beside Content-Length, and Transfer-Encoding on
    // HTTP/1.0, close the connection even where no body is read.
    for (raw, method) in [
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Method::GET,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Method::HEAD,
        ),
        (
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::HEAD,
        ),
    ] {
        let h = head(raw, method);
        assert_eq!(h.body, ResponseBodyLength::Empty, "{raw}");
        assert!(!h.keep_alive, "{raw}");
    }
    // The same HTTP/1.0 head without Transfer-Encoding keeps it.
    let h = head(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
        Method::HEAD,
    );
    assert!(h.keep_alive);
}

#[test]
fn response_http10_keep_alive() {
    let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::GET);
    assert_eq!(h.version, Version::HTTP_10);
    assert!(!h.keep_alive);
    let h = head(
        "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
        Method::GET,
    );
    assert!(h.keep_alive);
}

#[test]
fn response_connection_close() {
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
        Method::GET,
    );
    assert!(!h.keep_alive);
}

#[test]
fn response_incomplete_needs_more() {
    let full = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
    for i in 0..full.len() {
        assert!(parse(&full[..i], Method::GET).unwrap().is_none(), "{i}");
    }
}

#[test]
fn response_head_too_large() {
    let limits = Limits {
        max_head_bytes: 32,
        ..Limits::default()
    };
    let e = parse_response(
        b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaa",
        &Method::GET,
        &limits,
    )
    .unwrap_err();
    assert_eq!(e, ResponseError("response head too large"));
}

#[test]
fn response_too_many_headers() {
    let limits = Limits {
        max_headers: 1,
        ..Limits::default()
    };
    let e = parse_response(
        b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n",
        &Method::GET,
        &limits,
    )
    .unwrap_err();
    assert_eq!(e, ResponseError("too many header fields"));
}

#[test]
fn response_bad_status_lines() {
    error("HTTP/1.1 20 OK\r\n\r\n");
    error("HTTP/1.1 099 Low\r\n\r\n");
    error("HTTP/1.1 2000 OK\r\n\r\n");
    error("HTTP/1.1 abc OK\r\n\r\n");
    error("HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n");
    error("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n");
}

#[test]
fn response_other_version_unsupported() {
    assert_eq!(
        error("HTTP/2.0 200 OK\r\n\r\n"),
        ResponseError("unsupported HTTP version")
    );
    assert_eq!(
        error("HTTQ/1.1 200 OK\r\n\r\n"),
        ResponseError("invalid HTTP version")
    );
}

#[test]
fn response_status_without_reason() {
    let h = head("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert_eq!(h.status, StatusCode::OK);
}
