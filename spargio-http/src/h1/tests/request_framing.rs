//! Request body framing: Content-Length and Transfer-Encoding rules.

use http::StatusCode;

use super::{assert_bad_request, error, head};
use crate::h1::{BodyLength, RequestError};

fn with_fields(fields: &str) -> String {
    format!("POST / HTTP/1.1\r\nHost: h\r\n{fields}\r\n")
}

fn with_fields_10(fields: &str) -> String {
    format!("POST / HTTP/1.0\r\n{fields}\r\n")
}

#[test]
fn no_framing_headers_means_empty_body() {
    assert_eq!(head(&with_fields("")).body, BodyLength::Empty);
    assert_eq!(head("GET / HTTP/1.0\r\n\r\n").body, BodyLength::Empty);
}

#[test]
fn content_length_sets_length() {
    assert_eq!(
        head(&with_fields("Content-Length: 42\r\n")).body,
        BodyLength::Length(42)
    );
    assert_eq!(
        head(&with_fields_10("Content-Length: 7\r\n")).body,
        BodyLength::Length(7)
    );
}

#[test]
fn content_length_zero_is_length_zero() {
    assert_eq!(
        head(&with_fields("Content-Length: 0\r\n")).body,
        BodyLength::Length(0)
    );
}

#[test]
fn content_length_max_u64_is_accepted() {
    let h = head(&with_fields("Content-Length: 18446744073709551615\r\n"));
    assert_eq!(h.body, BodyLength::Length(u64::MAX));
}

#[test]
fn content_length_leading_zeros_are_digits() {
    assert_eq!(
        head(&with_fields("Content-Length: 007\r\n")).body,
        BodyLength::Length(7)
    );
}

#[test]
fn content_length_surrounding_whitespace_is_ignored() {
    assert_eq!(
        head(&with_fields("Content-Length: \t 5 \t\r\n")).body,
        BodyLength::Length(5)
    );
}

#[test]
fn te_and_cl_uses_te_and_closes() {
    let h = head(&with_fields(
        "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n",
    ));
    assert_eq!(h.body, BodyLength::Chunked);
    assert!(h.must_close);
    assert!(!h.keep_alive);
    assert!(
        h.headers.get("content-length").is_none(),
        "content-length is dropped"
    );
    assert_eq!(h.headers["transfer-encoding"], "chunked");
}

#[test]
fn te_and_invalid_cl_is_rejected() {
    assert_bad_request(&with_fields(
        "Content-Length: x\r\nTransfer-Encoding: chunked\r\n",
    ));
}

#[test]
fn chunked_alone_keeps_connection() {
    let h = head(&with_fields("Transfer-Encoding: chunked\r\n"));
    assert_eq!(h.body, BodyLength::Chunked);
    assert!(!h.must_close && h.keep_alive);
}

#[test]
fn te_chunked_is_case_insensitive() {
    assert_eq!(
        head(&with_fields("Transfer-Encoding: ChUnKeD\r\n")).body,
        BodyLength::Chunked
    );
}

#[test]
fn differing_duplicate_content_length_headers_rejected() {
    assert_bad_request(&with_fields("Content-Length: 5\r\nContent-Length: 6\r\n"));
}

#[test]
fn differing_content_length_list_rejected() {
    assert_bad_request(&with_fields("Content-Length: 5, 6\r\n"));
}

#[test]
fn identical_duplicate_content_length_accepted() {
    let h = head(&with_fields("Content-Length: 5\r\nContent-Length: 5\r\n"));
    assert_eq!(h.body, BodyLength::Length(5));
    assert_eq!(
        head(&with_fields("Content-Length: 5, 5\r\n")).body,
        BodyLength::Length(5)
    );
    assert_eq!(
        head(&with_fields("Content-Length: 5,5 , 5\r\n")).body,
        BodyLength::Length(5)
    );
}

#[test]
fn content_length_plus_sign_rejected() {
    assert_bad_request(&with_fields("Content-Length: +5\r\n"));
}

#[test]
fn content_length_minus_sign_rejected() {
    assert_bad_request(&with_fields("Content-Length: -5\r\n"));
}

#[test]
fn content_length_hex_rejected() {
    assert_bad_request(&with_fields("Content-Length: 0x5\r\n"));
    assert_bad_request(&with_fields("Content-Length: 5a\r\n"));
}

#[test]
fn content_length_inner_space_rejected() {
    assert_bad_request(&with_fields("Content-Length: 5 5\r\n"));
    assert_bad_request(&with_fields("Content-Length: 1 0\r\n"));
}

#[test]
fn content_length_empty_rejected() {
    assert_bad_request(&with_fields("Content-Length:\r\n"));
    assert_bad_request(&with_fields("Content-Length: ,5\r\n"));
    assert_bad_request(&with_fields("Content-Length: 5,\r\n"));
}

#[test]
fn content_length_overflow_rejected() {
    assert_bad_request(&with_fields("Content-Length: 18446744073709551616\r\n"));
    assert_bad_request(&with_fields("Content-Length: 99999999999999999999999\r\n"));
}

#[test]
fn content_length_error_names_the_problem() {
    assert_eq!(
        error(&with_fields("Content-Length: +5\r\n")),
        RequestError::Malformed("content-length is not plain digits")
    );
}

#[test]
fn te_last_coding_not_chunked_rejected() {
    assert_bad_request(&with_fields("Transfer-Encoding: gzip\r\n"));
    assert_bad_request(&with_fields("Transfer-Encoding: chunked, gzip\r\n"));
    assert_bad_request(&with_fields(
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    ));
    assert_bad_request(&with_fields("Transfer-Encoding: chunked;x=1\r\n"));
    assert_bad_request(&with_fields("Transfer-Encoding: chunkedx\r\n"));
}

#[test]
fn te_empty_value_rejected() {
    assert_bad_request(&with_fields("Transfer-Encoding:\r\n"));
    assert_bad_request(&with_fields("Transfer-Encoding: ,\r\n"));
}

#[test]
fn te_on_http10_rejected() {
    assert_bad_request(&with_fields_10("Transfer-Encoding: chunked\r\n"));
    assert_bad_request(&with_fields_10(
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    ));
}

#[test]
fn te_chunked_twice_rejected() {
    assert_bad_request(&with_fields("Transfer-Encoding: chunked, chunked\r\n"));
}

#[test]
fn te_chunked_in_two_headers_rejected() {
    assert_bad_request(&with_fields(
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ));
}

#[test]
fn te_other_coding_before_chunked_not_implemented() {
    let e = error(&with_fields("Transfer-Encoding: gzip, chunked\r\n"));
    assert!(matches!(e, RequestError::NotImplemented(_)), "{e:?}");
    assert_eq!(e.status(), StatusCode::NOT_IMPLEMENTED);
}

#[test]
fn te_empty_list_elements_are_ignored() {
    assert_eq!(
        head(&with_fields("Transfer-Encoding: , chunked\r\n")).body,
        BodyLength::Chunked
    );
}

#[test]
fn te_with_cl_in_a_request_to_switch_protocols_is_rejected() {
    // It must close after the answer, so it can never be handed over.
    assert_bad_request(
        "POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n\
         Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    );
    assert_bad_request(
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\
         Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    );
}
