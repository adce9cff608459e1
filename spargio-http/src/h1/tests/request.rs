//! Request heads: grammar, target forms, Host, limits, versions, connection
//! semantics.

use http::{Method, StatusCode, Version};

use super::{assert_bad_request, error, head, parse};
use crate::h1::{parse_request, BodyLength, Limits, RequestError};

#[test]
fn simple_get_parses() {
    let h = head("GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.uri.path(), "/index.html");
    assert_eq!(h.uri.query(), Some("x=1"));
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(h.headers["host"], "example.com");
    assert_eq!(h.headers["accept"], "*/*");
    assert_eq!(h.body, BodyLength::Empty);
    assert!(h.keep_alive);
    assert!(!h.expect_continue && !h.upgrade && !h.must_close);
}

#[test]
fn head_length_excludes_body() {
    let req = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
    let (h, n) = parse(req).unwrap().unwrap();
    assert_eq!(&req[n..], b"helloGET");
    assert_eq!(h.body, BodyLength::Length(5));
}

#[test]
fn incomplete_head_needs_more() {
    assert!(parse(b"").unwrap().is_none());
    assert!(parse(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
    assert!(parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r").unwrap().is_none());
}

#[test]
fn head_split_at_every_byte_gives_same_result() {
    let req = b"POST /upload?name=a%20b HTTP/1.1\r\nHost: example.com:8080\r\n\
        User-Agent: test/1.0\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 11\r\n\
        Connection: keep-alive\r\nExpect: 100-continue\r\n\r\nhello world";
    let (full, n) = parse(req).unwrap().unwrap();
    let expected = format!("{full:?}");
    for i in 0..n {
        assert!(
            parse(&req[..i]).unwrap().is_none(),
            "prefix of {i} bytes must be incomplete"
        );
    }
    for end in n..=req.len() {
        let (h, m) = parse(&req[..end]).unwrap().unwrap();
        assert_eq!(m, n);
        assert_eq!(format!("{h:?}"), expected);
    }
}

#[test]
fn leading_empty_lines_are_skipped() {
    let req = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (h, n) = parse(req).unwrap().unwrap();
    assert_eq!(n, req.len());
    assert_eq!(h.method, Method::GET);
}

#[test]
fn bare_lf_line_ends_in_head_are_accepted() {
    // RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator.
    let req = b"GET / HTTP/1.1\nHost: h\n\n";
    let (h, n) = parse(req).unwrap().unwrap();
    assert_eq!(n, req.len());
    assert_eq!(h.headers["host"], "h");
}

#[test]
fn bare_cr_in_head_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\rHost: h\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\rX: y\r\n\r\n");
}

#[test]
fn header_order_and_duplicates_are_kept() {
    let h = head("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n");
    let all: Vec<_> = h.headers.get_all("x-a").iter().collect();
    assert_eq!(all, ["1", "2"]);
    assert_eq!(h.headers.len(), 4);
}

#[test]
fn header_value_whitespace_is_trimmed_and_obs_text_kept() {
    let h =
        parse(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a b \t\r\nX-B: caf\xc3\xa9\r\nX-E:\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
    assert_eq!(h.headers["x-a"], "a b");
    assert_eq!(h.headers["x-b"].as_bytes(), b"caf\xc3\xa9");
    assert_eq!(h.headers["x-e"], "");
}

#[test]
fn obs_fold_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n");
}

#[test]
fn whitespace_before_first_header_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\n Host: h\r\n\r\n");
}

#[test]
fn whitespace_between_name_and_colon_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n");
}

#[test]
fn nul_in_header_value_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n");
}

#[test]
fn control_bytes_in_header_value_are_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n");
}

#[test]
fn cr_inside_header_value_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n");
}

#[test]
fn invalid_header_name_bytes_are_rejected() {
    for name in [
        "X(A",
        "X/A",
        "X\"A",
        "X@A",
        "X{A",
        "X\x01A",
        "\u{e9}t\u{e9}",
    ] {
        assert_bad_request(&format!("GET / HTTP/1.1\r\nHost: h\r\n{name}: 1\r\n\r\n"));
    }
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: h\r\nno-colon\r\n\r\n");
}

#[test]
fn token_bytes_in_header_names_are_accepted() {
    let h = head("GET / HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+.^_`|~09: v\r\n\r\n");
    assert_eq!(h.headers["x-!#$%&'*+.^_`|~09"], "v");
}

#[test]
fn method_must_be_a_token() {
    assert_bad_request("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GE\"T / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn extension_methods_are_accepted() {
    assert_eq!(
        head("PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n").method.as_str(),
        "PURGE"
    );
}

#[test]
fn request_line_needs_single_spaces() {
    assert_bad_request("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET /  HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET / a HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn http09_request_line_is_rejected() {
    assert_bad_request("GET /\r\n\r\n");
}

#[test]
fn origin_form_target() {
    let h = head("GET /a/b?c=d HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(h.uri.scheme().is_none() && h.uri.authority().is_none());
    assert_eq!(h.uri.path_and_query().unwrap(), "/a/b?c=d");
}

#[test]
fn absolute_form_target() {
    let h = head("GET http://example.com:81/a?b HTTP/1.1\r\nHost: example.com:81\r\n\r\n");
    assert_eq!(h.uri.scheme_str(), Some("http"));
    assert_eq!(h.uri.authority().unwrap(), "example.com:81");
    assert_eq!(h.uri.path(), "/a");
}

#[test]
fn asterisk_form_for_options() {
    let h = head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(h.method, Method::OPTIONS);
    assert_eq!(h.uri.path(), "*");
}

#[test]
fn asterisk_form_rejected_for_other_methods() {
    assert_bad_request("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn authority_form_for_connect() {
    let h = head("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(h.method, Method::CONNECT);
    assert_eq!(h.uri.authority().unwrap(), "example.com:443");
    assert!(h.upgrade, "CONNECT always asks to switch protocols");
}

#[test]
fn authority_form_rejected_for_other_methods() {
    assert_bad_request("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn connect_needs_authority_form_with_port() {
    assert_bad_request("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("CONNECT http://example.com:443/ HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("CONNECT u@example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn invalid_targets_are_rejected() {
    assert_bad_request("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET http:/a HTTP/1.1\r\nHost: h\r\n\r\n");
}

/// A request-target has no fragment (RFC 9112 §3.2); `http::Uri` would
/// drop one silently, handing the service a different path than the one
/// sent (`/admin#/../public` as `/admin`).
#[test]
fn a_fragment_in_the_target_is_rejected() {
    assert_bad_request("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET /admin#/../public HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET /a?q=1# HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_bad_request("GET http://h/a#b HTTP/1.1\r\nHost: h\r\n\r\n");
}

/// Userinfo in an absolute-form target is an error (RFC 9110 §4.2.4), as
/// it is in a CONNECT target and in Host.
#[test]
fn userinfo_in_an_absolute_target_is_rejected() {
    assert_bad_request("GET http://u:p@host/ HTTP/1.1\r\nHost: host\r\n\r\n");
    assert_bad_request("GET http://u@host/ HTTP/1.1\r\nHost: host\r\n\r\n");
    // An `@` in the path is no userinfo.
    assert_eq!(
        head("GET http://host/a@b HTTP/1.1\r\nHost: host\r\n\r\n")
            .uri
            .path(),
        "/a@b"
    );
}

#[test]
fn targets_are_as_lenient_as_http_uri() {
    // `http::Uri` lets some bytes outside RFC 3986 through (`{`, `}`, `|`),
    // as browsers send them unescaped; they are harmless in a path.
    assert_eq!(
        head("GET /a{b}|c HTTP/1.1\r\nHost: h\r\n\r\n").uri.path(),
        "/a{b}|c"
    );
}

#[test]
fn http11_without_host_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn http10_without_host_is_accepted() {
    assert_eq!(head("GET / HTTP/1.0\r\n\r\n").version, Version::HTTP_10);
}

/// RFC 9112 §3.2: a Host whose port is not digits, or with brackets that
/// do not wrap a whole IP-literal, is invalid (400). `http`'s own authority
/// parse lets these through, and a service matching the host with
/// `ends_with(".victim.example")` would take the second for its own.
#[test]
fn host_with_a_bad_port_or_stray_brackets_is_rejected() {
    for host in [
        "host:8a",
        "evil.example:.victim.example",
        "a[b]c",
        "[::1]x",
        "[::1]:8a",
        "[not-an-address]",
        "[::1",
    ] {
        assert_bad_request(&format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }
    for host in ["[::1]:8080", "[::1]", "h:", "example.com:65535"] {
        let h = head(&format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(h.headers["host"], host);
    }
}

/// The same rule for an absolute-form target's authority, and an empty
/// host there (RFC 9110 §4.2.1).
#[test]
fn absolute_form_with_a_bad_authority_is_rejected() {
    assert_bad_request("GET http://h:8a/ HTTP/1.1\r\nHost: h:8a\r\n\r\n");
    assert_bad_request("GET http://a[b]c/ HTTP/1.1\r\nHost: h\r\n\r\n");
    let h = head("GET http://[::1]:81/a HTTP/1.1\r\nHost: [::1]:81\r\n\r\n");
    assert_eq!(h.uri.port_u16(), Some(81));
}

#[test]
fn more_than_one_host_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
    assert_bad_request("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n");
}

#[test]
fn empty_host_is_accepted() {
    assert_eq!(head("GET / HTTP/1.1\r\nHost:\r\n\r\n").headers["host"], "");
}

#[test]
fn invalid_host_is_rejected() {
    assert_bad_request("GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
    assert_bad_request("GET / HTTP/1.1\r\nHost: example.com/path\r\n\r\n");
}

#[test]
fn keep_alive_http11_by_default() {
    assert!(head("GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive);
}

#[test]
fn connection_close_http11() {
    assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").keep_alive);
    assert!(
        !head("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\nConnection: close\r\n\r\n")
            .keep_alive
    );
}

#[test]
fn http10_closes_by_default() {
    assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
}

#[test]
fn http10_keep_alive_with_header() {
    assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

#[test]
fn expect_continue_on_http11() {
    let h = head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
    assert!(h.expect_continue);
}

#[test]
fn expect_continue_never_on_http10() {
    let h = head("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert!(!h.expect_continue);
}

#[test]
fn other_expect_values_are_ignored() {
    let h = head("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n");
    assert!(!h.expect_continue);
    assert_eq!(h.headers["expect"], "200-ok");
}

#[test]
fn upgrade_needs_connection_token_and_upgrade_header() {
    let yes = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert!(head(yes).upgrade);
    assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").upgrade);
    assert!(!head("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n").upgrade);
}

#[test]
fn upgrade_ignored_on_http10() {
    let h = head("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(!h.upgrade);
}

#[test]
fn uri_too_long_in_complete_head() {
    let limits = Limits {
        max_uri_len: 10,
        ..Limits::default()
    };
    let ok = b"GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert!(parse_request(ok, &limits).unwrap().is_some());
    let long = b"GET /1234567890 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(
        parse_request(long, &limits).unwrap_err(),
        RequestError::UriTooLong
    );
    assert_eq!(RequestError::UriTooLong.status(), StatusCode::URI_TOO_LONG);
}

#[test]
fn uri_too_long_while_incomplete() {
    let limits = Limits {
        max_uri_len: 10,
        ..Limits::default()
    };
    assert!(parse_request(b"GET /123456789", &limits).unwrap().is_none());
    assert_eq!(
        parse_request(b"GET /1234567890", &limits).unwrap_err(),
        RequestError::UriTooLong
    );
    // Complete target, incomplete head.
    assert_eq!(
        parse_request(b"GET /1234567890 HTTP/1.1\r\n", &limits).unwrap_err(),
        RequestError::UriTooLong
    );
    // With leading empty lines too.
    assert_eq!(
        parse_request(b"\r\nGET /1234567890", &limits).unwrap_err(),
        RequestError::UriTooLong
    );
}

#[test]
fn head_too_large_while_incomplete() {
    let limits = Limits {
        max_head_bytes: 64,
        ..Limits::default()
    };
    let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
    while req.len() < 63 {
        req.push(b'a');
    }
    assert!(parse_request(&req, &limits).unwrap().is_none());
    req.push(b'a');
    assert_eq!(
        parse_request(&req, &limits).unwrap_err(),
        RequestError::HeadTooLarge
    );
    req.extend_from_slice(&[b'a'; 1000]);
    assert_eq!(
        parse_request(&req, &limits).unwrap_err(),
        RequestError::HeadTooLarge
    );
    assert_eq!(
        RequestError::HeadTooLarge.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[test]
fn head_too_large_even_when_complete() {
    let limits = Limits {
        max_head_bytes: 30,
        ..Limits::default()
    };
    let req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: aaaaaaaa\r\n\r\n";
    assert_eq!(
        parse_request(req, &limits).unwrap_err(),
        RequestError::HeadTooLarge
    );
}

#[test]
fn head_exactly_at_limit_is_accepted() {
    let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let limits = Limits {
        max_head_bytes: req.len(),
        ..Limits::default()
    };
    assert!(parse_request(req, &limits).unwrap().is_some());
    let mut with_body = req.to_vec();
    with_body.extend_from_slice(b"GET / HTTP/1.1\r\n");
    assert_eq!(
        parse_request(&with_body, &limits).unwrap().unwrap().1,
        req.len()
    );
}

fn with_headers(count: usize) -> Vec<u8> {
    let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 1..count {
        req.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req
}

#[test]
fn too_many_headers_is_rejected() {
    let limits = Limits {
        max_headers: 10,
        ..Limits::default()
    };
    assert_eq!(
        parse_request(&with_headers(10), &limits)
            .unwrap()
            .unwrap()
            .0
            .headers
            .len(),
        10
    );
    assert_eq!(
        parse_request(&with_headers(11), &limits).unwrap_err(),
        RequestError::TooManyHeaders
    );
    assert_eq!(
        error(std::str::from_utf8(&with_headers(101)).unwrap()),
        RequestError::TooManyHeaders
    );
}

#[test]
fn more_headers_than_stack_slots_with_a_larger_limit() {
    let limits = Limits {
        max_headers: 300,
        ..Limits::default()
    };
    let (h, _) = parse_request(&with_headers(250), &limits).unwrap().unwrap();
    assert_eq!(h.headers.len(), 250);
    assert_eq!(
        parse_request(&with_headers(301), &limits).unwrap_err(),
        RequestError::TooManyHeaders
    );
}

#[test]
fn zero_max_headers_refuses_any_header() {
    let limits = Limits {
        max_headers: 0,
        ..Limits::default()
    };
    assert!(parse_request(b"GET / HTTP/1.0\r\n\r\n", &limits)
        .unwrap()
        .is_some());
    assert_eq!(
        parse_request(b"GET / HTTP/1.0\r\nX: y\r\n\r\n", &limits).unwrap_err(),
        RequestError::TooManyHeaders
    );
}

#[test]
fn http2_preface_is_unsupported_version() {
    let e = parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap_err();
    assert_eq!(e, RequestError::UnsupportedVersion);
    assert_eq!(e.status(), StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    // Incomplete preface too.
    assert_eq!(
        parse(b"PRI * HTTP/2").unwrap_err(),
        RequestError::UnsupportedVersion
    );
}

#[test]
fn other_http_versions_are_unsupported() {
    for v in ["HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/2"] {
        let req = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_eq!(error(&req), RequestError::UnsupportedVersion, "{v}");
    }
}

#[test]
fn garbage_versions_are_malformed() {
    for v in ["http/1.1", "HTTP/x", "HTCPCP/1.0", "HTTP/1.1x", "HTTP/1.10"] {
        assert_bad_request(&format!("GET / {v}\r\nHost: h\r\n\r\n"));
    }
}

#[test]
fn error_statuses() {
    assert_eq!(
        RequestError::Malformed("x").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        RequestError::TooManyHeaders.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(
        RequestError::NotImplemented("x").status(),
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(
        RequestError::Malformed("content-length is not plain digits").to_string(),
        "malformed request: content-length is not plain digits"
    );
}

#[test]
fn parse_request_buf_takes_heads_off_the_buffer_one_at_a_time() {
    use crate::h1::parse_request_buf;
    let limits = Limits::default();
    let mut buf = bytes::BytesMut::from(
        &b"GET /a HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\nPOST /b HTTP/1.1\r\nHost: y\r\nContent-Length: 2\r\n\r\nhiGET /c"[..],
    );
    let a = parse_request_buf(&mut buf, &limits).unwrap().unwrap();
    assert_eq!((a.method, a.uri.path()), (Method::GET, "/a"));
    assert_eq!(a.headers["x-one"], "1");
    assert!(buf.starts_with(b"POST /b"));
    let b = parse_request_buf(&mut buf, &limits).unwrap().unwrap();
    assert_eq!((b.method, b.uri.path()), (Method::POST, "/b"));
    assert_eq!(b.headers["host"], "y");
    assert_eq!(b.body, BodyLength::Length(2));
    // The body is left for the caller; an incomplete head leaves the
    // buffer as it was.
    assert_eq!(&buf[..], b"hiGET /c");
    let _ = buf.split_to(2);
    assert!(parse_request_buf(&mut buf, &limits).unwrap().is_none());
    assert_eq!(&buf[..], b"GET /c");
    // The first request's fields outlive later reads into the buffer.
    buf.extend_from_slice(b" HTTP/1.1\r\nHost: z\r\n\r\n");
    let c = parse_request_buf(&mut buf, &limits).unwrap().unwrap();
    assert_eq!(c.uri.path(), "/c");
    assert_eq!(a.headers["host"], "x");
    assert!(buf.is_empty());
}

#[test]
fn parse_request_buf_and_parse_request_agree_on_errors() {
    use crate::h1::parse_request_buf;
    let limits = Limits::default();
    for bad in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let copied = parse_request(bad, &limits).unwrap_err();
        let shared = parse_request_buf(&mut bytes::BytesMut::from(bad), &limits).unwrap_err();
        assert_eq!(copied.status(), shared.status());
        assert_eq!(format!("{copied}"), format!("{shared}"));
    }
}
