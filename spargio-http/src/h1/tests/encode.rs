//! Response framing decisions and head/chunk encoding.

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use crate::h1::encode::{encode_last_chunk_fields, encode_request_fields, encode_response_fields};
use crate::h1::{
    connection_has_token, parse_content_length, EncodeError, RequestError, ResponseError,
};
use crate::h1::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response_head, response_framing,
    BodyLength, ResponseFraming, CONTINUE,
};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

fn framing(
    method: Method,
    version: Version,
    status: u16,
    h: &[(&str, &str)],
    exact: Option<u64>,
) -> ResponseFraming {
    response_framing(
        &method,
        version,
        StatusCode::from_u16(status).unwrap(),
        &headers(h),
        exact,
    )
}

fn response(
    version: Version,
    status: u16,
    h: &HeaderMap,
    framing: ResponseFraming,
    head_length: Option<u64>,
    keep_alive: bool,
) -> String {
    let mut dst = BytesMut::new();
    encode_response_head(
        &mut dst,
        version,
        StatusCode::from_u16(status).unwrap(),
        h,
        framing,
        head_length,
        keep_alive,
    )
    .unwrap();
    String::from_utf8(dst.to_vec()).unwrap()
}

/// The head with the `date` line taken out (it changes every second).
fn without_date(head: &str) -> String {
    head.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("date: "))
        .collect()
}

/// Fields with raw values, as a `HeaderValue` built with
/// `from_maybe_shared_unchecked` carries them in release builds (debug
/// builds of `http` refuse to build such a value, so the encoders' field
/// source is fed directly).
fn raw(pairs: &[(&'static str, &'static [u8])]) -> Vec<(HeaderName, &'static [u8])> {
    pairs
        .iter()
        .map(|(n, v)| (HeaderName::from_static(n), *v))
        .collect()
}

#[test]
fn framing_no_body_statuses() {
    for status in [100, 101, 103, 204, 205, 304] {
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, status, &[], Some(5)),
            ResponseFraming::NoBody,
            "{status}"
        );
    }
}

#[test]
fn framing_head_has_no_body() {
    assert_eq!(
        framing(
            Method::HEAD,
            Version::HTTP_11,
            200,
            &[("content-length", "9")],
            Some(5)
        ),
        ResponseFraming::NoBody
    );
}

#[test]
fn framing_connect_2xx_has_no_body() {
    assert_eq!(
        framing(
            Method::CONNECT,
            Version::HTTP_11,
            200,
            &[("content-length", "0")],
            Some(0)
        ),
        ResponseFraming::Tunnel
    );
    assert_eq!(
        framing(Method::CONNECT, Version::HTTP_11, 407, &[], None),
        ResponseFraming::Chunked
    );
}

#[test]
fn framing_exact_size_wins_over_user_content_length() {
    assert_eq!(
        framing(
            Method::GET,
            Version::HTTP_11,
            200,
            &[("content-length", "9")],
            Some(5)
        ),
        ResponseFraming::Length(5)
    );
    assert_eq!(
        framing(Method::GET, Version::HTTP_10, 200, &[], Some(0)),
        ResponseFraming::Length(0)
    );
}

#[test]
fn framing_user_content_length() {
    assert_eq!(
        framing(
            Method::GET,
            Version::HTTP_11,
            200,
            &[("content-length", "9")],
            None
        ),
        ResponseFraming::Length(9)
    );
    assert_eq!(
        framing(
            Method::POST,
            Version::HTTP_10,
            404,
            &[("content-length", "3")],
            None
        ),
        ResponseFraming::Length(3)
    );
}

#[test]
fn framing_invalid_user_content_length_is_ignored() {
    assert_eq!(
        framing(
            Method::GET,
            Version::HTTP_11,
            200,
            &[("content-length", "x")],
            None
        ),
        ResponseFraming::Chunked
    );
    assert_eq!(
        framing(
            Method::GET,
            Version::HTTP_11,
            200,
            &[("content-length", "1"), ("content-length", "2")],
            None
        ),
        ResponseFraming::Chunked
    );
}

#[test]
fn framing_unknown_length() {
    assert_eq!(
        framing(Method::GET, Version::HTTP_11, 200, &[], None),
        ResponseFraming::Chunked
    );
    assert_eq!(
        framing(Method::GET, Version::HTTP_10, 200, &[], None),
        ResponseFraming::CloseDelimited
    );
}

#[test]
fn response_head_with_length() {
    let head = response(
        Version::HTTP_11,
        200,
        &headers(&[("content-type", "text/plain")]),
        ResponseFraming::Length(5),
        None,
        true,
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.ends_with("\r\n\r\n"));
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n"
    );
}

#[test]
fn response_head_adds_date_unless_set() {
    let head = response(
        Version::HTTP_11,
        200,
        &HeaderMap::new(),
        ResponseFraming::Length(0),
        None,
        true,
    );
    let date = head.lines().find_map(|l| l.strip_prefix("date: ")).unwrap();
    assert!(httpdate::parse_http_date(date).is_ok());
    let mine = headers(&[("date", "Sun, 06 Nov 1994 08:49:37 GMT")]);
    let head = response(
        Version::HTTP_11,
        200,
        &mine,
        ResponseFraming::Length(0),
        None,
        true,
    );
    assert_eq!(head.matches("date: ").count(), 1);
    assert!(head.contains("date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
}

#[test]
fn response_head_chunked() {
    let head = response(
        Version::HTTP_11,
        200,
        &HeaderMap::new(),
        ResponseFraming::Chunked,
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

#[test]
fn response_head_close_on_http11() {
    let head = response(
        Version::HTTP_11,
        200,
        &HeaderMap::new(),
        ResponseFraming::Length(2),
        None,
        false,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn response_head_http10() {
    let head = response(
        Version::HTTP_10,
        404,
        &HeaderMap::new(),
        ResponseFraming::Length(2),
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.0 404 Not Found\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n"
    );
    let head = response(
        Version::HTTP_10,
        200,
        &HeaderMap::new(),
        ResponseFraming::CloseDelimited,
        None,
        false,
    );
    assert_eq!(without_date(&head), "HTTP/1.0 200 OK\r\n\r\n");
    // Close-delimited is never keep-alive.
    let head = response(
        Version::HTTP_10,
        200,
        &HeaderMap::new(),
        ResponseFraming::CloseDelimited,
        None,
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.0 200 OK\r\n\r\n");
}

#[test]
fn response_head_for_head_request_keeps_length() {
    let f = framing(Method::HEAD, Version::HTTP_11, 200, &[], Some(1234));
    let head = response(
        Version::HTTP_11,
        200,
        &headers(&[("content-length", "99")]),
        f,
        Some(1234),
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"
    );
    let head = response(
        Version::HTTP_11,
        200,
        &HeaderMap::new(),
        ResponseFraming::NoBody,
        None,
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.1 200 OK\r\n\r\n");
}

#[test]
fn response_head_204_has_no_length() {
    let h = headers(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
    let head = response(
        Version::HTTP_11,
        204,
        &h,
        ResponseFraming::NoBody,
        Some(5),
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.1 204 No Content\r\n\r\n");
    let head = response(
        Version::HTTP_11,
        204,
        &h,
        ResponseFraming::Length(5),
        None,
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.1 204 No Content\r\n\r\n");
}

/// A 205 carries no content (RFC 9110 §15.3.6) but is framed like any
/// response by clients: its head says the length is 0, whatever the
/// service set or the body's size was.
#[test]
fn response_head_205_says_its_length_is_zero() {
    let h = headers(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
    let head = response(
        Version::HTTP_11,
        205,
        &h,
        ResponseFraming::NoBody,
        Some(5),
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 205 Reset Content\r\ncontent-length: 0\r\n\r\n"
    );
}

/// A 2xx to CONNECT gets no Content-Length or Transfer-Encoding, not
/// even the service's own (RFC 9110 §9.3.6).
#[test]
fn response_head_tunnel_has_no_length() {
    let h = headers(&[("content-length", "0"), ("transfer-encoding", "chunked")]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::Tunnel,
        Some(5),
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.1 200 OK\r\n\r\n");
}

#[test]
fn response_head_304_may_carry_length() {
    let head = response(
        Version::HTTP_11,
        304,
        &HeaderMap::new(),
        ResponseFraming::NoBody,
        Some(10),
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n"
    );
}

#[test]
fn response_head_regenerates_framing_and_connection_headers() {
    let h = headers(&[
        ("content-length", "10"),
        ("transfer-encoding", "gzip"),
        ("connection", "keep-alive"),
        ("x-a", "1"),
    ]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::Chunked,
        None,
        false,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn response_head_101_keeps_connection_and_upgrade() {
    let h = headers(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-accept", "abc"),
    ]);
    let head = response(
        Version::HTTP_11,
        101,
        &h,
        ResponseFraming::NoBody,
        None,
        false,
    );
    assert_eq!(
        head,
        "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: abc\r\n\r\n"
    );
}

#[test]
fn response_head_unknown_status_has_empty_reason() {
    let head = response(
        Version::HTTP_11,
        599,
        &HeaderMap::new(),
        ResponseFraming::Length(0),
        None,
        true,
    );
    assert!(head.starts_with("HTTP/1.1 599 \r\n"));
}

#[test]
fn response_head_duplicate_headers_are_all_written() {
    let h = headers(&[("set-cookie", "a=1"), ("set-cookie", "b=2")]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::Length(0),
        None,
        true,
    );
    assert!(head.contains("set-cookie: a=1\r\nset-cookie: b=2\r\n"));
}

#[test]
fn cr_lf_nul_in_response_header_refused_and_dst_unchanged() {
    // A Connection option is written too (merged into the server's
    // field), so it is checked the same way.
    let cases = [&b"a\r\nx-injected: 1"[..], b"a\nb", b"a\rb", b"a\0b"]
        .into_iter()
        .map(|bad| ("x-foo", bad))
        .chain([("connection", &b"x-hop\r\nx-evil: 1"[..])]);
    for (name, bad) in cases {
        let fields = raw(&[("x-ok", b"fine"), (name, bad)]);
        let mut dst = BytesMut::from(&b"previous"[..]);
        let e = encode_response_fields(
            &mut dst,
            Version::HTTP_11,
            StatusCode::OK,
            &fields[..],
            ResponseFraming::Length(0),
            None,
            true,
        )
        .unwrap_err();
        assert_eq!(&dst[..], b"previous");
        assert_eq!(e.0, format!("CR/LF/NUL in value of header {name}"));
    }
    // The same fields without the bad one encode.
    let fields = raw(&[("x-ok", b"fine")]);
    let mut dst = BytesMut::new();
    encode_response_fields(
        &mut dst,
        Version::HTTP_11,
        StatusCode::OK,
        &fields[..],
        ResponseFraming::Length(0),
        None,
        true,
    )
    .unwrap();
    assert!(dst.starts_with(b"HTTP/1.1 200 OK\r\nx-ok: fine\r\n"));
}

#[test]
fn bad_bytes_in_a_stripped_header_do_not_matter() {
    // Content-Length is regenerated, so its raw value is never written.
    let fields = raw(&[("content-length", b"1\r\n")]);
    let mut dst = BytesMut::new();
    encode_response_fields(
        &mut dst,
        Version::HTTP_11,
        StatusCode::OK,
        &fields[..],
        ResponseFraming::Length(0),
        None,
        true,
    )
    .unwrap();
}

#[test]
fn encode_chunk_writes_hex_size() {
    let mut dst = BytesMut::new();
    encode_chunk(&mut dst, b"hello");
    assert_eq!(&dst[..], b"5\r\nhello\r\n");
    let mut dst = BytesMut::new();
    encode_chunk(&mut dst, &[b'x'; 0x1a2b]);
    assert!(dst.starts_with(b"1a2b\r\nxxx"));
    assert!(dst.ends_with(b"x\r\n"));
    assert_eq!(dst.len(), 0x1a2b + 8);
}

#[test]
fn encode_chunk_empty_is_a_no_op() {
    let mut dst = BytesMut::new();
    encode_chunk(&mut dst, b"");
    assert!(dst.is_empty());
}

#[test]
fn encode_last_chunk_without_trailers() {
    let mut dst = BytesMut::new();
    encode_last_chunk(&mut dst, None).unwrap();
    assert_eq!(&dst[..], b"0\r\n\r\n");
    let mut dst = BytesMut::new();
    encode_last_chunk(&mut dst, Some(&HeaderMap::new())).unwrap();
    assert_eq!(&dst[..], b"0\r\n\r\n");
}

#[test]
fn encode_last_chunk_with_trailers() {
    let mut dst = BytesMut::new();
    encode_last_chunk(
        &mut dst,
        Some(&headers(&[("x-checksum", "abc"), ("x-n", "1")])),
    )
    .unwrap();
    assert_eq!(&dst[..], b"0\r\nx-checksum: abc\r\nx-n: 1\r\n\r\n");
}

#[test]
fn encode_last_chunk_refuses_bad_trailers_and_leaves_dst() {
    let t = raw(&[("x-ok", b"1"), ("x-a", b"1\r\n2")]);
    let mut dst = BytesMut::from(&b"x"[..]);
    assert!(encode_last_chunk_fields(&mut dst, Some(&t[..])).is_err());
    assert_eq!(&dst[..], b"x");
    for forbidden in ["content-length", "transfer-encoding", "host"] {
        let t = headers(&[(forbidden, "1")]);
        assert!(encode_last_chunk(&mut dst, Some(&t)).is_err());
        assert_eq!(&dst[..], b"x");
    }
}

#[test]
fn continue_constant() {
    assert_eq!(CONTINUE, b"HTTP/1.1 100 Continue\r\n\r\n");
}

fn request(method: Method, uri: &str, h: &HeaderMap, body: BodyLength, absolute: bool) -> String {
    let mut dst = BytesMut::new();
    encode_request_head(&mut dst, &method, &uri.parse().unwrap(), h, body, absolute).unwrap();
    String::from_utf8(dst.to_vec()).unwrap()
}

#[test]
fn request_head_origin_form_with_host() {
    let head = request(
        Method::GET,
        "http://example.com:8080/a/b?c=d",
        &HeaderMap::new(),
        BodyLength::Empty,
        false,
    );
    assert_eq!(
        head,
        "GET /a/b?c=d HTTP/1.1\r\nhost: example.com:8080\r\n\r\n"
    );
}

#[test]
fn request_head_empty_path_is_slash() {
    let head = request(
        Method::GET,
        "http://example.com",
        &HeaderMap::new(),
        BodyLength::Empty,
        false,
    );
    assert_eq!(head, "GET / HTTP/1.1\r\nhost: example.com\r\n\r\n");
    let head = request(
        Method::GET,
        "http://example.com?q=1",
        &HeaderMap::new(),
        BodyLength::Empty,
        false,
    );
    assert_eq!(head, "GET /?q=1 HTTP/1.1\r\nhost: example.com\r\n\r\n");
}

#[test]
fn request_head_absolute_form() {
    let head = request(
        Method::GET,
        "http://user:pw@example.com/x?y",
        &HeaderMap::new(),
        BodyLength::Empty,
        true,
    );
    assert_eq!(
        head,
        "GET http://example.com/x?y HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

#[test]
fn request_head_connect_authority_form() {
    let head = request(
        Method::CONNECT,
        "example.com:443",
        &HeaderMap::new(),
        BodyLength::Empty,
        false,
    );
    assert_eq!(
        head,
        "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
    );
}

#[test]
fn request_head_keeps_user_host() {
    let h = headers(&[("host", "other"), ("x-a", "1")]);
    let head = request(
        Method::GET,
        "http://example.com/",
        &h,
        BodyLength::Empty,
        false,
    );
    assert_eq!(head, "GET / HTTP/1.1\r\nhost: other\r\nx-a: 1\r\n\r\n");
}

#[test]
fn request_head_relative_uri_gets_empty_host() {
    let head = request(
        Method::GET,
        "/p",
        &HeaderMap::new(),
        BodyLength::Empty,
        false,
    );
    assert_eq!(head, "GET /p HTTP/1.1\r\nhost: \r\n\r\n");
}

#[test]
fn request_head_body_framing() {
    let none = HeaderMap::new();
    for m in [Method::POST, Method::PUT, Method::PATCH] {
        let head = request(m.clone(), "http://h/", &none, BodyLength::Empty, false);
        assert!(head.ends_with("content-length: 0\r\n\r\n"), "{m}");
    }
    for m in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
        let head = request(m.clone(), "http://h/", &none, BodyLength::Empty, false);
        assert!(!head.contains("content-length"), "{m}");
    }
    let head = request(
        Method::POST,
        "http://h/",
        &none,
        BodyLength::Length(12),
        false,
    );
    assert!(head.ends_with("host: h\r\ncontent-length: 12\r\n\r\n"));
    let head = request(Method::POST, "http://h/", &none, BodyLength::Chunked, false);
    assert!(head.ends_with("host: h\r\ntransfer-encoding: chunked\r\n\r\n"));
}

#[test]
fn request_head_replaces_user_framing_headers() {
    let h = headers(&[("content-length", "99"), ("transfer-encoding", "chunked")]);
    let head = request(Method::POST, "http://h/", &h, BodyLength::Length(3), false);
    assert_eq!(
        head,
        "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\n"
    );
}

#[test]
fn request_head_refuses_cr_lf_and_leaves_dst() {
    let h = raw(&[("x-foo", b"a\r\nb")]);
    let mut dst = BytesMut::from(&b"keep"[..]);
    let e = encode_request_fields(
        &mut dst,
        &Method::GET,
        &"http://h/".parse().unwrap(),
        &h[..],
        BodyLength::Empty,
        false,
    )
    .unwrap_err();
    assert_eq!(&dst[..], b"keep");
    assert_eq!(e.0, "CR/LF/NUL in value of header x-foo");
}

#[test]
fn request_head_refuses_impossible_forms() {
    let mut dst = BytesMut::new();
    let none = HeaderMap::new();
    assert!(encode_request_head(
        &mut dst,
        &Method::GET,
        &"/p".parse().unwrap(),
        &none,
        BodyLength::Empty,
        true
    )
    .is_err());
    assert!(encode_request_head(
        &mut dst,
        &Method::CONNECT,
        &"/p".parse().unwrap(),
        &none,
        BodyLength::Empty,
        false
    )
    .is_err());
    // RFC 9110 §9.3.6: a CONNECT target needs its port.
    assert!(encode_request_head(
        &mut dst,
        &Method::CONNECT,
        &"http://example.com".parse().unwrap(),
        &none,
        BodyLength::Empty,
        false
    )
    .is_err());
    assert!(dst.is_empty());
}

#[test]
fn response_head_for_head_request_keeps_user_length_without_head_length() {
    let h = headers(&[("content-length", "99"), ("x-a", "1")]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::NoBody,
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 99\r\n\r\n"
    );
    // Identical duplicates collapse into one field.
    let h = headers(&[("content-length", "7"), ("content-length", "7")]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::NoBody,
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n"
    );
}

#[test]
fn response_head_drops_invalid_user_length() {
    for bad in [
        &[("content-length", "x")][..],
        &[("content-length", "1"), ("content-length", "2")],
    ] {
        let head = response(
            Version::HTTP_11,
            200,
            &headers(bad),
            ResponseFraming::NoBody,
            None,
            true,
        );
        assert_eq!(without_date(&head), "HTTP/1.1 200 OK\r\n\r\n");
        let head = response(
            Version::HTTP_11,
            200,
            &headers(bad),
            ResponseFraming::Chunked,
            None,
            true,
        );
        assert_eq!(
            without_date(&head),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}

#[test]
fn response_head_user_length_replaced_by_framing_length() {
    let h = headers(&[("content-length", "99")]);
    let head = response(
        Version::HTTP_11,
        200,
        &h,
        ResponseFraming::Length(5),
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    );
}

#[test]
fn response_head_304_keeps_user_length() {
    let h = headers(&[("content-length", "42")]);
    let head = response(
        Version::HTTP_11,
        304,
        &h,
        ResponseFraming::NoBody,
        None,
        true,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 42\r\n\r\n"
    );
}

#[test]
fn response_head_204_drops_user_length() {
    let h = headers(&[("content-length", "42")]);
    let head = response(
        Version::HTTP_11,
        204,
        &h,
        ResponseFraming::NoBody,
        None,
        true,
    );
    assert_eq!(without_date(&head), "HTTP/1.1 204 No Content\r\n\r\n");
}

#[test]
fn connection_token_helper() {
    let h = headers(&[
        ("connection", "keep-alive"),
        ("connection", "Upgrade, CLOSE"),
    ]);
    assert!(connection_has_token(&h, "close"));
    assert!(connection_has_token(&h, "upgrade"));
    assert!(!connection_has_token(&h, "te"));
    assert!(!connection_has_token(&HeaderMap::new(), "close"));
}

#[test]
fn content_length_helper() {
    assert_eq!(parse_content_length(&HeaderMap::new()), Ok(None));
    assert_eq!(
        parse_content_length(&headers(&[("content-length", "12")])),
        Ok(Some(12))
    );
    assert_eq!(
        parse_content_length(&headers(&[("content-length", "3, 3")])),
        Ok(Some(3))
    );
    assert!(parse_content_length(&headers(&[
        ("content-length", "3"),
        ("content-length", "4")
    ]))
    .is_err());
    assert!(parse_content_length(&headers(&[("content-length", "-1")])).is_err());
}

#[test]
fn error_display() {
    assert_eq!(EncodeError("x".into()).to_string(), "x");
    assert_eq!(ResponseError("bad").to_string(), "invalid response: bad");
    assert_eq!(
        RequestError::UnsupportedVersion.to_string(),
        "unsupported HTTP version"
    );
}

#[test]
fn response_head_keeps_the_services_connection_options() {
    // A 426 offering an upgrade must name it in Connection (RFC 9110
    // §7.8); `close` / `keep-alive` stay the server's to say.
    let h = headers(&[
        ("upgrade", "websocket"),
        ("connection", "Upgrade, keep-alive"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
    ]);
    let head = response(
        Version::HTTP_11,
        426,
        &h,
        ResponseFraming::Length(0),
        None,
        false,
    );
    assert_eq!(
        without_date(&head),
        "HTTP/1.1 426 Upgrade Required\r\nupgrade: websocket\r\nx-hop: 1\r\n\
         content-length: 0\r\nconnection: Upgrade, x-hop, close\r\n\r\n"
    );
    // Kept alive on HTTP/1.1: the options alone.
    let head = response(
        Version::HTTP_11,
        426,
        &h,
        ResponseFraming::Length(0),
        None,
        true,
    );
    assert!(
        head.contains("\r\nconnection: Upgrade, x-hop\r\n"),
        "{head}"
    );
    // HTTP/1.0 kept alive: the options, then keep-alive.
    let head = response(
        Version::HTTP_10,
        200,
        &headers(&[("connection", "x-hop")]),
        ResponseFraming::Length(0),
        None,
        true,
    );
    assert!(
        head.contains("\r\nconnection: x-hop, keep-alive\r\n"),
        "{head}"
    );
}

#[test]
fn decimals_are_appended_whole() {
    let mut dst = BytesMut::from(&b"n="[..]);
    for n in [0, 7, 10, 1234, u64::MAX] {
        crate::h1::fields::put_decimal(&mut dst, n);
        dst.extend_from_slice(b",");
    }
    assert_eq!(&dst[..], b"n=0,7,10,1234,18446744073709551615,");
}
