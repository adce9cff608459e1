//! `parse_request` on arbitrary bytes: never panics, agrees with
//! `parse_request_buf`, and a parsed head keeps its invariants and survives
//! re-encoding.

#![no_main]

use bytes::BytesMut;
use http::{Method, Version};
use libfuzzer_sys::fuzz_target;
use spargio_http::h1::{encode_request_head, parse_request, parse_request_buf, BodyLength, Limits};

fuzz_target!(|data: &[u8]| {
    let small = Limits {
        max_headers: 8,
        max_head_bytes: 512,
        max_uri_len: 64,
        ..Limits::default()
    };
    for limits in [Limits::default(), small] {
        check(data, &limits);
    }
});

fn check(data: &[u8], limits: &Limits) {
    // The server's zero-copy path agrees with the copying one: the same
    // head (taken off the buffer) or error, and an untouched buffer while
    // the head is incomplete.
    let copied = parse_request(data, limits);
    let mut buf = BytesMut::from(data);
    match (&copied, parse_request_buf(&mut buf, limits)) {
        (Ok(Some((a, n))), Ok(Some(b))) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            assert_eq!(&buf[..], &data[*n..]);
        }
        (Ok(None), Ok(None)) => assert_eq!(&buf[..], data),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("parse_request {a:?} but parse_request_buf {b:?}"),
    }

    let (head, n) = match copied {
        Err(e) => {
            let _ = (e.status(), e.to_string());
            return;
        }
        Ok(None) => {
            assert!(
                data.len() < limits.max_head_bytes,
                "incomplete beyond the limit"
            );
            return;
        }
        Ok(Some(parsed)) => parsed,
    };

    // Size and count invariants.
    assert!(n > 0 && n <= data.len() && n <= limits.max_head_bytes);
    assert!(head.headers.len() <= limits.max_headers);
    assert!(head.version == Version::HTTP_10 || head.version == Version::HTTP_11);
    assert!(head.uri.to_string().len() <= limits.max_uri_len + 1);

    // Framing invariants.
    if head.body == BodyLength::Chunked {
        assert_eq!(head.version, Version::HTTP_11);
        assert!(!head.headers.contains_key("content-length"));
    }
    if head.must_close {
        assert_eq!(head.body, BodyLength::Chunked);
        assert!(!head.keep_alive);
    }
    if head.expect_continue {
        assert_eq!(head.version, Version::HTTP_11);
    }
    if head.version == Version::HTTP_11 {
        assert_eq!(head.headers.get_all("host").iter().count(), 1);
    }

    // The head alone parses the same; any shorter prefix is incomplete.
    let (again, m) = parse_request(&data[..n], limits)
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(m, n);
    assert_eq!(format!("{again:?}"), format!("{head:?}"));
    assert!(matches!(parse_request(&data[..n - 1], limits), Ok(None)));

    // Re-encoding (as a client would) and parsing again keeps the request.
    let absolute = head.uri.scheme().is_some();
    let mut dst = BytesMut::new();
    encode_request_head(
        &mut dst,
        &head.method,
        &head.uri,
        &head.headers,
        head.body,
        absolute,
    )
    .expect("a parsed head can be encoded");
    let (re, k) = parse_request(
        &dst,
        &Limits {
            max_head_bytes: usize::MAX,
            max_uri_len: usize::MAX,
            max_headers: 1 << 14,
            ..Limits::default()
        },
    )
    .expect("re-encoded head parses")
    .expect("re-encoded head is complete");
    assert_eq!(k, dst.len());
    assert_eq!(re.method, head.method);
    if head.method == Method::CONNECT {
        assert_eq!(re.uri.authority(), head.uri.authority());
    } else {
        assert_eq!(re.uri.path(), head.uri.path());
        assert_eq!(re.uri.query(), head.uri.query());
    }
    let normalize = |b: BodyLength| {
        if b == BodyLength::Length(0) {
            BodyLength::Empty
        } else {
            b
        }
    };
    assert_eq!(normalize(re.body), normalize(head.body));
}
