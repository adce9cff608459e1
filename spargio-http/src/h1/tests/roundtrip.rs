//! Encoders and parsers agree: what one side writes the other reads back.

use bytes::BytesMut;
use http::header::HeaderValue;
use http::{HeaderMap, Method, StatusCode, Version};

use crate::h1::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response_head, parse_request,
    parse_response, response_framing, BodyLength, ChunkedDecoder, ChunkedItem, Limits,
    ResponseBodyLength, ResponseFraming,
};

fn sample_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.append("x-multi", HeaderValue::from_static("1"));
    h.append("x-multi", HeaderValue::from_static("2"));
    h.insert(
        "x-bytes",
        HeaderValue::from_bytes(b"caf\xc3\xa9\tx").unwrap(),
    );
    h
}

#[test]
fn request_encode_then_parse_roundtrip() {
    let uri = "http://example.com:8080/search?q=a%20b".parse().unwrap();
    for (method, body) in [
        (Method::GET, BodyLength::Empty),
        (Method::POST, BodyLength::Length(5)),
        (Method::PUT, BodyLength::Chunked),
        (Method::DELETE, BodyLength::Empty),
    ] {
        let mut dst = BytesMut::new();
        encode_request_head(&mut dst, &method, &uri, &sample_headers(), body, false).unwrap();
        let (h, n) = parse_request(&dst, &Limits::default()).unwrap().unwrap();
        assert_eq!(n, dst.len());
        assert_eq!(h.method, method);
        assert_eq!(h.uri, "/search?q=a%20b");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers["host"], "example.com:8080");
        assert_eq!(h.body, body);
        assert!(h.keep_alive);
        for (name, value) in &sample_headers() {
            assert!(h.headers.get_all(name).iter().any(|v| v == value), "{name}");
        }
    }
}

#[test]
fn request_absolute_form_roundtrip() {
    let uri = "http://example.com/a?b".parse().unwrap();
    let mut dst = BytesMut::new();
    encode_request_head(
        &mut dst,
        &Method::GET,
        &uri,
        &HeaderMap::new(),
        BodyLength::Empty,
        true,
    )
    .unwrap();
    let (h, _) = parse_request(&dst, &Limits::default()).unwrap().unwrap();
    assert_eq!(h.uri, uri);
}

#[test]
fn response_encode_then_parse_roundtrip() {
    let cases = [
        (
            Method::GET,
            StatusCode::OK,
            Some(5),
            ResponseBodyLength::Length(5),
        ),
        (
            Method::GET,
            StatusCode::NOT_FOUND,
            None,
            ResponseBodyLength::Chunked,
        ),
        (
            Method::HEAD,
            StatusCode::OK,
            Some(5),
            ResponseBodyLength::Empty,
        ),
        (
            Method::GET,
            StatusCode::NO_CONTENT,
            None,
            ResponseBodyLength::Empty,
        ),
        (
            Method::GET,
            StatusCode::NOT_MODIFIED,
            None,
            ResponseBodyLength::Empty,
        ),
    ];
    for (method, status, exact, expected) in cases {
        for keep_alive in [true, false] {
            let headers = sample_headers();
            let framing = response_framing(&method, Version::HTTP_11, status, &headers, exact);
            let head_length = if framing == ResponseFraming::NoBody {
                exact
            } else {
                None
            };
            let mut dst = BytesMut::new();
            encode_response_head(
                &mut dst,
                Version::HTTP_11,
                status,
                &headers,
                framing,
                head_length,
                keep_alive,
            )
            .unwrap();
            let (h, n) = parse_response(&dst, &method, &Limits::default())
                .unwrap()
                .unwrap();
            assert_eq!(n, dst.len());
            assert_eq!(h.status, status);
            assert_eq!(h.body, expected, "{method} {status}");
            assert_eq!(h.keep_alive, keep_alive);
            assert!(h.headers.contains_key("date") || status.is_informational());
            assert_eq!(h.headers.get_all("x-multi").iter().count(), 2);
        }
    }
}

#[test]
fn http10_close_delimited_roundtrip() {
    let framing = response_framing(
        &Method::GET,
        Version::HTTP_10,
        StatusCode::OK,
        &HeaderMap::new(),
        None,
    );
    let mut dst = BytesMut::new();
    encode_response_head(
        &mut dst,
        Version::HTTP_10,
        StatusCode::OK,
        &HeaderMap::new(),
        framing,
        None,
        false,
    )
    .unwrap();
    let (h, _) = parse_response(&dst, &Method::GET, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(h.version, Version::HTTP_10);
    assert_eq!(h.body, ResponseBodyLength::CloseDelimited);
    assert!(!h.keep_alive);
}

#[test]
fn chunked_body_with_trailers_roundtrip() {
    let mut dst = BytesMut::new();
    encode_chunk(&mut dst, b"hello ");
    encode_chunk(&mut dst, b"");
    encode_chunk(&mut dst, b"world");
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("deadbeef"));
    encode_last_chunk(&mut dst, Some(&trailers)).unwrap();

    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut data = Vec::new();
    loop {
        match dec.decode(&mut dst).unwrap() {
            ChunkedItem::Data(d) => data.extend_from_slice(&d),
            ChunkedItem::NeedMore => panic!("complete body"),
            ChunkedItem::End(t) => {
                assert_eq!(t, Some(trailers));
                break;
            }
        }
    }
    assert_eq!(data, b"hello world");
    assert!(dst.is_empty());
}
